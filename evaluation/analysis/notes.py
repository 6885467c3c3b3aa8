"""Words for the analysis outputs: numbers at a precision their uncertainty supports, the direction of better
for each score, and notes saying what a small or partial sweep lacks instead of leaving blanks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from evaluation.analysis.collect import BASE_MODEL, is_baseline, is_random

__all__ = ["MIN_LEVELS", "format_pm", "format_value", "score_label", "sweep_notes"]

MIN_LEVELS = 3  # degrees a slope needs: two points always fit a line, so two degrees say nothing about its error


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def format_value(value: Any, digits: int = 3) -> str:
    """`value` with `digits` significant digits (`0.0123`, `51.2`, `-4.1e-05`); `n/a` when missing."""
    if not _finite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def format_pm(value: Any, sd: Any, sign: bool = True) -> str:
    """`value ± sd` rounded to the sd's second significant digit, so `-0.0123 ± 0.0045`, not `-0.01 ± 0.00`."""
    if not _finite(value):
        return "n/a"
    if not _finite(sd) or sd <= 0:
        return f"{value:+.3g}" if sign else f"{value:.3g}"
    decimals = max(0, 1 - math.floor(math.log10(sd)))
    return f"{value:{'+' if sign else ''}.{decimals}f} ± {sd:.{decimals}f}"


def score_label(score: str) -> str:
    """The score's name with the direction of better: `heldout/loss (lower is better)`."""
    from evaluation.analysis.tables import higher_is_better

    return f"{score} ({'higher' if higher_is_better(score) else 'lower'} is better)"


def _level_list(levels: Sequence[float]) -> str:
    return ", ".join(f"{100 * lv:.0f}%" for lv in sorted(levels))


def sweep_notes(runs: Sequence[dict], incomplete: Sequence[dict], long_rows: Sequence[dict]) -> list[str]:
    """One line per thing a reader of the tables must know: missing degrees, an unfinished or absent random
    baseline, runs per degree, runs that count as one observation, unfinished runs. Empty for a complete sweep.
    """
    notes: list[str] = []
    per_strategy: dict[tuple, dict[str, Any]] = {}
    for row in long_rows:
        per_strategy.setdefault((row["model"], row["n"], row["strategy"]), row)  # the design is per strategy
    designs = {key[:2] for key in per_strategy}
    for (model, n, strategy), row in per_strategy.items():
        where = f"{strategy}" + (f" (model {model}, n={n})" if len(designs) > 1 else "")
        if not is_baseline(strategy) and row.get("n_levels", 0) < MIN_LEVELS:
            mine = [r for r in runs if (r["strategy"], r.get("model") or "", r.get("n")) == (strategy, model, n)]
            levels = sorted({r["level"] for r in mine})
            notes.append(
                f"{where}: no slope, it needs runs at >= {MIN_LEVELS} degrees and has {len(levels)} "
                f"({_level_list(levels)})"
            )
        if row.get("n_collapsed"):
            notes.append(
                f"{where}: degree 0 selects the same subset for every seed (selection.json "
                f"info.subset_independent_of_seed), so its {row['n_collapsed']} runs are averaged into one point "
                "and do not count as independent seeds in the fit"
            )
    strategies = {key[2] for key in per_strategy}
    unfinished_random = [r for r in incomplete if "random" in str(r.get("run_dir", "")).lower()]
    if not any(is_random(s) for s in strategies):
        state = f"{len(unfinished_random)} run(s) unfinished" if unfinished_random else "no run"
        notes.append(f"random baseline: {state}, so there is no 'vs random' comparison")
    elif unfinished_random:
        notes.append(f"random baseline unfinished: {len(unfinished_random)} run(s) missing from its mean")
    if runs and not any(r.get("strategy") == BASE_MODEL for r in runs):
        notes.append(
            "base model: no run (0 training steps) in this sweep, so the effects have no denominator; score it "
            "once into the same folder: python run.py -m experiment=<study>_base (or this sweep's settings with "
            "trainer.max_steps=0 budget.tokens=null strategy=random hydra.sweep.subdir=base)"
        )
    spread = sorted({r.get("runs_per_level") for r in per_strategy.values() if r.get("runs_per_level")})
    if spread:
        notes.append(f"runs per (strategy, degree): {', '.join(str(s) for s in spread)}")
    if incomplete:
        notes.append(f"{len(incomplete)} run(s) unfinished or failed are left out (incomplete.csv)")
    return notes
