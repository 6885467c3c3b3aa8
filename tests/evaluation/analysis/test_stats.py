"""Numbers of the analysis statistics against hand derivations, OLS, scipy and known synthetic truths."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from diversity.selectors.degree import DEGREES
from evaluation.analysis.stats import bayes_linreg, bootstrap_ci, ols_slope, pearson, spearman

LEVELS = np.asarray(DEGREES)


def test_posterior_matches_hand_derivation_for_three_points():
    # x = (0, 1/2, 1), y = (1, 2, 4); flat intercept, slope | s2 ~ N(0, s2 / 1), s2 ~ InvGamma(1, 1).
    # Lambda_n = [[3, 3/2], [3/2, 9/4]] (det 9/2), X^T y = (7, 5) -> mean (11/6, 1);
    # b_n = 1 + (21 - 107/6) / 2 = 31/12, a_n = 5/2 -> b_n / a_n = 31/30, dof 5.
    fit = bayes_linreg([0.0, 0.5, 1.0], [1.0, 2.0, 4.0], prior_precision=1.0, a0=1.0, b0=1.0)
    assert fit.intercept == pytest.approx(11 / 6)
    assert fit.slope == pytest.approx(1.0)
    assert fit.dof == pytest.approx(5.0)
    assert fit.noise_scale2 == pytest.approx(31 / 30)
    assert fit.scale[1, 1] == pytest.approx(31 / 45)
    assert fit.scale[0, 1] == pytest.approx(-31 / 90)
    assert fit.slope_sd == pytest.approx(math.sqrt(31 / 27))  # sqrt(31/45 * 5/3)
    assert fit.intercept_sd == pytest.approx(math.sqrt(31) / 6)
    mean, sd = fit.band([0.5])
    assert mean[0] == pytest.approx(7 / 3)
    assert sd[0] == pytest.approx(math.sqrt(31 / 54))  # line variance 31/90, times 5/3
    _, predictive_sd = fit.band([0.5], predictive=True)
    assert predictive_sd[0] == pytest.approx(math.sqrt(124 / 54))


def test_flat_prior_limit_is_ordinary_least_squares():
    rng = np.random.default_rng(0)
    x = np.repeat(LEVELS, 3)
    y = 50 + 5 * x + rng.normal(0, 1, x.size)
    ols = sps.linregress(x, y)
    fit = bayes_linreg(x, y, prior_precision=0.0)
    assert fit.slope == pytest.approx(ols.slope, rel=1e-10)
    assert fit.intercept == pytest.approx(ols.intercept, rel=1e-10)
    reference = bayes_linreg(x, y, prior_precision=0.0, a0=-1.0, b0=0.0)
    assert reference.dof == pytest.approx(x.size - 2)
    assert math.sqrt(reference.scale[1, 1]) == pytest.approx(ols.stderr, rel=1e-10)
    assert math.sqrt(reference.scale[0, 0]) == pytest.approx(ols.intercept_stderr, rel=1e-10)
    assert reference.slope_sd == pytest.approx(ols.stderr * math.sqrt((x.size - 2) / (x.size - 4)))


def test_default_prior_is_weak_and_scale_free():
    rng = np.random.default_rng(1)
    x = np.repeat(LEVELS, 2)
    y = 2.0 - 0.05 * x + rng.normal(0, 0.01, x.size)
    fit, ols = bayes_linreg(x, y), sps.linregress(x, y)
    # Shrinkage towards 0 is about prior_precision / Sxx = 0.01 / 1.56: under 1% here.
    assert fit.slope == pytest.approx(ols.slope, rel=1e-2)
    assert abs(fit.slope) < abs(ols.slope)
    scaled = bayes_linreg(x, 1000 * y)
    assert scaled.slope == pytest.approx(1000 * fit.slope, rel=1e-9)
    assert scaled.slope_sd == pytest.approx(1000 * fit.slope_sd, rel=1e-9)


def test_one_sigma_band_is_calibrated_on_synthetic_truth():
    rng = np.random.default_rng(2)
    x = np.repeat(LEVELS, 2)
    inside_1sd = inside_2sd = 0
    trials = 300
    for _ in range(trials):
        fit = bayes_linreg(x, 50 + 5.35 * x + rng.normal(0, 1.0, x.size))
        inside_1sd += abs(fit.slope - 5.35) <= fit.slope_sd
        inside_2sd += abs(fit.slope - 5.35) <= 2 * fit.slope_sd
    assert 0.6 <= inside_1sd / trials <= 0.85  # Student-t sd: a bit over 68% inside one sd
    assert inside_2sd / trials >= 0.92


def test_bad_input_is_rejected_with_a_reason():
    with pytest.raises(ValueError, match="3 points but y has 2"):
        bayes_linreg([0, 1, 2], [1, 2])
    with pytest.raises(ValueError, match="two distinct x"):
        bayes_linreg([0.5, 0.5, 0.5], [1, 2, 3], prior_precision=0.0)
    with pytest.raises(ValueError, match="finite"):
        bayes_linreg([0, 1, 2], [1, float("nan"), 3])


def test_vectorised_correlations_match_scipy():
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=(5, 30)), 1)  # rounding makes ties, which Spearman must average
    y = x + rng.normal(size=(5, 30))
    for row in range(5):
        assert pearson(x[row], y[row]) == pytest.approx(sps.pearsonr(x[row], y[row])[0], abs=1e-12)
        assert spearman(x[row], y[row]) == pytest.approx(sps.spearmanr(x[row], y[row])[0], abs=1e-12)
    np.testing.assert_allclose(pearson(x, y), [sps.pearsonr(a, b)[0] for a, b in zip(x, y, strict=True)])
    assert np.isnan(pearson(np.ones(4), np.arange(4.0)))
    assert ols_slope(np.arange(5.0), 3 * np.arange(5.0) + 1) == pytest.approx(3.0)


def test_bootstrap_cis_cover_the_true_slope_and_correlation():
    rng = np.random.default_rng(4)
    slope, noise = 5.0, 1.0
    x = np.repeat(LEVELS, 5)
    # Population correlation of the fixed 7-level design: var(level) = 1/9.
    true_r = slope / 3 / math.sqrt(slope**2 / 9 + noise**2)
    trials, cover_slope, cover_r = 60, 0, 0
    for t in range(trials):
        y = 50 + slope * x + rng.normal(0, noise, x.size)
        lo, hi = bootstrap_ci(x, y, ols_slope, groups=x, n_boot=400, seed=t)
        cover_slope += lo <= slope <= hi
        lo, hi = bootstrap_ci(x, y, pearson, groups=x, n_boot=400, seed=t)
        cover_r += lo <= true_r <= hi
    assert cover_slope / trials >= 0.8  # percentile bootstrap under-covers a little at 35 runs
    assert cover_r / trials >= 0.75


def test_bootstrap_is_seeded_and_handles_small_designs():
    rng = np.random.default_rng(5)
    x = np.repeat(LEVELS, 2)
    y = x + rng.normal(0, 0.3, x.size)
    first = bootstrap_ci(x, y, spearman, groups=x, n_boot=300, seed=7)
    assert first == bootstrap_ci(x, y, spearman, groups=x, n_boot=300, seed=7)
    assert first != bootstrap_ci(x, y, spearman, groups=x, n_boot=300, seed=8)
    assert first[0] < sps.spearmanr(x, y)[0] < first[1]
    # One run per level: within-level resampling would be degenerate, so all runs are resampled.
    lo, hi = bootstrap_ci(LEVELS, LEVELS + rng.normal(0, 0.3, 7), pearson, groups=LEVELS, n_boot=300)
    assert lo < hi
    assert all(math.isnan(v) for v in bootstrap_ci([0, 1], [0, 1], pearson))
    # Three degrees x one seed (study 1): resamples of 3 give r = +-1 by construction, so no interval at all.
    assert all(math.isnan(v) for v in bootstrap_ci([0, 0.5, 1], [0.93, 0.925, 0.92], pearson, groups=[0, 0.5, 1]))
    # Mostly degenerate resamples (one outlying x among many equal ones): no interval rather than a biased one.
    x_rare = np.array([0.0] * 9 + [1.0])
    assert all(math.isnan(v) for v in bootstrap_ci(x_rare, x_rare + rng.normal(0, 0.1, 10), pearson, n_boot=300))
