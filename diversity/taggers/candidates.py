"""Candidate tag phrases of a text window: key phrases and verb-object phrases, by plain word patterns.

The phrase tagger (`diversity.taggers.phrase`) draws its open vocabulary from these candidates; they are what
InsTag's LLM would name as intents, found here without a model: content-word runs split at stop words and
punctuation give key phrases ("linked list", "python function"), and a verb joined to its object across an
article or pronoun gives a verb-object phrase ("write a poem" -> "write poem"). O(words x max_ngram) per window.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from functools import lru_cache

_TOKEN = re.compile(r"[a-z0-9][a-z0-9+#]*(?:[-_.'][a-z0-9]+)*|[^\sa-z0-9]")
# Words a verb's object may sit behind: "write a poem", "give me the recipe", "fix my code".
_BRIDGE = frozenset({"a", "an", "the", "me", "us", "my", "our", "your", "his", "her", "their", "its", "some"})
# sklearn's stop-word list (a 1990s IR list) holds content words that are real intents here; keep those.
_CONTENT = frozenset({"computer", "system", "describe", "fire", "bill", "interest", "detail", "call", "show",
                      "name", "find", "move", "fill", "part", "amount", "top", "bottom", "front", "back", "side",
                      "full"})  # fmt: skip
# Request fillers that never name an intent.
_FILLER = frozenset({"please", "want", "need", "like", "just", "really", "im", "ive", "don", "doesn", "didn", "isn",
                     "let", "lets", "using", "use", "given", "following", "also", "would", "could", "able", "etc",
                     "kindly", "pls", "hey", "hi", "hello", "dear", "okay", "ok", "sure"})  # fmt: skip


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset((ENGLISH_STOP_WORDS - _CONTENT) | _FILLER)


def candidate_phrases(window: str, max_ngram: int = 3) -> list[tuple[str, ...]]:
    """Candidate phrases (tuples of lowercase words) of one window, in order of first appearance.

    Key phrases: every 1..`max_ngram`-word span of a content-word run. Verb-object phrases: the last word
    of a run joined to the first one or two words of the next run when only `_BRIDGE` words lie between.
    O(words x max_ngram).
    """
    stops = stop_words()
    runs: list[list[str]] = [[]]
    bridged: list[bool] = [False]  # whether run r follows run r-1 across bridge words only
    gap_ok = False
    for token in _TOKEN.findall(window.lower()):
        content = len(token) > 1 and token not in stops and not token.replace(".", "").isdigit()
        if content:
            runs[-1].append(token)
            continue
        if runs[-1]:
            runs.append([])
            bridged.append(token in _BRIDGE)
            gap_ok = token in _BRIDGE
        else:
            gap_ok = gap_ok and token in _BRIDGE
            bridged[-1] = gap_ok
    out: dict[tuple[str, ...], None] = {}
    for r, run in enumerate(runs):
        if r and bridged[r] and run and runs[r - 1]:
            for n in range(1, min(max_ngram - 1, len(run)) + 1):
                out[(runs[r - 1][-1], *run[:n])] = None
        for n in range(1, max_ngram + 1):
            for k in range(len(run) - n + 1):
                out[tuple(run[k : k + n])] = None
    return list(out)


Phrase = tuple[str, ...]


def surface_forms(phrases: list[list[Phrase]], stemmed: list[list[Phrase]]) -> dict[Phrase, str]:
    """Most frequent surface form of every stemmed candidate (first seen wins a tie)."""
    counts: dict[Phrase, Counter[str]] = defaultdict(Counter)
    for row, keys in zip(phrases, stemmed, strict=True):
        for phrase, key in zip(row, keys, strict=True):
            counts[key][" ".join(phrase)] += 1
    return {key: c.most_common(1)[0][0] for key, c in counts.items()}
