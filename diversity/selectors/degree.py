"""The one degree-controlled selector shared by all six strategies (the paper's Algorithms 1 and 2).

Algorithm 1 (`pruning.prune`) orders the types and gives nested candidate pools P_k; Algorithm 2
(`sampling.sample`) draws `n` samples from one P_k, covering as many of its types as `n` allow. This module
maps a degree in [0, 1] to a number of types and finds the P_k whose Algorithm-2 subset covers it.

The map runs over what `n` samples can actually reach: k_min is the smallest k whose pool holds `n` typed
samples, k_max is the coverage Algorithm 2 reaches with `n` samples from the whole typed pool and the run's
seed (so degree 1 is exactly Algorithm 2 on the whole typed pool). With few samples and many types, k_max is
below the number of types in the pool and varies a little between seeds, and some P_k hold more types than
`n` samples can cover; the target k is then met by searching the pruning states for the one whose subset
covers it. With enough samples (the paper's setting) k_max is the pool's type count for every seed.

Degree 0 is special: P_{k_min} often holds exactly `n` samples, so every seed returns the same subset there.
`info["subset_independent_of_seed"]` says so for each selection, and `info["degree0_unique"]` for the map.

Samples that carry no type (no token in micro's frequency band, macro noise) are **never selected**: they
cannot express the degree being controlled, and admitting them vacuously into every P_k would fill low-degree
subsets with near-empty texts. Their count is reported in `Selection.info["n_typeless"]`.

Under a length lock (`quota`, see `diversity.selectors.quota`) every subset meets per-stratum counts: k_min is
the smallest state whose pool holds each stratum's count, k_max what the quota-constrained Algorithm 2 covers
from the whole typed pool, so the reachable range is narrower than unlocked and is reported as such.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from diversity.selectors.base import Selection, check_request
from diversity.selectors.pruning import PruningPass, prune
from diversity.selectors.quota import Quota
from diversity.selectors.sampling import FILL_MODES, sample
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)

PREVIEW = 20  # types named in a selection's info: the most frequent covered ones
DEGREES = tuple(i / 6 for i in range(7))  # the paper's seven degrees 0, 1/6, ..., 1: their one definition


def degree_sweep(*indices: int) -> str:
    """`0,0.1667,...,1` for a sweep's `diversity.level` (all seven, or the degrees at `indices`), to 4 digits:
    the `${degrees:}` resolver, so experiment files name degrees by position instead of restating their values."""
    chosen = [DEGREES[int(i)] for i in indices] if indices else list(DEGREES)
    return ",".join(f"{round(d, 4):g}" for d in chosen)


EXTRA_STREAMS = 8  # at most 2 * 8 extra Algorithm-2 runs when coverage misses k_target by > 0.5%
K_MAX_DEFINITION = (
    "types covered by Algorithm 2 with n samples from the whole typed pool and this seed; equals the pool's "
    "type count when n samples can cover every type"
)
ALGORITHM_VERSION = 3  # 2: uniform holder draws and fill, level map over the reachable range; 3: length-lock quotas

__all__ = ["DegreeSelector", "LevelMap", "PruningPass", "prune"]


@dataclass(frozen=True)
class LevelMap:
    """How degrees map to numbers of types for one (type matrix, n, seed).

    Attributes:
        k_min: smallest valid k whose candidate pool holds at least `n` typed samples.
        k_max: coverage of Algorithm 2 with `n` samples and the seed from the whole typed pool (>= k_min).
        k_pool: number of types the typed pool covers (the old k_max).
        degree0_unique: |P_{k_min}| == n, so degree 0 selects the same subset for every seed.
        n_distinct_k: distinct k the seven degrees 0, 1/6, ..., 1 are expected to reach.
    """

    k_min: int
    k_max: int
    k_pool: int
    degree0_unique: bool
    n_distinct_k: int

    def target(self, level: float) -> int:
        """The number of types degree `level` asks for."""
        return round(self.k_min + float(level) * (self.k_max - self.k_min))


class DegreeSelector:
    """Select `n` samples covering a controlled number `k` of types (Algorithms 1 + 2).

    `level` maps to k_target = round(k_min + level * (k_max - k_min)) over the reachable range (see the module
    docstring). The subset is Algorithm 2 on the smallest valid P_k (k >= k_target) whose subset covers
    k_target types; the achieved k is in `Selection.k`, and equals k_target up to the few types that
    Algorithm 1 drops together (types left without holders) or, when `n` cannot cover a whole P_k, up to
    the seed-to-seed spread of coverage (well under 1% on realistic pools).

    Args:
        fill: "balanced" keeps adding a holder of the least-represented type until `n` are chosen;
            "random" stops once all types of P_k are covered and fills the rest uniformly from P_k.

    The pruning pass depends only on the type matrix and the level map on (matrix, n, seed), so both are
    cached on the object for the last TypeAssignment seen; selections at other levels reuse them.

    Complexity: pass O(n_types^2 + nnz) (vectorised; ~2 s for the 117K micro pool); level map one
    Algorithm-2 coverage run on the whole typed pool; each selection one Algorithm-2 run,
    O(nnz(P_k) + n * t * log k) with t the mean types per chosen sample, or O(log n_types) runs when `n`
    cannot cover P_k_target; memory O(nnz).
    """

    CONFIG_RULES = {"fill": (lambda v: v in FILL_MODES, f"one of {', '.join(map(repr, FILL_MODES))}")}

    def __init__(self, fill: str = "balanced") -> None:
        self.fill = fill

    def cache_key(self) -> dict[str, object]:
        """What determines the subsets (the algorithm version invalidates selections cached by older code)."""
        return {"class": "diversity.selectors.DegreeSelector", "fill": self.fill, "version": ALGORITHM_VERSION}

    def pruning_pass(self, types: TypeAssignment, quota: Quota | None = None) -> PruningPass:
        """Run (or reuse) Algorithm 1 for this type matrix (quota-aware under a length lock)."""
        key = None if quota is None else quota.key
        if getattr(self, "_pass_matrix", None) is not types.matrix or self._pass_quota != key:
            self._pass = prune(types.matrix, quota)
            self._pass_matrix, self._pass_quota = types.matrix, key
            self._maps: dict[tuple, LevelMap] = {}
            self._full: dict[tuple, tuple[int, np.ndarray]] = {}
        return self._pass

    def level_map(self, types: TypeAssignment, n: int, seed: int, quota: Quota | None = None) -> LevelMap:
        """The reachable range of k for `n` samples of this pool and this seed (cached per (n, seed, quota)).

        Raises:
            ValueError: fewer than `n` typed samples (message names n, k_min, k_max).
        """
        result = self.pruning_pass(types, quota)
        key = (n, seed, None if quota is None else quota.key)
        if key in self._maps:
            return self._maps[key]
        k_pool = int(result.valid_k[-1]) if result.valid_k.size else 0
        feasible = np.flatnonzero(result.pool_size >= n)
        if quota is not None and feasible.size:
            feasible = feasible[result.valid_k[feasible] >= self._quota_k(types, result, quota)]
            if feasible.size == 0:
                raise ValueError(
                    f"cannot select n={n} under the length lock: the typed pool cannot meet every length "
                    "stratum's count (a wider window, fewer diversity.length.bins or a smaller n)"
                )
        if feasible.size == 0:
            n_typeless = int((types.types_per_sample() == 0).sum())
            raise ValueError(
                f"cannot select n={n}: only {types.n_samples - n_typeless} of {types.n_samples} samples "
                f"carry a type ({n_typeless} typeless samples are never selected), so no k works "
                f"(k_min=undefined, k_max={k_pool})"
            )
        k_min = int(result.valid_k[feasible[0]])
        whole = sample(types.matrix, result.pool(k_pool), n, self.fill, np.random.default_rng(seed), quota=quota)
        self._full[key] = (int(types.types_of(whole).size), whole)  # also degree 1's subset
        k_max = max(k_min, self._full[key][0])
        unique = self._seed_free(result, k_min, n, quota)
        partial = LevelMap(k_min, k_max, k_pool, unique, 0)
        expected = {self._expected_k(result, partial.target(level), k_max) for level in DEGREES}
        level_map = LevelMap(k_min, k_max, k_pool, partial.degree0_unique, len(expected))
        if level_map.n_distinct_k < len(DEGREES):
            log.warning(
                "DegreeSelector: n=%d reaches only %d distinct k for the seven degrees (k_min=%d, k_max=%d, "
                "%d types in the pool); some neighbouring degrees will cover the same number of types",
                n, level_map.n_distinct_k, k_min, k_max, k_pool,
            )  # fmt: skip
        self._maps[key] = level_map
        return level_map

    @staticmethod
    def _quota_k(types: TypeAssignment, result: PruningPass, quota: Quota) -> int:
        """Smallest k whose pool P_k holds `quota.counts[s]` typed samples of every stratum s.

        A sample is in P_k while its death step is >= n_types - k, so stratum s needs the counts[s]-th latest
        death among its typed samples. O(n_samples log n_samples)."""
        n_types = types.n_types
        typed = result.death < n_types
        need = 0
        for s, count in enumerate(quota.counts.tolist()):
            if count == 0:
                continue
            deaths = np.sort(result.death[typed & (quota.stratum == s)])[::-1]
            if deaths.size < count:
                return n_types + 1  # no state can meet it
            need = max(need, n_types - int(deaths[count - 1]))
        return need

    @staticmethod
    def _seed_free(result: PruningPass, k: int, n: int, quota: Quota | None) -> bool:
        """Whether P_k leaves no choice: exactly `n` samples (or exactly each stratum's count)."""
        pool = result.pool(k)
        if quota is None:
            return len(pool) == n
        return bool(np.array_equal(quota.available(pool), quota.counts))

    @staticmethod
    def _expected_k(result: PruningPass, target: int, k_max: int) -> int:
        """The k a target should reach: the smallest valid pruning state >= target (targets inside a run of
        types dropped together move up to its end) when `n` can cover it, else the target itself."""
        state = int(result.valid_k[min(np.searchsorted(result.valid_k, target), len(result.valid_k) - 1)])
        return state if state <= k_max else target

    def select(self, types: TypeAssignment, n: int, level: float, seed: int, quota: Quota | None = None) -> Selection:
        """Choose exactly `n` typed samples at degree `level` (within `quota`'s strata); see the class docstring.

        Raises:
            ValueError: bad `level`/`n`/`fill`, or fewer than `n` typed samples (message names n, k_min,
                k_max).
        """
        if self.fill not in FILL_MODES:
            raise ValueError(f"DegreeSelector.fill must be one of {FILL_MODES}, got {self.fill!r}")
        check_request(n, level, types.n_samples)
        level_map = self.level_map(types, n, seed, quota)
        result = self.pruning_pass(types, quota)
        k_target = level_map.target(level)
        k_state, chosen, probes = self._search(types, result, n, k_target, level_map.k_min, seed, quota)
        covered = types.types_of(chosen)
        counts = np.bincount(types.matrix[chosen].indices, minlength=types.n_types)[covered]
        top = covered[np.argsort(-counts, kind="stable")[:PREVIEW]]
        pool_size = int(result.pool_size[np.searchsorted(result.valid_k, k_state)])
        info = {
            "selector": "DegreeSelector",
            "fill": self.fill,
            "k_target": k_target,
            "k_pruned": k_state,
            "k_pool": level_map.k_pool,
            "k_max_definition": K_MAX_DEFINITION,
            "n_distinct_k": level_map.n_distinct_k,
            "degree0_unique": level_map.degree0_unique,
            "subset_independent_of_seed": self._seed_free(result, k_state, n, quota),
            "length_locked": quota is not None,
            "search_probes": probes,
            "candidate_pool_size": pool_size,
            "n_typeless": int((types.types_per_sample() == 0).sum()),
            "types_covered": int(covered.size),
            "types_preview": [types.type_names[t] for t in top],
        }
        return Selection(
            indices=chosen,
            level=float(level),
            k=int(covered.size),
            k_target=k_target,
            k_min=level_map.k_min,
            k_max=level_map.k_max,
            n_types=types.n_types,
            info=info,
        )

    def _search(
        self,
        types: TypeAssignment,
        result: PruningPass,
        n: int,
        k_target: int,
        k_min: int,
        seed: int,
        quota: Quota | None = None,
    ) -> tuple[int, np.ndarray, int]:
        """Find the pruning state whose Algorithm-2 subset covers `k_target` types.

        The first candidate is the smallest valid state with k >= k_target; when `n` samples cover all of its
        types (the usual case) that is the answer. Otherwise coverage grows with k (noisily) and a search over
        the larger states, alternating interpolation on coverage with bisection, brackets k_target until a
        subset is within 0.1% of it or the bracket closes. When the first state's subset overshoots by more
        than 0.5% (a run of types dropped together skips past k_target), the state below it is tried too: its
        subset may come closer from beneath. Within one seed, coverage is a step function of
        the state (neighbouring states share most of the walk) whose steps can reach 2%, so while the best
        subset misses by more than 0.5%, the two states of the bracket are drawn again with up to
        EXTRA_STREAMS streams derived from the seed (`default_rng([seed, j])`). Of all subsets drawn, the one
        whose coverage is closest to k_target is kept (ties: smaller state, then stream). Degree 1 reuses the
        level map's whole-pool subset.

        Returns:
            (k of the state used, chosen pool ids, number of Algorithm-2 runs for this selection).
        """
        valid = result.valid_k
        last = len(valid) - 1
        tried = {(last, 0): self._full[n, seed, None if quota is None else quota.key]}
        probes = 0

        def run(i: int, stream: int = 0) -> int:
            nonlocal probes
            if (i, stream) not in tried:
                rng = np.random.default_rng(seed if stream == 0 else [seed, stream])
                chosen = sample(types.matrix, result.pool(int(valid[i])), n, self.fill, rng, quota=quota)
                tried[i, stream] = (int(types.types_of(chosen).size), chosen)
                probes += 1
            return tried[i, stream][0]

        def miss(key: tuple[int, int]) -> int:
            return abs(tried[key][0] - k_target)

        lo = min(int(np.searchsorted(valid, k_target)), last)
        if k_target >= tried[last, 0][0] and k_target > k_min:
            lo = last  # degree 1 (or beyond what the pool reaches): the whole-pool subset
        run(lo)
        hi = last
        step = 0
        while run(lo) < k_target <= run(hi) and hi - lo > 1 and min(miss((lo, 0)), miss((hi, 0))) > k_target // 1000:
            mid = (lo + hi) // 2
            if step % 2 == 0:  # interpolate: coverage is roughly linear in the state between lo and hi
                mid = lo + round((k_target - run(lo)) / (run(hi) - run(lo)) * (hi - lo))
            mid = min(max(mid, lo + 1), hi - 1)
            step += 1
            lo, hi = (lo, mid) if run(mid) >= k_target else (mid, hi)
        best = min(tried, key=lambda key: (miss(key), key))
        states = {lo, hi}
        if miss(best) > k_target // 200 and run(lo) > k_target and lo > 0:
            states.add(lo - 1)  # the first state overshoots (a run of types dropped): the one below may come closer
            run(lo - 1)
            best = min(tried, key=lambda key: (miss(key), key))
        for stream in range(1, EXTRA_STREAMS + 1):
            for i in sorted(states):
                if miss(best) > k_target // 200:
                    run(i, stream)
                    best = min(tried, key=lambda key: (miss(key), key))
        return int(valid[best[0]]), tried[best][1], max(probes, 1)
