"""The training order: seeded, complete, length-grouped on request, and resumable mid-epoch."""

from __future__ import annotations

import numpy as np
import pytest

from training.batch_sampler import ResumableLoader, ResumableSampler, padding_efficiency

LENGTHS = np.random.default_rng(0).lognormal(5.5, 0.8, size=1003).astype(int).clip(8, 1024).tolist()


def batches_of(order: list[int], size: int) -> list[list[int]]:
    return [order[i : i + size] for i in range(0, len(order), size)]


@pytest.mark.parametrize("grouped", [False, True])
def test_each_epoch_is_a_seeded_permutation(grouped):
    sampler = ResumableSampler(LENGTHS, batch_size=8, seed=3, group_by_length=grouped)
    first = sampler.order(0)
    assert sorted(first) == list(range(len(LENGTHS)))  # every sample exactly once
    assert ResumableSampler(LENGTHS, 8, seed=3, group_by_length=grouped).order(0) == first  # same seed, same order
    assert ResumableSampler(LENGTHS, 8, seed=4, group_by_length=grouped).order(0) != first
    assert sampler.order(1) != first  # a new order every epoch
    sampler.set_epoch(1)
    assert list(sampler) == sampler.order(1)


def test_length_grouping_cuts_padding_and_keeps_batch_order_random():
    plain = ResumableSampler(LENGTHS, batch_size=8, seed=0)
    grouped = ResumableSampler(LENGTHS, batch_size=8, seed=0, group_by_length=True)
    eff_plain = padding_efficiency(LENGTHS, batches_of(plain.order(0), 8))
    grouped_batches = batches_of(grouped.order(0), 8)
    eff_grouped = padding_efficiency(LENGTHS, grouped_batches)
    assert eff_plain < 0.7 and eff_grouped > 0.9
    # only the last batch is short, and batch lengths are not sorted over the epoch (no long-to-short curriculum)
    assert all(len(b) == 8 for b in grouped_batches[:-1]) and len(grouped_batches[-1]) == len(LENGTHS) % 8
    widths = [max(LENGTHS[i] for i in b) for b in grouped_batches]
    assert abs(np.corrcoef(np.arange(len(widths)), widths)[0, 1]) < 0.3


@pytest.mark.parametrize("grouped", [False, True])
def test_ranks_share_out_one_global_order(grouped):
    """DDP: each rank takes every world_size-th index of the same order; grouped batches stay grouped per rank."""
    ranks = [ResumableSampler(LENGTHS, 4, seed=1, group_by_length=grouped, num_replicas=2, rank=r) for r in (0, 1)]
    seqs = [list(s) for s in ranks]
    assert len(seqs[0]) == len(seqs[1]) == len(ranks[0]) == 502  # padded by wrap-around, like DistributedSampler
    assert set(seqs[0]) | set(seqs[1]) == set(range(len(LENGTHS)))
    if grouped:
        assert padding_efficiency(LENGTHS, batches_of(seqs[1], 4)) > 0.9


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("stop_after", [0, 5, 13, 14, 20])
def test_a_restored_loader_continues_the_uninterrupted_sequence(grouped, stop_after):
    """Across an epoch end too: 54 samples in batches of 4 are 14 batches per epoch."""
    data = list(range(54))
    lengths = [LENGTHS[i] for i in data]

    def loader() -> ResumableLoader:
        return ResumableLoader(data, ResumableSampler(lengths, 4, seed=7, group_by_length=grouped))

    def run(dl: ResumableLoader, epochs: range, stop: int | None = None) -> list[list[int]]:
        seen: list[list[int]] = []
        for epoch in epochs:
            dl.sampler.set_epoch(epoch)  # what Lightning does at every epoch start
            for batch in dl:
                seen.append(batch.tolist())
                if stop is not None and len(seen) == stop:
                    return seen
        return seen

    full = run(loader(), range(2))
    interrupted = loader()
    before = run(interrupted, range(2), stop=stop_after) if stop_after else []
    state = interrupted.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    after = run(resumed, range(state["epoch"], 2))
    assert before + after == full


def test_a_checkpoint_of_another_subset_or_seed_is_refused():
    dl = ResumableLoader(list(range(10)), ResumableSampler([1] * 10, 2, seed=0))
    state = dl.state_dict()
    other = ResumableLoader(list(range(12)), ResumableSampler([1] * 12, 2, seed=0))
    with pytest.raises(ValueError, match="seed 0, 10 samples"):
        other.load_state_dict(state)
