"""Benchmark decontamination: find pool instructions that copy an evaluation prompt.

A pool item is contaminated by a benchmark prompt when, after `normalise` (case, punctuation and spacing
removed), one of these rules holds (each is counted per benchmark in the report):

- `exact`: the two texts are equal;
- `ngram`: the item holds more than `min_share` of the prompt's distinct word `ngram`-grams (the GPT-3 / Llama
  rule; 13 words by default);
- short prompts, which have no `ngram`-grams (261 of AlpacaEval's 805 prompts have under 13 words):
  `short_ngram`: a prompt of `short_ngram`..`ngram`-1 words, more than `min_share` of its `short_ngram`-grams;
  `contained`: a prompt of at least `short_min_words` words appears whole, as a run of words, inside the item
  ("What is the meaning of life? Explain it in 5 paragraphs." holds AlpacaEval's "What is the meaning of
  life?"). Prompts shorter than that ("Who made Berlin") are only matched exactly: as a phrase they are common.

Training on an evaluation prompt inflates the score the study compares across degrees of diversity, so such
items leave the pool before the held-out split and selection.

Cost is O(total words x distinct short-prompt lengths): benchmark n-grams and short prompts are indexed once; a
pool item's windows are hashed with numpy (a window with a word the benchmarks never use cannot match) and only
the surviving windows are looked up.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

_APOSTROPHES = re.compile(r"['\u2019`]")
_PUNCTUATION = re.compile(r"[^\w\s]+")


def normalise(text: str) -> str:
    """Case-folded words joined by single spaces, punctuation removed: "Hello, World! It's" -> "hello world its"."""
    return " ".join(_PUNCTUATION.sub(" ", _APOSTROPHES.sub("", text.casefold())).split())


RULES = ("exact", "ngram", "short_ngram", "contained")


def method(ngram: int, min_share: float, short_ngram: int = 8, short_min_words: int = 5) -> str:
    """How matches are found, in words (recorded next to the counts)."""
    text = (
        f"exact after normalising case, punctuation and spaces, or > {min_share:g} of a prompt's distinct "
        f"word {ngram}-grams"
    )
    if short_ngram < ngram:
        text += f"; prompts of {short_ngram}-{ngram - 1} words: > {min_share:g} of their {short_ngram}-grams"
    if short_min_words < ngram:
        text += f"; prompts of {short_min_words}-{ngram - 1} words: contained whole in the text"
    return text


@dataclass(frozen=True)
class Contamination:
    """Which texts match which benchmarks.

    Attributes:
        keep: Indices of the texts that match no benchmark prompt (ascending).
        dropped: Indices of the texts that match at least one.
        counts: Benchmark name -> number of texts matching one of its prompts (a text may count for two).
        exact: Texts matched exactly (after normalisation).
        by_rule: Texts dropped by each rule of `RULES`, each text under the first rule (in that order) that
            matched it, so the four add up to `len(dropped)`.
        rule_counts: Rule -> benchmark -> texts that rule matched to one of the benchmark's prompts.
    """

    keep: np.ndarray
    dropped: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)
    exact: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    rule_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def report(
        self, ngram: int = 13, min_share: float = 0.5, short_ngram: int = 8, short_min_words: int = 5
    ) -> dict[str, object]:
        """The `selection.json` block: per-benchmark counts, total, the split by rule (`exact`, `ngram`,
        `short_ngram`, `contained`: first matching rule), `by_benchmark` (rule -> benchmark -> texts) and the
        method."""
        by_rule = {rule: self.by_rule.get(rule, 0) for rule in RULES}
        return {
            **self.counts,
            "total": len(self.dropped),
            **by_rule,
            "by_benchmark": {rule: dict(self.rule_counts.get(rule, {})) for rule in RULES},
            "method": method(ngram, min_share, short_ngram, short_min_words),
        }


class _Index:
    """Normalised benchmark prompts of `words` words and their word n-grams, for repeated look-ups."""

    def __init__(
        self,
        benchmarks: Mapping[str, Sequence[str]],
        ngram: int,
        vocab: dict[str, int],
        words: tuple[float, float] = (0, np.inf),
    ) -> None:
        self.width = ngram
        self.exact: dict[str, set[str]] = defaultdict(set)
        self.grams: dict[tuple[int, ...], list[tuple[str, int]]] = defaultdict(list)
        self.sizes: dict[tuple[str, int], int] = {}
        for name, prompts in benchmarks.items():
            for p, prompt in enumerate(prompts):
                norm = normalise(prompt)
                if not norm or not words[0] <= len(norm.split()) < words[1]:
                    continue
                self.exact[norm].add(name)
                ids = [vocab.setdefault(w, len(vocab)) for w in norm.split()]
                distinct = {tuple(ids[i : i + ngram]) for i in range(len(ids) - ngram + 1)}
                for gram in distinct:
                    self.grams[gram].append((name, p))
                if distinct:
                    self.sizes[(name, p)] = len(distinct)
        self.hashes = _sorted_hashes(list(self.grams), ngram)

    def matches(self, seq: list[int], starts: Sequence[int], min_share: float) -> set[str]:
        """Benchmarks with a prompt of which the windows of `seq` at `starts` hold more than `min_share`."""
        found: dict[tuple[str, int], int] = defaultdict(int)
        for gram in {tuple(seq[s : s + self.width]) for s in starts}:
            for key in self.grams.get(gram, ()):
                found[key] += 1
        return {name for (name, p), count in found.items() if count / self.sizes[(name, p)] > min_share}


class _Contained:
    """Short normalised prompts (`lengths` words), found whole as a run of words inside a text.

    Windows of the text are screened by the prompts' first `lengths.start` words (one hash pass), and only the
    few that pass are compared with the whole prompts that start so.
    """

    def __init__(self, benchmarks: Mapping[str, Sequence[str]], vocab: dict[str, int], lengths: range) -> None:
        self.width = lengths.start
        self.prompts: dict[tuple[int, ...], list[tuple[tuple[int, ...], str]]] = defaultdict(list)
        for name, prompts in benchmarks.items():
            for prompt in prompts:
                words = normalise(prompt).split()
                if len(words) in lengths:
                    ids = tuple(vocab.setdefault(w, len(vocab)) for w in words)
                    self.prompts[ids[: self.width]].append((ids, name))
        self.hashes = _sorted_hashes(list(self.prompts), self.width)

    def matches(self, seq: list[int], starts: Sequence[int], min_share: float = 0.0) -> set[str]:
        """Benchmarks with a prompt found whole at one of `starts` in `seq`."""
        found: set[str] = set()
        for start in starts:
            for prompt, name in self.prompts.get(tuple(seq[start : start + self.width]), ()):
                if tuple(seq[start : start + len(prompt)]) == prompt:
                    found.add(name)
        return found


_BASE = np.uint64(0x9E3779B97F4A7C15)
_BASE_INV = np.uint64(pow(int(_BASE), -1, 2**64))  # odd, so invertible modulo 2**64
_CHUNK_WORDS = 1 << 20  # texts are scanned in batches of about this many words (memory ~ 50 bytes a word)


def copies_by_benchmark(block: Mapping[str, object]) -> str:
    """`alpaca_eval 18, arena_hard 0`: a `selection.json` decontamination block's copies per benchmark checked."""
    return ", ".join(f"{name} {block.get(name, 0)}" for name in block.get("benchmarks") or [])


def _hash_rows(windows: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash per row of word ids (wrapping arithmetic; only a pre-filter)."""
    out = np.zeros(len(windows), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in windows.T.astype(np.uint64):
            out = out * _BASE + column + np.uint64(1)
    return out


def _sorted_hashes(rows: list[tuple[int, ...]], width: int) -> np.ndarray:
    return np.unique(_hash_rows(np.array(rows, dtype=np.int64).reshape(-1, width)))  # sorted: binary search


def _hit_starts(seq: np.ndarray, width: int, hashes: np.ndarray) -> np.ndarray:
    """Starts of the `width`-word windows of `seq` (no unknown word, -1) whose `_hash_rows` hash is in `hashes`.

    All windows at once in O(len(seq)): with prefix sums S[k] = sum_{j<k} (x_j + 1) B^-(j+1), a window's hash
    is B^(i+w) (S[i+w] - S[i]) (uint64 arithmetic wraps, as in `_hash_rows`).
    """
    n = len(seq)
    if n < width or not len(hashes):
        return np.empty(0, dtype=np.int64)
    with np.errstate(over="ignore"):
        x = (seq + 1).astype(np.uint64)
        prefix = np.zeros(n + 1, dtype=np.uint64)
        np.cumsum(x * np.cumprod(np.full(n, _BASE_INV, dtype=np.uint64)), out=prefix[1:])
        powers = np.cumprod(np.full(n, _BASE, dtype=np.uint64))  # B^(k+1)
        window = powers[width - 1 :] * (prefix[width:] - prefix[: n - width + 1])
    unknown = np.concatenate([[0], np.cumsum(seq < 0)])
    valid = unknown[width:] == unknown[: n - width + 1]
    at = np.minimum(np.searchsorted(hashes, window), len(hashes) - 1)
    return np.flatnonzero(valid & (hashes[at] == window))


def _batches(items: list[tuple[int, np.ndarray]]) -> Iterator[list[tuple[int, np.ndarray]]]:
    batch: list[tuple[int, np.ndarray]] = []
    words = 0
    for item in items:
        batch.append(item)
        words += len(item[1]) + 1
        if words >= _CHUNK_WORDS:
            yield batch
            batch, words = [], 0
    if batch:
        yield batch


def find_contaminated(
    texts: Sequence[str],
    benchmarks: Mapping[str, Sequence[str]],
    ngram: int = 13,
    min_share: float = 0.5,
    short_ngram: int = 8,
    short_min_words: int = 5,
) -> Contamination:
    """Split `texts` into those that match no benchmark prompt and those that do (rules: module docstring).

    Args:
        texts: Pool instructions.
        benchmarks: Benchmark name -> its prompts (all of them, not an evaluation subsample).
        ngram: Words per n-gram for near-copies.
        min_share: A text matches a prompt holding more than this share of the prompt's distinct n-grams.
        short_ngram: Words per n-gram for prompts of `short_ngram`..`ngram`-1 words (>= ngram: rule off).
        short_min_words: Prompts of this many words up to `ngram`-1 also match a text holding them whole
            (>= ngram: rule off).

    Returns:
        A `Contamination` with kept and dropped indices, per-benchmark counts and counts per rule.
    """
    if ngram < 1 or short_ngram < 1:
        raise ValueError(f"decontamination ngram and short_ngram must be >= 1, got {ngram} and {short_ngram}")
    if short_min_words < 1:
        raise ValueError(f"decontamination short_min_words must be >= 1, got {short_min_words}")
    if not 0.0 <= min_share < 1.0:
        raise ValueError(f"decontamination min_share must be in [0, 1), got {min_share}")
    vocab: dict[str, int] = {}
    index = _Index(benchmarks, ngram, vocab)
    short = _Index(benchmarks, short_ngram, vocab, (short_ngram, ngram)) if short_ngram < ngram else None
    contained = _Contained(benchmarks, vocab, range(short_min_words, ngram))
    rules = {"ngram": index, "contained": contained, **({"short_ngram": short} if short is not None else {})}
    matched: dict[int, dict[str, set[str]]] = {}
    pending: list[tuple[int, np.ndarray]] = []
    for i, text in enumerate(texts):
        norm = normalise(text)
        if norm in index.exact:
            matched[i] = {"exact": set(index.exact[norm])}
        else:
            words = norm.split()
            pending.append((i, np.fromiter((vocab.get(w, -1) for w in words), dtype=np.int64, count=len(words))))
    for batch in _batches(pending):  # one vectorised pass per rule over many texts, -1 between them
        seq = np.concatenate([np.append(ids, -1) for _, ids in batch])
        offsets = np.cumsum([0] + [len(ids) + 1 for _, ids in batch])[:-1]
        words = seq.tolist()
        for rule, finder in rules.items():
            starts = _hit_starts(seq, finder.width, finder.hashes)
            owners = np.searchsorted(offsets, starts, side="right") - 1
            for owner in np.unique(owners):
                names = finder.matches(words, starts[owners == owner].tolist(), min_share)
                if names:
                    matched.setdefault(batch[owner][0], {})[rule] = names
    counts = dict.fromkeys(benchmarks, 0)
    by_rule = dict.fromkeys(RULES, 0)
    rule_counts = {rule: dict.fromkeys(benchmarks, 0) for rule in RULES}
    dropped = sorted(matched)
    for i in dropped:
        by_rule[next(rule for rule in RULES if matched[i].get(rule))] += 1
        for rule, names in matched[i].items():
            for name in names:
                rule_counts[rule][name] += 1
        for name in set().union(*matched[i].values()):
            counts[name] += 1
    drop = np.asarray(dropped, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(texts), dtype=np.int64), drop)
    return Contamination(keep, drop, counts, by_rule["exact"], by_rule, rule_counts)
