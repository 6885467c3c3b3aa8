"""Printing and notes for the pooled tables (one noise model per sweep), beside the per-strategy Bayesian table."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

from evaluation.analysis.notes import format_pm, format_value, score_label
from evaluation.analysis.pooled import ALPHA, COVARIATES

__all__ = ["ENTROPY_COLUMNS", "NOISE_COLUMNS", "POOLED_COLUMNS", "pooled_notes", "print_pooled"]

POOLED_COLUMNS = (
    "model", "n", "adjustment", "score", "strategy", "slope", "se", "df", "p", "p_holm", "call", "sigma",
    "sigma_seed", "method", "n_points", "covariate_coef", "covariate_se", "missing",
)  # fmt: skip
ENTROPY_COLUMNS = (*POOLED_COLUMNS[:6], "x_lo", "x_hi", "x_span", *POOLED_COLUMNS[6:], "entropy_column")
NOISE_COLUMNS = (
    "model", "n", "score", "method", "n_runs", "sigma_pooled", "df", "sigma_seed_re", "sigma_run", "random_mean",
    "random_sd", "random_runs", "sigma_length_only", "df_length_only", "length_coef", "length_se", "missing",
)  # fmt: skip
ADJUSTMENT_WORDS = {
    "none": "no covariate",
    "log_mean_response_tokens": "adjusted for log mean response tokens",
    "log_trained_tokens": "adjusted for log trained tokens",
    "response_entropy": "adjusted for response token entropy",
}


def _z(row: dict[str, Any]) -> str:
    slope, se = row.get("slope"), row.get("se")
    ok = isinstance(slope, float) and isinstance(se, float) and math.isfinite(slope) and se > 0
    return f"t {slope / se:+.1f}" if ok else ""


def _table(rows: Sequence[dict], title: str, unit: str, range_column: bool = False) -> Any:
    from rich.table import Table

    scores = list(dict.fromkeys(r["score"] for r in rows))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows if r.get("strategy")))
    table = Table(title=title)
    table.add_column("strategy")
    for score in scores:
        table.add_column(f"{score_label(score)}\n{unit}", justify="right")
    if range_column:
        table.add_column("entropy range (bits)", justify="right")
    keyed = {(r["strategy"], r["score"]): r for r in rows}
    for s in strategies:
        cells = []
        for score in scores:
            r = keyed.get((s, score))
            cells.append(f"{format_pm(r['slope'], r['se'])}\n{_z(r)}, {r['call']}" if r and "slope" in r else "no fit")
        if range_column:
            r = next(r for r in rows if r.get("strategy") == s)
            cells.append(f"{r['x_lo']:.2f}-{r['x_hi']:.2f}\n({r['x_span']:.2f})")
        table.add_row(s, *cells)
    return table


def print_pooled(pooled: Sequence[dict], entropy: Sequence[dict], noise: Sequence[dict]) -> None:
    """Rich tables: pooled and each covariate-adjusted slope table, the per-bit entropy table, the noise lines."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    for r in noise:
        if "missing" in r:
            continue
        seed = f", seed intercept sd {format_value(r['sigma_seed_re'], 2)}" if r["method"] == "mixedlm" else ""
        length = (
            f"; log length alone: residual sd {format_value(r['sigma_length_only'], 2)} (df {r['df_length_only']:.0f})"
            if math.isfinite(r.get("sigma_length_only", math.nan))
            else ""
        )
        console.print(
            f"[analysis] noise {r['score']} ({r['model']}, n={r['n']}): pooled residual sd "
            f"{format_value(r['sigma_pooled'], 2)} on {r['df']:.0f} df ({r['method']}){seed}{_random_words(r)}"
            f"{length}"
        )
    designs = sorted({(r["model"], r["n"]) for r in pooled}, key=str)
    for model, n in designs:
        mine = [r for r in pooled if (r["model"], r["n"]) == (model, n)]
        for adjustment in dict.fromkeys(r["adjustment"] for r in mine):
            rows = [r for r in mine if r["adjustment"] == adjustment]
            df = next((r["df"] for r in rows if "df" in r), math.nan)
            title = (
                f"pooled slope of score on degree ± 1 se, {ADJUSTMENT_WORDS.get(adjustment, adjustment)}\n"
                f"(one residual sigma, df {df:.0f}; calls at Holm-corrected p < {ALPHA}); model {model}, n = {n}"
            )
            console.print(_table(rows, title, "slope 0%->100%"))
        ent = [r for r in entropy if (r["model"], r["n"]) == (model, n)]
        for adjustment in dict.fromkeys(r["adjustment"] for r in ent):
            rows = [r for r in ent if r["adjustment"] == adjustment]
            title = f"effect per bit of response token entropy ± 1 se, {ADJUSTMENT_WORDS.get(adjustment, adjustment)}"
            console.print(_table(rows, title, "per bit", range_column=True))


def pooled_notes(
    runs: Sequence[dict], pooled: Sequence[dict], scores: Sequence[str], primary: Sequence[str]
) -> list[str]:
    """What the pooled tables rest on: the noise model, the Holm family, scores left out, covariates absent."""
    notes = []
    methods = {r.get("method") for r in pooled if r.get("method")}
    if "mixedlm" in methods:
        notes.append("pooled tables: seeds run in every cell, so seed is a random intercept (MixedLM, REML)")
    elif methods:
        notes.append("pooled tables: one OLS residual sigma across all strategies and the random runs (seeds unpaired)")
    fits = [r for r in pooled if "p_holm" in r]
    if fits:
        per = len([r for r in fits if r["adjustment"] == fits[0]["adjustment"]])
        notes.append(f"Holm correction over each table's {per} strategy x score slopes")
    skipped = [s for s in scores if s not in primary]
    if skipped:
        notes.append(f"pooled tables leave out {', '.join(skipped)} (exp of a loss already in them)")
    present = {r["adjustment"] for r in pooled}
    for name, (columns, _) in COVARIATES.items():
        if name not in present:
            notes.append(f"no {name} adjustment: none of {', '.join(columns)} varies in every run")
    for r in pooled:
        if r.get("missing"):
            notes.append(f"{r['adjustment']} {r['score']}: {r['missing']}")
    return notes


def _random_words(row: dict) -> str:
    """`; random 0.91798 ± 0.0018 (3 runs)`, or the within-baseline sd when there is one baseline per window."""
    if not row.get("random_runs"):
        return ""
    sd = format_value(row["random_sd"], 2)
    if math.isfinite(row.get("random_mean", math.nan)):
        return f"; random {format_value(row['random_mean'], 5)} ± {sd} ({row['random_runs']} runs)"
    return f"; random baselines: sd {sd} within baselines ({row['random_runs']} runs)"
