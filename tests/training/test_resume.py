"""A job killed mid-epoch and resumed from last.ckpt trains on exactly the batches of an uninterrupted job."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from core.assets import load_tokenizer
from diversity.pools import load_pool
from diversity.select import HeldoutSpec, select_subset
from diversity.strategy import Strategy
from training.datamodule import SFTDataModule
from training.module import SFTModule
from training.tokenization import encode_pairs

STEPS = 10  # 24 samples in batches of 4: 6 steps an epoch, so the runs cross an epoch end


class Killed(RuntimeError):
    """Stands in for a preempted job."""


class BatchLog(L.Callback):
    """Records a hash of every training batch; raises `Killed` before step `kill_at` (a preemption)."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.kill_at = kill_at
        self.hashes: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.kill_at:
            raise Killed(f"killed before step {self.kill_at}")
        self.hashes.append(hashlib.sha256(batch["input_ids"].numpy().tobytes()).hexdigest()[:12])


def fit(root: Path, pool: Path, model: Path, group: bool, log: BatchLog, ckpt: str | None = None) -> None:
    torch.manual_seed(0)
    subset = select_subset(load_pool(str(pool)), Strategy("random"), n=24, level=1.0, seed=0, heldout=HeldoutSpec(8))
    tokenizer = load_tokenizer(str(model))
    train_set, _ = encode_pairs(tokenizer, *subset.pairs("train"), 64, "response")
    data = SFTDataModule(train_set, [], tokenizer.pad_token_id, max_length=64, batch_size=4, group_by_length=group)
    trainer = L.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        logger=False,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[log, ModelCheckpoint(dirpath=root / "ckpt", save_last=True, save_top_k=0, every_n_train_steps=1)],
    )
    trainer.fit(SFTModule(str(model)), datamodule=data, ckpt_path=ckpt)


@pytest.mark.slow
@pytest.mark.parametrize(("group", "kill_at"), [(False, 4), (True, 8), (False, 6)])
def test_a_resumed_job_sees_the_batches_of_an_uninterrupted_one(
    tmp_path, tiny_pool_file, tiny_model_dir, group, kill_at
):
    whole = BatchLog()
    fit(tmp_path / "whole", tiny_pool_file, tiny_model_dir, group, whole)
    assert len(whole.hashes) == STEPS and len(set(whole.hashes[:6])) == 6

    first = BatchLog(kill_at=kill_at)
    with pytest.raises(Killed):
        fit(tmp_path / "cut", tiny_pool_file, tiny_model_dir, group, first)
    second = BatchLog()
    fit(tmp_path / "cut", tiny_pool_file, tiny_model_dir, group, second, ckpt=str(tmp_path / "cut/ckpt/last.ckpt"))
    assert first.hashes + second.hashes == whole.hashes
