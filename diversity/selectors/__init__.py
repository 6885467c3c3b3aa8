"""Selectors: `select(types, n, level, seed) -> Selection` (see docs/CONTRACTS.md).

`DegreeSelector` is the paper's method and serves all six strategies; the others are baselines and
ablations that share its interface so a strategy config can swap them.
"""

from diversity.selectors.base import Selection
from diversity.selectors.degree import DegreeSelector, PruningPass, prune
from diversity.selectors.deita import DeitaSelector
from diversity.selectors.kcenter import KCenterSelector
from diversity.selectors.random import RandomSelector

__all__ = [
    "DegreeSelector",
    "DeitaSelector",
    "KCenterSelector",
    "PruningPass",
    "RandomSelector",
    "Selection",
    "prune",
]
