"""Metric validity: partial r and leave-one-strategy-out R^2 against independent computations, and a
synthetic sweep where one metric carries signal beyond length and another carries none."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from evaluation.analysis.validity import (
    combine_sweeps,
    is_covariate,
    loso_r2,
    metric_validity,
    partial_correlation,
    validity_statement,
    write_validity,
)


def test_partial_correlation_matches_the_textbook_formula_and_ols_t_test():
    import statsmodels.api as sm

    rng = np.random.default_rng(0)
    z = rng.normal(size=30)
    x = z + rng.normal(size=30)
    y = 0.5 * x + 2 * z + rng.normal(size=30)
    r, p = partial_correlation(x, y, z[:, None])
    rxy, rxz, ryz = np.corrcoef([x, y, z])[[0, 0, 1], [1, 2, 2]]
    assert r == pytest.approx((rxy - rxz * ryz) / math.sqrt((1 - rxz**2) * (1 - ryz**2)))
    fit = sm.OLS(y, sm.add_constant(np.column_stack([x, z]))).fit()
    assert p == pytest.approx(fit.pvalues[1], rel=1e-6)  # the same t statistic on n - 2 - 1 df
    assert all(math.isnan(v) for v in partial_correlation(z * 3 + 1, y, z[:, None]))  # x is the covariate


def test_loso_r2_matches_sklearn_leave_one_group_out():
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import LeaveOneGroupOut

    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(4), 5)
    x = rng.normal(size=20)
    y = 2 * x + rng.normal(size=20)
    sse = sse_mean = 0.0
    for train, test in LeaveOneGroupOut().split(x, y, groups):
        pred = LinearRegression().fit(x[train, None], y[train]).predict(x[test, None])
        sse += ((y[test] - pred) ** 2).sum()
        sse_mean += ((y[test] - y[train].mean()) ** 2).sum()
    assert loso_r2(x, y, groups) == pytest.approx(1 - sse / sse_mean)
    assert loso_r2(x, y, np.zeros(20)) != loso_r2(x, y, np.zeros(20))  # one group: NaN


def _synthetic_runs(seed: int = 0) -> list[dict]:
    """Four strategies x 6 runs: score = 0.3 log(length) + 1.0 signal + noise; `noise_metric` is unrelated."""
    rng = np.random.default_rng(seed)
    runs = []
    for s, strategy in enumerate(["R-Micro", "R-Macro", "I-Meso", "Random"]):
        for i in range(6):
            length = float(np.exp(rng.normal(5 + 0.2 * s, 0.3)))
            signal = float(rng.normal())
            runs.append({
                "strategy": strategy, "run_dir": f"{strategy}/{i}",
                "subset/response/mean_tokens": length, "subset/response/signal": signal,
                "subset/response/noise_metric": float(rng.normal()),
                "heldout/loss": 0.3 * math.log(length) + signal + 0.1 * float(rng.normal()),
            })  # fmt: skip
    return runs


def test_signal_metric_ranks_first_and_beats_length_noise_does_not():
    rows = metric_validity(_synthetic_runs(), n_boot=500)
    by = {r["metric"]: r for r in rows}
    assert rows[0]["metric"] == "subset/response/signal" and rows[0]["rank"] == 1
    signal, noise = by["subset/response/signal"], by["subset/response/noise_metric"]
    assert signal["beats_length"] and signal["loso_r2"] > 0.8 and signal["r_low"] > 0.5
    assert signal["partial_r"] > 0.9 and signal["partial_p"] < 1e-6
    assert signal["adjusted_for"] == "subset/response/mean_tokens"
    assert not noise["beats_length"] and noise["r_low"] < 0 < noise["r_high"]
    baseline = by["log(subset/response/mean_tokens) [length baseline]"]
    assert baseline["loso_r2"] == pytest.approx(signal["loso_r2_length"]) and math.isnan(baseline["partial_r"])
    statement = validity_statement(rows)[0]
    assert "metrics that beat it: response/signal" in statement and "noise_metric (" not in statement.split(";")[1]


def test_length_covariates_are_ranked_but_never_said_to_beat_length():
    """Score linear in raw response tokens: raw mean_tokens (of either component, both length) and trained tokens
    out-predict log length out of sample, but a length measure beating length is no diversity metric doing so."""
    rng = np.random.default_rng(2)
    runs = []
    for s, strategy in enumerate(["R-Micro", "R-Macro", "I-Meso", "Random"]):
        for i in range(6):
            length = float(np.exp(rng.normal(5 + 0.4 * s, 0.4)))
            runs.append({
                "strategy": strategy, "run_dir": f"{strategy}/{i}",
                "subset/response/mean_tokens": length,
                "subset/instruction/mean_tokens": 0.5 * length + float(rng.normal()),
                "trained_tokens": 48 * length + float(rng.normal()),
                "subset/response/noise_metric": float(rng.normal()),
                "heldout/loss": 0.01 * length + 0.01 * float(rng.normal()),
            })  # fmt: skip
    rows = metric_validity(runs, n_boot=200)
    by = {r["metric"]: r for r in rows}
    for covariate in ("subset/response/mean_tokens", "subset/instruction/mean_tokens", "trained_tokens"):
        row = by.get(covariate)
        if row is not None:  # ranked like any column, with its R^2, but no verdict
            assert row["loso_r2"] > row["loso_r2_length"] and row["beats_length"] is None
    instruction_tokens = by["subset/instruction/mean_tokens"]
    assert instruction_tokens["loso_r2"] > max(instruction_tokens["loso_r2_length"], 0)  # old code: "beats length"
    assert by["subset/response/noise_metric"]["beats_length"] is False
    statement = validity_statement(rows)[0]
    assert "metrics that beat it: none." in statement and "mean_tokens (" not in statement
    assert is_covariate("log(subset/response/mean_tokens) [length baseline]") and is_covariate("train/tokens")
    assert not is_covariate("subset/response/novelsum")


def test_write_validity_tables_full_sections_and_names_small_ones(tmp_path):
    runs = _synthetic_runs()
    small = runs[:3]
    out = write_validity({"study": runs, "tiny": small, "both": combine_sweeps({"a": runs, "b": small})}, tmp_path)
    text = (tmp_path / "metric_validity.md").read_text()
    assert "## study" in text and "## tiny" in text and "too few runs to rank metrics: 3 run(s) of 1 strategy" in text
    with open(tmp_path / "metric_validity.csv") as fh:
        table = list(csv.DictReader(fh))
    assert {r["section"] for r in table} == {"study", "both"} and len(table) == len(out["rows"])
    assert (tmp_path / "metric_validity.png").stat().st_size > 10_000
    assert "Regenerated by `python run.py mode=analyze sweep_dir=<sweep>`" in text
    assert {r["strategy"] for r in combine_sweeps({"b": small})} == {"R-Micro [b]"}


def test_cli_writes_the_exact_command_that_regenerates_its_tables(tmp_path):
    from pathlib import Path

    from evaluation.analysis.validity import main

    sweep = Path(__file__).resolve().parents[3] / "docs/results/offline_study_length_control"
    main([str(sweep), "--out", str(tmp_path), "--n-boot", "50"])
    text = (tmp_path / "metric_validity.md").read_text()
    assert f"Regenerated by `python -m evaluation.analysis.validity {sweep} --out {tmp_path} --n-boot 50`" in text
