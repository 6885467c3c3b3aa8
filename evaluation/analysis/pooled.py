"""Pooled and covariate-adjusted slope tables: one noise model per sweep, sign calls Holm-corrected.

For each (model, n) and score one linear model holds every run: an intercept per strategy (the random baseline
included, so its seeds inform the noise), a slope on the degree per non-random strategy, and optionally one
covariate shared by all strategies (log mean response tokens by default; log trained tokens; response token
entropy). A strategy's slope adjusted for length asks whether its degree moves the score beyond what its
subsets' length alone predicts. Seeds enter as a random intercept when the same seed indices run in every cell
(`seeds_paired`). Each table's p-values are Holm-corrected across all its strategies and scores, and the call
(`better` / `worse` / `within noise`) is read from the corrected p at `ALPHA`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from evaluation.analysis.collect import is_baseline, is_random
from evaluation.analysis.linear import LinearFit, fit_linear, holm

__all__ = [
    "ALPHA",
    "COVARIATES",
    "build_design",
    "covariate_values",
    "entropy_table",
    "noise_table",
    "pooled_slopes",
    "primary_scores",
    "seeds_paired",
]

ALPHA = 0.05
# Covariate name -> (run-table columns tried in order, transform). The first column present in every run is used.
COVARIATES: dict[str, tuple[tuple[str, ...], str]] = {
    "log_mean_response_tokens": (("mean_response_tokens", "subset/response/mean_tokens"), "log"),
    "log_trained_tokens": (("trained_tokens", "train/supervised_tokens", "train/tokens"), "log"),
    "response_entropy": (("response_entropy", "subset/response/token_entropy"), "identity"),
}
ENTROPY = "response_entropy"
NAN = float("nan")


def primary_scores(scores: Sequence[str]) -> list[str]:
    """Scores without `.../ppl` twins of a present `.../loss` (exp of the same number would double a Holm family)."""
    present = set(scores)
    return [s for s in scores if not (s.endswith("ppl") and s[: -len("ppl")] + "loss" in present)]


def _num(row: dict, key: str) -> float:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else NAN


def covariate_values(runs: Sequence[dict], name: str) -> tuple[np.ndarray, str] | None:
    """The covariate per run and the column it came from; None when no candidate column is in every run or
    it does not vary (a constant covariate is the intercept: nothing to adjust for)."""
    columns, transform = COVARIATES[name]
    for column in columns:
        raw = np.array([_num(r, column) for r in runs])
        if raw.size and np.isfinite(raw).all():
            if transform == "log":
                if (raw <= 0).any():
                    continue
                raw = np.log(raw)
            return (raw, column) if np.ptp(raw) > 1e-12 else None
    return None


def seeds_paired(runs: Sequence[dict]) -> bool:
    """True when >= 2 seed indices run in every (strategy, level) cell of the degree design, so seed is a paired
    factor; baselines (random, base model) are not cells of that design and do not decide it."""
    cells: dict[tuple, set] = {}
    for r in runs:
        if not is_baseline(r["strategy"]):
            cells.setdefault((r["strategy"], r["level"]), set()).add(r.get("seed"))
    if len(cells) < 2:
        return False
    common = set.intersection(*cells.values())
    return len(common - {None}) >= 2


def _collapse(runs: Sequence[dict]) -> list[dict]:
    """Runs of a degree whose subset is the same whatever the seed become one averaged observation (unpaired)."""
    out, merged = [], {}
    for r in runs:
        if r.get("subset_independent_of_seed"):
            merged.setdefault((r["strategy"], r["level"]), []).append(r)
        else:
            out.append(r)
    for members in merged.values():
        avg = dict(members[0])
        for key, value in members[0].items():
            if isinstance(value, float):
                avg[key] = float(np.mean([_num(m, key) for m in members]))
        avg["seed"] = None
        out.append(avg)
    return out


def build_design(
    runs: Sequence[dict], x: str = "level", covariate: np.ndarray | None = None, min_levels: int = 2
) -> tuple[np.ndarray, list[str], list[str]]:
    """Columns `<strategy>` (intercept), `<strategy>:slope` (x for that strategy's runs, for non-random strategies
    with >= `min_levels` distinct x) and `covariate` (centred). Returns `(design, names, sloped strategies)`."""
    strategies = sorted({r["strategy"] for r in runs})
    xs = np.array([_num(r, x) for r in runs])
    who = np.array([r["strategy"] for r in runs])
    columns, names, sloped = [], [], []
    for s in strategies:
        columns.append((who == s).astype(float))
        names.append(s)
    for s in strategies:
        mine = who == s
        if not is_baseline(s) and np.unique(xs[mine]).size >= min_levels:
            columns.append(np.where(mine, xs, 0.0))
            names.append(f"{s}:slope")
            sloped.append(s)
    if covariate is not None:
        columns.append(covariate - covariate.mean())
        names.append("covariate")
    return np.stack(columns, axis=1), names, sloped


def _fit(runs: Sequence[dict], score: str, x: str, covariate: str | None) -> tuple[LinearFit, list[str], list[dict]]:
    """Fit one pooled model; raises ValueError with the reason when it cannot be fitted."""
    runs = [r for r in runs if math.isfinite(_num(r, score)) and math.isfinite(_num(r, x))]
    paired = seeds_paired(runs)
    if not paired:
        runs = _collapse(runs)
    cov = None
    if covariate is not None:
        found = covariate_values(runs, covariate)
        if found is None:
            raise ValueError(f"covariate {covariate} missing from some runs or constant")
        cov = found[0]
    design, names, sloped = build_design(runs, x, cov)
    y = np.array([_num(r, score) for r in runs])
    groups = [r.get("seed") for r in runs] if paired else None
    fit = fit_linear(design, y, names, groups)
    if not fit.sigma > 1e-9 * max(float(np.abs(y).max()), 1e-300):  # else every t is ~1e10
        raise ValueError(f"no residual noise (sigma {fit.sigma:.2g} on {fit.df:.0f} df): the runs repeat each other "
                         "exactly, so no slope can be tested")  # fmt: skip
    return fit, sloped, runs


def _call(p_adj: float, slope: float, better_up: bool) -> str:
    if not math.isfinite(p_adj) or p_adj >= ALPHA:
        return "within noise"
    return "better" if (slope > 0) == better_up else "worse"


def _design_groups(runs: Sequence[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for r in runs:
        out.setdefault((r.get("model") or "", r.get("n")), []).append(r)
    return out


def _slope_rows(
    runs: Sequence[dict], scores: Sequence[str], x: str, adjustments: Sequence[str | None], entropy_range: bool
) -> list[dict[str, Any]]:
    from evaluation.analysis.tables import higher_is_better

    rows: list[dict[str, Any]] = []
    for (model, n), group in _design_groups(runs).items():
        for adjustment in adjustments:
            family = []
            for score in scores:
                base = {"model": model, "n": n, "score": score, "adjustment": adjustment or "none"}
                try:
                    fit, sloped, used = _fit(group, score, x, adjustment)
                except ValueError as err:
                    family.append({**base, "strategy": "", "missing": str(err)})
                    continue
                has_cov = "covariate" in fit.names
                for s in sloped:
                    mine = [r for r in used if r["strategy"] == s]
                    row = {
                        **base, "strategy": s, "slope": fit.estimate(f"{s}:slope"), "se": fit.se(f"{s}:slope"),
                        "df": fit.df, "p": fit.pvalue(f"{s}:slope"), "sigma": fit.sigma, "sigma_seed": fit.sigma_seed,
                        "method": fit.method, "n_points": len(mine),
                        "covariate_coef": fit.estimate("covariate") if has_cov else NAN,
                        "covariate_se": fit.se("covariate") if has_cov else NAN,
                    }  # fmt: skip
                    if entropy_range:
                        xs = [_num(r, x) for r in mine]
                        row.update(x_lo=min(xs), x_hi=max(xs), x_span=max(xs) - min(xs))
                    row["better_up"] = higher_is_better(score)
                    family.append(row)
            adjusted = holm([r.get("p", NAN) for r in family])
            for row, p_adj in zip(family, adjusted, strict=True):
                if "slope" in row:
                    row["p_holm"] = float(p_adj)
                    row["call"] = _call(float(p_adj), row["slope"], row.pop("better_up"))
            rows.extend(family)
    return rows


def _adjustments(runs: Sequence[dict], names: Sequence[str]) -> list[str | None]:
    return [None] + [name for name in names if covariate_values(runs, name) is not None]


def pooled_slopes(
    runs: Sequence[dict], scores: Sequence[str], x: str = "level", covariates: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Slope of score on degree per strategy from the pooled model, unadjusted and adjusted for each covariate
    present (default all of `COVARIATES`). One row per (model, n, adjustment, score, strategy): `slope`, `se`,
    `df`, `p`, `p_holm` (Holm across the strategies and scores of that adjustment), `call`, `sigma`,
    `sigma_seed`, `method`, `covariate_coef` +/- `covariate_se` (score per unit covariate). A model that cannot
    be fitted gives a row with `missing` saying why. Cost O(adjustments * scores * n p^2)."""
    names = list(COVARIATES) if covariates is None else list(covariates)
    return _slope_rows(runs, scores, x, _adjustments(runs, names), entropy_range=False)


def entropy_table(runs: Sequence[dict], scores: Sequence[str]) -> list[dict[str, Any]]:
    """Effects per bit of response token entropy: the pooled model with entropy (bits) as the x of each strategy,
    unadjusted and adjusted for log mean response tokens, with the achieved range `x_lo`..`x_hi` (`x_span` bits).
    Empty when the runs carry no entropy column."""
    found = covariate_values(runs, ENTROPY)
    if found is None:
        return []
    column = found[1]
    runs = [{**r, "_entropy": _num(r, column)} for r in runs]
    adjustments = [None] + (["log_mean_response_tokens"] if covariate_values(runs, "log_mean_response_tokens") else [])
    rows = _slope_rows(runs, scores, "_entropy", adjustments, entropy_range=True)
    for row in rows:
        row["entropy_column"] = column
    return rows


def noise_table(runs: Sequence[dict], scores: Sequence[str]) -> list[dict[str, Any]]:
    """Per (model, n, score) the sweep's noise: pooled residual sd and its df, seed sd (MixedLM when paired,
    else the random runs' sd), the run-level sd used for the +/- sigma_seed band, the random mean, and how well
    log mean response tokens alone fits all runs (`sigma_length_only`, one line for every strategy)."""
    rows = []
    for (model, n), group in _design_groups(runs).items():
        for score in scores:
            row: dict[str, Any] = {"model": model, "n": n, "score": score}
            try:
                fit, _, used = _fit(group, score, "level", None)
            except ValueError as err:
                rows.append({**row, "missing": str(err)})
                continue
            row.update(
                method=fit.method, n_runs=len(used), sigma_pooled=fit.sigma, df=fit.df, sigma_seed_re=fit.sigma_seed,
                sigma_run=fit.sigma_run, **_random_spread(group, score),
            )  # fmt: skip
            length = covariate_values(used, "log_mean_response_tokens")
            if length is not None:
                y = np.array([_num(r, score) for r in used])
                design = np.stack([np.ones_like(length[0]), length[0]], axis=1)
                only = fit_linear(design, y, ["intercept", "log_length"])
                row.update(
                    sigma_length_only=only.sigma, df_length_only=only.df,
                    length_coef=only.estimate("log_length"), length_se=only.se("log_length"),
                )  # fmt: skip
            rows.append(row)
    return rows


def _random_spread(runs: Sequence[dict], score: str) -> dict[str, Any]:
    """The random baselines' mean (when there is one baseline; per-window baselines differ by design), their sd
    pooled within baselines, and how many runs they have."""
    groups: dict[str, np.ndarray] = {}
    for label in {r["strategy"] for r in runs if is_random(r["strategy"])}:
        values = np.array([_num(r, score) for r in runs if r["strategy"] == label])
        groups[label] = values[np.isfinite(values)]
    runs_total = sum(v.size for v in groups.values())
    df = sum(max(v.size - 1, 0) for v in groups.values())
    pooled_var = sum(float(((v - v.mean()) ** 2).sum()) for v in groups.values() if v.size > 1) / df if df else NAN
    (only,) = groups.values() if len(groups) == 1 else (np.array([]),)
    return {
        "random_mean": float(only.mean()) if only.size else NAN,
        "random_sd": float(np.sqrt(pooled_var)),
        "random_runs": int(runs_total),
    }
