"""Item-level held-out scores and the base model's scores (0 steps), written into the run folder."""

from __future__ import annotations

import json

import pytest
from helpers import TINY_LORA

from core.jsonl import load_jsonl
from evaluation.runner import HELDOUT_ITEMS, score_base_model, write_heldout_items


def test_heldout_items_are_written_with_their_ids_and_counts(tmp_path):
    metrics = write_heldout_items(tmp_path, [(6.0, 3), (1.0, 1)], ["a", "b"])
    rows = load_jsonl(tmp_path / HELDOUT_ITEMS)
    assert rows == [
        {"id": "a", "loss": 2.0, "nll": 6.0, "tokens": 3},
        {"id": "b", "loss": 1.0, "nll": 1.0, "tokens": 1},
    ]
    assert metrics == {"heldout/loss_item_mean": 1.5, "counts/heldout/items": 2, "counts/heldout/tokens": 4}
    with pytest.raises(ValueError, match="2 held-out scores for 3 held-out ids"):
        write_heldout_items(tmp_path, [(6.0, 3), (1.0, 1)], ["a", "b", "c"])


def test_base_model_scores_are_those_of_a_zero_step_run(tiny_model_dir, tokenizer, tmp_path):
    """`score_base_model` gives the held-out loss a LoRA module validates before training (B = 0: the base
    model), item by item, and the reference loss, in `metrics.json` and the item files."""
    import lightning as L
    import torch

    from training.module import SFTModule
    from training.tokenization import PadCollator, encode_pairs

    pairs = [("2+2?", "4, of course."), ("Capital of France?", "Paris, on the Seine."), ("Hi", "Hello!")]
    heldout, _ = encode_pairs(tokenizer, [q for q, _ in pairs], [a for _, a in pairs], 64)
    source = tmp_path / "refs.jsonl"
    source.write_text(json.dumps({"prompt": "Say hi.", "reference": "Hi there!"}) + "\n")
    cfg = {
        "benchmarks": {"custom": {"source": str(source)}},
        "reference_loss": {"_target_": "evaluation.scorers.reference_loss.ReferenceLossScorer", "max_length": 64},
    }
    metrics = score_base_model(cfg, str(tiny_model_dir), tmp_path / "base", heldout, ["p0", "p1", "p2"])
    saved = json.loads((tmp_path / "base" / "metrics.json").read_text())
    assert (
        saved["train/steps"] == 0
        and saved["eval/reference_loss/custom_loss"] == metrics["eval/reference_loss/custom_loss"]
    )
    assert [r["id"] for r in load_jsonl(tmp_path / "base" / HELDOUT_ITEMS)] == ["p0", "p1", "p2"]
    assert len(load_jsonl(tmp_path / "base" / "scores" / "reference_items.jsonl")) == 1

    lora = TINY_LORA
    module = SFTModule(str(tiny_model_dir), lora=lora)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    loader = torch.utils.data.DataLoader(heldout, batch_size=2, collate_fn=PadCollator(tokenizer.pad_token_id))
    val = trainer.validate(module, dataloaders=loader, verbose=False)[0]
    assert val["val/loss"] == pytest.approx(saved["heldout/loss"], rel=1e-5)
    items = load_jsonl(tmp_path / "base" / HELDOUT_ITEMS)
    assert [r["tokens"] for r in items] == [n for _, n in module.val_items_]
    assert [r["nll"] for r in items] == pytest.approx([s for s, _ in module.val_items_], rel=1e-5)
