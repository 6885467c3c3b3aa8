"""Comparison selector: QDIT-style quality-diversity selection (Bukharin & Zhao 2023, arXiv 2311.14736).

QDIT greedily maximises (1 - alpha) * F(S) + alpha * sum_{j in S} q_j: F is facility location (how well S
covers the pool, `diversity.selectors.facility`) and q a per-sample quality score. QDIT scores quality with a
reward model; offline there is none, so the default scorer is named and reward-free:

- `quality="typicality"` (default): the mean similarity of a sample to its neighbours in the facility graph,
  i.e. how typical it is of its region of the pool. Outliers (garbled, truncated, off-distribution texts)
  score low; it needs no model beyond the embeddings the facility term already uses.
- `quality="column:<field>"`: a numeric field of every pool row (e.g. `"quality": 4.5`, or a nested reward
  `"scores.reward"`), higher = better. `diversity.select.select_subset` hands the selectable rows' values over
  (`with_columns`), read by `load_pool(columns=diversity.select.pool_columns(strategy))`; a row without a finite
  number there is refused naming the file, row and field. `info["quality_column"]` records the column and its
  min / max / mean over the candidates and over the selected samples.
- `quality="meta:<key>"`: scores given per sample in `types.meta[<key>]` (a list of `n_samples` numbers an
  extractor attached), higher = better.

Scores are min-max scaled to [0, 1] and multiplied by the mean single-sample facility gain, so `alpha`
weighs two terms of the same scale (alpha = 0 is `FacilitySelector`, alpha = 1 takes the top-quality samples).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from diversity.selectors.base import Selection
from diversity.selectors.facility import CONFIG_RULES as FACILITY_RULES
from diversity.selectors.facility import FacilitySelector, facility_value, lazy_greedy
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)

TYPICALITY = "typicality"
META_PREFIX = "meta:"
COLUMN_PREFIX = "column:"


def _is_quality(value: object) -> bool:
    if not isinstance(value, str):
        return False
    prefixed = any(value.startswith(p) and value[len(p) :].strip() for p in (META_PREFIX, COLUMN_PREFIX))
    return value == TYPICALITY or prefixed


def _is_fraction(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


CONFIG_RULES = {
    **FACILITY_RULES,
    "alpha": (_is_fraction, "a number in [0, 1]"),
    "quality": (_is_quality, f"{TYPICALITY!r}, 'column:<field>' (a numeric field of the pool) or 'meta:<key>'"),
}


def typicality(graph: sp.csr_matrix) -> np.ndarray:
    """Mean similarity of each sample to its graph neighbours (itself excluded); 0 for a sample without any."""
    degree = np.diff(graph.indptr) - 1  # the diagonal entry is the sample itself
    total = np.asarray(graph.sum(axis=1)).ravel() - graph.diagonal()
    return np.divide(total, degree, out=np.zeros(graph.shape[0]), where=degree > 0)


class QditSelector(FacilitySelector):
    """Facility location plus a per-sample quality bonus (QDIT); `level` as in `FacilitySelector`.

    Args:
        alpha: weight of quality against coverage, in [0, 1].
        quality: `"typicality"`, `"column:<field>"` or `"meta:<key>"` (see the module docstring).
        n_neighbors, cell_size, block_size: the facility graph, as in `FacilitySelector`.

    Complexity: that of `FacilitySelector` plus O(N) for the scores.
    """

    CONFIG_RULES = CONFIG_RULES

    def __init__(
        self,
        alpha: float = 0.5,
        quality: str = TYPICALITY,
        n_neighbors: int = 20,
        cell_size: int = 1200,
        block_size: int = 2048,
    ) -> None:
        super().__init__(n_neighbors=n_neighbors, cell_size=cell_size, block_size=block_size)
        self.alpha = alpha
        self.quality = quality
        self._column: np.ndarray | None = None  # the candidates' values of `pool_columns` (`with_columns`)

    @property
    def pool_columns(self) -> tuple[str, ...]:
        """The pool fields this selector reads (`quality="column:<field>"`), for `load_pool(columns=...)`."""
        if isinstance(self.quality, str) and self.quality.startswith(COLUMN_PREFIX):
            return (self.quality[len(COLUMN_PREFIX) :],)
        return ()

    def with_columns(self, columns: Mapping[str, np.ndarray]) -> QditSelector:
        """A copy that scores with the given values of `pool_columns`, one per candidate (row i of the types)."""
        (name,) = self.pool_columns
        bound = copy.copy(self)
        bound._column = np.asarray(columns[name], dtype=np.float64)
        return bound

    def select(self, types: TypeAssignment, n: int, level: float, seed: int) -> Selection:
        selection = super().select(types, n, level, seed)
        if self.pool_columns:
            values = self._column_values(types)
            chosen = values[selection.indices]
            selection.info["quality_column"] = {
                "column": self.pool_columns[0],
                "candidates": _summary(values),
                "selected": _summary(chosen),
            }
        return selection

    def _column_values(self, types: TypeAssignment) -> np.ndarray:
        name = self.pool_columns[0]
        if self._column is None:
            raise ValueError(
                f"QditSelector: quality={self.quality!r} reads the pool column {name!r}, but no values were handed "
                "over: select through diversity.select.select_subset with a pool loaded by "
                f"load_pool(..., columns=[{name!r}])"
            )
        return _finite_per_sample(self._column, f"column {name!r}", types.n_samples)

    def scores(self, types: TypeAssignment, graph: sp.csr_matrix) -> np.ndarray:
        """Raw quality of every sample (before scaling), from the configured source.

        Raises:
            ValueError: if the column values or meta key are missing, of the wrong length, or not finite.
        """
        if self.quality == TYPICALITY:
            return typicality(graph)
        if self.pool_columns:
            return self._column_values(types)
        key = self.quality[len(META_PREFIX) :]
        if key not in types.meta:
            raise ValueError(f"QditSelector: quality={self.quality!r} but the TypeAssignment meta has no {key!r}")
        return _finite_per_sample(np.asarray(types.meta[key], dtype=np.float64), f"meta[{key!r}]", types.n_samples)

    def _greedy(self, types: TypeAssignment, m: int, seed: int) -> tuple[np.ndarray, dict]:
        graph, facts = self._graph(types, m, seed)
        start = time.perf_counter()
        raw = self.scores(types, graph)
        span = raw.max() - raw.min()
        unit = (raw - raw.min()) / span if span > 0 else np.zeros_like(raw)
        scaled = unit * float(np.asarray(graph.sum(axis=1)).mean())
        chosen = lazy_greedy(graph, m, scaled, float(self.alpha))
        facts.update(
            facility_value=facility_value(graph, chosen),
            alpha=float(self.alpha),
            quality=self.quality,
            quality_mean_pool=float(raw.mean()),
            quality_mean_chosen=float(raw[chosen].mean()),
            greedy_seconds=round(time.perf_counter() - start, 2),
        )
        return chosen, facts


def _summary(values: np.ndarray) -> dict[str, float | int]:
    """Count, min, max and mean of some column values (JSON-ready)."""
    low, high, mean = float(values.min()), float(values.max()), float(values.mean())
    return {"count": int(len(values)), "min": low, "max": high, "mean": mean}


def _finite_per_sample(values: np.ndarray, source: str, n_samples: int) -> np.ndarray:
    """`values` when they are one finite number per candidate; else a ValueError naming the `source` and the
    first bad candidates (a column and a meta key are checked alike)."""
    if values.shape != (n_samples,):
        raise ValueError(f"QditSelector: {source} has {values.shape} values for {n_samples} candidates")
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(f"QditSelector: {source} is not finite at candidates {bad[:10].tolist()}")
    return values
