"""Packing keeps sample boundaries: best-fit-decreasing bins, positions restarting, no attention across samples."""

import pytest
import torch
from helpers import TINY_LORA

from training.batch_sampler import padding_efficiency
from training.packing import PackedCollator, pack
from training.tokenization import IGNORE_INDEX, PadCollator, encode_pair


def _examples(lengths: list[int]) -> list[dict[str, list[int]]]:
    return [{"input_ids": [100 + i] * n, "labels": [200 + i] * n} for i, n in enumerate(lengths)]


def test_best_fit_decreasing_fills_fewer_bins_than_in_order_packing():
    # In order: [6] [5 4] ... wastes space; best fit decreasing: 6+4 and 5+3+2, no padding at all.
    packed = pack(_examples([6, 5, 4, 3, 2]), max_length=10)
    assert [len(p["input_ids"]) for p in packed] == [10, 10]
    assert packed[0]["input_ids"] == [100] * 6 + [102] * 4
    assert packed == pack(_examples([6, 5, 4, 3, 2]), max_length=10)  # deterministic


def test_every_sample_appears_once_with_its_own_positions_and_no_first_target():
    examples = _examples([7, 1, 9, 3, 3, 12, 5, 2])
    packed = pack(examples, max_length=12)
    assert all(len(p["input_ids"]) <= 12 for p in packed)
    seen = []
    for row in packed:
        starts = [k for k, pos in enumerate(row["position_ids"]) if pos == 0] + [len(row["input_ids"])]
        for a, b in zip(starts, starts[1:], strict=False):
            assert row["position_ids"][a:b] == list(range(b - a))
            sample = row["input_ids"][a] - 100
            assert row["input_ids"][a:b] == examples[sample]["input_ids"]
            assert row["labels"][a:b] == [IGNORE_INDEX] + examples[sample]["labels"][1:]
            seen.append(sample)
    assert sorted(seen) == list(range(len(examples)))


def test_a_sample_longer_than_a_row_is_an_error():
    with pytest.raises(ValueError, match="example 1 has 9 tokens, more than max_length=8"):
        pack(_examples([3, 9]), max_length=8)


def test_packing_pads_less_than_plain_batches():
    lengths = [5, 60, 12, 33, 64, 8, 20, 41, 17, 3, 50, 28]
    packed = pack(_examples(lengths), max_length=64)
    rows = [len(p["input_ids"]) for p in packed]
    assert padding_efficiency(rows, _consecutive(len(rows), 4)) > padding_efficiency(lengths, _consecutive(12, 4))


def _consecutive(n: int, batch_size: int) -> list[list[int]]:
    return [list(range(k, min(k + batch_size, n))) for k in range(0, n, batch_size)]


def test_collator_restarts_positions_for_padding_and_pads_unpacked_rows_like_pad_collator():
    packed = pack(_examples([3, 2, 4]), max_length=5)
    batch = PackedCollator(0)(packed)
    assert "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0], [0, 1, 2, 0, 1]]
    assert batch["labels"][0, 4] == IGNORE_INDEX and batch["input_ids"][0, 4] == 0
    plain = _examples([3, 2])
    padded, reference = PackedCollator(0)(plain), PadCollator(0)(plain)
    assert padded.keys() == reference.keys() and all(torch.equal(padded[k], reference[k]) for k in padded)


def _token_nll(model, batch) -> torch.Tensor:
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits[:, :-1]
    return torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), batch["labels"][:, 1:], reduction="none", ignore_index=IGNORE_INDEX
    )


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_batch_gives_each_sample_its_unpacked_loss(tiny_model_dir, tokenizer, attn):
    """Per-token losses of every packed sample equal those of the sample alone: no attention across samples."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attn).eval()
    pairs = [("Hi?", "Hello there."), ("Name three rivers.", "Nile, Amazon, Danube."), ("2+2?", "4")]
    pairs += [("Explain gravity in one line.", "Mass attracts mass."), ("Why?", "Because it is so, " * 3)]
    examples = [encode_pair(tokenizer, q, a, 48, loss_on="all") for q, a in pairs]
    packed = pack(examples, max_length=128)
    assert len(packed) < len(examples) and max(len(p["input_ids"]) for p in packed) > 48
    with torch.no_grad():
        nll = _token_nll(model, PackedCollator(tokenizer.pad_token_id)(packed))
        alone = [_token_nll(model, PadCollator(tokenizer.pad_token_id)([e]))[0] for e in examples]
    checked = 0
    for row, p in enumerate(packed):
        starts = [k for k, pos in enumerate(p["position_ids"]) if pos == 0] + [len(p["input_ids"])]
        for a, b in zip(starts, starts[1:], strict=False):
            sample = next(i for i, e in enumerate(examples) if e["input_ids"] == p["input_ids"][a:b])
            # position a-1 predicts the sample's first token: ignored; a .. b-2 predict its own tokens.
            if a:
                assert nll[row, a - 1] == 0
            torch.testing.assert_close(nll[row, a : b - 1], alone[sample], rtol=0, atol=1e-5)
            checked += 1
    assert checked == len(examples)


def test_packed_training_loss_matches_unpacked_through_the_module(tiny_model_dir, tokenizer):
    from training.module import SFTModule

    module = SFTModule(str(tiny_model_dir), lora=TINY_LORA)
    module.configure_model()
    module.model.eval()
    examples = [encode_pair(tokenizer, f"question {i}?", "answer " * (3 * i + 1), 64) for i in range(6)]
    with torch.no_grad():
        packed_sum, packed_n = module.loss_sum(PackedCollator(tokenizer.pad_token_id)(pack(examples, 160)))
        plain_sum, plain_n = module.loss_sum(PadCollator(tokenizer.pad_token_id)(examples))
    assert packed_n == plain_n
    torch.testing.assert_close(packed_sum, plain_sum, rtol=1e-6, atol=1e-4)


@pytest.mark.slow
def test_a_packed_run_trains_and_scores_the_unpacked_heldout_set(tiny_overrides, tmp_path):
    """data.packing=true end to end: packed training batches, padded held-out batches, finite losses."""
    import json
    import math

    from helpers import run_cli

    result = run_cli(*tiny_overrides, "data.packing=true", "logger=csv")
    assert result.returncode == 0, result.stderr[-3000:]
    (metrics_file,) = (tmp_path / "outputs").rglob("metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert math.isfinite(metrics["heldout/loss"]) and math.isfinite(metrics["train/loss_last"])
