"""Reference loss: how well the model predicts the benchmark's strong baseline answers (no judge, CPU only).

Each reference is scored exactly as a training pair would be trained on: encoded by
`training.tokenization.encode_pairs` (the chat template's own closing text after the answer, a literal
`<|im_end|>` inside a reference kept as text, an over-long prompt keeping its start and end), padded by the
training collator and scored by the training loss (`training.loss.response_nll_rows`), on answer tokens only.

Two views per benchmark, both as item means (every reference weighs the same; a token-weighted mean lets the
long references dominate):

- `<bench>_loss`: mean over references of the per-token NLL of the whole answer and its closing text;
- `<bench>_loss_first<m>`: the same over each answer's first `m` tokens (default 128) without the end token, so a
  model that learned to stop early is not scored on where it expects to stop, and length weighs less.

`<bench>_loss_token_weighted` (the earlier definition) and `<bench>_ppl` (= exp of `<bench>_loss`) come along;
per-reference values and token counts go to `scores/reference_items.jsonl`, counts to `counts/reference_loss/...`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from evaluation.scorers.base import EvalContext

ITEMS_FILE = Path("scores") / "reference_items.jsonl"


class ReferenceLossScorer:
    """Scores `eval/reference_loss/<benchmark>_loss` (item mean), `_loss_first<m>`, `_loss_token_weighted`, `_ppl`.

    Args:
        benchmarks: Benchmarks to score; None = every configured one (those without references are skipped).
        batch_size: Sequences per forward pass.
        max_length: Cap on prompt + answer tokens, cut by the training rule (`encode_pair`).
        limit: References per benchmark: None = all that have one (the benchmark's own `limit` only subsamples
            the prompts answered by generation); an int = a seeded subsample.
        first_tokens: `m` of the first-`m`-tokens, no-end-token variant.
    """

    name = "reference_loss"

    def __init__(
        self,
        benchmarks: list[str] | None = None,
        batch_size: int = 4,
        max_length: int = 1024,
        limit: int | None = None,
        first_tokens: int = 128,
    ):
        self.benchmarks = benchmarks
        self.batch_size = batch_size
        self.max_length = max_length
        self.limit = limit
        self.first_tokens = first_tokens

    def score(self, ctx: EvalContext) -> dict[str, float]:
        from core.jsonl import save_jsonl

        scores: dict[str, float] = {}
        rows: list[dict[str, Any]] = []
        first = f"first{self.first_tokens}"
        for bench in ctx.names(self.benchmarks):
            items = [item for item in ctx.all_items(bench, self.limit) if item.reference]
            if not items:
                continue
            prompts, refs = [item.prompt for item in items], [item.reference for item in items]
            full, head, cut = reference_nll(
                ctx.model, ctx.tokenizer, prompts, refs, self.batch_size, self.max_length, self.first_tokens, True
            )
            for item, (nll, n), (nll_m, n_m) in zip(items, full, head, strict=True):
                row = {"benchmark": bench, "id": item.id, "loss": nll / max(n, 1), "nll": nll, "tokens": n}
                row |= {f"loss_{first}": nll_m / max(n_m, 1), f"nll_{first}": nll_m, f"tokens_{first}": n_m}
                rows.append(row)
                ctx.annotate(bench, item.id, reference_nll=row["loss"], reference_tokens=n)
            loss = sum(nll / max(n, 1) for nll, n in full) / len(full)
            scores[f"eval/{self.name}/{bench}_loss"] = loss
            scores[f"eval/{self.name}/{bench}_ppl"] = math.exp(loss)
            scores[f"eval/{self.name}/{bench}_loss_{first}"] = sum(s / max(n, 1) for s, n in head) / len(head)
            scores[f"eval/{self.name}/{bench}_loss_token_weighted"] = sum(s for s, _ in full) / max(
                sum(n for _, n in full), 1
            )
            scores[f"counts/{self.name}/{bench}_items"] = len(items)
            scores[f"counts/{self.name}/{bench}_tokens"] = sum(n for _, n in full)
            scores[f"counts/{self.name}/{bench}_cut"] = cut.n_cut  # pairs over max_length (scored without their end)
        if rows:
            save_jsonl(ctx.run_dir / ITEMS_FILE, rows)
        return scores


def encode_references(
    tokenizer: Any, prompts: list[str], references: list[str], max_length: int, first_tokens: int
) -> tuple[list[dict[str, list[int]]], list[int], Any]:
    """Each reference as a training pair (`encode_pairs`), how many of its answer tokens the first-tokens view
    counts (at most `first_tokens`, never the closing text: end-of-turn token and what the template puts after
    it), and what `max_length` cut (`TruncationStats`). O(total tokens)."""
    from core.prompting import encode_content
    from training.tokenization import IGNORE_INDEX, encode_pairs

    encoded, stats = encode_pairs(tokenizer, prompts, references, max_length)
    firsts = []
    for pair, reference in zip(encoded, references, strict=True):
        answer = sum(x != IGNORE_INDEX for x in pair["labels"])
        # The answer is the reference's tokens (all kept unless cut) followed by the closing text.
        firsts.append(min(first_tokens, len(encode_content(tokenizer, reference)), answer))
    return encoded, firsts, stats


def score_pairs(
    model: Any,
    examples: list[dict[str, list[int]]],
    pad_token_id: int,
    batch_size: int,
    first: list[int] | None = None,
) -> list[tuple[float, ...]]:
    """(summed NLL, target count) of each encoded pair, plus the NLL of its first `first[i]` targets when given;
    batched by length with the training collator and scored by the training loss (`response_nll_rows`), the
    model in eval mode meanwhile. O(tokens) forward passes."""
    import torch

    from training.loss import response_nll_rows
    from training.tokenization import PadCollator

    collate = PadCollator(pad_token_id)
    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # less padding
    out: list[tuple[float, ...]] = [()] * len(examples)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in rows]).items()}
            limits = torch.tensor([first[i] for i in rows]) if first is not None else None
            values = [v.tolist() for v in response_nll_rows(model, batch, first=limits)]
            for j, i in enumerate(rows):
                out[i] = (float(values[0][j]), int(values[1][j]), *(float(v[j]) for v in values[2:]))
    finally:
        model.train(was_training)
    return out


def reference_nll(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    references: list[str],
    batch_size: int,
    max_length: int,
    first_tokens: int = 128,
    with_stats: bool = False,
) -> tuple[Any, ...]:
    """(summed NLL, tokens) of each whole reference answer with its closing text, and of its first
    `first_tokens` tokens without it (read off the same forward pass: a causal model scores a prefix alike);
    with `with_stats`, also what `max_length` cut (`TruncationStats`)."""
    encoded, firsts, stats = encode_references(tokenizer, prompts, references, max_length, first_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scored = score_pairs(model, encoded, pad, batch_size, firsts)
    full = [(s, n) for s, n, _ in scored]
    head = [(h, m) for (_, _, h), m in zip(scored, firsts, strict=True)]
    return (full, head, stats) if with_stats else (full, head)
