"""Token-budget training trains on exactly the budget's supervised tokens, with accumulation, packing and resume."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from helpers import TINY_LORA

from training.budget import TokenBudget, budget_metrics, keep_first_targets, supervised_targets
from training.module import SFTModule
from training.packing import PackedCollator, pack
from training.tokenization import IGNORE_INDEX, PadCollator


def _examples(seed: int = 0, n: int = 8) -> list[dict[str, list[int]]]:
    """Pairs of varied length: a prompt of 3-6 tokens (labels masked), a response of 2-12 tokens."""
    rng = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        prompt, response = int(torch.randint(3, 7, (1,), generator=rng)), int(torch.randint(2, 13, (1,), generator=rng))
        ids = torch.randint(5, 500, (prompt + response,), generator=rng).tolist()
        out.append({"input_ids": ids, "labels": [IGNORE_INDEX] * prompt + ids[prompt:]})
    return out


def _batches(packed: bool = False, batch_size: int = 2) -> list[dict[str, torch.Tensor]]:
    examples = _examples()
    if packed:
        examples = pack(examples, 24)
    collate = (PackedCollator if packed else PadCollator)(0)
    return [collate(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]


def _counts(batches) -> list[int]:
    return [int(supervised_targets(b["labels"]).sum()) for b in batches]


def _module(model_dir) -> SFTModule:
    torch.manual_seed(0)
    lora = TINY_LORA
    return SFTModule(str(model_dir), lora=lora, optimizer=lambda params, **kw: torch.optim.AdamW(params, lr=1e-2))


def _trainer(callbacks, max_steps: int = -1, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        max_epochs=-1,
        accelerator="cpu",
        logger=False,
        callbacks=callbacks,
        enable_checkpointing=any(type(cb).__name__ == "ModelCheckpoint" for cb in callbacks),
        enable_progress_bar=False,
        enable_model_summary=False,
        **kwargs,
    )


def _loader(batches):
    return torch.utils.data.DataLoader(batches, batch_size=None)


def test_keep_first_targets_masks_the_overshoot_in_row_order():
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 7, 8, 9], [IGNORE_INDEX, 4, 5, IGNORE_INDEX, IGNORE_INDEX]])
    assert int(supervised_targets(labels).sum()) == 5  # the first position is never a target
    kept = keep_first_targets(labels, 4)
    assert kept.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 7, 8, 9], [IGNORE_INDEX, 4, IGNORE_INDEX, -100, -100]]
    assert int(supervised_targets(keep_first_targets(labels, 0)).sum()) == 0
    assert labels[1, 2] == 5  # a copy: the loader's batch is not edited


def _steps_for(counts: list[int], budget: int, accumulate: int = 1) -> int:
    """Optimizer steps until the cumulative count over cycling epochs reaches the budget."""
    done, micro = 0, 0
    while done < budget:
        done += counts[micro % len(counts)]
        micro += 1
    return -(-micro // accumulate)


@pytest.mark.parametrize(("packed", "accumulate"), [(False, 1), (False, 2), (True, 1)])
def test_budget_trains_exactly_its_tokens(tiny_model_dir, packed, accumulate):
    batches = _batches(packed)
    counts = _counts(batches)
    assert len(set(counts)) > 1 and len(batches) % accumulate == 0
    # Ends inside the second batch of the second epoch; with accumulation inside the first batch of a step, so
    # the step's second micro-batch trains nothing.
    extra = counts[0] // 2 if accumulate == 2 else counts[0] + counts[1] // 2
    budget = sum(counts) + extra
    callback = TokenBudget(budget)
    module = _module(tiny_model_dir)
    trainer = _trainer([callback], accumulate_grad_batches=accumulate)
    trainer.fit(module, train_dataloaders=_loader(batches))
    assert module.supervised_tokens_ == budget
    assert trainer.global_step == _steps_for(counts, budget, accumulate)
    assert callback.masked_ == (counts[0] - extra + counts[1] if accumulate == 2 else counts[1] - counts[1] // 2)
    metrics = budget_metrics(trainer, module)
    assert metrics["train/supervised_tokens"] == budget and metrics["train/budget_reached"]
    assert metrics["train/token_budget"] == budget


def test_fixed_step_runs_record_their_supervised_tokens(tiny_model_dir):
    batches = _batches()
    module = _module(tiny_model_dir)
    trainer = _trainer([], max_steps=3)
    trainer.fit(module, train_dataloaders=_loader(batches))
    assert budget_metrics(trainer, module) == {"train/supervised_tokens": sum(_counts(batches)[:3])}


def test_a_budget_cut_short_by_max_steps_says_so(tiny_model_dir, caplog):
    batches = _batches()
    module = _module(tiny_model_dir)
    trainer = _trainer([TokenBudget(10**6)], max_steps=2)
    trainer.fit(module, train_dataloaders=_loader(batches))
    assert not budget_metrics(trainer, module)["train/budget_reached"]
    assert "token budget not reached" in caplog.text


def test_the_count_survives_a_checkpoint(tiny_model_dir, tmp_path):
    """Interrupted after one epoch, the resumed run continues the count and stops on the same budget."""
    batches = _batches()
    counts = _counts(batches)
    budget = sum(counts) + counts[0] + 1
    first = _module(tiny_model_dir)
    trainer = _trainer([TokenBudget(budget)], max_steps=len(batches))
    trainer.fit(first, train_dataloaders=_loader(batches))
    assert first.supervised_tokens_ == sum(counts)
    trainer.save_checkpoint(tmp_path / "last.ckpt")

    resumed = _module(tiny_model_dir)
    callback = TokenBudget(budget)
    trainer = _trainer([callback])
    trainer.fit(resumed, train_dataloaders=_loader(batches), ckpt_path=tmp_path / "last.ckpt")
    assert resumed.supervised_tokens_ == budget
    assert trainer.global_step == len(batches) + 2 and callback.masked_ == counts[1] - 1

    spent = _module(tiny_model_dir)  # resuming a run that already spent its budget trains nothing more
    trainer = _trainer([TokenBudget(sum(counts))])
    trainer.fit(spent, train_dataloaders=_loader(batches), ckpt_path=tmp_path / "last.ckpt")
    assert spent.supervised_tokens_ == sum(counts) and trainer.global_step == len(batches)


def test_budget_must_be_positive():
    with pytest.raises(ValueError, match="budget.tokens"):
        TokenBudget(0)


def test_progress_lines_count_toward_the_budget(tiny_model_dir, caplog):
    import logging

    from training.progress_log import ProgressLog

    batches = _batches()
    budget = sum(_counts(batches)) + 3
    with caplog.at_level(logging.INFO, logger="macro2micro.progress"):
        _trainer([TokenBudget(budget), ProgressLog(every_s=0)]).fit(
            _module(tiny_model_dir), train_dataloaders=_loader(batches)
        )
    lines = [r.getMessage() for r in caplog.records if r.name == "macro2micro.progress"]
    assert lines[0] == f"training: ? optimizer steps or a budget of {budget} supervised tokens, whichever comes first"
    steps = [line for line in lines if line.startswith("train step")]
    assert steps[0].startswith("train step 1/3 (")  # total estimated from the tokens per step so far
    assert f"supervised tokens {budget}/{budget}" in steps[-1] and "5/5 (100%)" in steps[-1]


@pytest.mark.slow  # ~30 s: six short fits
@pytest.mark.parametrize(("packing", "group", "accumulate"), [(False, True, 2), (True, False, 1)])
def test_an_interrupted_budget_run_trains_like_an_uninterrupted_one(
    tiny_model_dir, tmp_path, packing, group, accumulate
):
    """Through the project's datamodule (seeded resumable order, length grouping or packing): killed mid-epoch
    and resumed from last.ckpt, a budget run trains the same batches, the same tokens and the same steps."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from training.datamodule import SFTDataModule

    def datamodule() -> SFTDataModule:
        kwargs = {"batch_size": 2, "seed": 3, "packing": packing, "group_by_length": group}
        return SFTDataModule(_examples(n=24), _examples(seed=1, n=2), 0, max_length=24, **kwargs)

    budget = 260  # about two epochs
    options = {"accumulate_grad_batches": accumulate, "limit_val_batches": 0}
    whole = _module(tiny_model_dir)
    trainer = _trainer([TokenBudget(budget)], **options)
    trainer.fit(whole, datamodule=datamodule())
    steps = trainer.global_step

    save = ModelCheckpoint(dirpath=tmp_path, save_last=True, save_top_k=0, every_n_train_steps=2)
    first = _module(tiny_model_dir)
    _trainer([TokenBudget(budget), save], max_steps=steps // 2 // 2 * 2 + 1, **options).fit(
        first, datamodule=datamodule()
    )
    resumed = _module(tiny_model_dir)
    trainer = _trainer([TokenBudget(budget)], **options)
    trainer.fit(resumed, datamodule=datamodule(), ckpt_path=tmp_path / "last.ckpt")
    assert resumed.supervised_tokens_ == whole.supervised_tokens_ == budget
    assert trainer.global_step == steps
    assert resumed.train_losses_ == pytest.approx(whole.train_losses_, abs=1e-6)
