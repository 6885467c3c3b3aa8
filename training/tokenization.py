"""Turn (instruction, response) pairs into token ids with response-only labels, and a pad-only collator.

The loss target is explicit (`loss_on`), never inferred: the paper's argument rests on SFT loss being on
response tokens only. Masking happens here, once per sample; the collator only pads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.prompting import render_segments

IGNORE_INDEX = -100


def encode_pair(
    tokenizer: Any,
    instruction: str,
    response: str,
    max_length: int,
    loss_on: str = "response",
    segments: list[str] | None = None,
) -> dict[str, list[int]]:
    """Token ids and labels of one pair, at most `max_length` tokens.

    Truncation keeps the template intact: the instruction is capped at half the budget, then the response
    is cut to what remains (a cut response loses its closing EOS).
    """
    if loss_on not in ("response", "all"):
        raise ValueError(f"loss_on must be 'response' or 'all', got {loss_on!r}")
    pre, _, mid, _, post = segments or render_segments(tokenizer)

    def enc(text: str, as_text: bool) -> list[int]:
        return tokenizer(text, add_special_tokens=False, split_special_tokens=as_text)["input_ids"] if text else []

    pre_ids, mid_ids, post_ids = enc(pre, False), enc(mid, False), enc(post, False)
    fixed = len(pre_ids) + len(mid_ids) + len(post_ids)
    budget = max_length - fixed
    if budget < 2:
        raise ValueError(f"max_length={max_length} leaves no room for content after the {fixed}-token template")
    ins_ids = enc(instruction, True)[: max(1, budget // 2)]
    res_ids = enc(response, True)[: budget - len(ins_ids)]
    prompt = pre_ids + ins_ids + mid_ids
    answer = (res_ids + post_ids)[: max_length - len(prompt)]
    input_ids = prompt + answer
    labels = ([IGNORE_INDEX] * len(prompt) if loss_on == "response" else list(prompt)) + list(answer)
    return {"input_ids": input_ids, "labels": labels}


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


def pack(examples: list[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Concatenate consecutive examples into sequences of at most `max_length` tokens (greedy, in order).

    Saves the padding of many short samples. Labels keep their per-example response mask; attention is not
    reset at example boundaries (plain concatenation packing, as most SFT trainers do without varlen kernels),
    so a packed sequence lets later examples attend to earlier ones. Deterministic: same input, same bins.
    O(total tokens).
    """
    packed: list[dict[str, list[int]]] = []
    ids: list[int] = []
    labels: list[int] = []
    for example in examples:
        if ids and len(ids) + len(example["input_ids"]) > max_length:
            packed.append({"input_ids": ids, "labels": labels})
            ids, labels = [], []
        ids.extend(example["input_ids"])
        labels.extend(example["labels"])
    if ids:
        packed.append({"input_ids": ids, "labels": labels})
    return packed
