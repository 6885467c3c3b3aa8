"""One linear model for a whole sweep: every run in one fit, so all strategies share one residual sigma.

Fitting each strategy's three points alone leaves one residual degree of freedom, and the yes/no calls then
swing on chance; pooling the residual across strategies (and the random baseline) gives one noise estimate with
all the sweep's degrees of freedom. When the same seed indices run in every cell, the seed is a paired factor:
a random intercept per seed (statsmodels `MixedLM`, REML), so a seed that trains well everywhere no longer
counts as noise in every comparison.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["LinearFit", "fit_linear", "holm", "ols_batch", "t_pvalue"]


@dataclass(frozen=True)
class LinearFit:
    """Fixed effects of one linear model with their covariance and the noise it estimated."""

    names: tuple[str, ...]
    """Column names of the design, in order."""
    coef: np.ndarray
    """Estimates, one per column."""
    cov: np.ndarray
    """Covariance of `coef` (classical OLS, or MixedLM's REML covariance of the fixed effects)."""
    df: float
    """Residual degrees of freedom: `n - rank` (OLS) or `n - p - (seeds - 1)` (MixedLM, a conservative
    within-seed count used for the t reference)."""
    sigma: float
    """Residual sd: per run (OLS), or within seed (MixedLM)."""
    sigma_seed: float
    """sd of the seed random intercept (MixedLM); NaN for OLS, where seeds are not modelled."""
    n: int
    """Observations fitted."""
    method: str
    """`ols` or `mixedlm`."""

    def index(self, name: str) -> int:
        return self.names.index(name)

    def estimate(self, name: str) -> float:
        return float(self.coef[self.index(name)])

    def se(self, name: str) -> float:
        i = self.index(name)
        return float(np.sqrt(self.cov[i, i]))

    def pvalue(self, name: str) -> float:
        return t_pvalue(self.estimate(name), self.se(name), self.df)

    @property
    def sigma_run(self) -> float:
        """sd of one run around its cell's expected score: the noise a single run carries."""
        seed = 0.0 if not np.isfinite(self.sigma_seed) else self.sigma_seed
        return float(np.hypot(self.sigma, seed))


def t_pvalue(estimate: float, se: float, df: float) -> float:
    """Two-sided p of `estimate / se` against Student-t with `df` (NaN when se or df is unusable)."""
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0 and df > 0):
        return float("nan")
    return float(2.0 * sps.t.sf(abs(estimate / se), df))


def ols_batch(design: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Least squares for many responses at once (O(n p^2 + sims n p)): the simulations' workhorse.

    Args:
        design: `n x p` design of full column rank, shared by all responses, or `(..., n, p)`, one per response.
        y: `(..., n)` responses, one fit per leading index.

    Returns:
        `(coef (..., p), se (..., p), sigma (...), df)` with classical standard errors.

    Raises:
        ValueError: If the design is rank deficient or leaves no residual degree of freedom.
    """
    design = np.asarray(design, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = design.shape[-2:]
    rank = np.min(np.linalg.matrix_rank(design))
    if rank < p:
        raise ValueError(f"ols_batch: design of {p} columns has rank {rank} (a covariate is collinear)")
    if n <= p:
        raise ValueError(f"ols_batch: {n} observations for {p} parameters leave no residual degree of freedom")
    xtx_inv = np.linalg.inv(np.swapaxes(design, -1, -2) @ design)
    if design.ndim == 2:  # one design for every response: (X'X)^-1 X'y as one matrix product
        coef = y @ (design @ xtx_inv)
        resid = y - coef @ design.T
    else:  # one design per response (a covariate drawn per simulation)
        coef = np.einsum("...ij,...kj,...k->...i", xtx_inv, design, y)
        resid = y - np.einsum("...kj,...j->...k", design, coef)
    df = n - p
    sigma = np.sqrt((resid * resid).sum(axis=-1) / df)
    se = sigma[..., None] * np.sqrt(np.diagonal(xtx_inv, axis1=-2, axis2=-1))
    return coef, se, sigma, df


def fit_linear(
    design: np.ndarray, y: np.ndarray, names: Sequence[str], groups: Sequence | np.ndarray | None = None
) -> LinearFit:
    """Fit `y = design @ beta + noise` by OLS, or with a random intercept per group (seed) by REML.

    Args:
        design: `n x p` fixed-effect design of full column rank (no column for the seed).
        y: Responses, length n.
        names: Column names.
        groups: Seed label per row; None fits OLS. With groups, statsmodels `MixedLM` (REML, on standardised y,
            optimisers tried in turn) fits the seed intercept; its boundary warnings (seed variance estimated at
            0) are silenced because a zero seed variance is a legitimate answer, reported as `sigma_seed = 0`.

    Returns:
        The fit as a `LinearFit`.
    """
    design = np.asarray(design, dtype=float)
    y = np.asarray(y, dtype=float)
    if groups is None:
        coef, se, sigma, df = ols_batch(design, y)
        xtx_inv = np.linalg.inv(design.T @ design)
        cov = float(sigma) ** 2 * xtx_inv
        return LinearFit(tuple(names), coef, cov, float(df), float(sigma), float("nan"), y.size, "ols")
    labels = np.unique(np.asarray(groups), return_inverse=True)[1]
    sizes = np.bincount(labels)
    if sizes.size < 2 or sizes.max() < 2:  # a seed intercept is then confounded with the intercept or the residual
        raise ValueError(f"a seed intercept needs >= 2 seeds and a seed with >= 2 runs; got {sizes.size} seed(s), "
                         f"largest with {sizes.max()} run(s)")  # fmt: skip
    # Fitted on y centred and scaled to unit sd: a score whose noise is ~1e-3 of its level makes the optimiser's
    # Hessian singular on raw values. Centring shifts only the intercept, so it is done only when X spans 1.
    p = design.shape[1]
    ones = np.ones_like(y)
    intercept_weights = np.linalg.lstsq(design, ones, rcond=None)[0]
    centre = float(y.mean()) if np.allclose(design @ intercept_weights, ones) else 0.0
    scale = float(y.std()) or 1.0
    result = _mixedlm_reml(design, (y - centre) / scale, labels)
    coef = scale * np.asarray(result.fe_params) + centre * intercept_weights
    cov = scale**2 * np.asarray(result.cov_params())[:p, :p]
    df = float(y.size - p - (labels.max()))
    sigma = scale * float(np.sqrt(result.scale))
    sigma_seed = scale * float(np.sqrt(max(float(np.asarray(result.cov_re).ravel()[0]), 0.0)))
    return LinearFit(tuple(names), coef, cov, df, sigma, sigma_seed, y.size, "mixedlm")


MIXEDLM_OPTIMISERS = ("lbfgs", "bfgs", "cg", "powell", "nm")
"""Tried in turn until one converges to a finite likelihood and standard errors."""


def _mixedlm_reml(design: np.ndarray, z: np.ndarray, labels: np.ndarray):
    """statsmodels' REML fit of a seed random intercept, by the first optimiser in `MIXEDLM_OPTIMISERS` that
    converges; ValueError naming each optimiser's failure when none does."""
    import statsmodels.api as sm

    failures = []
    for optimiser in MIXEDLM_OPTIMISERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on the boundary, see fit_linear's docstring
            try:
                result = sm.MixedLM(z, design, groups=labels).fit(reml=True, method=[optimiser])
            except (np.linalg.LinAlgError, ValueError) as err:
                failures.append(f"{optimiser}: {err}")
                continue
        finite = np.isfinite(result.llf) and np.all(np.isfinite(np.asarray(result.cov_params())))
        if result.converged and finite:  # lbfgs can report convergence at an infinite likelihood
            return result
        failures.append(f"{optimiser}: did not converge")
    raise ValueError(f"the seed-intercept model did not converge ({'; '.join(failures)})")


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (family-wise error across the given tests); NaN entries stay NaN and do not count."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out
