"""Packing that keeps sample boundaries: best-fit-decreasing bins, positions restarting per sample, no attention
across samples.

Plain concatenation packing (what `data.packing` used to do) lets a sample attend to the unrelated samples before
it and gives it positions it never has alone, so the loss of a packed sample is not the loss of that sample. Here
every sample keeps its own positions (0, 1, ...) and the collator hands the model `position_ids` without a 2D
attention mask: transformers then builds a block-diagonal causal mask from the position resets (sdpa, eager,
flex) or runs the variable-length kernel (flash attention on one flattened row, see `training.module`).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from training.tokenization import IGNORE_INDEX, PadCollator


def pack(examples: list[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Whole samples in bins of at most `max_length` tokens, best-fit decreasing (fewest bins, least padding).

    Each packed example holds `input_ids`, `labels` and `position_ids` (restarting at 0 for every sample). The
    first label of every sample is set to IGNORE_INDEX: unpacked, the first token is never a target, and packed
    it would otherwise be predicted from the end of the previous sample. Deterministic: ties in length keep input
    order, and a sample goes to the fullest bin it fits in (the lowest bin id among equals). O(n log n) searches.
    """
    for row, example in enumerate(examples):
        if len(example["input_ids"]) > max_length:
            raise ValueError(f"example {row} has {len(example['input_ids'])} tokens, more than max_length={max_length}")
        if len(example["labels"]) != len(example["input_ids"]):
            raise ValueError(f"example {row}: labels and input_ids differ in length")
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]["input_ids"]), i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (space left, bin id), sorted: the best fit is the first with enough space
    for i in order:
        size = len(examples[i]["input_ids"])
        if size == 0:
            continue
        at = bisect.bisect_left(free, (size, -1))
        if at < len(free):
            space, b = free.pop(at)
        else:
            space, b = max_length, len(bins)
            bins.append([])
        bins[b].append(i)
        if space - size > 0:
            bisect.insort(free, (space - size, b))
    packed = []
    for members in bins:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in members:
            n = len(examples[i]["input_ids"])
            ids.extend(examples[i]["input_ids"])
            labels.extend([IGNORE_INDEX, *examples[i]["labels"][1:]])
            positions.extend(range(n))
        packed.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return packed


@dataclass
class PackedCollator(PadCollator):
    """Right-pads packed rows and returns `position_ids` instead of an attention mask.

    Padding continues as one more pseudo-sample per row (positions restarting at 0, labels ignored), so it neither
    attends to nor is attended by real tokens. Without a 2D mask, transformers detects the packed samples from the
    position resets and keeps attention inside each sample. Unpacked rows (the held-out set) are padded as
    `PadCollator` pads them, so one collator serves both loaders.
    """

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        if "position_ids" not in batch[0]:
            return super().__call__(batch)
        width = max(len(x["input_ids"]) for x in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.arange(width, dtype=torch.long).repeat(len(batch), 1)
        for row, x in enumerate(batch):
            n = len(x["input_ids"])
            ids[row, :n] = torch.tensor(x["input_ids"])
            labels[row, :n] = torch.tensor(x["labels"])
            positions[row, :n] = torch.tensor(x["position_ids"])
            positions[row, n:] = torch.arange(width - n)
        return {"input_ids": ids, "labels": labels, "position_ids": positions}
