"""ProgressLog writes plain progress lines (step, loss, tokens/s, ETA) that reach log files."""

from __future__ import annotations

import logging
import re

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from core.progress import Ticker, format_duration, set_progress_every
from training.progress_log import ProgressLog


class TinyLM(L.LightningModule):
    """A real LightningModule small enough to train in a fraction of a second."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch["input_ids"].float()).pow(2).mean()
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=len(batch["input_ids"]))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _loader() -> DataLoader:
    rows = [{"input_ids": torch.full((3,), i), "attention_mask": torch.tensor([1, 1, 0])} for i in range(32)]
    return DataLoader(rows, batch_size=2)


def _fit(callback: ProgressLog, max_steps: int = 4, accumulate: int = 1) -> None:
    trainer = L.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accumulate_grad_batches=accumulate,
        callbacks=[callback],
    )
    trainer.fit(TinyLM(), train_dataloaders=_loader())


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "macro2micro.progress"]


def test_every_step_logs_step_loss_throughput_and_eta(caplog):
    with caplog.at_level(logging.INFO, logger="macro2micro.progress"):
        _fit(ProgressLog(every_s=0))
    lines = _lines(caplog)
    steps = [line for line in lines if line.startswith("train step")]
    assert [s.split()[2] for s in steps] == ["1/4", "2/4", "3/4", "4/4"]
    pattern = r"train step 4/4 \(100%\) \| loss \d+\.\d{4} \| \d+ tokens/s \| elapsed \d+s \| ETA 0s"
    assert re.fullmatch(pattern, steps[-1]), steps[-1]
    assert lines[0] == "training: 4 optimizer steps"
    assert lines[-1].startswith("training finished: 4 step(s) in ")


def test_time_based_cadence_logs_only_first_and_last_step_on_a_fast_run(caplog):
    frozen = iter(range(10_000))  # one second per clock reading: never 100 s between two lines
    with caplog.at_level(logging.INFO, logger="macro2micro.progress"):
        _fit(ProgressLog(every_s=100, clock=lambda: float(next(frozen))), max_steps=6)
    steps = [line.split()[2] for line in _lines(caplog) if line.startswith("train step")]
    assert steps == ["1/6", "6/6"]


def test_gradient_accumulation_logs_once_per_optimizer_step(caplog):
    with caplog.at_level(logging.INFO, logger="macro2micro.progress"):
        _fit(ProgressLog(every_s=0), max_steps=3, accumulate=2)
    steps = [line.split()[2] for line in _lines(caplog) if line.startswith("train step")]
    assert steps == ["1/3", "2/3", "3/3"]
    finished = _lines(caplog)[-1]
    assert finished.startswith("training finished: 3 step(s)")  # 6 batches x 2 rows x 2 real tokens = 24 tokens


def test_ticker_eta_and_durations():
    now = [0.0]
    ticker = Ticker(total=10, every_s=5, clock=lambda: now[0])
    now[0] = 2.0
    assert ticker.due(1)  # the first unit always logs
    assert ticker.status(1) == "1/10 (10%) | elapsed 2s | ETA 18s"
    now[0] = 4.0
    assert not ticker.due(2)
    now[0] = 7.0
    assert ticker.due(3)
    assert ticker.due(10)  # the last unit always logs
    assert [format_duration(s) for s in (42, 185, 3720, float("inf"))] == ["42s", "3m05s", "1h02m", "?"]


def test_generation_logs_batches_with_eta(caplog, tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    from core.generate import generate

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    prompts = [f"Question {i}?" for i in range(6)]
    set_progress_every(0)
    try:
        with caplog.at_level(logging.INFO, logger="core.generate"):
            answers = generate(model, tokenizer, prompts, max_new_tokens=2, batch_size=2, progress=False)
    finally:
        set_progress_every(30)
    assert len(answers) == 6
    lines = [r.getMessage() for r in caplog.records if r.name == "core.generate"]
    assert [line.split()[2] for line in lines] == ["1/3", "2/3", "3/3"]
    assert lines[-1].startswith("generating: batch 3/3 (100%) | elapsed ") and lines[-1].endswith("ETA 0s")
