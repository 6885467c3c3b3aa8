"""The paper's two tables from collected runs: slope per strategy and score, metric-score correlations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from evaluation.analysis.collect import BASE_MODEL, diversity_metric_keys, is_baseline, matching_random, score_keys
from evaluation.analysis.notes import MIN_LEVELS
from evaluation.analysis.stats import bayes_linreg, bootstrap_ci, pearson, spearman

__all__ = [
    "PAPER_ORDER",
    "fit_points",
    "higher_is_better",
    "metric_correlations",
    "slope_table",
    "sort_strategies",
    "widen",
]

PAPER_ORDER = ("I-Macro", "I-Meso", "I-Micro", "R-Macro", "R-Meso", "R-Micro")
STAT_COLUMNS = (
    "n_runs", "n_points", "n_collapsed", "n_levels", "runs_per_level", "missing",
    "slope", "slope_sd", "intercept", "intercept_sd",
    "pearson", "pearson_p", "pearson_lo", "pearson_hi",
    "spearman", "spearman_p", "spearman_lo", "spearman_hi",
    "best_level", "best_mean", "random_mean", "delta_vs_random", "beats_random",
)  # fmt: skip
NAN = float("nan")


def higher_is_better(score: str) -> bool:
    """Losses and perplexities improve downwards; every other score (win rate, accuracy...) upwards."""
    last = score.rsplit("/", 1)[-1].lower()
    return not any(word in last for word in ("loss", "ppl", "perplexity"))


def sort_strategies(names: Sequence[str]) -> list[str]:
    """Paper order (I-Macro ... R-Micro, each before its length-controlled variants), then any other strategy
    alphabetically, then the random baselines, then the base model."""
    rank = {name: i for i, name in enumerate(PAPER_ORDER)}
    return sorted(set(names), key=lambda s: (is_baseline(s), s == BASE_MODEL, rank.get(s.split(" [")[0], len(rank)), s))


def _values(runs: Sequence[dict], key: str) -> np.ndarray:
    out = np.full(len(runs), NAN)
    for i, row in enumerate(runs):
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[i] = float(value)
    return out


def _groups(runs: Sequence[dict]) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = {}
    for row in runs:
        groups.setdefault((row.get("model") or "", row.get("n")), []).append(row)
    return groups


def fit_points(x: np.ndarray, y: np.ndarray, same_subset: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The independent observations of one strategy: runs of a degree whose subset does not depend on the
    seed (`same_subset`, from selection.json `info.subset_independent_of_seed`) are one subset trained several
    times, so they are averaged into one point rather than counted as independent seeds.

    Returns:
        `(x, y, n_collapsed)`, the last being how many runs were merged into such points.
    """
    x, y, same_subset = np.asarray(x, float), np.asarray(y, float), np.asarray(same_subset, bool)
    keep = ~same_subset
    xs, ys, collapsed = [x[keep]], [y[keep]], 0
    for level in np.unique(x[same_subset]):
        members = same_subset & (x == level)
        xs.append(np.array([level]))
        ys.append(np.array([y[members].mean()]))
        collapsed += int(members.sum()) if members.sum() > 1 else 0
    order_x, order_y = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(order_x, kind="stable")
    return order_x[order], order_y[order], collapsed


def _strategy_stats(
    x: np.ndarray, y: np.ndarray, same_subset: np.ndarray, better_up: bool, n_boot: int, seed: int
) -> dict[str, Any]:
    """Slope, correlations and best level for one strategy's runs (finite x and y)."""
    levels, counts = np.unique(x, return_counts=True)
    low, high = int(counts.min()), int(counts.max())
    out: dict[str, Any] = {"n_runs": int(y.size), "n_levels": int(levels.size)}
    out["runs_per_level"] = str(low) if low == high else f"{low}-{high}"
    means = np.array([y[x == lv].mean() for lv in levels])
    best = int(np.argmax(means) if better_up else np.argmin(means))
    out.update(best_level=float(levels[best]), best_mean=float(means[best]))
    x, y, out["n_collapsed"] = fit_points(x, y, same_subset)
    out["n_points"] = int(y.size)
    if levels.size < MIN_LEVELS:
        out["missing"] = f"slope needs >= {MIN_LEVELS} degrees, has {levels.size}"
        return out
    fit = bayes_linreg(x, y)
    out.update(slope=fit.slope, slope_sd=fit.slope_sd, intercept=fit.intercept, intercept_sd=fit.intercept_sd)
    if np.ptp(y) > 0:
        r, r_p = sps.pearsonr(x, y)
        rho, rho_p = sps.spearmanr(x, y)
        r_lo, r_hi = bootstrap_ci(x, y, pearson, groups=x, n_boot=n_boot, seed=seed)
        s_lo, s_hi = bootstrap_ci(x, y, spearman, groups=x, n_boot=n_boot, seed=seed)
        out.update(pearson=float(r), pearson_p=float(r_p), pearson_lo=r_lo, pearson_hi=r_hi)
        out.update(spearman=float(rho), spearman_p=float(rho_p), spearman_lo=s_lo, spearman_hi=s_hi)
    return out


def slope_table(
    runs: Sequence[dict],
    scores: Sequence[str] | None = None,
    x: str = "level",
    n_boot: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Long table: one row per (model, n, strategy, score) with the statistics in `STAT_COLUMNS`.

    Per strategy and score: the Bayesian slope of score on `x` with its posterior sd (see `bayes_linreg` for
    the prior), Pearson and Spearman with scipy p-values and 95% bootstrap CIs resampling runs within levels,
    the level with the best mean score (direction from `higher_is_better`), and the comparison with the
    random baseline of the same model, n and length control (`matching_random`): its mean, `delta_vs_random =
    best_mean - random_mean`, and `beats_random`. Runs lacking a score are left out of that score only. Cost
    O(strategies * scores * n_boot * runs).

    Runs of one degree that share one subset whatever the seed (`fit_points`) enter the slope and correlations
    as one averaged point (`n_points` of `n_runs`; `n_collapsed` runs merged). No slope is fitted below
    `MIN_LEVELS` degrees; `missing` then says so (and names an absent random baseline), so a table never
    shows a bare blank. `runs_per_level` is the number of runs per degree (`2` or a range `1-3`).
    """
    scores = list(scores) if scores is not None else score_keys(runs)
    rows = []
    for (model, n), group in _groups(runs).items():
        by_strategy: dict[str, list[dict]] = {}
        for row in group:
            by_strategy.setdefault(row["strategy"], []).append(row)
        for score in scores:
            better_up = higher_is_better(score)
            for strategy in sort_strategies(by_strategy):
                random_label = matching_random(strategy, by_strategy)
                random_y = _values(by_strategy.get(random_label, []), score)
                random_y = random_y[np.isfinite(random_y)]
                random_mean = float(random_y.mean()) if random_y.size else NAN
                members = by_strategy[strategy]
                xs, ys = _values(members, x), _values(members, score)
                same = np.array([bool(r.get("subset_independent_of_seed")) for r in members], dtype=bool)
                ok = np.isfinite(xs) & np.isfinite(ys)
                if not ok.any():
                    continue
                stats = _strategy_stats(xs[ok], ys[ok], same[ok], better_up, n_boot, seed)
                stats["random_mean"] = random_mean
                if is_baseline(strategy):
                    stats["best_level"] = NAN  # a baseline ignores the level; a "best" one would be noise
                    stats["best_mean"] = float(ys[ok].mean())  # so its mean is over all its runs
                    stats.pop("missing", None)  # nor does it have a slope to miss
                    if strategy != random_label:
                        stats["random_mean"] = NAN
                elif not math.isfinite(random_mean):
                    stats["missing"] = "; ".join(filter(None, [stats.get("missing"), "no finished random run"]))
                if not is_baseline(strategy) and math.isfinite(random_mean):
                    delta = stats["best_mean"] - random_mean
                    stats["delta_vs_random"] = delta
                    stats["beats_random"] = bool(delta > 0 if better_up else delta < 0)
                rows.append({"model": model, "n": n, "strategy": strategy, "score": score, **stats})
    return rows


def widen(long_rows: Sequence[dict]) -> list[dict[str, Any]]:
    """Pivot the long slope table to the paper's layout: rows strategies, columns `<score>/<statistic>`."""
    wide: dict[tuple, dict[str, Any]] = {}
    for row in long_rows:
        key = (row["model"], row["n"], row["strategy"])
        out = wide.setdefault(key, {"model": row["model"], "n": row["n"], "strategy": row["strategy"]})
        for stat in STAT_COLUMNS:
            out[f"{row['score']}/{stat}"] = row.get(stat, NAN)
    return list(wide.values())


def metric_correlations(
    runs: Sequence[dict], scores: Sequence[str] | None = None, metrics: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Pearson r of each post-hoc diversity metric with each score across all runs (the paper's Figure 4).

    Returns:
        One row per metric name (`subset/<component>/<metric>` without the prefix) with columns
        `<score>/instruction` and `<score>/response` (NaN where fewer than three runs have both values or a
        side is constant), plus `<score>/<component>/n` run counts.
    """
    runs = [r for r in runs if r.get("strategy") != BASE_MODEL]  # untrained: its score owes nothing to a subset
    scores = list(scores) if scores is not None else score_keys(runs)
    metrics = list(metrics) if metrics is not None else diversity_metric_keys(runs)
    table: dict[str, dict[str, Any]] = {}
    for key in metrics:
        parts = key.split("/")
        if len(parts) < 3:
            continue
        component, name = parts[1], "/".join(parts[2:])
        row = table.setdefault(name, {"metric": name})
        m = _values(runs, key)
        for score in scores:
            y = _values(runs, score)
            ok = np.isfinite(m) & np.isfinite(y)
            usable = ok.sum() >= 3 and np.ptp(m[ok]) > 0 and np.ptp(y[ok]) > 0
            row[f"{score}/{component}"] = float(sps.pearsonr(m[ok], y[ok])[0]) if usable else NAN
            row[f"{score}/{component}/n"] = int(ok.sum())
    return [table[name] for name in sorted(table)]
