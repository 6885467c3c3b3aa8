"""`analyze`: sweep dir -> tables, plots, optional W&B summary run, printed headline numbers."""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.cache import atomic_write
from evaluation.analysis.collect import collect_runs, drop_repeated_baselines, is_baseline, score_keys, write_csv
from evaluation.analysis.factorial import FactorialDesign, find_design
from evaluation.analysis.notes import format_pm, format_value, score_label, sweep_notes
from evaluation.analysis.plots import COMPONENTS, correlation_heatmap, factorial_plot, save_figure, score_vs_degree
from evaluation.analysis.pooled import entropy_table, noise_table, pooled_slopes, primary_scores
from evaluation.analysis.pooled_report import ENTROPY_COLUMNS, NOISE_COLUMNS, POOLED_COLUMNS, pooled_notes, print_pooled
from evaluation.analysis.tables import STAT_COLUMNS, metric_correlations, slope_table, widen

__all__ = ["analyze", "log_to_wandb", "print_headline"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("_")


def analyze(
    sweep_dir: str | Path,
    out_dir: str | Path | None = None,
    wandb_cfg: Mapping[str, Any] | None = None,
    scores: Sequence[str] | None = None,
    x: str = "level",
    n_boot: int = 2000,
    seed: int = 0,
    quiet: bool = False,
) -> dict[str, Any]:
    """Turn a finished (or partly finished) sweep into the paper's slope table, correlation table and plots.

    Writes into `out_dir` (default `<sweep_dir>/analysis/`), each file atomically:
    `runs.csv` (one row per finished run), `incomplete.csv` (unfinished or failed runs and why),
    `slopes.csv` (rows strategies I-Macro ... R-Micro, Random, per model and n; columns
    `<score>/<statistic>`), `slopes_long.csv` (one row per strategy and score), `metric_correlations.csv`
    (rows post-hoc metrics, columns `<score>/instruction|response`), `pooled_slopes.csv` (one noise model per
    sweep: slopes with a residual sigma pooled across strategies, a seed random intercept when seeds are paired,
    unadjusted and adjusted for each covariate present, Holm-corrected calls; `evaluation.analysis.pooled`),
    `entropy_slopes.csv` (effects per bit of response token entropy with the achieved range), `noise.csv` (pooled
    sigma, seed sd, how well log length alone fits), `factorial.csv` and `factorial.png` (for a window x degree
    design: the fit, the sign-flip tests and every paired seed drawn), `baselines.csv` (base model, random per
    window), `score_vs_degree_<score>.png` (Figure 3 style with a
    +/- sigma_seed band around each random mean, one per score and model/n), `metric_correlations.png` (Figure
    4 style heatmap; left out, with a note, while no metric-score pair has 3 runs with varying values) and
    `notes.txt` (what a small or partial sweep lacks: degrees for a slope, the random baseline, runs per degree,
    runs merged into one point; what the pooled tables rest on).

    Args:
        sweep_dir: Directory holding the run dirs (any depth).
        out_dir: Where outputs go; None means `<sweep_dir>/analysis`.
        wandb_cfg: `{project, group, entity?, analysis_name?, mode?, offline?}` (the `logger=wandb` config
            works as is); when given, the tables and plots are also logged to one W&B run with
            `job_type="analysis"` (mode from `WANDB_MODE` unless `mode` or `offline` says otherwise).
        scores: Score columns to analyse; None means every `eval/...` and `heldout/...` key found.
        x: Degree column regressed on (`level` in [0, 1], so slopes read like the paper's "x 1e-2 per %").
        n_boot: Bootstrap resamples for the correlation CIs.
        seed: Seed of the bootstrap.
        quiet: Skip printing.

    Returns:
        `{"out_dir", "n_runs", "n_incomplete", "incomplete", "scores", "files", "slopes", "pooled", "entropy",
        "noise", "notes"}` where `slopes` is the per-strategy Bayesian long table (one dict per model, n, strategy
        and score, with `slope`, `slope_sd`, `pearson`...) and `pooled`, `entropy`, `noise` the pooled tables.

    Raises:
        ValueError: If no run under `sweep_dir` finished, naming how many were incomplete.
    """
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir is not None else sweep_dir / "analysis"
    runs, incomplete = collect_runs(sweep_dir)
    runs, repeat_notes = drop_repeated_baselines(runs)
    files: dict[str, Path] = {"incomplete": write_csv(out / "incomplete.csv", incomplete, ["run_dir", "reason"])}
    if not quiet and incomplete:
        print(f"[analysis] {len(incomplete)} incomplete run(s) (listed in {files['incomplete']}):")
        for row in incomplete:
            print(f"  - {row['run_dir']}: {row['reason']}")
    if not runs:
        raise ValueError(f"no finished run under {sweep_dir} ({len(incomplete)} incomplete)")
    scores = list(scores) if scores is not None else score_keys(runs)
    if not scores:
        raise ValueError(f"runs under {sweep_dir} have no eval/... or heldout/... metric in metrics.json")

    long_rows = slope_table(runs, scores, x=x, n_boot=n_boot, seed=seed)
    correlations = metric_correlations(runs, scores)
    corr_columns = ["metric"] + [f"{s}/{c}" for s in scores for c in COMPONENTS]
    corr_columns += [f"{s}/{c}/n" for s in scores for c in COMPONENTS]
    files["runs"] = write_csv(out / "runs.csv", runs)
    from evaluation.analysis.validity import write_validity  # which metric predicts the scores beyond length

    validity = write_validity({Path(sweep_dir).name: runs}, out, n_boot=n_boot, seed=seed)
    files.update({f"metric_validity/{k}": Path(v) for k, v in validity["files"].items()})
    files["slopes"] = write_csv(out / "slopes.csv", widen(long_rows))
    long_columns = ["model", "n", "strategy", "score", *STAT_COLUMNS]
    files["slopes_long"] = write_csv(out / "slopes_long.csv", long_rows, long_columns)
    files["metric_correlations"] = write_csv(out / "metric_correlations.csv", correlations, corr_columns)
    primary = primary_scores(scores)
    pooled, entropy, noise = pooled_slopes(runs, primary, x=x), entropy_table(runs, primary), noise_table(runs, scores)
    files["pooled_slopes"] = write_csv(out / "pooled_slopes.csv", pooled, POOLED_COLUMNS)
    files["entropy_slopes"] = write_csv(out / "entropy_slopes.csv", entropy, ENTROPY_COLUMNS)
    files["noise"] = write_csv(out / "noise.csv", noise, NOISE_COLUMNS)
    band = {(r["model"], r["n"], r["score"]): r.get("sigma_run") for r in noise}
    design = find_design(runs)
    factorial, baselines = _factorial(design, runs, primary)
    if factorial:
        files["factorial"] = write_csv(out / "factorial.csv", factorial)
        title = f"{design.strategy}: length window x degree, paired seeds"
        files["plot/factorial"] = save_figure(factorial_plot(design, baselines, primary, title), out / "factorial.png")
    if baselines:
        files["baselines"] = write_csv(out / "baselines.csv", baselines)

    groups = sorted({(r.get("model") or "", r.get("n")) for r in runs}, key=str)
    for model, n in groups:
        members = [r for r in runs if (r.get("model") or "", r.get("n")) == (model, n)]
        suffix = "" if len(groups) == 1 else f"_{_slug(str(model))}_n={n}"
        for score in scores:
            sigma = band.get((model, n, score))
            fig = score_vs_degree(members, score, x=x, title=f"{score} (model {model}, n={n})", sigma_seed=sigma)
            files[f"plot/{score}{suffix}"] = save_figure(fig, out / f"score_vs_degree_{_slug(score)}{suffix}.png")
    notes = repeat_notes + sweep_notes(runs, incomplete, long_rows) + pooled_notes(runs, pooled, scores, primary)
    if _any_correlation(correlations):
        fig = correlation_heatmap(correlations, scores)
        files["plot/metric_correlations"] = save_figure(fig, out / "metric_correlations.png")
    else:
        notes.append("no metric-score correlation yet: each needs >= 3 runs whose metric and score both vary")
        (out / "metric_correlations.png").unlink(missing_ok=True)  # a stale heatmap of an earlier analysis
    with atomic_write(out / "notes.txt") as fh:
        fh.write("".join(f"- {note}\n" for note in notes))
    files["notes"] = out / "notes.txt"

    if wandb_cfg is not None:
        tables = {
            "slopes": widen(long_rows),
            "metric_correlations": correlations,
            "runs": runs,
        }
        images = {k: v for k, v in files.items() if k.startswith("plot/")}
        log_to_wandb(wandb_cfg, tables, images, out)
    if not quiet:
        print_headline(long_rows, scores)
        print_pooled(pooled, entropy, noise)
        print_factorial(factorial, baselines)
        for note in notes:
            print(f"[analysis] note: {note}")
        print(f"[analysis] {len(runs)} run(s) analysed; outputs in {out}")
    return {
        "out_dir": str(out),
        "n_runs": len(runs),
        "n_incomplete": len(incomplete),
        "incomplete": incomplete,
        "scores": scores,
        "files": {k: str(v) for k, v in files.items()},
        "slopes": long_rows,
        "pooled": pooled,
        "entropy": entropy,
        "noise": noise,
        "factorial": factorial,
        "baselines": baselines,
        "notes": notes,
    }


def _factorial(
    design: FactorialDesign | None, runs: Sequence[dict], scores: Sequence[str]
) -> tuple[list[dict], list[dict]]:
    """The 2 x 2 window x degree table (mixed model beside the exact sign-flip test) when the sweep is that design
    (`find_design`), and the base-model and per-window random baselines when the sweep has them."""
    from evaluation.analysis.factorial import baseline_table, factorial_table

    rows = []
    if design is not None:
        order = {"window": design.windows, "diversity": design.levels}
        rows = [
            {"strategy": design.strategy, **row}
            for row in factorial_table(design.runs, scores, window="length_window", order=order)
        ]
    return rows, baseline_table(runs, scores)


def print_factorial(factorial: Sequence[dict], baselines: Sequence[dict]) -> None:
    """The factorial's effects (estimate +/- se, p; sign-flip mean and exact p) and the baselines, one line each."""
    for row in factorial:
        model, flip = "", ""
        if "estimate" in row:
            model = f"{row['estimate']:+.5f} +/- {row['se']:.5f} (p {row['p']:.3g}, {row['method']})"
        if "flip_p" in row:
            flip = f"sign-flip mean {row['flip_mean']:+.5f}, p {row['flip_p']:.3g} over {row['seeds']} seeds"
        print(f"[factorial] {row['score']} {row['effect']}: {model} {flip}".rstrip())
    for row in baselines:
        sd = f"sd {row['sd']:.5f}, " if row["runs"] > 1 else ""
        print(f"[baseline] {row['score']} {row['baseline']}: {row['mean']:.5f} ({sd}{row['runs']} runs)")


def _any_correlation(rows: Sequence[dict]) -> bool:
    return any(
        isinstance(v, float) and math.isfinite(v)
        for row in rows
        for k, v in row.items()
        if k != "metric" and not k.endswith("/n")
    )


def _cell(r: Mapping[str, Any]) -> str:
    """One strategy's headline cell: slope ± sd, or what it lacks; best degree; gap to random; runs."""
    slope = format_pm(r.get("slope"), r.get("slope_sd"))
    if slope == "n/a":
        slope = f"no slope ({r.get('n_levels', 0)} degree{'s' * (r.get('n_levels', 0) != 1)})"
    best = r.get("best_level")
    best_text = f"{100 * best:.0f}%" if isinstance(best, float) and math.isfinite(best) else "n/a"
    delta = r.get("delta_vs_random")
    gap = f"Δrand {delta:+.3g}" if isinstance(delta, float) and math.isfinite(delta) else "no random run"
    return f"{slope}\nbest {best_text}, {gap}\n{r.get('runs_per_level', '?')} run(s)/degree"


def print_headline(long_rows: Sequence[dict], scores: Sequence[str], max_scores: int = 3) -> None:
    """Rich table of slope +/- sd (and best level, delta vs random) per strategy for the first scores."""
    from rich.console import Console
    from rich.table import Table

    keys = list(dict.fromkeys((r["model"], r["n"], r["strategy"]) for r in long_rows))
    designs = sorted({key[:2] for key in keys}, key=str)
    title = "slope of score on degree ± 1 sd (score change from 0% to 100% = the paper's x1e-2 per %)"
    if len(designs) == 1:
        title += f"\nmodel {designs[0][0]}, n = {designs[0][1]}"
    table = Table(title=title)
    for column in ("model", "n", "strategy") if len(designs) > 1 else ("strategy",):
        table.add_column(column)
    shown = list(scores)[:max_scores]
    for score in shown:
        table.add_column(score_label(score), justify="right")
    keyed = {(r["model"], r["n"], r["strategy"], r["score"]): r for r in long_rows}
    for key in keys:
        cells = []
        for score in shown:
            r = keyed.get((*key, score), {})
            if not r:
                cells.append("no run with this score")
            elif is_baseline(key[2]):
                cells.append(f"mean {format_value(r.get('best_mean'), 4)}\n{r.get('n_runs', 0)} run(s)")
            else:
                cells.append(_cell(r))
        label = [str(key[0]), str(key[1]), key[2]] if len(designs) > 1 else [key[2]]
        table.add_row(*label, *cells)
    Console(width=None if sys.stdout.isatty() else 160).print(table)  # log files: no wrapping at 80 columns


def log_to_wandb(
    wandb_cfg: Mapping[str, Any],
    tables: Mapping[str, Sequence[dict]],
    images: Mapping[str, Path],
    out_dir: Path,
) -> str:
    """Log tables (`wandb.Table`) and plots (`wandb.Image`) to one analysis run; returns its id.

    The run is finished in `finally`, so a failing upload never leaves a dangling run that the next job's
    metrics would land in.
    """
    import wandb

    cfg = dict(wandb_cfg)
    group = cfg.get("group")
    mode = cfg.get("mode") or ("offline" if cfg.get("offline") else None)  # None: WANDB_MODE decides
    # A logger config's `name` names one training job; the summary run gets its own name.
    run = wandb.init(
        project=cfg.get("project"),
        entity=cfg.get("entity"),
        group=group,
        name=cfg.get("analysis_name") or (f"analysis_{group}" if group else "analysis"),
        job_type="analysis",
        tags=["analysis"],
        mode=mode,
        dir=str(out_dir),
        reinit="finish_previous",
    )
    try:
        for name, rows in tables.items():
            columns = list(dict.fromkeys(k for row in rows for k in row))
            data = [[row.get(c) for c in columns] for row in rows]
            run.log({f"analysis/{name}": wandb.Table(columns=columns, data=data)})
        run.log({f"analysis/{_slug(name)}": wandb.Image(str(path)) for name, path in images.items()})
        return run.id
    finally:
        run.finish()
