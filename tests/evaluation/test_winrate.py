"""The LC win rate says when it cannot be trusted: its support around equal length, and two flags beside it."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from evaluation.winrate import LC_MIN_SUPPORT, far_from_raw, length_control, win_rate


def _rows(scores, model_chars, baseline_chars):
    """Verdict rows whose two orders average to each score (0, 0.5 or 1)."""
    outcome = {1.0: ("win", "win"), 0.5: ("win", "loss"), 0.0: ("loss", "loss")}
    rows = []
    for i, (score, m, b) in enumerate(zip(scores, model_chars, baseline_chars, strict=True)):
        for position, result in zip("AB", outcome[score], strict=True):
            rows.append({"id": str(i), "model_position": position, "outcome": result, "strong": False,
                         "model_chars": m, "baseline_chars": b})  # fmt: skip
    return rows


def _short_model(n: int, seed: int):
    """A small model whose answers are all much shorter than the baseline's (x = tanh(delta/sd) ~ -0.95) and
    whose verdicts do not depend on length: raw win rate ~30% (issue 21.3)."""
    rng = np.random.default_rng(seed)
    baseline = rng.normal(2000, 150, n)
    model = baseline - rng.normal(2.1, 1.0, n) * 150 * np.sqrt(2)  # delta ~ -2.1 sd on average
    scores = rng.choice([0.0, 0.5, 1.0], size=n, p=[0.6, 0.2, 0.2])
    return scores, model, baseline


def test_lc_read_far_outside_the_data_is_flagged_as_an_extrapolation(caplog):
    scores, model, baseline = _short_model(805, 0)
    with caplog.at_level(logging.WARNING, logger="evaluation.winrate"):
        result = win_rate(_rows(scores, model, baseline), n_resamples=50)
    x = np.tanh((model - baseline) / np.std(model - baseline, ddof=1))
    assert x.mean() == pytest.approx(-0.93, abs=0.05)
    assert result["lc_support_share"] < LC_MIN_SUPPORT and result["lc_extrapolated"] == 1.0
    assert "extrapolation" in caplog.text and f"{result['lc_win_rate']:.1f}" in caplog.text


def test_lc_within_the_data_is_not_flagged(caplog):
    rng = np.random.default_rng(1)
    baseline = rng.normal(1500, 300, 400)
    model = baseline + rng.normal(0, 300, 400)
    scores = rng.choice([0.0, 0.5, 1.0], size=400, p=[0.4, 0.2, 0.4])
    with caplog.at_level(logging.WARNING, logger="evaluation.winrate"):
        result = length_control(scores, model, baseline)
    assert result["lc_support_share"] > 0.3 and result["lc_extrapolated"] == 0.0 == result["lc_far_from_raw"]
    assert result["lc_win_rate"] == pytest.approx(100 * scores.mean(), abs=5) and caplog.text == ""


def test_every_answer_on_one_side_of_the_baseline_is_an_extrapolation():
    rng = np.random.default_rng(2)
    baseline = np.full(100, 1000.0)
    model = baseline + rng.uniform(1, 400, 100)  # all longer: zero length difference lies outside the data
    scores = rng.choice([0.0, 1.0], size=100)
    assert length_control(scores, model, baseline)["lc_extrapolated"] == 1.0


def test_far_from_raw_follows_alpaca_eval_warning_rule():
    # 10 points, or a quarter of the way to 0 or 100, whichever is more
    assert far_from_raw(50.0, 30.0) and not far_from_raw(45.0, 30.0)  # 30 + max(10, 17.5) = 47.5
    assert far_from_raw(19.0, 30.0) and not far_from_raw(21.0, 30.0)  # 30 - max(10, 7.5) = 20
    assert far_from_raw(60.0, 90.0) and not far_from_raw(70.0, 90.0)  # 90 - max(10, 22.5) = 67.5
