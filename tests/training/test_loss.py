"""The chunked response-only loss equals transformers' causal-LM loss, in value and in gradients."""

import pytest
import torch
from helpers import tiny_llama
from transformers import LlamaForCausalLM

from training.loss import linear_cross_entropy, response_loss, response_nll_rows
from training.tokenization import IGNORE_INDEX


def _tiny_llama(**overrides) -> LlamaForCausalLM:
    return tiny_llama(vocab_size=512, tie_word_embeddings=True, **overrides)


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 512, (3, 24), generator=generator)
    labels = ids.clone()
    labels[:, :9] = IGNORE_INDEX  # prompt
    mask = torch.ones_like(ids)
    mask[1, 17:] = 0  # padding
    labels[1, 17:] = IGNORE_INDEX
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return grads


@pytest.mark.parametrize("lora", [False, True])
@pytest.mark.parametrize("chunk_size", [5, 1024])
def test_chunked_loss_and_gradients_equal_the_standard_loss(lora, chunk_size):
    model = _tiny_llama()
    if lora:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
        for name, p in model.named_parameters():  # non-zero B so LoRA gradients are not trivially equal
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.1)
    batch = _batch()
    reference = model(**batch, use_cache=False).loss
    reference.backward()
    expected = _grads(model)
    total, count = response_loss(model, batch, chunked=True, chunk_size=chunk_size)
    (total / count).backward()
    got = _grads(model)
    assert count == int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    torch.testing.assert_close(total / count, reference, rtol=0, atol=1e-5)
    assert got.keys() == expected.keys() and expected
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_standard_path_of_the_switch_is_the_same_loss():
    model = _tiny_llama()
    batch = _batch()
    with torch.no_grad():
        chunked = response_loss(model, batch, chunked=True)
        standard = response_loss(model, batch, chunked=False)
    torch.testing.assert_close(chunked[0], standard[0], rtol=1e-6, atol=1e-4)
    assert chunked[1] == standard[1]


def test_a_head_that_is_not_a_plain_linear_layer_is_chunked_under_checkpointing():
    torch.manual_seed(0)
    linear = torch.nn.Linear(8, 50)
    wrapped = torch.nn.Sequential(linear)
    hidden = torch.randn(13, 8, requires_grad=True)
    targets = torch.randint(0, 50, (13,))
    fused = linear_cross_entropy(hidden, linear, targets, chunk_size=4)
    (g_fused,) = torch.autograd.grad(fused, hidden)
    generic = linear_cross_entropy(hidden, wrapped, targets, chunk_size=4)
    (g_generic,) = torch.autograd.grad(generic, hidden)
    reference = torch.nn.functional.cross_entropy(linear(hidden), targets, reduction="sum")
    (g_reference,) = torch.autograd.grad(reference, hidden)
    for value, grad in ((fused, g_fused), (generic, g_generic)):
        torch.testing.assert_close(value, reference, rtol=1e-6, atol=1e-5)
        torch.testing.assert_close(grad, g_reference, rtol=1e-5, atol=1e-6)


def test_a_batch_without_targets_gives_zero_loss_and_zero_gradients():
    model = _tiny_llama()
    batch = _batch()
    batch["labels"][:] = IGNORE_INDEX
    total, count = response_loss(model, batch)
    (total / count.clamp(min=1)).backward()
    assert count == 0 and total == 0
    assert all(not p.grad.any() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("chunked", [True, False])
def test_per_row_scores_add_up_to_the_training_loss_and_ignore_their_neighbours(chunked):
    """Item-level scores are the training loss split by row: their sums are `response_loss`'s total, and each
    row scored alone (no padding, no neighbours) gives its batched value."""
    model = _tiny_llama()
    batch = _batch()
    with torch.no_grad():
        total, count = response_loss(model, batch, chunked=chunked)
    sums, counts = response_nll_rows(model, batch, chunked=chunked, chunk_size=5)
    assert counts.tolist() == (batch["labels"][:, 1:] != IGNORE_INDEX).sum(1).tolist() and int(counts.sum()) == count
    torch.testing.assert_close(sums.sum(), total, rtol=1e-6, atol=1e-4)
    width = int(batch["attention_mask"][1].sum())
    alone = {k: v[1:2, :width] for k, v in batch.items()}
    single, _ = response_nll_rows(model, alone, chunked=chunked)
    torch.testing.assert_close(single[0], sums[1], rtol=1e-5, atol=1e-5)


def test_per_row_scores_fall_back_to_full_logits_for_a_scaled_head():
    model = _tiny_llama()
    batch = _batch()
    expected, _ = response_nll_rows(model, batch, chunked=False)
    model.config.logits_scaling = 1.0  # allowed
    torch.testing.assert_close(response_nll_rows(model, batch)[0], expected, rtol=1e-5, atol=1e-4)
    model.config.logits_scaling = 4.0  # refused by the chunked path: scored through the model's own logits
    torch.testing.assert_close(response_nll_rows(model, batch)[0], expected, rtol=1e-5, atol=1e-4)


def test_models_that_scale_their_logits_are_refused_by_name():
    model = _tiny_llama()
    model.config.logits_scaling = 4.0
    with pytest.raises(ValueError, match="logits_scaling=4.0.*model.chunked_loss=false"):
        response_loss(model, _batch())


@pytest.mark.gpu
def test_chunked_loss_under_bf16_autocast_and_its_peak_memory_on_gpu():
    """bf16-mixed on CUDA: same loss as the standard path within bf16 noise, and far less peak memory."""
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    model = _tiny_llama(vocab_size=32_000).cuda()
    ids = torch.randint(0, 32_000, (8, 512), device="cuda")
    labels = ids.clone()
    labels[:, :384] = IGNORE_INDEX
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    peaks, losses = [], []
    for chunked in (False, True):
        torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            total, count = response_loss(model, batch, chunked=chunked)
        (total / count).backward()
        model.zero_grad()
        losses.append(float(total / count))
        peaks.append(torch.cuda.max_memory_allocated())
    assert abs(losses[0] - losses[1]) < 2e-2
    assert peaks[1] <= peaks[0] / 2
