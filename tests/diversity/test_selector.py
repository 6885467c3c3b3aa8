"""Selectors on hand-made type assignments: pruning order by hand, the selection contract, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from diversity.selectors import DegreeSelector, DeitaSelector, KCenterSelector, RandomSelector, prune
from diversity.selectors.degree import DEGREES
from diversity.types import TypeAssignment

LEVELS = list(DEGREES)


def _hand_case() -> TypeAssignment:
    """Types A..D plus E (no holder); sample 6 is typeless.

    Holder counts A1 B3 C3 D2 E0. Drop order by hand: E (0 holders), A (1; kills s0, so B -> 2),
    B (2, beats D=2 on id; kills s1, s2, so C -> 2), C (2, beats D on id; kills s3, s4), D (kills s5).
    """
    rows = [[0, 1], [1], [1, 2], [2], [2, 3], [3], []]
    return TypeAssignment.from_lists(rows, list("ABCDE"))


def _random_types(n_samples: int, n_types: int, seed: int, mean_types: float = 6.0) -> TypeAssignment:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_types + 1)
    weights /= weights.sum()
    rows = [rng.choice(n_types, size=rng.poisson(mean_types) + 1, p=weights) for _ in range(n_samples)]
    return TypeAssignment.from_lists(rows, [f"t{i}" for i in range(n_types)])


def _naive_prune_order(types: TypeAssignment) -> list[int]:
    """Reference Algorithm 1, recounting everything each step (quadratic, obviously right)."""
    dense = types.matrix.toarray().astype(bool)
    alive = np.ones(len(dense), dtype=bool)
    left = list(range(types.n_types))
    order = []
    while left:
        counts = dense[alive][:, left].sum(axis=0)
        t = left[int(np.argmin(counts))]
        order.append(t)
        left.remove(t)
        alive &= ~dense[:, t]
    return order


@pytest.fixture(scope="module")
def medium() -> TypeAssignment:
    return _random_types(600, 150, seed=3)


def test_pruning_pass_matches_hand_derivation():
    result = prune(_hand_case().matrix)
    assert result.position.tolist() == [1, 2, 3, 4, 0]  # A B C D E
    assert result.death[:6].tolist() == [1, 2, 2, 3, 3, 4]
    assert result.valid_k.tolist() == [1, 2, 3, 4]  # k = 5 would keep E, which no sample holds
    assert result.pool_size.tolist() == [1, 3, 5, 6]  # P_1 = {s5}, P_2 = {s3, s4, s5}, ...


def test_pruning_order_matches_naive_reference(medium):
    order = np.argsort(prune(medium.matrix).position).tolist()
    assert order == _naive_prune_order(medium)


def test_hand_case_levels_give_the_derived_pools():
    types = _hand_case()
    low = DegreeSelector().select(types, 3, 0.0, seed=0)
    assert (low.k_min, low.k_max, low.n_types) == (2, 4, 5)
    assert low.indices.tolist() == [3, 4, 5]  # P_2 holds exactly three samples
    assert low.k == 2 and set(low.info["types_preview"]) == {"C", "D"}
    mid = DegreeSelector().select(types, 3, 0.5, seed=0)
    assert mid.info["k_target"] == 3 and set(mid.indices) <= {1, 2, 3, 4, 5}
    assert 6 not in DegreeSelector().select(types, 6, 1.0, seed=0).indices  # typeless never chosen


def test_macro_like_types_keep_the_largest_clusters_balanced():
    sizes = [50, 40, 30, 20, 10]
    types = TypeAssignment.from_lists([[c] for c, s in enumerate(sizes) for _ in range(s)], list("abcde"))
    sel = DegreeSelector().select(types, 60, 0.0, seed=1)
    assert sel.k == sel.k_min == 2  # 50 + 40 >= 60 but 50 < 60
    labels = types.matrix[sel.indices].indices
    assert np.bincount(labels, minlength=5).tolist() == [30, 30, 0, 0, 0]
    full = DegreeSelector().select(types, 60, 1.0, seed=1)
    counts = np.bincount(types.matrix[full.indices].indices)
    assert counts[4] == 10 and sorted(counts[:4].tolist()) == [12, 12, 13, 13]  # round-robin, e exhausted


@pytest.mark.parametrize("fill", ["balanced", "random"])
def test_selection_contract(medium, fill):
    selector = DegreeSelector(fill=fill)
    ks = []
    for level in LEVELS:
        sel = selector.select(medium, 120, level, seed=7)
        assert len(sel.indices) == 120
        assert np.all(np.diff(sel.indices) > 0)  # sorted and unique
        assert sel.k == sel.k_target == sel.info["k_target"]  # n = 120 covers every kept type here
        again = DegreeSelector(fill=fill).select(medium, 120, level, seed=7)
        assert np.array_equal(sel.indices, again.indices)
        ks.append(sel.k)
    assert all(a < b for a, b in zip(ks, ks[1:], strict=False))
    assert ks[0] == sel.k_min and ks[-1] == sel.k_max == sel.info["k_pool"]  # 120 samples reach every type
    other = selector.select(medium, 120, 0.5, seed=8)
    assert not np.array_equal(other.indices, selector.select(medium, 120, 0.5, seed=7).indices)


def test_candidates_hold_only_kept_types(medium):
    selector = DegreeSelector()
    sel = selector.select(medium, 100, 0.25, seed=0)
    kept = np.flatnonzero(selector.pruning_pass(medium).position >= medium.n_types - sel.info["k_target"])
    assert set(medium.types_of(sel.indices)) <= set(kept)


def test_infeasible_n_names_the_bounds():
    types = _hand_case()
    with pytest.raises(ValueError, match=r"n=7"):
        DegreeSelector().select(types, 7, 0.5, seed=0)
    with pytest.raises(ValueError, match=r"n=7.*k_min=undefined, k_max=1"):
        DegreeSelector().select(TypeAssignment.from_lists([[0]] * 6 + [[]] * 2, ["x"] * 5), 7, 0.0, 0)
    with pytest.raises(ValueError, match="level"):
        DegreeSelector().select(types, 2, 1.5, seed=0)
    with pytest.raises(ValueError, match="fill"):
        DegreeSelector(fill="greedy").select(types, 2, 0.5, seed=0)


def test_random_selector_ignores_types():
    types = TypeAssignment.from_lists([[]] * 50, [])
    a = RandomSelector().select(types, 10, 0.3, seed=1)
    assert len(a.indices) == 10 and np.all(np.diff(a.indices) > 0) and a.k is None
    assert np.array_equal(a.indices, RandomSelector().select(types, 10, 0.9, seed=1).indices)
    assert not np.array_equal(a.indices, RandomSelector().select(types, 10, 0.3, seed=2).indices)


def _with_embeddings(n: int, seed: int) -> tuple[TypeAssignment, np.ndarray]:
    """Four tight clusters on orthogonal axes; cluster 0 holds ~91% of the samples."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(4, size=n, p=[0.91, 0.03, 0.03, 0.03])
    emb = np.eye(16)[labels] + 0.05 * rng.normal(size=(n, 16))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return TypeAssignment.from_lists([[]] * n, [], embeddings=emb.astype(np.float32)), labels


@pytest.mark.parametrize("selector", [KCenterSelector(), DeitaSelector(min_threshold=0.5, block_size=16)])
def test_embedding_selectors_contract(selector):
    types, _ = _with_embeddings(200, seed=0)
    for level in (0.0, 0.5, 1.0):
        sel = selector.select(types, 30, level, seed=4)
        assert len(sel.indices) == 30 and np.all(np.diff(sel.indices) > 0)
        assert np.array_equal(sel.indices, selector.select(types, 30, level, seed=4).indices)


def test_embedding_selectors_spread_out_with_level():
    types, labels = _with_embeddings(400, seed=1)
    for selector in (KCenterSelector(), DeitaSelector(min_threshold=0.5)):
        low, high = (selector.select(types, 6, level, seed=2).indices for level in (0.0, 1.0))
        assert len(set(labels[low])) < 4 and len(set(labels[high])) == 4  # random misses the small clusters
    deita = DeitaSelector(min_threshold=0.5).select(types, 6, 1.0, seed=2)
    assert deita.info["threshold"] == 0.5 and deita.info["n_filled"] == 2  # only 4 mutually dissimilar


def test_embedding_selectors_need_embeddings():
    with pytest.raises(ValueError, match="embeddings"):
        KCenterSelector().select(_hand_case(), 2, 0.5, seed=0)
