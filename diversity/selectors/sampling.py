"""Algorithm 2 of the paper (token-aware uniform sampling) on one candidate pool P_k.

Repeatedly take the type that is least represented in the subset so far (ties broken by a seeded random
rank of the type ids) and add a **uniformly random** not-yet-chosen holder of it. With `fill="balanced"`
this continues until `n` samples are chosen; with `fill="random"` it stops once every type of P_k is covered
and the rest is drawn uniformly at random from the candidates not chosen yet.

Why uniform draws and not one seeded order: walking a single random permutation ("the first unchosen holder
in the order") is not uniform once samples have been chosen, because type-rich samples early in the order are
taken first for other types, so the unchosen ones left early in the order are the type-poor ones. That biased
both the walk and the fill towards short, type-poor texts.

Each draw is a rejection sample from the type's holder list (exactly uniform over its unchosen holders); after
a few rejections the list is compacted to its unchosen holders, so every holder is scanned O(1) times per
compaction and a list is compacted only when most of it is already chosen. The rank permutation is drawn over
all type ids of the matrix, so different candidate pools sampled with one seed share their tie-breaking.

Under a `Quota` (the length lock) a holder is drawn only from strata whose count is not yet met: once a
stratum is full its rows are marked taken, so the walk never draws them again, and the fill draws each
stratum's remaining count uniformly from its untaken rows. Without a quota the draws are exactly as before.
"""

from __future__ import annotations

import heapq

import numpy as np
import scipy.sparse as sp

from diversity.selectors.quota import Quota

FILL_MODES = ("balanced", "random")
TRIES = 4  # rejection draws before a holder list is compacted
CHUNK = 8192  # uniforms drawn from the generator at a time


class _Uniforms:
    """A stream of U[0, 1) draws from one generator, fetched in chunks (per-call overhead dominates)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.buffer: list[float] = []
        self.pos = 0

    def index(self, size: int) -> int:
        """Uniform integer in [0, size)."""
        if self.pos == len(self.buffer):
            self.buffer = self.rng.random(CHUNK).tolist()
            self.pos = 0
        u = self.buffer[self.pos]
        self.pos += 1
        return min(int(u * size), size - 1)


def sample(
    matrix: sp.csr_matrix,
    candidates: np.ndarray,
    n: int,
    fill: str,
    rng: np.random.Generator,
    cover_only: bool = False,
    quota: Quota | None = None,
) -> np.ndarray:
    """Algorithm 2: choose `n` of `candidates` (sorted pool ids), least-represented type first.

    Args:
        matrix: samples x types CSR incidence of the whole pool.
        candidates: pool ids of P_k; at least `n` of them.
        n: number of samples to choose.
        fill: "balanced" or "random" (see the module docstring).
        rng: the only source of randomness; equal seeds give equal subsets.
        cover_only: stop when every type is covered or `n` are chosen, without the fill (the coverage
            phase is the same for both fill modes, so this measures what Algorithm 2 can reach).
        quota: per-stratum counts the subset must meet exactly (`n` must equal `quota.n`); None = none.

    Returns:
        Sorted pool ids of the chosen samples (exactly `n` unless `cover_only`).

    Complexity: O(nnz(P_k)) to build the holder lists plus O(m * t * log k) for m walk picks of samples
    with t types each (heap updates), plus amortised O(nnz(P_k)) for compactions; memory O(nnz(P_k)).
    """
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    if len(candidates) < n:
        raise ValueError(f"cannot sample n={n} from a candidate pool of {len(candidates)}")
    n_types = matrix.shape[1]
    rank = rng.permutation(n_types)
    type_of_rank = np.argsort(rank)
    sub = sp.csr_matrix(matrix[candidates])
    by_type = sub.tocsc()
    holders = by_type.indices.copy()  # per type: holders[start[t]:end[t]] is a superset of its unchosen holders
    start = by_type.indptr[:-1]
    end = by_type.indptr[1:].copy()
    chosen = np.zeros(len(candidates), dtype=bool)
    taken = chosen if quota is None else chosen.copy()  # chosen, or in a stratum whose count is met
    if quota is not None:
        if quota.n != n:
            raise ValueError(f"the quota sums to {quota.n} but n={n}")
        quota.check(candidates, "Algorithm 2")
        local_stratum = quota.stratum[candidates]
        left = quota.counts.copy()
        sizes = np.bincount(local_stratum, minlength=len(left))
        members = np.split(np.argsort(local_stratum, kind="stable"), np.cumsum(sizes)[:-1])
        for s in np.flatnonzero(left == 0):  # a stratum with no quota (too little mass) is closed from the start
            taken[members[s]] = True
    represented = np.zeros(n_types, dtype=np.int64)
    uniforms = _Uniforms(rng)
    heap = sorted(rank[np.diff(by_type.indptr) > 0].tolist())  # every present type, count 0
    stop_when_covered = cover_only or fill == "random"
    n_chosen = 0
    while n_chosen < n and heap:
        count, r = divmod(heap[0], n_types)
        if stop_when_covered and count > 0:
            break
        heapq.heappop(heap)
        t = int(type_of_rank[r])
        if represented[t] != count:
            continue  # stale heap entry
        row = _draw_holder(holders, int(start[t]), end, t, taken, uniforms)
        if row < 0:
            continue  # every holder already chosen: this type can gain nothing more
        chosen[row] = True
        if quota is not None:
            taken[row] = True
            s = int(local_stratum[row])
            left[s] -= 1
            if left[s] == 0:
                taken[members[s]] = True
        n_chosen += 1
        row_types = sub.indices[sub.indptr[row] : sub.indptr[row + 1]]
        represented[row_types] += 1
        for key in (represented[row_types] * n_types + rank[row_types]).tolist():
            heapq.heappush(heap, key)
    if n_chosen < n and not cover_only:
        if quota is None:
            rest = rng.choice(np.flatnonzero(~chosen), size=n - n_chosen, replace=False)
        else:
            already = np.flatnonzero(chosen)
            whole = Quota(local_stratum, quota.counts).draw(np.arange(len(candidates)), rng, already)
            rest = np.setdiff1d(whole, already)
        chosen[rest] = True
    return candidates[chosen]


def _draw_holder(
    holders: np.ndarray, begin: int, end: np.ndarray, t: int, chosen: np.ndarray, uniforms: _Uniforms
) -> int:
    """A uniformly random unchosen (untaken) holder of type `t` (local row id), or -1 if none is left."""
    for _ in range(TRIES):
        size = int(end[t]) - begin
        if size == 0:
            return -1
        row = int(holders[begin + uniforms.index(size)])
        if not chosen[row]:
            return row
    segment = holders[begin : end[t]]
    live = segment[~chosen[segment]]
    holders[begin : begin + len(live)] = live
    end[t] = begin + len(live)
    if len(live) == 0:
        return -1
    return int(live[uniforms.index(len(live))])
