"""Weights & Biases for one job: one run per job, opened and finished in plain sight by run.py.

Offline unless the user set WANDB_MODE (sync later with `wandb sync <run_dir>/wandb/offline-run-*`). The run
config carries strategy, level, k and the subset's post-hoc metrics, so a dashboard can plot score against any
of them without code; the subset manifest is logged as an Artifact that the training run uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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
    return instantiate(logger_cfg, **extra)


def log_config(logger: Any, resolved: dict[str, Any]) -> None:
    """The whole resolved config (strategy, diversity, model, data, trainer, eval) as run config."""
    if logger is not None:
        logger.log_hyperparams({k: v for k, v in resolved.items() if k not in ("hydra", "paths")})


def is_wandb(logger: Any) -> bool:
    """A real W&B logger on the process that owns the run (rank 0; other DDP ranks hold a dummy)."""
    from lightning.pytorch.utilities import rank_zero_only

    return type(logger).__name__ == "WandbLogger" and rank_zero_only.rank == 0


def log_selection(logger: Any, run_dir: Path, selection_info: dict[str, Any], subset_metrics: dict[str, Any]) -> None:
    """Put the subset's description in the run config and its manifest in an Artifact."""
    if logger is None:
        return
    logger.log_hyperparams({"subset": {k: v for k, v in selection_info.items() if k != "info"}, **subset_metrics})
    if not is_wandb(logger):
        return
    import wandb

    run = logger.experiment
    run.config.update({"k": selection_info.get("k"), "level": selection_info.get("level")}, allow_val_change=True)
    artifact = wandb.Artifact(
        name=f"subset-{selection_info['strategy']}-n{selection_info['n']}-l{selection_info['level']}-s{selection_info['seed']}",
        type="subset",
        metadata={k: v for k, v in selection_info.items() if k != "info"},
    )
    for name in ("subset.jsonl", "selection.json", "subset_metrics.json"):
        if (run_dir / name).exists():
            artifact.add_file(str(run_dir / name))
    run.log_artifact(artifact)


def log_final(logger: Any, metrics: dict[str, float], tables: dict[str, list[dict[str, Any]]]) -> None:
    """Final scalars into the summary and one W&B Table per benchmark (prompts, generations, verdicts)."""
    if logger is None:
        return
    logger.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float))})
    if not is_wandb(logger):
        return
    import wandb

    run = logger.experiment
    run.summary.update(metrics)
    for bench, rows in tables.items():
        if rows:
            columns = sorted({key for row in rows for key in row})
            run.log(
                {
                    f"eval/{bench}/table": wandb.Table(
                        columns=columns, data=[[str(r.get(c)) for c in columns] for r in rows]
                    )
                }
            )


def finish(logger: Any, failed: bool = False) -> None:
    """Close the job's W&B run (multirun jobs share a process: an open run would swallow the next job)."""
    if logger is not None and is_wandb(logger):
        import wandb

        if wandb.run is not None:
            wandb.finish(exit_code=1 if failed else 0)
