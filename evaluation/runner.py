"""Run every enabled evaluation part after training, in the same job.

`evaluate(cfg_eval, model, tokenizer, run_dir)` returns `(scores, tables)`:

- `scores`: flat `{"eval/<scorer>/<metric>": float}` (the lead writes them to `metrics.json` and W&B);
- `tables`: `{benchmark: [row, ...]}`, one row per prompt with `id`, `prompt`, `reference`, `generation`,
  `tokens` (generated tokens; = `max_new_tokens` when cut) and the columns scorers added (`reference_nll`,
  `length`, `similarity`, `verdict`, `score`, `rules`, `followed`, `followed_loose`), ready for
  `wandb.Table(dataframe=pandas.DataFrame(rows))`.

Item-level scores stay in the run folder (`scores/`): `write_heldout_items` (held-out loss per pair) and the
reference-loss scorer (`scores/reference_items.jsonl`). `score_base_model` scores the untrained base model once
per sweep, the denominator of every effect.

Config (`conf/eval/*.yaml`): `enabled`, `seed`, `progress`, `benchmarks` (`name -> load_benchmark kwargs`;
a null benchmark is dropped), `generation` (`core.generate.generate` kwargs), and one key per scorer
in `SCORERS` holding its `_target_` and parameters; a scorer is off when its key is null or has
`enabled: false`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.jsonl import dump_json
from evaluation.scorers.base import EvalContext, Scorer

log = logging.getLogger(__name__)

HELDOUT_ITEMS = Path("scores") / "heldout_items.jsonl"
# Run order: judge-free scores first, so a failing judge endpoint cannot cost them.
SCORERS = ("reference_loss", "generation_stats", "ifbench", "pairwise", "lm_eval")


def _to_dict(cfg: Any) -> dict[str, Any]:
    if cfg is None:
        return {}
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    return dict(cfg)


def build_scorers(cfg_eval: Any) -> list[Scorer]:
    """Instantiate the enabled scorers in `SCORERS` order (unknown scorer keys are an error)."""
    from hydra.utils import instantiate

    cfg = _to_dict(cfg_eval)
    known = {"enabled", "seed", "progress", "benchmarks", "generation", *SCORERS}
    if unknown := sorted(set(cfg) - known):
        raise ValueError(f"eval config: unknown keys {unknown}; scorers are {list(SCORERS)}")
    scorers = []
    for name in SCORERS:
        spec = cfg.get(name)
        if spec is None or not spec.pop("enabled", True):
            continue
        if "_target_" not in spec:
            raise ValueError(f"eval config: scorer '{name}' has no _target_")
        scorers.append(instantiate(spec, _convert_="all"))
    return scorers


def evaluate(
    cfg_eval: Any, model: Any, tokenizer: Any, run_dir: str | Path, progress: bool | None = None
) -> tuple[dict[str, float], dict[str, list[dict[str, Any]]]]:
    """Run every enabled scorer on the (fine-tuned) model.

    Args:
        cfg_eval: The `eval` config group (DictConfig or dict).
        model: Causal LM, plain or peft-wrapped; used in eval mode and restored afterwards.
        tokenizer: Its tokenizer.
        run_dir: The job's output folder (`generations/`, `verdicts/` are written below it).
        progress: Overrides `cfg_eval.progress` (False keeps tests and sweeps quiet).

    Returns:
        `(scores, tables)` as described in the module docstring; both empty when `enabled` is false.
    """
    cfg = _to_dict(cfg_eval)
    if not cfg.get("enabled", True):
        return {}, {}
    ctx = EvalContext(
        model=model,
        tokenizer=tokenizer,
        run_dir=Path(run_dir),
        benchmarks={k: v for k, v in (cfg.get("benchmarks") or {}).items() if v is not None},
        generation=cfg.get("generation") or {},
        seed=int(cfg.get("seed", 0)),
        progress=bool(cfg.get("progress", True)) if progress is None else progress,
    )
    scores: dict[str, float] = {}
    for scorer in build_scorers(cfg):
        start = time.perf_counter()
        scores.update(scorer.score(ctx))
        log.info("eval/%s took %.1f s", scorer.name, time.perf_counter() - start)
    tables = {bench: list(rows.values()) for bench, rows in ctx.rows.items()}
    return scores, tables


def write_heldout_items(
    run_dir: str | Path, items: Sequence[tuple[float, int]], ids: Sequence[str]
) -> dict[str, float]:
    """Write `scores/heldout_items.jsonl` (each held-out pair's id, loss, NLL sum and response tokens, in held-out
    order; atomic) and return the item-mean held-out loss with the counts behind it.

    `items` are `SFTModule.val_items_` (the last validation, i.e. the final weights) or `score_pairs` output.
    """
    from core.jsonl import save_jsonl

    if len(items) != len(ids):
        raise ValueError(f"{len(items)} held-out scores for {len(ids)} held-out ids: the validation did not score all")
    rows = [
        {"id": str(i), "loss": nll / max(n, 1), "nll": nll, "tokens": n} for i, (nll, n) in zip(ids, items, strict=True)
    ]
    save_jsonl(Path(run_dir) / HELDOUT_ITEMS, rows)
    mean = sum(row["loss"] for row in rows) / len(rows) if rows else math.nan
    return {
        "heldout/loss_item_mean": mean,
        "counts/heldout/items": len(rows),
        "counts/heldout/tokens": sum(n for _, n in items),
    }


def score_base_model(
    cfg_eval: Any,
    model_name: str,
    out_dir: str | Path,
    heldout: Sequence[dict[str, list[int]]] | None = None,
    heldout_ids: Sequence[str] | None = None,
    dtype: str = "float32",
    batch_size: int = 4,
) -> dict[str, float]:
    """Score the base model (0 training steps) as a run is scored: the denominator of every effect of a sweep.

    Loads `model_name` as training does (`core.assets`), runs `evaluate` into `out_dir` (generations, item files)
    and, given the held-out pairs as the datamodule encodes them with their ids, their losses
    (`scores/heldout_items.jsonl`, `heldout/loss` token-weighted as in training). Writes `out_dir/metrics.json`
    (atomic) and returns what it holds. A `trainer.max_steps=0` run gives the same numbers through `run.py`.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from core.assets import load_tokenizer, resolve_model_path
    from core.cache import atomic_write
    from evaluation.scorers.reference_loss import score_pairs

    out = Path(out_dir)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(model_name), dtype=getattr(torch, dtype))
    model.to("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = load_tokenizer(model_name)
    metrics: dict[str, Any] = {"train/steps": 0, "train/supervised_tokens": 0}
    if heldout:
        items = score_pairs(model, list(heldout), tokenizer.pad_token_id, batch_size)
        loss = sum(s for s, _ in items) / max(sum(n for _, n in items), 1)
        metrics |= {"heldout/loss": loss, "heldout/ppl": math.exp(min(loss, 50.0))}
        metrics |= write_heldout_items(out, items, list(heldout_ids or range(len(items))))
    scores, _ = evaluate(cfg_eval, model, tokenizer, out)
    metrics |= scores
    with atomic_write(out / "metrics.json") as fh:
        dump_json({"model": model_name, **metrics}, fh, indent=2)
    return metrics
