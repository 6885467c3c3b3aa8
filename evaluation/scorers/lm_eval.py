"""Bridge to lm-evaluation-harness: run any of its tasks on the fine-tuned model, in memory.

The model (LoRA-wrapped or plain) is handed to lm-eval's `HFLM` as an object, so no checkpoint has to be
written; `pretrained` points at a saved folder instead when given. Custom tasks (YAML files, e.g. with
`dataset_path: json` and local `data_files`, which work offline) are found through `include_path`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

from evaluation.scorers.base import EvalContext


class LMEvalScorer:
    """Scores `eval/lm_eval/<task>_<metric>` (e.g. `eval/lm_eval/arc_easy_acc`) via `simple_evaluate`.

    Args:
        tasks: lm-eval task names; an empty list scores nothing.
        include_path: Folder(s) of extra task YAMLs.
        include_defaults: Also index lm-eval's built-in tasks (takes a few seconds; off when only custom
            tasks are used).
        num_fewshot: Few-shot examples; None = each task's default.
        limit: Examples per task (int) or fraction (float); None = all.
        batch_size: lm-eval batch size.
        merge_adapter: Evaluate a merged copy of a LoRA model (faster forward passes; costs one model copy).
        pretrained: A saved model folder to evaluate instead of the in-memory model.
        apply_chat_template: Wrap prompts in the model's chat template.
    """

    name = "lm_eval"

    def __init__(
        self,
        tasks: Sequence[str] = (),
        include_path: str | list[str] | None = None,
        include_defaults: bool = True,
        num_fewshot: int | None = None,
        limit: int | float | None = None,
        batch_size: int = 8,
        merge_adapter: bool = False,
        pretrained: str | None = None,
        apply_chat_template: bool = False,
    ):
        self.tasks = list(tasks)
        self.include_path = include_path
        self.include_defaults = include_defaults
        self.num_fewshot = num_fewshot
        self.limit = limit
        self.batch_size = batch_size
        self.merge_adapter = merge_adapter
        self.pretrained = pretrained
        self.apply_chat_template = apply_chat_template

    def score(self, ctx: EvalContext) -> dict[str, float]:
        if not self.tasks:
            return {}
        results = run_lm_eval(
            ctx.model if self.pretrained is None else self.pretrained,
            ctx.tokenizer,
            list(self.tasks),
            include_path=self.include_path,
            include_defaults=self.include_defaults,
            num_fewshot=self.num_fewshot,
            limit=self.limit,
            batch_size=self.batch_size,
            merge_adapter=self.merge_adapter,
            apply_chat_template=self.apply_chat_template,
            seed=ctx.seed,
        )
        return flatten_results(results, prefix=f"eval/{self.name}")


def run_lm_eval(
    model: Any,
    tokenizer: Any,
    tasks: list[str],
    include_path: str | list[str] | None = None,
    include_defaults: bool = True,
    num_fewshot: int | None = None,
    limit: int | float | None = None,
    batch_size: int = 8,
    merge_adapter: bool = False,
    apply_chat_template: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """`lm_eval.simple_evaluate` on an in-memory model (or a saved folder path); returns its results dict."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    if not isinstance(model, str) and merge_adapter and hasattr(model, "merge_and_unload"):
        model = copy.deepcopy(model).merge_and_unload()
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    paths = [include_path] if isinstance(include_path, str) else include_path
    manager = TaskManager(include_path=[str(p) for p in paths] if paths else None, include_defaults=include_defaults)
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=tasks,
        num_fewshot=num_fewshot,
        limit=limit,
        task_manager=manager,
        log_samples=False,
        apply_chat_template=apply_chat_template,
        random_seed=seed,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
    )


def flatten_results(results: dict[str, Any], prefix: str = "eval/lm_eval") -> dict[str, float]:
    """`{task: {"acc,none": x, ...}}` -> `{prefix/<task>_acc: x}`; a non-`none` filter is kept as a suffix."""
    scores: dict[str, float] = {}
    for task, metrics in (results or {}).get("results", {}).items():
        for key, value in metrics.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or "," not in key:
                continue
            metric, filt = key.split(",", 1)
            name = metric if filt == "none" else f"{metric}_{filt}"
            if not (isinstance(value, float) and math.isnan(value)):
                scores[f"{prefix}/{task}_{name}"] = float(value)
    return scores
