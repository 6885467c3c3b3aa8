"""`mode=plan` power maths against statsmodels' power functions and simulation; pilot noise and step time."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

from core.progress import format_duration
from evaluation.analysis.linear import ols_batch
from evaluation.analysis.plan import main, mde, pilot_step_seconds, plan, power
from evaluation.analysis.synthetic import write_synthetic_sweep


@pytest.mark.parametrize("m", [4, 8, 16])
def test_mde_and_power_match_statsmodels_for_a_paired_t_test(m):
    # One-sample t on m per-seed contrasts of sd 1: se = 1 / sqrt(m), df = m - 1, effect size = MDE / sd.
    d = TTestPower().solve_power(nobs=m, alpha=0.05, power=0.8, alternative="two-sided")
    assert mde(1 / math.sqrt(m), m - 1) == pytest.approx(d, rel=1e-6)
    assert power(0.7, 1 / math.sqrt(m), m - 1) == pytest.approx(TTestPower().power(0.7, m, 0.05), rel=1e-6)


def test_slope_mde_has_its_power_in_simulation():
    levels, seeds, sigma, sims = np.array([0.0, 0.5, 1.0]), 3, 1.0, 6000
    x = np.repeat(levels, seeds)
    report = plan(sigma=sigma, step_seconds=1.0, grid={"strategies": ["s"], "levels": levels.tolist(), "seeds": seeds,
                                                        "locks": [False], "random_seeds": 0, "steps": 1})  # fmt: skip
    row = report.rows[0]
    # One strategy without random runs: pooled df = 9 runs - 2 parameters - 2 seed intercepts = 5.
    assert row["jobs"] == 9 and row["df"] == 5
    assert row["se"] == pytest.approx(sigma / math.sqrt(seeds * 0.5))
    # The planned analysis: OLS with a fixed effect per seed (the paired model), true slope = MDE.
    rng = np.random.default_rng(0)
    seed_of = np.tile(np.arange(seeds), levels.size)
    design = np.column_stack([np.ones_like(x), x] + [(seed_of == k).astype(float) for k in range(1, seeds)])
    y = row["mde"] * x + rng.normal(0, 5.0, (sims, seeds))[:, seed_of]  # a large seed shift, paired away
    y = y + rng.normal(0, sigma, (sims, x.size))
    coef, se, _, df = ols_batch(design, y)
    assert df == 5 and se[:, 1].mean() == pytest.approx(row["se"], rel=0.05)
    rejected = np.abs(coef[:, 1] / se[:, 1]) > sps.t.ppf(0.975, df)
    assert rejected.mean() == pytest.approx(0.8, abs=0.02)


def test_factorial_mdes_have_their_power_with_paired_seeds():
    m, sigma, sims = 8, 1.0, 4000
    report = plan(sigma=sigma, step_seconds=2.0, factorial={"seeds": m, "random_seeds": 3, "steps": 10,
                                                            "job_overhead_seconds": 40})  # fmt: skip
    rows = {r["effect"]: r for r in report.rows}
    assert rows["window x diversity"]["jobs"] == 4 * 8 + 2 * 3
    assert rows["window x diversity"]["hours"] == pytest.approx(38 * 60 / 3600)
    rng = np.random.default_rng(2)
    shift = rng.normal(0, 5.0, (sims, m, 1))  # a large seed effect cancels in the paired contrasts
    delta = rows["window x diversity"]["mde"]
    cells = shift + rng.normal(0, sigma, (sims, m, 4)) + np.array([0.0, 0.0, 0.0, delta])
    contrast = (cells[..., 3] - cells[..., 2]) - (cells[..., 1] - cells[..., 0])
    p = sps.ttest_1samp(contrast, 0.0, axis=1).pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.025)
    assert rows["diversity main effect"]["mde"] == pytest.approx(delta / 2)


def test_pilot_gives_sigma_and_step_time(tmp_path, capsys):
    write_synthetic_sweep(tmp_path, slopes={"micro_response": 5.0}, levels=(0.0, 0.5, 1.0), seeds=(0,), broken=False)
    for i, log in enumerate(sorted(tmp_path.rglob("DONE"))[:2]):
        log.with_name("run.log").write_text(
            f"[x] step 1/12\n[x] training finished: {12 + i} step(s) in {format_duration(90 + 30 * i)} (900 tokens/s)\n"
        )
    assert pilot_step_seconds(tmp_path) == (pytest.approx((90 + 120) / 25), 2)
    report = main({"pilot_sweep_dir": str(tmp_path), "score": "heldout/loss", "grid": None,
                   "factorial": {"seeds": 8, "steps": 12}})  # fmt: skip
    assert report.sigma_df == 1  # 4 runs (3 degrees, 1 random) and 3 parameters (2 intercepts, 1 slope)
    assert "pooled per-run sd (ols) of heldout/loss" in report.sigma_source and "2 run.log(s)" in report.step_source
    printed = capsys.readouterr().out
    assert "window x diversity" in printed and "90% upper bound" in printed
    with pytest.raises(ValueError, match="set plan.step_seconds"):
        plan(pilot_sweep_dir=tmp_path / "random", sigma=0.01, grid=None)
    with pytest.raises(ValueError, match=r"random: no pooled noise for score 'heldout/loss' \(1 finished runs"):
        plan(pilot_sweep_dir=tmp_path / "random", score="heldout/loss", grid=None)


def test_a_paired_pilot_plans_paired_designs_with_the_within_seed_sigma():
    """A seed's shared shift cancels in every paired contrast: planning with the per-run sd overstated study 2's
    MDE (0.0019 instead of ~0.0017)."""
    import math

    from evaluation.analysis.collect import collect_runs
    from evaluation.analysis.plan import pilot_noise
    from evaluation.analysis.pooled import noise_table

    pilot = Path(__file__).resolve().parents[3] / "docs/results/factorial"
    score = "eval/reference_loss/mtbench_loss"
    sigma, df, method = pilot_noise(pilot, score)
    (row,) = noise_table(collect_runs(pilot)[0], [score])
    assert method == "mixedlm" and sigma == row["sigma_pooled"] < row["sigma_run"] and df == 25
    assert row["sigma_run"] == math.hypot(row["sigma_pooled"], row["sigma_seed_re"])
