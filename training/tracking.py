"""Weights & Biases for one job: one run per job, opened and finished in plain sight by run.py.

Offline unless the user set WANDB_MODE (sync later with `wandb sync <run_dir>/wandb/offline-run-*`). Each
value has one place:

- run config: the resolved Hydra config (`diversity.level`, `diversity.n`, `seed`, `strategy.*`, `model.*`
  ...; the module's own hyperparameters are not logged again), `subset.*` (what the selection found: `k`,
  `k_min`, `k_max`, `n_types`, pool and held-out details) and the subset's post-hoc metrics (`subset/...`),
  so a dashboard can plot score against any of them without code;
- history: the training curves (`train/loss`, `val/...` per step) and the per-prompt tables;
- summary: the final scores (`heldout/...`, `train/...`, `eval/...`), written once, not as a history row;
- artifacts: the subset manifest (used by the run), the generations and judge verdicts, and the final
  adapter when it is small (`MODEL_ARTIFACT_MAX_MB`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Design values the run config already holds (diversity.level, diversity.n, seed, strategy.*), left out of
# the `subset` block so each is logged once; `info` is the selector's free-form detail (selection.json keeps it).
_IN_RUN_CONFIG = ("strategy", "component", "level", "n", "seed", "info")
MODEL_ARTIFACT_MAX_MB = 50.0  # a LoRA adapter of SmolLM2 is ~4 MB; full weights (>500 MB) stay on disk


def build_logger(logger_cfg: Any, run_id: str | None = None) -> Any:
    """Instantiate the configured Lightning logger; None when `logger=none` (an empty group).

    `run_id` names the W&B run (resume="allow"), so a job restarted from its checkpoint continues the same
    run instead of opening a second one.
    """
    if not logger_cfg or "_target_" not in logger_cfg:
        return None
    from hydra.utils import instantiate

    if "WandbLogger" not in str(logger_cfg["_target_"]):
        return instantiate(logger_cfg)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(logger_cfg["save_dir"]).mkdir(parents=True, exist_ok=True)
    extra = {"id": run_id, "resume": "allow"} if run_id else {}
    logger = instantiate(logger_cfg, **extra)
    # Lightning passes anonymous=None, which current wandb answers with a warning that it has no effect.
    if getattr(logger, "_wandb_init", {}).get("anonymous", False) is None:
        logger._wandb_init.pop("anonymous")
    return logger


def log_config(logger: Any, resolved: dict[str, Any]) -> None:
    """The whole resolved config (strategy, diversity, model, data, trainer, eval) as run config."""
    if logger is not None:
        logger.log_hyperparams({k: v for k, v in resolved.items() if k not in ("hydra", "paths")})


def is_wandb(logger: Any) -> bool:
    """A real W&B logger on the process that owns the run (rank 0; other DDP ranks hold a dummy)."""
    from lightning.pytorch.utilities import rank_zero_only

    return type(logger).__name__ == "WandbLogger" and rank_zero_only.rank == 0


def log_selection(
    logger: Any, run_dir: Path, run_name: str, selection_info: dict[str, Any], subset_metrics: dict[str, Any]
) -> None:
    """Put the subset's description in the run config and its manifest in an Artifact named after the run."""
    if logger is None:
        return
    subset = {k: v for k, v in selection_info.items() if k not in _IN_RUN_CONFIG}
    logger.log_hyperparams({"subset": subset, **subset_metrics})
    if not is_wandb(logger):
        return
    import wandb

    run = logger.experiment
    artifact = wandb.Artifact(
        name=f"subset-{run_name}",
        type="subset",
        metadata={k: v for k, v in selection_info.items() if k != "info"},
    )
    for name in ("subset.jsonl", "selection.json", "subset_metrics.json"):
        if (run_dir / name).exists():
            artifact.add_file(str(run_dir / name))
    run.log_artifact(artifact)


def final_scores(metrics: dict[str, Any]) -> dict[str, float]:
    """The scores a run reports: namespaced numbers (`eval/...`, `heldout/...`, `train/...`); bare design
    values (`k`, `level`, `n`) that metrics.json repeats already sit in the run config."""
    return {k: v for k, v in metrics.items() if "/" in k and isinstance(v, int | float) and not isinstance(v, bool)}


def log_final(
    logger: Any,
    metrics: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]],
    run_dir: Path | None = None,
    model_artifact_max_mb: float = MODEL_ARTIFACT_MAX_MB,
) -> None:
    """Final scores (W&B: into the summary only), one W&B Table per benchmark (prompts, generations,
    verdicts) and, with `run_dir`, an artifact of its generations and verdicts, plus the final model when its
    folder is at most `model_artifact_max_mb`."""
    if logger is None:
        return
    scores = final_scores(metrics)
    if not is_wandb(logger):
        logger.log_metrics(scores)
        return
    import wandb

    run = logger.experiment
    run.summary.update(scores)
    for bench, rows in tables.items():
        if rows:
            columns = sorted({key for row in rows for key in row})
            data = [[str(r.get(c)) for c in columns] for r in rows]
            run.log({f"eval/{bench}/table": wandb.Table(columns=columns, data=data)})
    if run_dir is not None:
        _log_outputs(run, Path(run_dir), model_artifact_max_mb)


def _log_outputs(run: Any, run_dir: Path, model_artifact_max_mb: float) -> None:
    """The evaluation files (`generations/`, `verdicts/`) and, by size, `model/` as run artifacts."""
    import wandb

    files = sorted(p for folder in ("generations", "verdicts") for p in (run_dir / folder).glob("*.jsonl"))
    if files:
        artifact = wandb.Artifact(name=f"eval-{run.id}", type="evaluation")
        for path in files:
            artifact.add_file(str(path), name=f"{path.parent.name}/{path.name}")
        run.log_artifact(artifact)
    model_dir = run_dir / "model"
    if model_dir.is_dir():
        size_mb = sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file()) / 2**20
        if size_mb <= model_artifact_max_mb:
            artifact = wandb.Artifact(name=f"model-{run.id}", type="model")
            artifact.add_dir(str(model_dir))
            run.log_artifact(artifact)
        else:
            log.info("model/ is %.0f MB (> %.0f MB): not logged as a W&B artifact", size_mb, model_artifact_max_mb)


def finish(logger: Any, failed: bool = False) -> None:
    """Close the job's W&B run (multirun jobs share a process: an open run would swallow the next job)."""
    if logger is not None and is_wandb(logger):
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)
