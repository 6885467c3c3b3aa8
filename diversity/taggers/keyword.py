"""Offline default tagger: YAKE keyphrases, no model download, a few ms per text on CPU.

YAKE scores candidate n-grams from statistics of the text itself (position, frequency, casing, spread),
so it needs no model and no corpus. It is a stand-in for the paper's LLM tags: keyphrases name what a text
is about ("binary search", "cover letter") rather than the task intent ("code generation"); use
`LLMTagger` for InsTag-style intent tags when a model or an endpoint is available.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class KeywordTagger:
    """Top YAKE keyphrases of each text, lowercased.

    Args:
        top_k: keyphrases kept per text (the paper's meso tags average ~4 per sample).
        max_ngram: longest keyphrase, in words.
        language: YAKE stop-word list to use.
        dedup_threshold: YAKE's `dedupLim`; candidates more similar than this to a better one are dropped.
        max_chars: only the first `max_chars` characters are read; YAKE's cost grows with length and the
            opening of a text says what it is about.
        progress: show a progress bar.
    """

    def __init__(
        self,
        top_k: int = 4,
        max_ngram: int = 2,
        language: str = "en",
        dedup_threshold: float = 0.7,
        max_chars: int = 2000,
        progress: bool = True,
    ) -> None:
        self.top_k = top_k
        self.max_ngram = max_ngram
        self.language = language
        self.dedup_threshold = dedup_threshold
        self.max_chars = max_chars
        self.progress = progress

    def cache_key(self) -> dict[str, Any]:
        return {
            "class": type(self).__name__,
            "top_k": self.top_k,
            "max_ngram": self.max_ngram,
            "language": self.language,
            "dedup_threshold": self.dedup_threshold,
            "max_chars": self.max_chars,
        }

    def tag(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[list[str]]:
        """Tags per text. `ids` is accepted for a uniform tagger interface and ignored. O(total chars)."""
        import yake
        from tqdm.auto import tqdm

        extractor = yake.KeywordExtractor(
            lan=self.language, n=self.max_ngram, dedup_lim=self.dedup_threshold, top=self.top_k
        )
        out: list[list[str]] = []
        for text in tqdm(texts, desc="keyword tags", disable=not self.progress, unit="text"):
            snippet = str(text)[: self.max_chars]
            phrases = extractor.extract_keywords(snippet) if snippet.strip() else []
            tags: list[str] = []
            for phrase, _score in phrases:
                tag = " ".join(phrase.lower().split())
                if tag and tag not in tags:
                    tags.append(tag)
            out.append(tags)
        return out
