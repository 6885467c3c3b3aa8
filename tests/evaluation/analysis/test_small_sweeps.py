"""Small or partial sweeps: the analysis says what is missing instead of drawing blanks and `- ± -`."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from evaluation.analysis import analyze, collect_runs, slope_table
from evaluation.analysis.notes import format_pm, score_label
from evaluation.analysis.plots import score_vs_degree
from evaluation.analysis.stats import bayes_linreg
from evaluation.analysis.synthetic import SCORE, write_run_dir, write_synthetic_sweep

TWO = {"micro_response": 5.35, "macro_instruction": 2.37}


REPO = Path(__file__).resolve().parents[3]


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
    assert "base model: no run (0 training steps) in this sweep" in notes  # the effects' denominator is missing
    assert (tmp_path / "s" / "analysis" / "notes.txt").read_text().count("\n") == len(result["notes"])
    cfg = {"seed": 0, "strategy": {"name": "random", "component": None}, "diversity": {"level": 1.0, "n": 20}}
    sel = {"strategy": "random", "level": 1.0, "n": 20}
    write_run_dir(tmp_path / "s" / "base", cfg, sel, None, {"train/steps": 0, SCORE: 1.0})
    with_base = analyze(tmp_path / "s", n_boot=50, quiet=True)
    assert not any(note.startswith("base model") for note in with_base["notes"])
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
    assert any(label.startswith("R-Macro: means at 0%, 100% (no slope)") for label in labels)
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


def test_length_windowed_strategies_and_their_random_baselines_are_drawn_and_paired():
    """Study 2's labels carry their window (`R-Micro [30-100 tokens, locked]`): the plot drew nothing, the noise
    table found no random run and the seed pairing was judged on the baselines' cells."""
    import pandas as pd

    from evaluation.analysis.pooled import noise_table, seeds_paired

    runs = pd.read_csv(REPO / "docs/results/factorial/analysis/runs.csv").to_dict("records")
    score = "eval/reference_loss/mtbench_loss"
    labels = [t.get_text() for t in score_vs_degree(runs, score).axes[1].get_legend().get_texts()]
    for window in ("30-100", "180-360"):
        assert any(label.startswith(f"R-Micro [{window} tokens, locked]: means at 33%, 100%") for label in labels)
        assert any(label.startswith(f"Random [{window} tokens, locked]: ") for label in labels)
    assert seeds_paired(runs)
    (row,) = noise_table(runs, [score])
    assert row["method"] == "mixedlm" and row["random_runs"] == 6 and math.isnan(row["random_mean"])
    randoms = {
        w: [r[score] for r in runs if r["strategy"] == f"Random [{w} tokens, locked]"] for w in ("30-100", "180-360")
    }
    pooled_sd = np.sqrt(sum(np.var(v, ddof=1) * (len(v) - 1) for v in randoms.values()) / 4)
    assert row["random_sd"] == pytest.approx(pooled_sd, rel=1e-12)
    # lbfgs "converged" here at an infinite likelihood with seed sd 0; the fit must be the real REML optimum.
    import statsmodels.api as sm

    from evaluation.analysis.pooled import build_design

    used = [r for r in runs if math.isfinite(r[score])]
    design, _, _ = build_design(used, "level")
    y = np.array([r[score] for r in used])
    ref = sm.MixedLM((y - y.mean()) / y.std(), design, groups=[r["seed"] for r in used]).fit(reml=True, method=["bfgs"])
    assert row["sigma_seed_re"] == pytest.approx(y.std() * np.sqrt(np.asarray(ref.cov_re).ravel()[0]), rel=1e-2)
    assert row["sigma_pooled"] == pytest.approx(y.std() * np.sqrt(ref.scale), rel=1e-3)


def test_the_factorial_plot_shows_every_paired_seed_and_each_windows_random_baseline():
    import pandas as pd

    from evaluation.analysis.factorial import baseline_table, find_design
    from evaluation.analysis.plots import factorial_plot

    runs = pd.read_csv(REPO / "docs/results/factorial/analysis/runs.csv").to_dict("records")
    design, scores = find_design(runs), ["eval/reference_loss/mtbench_loss", "heldout/loss"]
    fig = factorial_plot(design, baseline_table(runs, scores), scores)
    for ax in fig.axes:
        seed_lines = [line for line in ax.get_lines() if line.get_alpha() == 0.25]
        assert len(seed_lines) == 16  # 8 paired seeds x 2 windows, each joining its two degrees
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert {"30-100 tokens (8 / 8 seeds)", "180-360 tokens (8 / 8 seeds)"} <= set(labels)
        assert {"random 30-100 (3 runs)", "random 180-360 (3 runs)"} <= set(labels)
        assert "base model" in ax.get_title()


def test_a_random_baseline_swept_over_degrees_reports_its_mean_over_all_runs(tmp_path):
    write_synthetic_sweep(tmp_path, slopes={"micro_response": 5.0}, levels=(0.0, 1.0), seeds=(0, 1), broken=False)
    runs, _ = collect_runs(tmp_path)
    extra = [{**r, "level": 0.0, SCORE: r[SCORE] + 1.0} for r in runs if r["strategy"] == "Random"]
    runs = runs + extra  # random at two degrees, one a whole unit worse
    (row,) = [r for r in slope_table(runs, [SCORE], n_boot=20) if r["strategy"] == "Random"]
    everything = [r[SCORE] for r in runs if r["strategy"] == "Random"]
    assert row["best_mean"] == pytest.approx(np.mean(everything)) and math.isnan(row["best_level"])


def test_a_length_controlled_strategy_is_never_compared_with_a_random_baseline_of_other_lengths():
    from evaluation.analysis.collect import matching_random

    labels = ["R-Micro", "R-Micro [30-100 tokens, locked]", "Random", "Random [180-360 tokens, locked]"]
    assert matching_random("R-Micro", labels) == "Random"
    assert matching_random("R-Micro [30-100 tokens, locked]", labels) is None
    assert matching_random("R-Micro [180-360 tokens, locked]", labels) == "Random [180-360 tokens, locked]"


def test_random_runs_repeated_across_degrees_count_once(tmp_path):
    """`smoke_grid` sweeps random over degrees: the same subset and seed trained again, identical scores. Counted
    as replicates they gave zero-noise degrees of freedom and calls with t ~ 6e10."""
    import shutil

    write_synthetic_sweep(tmp_path, slopes={"micro_response": 5.0}, levels=(0.0, 0.5, 1.0), seeds=(0, 1), broken=False)
    originals = sorted(p.parent for p in tmp_path.rglob("DONE") if p.relative_to(tmp_path).parts[0] == "random")
    for i, run in enumerate(originals):  # the same job again at two more degrees
        for level in ("0.5", "1.0"):
            copy = tmp_path / "repeats" / level / str(i)
            shutil.copytree(run, copy)
            selection = json.loads((copy / "selection.json").read_text())
            (copy / "selection.json").write_text(json.dumps({**selection, "level": float(level)}))
    runs, _ = collect_runs(tmp_path)
    result = analyze(tmp_path, n_boot=20, quiet=True)
    assert len(runs) == result["n_runs"] + 2 * len(originals)
    assert any(f"{2 * len(originals)} random run(s) repeat another exactly" in note for note in result["notes"])
    (noise,) = [r for r in result["noise"] if r["score"] == SCORE]
    assert noise["random_runs"] == len(originals)


def test_a_fit_without_residual_noise_is_refused_not_called():
    from evaluation.analysis.pooled import pooled_slopes

    runs = [
        {"strategy": "R-Micro", "level": lv, "seed": s, "model": "m", "n": 10, SCORE: 1.0 + 0.01 * lv}
        for lv in (0.0, 0.5, 1.0)
        for s in (0, 1)
    ]
    rows = pooled_slopes(runs, [SCORE])
    assert rows and all("no residual noise" in r.get("missing", "") for r in rows)
