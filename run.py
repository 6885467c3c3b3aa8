"""macro2micro: pool -> types -> degree-controlled selection -> fine-tune -> evaluate -> log, as one Hydra job.

python run.py                                   # offline default: random subset, SmolLM2, CPU
python run.py mode=select strategy=micro_response diversity.level=0.5
python run.py -m strategy=micro_response,macro_instruction diversity.level=0,0.5,1
python run.py mode=analyze sweep_dir=outputs/sweeps/dev
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("macro2micro")
# Run folders are named by what the job is; an analysis is not a training job of the default strategy.
OmegaConf.register_new_resolver(
    "job_name",
    lambda mode, strategy, n, level, seed: "analyze" if mode == "analyze" else f"{strategy}_n{n}_l{level}_s{seed}",
    replace=True,
)
BAD_INPUT = (FileNotFoundError, ValueError)  # PoolError, ModelNotFoundError and infeasible n are ValueErrors


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    if cfg.mode not in ("train", "select", "analyze"):
        sys.exit(f"error: mode must be train, select or analyze, got '{cfg.mode}'")
    if cfg.mode == "analyze":
        return analyze(cfg)
    from training.rundir import RunDir, config_hash

    run_dir = RunDir(cfg.paths.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    cfg_hash = config_hash(resolved)
    if cfg.resume and cfg.mode == "train" and run_dir.is_done(cfg_hash):
        metrics = run_dir.read_json("metrics.json")
        log.info("already done (DONE matches this config): %s", run_dir.path)
        return metrics.get("heldout/loss")
    try:
        return run_job(cfg, run_dir, resolved, cfg_hash)
    except BAD_INPUT as err:
        removed = run_dir.discard_if_empty_handed()
        sys.exit(f"error: {err}" + ("" if removed else f" (kept {run_dir.path} for resuming)"))


def run_job(cfg: DictConfig, run_dir, resolved: dict, cfg_hash: str) -> float | None:
    import lightning as L
    from hydra.utils import instantiate

    from core.assets import check_model, load_tokenizer
    from diversity.report import describe_subset
    from evaluation.runner import evaluate
    from training import tracking

    L.seed_everything(cfg.seed, workers=True)  # seed=0 is a seed too: never `if cfg.seed`
    check_model(cfg.model.name_or_path)
    run_dir.write_text("config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    strategy = instantiate(cfg.strategy)  # extractor + component + selector
    datamodule = instantiate(cfg.data, strategy=strategy)
    selection = datamodule.prepare_subset()  # pool -> held-out split -> types (cached) -> subset -> manifest
    subset_metrics = describe_subset(datamodule, cfg.diversity.metrics, cfg.model.name_or_path)
    selection_info = run_dir.read_json("selection.json")
    if cfg.mode == "select":
        print_summary(run_dir.path, {"k": selection.k, "n": cfg.diversity.n, **subset_metrics})
        return None

    resume_from = run_dir.resumable_checkpoint(cfg_hash) if cfg.resume else None
    logger = tracking.build_logger(cfg.get("logger"), run_id=run_dir.run_id(cfg_hash))  # a resumed job resumes its run
    failed = True
    try:
        tracking.log_config(logger, resolved)
        tracking.log_selection(logger, run_dir.path, selection_info, subset_metrics)
        module = instantiate(cfg.model, _convert_="all")  # plain dicts: checkpoints load with weights_only
        trainer = instantiate(cfg.trainer, logger=logger or False, callbacks=[checkpointing(run_dir, cfg)])
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
        metrics = training_metrics(trainer, module, datamodule)
        if trainer.is_global_zero:  # other DDP ranks stop here; rank 0 saves, evaluates and reports
            module.save_final(run_dir.path / "model")
            module.model.to(trainer.strategy.root_device)  # Lightning moves the model to CPU after fit
            scores, tables = evaluate(cfg.eval, module.model, load_tokenizer(cfg.model.name_or_path), run_dir.path)
            metrics.update({**scores, "k": selection.k, "level": cfg.diversity.level, "n": cfg.diversity.n})
            run_dir.write_json("metrics.json", metrics)
            tracking.log_final(logger, metrics, tables)
            run_dir.mark_done(cfg_hash)
        failed = False
    finally:
        tracking.finish(logger, failed=failed)
    if trainer.is_global_zero:
        print_summary(run_dir.path, metrics)
    return metrics["heldout/loss"]


def training_metrics(trainer, module, datamodule) -> dict:
    """Held-out loss/perplexity of the final weights (reusing the loop's last validation when it scored them)
    and the train losses of this process's steps (after a resume: the remaining ones)."""
    if module.validated_at_step_ == trainer.global_step:
        heldout = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    else:
        heldout = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    losses = module.train_losses_ or [math.nan]
    return {
        "heldout/loss": heldout["val/loss"],
        "heldout/ppl": heldout["val/ppl"],
        "train/loss_first": losses[0],
        "train/loss_last": losses[-1],
        "train/steps": trainer.global_step,
        "train/steps_this_run": trainer.global_step - module.start_step_,
    }


def checkpointing(run_dir, cfg: DictConfig):
    """`last.ckpt` every few steps: what an interrupted job resumes from."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    every = cfg.checkpoint_every_n_steps
    return ModelCheckpoint(dirpath=run_dir.checkpoint_dir, save_last=True, save_top_k=0, every_n_train_steps=every)


def analyze(cfg: DictConfig) -> None:
    from evaluation.analysis import analyze as analyze_sweep

    if not cfg.sweep_dir:
        sys.exit("error: mode=analyze needs sweep_dir=<folder of a sweep>")
    if not Path(cfg.sweep_dir).is_dir():
        sys.exit(f"error: sweep_dir not found: {cfg.sweep_dir}")
    wandb_cfg = None
    if cfg.get("logger") and "Wandb" in str(cfg.logger.get("_target_")):
        wandb_cfg = {**OmegaConf.to_container(cfg.logger, resolve=True), "group": Path(cfg.sweep_dir).name}
    try:
        analyze_sweep(cfg.sweep_dir, wandb_cfg=wandb_cfg)
    except ValueError as err:  # e.g. no finished run yet
        sys.exit(f"error: {err}")
    return None


def print_summary(path: Path, metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=path.name)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    print(f"outputs: {path}")


if __name__ == "__main__":
    main()
