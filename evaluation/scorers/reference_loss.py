"""Reference loss: how well the model predicts the benchmark's strong baseline answers (no judge, CPU only).

For each prompt with a reference answer, the mean negative log-likelihood per token of `reference + EOS` given
the chat-templated prompt, counted on answer tokens only (the same response-only view the SFT loss takes).
Per benchmark the loss is token-weighted over all answers; perplexity is `exp(loss)`.
"""

from __future__ import annotations

import math
from typing import Any

from evaluation.scorers.base import EvalContext


class ReferenceLossScorer:
    """Scores `eval/reference_loss/<benchmark>_loss` and `<benchmark>_ppl`.

    Args:
        benchmarks: Benchmarks to score; None = every configured one (those without references are skipped).
        batch_size: Sequences per forward pass.
        max_length: Cap on prompt + answer tokens; the prompt keeps its end, the answer its start.
    """

    name = "reference_loss"

    def __init__(self, benchmarks: list[str] | None = None, batch_size: int = 4, max_length: int = 1024):
        self.benchmarks = benchmarks
        self.batch_size = batch_size
        self.max_length = max_length

    def score(self, ctx: EvalContext) -> dict[str, float]:
        scores: dict[str, float] = {}
        for bench in ctx.names(self.benchmarks):
            items = [item for item in ctx.items(bench) if item.reference]
            if not items:
                continue
            nll, count = reference_nll(
                ctx.model,
                ctx.tokenizer,
                [item.prompt for item in items],
                [item.reference for item in items],
                self.batch_size,
                self.max_length,
            )
            for item, item_nll, item_count in zip(items, nll, count, strict=True):
                ctx.annotate(bench, item.id, reference_nll=item_nll / max(item_count, 1))
            loss = sum(nll) / max(sum(count), 1)
            scores[f"eval/{self.name}/{bench}_loss"] = loss
            scores[f"eval/{self.name}/{bench}_ppl"] = math.exp(loss)
        return scores


def _encode(tokenizer: Any, prompt: str, reference: str, max_length: int) -> tuple[list[int], int]:
    """Token ids of prompt + answer and the index where the answer starts."""
    from core.generate import chat_prompt

    prompt_ids = tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(reference + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
    answer_ids = answer_ids[: max(1, max_length // 2)] if len(prompt_ids) + len(answer_ids) > max_length else answer_ids
    prompt_ids = prompt_ids[-(max_length - len(answer_ids)) :]
    return prompt_ids + answer_ids, len(prompt_ids)


def reference_nll(
    model: Any, tokenizer: Any, prompts: list[str], references: list[str], batch_size: int, max_length: int
) -> tuple[list[float], list[int]]:
    """Summed NLL and token count of each reference answer (right-padded batches, pad masked by attention)."""
    import torch

    encoded = [_encode(tokenizer, p, r, max_length) for p, r in zip(prompts, references, strict=True)]
    device = next(model.parameters()).device
    sums: list[float] = []
    counts: list[int] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(encoded), batch_size):
            batch = encoded[start : start + batch_size]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.zeros((len(batch), width), dtype=torch.long)
            attention = torch.zeros_like(input_ids)
            labels = torch.full_like(input_ids, -100)
            for row, (ids, answer_start) in enumerate(batch):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                labels[row, answer_start : len(ids)] = torch.tensor(ids[answer_start:])
            with torch.no_grad():
                logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
            logits, targets = logits[:, :-1].float(), labels[:, 1:].to(device)
            token_nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), targets, ignore_index=-100, reduction="none"
            )
            mask = targets != -100
            sums.extend((token_nll * mask).sum(dim=1).tolist())
            counts.extend(mask.sum(dim=1).tolist())
    finally:
        model.train(was_training)
    return sums, counts
