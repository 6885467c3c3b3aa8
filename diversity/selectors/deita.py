"""Ablation: DEITA-style repr filter (accept a sample only if it is unlike everything accepted so far)."""

from __future__ import annotations

import numpy as np

from core.config_checks import is_int, is_number
from diversity.selectors.base import Selection, check_request
from diversity.selectors.kcenter import _embeddings
from diversity.types import TypeAssignment


class DeitaSelector:
    """Walk samples in a seeded random order; accept one if its max cosine similarity to accepted ones < tau.

    DEITA walks samples in order of a quality score; we have no scores, so the order is a seeded
    permutation. `level` sets the threshold: tau = 1 - level * (1 - min_threshold), so level 0 only
    rejects exact duplicates (tau = 1) and level 1 applies the strictest threshold `min_threshold`.
    If the walk accepts fewer than `n`, the rest is filled with rejected samples in walk order (the number
    is reported as `info["n_filled"]`), so every level returns exactly `n`.

    Args:
        min_threshold: cosine-similarity threshold at level 1 (DEITA uses 0.9 on its own embeddings;
            MiniLM similarities are lower, so the default is stricter).
        block_size: candidates compared with the accepted set per matrix product.

    Complexity: O(W * n * d) time for a walk over W samples (blocked matrix products), O(n * d) memory.
    """

    CONFIG_RULES = {
        "min_threshold": (lambda v: is_number(v) and -1 <= v <= 1, "a number in [-1, 1]"),
        "block_size": (lambda v: is_int(v) and v >= 1, "a positive integer"),
    }

    def __init__(self, min_threshold: float = 0.7, block_size: int = 512) -> None:
        self.min_threshold = min_threshold
        self.block_size = block_size

    def select(self, types: TypeAssignment, n: int, level: float, seed: int) -> Selection:
        check_request(n, level, types.n_samples)
        if not -1.0 <= self.min_threshold <= 1.0:
            raise ValueError(f"DeitaSelector.min_threshold must lie in [-1, 1], got {self.min_threshold}")
        emb = _embeddings(types, "DeitaSelector")
        tau = 1.0 - float(level) * (1.0 - self.min_threshold)
        order = np.random.default_rng(seed).permutation(types.n_samples)
        accepted = np.empty((n, emb.shape[1]), dtype=np.float32)
        taken: list[int] = []
        walked = 0
        for start in range(0, len(order), self.block_size):
            block = order[start : start + self.block_size]
            # similarity of each candidate to everything accepted before this block
            best = (emb[block] @ accepted[: len(taken)].T).max(axis=1) if taken else np.full(len(block), -1.0)
            first_in_block = len(taken)
            for j, idx in enumerate(block):
                walked += 1
                sim = best[j]
                if len(taken) > first_in_block:  # and to those accepted inside this block
                    sim = max(sim, float((accepted[first_in_block : len(taken)] @ emb[idx]).max()))
                if sim < tau:
                    accepted[len(taken)] = emb[idx]
                    taken.append(int(idx))
                    if len(taken) == n:
                        break
            if len(taken) == n:
                break
        n_filled = n - len(taken)
        if n_filled:
            seen = set(taken)
            taken += [int(i) for i in order if int(i) not in seen][:n_filled]
        info = {
            "selector": "DeitaSelector",
            "candidate_pool_size": types.n_samples,
            "threshold": tau,
            "n_walked": walked,
            "n_filled": n_filled,
        }
        return Selection(indices=np.sort(np.asarray(taken, dtype=np.int64)), level=float(level), info=info)
