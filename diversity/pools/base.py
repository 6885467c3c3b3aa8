"""The `Pool` value: ordered (instruction, response) pairs, their conversations, and the held-out split."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COMPONENTS = ("instruction", "response")


class PoolError(ValueError):
    """A pool that cannot be used as asked (bad file, bad row, too few samples)."""


@dataclass(frozen=True)
class HeldoutSplit:
    """Indices into a pool: what selection may use and what only the held-out loss sees.

    Attributes:
        selectable: Pairs selection may choose from (ascending).
        heldout: Held-out pairs (ascending); whole conversations, never selectable.
        removed_duplicates: Pairs in neither set: their normalised instruction equals a held-out one.
        groups: Conversations held out.
    """

    selectable: np.ndarray
    heldout: np.ndarray
    removed_duplicates: int = 0
    groups: int = 0


@dataclass(frozen=True)
class Pool:
    """An ordered set of single-turn (instruction, response) pairs.

    `groups[i]` names the conversation pair i comes from (pairs of one ShareGPT conversation share it), so
    the held-out split can keep conversations whole; empty means every pair is its own conversation.
    `columns[name][i]` is the numeric field `name` of the row pair i comes from (`load_pool(columns=...)`, e.g. a
    quality score for `selector.quality=column:<name>`); `take` keeps it aligned. Texts alone make the content
    hash (the types and embeddings of a pool do not depend on its columns).
    """

    ids: list[str]
    instructions: list[str]
    responses: list[str]
    source: str
    content_hash: str
    stats: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    columns: dict[str, np.ndarray] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self, component: str) -> list[str]:
        if component not in COMPONENTS:
            raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")
        return self.instructions if component == "instruction" else self.responses

    def take(self, indices: Iterable[int]) -> Pool:
        """Sub-pool with the given rows, in the given order (its own content hash)."""
        idx = [int(i) for i in indices]
        ins = [self.instructions[i] for i in idx]
        res = [self.responses[i] for i in idx]
        groups = [self.groups[i] for i in idx] if self.groups else []
        ids = [self.ids[i] for i in idx]
        columns = {name: values[np.asarray(idx, dtype=np.int64)] for name, values in self.columns.items()}
        return Pool(ids, ins, res, self.source, pairs_hash(ins, res), dict(self.stats), groups, columns)

    def sample_hash(self, i: int) -> str:
        return pair_hash(self.instructions[i], self.responses[i])

    def split_heldout(self, size: int, seed: int = 0) -> HeldoutSplit:
        """A seeded held-out set of whole conversations that no subset may ever contain.

        Conversations are visited in a seeded random order and held out while they fit in `size`, so the
        held-out set has exactly `size` pairs unless no remaining conversation fits. A selectable pair whose
        instruction equals a held-out instruction after `normalise` (e.g. "continue") is removed and counted:
        otherwise the held-out loss would partly measure memorised prompts. Fixed per (pool, seed), so every
        run of a sweep that shares `data.heldout_seed` is scored on the same items whatever its own seed.
        """
        from diversity.decontaminate import normalise

        if size < 0 or size >= len(self):
            raise PoolError(f"held-out size {size} must be in [0, {len(self)}) for pool {self.source}")
        names, member = np.unique(np.asarray(self.groups or self.ids, dtype=object), return_inverse=True)
        sizes = np.bincount(member, minlength=len(names))
        chosen, remaining = [], size
        for g in np.random.default_rng(seed).permutation(len(names)):
            if remaining == 0:
                break
            if sizes[g] <= remaining:
                chosen.append(g)
                remaining -= int(sizes[g])
        held = np.isin(member, np.asarray(chosen, dtype=np.int64))
        heldout = np.flatnonzero(held)
        held_texts = {normalise(self.instructions[i]) for i in heldout}
        rest = np.flatnonzero(~held)
        duplicate = np.fromiter((normalise(self.instructions[i]) in held_texts for i in rest), bool, len(rest))
        return HeldoutSplit(rest[~duplicate], heldout, int(duplicate.sum()), len(chosen))


def pair_hash(instruction: str, response: str) -> str:
    return hashlib.sha256(f"{instruction}\0{response}".encode("utf-8", "surrogatepass")).hexdigest()


def pairs_hash(instructions: list[str], responses: list[str]) -> str:
    digest = hashlib.sha256()
    for ins, res in zip(instructions, responses, strict=True):
        digest.update(pair_hash(ins, res).encode())
    return digest.hexdigest()
