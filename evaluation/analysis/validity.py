"""Metric validity: which post-hoc diversity metric predicts the scores, and does any beat response length?

For every metric x score pair over a sweep's runs (`collect_runs` rows), `metric_validity` reports:

- `r` with a percentile bootstrap CI over runs (`stats.bootstrap_ci`, runs resampled together);
- `partial_r`: the correlation after regressing both metric and score on the covariates present (log mean
  response tokens, log trained tokens; `pooled.COVARIATES`), with its t-test p-value (df = n - 2 - covariates);
- `loso_r2`: leave-one-strategy-out R^2 of `score ~ metric` (OLS fitted on the other strategies, predicting the
  held-out one): 1 - SSE / SSE of predicting the training folds' mean, so 0 = no better than the mean and
  negative = worse. Out-of-sample across strategies is the question a metric must answer: does it transfer
  to a selector it has not seen?
- `loso_r2_length`: the same for log mean response tokens alone (also ranked as a row of its own), and
  `beats_length` = loso_r2 > max(loso_r2_length, 0): better out of sample than length *and* than the mean.
  Covariates (`is_covariate`: mean tokens of either component, trained tokens, the length baseline) are ranked
  but get no verdict (`beats_length` None): a length measure beating length is not a diversity metric doing so.

Rows are ranked by `loso_r2` within each score. Cost: O(metrics x scores x (n_boot + strategies) x runs).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from core.cache import atomic_write
from evaluation.analysis.collect import BASE_MODEL, score_keys, write_csv
from evaluation.analysis.pooled import COVARIATES, covariate_values, primary_scores
from evaluation.analysis.stats import bootstrap_ci, pearson
from evaluation.analysis.tables import higher_is_better

__all__ = [
    "COLUMNS",
    "LENGTH",
    "is_covariate",
    "metric_validity",
    "validity_markdown",
    "validity_statement",
    "write_validity",
]

LENGTH = "log_mean_response_tokens"
ADJUST = ("log_mean_response_tokens", "log_trained_tokens")
COLUMNS = [
    "score", "rank", "metric", "n", "r", "r_low", "r_high", "partial_r", "partial_p", "adjusted_for",
    "loso_r2", "loso_r2_length", "beats_length", "n_strategies", "higher_is_better",
]  # fmt: skip
INTRO = (
    "Per metric x score, over the runs of a sweep: Pearson r with a 95% bootstrap CI over runs; the partial r "
    "after regressing metric and score on the covariates present (log mean response tokens, log trained tokens) "
    "with its t-test p (uncorrected); and the leave-one-strategy-out R^2 of `score ~ metric` (fit on the other "
    "strategies, predict the held-out one; 0 = no better than the training mean). A metric *beats length* when "
    "its R^2 exceeds both 0 and that of log mean response tokens alone (the `[length baseline]` row). Rows are "
    "ranked by R^2. Covariates (mean tokens of either component, trained tokens) are ranked but get no verdict."
)
DEFAULT_COMMAND = "python run.py mode=analyze sweep_dir=<sweep>"
MIN_RUNS = 5  # below this a correlation, let alone a held-out fit, says nothing


def _column(runs: Sequence[dict], key: str) -> np.ndarray:
    """The column as floats, NaN where a run lacks it or holds a non-number."""
    values = [r.get(key) for r in runs]
    return np.array([float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan for v in values])


def _residual(y: np.ndarray, design: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ coef


def partial_correlation(x: np.ndarray, y: np.ndarray, covariates: np.ndarray) -> tuple[float, float]:
    """Pearson r of x and y after regressing both on [1, covariates]; (r, two-sided p), NaN when undefined."""
    design = np.column_stack([np.ones(len(x)), covariates])
    rx, ry = _residual(x, design), _residual(y, design)
    if np.std(rx) < 1e-12 * max(1.0, np.std(x)) or np.std(ry) < 1e-12 * max(1.0, np.std(y)):
        return math.nan, math.nan  # x (or y) is explained by the covariates: e.g. length controlling for length
    r = float(pearson(rx, ry))
    df = len(x) - 2 - covariates.shape[1]
    if df < 1 or not math.isfinite(r):
        return r, math.nan
    t = r * math.sqrt(df / max(1e-300, 1.0 - r * r))
    return r, float(2 * sps.t.sf(abs(t), df))


def loso_r2(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    """Leave-one-group-out R^2 of y ~ x (OLS), against the training folds' mean; NaN with < 2 groups."""
    labels = np.unique(groups)
    if len(labels) < 2:
        return math.nan
    sse = sse_mean = 0.0
    for held in labels:
        test, train = groups == held, groups != held
        if np.ptp(x[train]) < 1e-12:
            return math.nan
        slope, intercept = np.polyfit(x[train], y[train], 1)
        sse += float(((y[test] - (intercept + slope * x[test])) ** 2).sum())
        sse_mean += float(((y[test] - y[train].mean()) ** 2).sum())
    return 1.0 - sse / sse_mean if sse_mean > 0 else math.nan


_COVARIATE_COLUMNS = frozenset(c for name in ADJUST for c in COVARIATES[name][0])


def is_covariate(metric: str) -> bool:
    """A size or length column rather than a diversity metric: the length baseline, `.../mean_tokens` of either
    component, or any column a `pooled.COVARIATES` length or trained-token covariate is read from."""
    return metric.endswith("[length baseline]") or metric.endswith("/mean_tokens") or metric in _COVARIATE_COLUMNS


def _metric_keys(runs: Sequence[dict]) -> list[str]:
    """Post-hoc metric columns (`subset/<component>/<metric>`) and type coverages (`subset/k/<name>`)."""
    return sorted({k for r in runs for k in r if k.startswith("subset/")})


def metric_validity(
    runs: Sequence[dict],
    scores: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per metric x score (see the module docstring for the columns), ranked by `loso_r2` per score.

    Args:
        runs: the analysis' run table (`collect_runs(sweep_dir)[0]`).
        scores: score columns; None = every `eval/...` and `heldout/...` key without its `ppl` twin.
        metrics: metric columns; None = every `subset/...` key.
        n_boot: bootstrap resamples for the CI of r.
        seed: bootstrap seed.

    Raises:
        ValueError: if there are no runs or no score column.
    """
    runs = [r for r in runs if r.get("strategy") != BASE_MODEL]  # untrained: its score owes nothing to a subset
    if not runs:
        raise ValueError("metric_validity: no runs")
    scores = list(scores) if scores is not None else primary_scores(score_keys(runs))
    if not scores:
        raise ValueError("metric_validity: the runs have no eval/... or heldout/... score")
    metrics = list(metrics) if metrics is not None else _metric_keys(runs)
    length = covariate_values(runs, LENGTH)
    if length is not None:  # the baseline as a row of its own, ranked like any metric
        baseline = f"log({length[1]}) [length baseline]"
        runs = [{**r, baseline: float(v)} for r, v in zip(runs, length[0], strict=True)]
        metrics.append(baseline)
    strategies = np.array([str(r.get("strategy", "")) for r in runs])
    rows: list[dict[str, Any]] = []
    for score in scores:
        y_all = _column(runs, score)
        per_score = []
        for metric in metrics:
            x_all = _column(runs, metric)
            keep = np.isfinite(x_all) & np.isfinite(y_all)
            kept = [r for r, k in zip(runs, keep, strict=True) if k]
            if keep.sum() < MIN_RUNS or np.ptp(x_all[keep]) < 1e-12:
                continue
            x, y, groups = x_all[keep], y_all[keep], strategies[keep]
            low, high = bootstrap_ci(x, y, pearson, n_boot=n_boot, seed=seed)
            present = [(name, found) for name in ADJUST if (found := covariate_values(kept, name)) is not None]
            covariates = np.column_stack([v for _, (v, _) in present]) if present else np.zeros((len(x), 0))
            adjusted = {column for _, (_, column) in present}
            adjusted_away = metric in adjusted or metric.endswith("[length baseline]")
            partial, p = (math.nan, math.nan) if adjusted_away or not present else partial_correlation(x, y, covariates)
            length_x = covariate_values(kept, LENGTH)
            per_score.append({
                "score": score, "metric": metric, "n": int(keep.sum()), "r": float(pearson(x, y)),
                "r_low": low, "r_high": high, "partial_r": partial, "partial_p": p,
                "adjusted_for": "+".join(column for _, (_, column) in present),
                "loso_r2": loso_r2(x, y, groups),
                "loso_r2_length": loso_r2(length_x[0], y, groups) if length_x is not None else math.nan,
                "n_strategies": len(np.unique(groups)), "higher_is_better": higher_is_better(score),
            })  # fmt: skip
        for row in per_score:
            both = math.isfinite(row["loso_r2_length"]) and math.isfinite(row["loso_r2"])
            verdict = both and not is_covariate(row["metric"])  # length (or size) is the yardstick, not a contender
            row["beats_length"] = bool(row["loso_r2"] > max(row["loso_r2_length"], 0.0)) if verdict else None
        per_score.sort(key=lambda r: (-r["loso_r2"] if math.isfinite(r["loso_r2"]) else math.inf, -abs(r["r"])))
        for rank, row in enumerate(per_score, start=1):
            row["rank"] = rank
        rows.extend(per_score)
    return rows


def validity_statement(rows: Sequence[dict]) -> list[str]:
    """Plain sentences, one per score: which metrics beat length alone out of sample, and which keep a
    partial correlation (p < 0.05) once length (and trained tokens) are controlled for."""
    lines = []
    for score in dict.fromkeys(r["score"] for r in rows):
        mine = [r for r in rows if r["score"] == score]
        base = next((r["loso_r2_length"] for r in mine if math.isfinite(r["loso_r2_length"])), math.nan)
        winners = [r for r in mine if r["beats_length"]]  # None for covariates: never a contender
        partial = [
            r for r in mine
            if math.isfinite(r["partial_p"]) and r["partial_p"] < 0.05 and not is_covariate(r["metric"])
        ]  # fmt: skip
        if not math.isfinite(base):
            lines.append(f"{score}: no length column in every run, so no metric is compared with length.")
            continue
        beat = ", ".join(f"{_short(r['metric'])} ({r['loso_r2']:.2f})" for r in winners) or "none"
        held = ", ".join(f"{_short(r['metric'])} ({r['partial_r']:+.2f})" for r in partial) or "none"
        tested = sum(math.isfinite(r["partial_p"]) and not is_covariate(r["metric"]) for r in mine)
        lines.append(
            f"{score}: log mean response length alone reaches leave-one-strategy-out R^2 = {base:.2f}; "
            f"metrics that beat it: {beat}. Partial r with p < 0.05 after controlling for "
            f"{mine[0]['adjusted_for'] or 'nothing'}: {held} (uncorrected, {tested} partial-correlation tests). "
            "Covariates (mean tokens of either component, trained tokens) are ranked but not counted as metrics."
        )
    return lines


def _short(metric: str) -> str:
    return metric.removeprefix("subset/")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def validity_markdown(rows: Sequence[dict], title: str) -> str:
    """A markdown section: the statement, then the ranked table (one block per score)."""
    out = [f"## {title}", ""] + [f"- {line}" for line in validity_statement(rows)] + [""]
    header = "| rank | metric | n | r [95% CI] | partial r (p) | LOSO R^2 | beats length |"
    for score in dict.fromkeys(r["score"] for r in rows):
        better = "higher" if rows[0]["higher_is_better"] else "lower"
        out += [f"### {score} ({better} is better)", "", header, "|---:|---|---:|---|---|---:|---|"]
        for r in (r for r in rows if r["score"] == score):
            ci = f"{_fmt(r['r'])} [{_fmt(r['r_low'])}, {_fmt(r['r_high'])}]"
            partial = f"{_fmt(r['partial_r'])} ({_fmt(r['partial_p'], 3)})"
            beats = "covariate" if is_covariate(r["metric"]) else _fmt(r["beats_length"])
            out.append(f"| {r['rank']} | {_short(r['metric'])} | {r['n']} | {ci} | {partial} | "
                       f"{_fmt(r['loso_r2'])} | {beats} |")  # fmt: skip
        out.append("")
    return "\n".join(out)


def combine_sweeps(sweeps: Mapping[str, Sequence[dict]]) -> list[dict]:
    """Runs of several sweeps as one table; each strategy label gets its sweep's name (`R-Micro [sweep]`), so a
    strategy run under another design (e.g. a length window) is its own group in the leave-one-out folds."""
    return [{**r, "strategy": f"{r.get('strategy')} [{name}]"} for name, runs in sweeps.items() for r in runs]


def write_validity(
    sections: Mapping[str, Sequence[dict]],
    out_dir: str | Path,
    stem: str = "metric_validity",
    command: str = DEFAULT_COMMAND,
    **kwargs: Any,
) -> dict[str, Any]:
    """`metric_validity` per section (title -> runs) into `<out_dir>/<stem>.csv` (a `section` column),
    `<stem>.png` (one row of panels per section) and `<stem>.md`, which names `command` as what regenerates it;
    atomic writes. Sections with too few runs (< MIN_RUNS, or one strategy) are named in the markdown instead
    of tabled."""
    from evaluation.analysis.plots import plot_validity, save_figure

    out = Path(out_dir)
    made_by = f"Regenerated by `{command}` (evaluation/analysis/validity.py)."
    rows, text = [], ["# Metric validity", "", f"{INTRO} {made_by}", ""]
    for title, runs in sections.items():
        mine = metric_validity(runs, **kwargs) if runs else []
        if not mine or max(r["n_strategies"] for r in mine) < 2:
            n_strat = len({r.get("strategy") for r in runs})
            why = f"{len(runs)} run(s) of {n_strat} strateg{'y' if n_strat == 1 else 'ies'}"
            need = f"needs >= {MIN_RUNS} runs of >= 2 strategies for leave-one-strategy-out R^2"
            text += [f"## {title}", "", f"- too few runs to rank metrics: {why} ({need}).", ""]
            continue
        rows += [{"section": title, **r} for r in mine]
        text.append(validity_markdown(mine, title))
    files = {"csv": write_csv(out / f"{stem}.csv", rows, ["section", *COLUMNS])}
    with atomic_write(out / f"{stem}.md") as fh:
        fh.write("\n".join(text) + "\n")
    files["md"] = out / f"{stem}.md"
    if rows:
        files["png"] = save_figure(plot_validity(rows), out / f"{stem}.png")
    return {"rows": rows, "files": {k: str(v) for k, v in files.items()}}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`python -m evaluation.analysis.validity SWEEP [SWEEP ...] --out DIR`: one section per sweep, plus all
    sweeps pooled when there are several (strategies tagged by sweep)."""
    import argparse

    from evaluation.analysis.collect import collect_runs

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sections = {sweep.name: collect_runs(sweep)[0] for sweep in args.sweeps}
    if len(sections) > 1:
        sections[" + ".join(sections)] = combine_sweeps(sections)
    command = " ".join(["python -m evaluation.analysis.validity", *map(str, args.sweeps), "--out", str(args.out)])
    options = {k: v for k, v in vars(args).items() if k not in ("sweeps", "out")}
    command += "".join(f" --{k.replace('_', '-')} {v}" for k, v in options.items() if v != parser.get_default(k))
    result = write_validity(sections, args.out, command=command, n_boot=args.n_boot, seed=args.seed)
    for title in sections:
        mine = [r for r in result["rows"] if r["section"] == title]
        print(f"[{title}]", *(validity_statement(mine) if mine else ["too few runs"]), sep="\n  ")
    print(f"wrote {', '.join(result['files'].values())}")
    return result


if __name__ == "__main__":
    main()
