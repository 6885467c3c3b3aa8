"""SFTDataModule: feeds the trainer the tokenized subset and held-out pairs; nothing else.

Selection happens before, in `diversity.select.select_subset` (the run's `subset.jsonl` records it); the
pairs are tokenized by `training.tokenization.encode_pairs` (also used by `mode=select` to count what
`max_length` cuts, without Lightning), and this module only batches them: a seeded, resumable training order
(optionally grouped by length) or best-fit packing, and padded held-out batches.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np

from training.packing import PackedCollator, pack
from training.tokenization import PadCollator

log = logging.getLogger(__name__)

Encoded = list[dict[str, list[int]]]


class SFTDataModule(L.LightningDataModule):
    """Serves tokenized pairs for supervised fine-tuning.

    Args:
        train_set: the subset, tokenized (`training.tokenization.encode_pairs`: input_ids + labels).
        heldout_set: the held-out pairs, tokenized the same way (all of them are scored each validation).
        pad_token_id: the tokenizer's padding id.
        max_length: row length when packing.
        batch_size: per device.
        seed: seeds the training order (per epoch; see `training.batch_sampler`).
        packing: pack whole training samples into rows of `max_length` tokens, without attention across samples.
        group_by_length: batch samples of similar length together (less padding).
        num_workers: DataLoader workers for training.
    """

    def __init__(
        self,
        train_set: Encoded,
        heldout_set: Encoded,
        pad_token_id: int,
        max_length: int,
        batch_size: int = 4,
        seed: int = 0,
        packing: bool = False,
        group_by_length: bool = False,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.train_set = pack(train_set, max_length) if packing else train_set
        self.heldout_set = heldout_set
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.group_by_length = group_by_length
        # PackedCollator pads the unpacked held-out rows exactly as PadCollator does.
        self.collate = (PackedCollator if packing else PadCollator)(pad_token_id)
        lengths = [len(x["input_ids"]) for x in self.train_set]
        log.info(
            "training on %d %s (mean %.0f tokens), %d held-out pairs",
            len(lengths),
            "packed rows" if packing else "samples",
            float(np.mean(lengths)) if lengths else 0.0,
            len(heldout_set),
        )

    def train_dataloader(self) -> Any:
        """Batches in a seeded, resumable order (see `training.batch_sampler`), grouped by length if configured."""
        from training.batch_sampler import ResumableLoader, ResumableSampler

        trainer = getattr(self, "trainer", None)
        sampler = ResumableSampler(
            [len(x["input_ids"]) for x in self.train_set],
            self.batch_size,
            seed=self.seed,
            group_by_length=self.group_by_length,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        return ResumableLoader(self.train_set, sampler, collate_fn=self.collate, num_workers=self.num_workers)

    def val_dataloader(self) -> Any:
        from torch.utils.data import DataLoader

        return DataLoader(self.heldout_set, batch_size=self.batch_size, collate_fn=self.collate, num_workers=0)
