"""Ablation: k-center greedy on sentence embeddings (core-set selection) through the selector interface."""

from __future__ import annotations

import numpy as np

from diversity.selectors.base import Selection, check_request
from diversity.types import TypeAssignment


def _embeddings(types: TypeAssignment, who: str) -> np.ndarray:
    if types.embeddings is None:
        raise ValueError(
            f"{who} needs sample embeddings, but the TypeAssignment has none "
            f"(extractor {types.meta.get('extractor')!r}); use an extractor that keeps them, e.g. macro"
        )
    emb = np.asarray(types.embeddings, dtype=np.float32)
    if emb.shape[0] != types.n_samples:
        raise ValueError(f"{who}: {emb.shape[0]} embeddings for {types.n_samples} samples")
    return emb


def k_center_greedy(emb: np.ndarray, m: int, start: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """Farthest-point traversal: `m` indices, each the sample farthest (cosine) from those already chosen.

    `emb` must be L2-normalised, so cosine distance is 1 - dot product.

    Complexity: O(m * n_samples * d) time, O(n_samples) extra memory.
    """
    nearest = np.full(len(emb), np.inf, dtype=np.float32)
    if allowed is not None:
        nearest[~allowed] = -np.inf
    chosen = np.empty(m, dtype=np.int64)
    current = start
    for i in range(m):
        chosen[i] = current
        np.minimum(nearest, 1.0 - emb @ emb[current], out=nearest)
        nearest[current] = -np.inf
        current = int(np.argmax(nearest))
    return chosen


class KCenterSelector:
    """k-center greedy on `types.embeddings`, mixed with random picks to control the degree.

    `level` is the fraction of the `n` samples chosen by k-center greedy (from a seeded random start);
    the remaining `round((1 - level) * n)` are drawn uniformly from the rest. So level 0 equals the random
    strategy and level 1 is a pure core-set. There are no discrete types, so `Selection.k` is None.

    Complexity: O(level * n * n_samples * d) time, O(n_samples * d) memory for the float32 embeddings.
    Each pick reads every embedding once: ~30 ms at 117K x 384 on 2 cores, so level 0.5 with n = 10,000
    took 150 s in `benchmarks/bench_select.py` (an ablation, not on the paper's critical path).
    """

    def select(self, types: TypeAssignment, n: int, level: float, seed: int) -> Selection:
        check_request(n, level, types.n_samples)
        emb = _embeddings(types, "KCenterSelector")
        rng = np.random.default_rng(seed)
        m = round(float(level) * n)
        chosen = np.zeros(types.n_samples, dtype=bool)
        if m:
            chosen[k_center_greedy(emb, m, int(rng.integers(types.n_samples)))] = True
        rest = np.flatnonzero(~chosen)
        chosen[rng.choice(rest, size=n - m, replace=False)] = True
        info = {"selector": "KCenterSelector", "candidate_pool_size": types.n_samples, "n_kcenter": m}
        return Selection(indices=np.flatnonzero(chosen), level=float(level), info=info)
