"""Small or partial sweeps: the analysis says what is missing instead of drawing blanks and `- ± -`."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from evaluation.analysis import analyze, collect_runs, slope_table
from evaluation.analysis.notes import format_pm, score_label
from evaluation.analysis.plots import score_vs_degree
from evaluation.analysis.stats import bayes_linreg
from evaluation.analysis.synthetic import SCORE, write_run_dir, write_synthetic_sweep

TWO = {"micro_response": 5.35, "macro_instruction": 2.37}


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_two_level_sweep_without_random_says_what_is_missing(tmp_path, capsys):
    write_synthetic_sweep(tmp_path / "s", slopes=TWO, levels=(0.0, 1.0), seeds=(0, 1), random_seeds=(), broken=False)
    result = analyze(tmp_path / "s", n_boot=50)
    printed = capsys.readouterr().out
    assert "- ± -" not in printed and "n/a ± " not in printed
    assert "no slope (2 degrees)" in printed and "no random run" in printed and "2 run(s)/degree" in printed
    assert "(higher is better)" in printed and "(lower is better)" in printed
    notes = "\n".join(result["notes"])
    assert "R-Micro: no slope, it needs runs at >= 3 degrees and has 2 (0%, 100%)" in notes
    assert "random baseline: no run, so there is no 'vs random' comparison" in notes
    assert "runs per (strategy, degree): 2" in notes
    assert (tmp_path / "s" / "analysis" / "notes.txt").read_text().count("\n") == len(result["notes"])
    rows = {r["strategy"]: r for r in read_csv(tmp_path / "s" / "analysis" / "slopes_long.csv") if r["score"] == SCORE}
    assert rows["R-Micro"]["slope"] == "" and rows["R-Micro"]["missing"].startswith("slope needs >= 3 degrees, has 2")
    assert "no finished random run" in rows["R-Micro"]["missing"]


def test_unfinished_random_baseline_and_no_correlation_are_noted(tmp_path):
    write_synthetic_sweep(tmp_path, slopes={"micro_response": 5.0}, levels=(0.0, 0.5, 1.0), seeds=(0,), broken=False)
    cfg = {"seed": 1, "strategy": {"name": "random", "component": None}, "diversity": {"level": 0.0, "n": 20}}
    write_run_dir(
        tmp_path / "random/n20/level0.0/seed1", cfg, {"strategy": "random", "level": 0.0, "n": 20}, None, None, False
    )
    result = analyze(tmp_path, n_boot=50, quiet=True)
    assert any(note.startswith("random baseline unfinished: 1 run(s)") for note in result["notes"])
    small = tmp_path / "tiny"  # two runs: no correlation can be computed, so no blank heatmap either
    write_synthetic_sweep(small, {"micro_response": 5.0}, levels=(0.0, 1.0), seeds=(0,), random_seeds=(), broken=False)
    tiny = analyze(small, n_boot=20, quiet=True)
    assert any("no metric-score correlation yet" in note for note in tiny["notes"])
    assert not (small / "analysis" / "metric_correlations.png").exists()
    assert "plot/metric_correlations" not in tiny["files"]


def test_seed_independent_degree_zero_counts_as_one_observation(tmp_path):
    write_synthetic_sweep(
        tmp_path, slopes={"micro_response": 5.35}, seeds=(0, 1, 2), seed_independent_zero=True, broken=False
    )
    runs, _ = collect_runs(tmp_path)
    members = [r for r in runs if r["strategy"] == "R-Micro"]
    assert sum(r["subset_independent_of_seed"] for r in members) == 3
    (row,) = [r for r in slope_table(runs, [SCORE], n_boot=50) if r["strategy"] == "R-Micro"]
    assert row["n_runs"] == 21 and row["n_points"] == 19 and row["n_collapsed"] == 3
    x = np.array([r["level"] for r in members])
    y = np.array([r[SCORE] for r in members])
    points_x = np.concatenate([[0.0], x[x > 0]])
    points_y = np.concatenate([[y[x == 0].mean()], y[x > 0]])
    fit = bayes_linreg(points_x, points_y)
    assert row["slope"] == pytest.approx(fit.slope) and row["slope_sd"] == pytest.approx(fit.slope_sd)
    assert row["slope_sd"] != pytest.approx(bayes_linreg(x, y).slope_sd)  # not counted as 3 independent seeds
    notes = analyze(tmp_path, n_boot=50, quiet=True)["notes"]
    assert any("its 3 runs are averaged into one point" in note for note in notes)


def test_plot_axes_legends_and_precision_on_a_partial_sweep(tmp_path):
    write_synthetic_sweep(tmp_path, slopes={"micro_response": 5.35}, seeds=(0, 1), broken=False)
    extra = {"macro_response": 1.0}
    write_synthetic_sweep(tmp_path / "more", slopes=extra, levels=(0.0, 1.0), seeds=(0,), random_seeds=(), broken=False)
    runs, _ = collect_runs(tmp_path)
    fig = score_vs_degree(runs, "heldout/loss")
    instruction, response = fig.axes[:2]
    assert instruction.get_xlim() == (-5.0, 105.0) == response.get_xlim()  # percent, never a 0..1 "%" axis
    assert "no finished run of" in " ".join(t.get_text() for t in instruction.texts)  # empty panel says so
    assert [t.get_text() for t in instruction.get_legend().get_texts()] == ["Random: " + _random_mean(runs)]
    labels = [t.get_text() for t in response.get_legend().get_texts()]
    assert any(label.startswith("R-Macro: 0%, 100% (no slope)") for label in labels)
    (micro,) = [label for label in labels if label.startswith("R-Micro: slope ")]
    sd = re.fullmatch(r"R-Micro: slope [+-]\d+\.\d+ ± (\d+\.\d+)", micro).group(1)
    assert re.fullmatch(r"0\.0*[1-9]\d", sd), micro  # two significant digits of a small sd, not `± 0.00`
    handles = response.get_legend_handles_labels()[0]
    assert all(len(getattr(h, "get_xdata", lambda: [1])()) for h in handles)  # no entry for an undrawn line
    assert instruction.get_ylabel() == "heldout/loss (lower is better)"


def _random_mean(runs: list[dict]) -> str:
    losses = [r["heldout/loss"] for r in runs if r["strategy"] == "Random"]
    return f"{np.mean(losses):.3g} ({len(losses)} runs)"


def test_format_pm_and_score_label():
    assert format_pm(-0.0123, 0.0045) == "-0.0123 ± 0.0045"
    assert format_pm(5.349, 2.31) == "+5.3 ± 2.3"
    assert format_pm(53.4, 23.0) == "+53 ± 23"
    assert format_pm(float("nan"), 1.0) == "n/a"
    assert score_label("eval/pairwise/win_rate") == "eval/pairwise/win_rate (higher is better)"
    assert score_label("heldout/ppl") == "heldout/ppl (lower is better)"
