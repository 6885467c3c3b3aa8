"""Statistics for the paper's analysis: Bayesian slope of score on degree, correlations, bootstrap CIs.

The paper reports, per strategy, the slope of the benchmark score against the degree of diversity from a
Bayesian linear regression, drawn with a 1-sigma band. Its table gives slopes "x 1e-2" of score per percent of
degree; with `level` in [0, 1] the slope per unit level is the same number (score change over the full range).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = [
    "BayesFit",
    "bayes_linreg",
    "bootstrap_ci",
    "ols_slope",
    "pearson",
    "spearman",
]


@dataclass(frozen=True)
class BayesFit:
    """Posterior of `y = intercept + slope * x + noise` under a Normal-Inverse-Gamma prior.

    The marginal posterior of `(intercept, slope)` is a bivariate Student-t with `dof` degrees of freedom,
    location `mean` and scale matrix `scale` (so its covariance is `scale * dof / (dof - 2)`).
    """

    mean: np.ndarray
    """Posterior mean `[intercept, slope]`."""
    scale: np.ndarray
    """2 x 2 Student-t scale matrix `b_n / a_n * Lambda_n^-1`."""
    dof: float
    """Degrees of freedom `2 a_n`."""
    n: int
    """Number of points fitted."""
    noise_scale2: float
    """`b_n / a_n`: posterior scale of the noise variance, used for predictive bands."""

    @property
    def intercept(self) -> float:
        return float(self.mean[0])

    @property
    def slope(self) -> float:
        return float(self.mean[1])

    def _sd_factor(self) -> float:
        # Student-t variance exists only for dof > 2; report an infinite sd rather than a false band.
        return float(np.sqrt(self.dof / (self.dof - 2.0))) if self.dof > 2 else float("inf")

    @property
    def slope_sd(self) -> float:
        return float(np.sqrt(self.scale[1, 1]) * self._sd_factor())

    @property
    def intercept_sd(self) -> float:
        return float(np.sqrt(self.scale[0, 0]) * self._sd_factor())

    def band(self, x: Sequence[float] | np.ndarray, predictive: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Mean and 1-sigma of the regression line at `x`.

        Args:
            x: Points at which to evaluate the line.
            predictive: False gives the posterior sd of the mean line (the paper's shaded band); True adds the
                noise term, giving the sd of a new observation at `x`.

        Returns:
            `(mean, sd)` arrays shaped like `x`.
        """
        x = np.asarray(x, dtype=float)
        design = np.stack([np.ones_like(x), x], axis=-1)
        mean = design @ self.mean
        quad = np.einsum("...i,ij,...j->...", design, self.scale, design)
        if predictive:
            # Predictive scale: (b_n / a_n) * (1 + x^T Lambda_n^-1 x); scale[.] already carries b_n / a_n.
            quad = quad + self.noise_scale2
        return mean, np.sqrt(quad) * self._sd_factor()


def bayes_linreg(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    prior_precision: float = 1e-2,
    prior_slope: float = 0.0,
    a0: float = 1e-2,
    b0: float | None = None,
) -> BayesFit:
    """Conjugate Bayesian linear regression of `y` on `x` (closed form, O(n)).

    Prior (Normal-Inverse-Gamma, weakly informative):
        - noise variance: `sigma^2 ~ InvGamma(a0, b0)`; by default `a0 = 0.01` and `b0 = a0 * var(y)`, i.e. a
          prior worth 0.02 pseudo-observations whose guess for the noise is the whole spread of `y`. Scaling
          `b0` by `var(y)` keeps the prior equally weak for win rates (~50) and losses (~2).
        - intercept: flat (improper), so the score's absolute level is never shrunk towards zero.
        - slope: `slope | sigma^2 ~ N(prior_slope, sigma^2 / prior_precision)`. With `x` = level in [0, 1] the
          default precision 0.01 is a prior slope sd of 10 noise sds over the full degree range and weighs
          about 0.03 of one observation.

    With `prior_precision = 0`, the posterior mean equals ordinary least squares; with additionally `a0 = -1`
    and `b0 = 0` (the reference prior `p(beta, sigma^2) ~ 1 / sigma^2`) the slope's Student-t scale equals the
    classical OLS standard error with `n - 2` degrees of freedom.

    Args:
        x: Regressor (degree of diversity), length n.
        y: Response (score), length n.
        prior_precision: Prior precision of the slope relative to the noise precision (>= 0).
        prior_slope: Prior mean of the slope.
        a0: Inverse-Gamma shape for the noise variance.
        b0: Inverse-Gamma scale; None means `a0 * var(y)`.

    Returns:
        The posterior as a `BayesFit`.

    Raises:
        ValueError: On mismatched or non-finite input, fewer than two distinct `x`, or improper posterior.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"bayes_linreg: x has {x.size} points but y has {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("bayes_linreg: x and y must be finite (drop missing scores before fitting)")
    if prior_precision < 0:
        raise ValueError(f"bayes_linreg: prior_precision must be >= 0, got {prior_precision}")
    if prior_precision == 0 and np.unique(x).size < 2:
        raise ValueError("bayes_linreg: need at least two distinct x values with a flat slope prior")
    if b0 is None:
        b0 = a0 * float(np.var(y)) if y.size > 1 else 0.0
    design = np.stack([np.ones_like(x), x], axis=1)
    prior_prec = np.diag([0.0, prior_precision])
    prior_mean = np.array([0.0, prior_slope])
    post_prec = prior_prec + design.T @ design
    rhs = prior_prec @ prior_mean + design.T @ y
    post_mean = np.linalg.solve(post_prec, rhs)
    a_n = a0 + y.size / 2.0
    b_n = b0 + 0.5 * (y @ y + prior_mean @ prior_prec @ prior_mean - post_mean @ post_prec @ post_mean)
    if a_n <= 0 or b_n < 0:
        raise ValueError(f"bayes_linreg: improper posterior (a_n={a_n:.3g}, b_n={b_n:.3g}); use more points")
    noise_scale2 = b_n / a_n
    scale = noise_scale2 * np.linalg.inv(post_prec)
    return BayesFit(mean=post_mean, scale=scale, dof=2.0 * a_n, n=int(y.size), noise_scale2=noise_scale2)


def ols_slope(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope along the last axis (vectorised over leading axes, for the bootstrap)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=-1) / (xc * xc).sum(axis=-1)


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis; NaN where either side is constant (vectorised for the bootstrap)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=-1) / np.sqrt((xc * xc).sum(axis=-1) * (yc * yc).sum(axis=-1))
    return np.clip(r, -1.0, 1.0)


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho along the last axis: Pearson r of average ranks (ties averaged, as scipy does)."""
    return pearson(sps.rankdata(x, axis=-1), sps.rankdata(y, axis=-1))


MIN_BOOTSTRAP_RUNS = 6
MAX_DEGENERATE_SHARE = 0.05


def bootstrap_ci(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    groups: Sequence | np.ndarray | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic(x, y)`, resampling runs within groups (O(n_boot * n log n)).

    Resampling within levels keeps the design (which degrees were run) fixed and varies only the seeds, which
    is the uncertainty the paper's repeated runs measure. When no group has two runs (one seed per level) that
    would give a zero-width interval, so the runs are resampled as one group instead.

    Args:
        x: First variable (e.g. level), length n.
        y: Second variable (e.g. score), length n.
        statistic: Vectorised function of `(x, y)` reducing the last axis, e.g. `pearson`, `spearman`,
            `ols_slope`.
        groups: Stratum label per run (e.g. level); None resamples all runs together.
        n_boot: Number of bootstrap resamples.
        seed: Seed of the local generator; the same inputs and seed give the same interval.
        confidence: Coverage of the two-sided interval.

    Returns:
        `(low, high)`; NaN below `MIN_BOOTSTRAP_RUNS` runs (a resample of 3 runs holds at most 3 distinct points,
        often 2, whose correlation is +-1 by construction: study 1's "95% CI [-1, -0.984]" with p 0.11) or when
        more than `MAX_DEGENERATE_SHARE` of the resamples have no defined statistic (dropping them would bias
        the interval).
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"bootstrap_ci: x has {x.size} points but y has {y.size}")
    if x.size < MIN_BOOTSTRAP_RUNS:
        return float("nan"), float("nan")
    labels = np.zeros(x.size, dtype=int) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    strata = [np.flatnonzero(labels == g) for g in np.unique(labels)]
    if max(len(s) for s in strata) < 2:
        strata = [np.arange(x.size)]
    rng = np.random.default_rng(seed)
    idx = np.concatenate([rng.choice(s, size=(n_boot, len(s)), replace=True) for s in strata], axis=1)
    values = statistic(x[idx], y[idx])
    values = values[np.isfinite(values)]
    if values.size == 0 or values.size < (1.0 - MAX_DEGENERATE_SHARE) * n_boot:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)
