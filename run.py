"""macro2micro: pool -> types -> degree-controlled selection -> fine-tune -> evaluate -> log, as one Hydra job.

python run.py                                   # offline default: random subset, SmolLM2, CPU
python run.py mode=select strategy=micro_response diversity.level=0.5
python run.py -m strategy=micro_response,macro_instruction diversity.level=0,0.5,1
python run.py mode=analyze sweep_dir=outputs/sweeps/dev
python run.py mode=plan                         # minimum detectable effects and compute of a proposed grid
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:  # annotations only: nothing heavy is imported before a mode needs it
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from training.datamodule import SFTDataModule
    from training.module import SFTModule
    from training.progress_log import ProgressLog
    from training.rundir import RunDir

log = logging.getLogger("macro2micro")
# A run folder is named by what the job is (`run_name` in conf/config.yaml); an analysis or plan by its mode.
OmegaConf.register_new_resolver(
    "job_folder", lambda mode, name: name if mode in ("train", "select") else mode, replace=True
)


def length_tag(window: object, lock: object, instruction_bins: object = None) -> str:
    """`_w30-100_locked`, `_locked_i8`, `_locked` or `` for a job's name and folder: a length-controlled job never
    shares the folder of the uncontrolled job with the same strategy, n, degree and seed (and never overwrites it)."""
    tag = f"_w{window[0]}-{window[1]}" if window is not None and not isinstance(window, str) else ""
    if lock is not True:
        return tag
    return tag + "_locked" + (f"_i{instruction_bins}" if isinstance(instruction_bins, int) else "")


OmegaConf.register_new_resolver("length_tag", length_tag, replace=True)  # conf/config.yaml's job_strategy


def degrees(*indices: int) -> str:
    """`${degrees:}` / `${degrees:2,6}` in a sweep's params: the paper's degrees from their one definition."""
    from diversity.selectors.degree import degree_sweep

    return degree_sweep(*indices)


OmegaConf.register_new_resolver("degrees", degrees, replace=True)

CONFIG_RULES = (  # each layer's own
    "core.config_checks", "diversity.config_rules", "training.config_rules", "evaluation.config_rules",
)  # fmt: skip
BAD_INPUT = (FileNotFoundError, ValueError)  # PoolError, ModelNotFoundError and infeasible n are ValueErrors


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    quiet_startup(cfg)
    if cfg.mode not in ("train", "select", "analyze", "plan"):
        sys.exit(f"error: mode must be train, select, analyze or plan, got '{cfg.mode}'")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    refuse_secrets(cfg, resolved)  # before anything is logged, tracked or trained
    if cfg.mode == "analyze":
        return analyze(cfg)
    if cfg.mode == "plan":  # what a proposed grid can detect, and what it costs, before any compute is spent
        from evaluation.analysis.plan import main as plan

        try:
            plan(cfg.plan)
        except ValueError as err:  # e.g. the pilot has no such score: one line naming the fix, no traceback
            sys.exit(f"error: {err}")
        return None
    from training.rundir import RunDir, config_hash, pool_fingerprint, run_hash

    run_dir = RunDir(cfg.paths.output_dir)
    # The job's identity: its config and its pool's content (a pool file edited in place makes DONE stale).
    cfg_hash = run_hash(config_hash(resolved), pool_fingerprint(str(resolved["data"]["source"])))
    if cfg.resume and cfg.mode == "train" and run_dir.is_done(cfg_hash):
        metrics = run_dir.read_json("metrics.json")
        log.info("already done (DONE matches this config and pool): %s", run_dir.path)
        return metrics.get("heldout/loss")
    if cfg.mode == "train" and not _multirun():  # a sweep finds its job folders again; a single job is told how
        log.info(
            "run folder %s: if interrupted, resume with the same command plus hydra.run.dir=%s", *[run_dir.path] * 2
        )
    from core.chat import EndpointError  # standard library only

    try:
        return run_job(cfg, run_dir, resolved, cfg_hash)
    except BAD_INPUT as err:
        removed = run_dir.discard_if_empty_handed()
        sys.exit(f"error: {err}" + ("" if removed else f" (kept {run_dir.path} for resuming)"))
    except EndpointError as err:  # a judge or tagger endpoint failed for good, after its retries
        sys.exit(
            f"error: {err}\nThe answers received so far are cached: re-run the same command to resume"
            + ("" if _multirun() else f" (a single job: add hydra.run.dir={run_dir.path})")
        )


def _multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.get().mode == RunMode.MULTIRUN


def quiet_startup(cfg: DictConfig) -> None:
    """Silence library chatter that is not about the run (core/quiet.py), set the progress-line cadence and the
    cache root (`paths.cache_dir`) every cache of the process uses."""
    from core.cache import use_cache_root
    from core.progress import set_progress_every
    from core.quiet import quiet_libraries

    quiet_libraries()
    set_progress_every(cfg.progress_every_s)
    use_cache_root(cfg.paths.cache_dir)  # features, converted models and distilled embedders: one root


def refuse_secrets(cfg: DictConfig, resolved: dict) -> None:
    """Exit, naming the fields but never the values, if the config holds a credential.

    Hydra has already written the overrides into `.hydra/` (and `multirun.yaml`): those files are redacted, and
    the run folder is removed unless it holds earlier work.
    """
    from core.secrets import find_secrets, scrub_file, secret_values

    fields = find_secrets(resolved)
    if not fields:
        return
    from hydra.core.hydra_config import HydraConfig

    from training.rundir import RunDir

    secrets = secret_values(resolved, fields)
    run_dir = RunDir(cfg.paths.output_dir)
    hydra_files = list((run_dir.path / ".hydra").glob("*.yaml"))
    hydra_files += [Path(HydraConfig.get().sweep.dir) / "multirun.yaml", *run_dir.path.glob("*.log")]
    for path in hydra_files:
        scrub_file(path, secrets)
    if cfg.mode != "analyze":
        run_dir.discard_if_empty_handed()
    sys.exit(
        f"error: the config holds a credential in {', '.join(fields)} (value not shown). Keys must not be put in "
        "configs, which are saved with the run and sent to W&B: export the key in an environment variable and "
        "give its name instead, e.g. eval.pairwise.judge.api_key_env=OPENAI_API_KEY"
    )


def run_job(cfg: DictConfig, run_dir: RunDir, resolved: dict, cfg_hash: str) -> float | None:
    """The paper's pipeline, one stage per line: pool -> subset -> its description -> fit -> evaluate -> log."""
    from hydra.utils import instantiate

    from core.assets import load_tokenizer
    from core.cache import FeatureCache
    from core.config_checks import validate_config
    from diversity.describe import describe_subset, print_summary
    from diversity.lengths import LengthControl
    from diversity.manifest import update_selection_json, write_manifest
    from diversity.pools import load_pool, pool_settings
    from diversity.select import HeldoutSpec, pool_columns, select_subset
    from evaluation.benchmarks import decontamination_prompts
    from training.tokenization import encode_pairs

    validate_config(resolved, CONFIG_RULES)  # every problem at once, before the pool is loaded or anything is computed
    run_dir.write_text("config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    cache, data = FeatureCache(cfg.paths.cache_dir), cfg.data
    strategy = instantiate(cfg.strategy)  # extractor + component + selector
    pool = load_pool(**pool_settings(data), columns=pool_columns(strategy))  # a selector's pool columns (QDIT)
    subset = select_subset(
        pool,
        strategy,
        n=cfg.diversity.n,
        level=cfg.diversity.level,
        seed=cfg.seed,
        heldout=HeldoutSpec(data.heldout_size, data.heldout_seed, data.heldout_max_fraction),
        exclude_prompts=decontamination_prompts(cfg),  # plain lists: benchmark text never meets OmegaConf
        decontaminate=OmegaConf.to_container(data.decontaminate),
        length=LengthControl.from_config(OmegaConf.to_container(cfg.diversity.length, resolve=True)),
        cache=cache,
    )
    write_manifest(run_dir.path, subset)  # subset.jsonl + selection.json
    subset_metrics = describe_subset(subset, cfg.diversity.metrics, cfg.model.name_or_path, run_dir.path, cache)
    tokenizer = load_tokenizer(cfg.model.name_or_path)
    train_set, cut = encode_pairs(tokenizer, *subset.pairs("train"), data.max_length, data.loss_on)
    selection_info = update_selection_json(run_dir.path, {"truncation": cut.as_dict()})  # what max_length cuts
    if cfg.mode == "select":  # no Lightning imported on this path
        print_summary(run_dir.path, {"n": cfg.diversity.n, **subset_metrics}, selection_info)
        return None
    instructions, responses = subset.pairs("heldout")
    eval_size = data.heldout_eval_size
    heldout_set, _ = encode_pairs(
        tokenizer, instructions[:eval_size], responses[:eval_size], data.max_length, data.loss_on
    )
    heldout_ids = [subset.pool.ids[i] for i in subset.heldout[:eval_size]]
    return fit_and_evaluate(
        cfg,
        run_dir,
        resolved,
        cfg_hash,
        train_set,
        (heldout_set, heldout_ids),
        tokenizer,
        selection_info,
        subset_metrics,
    )


def fit_and_evaluate(
    cfg: DictConfig,
    run_dir: RunDir,
    resolved: dict,
    cfg_hash: str,
    train_set: list[dict],
    heldout: tuple[list[dict], list[str]],
    tokenizer: Any,
    selection_info: dict,
    subset_metrics: dict,
) -> float:
    """Fine-tune on the encoded subset, score the final weights, log everything; returns the held-out loss."""
    import lightning as L
    from hydra.utils import instantiate

    from core.quiet import one_console_for_lightning
    from diversity.describe import print_summary
    from evaluation.runner import evaluate, write_heldout_items
    from training import tracking
    from training.budget import token_budget
    from training.datamodule import SFTDataModule

    one_console_for_lightning()
    L.seed_everything(cfg.seed, workers=True)  # seed=0 is a seed too: never `if cfg.seed`
    data, (heldout_set, heldout_ids) = cfg.data, heldout
    datamodule = SFTDataModule(
        train_set,
        heldout_set,
        tokenizer.pad_token_id,
        max_length=data.max_length,
        batch_size=data.batch_size,
        seed=cfg.seed,
        packing=data.packing,
        group_by_length=data.group_by_length,
        num_workers=data.num_workers,
    )
    resume_from = run_dir.resumable_checkpoint(cfg_hash) if cfg.resume else None
    logger = tracking.build_logger(cfg.get("logger"), run_id=run_dir.run_id(cfg_hash))  # a resumed job resumes its run
    failed = True
    try:
        tracking.log_config(logger, resolved)
        tracking.log_selection(logger, run_dir.path, cfg.run_name, selection_info, subset_metrics)
        module = instantiate(cfg.model, _convert_="all")  # plain dicts: checkpoints load with weights_only
        budget = token_budget(cfg.get("budget"))  # equal supervised tokens per run instead of a step count
        callbacks = [checkpointing(run_dir, cfg), progress_log(cfg), *([budget] if budget else [])]
        steps = {"max_steps": -1} if budget else {}  # the budget, not a step count, ends a budgeted run
        trainer = instantiate(cfg.trainer, logger=logger or False, callbacks=callbacks, **steps)
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
        metrics = training_metrics(trainer, module, datamodule, selection_info["truncation"])
        if trainer.is_global_zero:  # other DDP ranks stop here; rank 0 saves, evaluates and reports
            module.save_final(run_dir.path / "model")
            module.model.to(trainer.strategy.root_device)  # Lightning moves the model to CPU after fit
            scored = heldout_ids[: len(module.val_items_)]  # all, unless the trainer limits validation batches
            metrics |= write_heldout_items(run_dir.path, module.val_items_, scored)  # per pair, with tokens
            scores, tables = evaluate(cfg.eval, module.model, tokenizer, run_dir.path)
            metrics.update(scores)  # design values (n, level, k) live in selection.json only
            run_dir.write_json("metrics.json", metrics)
            tracking.log_final(logger, metrics, tables, run_dir.path)  # scores once, in the summary
            run_dir.mark_done(cfg_hash)
        failed = False
    finally:
        tracking.finish(logger, failed=failed)
    if trainer.is_global_zero:
        print_summary(run_dir.path, metrics, run_dir.read_json("selection.json"))
    return metrics["heldout/loss"]


def training_metrics(trainer: L.Trainer, module: SFTModule, datamodule: SFTDataModule, truncation: dict) -> dict:
    """Held-out loss/perplexity of the final weights (reusing the loop's last validation when it scored them),
    the first and last train loss of the whole run (a resumed job restores the history from its checkpoint),
    the steps this process trained (0 when it resumed a finished checkpoint) and what `max_length` cut."""
    if module.validated_at_step_ == trainer.global_step:
        heldout = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    else:
        heldout = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    from training.budget import budget_metrics

    losses = module.train_losses_ or [math.nan]
    return {
        **budget_metrics(trainer, module),  # trained supervised tokens (and the budget, when one is set)
        "heldout/loss": heldout["val/loss"],
        "heldout/ppl": heldout["val/ppl"],
        "train/loss_first": losses[0],
        "train/loss_last": losses[-1],
        "train/steps": trainer.global_step,
        "train/steps_this_run": trainer.global_step - module.start_step_,
        "data/cut_share": truncation["share_cut"],
        "data/n_cut": truncation["n_cut"],
        "data/tokens_dropped": truncation["tokens_dropped"],
    }


def checkpointing(run_dir: RunDir, cfg: DictConfig) -> ModelCheckpoint:
    """`last.ckpt` every few steps: what an interrupted job resumes from."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    every = cfg.checkpoint_every_n_steps
    return ModelCheckpoint(dirpath=run_dir.checkpoint_dir, save_last=True, save_top_k=0, every_n_train_steps=every)


def progress_log(cfg: DictConfig) -> ProgressLog:
    """Plain progress lines (step, loss, tokens/s, ETA) for run.log, where the live bar shows nothing."""
    from training.progress_log import ProgressLog

    return ProgressLog(every_s=cfg.progress_every_s)


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


if __name__ == "__main__":
    main()
