"""Token-budget training: every run of a sweep trains on the same number of supervised response tokens.

At a fixed step count, a subset of long responses trains on several times the tokens of a subset of short ones,
so "more diverse" can also mean "trained on more". `TokenBudget` instead stops a run once `tokens` supervised
tokens (labels != -100 after the shift, the targets the loss counts) have been trained, summed over ranks and
gradient-accumulation micro-batches. The last batch is cut to fit: its targets past the budget are masked
(label -100; rows in order, lower ranks first, see `keep_first_targets`), so every run trains on exactly `tokens`
targets. Its last optimizer step is partial, and the number of steps is derived from the budget, not set.

The count itself lives on the module (`SFTModule.supervised_tokens_`, logged as `train/supervised_tokens` in every
run, budget or not, and kept in checkpoints), so a resumed run continues the same count and the analysis can use
trained tokens as a covariate of fixed-step runs too.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback

from training.tokenization import IGNORE_INDEX

log = logging.getLogger(__name__)


def supervised_targets(labels: torch.Tensor) -> torch.Tensor:
    """Targets the loss counts: labels after the causal shift (the first position is never a target)."""
    return labels[:, 1:] != IGNORE_INDEX


def keep_first_targets(labels: torch.Tensor, keep: int) -> torch.Tensor:
    """A copy of `labels` whose targets after the first `keep` (row-major order) are masked. O(tokens)."""
    targets = supervised_targets(labels)
    order = targets.reshape(-1).cumsum(0).reshape(targets.shape)  # 1-based rank of each target
    masked = labels.clone()
    masked[:, 1:][targets & (order > keep)] = IGNORE_INDEX
    return masked


class TokenBudget(Callback):
    """Stop training after exactly `tokens` supervised response tokens (the final batch's overshoot masked).

    Args:
        tokens: the budget, in supervised targets summed over all ranks (>= 1).

    Needs a module with a `supervised_tokens_` count (`SFTModule`) and a trainer whose `max_steps` does not stop
    it first (set `max_steps=-1`; a run stopped earlier records `train/budget_reached` false and warns).
    Works with packing (the packer's first-label masking is already in the labels), length grouping, gradient
    accumulation (once the budget is reached, the step's remaining micro-batches train nothing and the run stops
    at the step's end) and resuming (the count is the module's checkpointed one).
    """

    def __init__(self, tokens: int) -> None:
        if int(tokens) < 1:
            raise ValueError(f"budget.tokens must be >= 1, got {tokens}")
        self.tokens = int(tokens)
        self.masked_ = 0  # targets of the final batch(es) masked to land on the budget
        self._step_before = -1

    @property
    def state_key(self) -> str:
        return "TokenBudget"

    def state_dict(self) -> dict[str, Any]:
        return {"masked": self.masked_}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.masked_ = int(state_dict.get("masked", 0))

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not hasattr(pl_module, "supervised_tokens_"):
            raise ValueError(f"TokenBudget needs a module that counts supervised_tokens_, got {type(pl_module)}")
        if trainer.max_steps not in (-1, None):
            log.warning(
                "token budget %d with trainer.max_steps=%d: training stops at whichever comes first "
                "(set trainer.max_steps=-1 to train on the whole budget)",
                self.tokens,
                trainer.max_steps,
            )

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if pl_module.supervised_tokens_ >= self.tokens:  # resumed from a checkpoint that already spent it
            trainer.should_stop = True

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._step_before = trainer.global_step
        left = self.tokens - pl_module.supervised_tokens_
        count = supervised_targets(batch["labels"]).sum()
        # Every rank's count, so each knows how much of the remaining budget the ranks before it take.
        counts = trainer.strategy.all_gather(count).reshape(-1) if trainer.world_size > 1 else count.reshape(1)
        before = int(counts[: trainer.global_rank].sum())
        keep = max(0, min(int(count), left - before))
        total = int(counts.sum())
        self.masked_ += total - max(0, min(total, left))  # the same on every rank
        if keep < int(count):
            batch["labels"] = keep_first_targets(batch["labels"], keep)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Stop only after an optimizer step: mid-accumulation the step has not been taken yet.
        if pl_module.supervised_tokens_ >= self.tokens and trainer.global_step != self._step_before:
            trainer.should_stop = True

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if pl_module.supervised_tokens_ < self.tokens and trainer.is_global_zero:
            log.warning(
                "token budget not reached: trained %d of %d supervised tokens in %d steps (max_steps=%s)",
                pl_module.supervised_tokens_,
                self.tokens,
                trainer.global_step,
                trainer.max_steps,
            )


def find_budget(trainer: Any) -> TokenBudget | None:
    """The trainer's `TokenBudget` callback, if any."""
    return next((cb for cb in trainer.callbacks if isinstance(cb, TokenBudget)), None)


def token_budget(cfg_budget: Any) -> TokenBudget | None:
    """The callback for the `budget` config group: None when `tokens` is null (train for `trainer.max_steps`)."""
    tokens = (cfg_budget or {}).get("tokens")
    return None if tokens is None else TokenBudget(int(tokens))


def budget_metrics(trainer: Any, module: Any) -> dict[str, Any]:
    """What a run trained on, for metrics.json: supervised tokens always; the budget, whether it was reached
    and the overshoot masked when a budget was set (steps are `train/steps`)."""
    budget = find_budget(trainer)
    metrics: dict[str, Any] = {"train/supervised_tokens": int(module.supervised_tokens_)}
    if budget is not None:
        metrics["train/token_budget"] = budget.tokens
        metrics["train/budget_reached"] = int(module.supervised_tokens_ >= budget.tokens)  # 0/1: logged as a number
        metrics["train/budget_masked_tokens"] = budget.masked_
    return metrics
