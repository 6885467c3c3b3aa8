"""The 2 x 2 factorial with paired seeds and the exact sign-flip test, against statsmodels, scipy and brute force."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from evaluation.analysis.factorial import (
    add_config_field,
    factorial_fit,
    factorial_table,
    find_design,
    paired_contrasts,
    sign_flip_test,
)
from evaluation.analysis.synthetic import write_run_dir

REPO = Path(__file__).resolve().parents[3]

WINDOWS = ("short", "long")


def _runs(seeds: int = 8, rng_seed: int = 0, effect: float = -0.004, interaction: float = 0.003) -> list[dict]:
    """Four cells per seed: diversity lowers the loss by `effect` in the short window, `effect + interaction`
    in the long one; each seed shifts every cell alike."""
    rng = np.random.default_rng(rng_seed)
    shift = rng.normal(0, 0.003, seeds)
    runs = []
    for s in range(seeds):
        for window, level in itertools.product(WINDOWS, (0.33, 1.0)):
            y = 0.8 + 0.01 * (window == "long") + (level == 1.0) * (effect + interaction * (window == "long"))
            runs.append({"seed": s, "window": window, "level": level, "loss": y + shift[s] + rng.normal(0, 0.001)})
    return runs


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_factorial_fit_matches_statsmodels_mixedlm_and_the_per_seed_contrasts():
    runs = _runs()
    fit = factorial_fit(runs, "loss", "window", "level", order={"window": WINDOWS})
    df = pd.DataFrame(runs)
    df["w"] = np.where(df.window == "long", 0.5, -0.5)
    df["d"] = np.where(df.level == 1.0, 0.5, -0.5)
    ref = smf.mixedlm("loss ~ w * d", df, groups=df["seed"]).fit(reml=True, method=["lbfgs"])
    for ours, theirs in (("window", "w"), ("diversity", "d"), ("window:diversity", "w:d")):
        assert fit.effect(ours)[0] == pytest.approx(ref.fe_params[theirs], rel=1e-6)
        assert fit.effect(ours)[1] == pytest.approx(ref.bse_fe[theirs], rel=1e-3)
    c = paired_contrasts(runs, "loss", "window", "level", fit.levels)
    assert len(c["seeds"]) == 8
    # Balanced and complete: the mixed model's effects are the means of the per-seed contrasts.
    assert fit.effect("diversity")[0] == pytest.approx(c["diversity"].mean(), rel=1e-9)
    assert fit.effect("window:diversity")[0] == pytest.approx(c["window:diversity"].mean(), rel=1e-9)
    assert c["diversity@short"].mean() == pytest.approx(-0.004, abs=0.0015)
    assert fit.effect("diversity")[2] < 0.001 and fit.fit.sigma_seed > 0.001
    with pytest.raises(ValueError, match="exactly 2 levels"):
        factorial_fit([*runs, {**runs[0], "window": "mid"}], "loss", "window", "level")


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_factorial_table_falls_back_to_ols_when_seeds_are_not_paired_and_says_why_it_cannot_fit():
    runs = _runs()
    unpaired = [{**r, "seed": i} for i, r in enumerate(runs)]  # every run its own seed: no seed intercept
    rows = {r["effect"]: r for r in factorial_table(unpaired, ["loss"], "window", order={"window": WINDOWS})}
    assert rows["diversity"]["method"] == "ols" and rows["diversity"]["df"] == len(runs) - 4
    ols = factorial_fit(runs, "loss", "window", "level", order={"window": WINDOWS}, paired=False)
    assert rows["diversity"]["estimate"] == pytest.approx(ols.effect("diversity")[0], rel=1e-12)
    one_window = [r for r in runs if r["window"] == "short"]
    (missing,) = factorial_table(one_window, ["loss"], "window")
    assert "exactly 2 levels" in missing["missing"]


@pytest.mark.parametrize(("offset", "scale"), [(0.0, 1.0), (0.9, 1.0), (0.0, 1000.0), (5.0, 0.01)])
def test_the_paired_fit_does_not_depend_on_the_scores_units(offset, scale):
    """A loss of ~0.9 with noise ~1e-3 made lbfgs' Hessian singular on raw values (the committed factorial fell
    back to unpaired OLS): the seed-intercept fit must give the same answer in any units."""
    runs = _runs()
    moved = [{**r, "loss": offset + scale * r["loss"]} for r in runs]
    reference = factorial_fit(runs, "loss", "window", "level", order={"window": WINDOWS})
    fit = factorial_fit(moved, "loss", "window", "level", order={"window": WINDOWS})
    assert fit.fit.method == "mixedlm" and fit.fit.df == 21
    for effect in ("window", "diversity", "window:diversity"):
        assert fit.effect(effect)[0] == pytest.approx(scale * reference.effect(effect)[0], rel=1e-6)
        assert fit.effect(effect)[1] == pytest.approx(scale * reference.effect(effect)[1], rel=1e-3)
        assert fit.effect(effect)[2] == pytest.approx(reference.effect(effect)[2], rel=1e-3)
    assert fit.fit.sigma_seed == pytest.approx(scale * reference.fit.sigma_seed, rel=1e-3)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_the_committed_factorial_fits_the_seed_intercept_as_statsmodels_does():
    """On study 2's own runs lbfgs on raw values raised "Singular matrix" and the table fell back to unpaired OLS."""
    runs = pd.read_csv(REPO / "docs/results/factorial/analysis/runs.csv").to_dict("records")
    design = find_design(runs)
    score = "eval/reference_loss/mtbench_loss"
    fit = factorial_fit(design.runs, score, "length_window", "level", order={"window": design.windows})
    df = pd.DataFrame(design.runs)
    df["w"] = np.where(df.length_window == design.windows[1], 0.5, -0.5)
    df["d"] = np.where(df.level == design.levels[1], 0.5, -0.5)
    df["y"] = df[score]
    ref = smf.mixedlm("y ~ w * d", df, groups=df["seed"]).fit(reml=True, method=["bfgs"])
    assert fit.fit.method == "mixedlm" and fit.fit.df == 21
    for ours, theirs in (("diversity", "d"), ("window:diversity", "w:d")):
        assert fit.effect(ours)[0] == pytest.approx(ref.fe_params[theirs], rel=1e-4)
        assert fit.effect(ours)[1] == pytest.approx(ref.bse_fe[theirs], rel=1e-2)
    assert fit.fit.sigma_seed == pytest.approx(np.sqrt(ref.cov_re.iloc[0, 0]), rel=1e-2)


def test_sign_flip_p_is_exact():
    c = np.array([0.5, -0.2, 1.1, 0.7, 0.3, -0.1])
    result = sign_flip_test(c)
    patterns = np.array(list(itertools.product((1, -1), repeat=c.size)))
    brute = np.mean(np.abs(patterns @ c) >= abs(c.sum()) - 1e-12)
    assert result["exact"] and result["p"] == pytest.approx(brute)
    scipy_p = sps.permutation_test(
        (c,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative="two-sided"
    ).pvalue
    assert result["p"] == pytest.approx(scipy_p)
    assert sign_flip_test(np.ones(8))["p"] == pytest.approx(2 / 256) == sign_flip_test(np.ones(8))["min_p"]
    sampled = sign_flip_test(np.r_[c, c, c, c], n_random=20_000)  # 24 seeds: Monte Carlo, seeded
    assert not sampled["exact"] and sampled["p"] == sign_flip_test(np.r_[c, c, c, c], n_random=20_000)["p"]


def test_sign_flip_rejects_at_its_level_under_the_null():
    rng = np.random.default_rng(1)
    p = np.array([sign_flip_test(rng.normal(size=8))["p"] for _ in range(400)])
    assert 0.02 <= np.mean(p <= 0.05) <= 0.09  # exact test: size <= alpha up to simulation noise


def test_cells_named_by_a_config_field(tmp_path):
    rows = []
    for window in WINDOWS:
        cfg = {"seed": 0, "diversity": {"level": 1.0, "match_length": {"name": window}}}
        write_run_dir(tmp_path / window, cfg, {"strategy": "micro_response", "level": 1.0, "n": 2}, None, {"a/b": 1})
        rows.append({"run_dir": window})
    named = add_config_field(rows, tmp_path, "diversity.match_length.name", "window")
    assert [r["window"] for r in named] == list(WINDOWS)
    with pytest.raises(ValueError, match=r"short/config.yaml: config field 'diversity.window' missing"):
        add_config_field(rows, tmp_path, "diversity.window")


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_factorial_table_puts_the_model_beside_the_sign_flip_test():
    runs = _runs(seeds=8, rng_seed=3)
    rows = {r["effect"]: r for r in factorial_table(runs, ["loss"], "window", order={"window": WINDOWS})}
    assert set(rows) == {"window", "diversity", "window:diversity", "diversity@short", "diversity@long"}
    inter = rows["window:diversity"]
    assert inter["flip_mean"] == pytest.approx(inter["estimate"], rel=1e-9) and inter["seeds"] == 8
    assert rows["diversity@short"]["flip_p"] < 0.05 and rows["diversity@short"]["flip_mean"] < 0
    assert "estimate" not in rows["diversity@long"] and inter["method"] == "mixedlm"


def _design_rows(effect: float = -0.01) -> list[dict]:
    """2 windows x 2 degrees x 4 paired seeds of one strategy, a random baseline per window and the base model."""
    rng = np.random.default_rng(0)
    rows = []
    for window, offset in (("180-360", 0.3), ("30-100", 0.0)):
        for level in (0.3333, 1.0):
            for seed in range(4):
                score = 1.0 + offset + (effect if level == 1.0 else 0.0) + 0.001 * seed + rng.normal(0, 1e-4)
                rows.append({"strategy_name": "micro_response", "length_window": window, "level": level,
                             "seed": seed, "s": score, "train/steps": 12})  # fmt: skip
        for seed in range(3):
            rows.append({"strategy_name": "random", "length_window": window, "level": 1.0, "seed": seed,
                         "s": 1.0 + offset, "train/steps": 12})  # fmt: skip
    rows.append({"strategy_name": "random", "length_window": "", "level": 1.0, "seed": 0, "s": 1.5, "train/steps": 0})
    return rows


def test_the_sweep_design_is_found_and_baselines_are_kept_apart():
    from evaluation.analysis.factorial import baseline_table, find_design

    rows = _design_rows()
    design = find_design(rows)
    assert design is not None and design.windows == ("30-100", "180-360") and design.levels == (0.3333, 1.0)
    assert len(design.runs) == 16 and all(r["strategy_name"] == "micro_response" for r in design.runs)
    table = factorial_table(design.runs, ["s"], "length_window", order={"window": design.windows})
    by_effect = {r["effect"]: r for r in table}
    assert by_effect["diversity"]["estimate"] == pytest.approx(-0.01, abs=2e-4)
    assert by_effect["window"]["estimate"] == pytest.approx(0.3, abs=2e-4)
    assert by_effect["diversity"]["seeds"] == 4 and by_effect["diversity"]["flip_p"] == pytest.approx(2 / 16)
    baselines = {r["baseline"]: r for r in baseline_table(rows, ["s"])}
    assert baselines["base model"]["mean"] == 1.5 and baselines["base model"]["runs"] == 1
    assert baselines["random 30-100"]["runs"] == 3 and baselines["random 180-360"]["mean"] == pytest.approx(1.3)
    assert find_design([r for r in rows if r["length_window"] != "30-100"]) is None  # one window: no 2 x 2
    failed = [{**r, "s": float("nan")} if r.get("train/steps") == 0 else r for r in rows]  # base model failed to score
    assert "base model" not in {r["baseline"] for r in baseline_table(failed, ["s"])}
