"""A Lightning callback that logs training progress as plain lines, for log files.

Lightning's progress bar redraws one terminal line; with output redirected to a file (a cluster job, `nohup`),
a 30-minute training shows nothing after start-up. `ProgressLog` logs `step i/max_steps, loss, tokens/s,
supervised tokens, elapsed, ETA` through `logging`, so the lines reach `run.log` and the console alike. Under a
token budget (`training.budget`) the step total is estimated from the tokens trained so far, so the ETA is the
budget's.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from lightning.pytorch.callbacks import Callback

from core.progress import Ticker, format_duration

log = logging.getLogger("macro2micro.progress")


class ProgressLog(Callback):
    """Log a progress line after the first optimizer step, then every `every_s` seconds, and at the end.

    Args:
        every_s: seconds between lines; None uses `core.progress.PROGRESS_EVERY_S` (the `progress_every_s`
            config key); 0 logs every step.
        clock: monotonic clock (injectable for tests).
    """

    def __init__(self, every_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        self.ticker: Ticker | None = None
        self.tokens = 0
        self._logged_step = -1
        self._tokens_at_start = 0

    @staticmethod
    def _total_steps(trainer: Any) -> float:
        if trainer.max_steps and trainer.max_steps > 0:
            return float(trainer.max_steps)
        try:
            return float(trainer.estimated_stepping_batches)  # max_epochs x batches, inf when unbounded
        except Exception:  # noqa: BLE001 (an estimate only: no datamodule length, unbounded epochs...)
            return math.inf

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self.ticker = Ticker(self._total_steps(trainer), self.every_s, start=trainer.global_step, clock=self.clock)
        self.tokens = 0
        self._logged_step = -1
        self._tokens_at_start = getattr(pl_module, "supervised_tokens_", 0)
        if trainer.is_global_zero:
            from training.budget import find_budget

            total, budget = self.ticker.total, find_budget(trainer)
            log.info(
                "training: %s optimizer steps%s%s",
                int(total) if math.isfinite(total) else "?",
                f" or a budget of {budget.tokens} supervised tokens, whichever comes first" if budget else "",
                f", resuming at step {trainer.global_step}" if trainer.global_step else "",
            )

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if isinstance(batch, dict):
            mask, ids = batch.get("attention_mask"), batch.get("input_ids")
            # Packed rows carry no attention mask: nearly all their positions are real tokens.
            self.tokens += int(mask.sum()) if mask is not None else int(ids.numel()) if ids is not None else 0
        step = trainer.global_step
        self._estimate_budget_steps(trainer, pl_module, step)
        if self.ticker is None or not trainer.is_global_zero or step == self._logged_step:
            return  # within gradient accumulation the step has not moved: one line per optimizer step at most
        if self.ticker.due(step):
            self._logged_step = step
            log.info("train step %s", self._line(trainer, outputs, step))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.ticker is None or not trainer.is_global_zero:
            return
        done = trainer.global_step - self.ticker.start
        log.info(
            "training finished: %d step(s) in %s (%.0f tokens/s)",
            done,
            format_duration(self.ticker.elapsed),
            self.tokens / max(self.ticker.elapsed, 1e-9),
        )

    def _estimate_budget_steps(self, trainer: Any, pl_module: Any, step: int) -> None:
        """Under a token budget, total steps ~ steps so far x budget / tokens so far (this process's share)."""
        from training.budget import find_budget

        budget, done = find_budget(trainer), getattr(pl_module, "supervised_tokens_", 0)
        if self.ticker is None or budget is None or step <= self.ticker.start or done <= self._tokens_at_start:
            return
        rate = (done - self._tokens_at_start) / (step - self.ticker.start)  # tokens per step
        estimate = step + max(0.0, budget.tokens - done) / rate
        self.ticker.total = (
            min(estimate, trainer.max_steps) if trainer.max_steps and trainer.max_steps > 0 else estimate
        )

    def _tokens_text(self, trainer: Any, pl_module: Any) -> str:
        from training.budget import find_budget

        done, budget = getattr(pl_module, "supervised_tokens_", None), find_budget(trainer)
        if done is None:
            return ""
        return f" | supervised tokens {done}" + (f"/{budget.tokens}" if budget is not None else "")

    def _line(self, trainer: Any, outputs: Any, step: int) -> str:
        loss = trainer.callback_metrics.get("train/loss")
        if loss is None and isinstance(outputs, dict):
            loss = outputs.get("loss")
        loss_text = f"{float(loss):.4f}" if loss is not None else "?"
        tokens_per_s = self.tokens / max(self.ticker.elapsed, 1e-9)
        head, _, timing = self.ticker.status(step).partition(" | ")
        supervised = self._tokens_text(trainer, trainer.lightning_module)
        return f"{head} | loss {loss_text} | {tokens_per_s:.0f} tokens/s{supervised} | {timing}"
