"""The pooled noise model: estimates against statsmodels, calibration of the length-adjusted slope on synthetic
sweeps with a known length effect, and the tables `analyze` writes from them."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from evaluation.analysis import analyze
from evaluation.analysis.linear import fit_linear, holm, ols_batch
from evaluation.analysis.pooled import build_design, pooled_slopes, seeds_paired
from evaluation.analysis.synthetic import simulate_length_confound, write_length_confound_sweep

SIMS = 2000


def _frame(sim: dict, i: int = 0) -> pd.DataFrame:
    df = pd.DataFrame(sim["rows"])
    df["y"], df["loglen"] = sim["score"][i], sim["log_length"][i]
    return df


def _adjusted(sim: dict) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Length-adjusted pooled fit of every simulation at once: the design of `build_design` plus log length."""
    base, names, sloped = build_design(sim["rows"])
    length = sim["log_length"] - sim["log_length"].mean(axis=1, keepdims=True)
    design = np.concatenate([np.broadcast_to(base, (length.shape[0], *base.shape)), length[..., None]], axis=2)
    coef, se, _, _ = ols_batch(design, sim["score"])
    return coef, se, names + ["covariate"], sloped


def test_pooled_ols_matches_statsmodels_formula():
    sim = simulate_length_confound(1, seed=3)
    df = _frame(sim)
    for s in df.strategy.unique():
        df[f"i_{s}"] = (df.strategy == s).astype(float)
        df[f"x_{s}"] = np.where(df.strategy == s, df.level, 0.0)
    df["x_Random"] = 0.0
    slopes = " + ".join(f"Q('x_{s}')" for s in df.strategy.unique() if s != "Random")
    ref = smf.ols(f"y ~ 0 + C(strategy) + {slopes} + loglen", df).fit()
    length = df.loglen.to_numpy()
    design, names, _ = build_design(sim["rows"], covariate=length)
    fit = fit_linear(design, df.y.to_numpy(), names)
    assert fit.df == ref.df_resid == len(df) - 14
    assert fit.sigma == pytest.approx(np.sqrt(ref.scale), rel=1e-9)
    for s in ("R-Micro", "I-Macro"):
        assert fit.estimate(f"{s}:slope") == pytest.approx(ref.params[f"Q('x_{s}')"], rel=1e-8)
        assert fit.se(f"{s}:slope") == pytest.approx(ref.bse[f"Q('x_{s}')"], rel=1e-8)
        assert fit.pvalue(f"{s}:slope") == pytest.approx(ref.pvalues[f"Q('x_{s}')"], rel=1e-6)
    assert fit.estimate("covariate") == pytest.approx(ref.params["loglen"], rel=1e-8)


def test_paired_seeds_fit_a_mixed_model_whose_slopes_match_the_within_seed_fit():
    # Balanced: every seed in every cell, so REML's slope and its se equal the seed-fixed-effect OLS ones.
    rng = np.random.default_rng(0)
    rows = [{"strategy": s, "level": lv, "seed": k} for s in ("R-Micro", "I-Micro") for lv in (0.0, 0.5, 1.0)
            for k in range(8)]  # fmt: skip
    seed_shift = rng.normal(0, 0.004, 8)
    y = np.array([0.8 - 0.003 * (r["strategy"] == "R-Micro") * r["level"] + seed_shift[r["seed"]] for r in rows])
    y += rng.normal(0, 0.001, y.size)
    assert seeds_paired(rows)
    design, names, _ = build_design(rows)
    fit = fit_linear(design, y, names, groups=[r["seed"] for r in rows])
    df = pd.DataFrame(rows).assign(y=y)
    df["x_R"] = np.where(df.strategy == "R-Micro", df.level, 0.0)
    df["x_I"] = np.where(df.strategy == "I-Micro", df.level, 0.0)
    within = smf.ols("y ~ 0 + C(strategy) + x_R + x_I + C(seed)", df).fit()
    assert fit.method == "mixedlm"
    assert fit.estimate("R-Micro:slope") == pytest.approx(within.params["x_R"], rel=1e-6)
    assert fit.se("R-Micro:slope") == pytest.approx(within.bse["x_R"], rel=1e-3)
    assert fit.sigma == pytest.approx(np.sqrt(within.scale), rel=1e-3)
    assert 0.002 < fit.sigma_seed < 0.008  # the seed shift of sd 0.004 is recognised, not folded into the noise
    unpaired = fit_linear(design, y, names)
    assert unpaired.se("R-Micro:slope") > 2 * fit.se("R-Micro:slope")  # pairing removes the seed noise
    assert not seeds_paired([{**r, "seed": r["seed"] if r["level"] else 99 + r["seed"]} for r in rows])


def test_length_adjusted_slope_is_calibrated_at_zero_where_the_unadjusted_one_is_not():
    sim = simulate_length_confound(SIMS, seed=1)  # score moves with log length only; diversity effect 0
    coef, se, names, sloped = _adjusted(sim)
    idx = [names.index(f"{s}:slope") for s in sloped]
    inside = (np.abs(coef[:, idx]) <= se[:, idx]).mean(axis=0)
    assert ((inside >= 0.63) & (inside <= 0.73)).all(), dict(zip(sloped, inside, strict=True))
    r_micro = names.index("R-Micro:slope")
    assert abs(coef[:, r_micro].mean()) < 4 * coef[:, r_micro].std() / np.sqrt(SIMS)
    base, base_names, _ = build_design(sim["rows"])
    raw, raw_se, _, _ = ols_batch(base, sim["score"])  # the confounded fit: length's effect read as diversity's
    j = base_names.index("R-Micro:slope")
    assert (np.abs(raw[:, j]) <= raw_se[:, j]).mean() < 0.05
    assert raw[:, j].mean() == pytest.approx(-0.0034 * 2.1, rel=0.05)


def test_a_known_diversity_effect_is_recovered_beside_the_length_effect():
    sim = simulate_length_confound(SIMS, diversity={"micro_response": -0.003}, seed=2)
    coef, se, names, _ = _adjusted(sim)
    j = names.index("R-Micro:slope")
    assert coef[:, j].mean() == pytest.approx(-0.003, abs=3 * coef[:, j].std() / np.sqrt(SIMS))
    assert 0.63 <= (np.abs(coef[:, j] + 0.003) <= se[:, j]).mean() <= 0.73
    assert coef[:, names.index("covariate")].mean() == pytest.approx(-0.0034, rel=0.05)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_analyze_writes_pooled_adjusted_and_entropy_tables(tmp_path, capsys):
    sim = write_length_confound_sweep(tmp_path, diversity={"micro_response": -0.003}, seed=5, noise=2e-4)
    result = analyze(tmp_path, n_boot=20)
    printed = capsys.readouterr().out
    assert "adjusted for log mean response tokens" in printed and "per bit of response token entropy" in printed
    out = tmp_path / "analysis"
    rows = read_csv(out / "pooled_slopes.csv")
    adjusted = {r["strategy"]: r for r in rows if r["adjustment"] == "log_mean_response_tokens"}
    # Seeds 0-2 run in every cell: the seed is a paired factor, fitted as a random intercept.
    design, names, _ = build_design(sim["rows"], covariate=sim["log_length"][0])
    fit = fit_linear(design, sim["score"][0], names, groups=[r["seed"] for r in sim["rows"]])
    assert adjusted["R-Micro"]["method"] == "mixedlm"
    assert float(adjusted["R-Micro"]["slope"]) == pytest.approx(fit.estimate("R-Micro:slope"), rel=1e-6)
    assert float(adjusted["R-Micro"]["se"]) == pytest.approx(fit.se("R-Micro:slope"), rel=1e-6)
    assert adjusted["R-Micro"]["call"] == "better"  # lower loss with degree, beyond length
    assert {r["call"] for s, r in adjusted.items() if s != "R-Micro"} == {"within noise"}
    p = [float(r["p"]) for r in adjusted.values()]
    assert [float(r["p_holm"]) for r in adjusted.values()] == pytest.approx(list(holm(p)))
    noise = read_csv(out / "noise.csv")[0]
    assert float(noise["df"]) == 57 - 13 - 2 and float(noise["random_sd"]) > 0  # 13 fixed effects, 3 seeds
    entropy = read_csv(out / "entropy_slopes.csv")
    r_micro = next(r for r in entropy if r["strategy"] == "R-Micro" and r["adjustment"] == "none")
    assert float(r_micro["x_span"]) == pytest.approx(float(r_micro["x_hi"]) - float(r_micro["x_lo"]))
    assert float(r_micro["x_span"]) > 1.0  # R-Micro's subsets span ~1 bit (0.5 bit per log-token x 2.1, + 0.4)
    assert any("no log_trained_tokens adjustment" in n for n in result["notes"])
    assert (out / "score_vs_degree_heldout_loss.png").stat().st_size > 0


def test_pooled_slopes_say_why_a_covariate_model_cannot_be_fitted():
    points = ((0.0, 1.0, 10), (0.5, 1.1, 20), (1.0, 1.3, 40))
    rows = [{"strategy": "R-Micro", "level": lv, "seed": 0, "model": "m", "n": 4, "s/loss": v,
             "subset/response/mean_tokens": t} for lv, v, t in points]  # fmt: skip
    out = pooled_slopes(rows, ["s/loss"], covariates=["log_mean_response_tokens"])
    adjusted = next(r for r in out if r["adjustment"] == "log_mean_response_tokens")
    assert adjusted["missing"] == "ols_batch: design of 3 columns has rank 2 (a covariate is collinear)"  # 10, 20, 40
    assert next(r for r in out if r["adjustment"] == "none")["df"] == 1
