"""The length lock: strata and quotas, quota-aware Algorithms 1 and 2, and locked subsets that match their reference
(statistically, against plain random subsets, over many seeds) while the degree still controls k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import ks_2samp

from core.cache import stable_hash
from diversity.extractors.micro import MicroExtractor
from diversity.lengths import LengthControl, length_drift, strata, stratum_of
from diversity.pools import Pool
from diversity.select import HeldoutSpec, select_subset
from diversity.selectors import DegreeSelector, RandomSelector, prune
from diversity.selectors.degree import DEGREES
from diversity.selectors.quota import Quota
from diversity.selectors.sampling import sample
from diversity.strategy import Strategy
from diversity.types import TypeAssignment


def _quota(lengths: np.ndarray, n: int, bins: int) -> Quota:
    edges, counts = strata(lengths, n, bins)
    return Quota(stratum_of(lengths, edges), counts)


def test_strata_have_equal_mass_and_quotas_sum_to_n():
    lengths = np.random.default_rng(0).lognormal(5, 0.8, size=1000).astype(int)
    edges, counts = strata(lengths, 48, 12, tail=0)
    assert counts.sum() == 48 and len(counts) == len(edges) + 1 == 12
    assert counts.max() - counts.min() <= 1  # equal-mass strata share n evenly
    share = np.bincount(stratum_of(lengths, edges)) / len(lengths)
    assert np.allclose(share, 1 / 12, atol=0.01)
    tied = strata(np.array([5] * 90 + [9] * 10), 20, 10, tail=0)  # ties merge strata; quotas follow the mass
    assert list(tied[1]) == [18, 2]
    edges, counts = strata(lengths, 100, 25)  # the longest 10% in one-sample strata: 10 of them
    assert counts.sum() == 100 and list(counts[-10:]) == [1] * 10 and counts[:-10].max() <= 5


def test_drift_reports_mean_quartiles_and_ks_against_an_independent_computation():
    rng = np.random.default_rng(1)
    ref, sub = rng.integers(10, 500, 800), rng.integers(50, 400, 60)
    drift = length_drift(sub, ref)
    assert drift["ks"] == pytest.approx(ks_2samp(sub, ref).statistic)
    assert drift["mean_drift"] == pytest.approx(sub.mean() / ref.mean() - 1)
    assert drift["quartiles"][1] == pytest.approx(np.median(sub))


def _types(n_samples: int, n_types: int, seed: int, lengths: np.ndarray) -> TypeAssignment:
    """Samples holding more types the longer they are (as real texts do), drawn Zipf-like from n_types."""
    rng = np.random.default_rng(seed)
    weights = 1 / np.arange(1, n_types + 1)
    weights /= weights.sum()
    rows = [np.unique(rng.choice(n_types, size=max(1, int(length // 10)), p=weights)) for length in lengths]
    indptr = np.concatenate(([0], np.cumsum([len(r) for r in rows])))
    matrix = sp.csr_matrix((np.ones(indptr[-1], dtype=np.uint8), np.concatenate(rows), indptr), (n_samples, n_types))
    return TypeAssignment(matrix=matrix, type_names=[f"t{i}" for i in range(n_types)])


@pytest.mark.parametrize("seed", range(4))
def test_quota_aware_pruning_keeps_every_stratum_fed_down_to_k_min(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.lognormal(4.5, 0.7, size=600)
    types = _types(600, 300, seed, lengths)
    quota = _quota(lengths, 60, 10)
    result = prune(types.matrix, quota)
    k_min = DegreeSelector._quota_k(types, result, quota)
    for k in result.valid_k[result.valid_k >= k_min]:
        assert np.all(quota.available(result.pool(int(k))) >= quota.counts), k
    assert np.array_equal(prune(types.matrix).death, prune(types.matrix, None).death)  # no quota: Algorithm 1
    unlocked = prune(types.matrix)
    assert result.valid_k.size and unlocked.valid_k.size


@pytest.mark.parametrize("fill", ["balanced", "random"])
def test_algorithm_2_meets_the_quota_exactly(fill):
    rng = np.random.default_rng(3)
    lengths = rng.lognormal(4.5, 0.7, size=500)
    types, quota = _types(500, 200, 3, lengths), _quota(lengths, 40, 8)
    for seed in range(20):
        chosen = sample(types.matrix, np.arange(500), 40, fill, np.random.default_rng(seed), quota=quota)
        assert len(np.unique(chosen)) == 40
        assert np.array_equal(quota.available(chosen), quota.counts)
    # A stratum too thin for a quota (count 0) is never drawn, however type-rich its members are.
    counts = quota.counts.copy()
    counts[-1], counts[0] = 0, counts[0] + counts[-1]
    thin = Quota(quota.stratum, counts)
    for seed in range(10):
        chosen = sample(types.matrix, np.arange(500), 40, fill, np.random.default_rng(seed), quota=thin)
        assert np.array_equal(thin.available(chosen), counts)


def test_locked_random_subsets_match_the_reference_better_than_plain_random_over_many_seeds():
    """The reference the issue names: plain random subsets of the same n drawn from the reference itself."""
    lengths = np.random.default_rng(5).lognormal(5, 0.9, size=2000)
    types = TypeAssignment(matrix=sp.csr_matrix((2000, 0), dtype=np.uint8), type_names=[])
    quota = _quota(lengths, 48, LengthControl().n_bins(48))
    locked, plain = [], []
    for seed in range(300):
        a = RandomSelector().select(types, 48, 1.0, seed, quota=quota).indices
        b = RandomSelector().select(types, 48, 1.0, seed).indices
        locked.append(ks_2samp(lengths[a], lengths).statistic)
        plain.append(ks_2samp(lengths[b], lengths).statistic)
    assert np.median(locked) <= np.median(plain) and np.max(locked) < np.median(plain) * 1.5
    # and a locked draw is still random within strata: different seeds give different subsets
    draws = {tuple(RandomSelector().select(types, 48, 1.0, s, quota=quota).indices) for s in range(10)}
    assert len(draws) == 10


def _pool(n: int, seed: int) -> Pool:
    """Texts whose number of distinct mid-frequency words grows with their length, like real responses."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(3000)]
    weights = 1 / np.arange(1, 3001) ** 0.9
    weights /= weights.sum()
    res = [" ".join(rng.choice(vocab, size=int(rng.lognormal(3.8, 0.8)) + 3, p=weights)) for _ in range(n)]
    ins = [f"question {i} " + " ".join(rng.choice(vocab, size=6, p=weights)) for i in range(n)]
    return Pool([f"p{i}" for i in range(n)], ins, res, "synthetic", stable_hash([ins, res]))


def _micro() -> Strategy:
    return Strategy(
        "micro_response", "response", MicroExtractor("whitespace", 2, 100, progress=False), DegreeSelector()
    )


@pytest.fixture(scope="module")
def locked_grid():
    pool = _pool(1500, 0)
    strategy = Strategy(
        "micro_response", "response", MicroExtractor("whitespace", 2, 100, progress=False), DegreeSelector()
    )
    length = LengthControl(lock=True, tokenizer="whitespace")
    return [select_subset(pool, strategy, 120, lv, 0, heldout=HeldoutSpec(50), length=length) for lv in DEGREES]


def _median_random_ks(reference: np.ndarray, n: int, draws: int = 400) -> float:
    """The issue's bar below n = 1,000: the median KS of plain random n-subsets of the reference."""
    rng = np.random.default_rng(0)
    return float(
        np.median([length_drift(rng.choice(reference, n, replace=False), reference)["ks"] for _ in range(draws)])
    )


def test_locked_degrees_hold_length_while_k_follows_its_target(locked_grid):
    ks = [s.selection.k for s in locked_grid]
    assert all(a <= b for a, b in zip(ks, ks[1:], strict=False)) and ks[-1] > ks[0]
    reference = np.array([len(r.split()) for r in locked_grid[0].candidates.responses])
    random_ks = _median_random_ks(reference, 120)
    assert 0.05 < random_ks < 0.12  # what a random subset of 120 drifts by chance
    for subset in locked_grid:
        sel, drift = subset.selection, subset.record["length"]["drift"]["response"]
        assert abs(sel.k - sel.k_target) <= max(1, 0.01 * sel.k_target)
        assert abs(drift["mean_drift"]) <= 0.02 and drift["ks"] <= random_ks, (drift["ks"], random_ks)
        assert len(subset.indices) == 120 and subset.selection.info["length_locked"]
        counts = subset.record["length"]["strata"]["quota"]
        assert sum(counts) == 120


def test_an_unlocked_degree_moves_length_and_a_locked_one_does_not(locked_grid):
    pool = locked_grid[0].pool
    strategy = Strategy(
        "micro_response", "response", MicroExtractor("whitespace", 2, 100, progress=False), DegreeSelector()
    )
    low = select_subset(
        pool, strategy, 120, 0.0, 0, heldout=HeldoutSpec(50), length=LengthControl(tokenizer="whitespace")
    )
    assert low.record["length"]["drift"]["response"]["mean_drift"] < -0.2  # degree 0 unlocked: much shorter
    assert abs(locked_grid[0].record["length"]["drift"]["response"]["mean_drift"]) <= 0.02


def _pool_with_long_and_short_instructions(n: int, seed: int) -> Pool:
    """Instructions whose distinct words grow with their length (so instruction degrees move it), responses too."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(3000)]
    weights = 1 / np.arange(1, 3001) ** 0.9
    weights /= weights.sum()

    def text(mean_log: float) -> str:
        return " ".join(rng.choice(vocab, size=int(rng.lognormal(mean_log, 0.8)) + 3, p=weights))

    ins, res = [text(3.0) for _ in range(n)], [text(3.8) for _ in range(n)]
    return Pool([f"p{i}" for i in range(n)], ins, res, "synthetic", stable_hash([ins, res]))


def test_instruction_bins_hold_instruction_length_too_while_response_length_and_k_stay_on_target():
    pool = _pool_with_long_and_short_instructions(1500, 1)
    strategy = Strategy(
        "micro_instruction", "instruction", MicroExtractor("whitespace", 2, 100, progress=False), DegreeSelector()
    )
    both = LengthControl(lock=True, instruction_bins=8, tokenizer="whitespace")
    response_only = LengthControl(lock=True, tokenizer="whitespace")
    free = select_subset(pool, strategy, 120, 0.0, 0, heldout=HeldoutSpec(50), length=response_only)
    assert free.record["length"]["drift"]["instruction"]["mean_drift"] < -0.4  # degree 0 picks short instructions
    reference = np.array([len(t.split()) for t in free.candidates.instructions])
    random_ks = _median_random_ks(reference, 120)
    for level in (0.0, 0.5, 1.0):
        subset = select_subset(pool, strategy, 120, level, 0, heldout=HeldoutSpec(50), length=both)
        drift, sel = subset.record["length"]["drift"], subset.selection
        assert abs(sel.k - sel.k_target) <= max(1, 0.01 * sel.k_target)
        assert abs(drift["response"]["mean_drift"]) <= 0.03 and len(subset.indices) == 120
        assert abs(drift["instruction"]["mean_drift"]) <= 0.15 and drift["instruction"]["ks"] <= random_ks, drift
        strata_block = subset.record["length"]["strata"]
        assert sum(strata_block["joint_quota"]) == 120 and len(strata_block["instruction_edges"]) == 7
        assert subset.record["length"]["control"]["instruction_bins"] == 8


def test_split_quota_keeps_each_outer_quota_and_follows_the_inner_mass():
    from diversity.lengths import split_quota

    outer = np.repeat([0, 1], 100)
    inner = np.concatenate([np.arange(100), np.full(100, 5)])  # stratum 1 holds only short instructions
    edges, joint, rows = split_quota(outer, np.array([10, 7]), inner, 4)
    table = joint.reshape(2, len(edges) + 1)
    assert table.sum(axis=1).tolist() == [10, 7]
    assert table[1, 0] == 7 and len(rows) == 200
