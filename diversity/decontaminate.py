"""Benchmark decontamination: find pool instructions that copy an evaluation prompt.

A pool item is contaminated by a benchmark prompt when, after `normalise` (case, punctuation and spacing
removed), the two texts are equal, or when the item contains more than `min_share` of the prompt's distinct
word `ngram`-grams (the GPT-3 / Llama decontamination rule; 13 words by default). Training on an evaluation
prompt inflates the score the study compares across degrees of diversity, so such items leave the pool before
the held-out split and selection.

Cost is O(total words): benchmark n-grams are indexed once; a pool item's windows are screened with numpy
(a window with a word the benchmarks never use cannot match) and only the surviving windows are looked up.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

_APOSTROPHES = re.compile(r"['\u2019`]")
_PUNCTUATION = re.compile(r"[^\w\s]+")


def normalise(text: str) -> str:
    """Case-folded words joined by single spaces, punctuation removed: "Hello, World! It's" -> "hello world its"."""
    return " ".join(_PUNCTUATION.sub(" ", _APOSTROPHES.sub("", text.casefold())).split())


def method(ngram: int, min_share: float) -> str:
    """How matches are found, in words (recorded next to the counts)."""
    return (
        f"exact after normalising case, punctuation and spaces, or > {min_share:g} of a prompt's distinct "
        f"word {ngram}-grams"
    )


@dataclass(frozen=True)
class Contamination:
    """Which texts match which benchmarks.

    Attributes:
        keep: Indices of the texts that match no benchmark prompt (ascending).
        dropped: Indices of the texts that match at least one.
        counts: Benchmark name -> number of texts matching one of its prompts (a text may count for two).
        exact: Texts matched exactly (after normalisation); the rest of `dropped` matched by n-grams.
    """

    keep: np.ndarray
    dropped: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)
    exact: int = 0

    def report(self, ngram: int, min_share: float) -> dict[str, object]:
        """The `selection.json` block: per-benchmark counts, total, exact/n-gram split and the method."""
        return {
            **self.counts,
            "total": len(self.dropped),
            "exact": self.exact,
            "ngram": len(self.dropped) - self.exact,
            "method": method(ngram, min_share),
        }


class _Index:
    """Normalised benchmark prompts and their word n-grams, for repeated look-ups."""

    def __init__(self, benchmarks: Mapping[str, Sequence[str]], ngram: int) -> None:
        self.ngram = ngram
        self.exact: dict[str, set[str]] = defaultdict(set)
        self.vocab: dict[str, int] = {}
        self.grams: dict[tuple[int, ...], list[tuple[str, int]]] = defaultdict(list)
        self.sizes: dict[tuple[str, int], int] = {}
        for name, prompts in benchmarks.items():
            for p, prompt in enumerate(prompts):
                norm = normalise(prompt)
                if not norm:
                    continue
                self.exact[norm].add(name)
                ids = [self.vocab.setdefault(w, len(self.vocab)) for w in norm.split()]
                distinct = {tuple(ids[i : i + ngram]) for i in range(len(ids) - ngram + 1)}
                for gram in distinct:
                    self.grams[gram].append((name, p))
                if distinct:
                    self.sizes[(name, p)] = len(distinct)
        grams = np.array(list(self.grams), dtype=np.int64).reshape(-1, ngram)
        self.hashes = np.unique(_hash_rows(grams))  # sorted: membership by binary search

    def matches(self, text: str, min_share: float) -> tuple[set[str], bool]:
        """(benchmarks whose prompts `text` copies, whether one of them matches exactly)."""
        norm = normalise(text)
        if norm in self.exact:
            return set(self.exact[norm]), True
        words = norm.split()
        if len(words) < self.ngram or not len(self.hashes):
            return set(), False
        ids = np.fromiter((self.vocab.get(w, -1) for w in words), dtype=np.int64, count=len(words))
        windows = np.lib.stride_tricks.sliding_window_view(ids, self.ngram)
        windows = windows[(windows >= 0).all(axis=1)]
        if not len(windows):
            return set(), False
        hashes = _hash_rows(windows)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        hits = windows[self.hashes[at] == hashes]
        found: dict[tuple[str, int], int] = defaultdict(int)
        for gram in {tuple(int(v) for v in row) for row in hits}:
            for key in self.grams.get(gram, ()):
                found[key] += 1
        names = {name for (name, p), count in found.items() if count / self.sizes[(name, p)] > min_share}
        return names, False


_BASE = np.uint64(0x9E3779B97F4A7C15)


def _hash_rows(windows: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash per row of word ids (wrapping arithmetic; only a pre-filter)."""
    out = np.zeros(len(windows), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in windows.T.astype(np.uint64):
            out = out * _BASE + column + np.uint64(1)
    return out


def find_contaminated(
    texts: Sequence[str],
    benchmarks: Mapping[str, Sequence[str]],
    ngram: int = 13,
    min_share: float = 0.5,
) -> Contamination:
    """Split `texts` into those that match no benchmark prompt and those that do.

    Args:
        texts: Pool instructions.
        benchmarks: Benchmark name -> its prompts (all of them, not an evaluation subsample).
        ngram: Words per n-gram for near-copies.
        min_share: A text matches a prompt holding more than this share of the prompt's distinct n-grams.

    Returns:
        A `Contamination` with kept and dropped indices and per-benchmark counts.
    """
    if ngram < 1:
        raise ValueError(f"decontamination ngram must be >= 1, got {ngram}")
    if not 0.0 <= min_share < 1.0:
        raise ValueError(f"decontamination min_share must be in [0, 1), got {min_share}")
    index = _Index(benchmarks, ngram)
    counts = dict.fromkeys(benchmarks, 0)
    dropped: list[int] = []
    exact = 0
    for i, text in enumerate(texts):
        names, is_exact = index.matches(text, min_share)
        if names:
            dropped.append(i)
            exact += is_exact
            for name in names:
                counts[name] += 1
    drop = np.asarray(dropped, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(texts), dtype=np.int64), drop)
    return Contamination(keep, drop, counts, exact)
