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
        from core.generate import save_jsonl

        scores: dict[str, float] = {}
        rows: list[dict[str, Any]] = []
        first = f"first{self.first_tokens}"
        for bench in ctx.names(self.benchmarks):
            items = [item for item in ctx.all_items(bench, self.limit) if item.reference]
            if not items:
                continue
            prompts, refs = [item.prompt for item in items], [item.reference for item in items]
            full, head = reference_nll(
                ctx.model, ctx.tokenizer, prompts, refs, self.batch_size, self.max_length, self.first_tokens
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
        if rows:
            save_jsonl(ctx.run_dir / ITEMS_FILE, rows)
        return scores


def encode_references(
    tokenizer: Any, prompts: list[str], references: list[str], max_length: int, first_tokens: int
) -> tuple[list[dict[str, list[int]]], list[dict[str, list[int]]]]:
    """Each reference as a training pair (`encode_pairs`), and its first `first_tokens` answer tokens without the
    closing text (end-of-turn token and what follows it in the template). O(total tokens)."""
    from core.prompting import encode_content
    from training.tokenization import IGNORE_INDEX, encode_pairs

    encoded, _ = encode_pairs(tokenizer, prompts, references, max_length)
    heads = []
    for pair, reference in zip(encoded, references, strict=True):
        labels = pair["labels"]
        start = next((i for i, x in enumerate(labels) if x != IGNORE_INDEX), len(labels))
        # The answer is the reference's tokens (all kept unless cut) followed by the closing text.
        content = min(len(encode_content(tokenizer, reference)), len(labels) - start)
        end = start + min(first_tokens, content)
        heads.append({"input_ids": pair["input_ids"][:end], "labels": labels[:end]})
    return encoded, heads


def score_pairs(
    model: Any, examples: list[dict[str, list[int]]], pad_token_id: int, batch_size: int
) -> list[tuple[float, int]]:
    """(summed NLL, target count) of each encoded pair, batched by length with the training collator and scored by
    the training loss (`response_nll_rows`); the model is in eval mode meanwhile. O(tokens) forward passes."""
    from training.loss import response_nll_rows
    from training.tokenization import PadCollator

    collate = PadCollator(pad_token_id)
    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))  # less padding
    out: list[tuple[float, int]] = [(0.0, 0)] * len(examples)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = {k: v.to(device) for k, v in collate([examples[i] for i in rows]).items()}
            sums, counts = response_nll_rows(model, batch)
            for i, s, n in zip(rows, sums.tolist(), counts.tolist(), strict=True):
                out[i] = (float(s), int(n))
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
) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    """(summed NLL, tokens) of each whole reference answer with its closing text, and of its first
    `first_tokens` tokens without it."""
    full, heads = encode_references(tokenizer, prompts, references, max_length, first_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    scored = score_pairs(model, full + heads, pad, batch_size)
    return scored[: len(full)], scored[len(full) :]
