"""Algorithm 2 draws uniformly: every pick is a uniform unchosen holder of the least-represented type and the
random fill is uniform over what is left, checked in distribution against a plainly correct reference.

The old implementation walked one seeded order ("first unchosen holder", "first unchosen samples"), which
favours type-poor samples because type-rich samples early in the order are taken first for other types.
"""

from __future__ import annotations

import numpy as np
import pytest

from diversity.selectors import DegreeSelector
from diversity.selectors.sampling import sample
from diversity.types import TypeAssignment

SEEDS = range(1000, 1040)
N = 150


@pytest.fixture(scope="module")
def mixed() -> TypeAssignment:
    """500 samples over 120 Zipf types; half carry 1-3 types, half 15-39, so type-richness varies a lot."""
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, 121)
    weights /= weights.sum()
    sizes = np.where(rng.random(500) < 0.5, rng.integers(1, 4, 500), rng.integers(15, 40, 500))
    rows = [rng.choice(120, size=s, p=weights) for s in sizes]
    return TypeAssignment.from_lists(rows, [f"t{i}" for i in range(120)])


def reference(types: TypeAssignment, n: int, fill: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 2 on the whole typed pool, written plainly: (chosen ids, ids chosen by the walk)."""
    rng = np.random.default_rng(seed)
    m = types.matrix
    rows = [m.indices[m.indptr[i] : m.indptr[i + 1]].tolist() for i in range(types.n_samples)]
    unchosen = {t: [i for i, r in enumerate(rows) if t in r] for t in range(types.n_types)}
    unchosen = {t: holders for t, holders in unchosen.items() if holders}
    rank = rng.permutation(types.n_types)
    represented = np.zeros(types.n_types, dtype=int)
    walk: list[int] = []
    while len(walk) < n:
        eligible = [t for t, holders in unchosen.items() if holders]
        if not eligible:
            break
        t = min(eligible, key=lambda t: (represented[t], rank[t]))
        if fill == "random" and represented[t] > 0:
            break  # every type is covered
        s = int(rng.choice(unchosen[t]))
        walk.append(s)
        for u in rows[s]:
            represented[u] += 1
            unchosen[u].remove(s)
    rest = [i for i, r in enumerate(rows) if r and i not in walk]
    fill_ids = rng.choice(rest, size=n - len(walk), replace=False) if len(walk) < n else []
    return np.sort(np.concatenate([walk, fill_ids]).astype(int)), np.sort(walk)


def _agree(ours: list[float], ref: list[float]) -> tuple[bool, str]:
    """Means over seeds agree within 4 standard errors of their difference."""
    diff = np.mean(ours) - np.mean(ref)
    se = np.sqrt(np.var(ours, ddof=1) / len(ours) + np.var(ref, ddof=1) / len(ref))
    return abs(diff) < 4 * se, f"ours {np.mean(ours):.3f} vs reference {np.mean(ref):.3f} (se {se:.3f})"


@pytest.mark.parametrize("fill", ["random", "balanced"])
def test_subset_type_richness_matches_uniform_reference(mixed, fill):
    tps = mixed.types_per_sample()
    selector = DegreeSelector(fill=fill)
    ours = [tps[selector.select(mixed, N, 1.0, seed).indices].mean() for seed in SEEDS]
    ref = [tps[reference(mixed, N, fill, seed)[0]].mean() for seed in SEEDS]
    ok, message = _agree(ours, ref)
    assert ok, message


def test_walk_and_fill_each_match_the_reference(mixed):
    tps = mixed.types_per_sample()
    pool = np.flatnonzero(tps > 0)
    walks, fills, ref_walks, ref_fills = [], [], [], []
    for seed in SEEDS:
        chosen = sample(mixed.matrix, pool, N, "random", np.random.default_rng(seed))
        walk = sample(mixed.matrix, pool, N, "random", np.random.default_rng(seed), cover_only=True)
        assert len(walk) < N and np.isin(walk, chosen).all()  # the fill is a real part of the subset
        walks.append(tps[walk].mean())
        fills.append(tps[np.setdiff1d(chosen, walk)].mean())
        ref_chosen, ref_walk = reference(mixed, N, "random", seed)
        ref_walks.append(tps[ref_walk].mean())
        ref_fills.append(tps[np.setdiff1d(ref_chosen, ref_walk)].mean())
    for ours, ref in ((walks, ref_walks), (fills, ref_fills)):
        ok, message = _agree(ours, ref)
        assert ok, message


def test_sampling_is_deterministic_and_exact(mixed):
    pool = np.flatnonzero(mixed.types_per_sample() > 0)
    for fill in ("random", "balanced"):
        a = sample(mixed.matrix, pool, N, fill, np.random.default_rng(5))
        assert len(a) == N and np.all(np.diff(a) > 0) and np.isin(a, pool).all()
        assert np.array_equal(a, sample(mixed.matrix, pool, N, fill, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="n=600"):
        sample(mixed.matrix, pool, 600, "random", np.random.default_rng(0))
