"""Public path for the selectors named in docs/CONTRACTS.md; the code lives in `diversity.selectors`."""

from diversity.selectors import (
    DegreeSelector,
    DeitaSelector,
    KCenterSelector,
    PruningPass,
    RandomSelector,
    Selection,
    prune,
)

__all__ = [
    "DegreeSelector",
    "DeitaSelector",
    "KCenterSelector",
    "PruningPass",
    "RandomSelector",
    "Selection",
    "prune",
]
