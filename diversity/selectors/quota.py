"""Per-stratum quotas a selector must meet exactly: how the length lock reaches the selectors.

A `Quota` puts every candidate in one stratum (its response-length stratum, see `diversity.lengths`) and says
how many samples each stratum must contribute. The degree selector (Algorithms 1 + 2) draws within the quotas
and the random selector draws a stratified random sample, so a locked degree and a locked random baseline have
the same length distribution.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Quota:
    """`counts[s]` samples from stratum s; `stratum[i]` is the stratum of candidate row i.

    Attributes:
        stratum: (n_samples,) int64 stratum id per row of the type matrix the selector sees.
        counts: (n_strata,) how many rows each stratum contributes; sums to the subset size n.
    """

    stratum: np.ndarray
    counts: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def key(self) -> str:
        """Identity for caches keyed on the quota (strata and counts)."""
        digest = hashlib.sha256(np.ascontiguousarray(self.stratum, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.counts, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def available(self, rows: np.ndarray) -> np.ndarray:
        """How many of `rows` fall in each stratum."""
        return np.bincount(self.stratum[rows], minlength=len(self.counts))

    def check(self, rows: np.ndarray, who: str) -> None:
        """Raise if `rows` cannot meet every stratum's count (names the first short stratum)."""
        short = np.flatnonzero(self.available(rows) < self.counts)
        if short.size:
            s = int(short[0])
            raise ValueError(
                f"{who}: the length lock needs {int(self.counts[s])} samples from length stratum {s} but the "
                f"candidates hold {int(self.available(rows)[s])} there (a wider window, fewer bins or a smaller n)"
            )

    def draw(self, rows: np.ndarray, rng: np.random.Generator, already: np.ndarray | None = None) -> np.ndarray:
        """A stratified uniform sample of `rows`: each stratum's remaining count drawn without replacement.

        `already` (rows chosen before, counted against the quota) are excluded and their strata's counts
        reduced. Returns the sorted union of `already` and the new draw. O(len(rows)).
        """
        already = np.zeros(0, dtype=np.int64) if already is None else np.asarray(already, dtype=np.int64)
        left = self.counts - np.bincount(self.stratum[already], minlength=len(self.counts))
        free = np.setdiff1d(rows, already, assume_unique=False)
        picks = [already]
        for s in np.flatnonzero(left > 0):
            members = free[self.stratum[free] == s]
            picks.append(rng.choice(members, size=int(left[s]), replace=False))
        return np.sort(np.concatenate(picks)).astype(np.int64)


def holds_length_lock(selector: Any) -> bool:
    """Whether a selector (instance or class) can hold a length lock: its `select` takes the lock's `quota`.
    The one test of it, for the config check before any work and for `Strategy.select` at run time."""
    return "quota" in inspect.signature(selector.select).parameters
