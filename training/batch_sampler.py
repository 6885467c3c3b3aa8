"""The training order: seeded per epoch, optionally grouped by length, and resumable mid-epoch.

A job killed mid-epoch and restarted from `last.ckpt` must train on exactly the batches the uninterrupted job
would have seen, in the same order. The order of an epoch is a pure function of (seed, epoch), and the loader
counts the batches it has handed out; Lightning stores that count in the checkpoint (`state_dict`) and gives it
back on resume (`load_state_dict`), and the loader then skips what was already trained on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, DistributedSampler


class ResumableSampler(DistributedSampler):
    """Sample indices of one epoch in a seeded order, this process's share of them, from a start offset.

    A `DistributedSampler` so that Lightning's DDP keeps it as it is (each rank takes every `num_replicas`-th
    index of the same global order) and calls `set_epoch` at every epoch start.

    Args:
        lengths: tokens per training sample (only used when `group_by_length`).
        batch_size: per-process batch size (a global batch is `batch_size * num_replicas` samples).
        seed: the order of epoch e is drawn from `numpy.random.default_rng([seed, e])`.
        group_by_length: shuffle, cut into megabatches of `megabatch_size` global batches, sort each by length
            (longest first), split into batches and shuffle the batch order: similar lengths share a batch, so
            less padding, while which batch comes when stays random. The last, incomplete batch stays last.
        megabatch_size: global batches per megabatch (50, as Hugging Face's length-grouped sampler).
        num_replicas, rank: DDP world size and this process's rank.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        group_by_length: bool = False,
        megabatch_size: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1 or megabatch_size < 1:
            raise ValueError(f"batch_size and megabatch_size must be >= 1, got {batch_size}, {megabatch_size}")
        super().__init__(range(len(lengths)), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.group_by_length = group_by_length
        self.megabatch_size = megabatch_size
        self.start = 0  # indices of this process to skip in the next iteration (set by ResumableLoader)

    def order(self, epoch: int) -> list[int]:
        """The global order of `epoch` (all processes), padded by wrap-around to a multiple of the world size.

        O(n log m) for megabatches of m samples.
        """
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(len(self.lengths))
        if self.group_by_length:
            step = self.batch_size * self.num_replicas
            mega = step * self.megabatch_size
            batches: list[np.ndarray] = []
            for lo in range(0, len(perm), mega):
                chunk = perm[lo : lo + mega]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
                batches.extend(chunk[i : i + step] for i in range(0, len(chunk), step))
            tail = [batches.pop()] if batches and len(batches[-1]) < step else []
            batches = [batches[i] for i in rng.permutation(len(batches))] + tail
            perm = np.concatenate(batches) if batches else perm
        order = perm.tolist()
        return order + order[: self.total_size - len(order)]

    def __iter__(self) -> Iterator[int]:
        start, self.start = self.start, 0
        return iter(self.order(self.epoch)[self.rank :: self.num_replicas][start:])

    def __len__(self) -> int:
        return self.num_samples


class ResumableLoader(DataLoader):
    """A DataLoader over a `ResumableSampler` that Lightning checkpoints and restores mid-epoch.

    `state_dict` is the epoch and the number of batches handed out in it. Counting happens where batches
    leave the loader, so it is exact whatever the worker prefetching; Lightning itself does not prefetch from
    a loader with a length.
    """

    def __init__(self, dataset: Sequence[Any], sampler: Any, batch_size: int | None = None, **kwargs: Any) -> None:
        # Lightning may rebuild the loader with another sampler (e.g. sequential for `overfit_batches`): then
        # it is a plain DataLoader with the same batch size.
        size = batch_size or sampler.batch_size
        super().__init__(dataset, batch_size=size, sampler=sampler, **kwargs)
        self._position = {"epoch": 0, "batches": 0}
        self._resume_at: dict[str, int] | None = None

    def __iter__(self) -> Iterator[Any]:
        # A generator: this runs at the first batch, after Lightning's `set_epoch` for the epoch.
        if not self._resumable:
            yield from super().__iter__()
            return
        epoch = self.sampler.epoch
        resume, self._resume_at = self._resume_at, None
        done = resume["batches"] if resume and resume["epoch"] == epoch else 0
        self._position = {"epoch": epoch, "batches": done}
        self.sampler.start = done * self.batch_size
        for batch in super().__iter__():
            self._position["batches"] += 1
            yield batch

    @property
    def _resumable(self) -> bool:
        return isinstance(self.sampler, ResumableSampler)

    def state_dict(self) -> dict[str, int]:
        """Where training stands in the order: what `load_state_dict` continues from."""
        return {**self._position, "seed": self.sampler.seed, "n": len(self.sampler.lengths)} if self._resumable else {}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after the batches `state` counts (applies to the next iteration of that epoch)."""
        if not self._resumable or not state:
            return
        mine = (self.sampler.seed, len(self.sampler.lengths))
        if (state.get("seed"), state.get("n")) != mine:
            raise ValueError(
                f"checkpoint's training order (seed {state.get('seed')}, {state.get('n')} samples) does not match "
                f"this run's (seed {mine[0]}, {mine[1]} samples): the subset or seed changed since it was saved"
            )
        self._resume_at = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}


def padding_efficiency(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Real tokens over padded tokens (batch width = its longest sample) of `batches` of sample indices."""
    real = sum(lengths[i] for batch in batches for i in batch)
    padded = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches if batch)
    return real / padded if padded else 1.0
