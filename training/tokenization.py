"""Turn (instruction, response) pairs into token ids with response-only labels, and a pad-only collator.

The loss target is explicit (`loss_on`), never inferred: the paper's argument rests on SFT loss being on
response tokens only. Masking happens here, once per sample; the collator only pads.

Truncation never teaches the model to stop where it should not: a response cut at `max_length` ends where it
was cut, without the end-of-turn token, and cuts are counted (`TruncationStats`) so a run reports how much of
its subset it did not see in full. An over-long instruction is cut by the rule generation uses too
(`core.prompting.keep_ends`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.prompting import encode_content, encode_template, keep_ends, render_segments

IGNORE_INDEX = -100


@dataclass
class TruncationStats:
    """What `max_length` cut from a set of samples (the "truncation" block of selection.json).

    `n_response_cut` counts every response that does not end with its end-of-turn token, including a whole
    response that lost only that token (also counted alone in `n_end_of_turn_cut`).
    """

    max_length: int
    n: int = 0
    n_cut: int = 0
    n_response_cut: int = 0
    n_instruction_cut: int = 0
    n_end_of_turn_cut: int = 0
    tokens_dropped: int = 0
    tokens_total: int = 0

    def add(self, instruction_dropped: int, response_dropped: int, kept: int, end_lost: bool = False) -> None:
        """One sample: content tokens cut from each part, content tokens kept, and whether the response lost
        its end-of-turn token (a response that is whole but unclosed is cut too: the model never sees it end)."""
        self.n += 1
        self.n_cut += bool(instruction_dropped or response_dropped or end_lost)
        self.n_response_cut += bool(response_dropped or end_lost)
        self.n_instruction_cut += bool(instruction_dropped)
        self.n_end_of_turn_cut += bool(end_lost and not response_dropped)
        self.tokens_dropped += instruction_dropped + response_dropped
        self.tokens_total += kept + instruction_dropped + response_dropped

    def as_dict(self) -> dict[str, Any]:
        share = self.n_cut / self.n if self.n else 0.0
        return {**vars(self), "share_cut": share}


MIN_CONTENT_TOKENS = 2  # one instruction and one response token at least


def template_tokens(tokenizer: Any) -> int:
    """Tokens the chat template itself takes in every encoded pair (what `max_length` must exceed)."""
    pre, _, mid, _, post = render_segments(tokenizer)
    return sum(len(encode_template(tokenizer, s)) for s in (pre, mid, post))


def encode_pair(
    tokenizer: Any,
    instruction: str,
    response: str,
    max_length: int,
    loss_on: str = "response",
    segments: list[str] | None = None,
    stats: TruncationStats | None = None,
) -> dict[str, list[int]]:
    """Token ids and labels of one pair, at most `max_length` tokens (cuts are added to `stats` if given).

    The template is never cut. When the pair does not fit, the instruction keeps at least half of the content
    budget (more if the response is short) and loses its middle (`keep_ends`); the response then gets the
    rest. A response that fits is closed by the post-template (`<|im_end|>`), which is trained on; a cut
    response is not: it keeps its first tokens up to `max_length` and nothing after them, so the model never
    learns to end a turn mid-sentence.
    """
    if loss_on not in ("response", "all"):
        raise ValueError(f"loss_on must be 'response' or 'all', got {loss_on!r}")
    pre, _, mid, _, post = segments or render_segments(tokenizer)
    pre_ids, mid_ids, post_ids = (encode_template(tokenizer, s) for s in (pre, mid, post))
    fixed = len(pre_ids) + len(mid_ids) + len(post_ids)
    budget = max_length - fixed
    if budget < MIN_CONTENT_TOKENS:
        raise ValueError(f"max_length={max_length} leaves no room for content after the {fixed}-token template")
    ins_all, res_all = encode_content(tokenizer, instruction), encode_content(tokenizer, response)
    ins_ids = keep_ends(ins_all, min(len(ins_all), max(budget // 2, budget - len(res_all))))
    room = budget - len(ins_ids)
    answer = res_all + post_ids if len(res_all) <= room else res_all[: room + len(post_ids)]
    prompt = pre_ids + ins_ids + mid_ids
    input_ids = prompt + answer
    labels = ([IGNORE_INDEX] * len(prompt) if loss_on == "response" else list(prompt)) + list(answer)
    if stats is not None:
        res_kept = min(len(res_all), len(answer))
        end_lost = len(res_all) > room  # the end-of-turn tokens' room went to response content
        stats.add(len(ins_all) - len(ins_ids), len(res_all) - res_kept, len(ins_ids) + res_kept, end_lost)
    return {"input_ids": input_ids, "labels": labels}


def encode_pairs(
    tokenizer: Any,
    instructions: Sequence[str],
    responses: Sequence[str],
    max_length: int,
    loss_on: str = "response",
) -> tuple[list[dict[str, list[int]]], TruncationStats]:
    """`encode_pair` over many pairs (the template rendered once), with what truncation cut from them."""
    segments = render_segments(tokenizer)
    stats = TruncationStats(max_length)
    items = [
        encode_pair(tokenizer, ins, res, max_length, loss_on, segments, stats)
        for ins, res in zip(instructions, responses, strict=True)
    ]
    return items, stats


@dataclass
class PadCollator:
    """Right-pads a batch; padding is masked by the attention mask and ignored in labels (never by token id,
    because SmolLM2's pad token is its EOS, which the response's closing token must keep in the loss)."""

    pad_token_id: int

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(x["input_ids"]) for x in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, x in enumerate(batch):
            n = len(x["input_ids"])
            ids[row, :n] = torch.tensor(x["input_ids"])
            labels[row, :n] = torch.tensor(x["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
