"""Selectors: `select(types, n, level, seed) -> Selection` (see docs/CONTRACTS.md).

`DegreeSelector` is the paper's method and serves all six strategies; the others are baselines and
ablations that share its interface so a strategy config can swap them.
"""

from diversity.selectors.base import Selection
from diversity.selectors.degree import DegreeSelector, LevelMap
from diversity.selectors.deita import DeitaSelector
from diversity.selectors.facility import FacilitySelector
from diversity.selectors.kcenter import KCenterSelector
from diversity.selectors.pruning import PruningPass, prune
from diversity.selectors.qdit import QditSelector
from diversity.selectors.random import RandomSelector

__all__ = [
    "DegreeSelector",
    "DeitaSelector",
    "FacilitySelector",
    "KCenterSelector",
    "LevelMap",
    "PruningPass",
    "QditSelector",
    "RandomSelector",
    "Selection",
    "prune",
]
