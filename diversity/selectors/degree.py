"""The one degree-controlled selector shared by all six strategies (the paper's Algorithms 1 and 2).

Algorithm 1 (reverse greedy pruning) works on *types*: starting from every type and every typed sample,
repeatedly drop the type held by the fewest still-alive samples, together with every sample holding it.
The kept type sets K_k are nested, and the candidate pool P_k is the set of samples whose types all lie in
K_k. For macro (one topic per sample) this keeps the k largest clusters; for micro it keeps the token types
that many short, plain samples share, which is why low degrees also hold shorter responses.

Algorithm 2 (token-aware uniform sampling) draws exactly `n` samples from P_k: repeatedly take the type that
is least represented in the subset so far and add a random not-yet-chosen holder of it. With
`fill="balanced"` this continues until `n` samples are chosen, which keeps the type distribution as flat as
the pool allows (round-robin across clusters for macro). With `fill="random"` it stops once every type of K_k
is covered and fills the rest uniformly at random from P_k (the variant behind the paper notes' reference
figures).

Samples that carry no type (e.g. no token in micro's frequency band, macro noise if the extractor leaves it
untyped) are **never selected**: they cannot express the degree being controlled, and admitting them
vacuously into every P_k would fill low-degree subsets with near-empty texts. Their count is reported in
`Selection.info["n_typeless"]`.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from diversity.selectors.base import Selection, check_request
from diversity.types import TypeAssignment

FILL_MODES = ("balanced", "random")
PREVIEW = 20


@dataclass(frozen=True)
class PruningPass:
    """Result of one run of Algorithm 1; everything a selection at any level needs.

    Attributes:
        position: (n_types,) step at which each type was dropped (0 = first).
        death: (n_samples,) step at which each sample left the pool (n_types for typeless samples,
            which are excluded separately).
        valid_k: increasing array of the k at which every kept type still has a holder.
        pool_size: |P_k| for each entry of `valid_k`.
    """

    position: np.ndarray
    death: np.ndarray
    valid_k: np.ndarray
    pool_size: np.ndarray


def _gather_rows(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Concatenated column ids of `rows` of a CSR matrix, without a Python loop."""
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=matrix.indices.dtype)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return matrix.indices[offsets + np.arange(total)]


def prune(matrix: sp.csr_matrix) -> PruningPass:
    """Algorithm 1: drop the type with the fewest alive holders, with its holders, until none is left.

    Ties are broken by the lower type id, so the pass is deterministic and independent of the seed.
    The next type is found by a vectorised argmin over the live types' holder counts (compacted whenever
    half of them are gone), and counts are decremented in bulk for every sample that dies. This beats a
    lazy heap here: a heap needs one push per decrement (millions for a 117K micro pool), while argmin
    over a few ten thousand int32 counts costs microseconds.

    Complexity: O(n_types^2 + nnz) time (each sample dies once and decrements each of its types once;
    each step scans the live counts), O(nnz + n_types) memory.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.uint8)
    matrix.sum_duplicates()
    n_samples, n_types = matrix.shape
    by_type = matrix.tocsc()
    dropped = np.iinfo(np.int32).max
    counts = np.diff(by_type.indptr).astype(np.int32)
    live = np.arange(n_types)  # type ids still scanned; counts[dropped ones] == `dropped`
    alive = np.ones(n_samples, dtype=bool)
    position = np.full(n_types, n_types, dtype=np.int64)
    popped_count = np.zeros(n_types, dtype=np.int64)
    for step in range(n_types):
        if 2 * (n_types - step) < len(live):
            live = live[counts[live] != dropped]
        t = int(live[np.argmin(counts[live])])
        position[t] = step
        popped_count[step] = counts[t]
        holders = by_type.indices[by_type.indptr[t] : by_type.indptr[t + 1]]
        dying = holders[alive[holders]]
        if dying.size:
            alive[dying] = False
            np.subtract.at(counts, _gather_rows(matrix, dying), 1)
        counts[t] = dropped

    typed = np.diff(matrix.indptr) > 0
    death = np.full(n_samples, n_types, dtype=np.int64)
    if typed.any():
        row_pos = position[matrix.indices]
        death[typed] = np.minimum.reduceat(row_pos, matrix.indptr[:-1][typed])
    # State s (after s drops) keeps k = n_types - s types; it is valid when its cheapest type has a holder.
    steps = np.flatnonzero(popped_count > 0)
    died_at = np.bincount(death[typed], minlength=n_types + 1)
    alive_after = n_samples - (~typed).sum() - np.concatenate(([0], np.cumsum(died_at)[:-1]))
    valid_k = (n_types - steps)[::-1]
    pool_size = alive_after[steps][::-1]
    return PruningPass(position=position, death=death, valid_k=valid_k, pool_size=pool_size)


class DegreeSelector:
    """Select `n` samples covering a controlled number `k` of types (Algorithms 1 + 2).

    `level` in [0, 1] maps to k = round(k_min + level * (k_max - k_min)), moved up to the next k at which
    the pruning pass has a valid state, where k_min is the smallest k whose candidate pool holds `n`
    typed samples and k_max is the number of types the typed pool covers.

    Args:
        fill: "balanced" keeps adding the least-represented type's holder until `n` are chosen;
            "random" stops once all k types are covered and fills the rest uniformly from P_k.

    The pruning pass depends only on the type matrix, so it is cached on the object for the last
    TypeAssignment seen (`_pass`, `_pass_matrix`); selections at other levels or seeds reuse it.

    Complexity: pass O(n_types^2 + nnz) (vectorised; ~3 s for the 117K micro pool); each selection
    O(nnz(P_k) + n * t * log k) with t the mean types per chosen sample; memory O(nnz).
    """

    def __init__(self, fill: str = "balanced") -> None:
        self.fill = fill

    def pruning_pass(self, types: TypeAssignment) -> PruningPass:
        """Run (or reuse) Algorithm 1 for this type matrix."""
        if getattr(self, "_pass_matrix", None) is not types.matrix:
            self._pass = prune(types.matrix)
            self._pass_matrix = types.matrix
        return self._pass

    def select(self, types: TypeAssignment, n: int, level: float, seed: int) -> Selection:
        """Choose exactly `n` typed samples at degree `level`; see the class docstring.

        Raises:
            ValueError: bad `level`/`n`/`fill`, or fewer than `n` typed samples (message names n, k_min,
                k_max).
        """
        if self.fill not in FILL_MODES:
            raise ValueError(f"DegreeSelector.fill must be one of {FILL_MODES}, got {self.fill!r}")
        check_request(n, level, types.n_samples)
        result = self.pruning_pass(types)
        n_typeless = int((types.types_per_sample() == 0).sum())
        k_max = int(result.valid_k[-1]) if result.valid_k.size else 0
        feasible = np.flatnonzero(result.pool_size >= n)
        if feasible.size == 0:
            raise ValueError(
                f"cannot select n={n}: only {types.n_samples - n_typeless} of {types.n_samples} samples "
                f"carry a type ({n_typeless} typeless samples are never selected), so no k works "
                f"(k_min=undefined, k_max={k_max})"
            )
        k_min = int(result.valid_k[feasible[0]])
        target = round(k_min + float(level) * (k_max - k_min))
        state = int(np.searchsorted(result.valid_k, target))
        k = int(result.valid_k[state])
        drops = types.n_types - k
        candidates = np.flatnonzero((result.death >= drops) & (result.death < types.n_types))
        chosen = self._sample(types.matrix, candidates, n, np.random.default_rng(seed))
        covered = types.types_of(chosen)
        counts = np.bincount(types.matrix[chosen].indices, minlength=types.n_types)[covered]
        top = covered[np.argsort(-counts, kind="stable")[:PREVIEW]]
        info = {
            "selector": "DegreeSelector",
            "fill": self.fill,
            "k_target": k,
            "candidate_pool_size": int(candidates.size),
            "n_typeless": n_typeless,
            "types_covered": int(covered.size),
            "types_preview": [types.type_names[t] for t in top],
        }
        return Selection(
            indices=chosen,
            level=float(level),
            k=int(covered.size),
            k_min=k_min,
            k_max=k_max,
            n_types=types.n_types,
            info=info,
        )

    def _sample(self, matrix: sp.csr_matrix, candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """Algorithm 2 on P_k = `candidates`: least-represented type first, random holder of it.

        Candidates are put in one seeded random order; each type's holders are then visited in that
        order, which makes "a random unchosen holder" a pointer walk instead of repeated sampling.
        Ties between equally represented types are broken by a seeded random rank.
        """
        order = rng.permutation(candidates)
        sub = sp.csr_matrix(matrix[order])
        by_type = sub.tocsc()
        by_type.sort_indices()
        n_types = sub.shape[1]
        rank = rng.permutation(n_types)
        type_of_rank = np.argsort(rank)
        pointer = by_type.indptr[:-1].copy()
        chosen = np.zeros(len(order), dtype=bool)
        represented = np.zeros(n_types, dtype=np.int64)
        heap = sorted(rank[np.unique(sub.indices)].tolist())  # every kept type, count 0
        n_chosen = 0
        while n_chosen < n and heap:
            count, r = divmod(heap[0], n_types)
            if self.fill == "random" and count > 0:
                break
            heapq.heappop(heap)
            t = type_of_rank[r]
            if represented[t] != count:
                continue
            p, end = pointer[t], by_type.indptr[t + 1]
            while p < end and chosen[by_type.indices[p]]:
                p += 1
            pointer[t] = p
            if p == end:
                continue  # every holder already chosen: this type can gain nothing more
            row = by_type.indices[p]
            chosen[row] = True
            n_chosen += 1
            row_types = sub.indices[sub.indptr[row] : sub.indptr[row + 1]]
            represented[row_types] += 1
            for key in (represented[row_types] * n_types + rank[row_types]).tolist():
                heapq.heappush(heap, key)
        if n_chosen < n:
            rest = np.flatnonzero(~chosen)[: n - n_chosen]  # `order` is already random
            chosen[rest] = True
        return np.sort(order[chosen])
