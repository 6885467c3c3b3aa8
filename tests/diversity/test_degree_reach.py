"""Degrees mean what they say: the level -> k map runs over what `n` samples can reach, every degree's subset
covers its target within 1%, degree 0 says when it is one fixed subset, and too narrow a range warns.

The matrices are realistic in shape: micro-like rows come from a Zipf token stream cut to the 10..500
frequency band (~40 types per sample), meso-like rows carry 1-8 Zipf tags. With n = 200 of 2,000 samples
neither pool can be covered, which is where the old map (k_max = all types) missed its targets by up to 25%.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from diversity.selectors import DegreeSelector
from diversity.selectors.degree import DEGREES
from diversity.types import TypeAssignment

LEVELS = list(DEGREES)


def micro_like(n_samples: int, vocab: int, seed: int) -> TypeAssignment:
    """Zipf token stream with log-normal lengths; types = tokens with 10..500 occurrences in the pool."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, vocab + 1) ** 1.05
    lengths = np.maximum(5, rng.lognormal(4.5, 0.9, n_samples).astype(int))
    tokens = rng.choice(vocab, size=int(lengths.sum()), p=weights / weights.sum())
    counts = np.bincount(tokens, minlength=vocab)
    in_band = (counts >= 10) & (counts <= 500)
    column = np.cumsum(in_band) - 1
    rows = np.repeat(np.arange(n_samples), lengths)[in_band[tokens]]
    cols = column[tokens[in_band[tokens]]]
    matrix = sp.csr_matrix((np.ones(len(cols), np.uint8), (rows, cols)), shape=(n_samples, int(in_band.sum())))
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return TypeAssignment(matrix, [f"w{i}" for i in range(matrix.shape[1])])


def meso_like(n_samples: int, n_tags: int, seed: int) -> TypeAssignment:
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_tags + 1)
    rows = [rng.choice(n_tags, size=rng.integers(1, 9), p=weights / weights.sum()) for _ in range(n_samples)]
    return TypeAssignment.from_lists(rows, [f"g{i}" for i in range(n_tags)])


CASES = {
    "micro n=200": (lambda: micro_like(2000, 30000, 0), 200),
    "micro n=600": (lambda: micro_like(2000, 30000, 0), 600),
    "meso n=200": (lambda: meso_like(2000, 3000, 0), 200),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fill", ["balanced", "random"])
def test_every_degree_hits_its_target(case, fill):
    make, n = CASES[case]
    types = make()
    selector = DegreeSelector(fill=fill)
    for seed in (0, 1):
        selections = [selector.select(types, n, level, seed) for level in LEVELS]
        targets = [s.k_target for s in selections]
        ks = [s.k for s in selections]
        for s in selections:
            assert len(s.indices) == n and len(np.unique(s.indices)) == n
            assert s.k == types.types_of(s.indices).size  # k is the subset's real coverage
            assert abs(s.k - s.k_target) <= 0.01 * s.k_target, (case, seed, s.level, s.k, s.k_target)
            assert s.info["k_target"] == s.k_target and s.info["n_distinct_k"] == 7
        assert targets[0] == ks[0] == selections[0].k_min and targets[-1] == ks[-1] == selections[0].k_max
        assert selections[0].k_max <= selections[0].info["k_pool"]
        assert all(a < b for a, b in zip(ks, ks[1:], strict=False)), ks


def test_k_max_is_what_n_samples_reach():
    """Small n from many types: k_max is the coverage of n samples, not the pool's type count."""
    types = micro_like(2000, 30000, 0)
    top = DegreeSelector().select(types, 200, 1.0, seed=3)
    assert top.k == top.k_max < top.info["k_pool"] == 2229  # 200 samples cannot cover the 10..500 band
    assert top.info["k_pruned"] == top.info["k_pool"]  # degree 1 is Algorithm 2 on the whole typed pool
    assert "whole typed pool" in top.info["k_max_definition"]
    roomy = DegreeSelector().select(types, 600, 1.0, seed=3)
    assert roomy.k == roomy.k_max == roomy.info["k_pool"]  # 600 samples reach every type


def test_degree0_is_one_subset_when_the_pool_is_exactly_n():
    types = micro_like(2000, 30000, 0)
    selector = DegreeSelector()
    low = [selector.select(types, 200, 0.0, seed) for seed in (0, 1, 2)]
    assert all(s.info["candidate_pool_size"] == 200 for s in low)
    assert all(s.info["subset_independent_of_seed"] is True and s.info["degree0_unique"] is True for s in low)
    assert all(np.array_equal(low[0].indices, s.indices) for s in low)
    mid = [selector.select(types, 200, 0.5, seed) for seed in (0, 1)]
    assert mid[0].info["subset_independent_of_seed"] is False and mid[0].info["degree0_unique"] is True
    assert not np.array_equal(mid[0].indices, mid[1].indices)


def test_degree0_varies_with_seed_when_its_pool_is_larger():
    """Macro-like: clusters of 50, 40, 30 and n = 60, so P_{k_min} holds the 90 samples of the two largest."""
    types = TypeAssignment.from_lists([[c] for c, size in enumerate([50, 40, 30]) for _ in range(size)], list("abc"))
    a, b = (DegreeSelector().select(types, 60, 0.0, seed) for seed in (0, 1))
    assert a.info["candidate_pool_size"] == 90 and a.info["subset_independent_of_seed"] is False
    assert a.info["degree0_unique"] is False and not np.array_equal(a.indices, b.indices)


def test_narrow_range_warns_and_counts_distinct_k(caplog):
    types = TypeAssignment.from_lists(
        [[c] for c, size in enumerate([50, 40, 30, 20]) for _ in range(size)], list("abcd")
    )
    with caplog.at_level(logging.WARNING, logger="diversity.selectors.degree"):
        sel = DegreeSelector().select(types, 60, 0.5, seed=0)
    assert (sel.k_min, sel.k_max, sel.info["n_distinct_k"]) == (2, 4, 3)
    assert "only 3 distinct k" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="diversity.selectors.degree"):
        DegreeSelector().select(micro_like(2000, 30000, 0), 600, 0.5, seed=0)
    assert "distinct k" not in caplog.text
