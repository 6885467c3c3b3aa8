"""Response-only causal-LM loss without full-vocabulary logits for every position.

A causal LM's usual loss applies the LM head to every position and upcasts the (batch, length, vocab) logits,
although with response-only labels most positions (prompt, padding) are ignored. Here the decoder gives hidden
states, only positions whose shifted label is a target are gathered, and the head and cross-entropy run over
them in chunks. For a plain linear head the gradient is computed chunk by chunk inside the forward pass (as in
Liger's fused linear cross-entropy), so at most one chunk of logits exists at a time and nothing is recomputed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from training.tokenization import IGNORE_INDEX

# Config attributes of heads that do more than `lm_head(hidden)`; the chunked loss would silently differ.
_HEAD_EXTRAS = ("final_logit_softcapping", "logit_scale", "logits_scaling", "output_multiplier_scale")


def split_model(model: Any) -> tuple[Any, torch.nn.Module]:
    """(decoder, head) of a Hugging Face causal LM, peft-wrapped or not; LoRA layers live inside the decoder."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for attr in _HEAD_EXTRAS:
        value = getattr(base.config, attr, None)
        if value not in (None, 1, 1.0):
            raise ValueError(
                f"{type(base).__name__} scales its logits ({attr}={value}); the chunked loss supports heads that are "
                "a plain linear layer. Set model.chunked_loss=false for this model."
            )
    return base.get_decoder(), base.get_output_embeddings()


class _LinearCrossEntropy(torch.autograd.Function):
    """Sum of cross-entropy of `hidden @ weight.T + bias` against `targets`, gradients computed in the forward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, chunk_size: int):  # type: ignore[override]
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        grad_bias = None
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = torch.zeros_like(bias, dtype=torch.float32)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, hidden.size(0), chunk_size):
            h = hidden[start : start + chunk_size]
            t = targets[start : start + chunk_size]
            logits = F.linear(h, weight, bias).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - logits.gather(1, t[:, None]).squeeze(1)).sum()
            if grad_hidden is None and grad_weight is None and grad_bias is None:
                continue
            # d(sum CE)/d logits = softmax - one_hot, computed in place over the chunk's logits.
            grad = logits.sub_(lse[:, None]).exp_()
            grad[torch.arange(len(t), device=t.device), t] -= 1.0
            grad = grad.to(h.dtype) if h.dtype != torch.float32 else grad
            if grad_hidden is not None:
                grad_hidden[start : start + chunk_size] = grad @ weight.to(grad.dtype)
            if grad_weight is not None:
                grad_weight += (grad.t() @ h.to(grad.dtype)).float()
            if grad_bias is not None:
                grad_bias += grad.float().sum(0)
        ctx.save_for_backward(
            *(g if g is not None else torch.empty(0) for g in (grad_hidden, grad_weight, grad_bias)),
        )
        ctx.has = (grad_hidden is not None, grad_weight is not None, grad_bias is not None)
        ctx.dtypes = (hidden.dtype, weight.dtype, bias.dtype if bias is not None else None)
        return total

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        saved = ctx.saved_tensors
        grads = [
            (g * grad_output).to(dtype) if has else None
            for g, has, dtype in zip(saved, ctx.has, ctx.dtypes, strict=True)
        ]
        return grads[0], grads[1], grads[2], None, None


def linear_cross_entropy(
    hidden: torch.Tensor, head: torch.nn.Module, targets: torch.Tensor, chunk_size: int = 1024
) -> torch.Tensor:
    """Summed cross-entropy of `head(hidden)` against `targets` (N x d hidden, N targets), one chunk at a time.

    A plain `nn.Linear` head takes the fused path; any other head (e.g. one wrapped by an adapter) is called per
    chunk under activation checkpointing, so its logits are recomputed in backward instead of kept.
    """
    if chunk_size < 1:
        raise ValueError(f"loss chunk size must be >= 1, got {chunk_size}")
    if type(head) is torch.nn.Linear:
        return _LinearCrossEntropy.apply(hidden, head.weight, head.bias, targets, chunk_size)
    from torch.utils.checkpoint import checkpoint

    def chunk_loss(h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(head(h).float(), t, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.size(0), chunk_size):
        end = start + chunk_size
        total = total + checkpoint(chunk_loss, hidden[start:end], targets[start:end], use_reentrant=False)
    return total


def response_loss(
    model: Any, batch: dict[str, torch.Tensor], chunked: bool = True, chunk_size: int = 1024
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed next-token NLL over labelled targets, number of targets) of a batch.

    `batch` holds `input_ids`, `labels` and either `attention_mask` (padded rows) or `position_ids` (packed rows,
    see `training.packing`). `chunked=False` is the standard path (full logits, then cross-entropy) for comparison
    and for heads the chunked path refuses.
    """
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if batch.get(k) is not None}
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    count = keep.sum()
    if not chunked:
        logits = model(**inputs, use_cache=False).logits[:, :-1]
        nll = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1), reduction="sum")
        return nll, count
    decoder, head = split_model(model)
    hidden = decoder(**inputs, use_cache=False).last_hidden_state[:, :-1]
    return linear_cross_entropy(hidden[keep], head, targets[keep], chunk_size), count


@torch.no_grad()
def response_nll_rows(
    model: Any,
    batch: dict[str, torch.Tensor],
    chunked: bool = True,
    chunk_size: int = 1024,
    first: torch.Tensor | None = None,
) -> tuple[torch.Tensor, ...]:
    """Per row: (summed next-token NLL over labelled targets, number of targets), for scoring (no gradients).

    The same targets, head and cross-entropy as `response_loss` (whose totals are these rows' sums), kept per
    row so held-out and reference scores can be stored item by item. A packed row holds several samples: its
    values are those of the whole row. A head the chunked path refuses falls back to full logits.
    `first` (one count per row) adds the sums over each row's first `first[row]` targets: in a causal model
    they equal the scores of the row cut after them, without a second forward pass.
    O(labelled targets x vocabulary) for the head, one chunk of logits at a time.
    """
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if batch.get(k) is not None}
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE_INDEX
    rows = keep.nonzero()[:, 0]
    if chunked:
        try:
            decoder, head = split_model(model)
        except ValueError:
            chunked = False
    if chunked:
        hidden = decoder(**inputs, use_cache=False).last_hidden_state[:, :-1][keep]
        flat = targets[keep]
        parts = [
            F.cross_entropy(head(hidden[s : s + chunk_size]).float(), flat[s : s + chunk_size], reduction="none")
            for s in range(0, hidden.size(0), max(1, chunk_size))
        ]
        nll = torch.cat(parts) if parts else hidden.new_zeros(0, dtype=torch.float32)
    else:
        logits = model(**inputs, use_cache=False).logits[:, :-1][keep]
        nll = F.cross_entropy(logits.float(), targets[keep], reduction="none")
    sums = torch.zeros(targets.size(0), dtype=torch.float32, device=nll.device).index_add_(0, rows, nll)
    if first is None:
        return sums, keep.sum(dim=1)
    rank = keep.cumsum(dim=1)[keep]  # 1-based position of each target within its row
    head_mask = rank <= first.to(rank.device)[rows]
    head_sums = torch.zeros_like(sums).index_add_(0, rows[head_mask], nll[head_mask])
    return sums, keep.sum(dim=1), head_sums
