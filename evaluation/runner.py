"""Run every enabled evaluation part after training, in the same job.

`evaluate(cfg_eval, model, tokenizer, run_dir)` returns `(scores, tables)`:

- `scores`: flat `{"eval/<scorer>/<metric>": float}` (the lead writes them to `metrics.json` and W&B);
- `tables`: `{benchmark: [row, ...]}`, one row per prompt with `id`, `prompt`, `reference`, `generation`,
  `tokens` (generated tokens; = `max_new_tokens` when cut) and the columns scorers added (`reference_nll`,
  `length`, `similarity`, `verdict`, `score`, `rules`, `followed`, `followed_loose`), ready for
  `wandb.Table(dataframe=pandas.DataFrame(rows))`.

Config (`conf/eval/*.yaml`): `enabled`, `seed`, `progress`, `benchmarks` (`name -> load_benchmark kwargs`;
a null benchmark is dropped), `generation` (`core.generate.generate` kwargs), and one key per scorer
in `SCORERS` holding its `_target_` and parameters; a scorer is off when its key is null or has
`enabled: false`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from evaluation.scorers.base import EvalContext, Scorer

log = logging.getLogger(__name__)

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
