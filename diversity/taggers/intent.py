"""Offline default tagger: InsTag-style intent and domain tags, ranked by sentence-embedding similarity.

The paper's meso tags are atomic intents ("code generation", "sentiment analysis"), ~4 per sample. Keyphrases
pulled from a text (YAKE) name its words rather than its intent ("give give", "fracture injure"), are too rare
to be shared on a small pool (30% of the 2,000-pair default pool was left without any type), and give nothing
for follow-ups like "continue" or "double the length". This tagger instead ranks a fixed vocabulary of atomic
tags (`prompts/intent_tags.txt`, ~200 intents, domains and answer forms, or your own file) against each text:

    score(text, tag) = max over p in {tag, *cues} of cos(embed(text), embed(p))
                       + lexical_bonus * [a cue occurs in the text]

and keeps the best `min_tags`..`max_tags` tags within `margin` of the best score, among the relevant ones
only: a tag whose best cosine (without the bonus) is below `min_relevance` is never kept, and a text with no
relevant tag gets none (the meso extractor counts it as untyped) rather than forced ones. The embedding
carries the meaning; the bonus, on stemmed whole words, pins named things (python, excel, sql) the embedding
blurs. Text in a non-Latin script (or Spanish, French, German, Portuguese, by stop words) also gets a language tag,
which MiniLM, an English model, cannot see.

Both the embedding and the cue words read the same window, the first `max_seq_length` embedder tokens
(`taggers.window`): scanning the whole text for cues gave the longest third of responses the bonus on ~3x as
many tags as the shortest third.

Cost: one embedder pass over the texts (cut to `max_seq_length` tokens: the opening says what a text asks or
answers) and one over the ~1,100 tags and cues (~7 CPU-s, once per process), then an (n x tags) product. At
64 tokens, 2 free cores tag ~65 ShareGPT responses/s and ~85 instructions/s (from CPU time on a shared
machine; 32 tokens: ~80 and ~155/s), against ~14/s for MiniLM on 256-token responses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from diversity.embeddings import DEFAULT_EMBEDDER
from diversity.taggers.window import embedding_windows

_WORD = re.compile(r"[a-z0-9+#]+(?:[.'][a-z0-9]+)*")
_SCRIPTS = {  # language tag -> Unicode ranges of its script
    "korean language": ((0xAC00, 0xD7AF), (0x1100, 0x11FF)),
    "japanese language": ((0x3040, 0x30FF),),
    "chinese language": ((0x4E00, 0x9FFF),),
    "russian language": ((0x0400, 0x04FF),),
    "arabic language": ((0x0600, 0x06FF),),
    "hindi language": ((0x0900, 0x097F),),
    "thai language": ((0x0E00, 0x0E7F),),
    "hebrew language": ((0x0590, 0x05FF),),
    "greek language": ((0x0370, 0x03FF),),
}
# MiniLM reads these scripts as near-unknown pieces: its similarities to any tag are noise ("你好" scored 0.3+
# against "cloud computing" and "swift programming"), so such text gets its language tag only.
NON_LATIN = frozenset(_SCRIPTS)
_STOP_WORDS = {  # frequent words that are not English (and rare in English text)
    "spanish language": {"que", "el", "los", "las", "por", "para", "con", "una", "es", "como", "del", "pero", "muy"},
    "french language": {"le", "les", "des", "est", "pour", "avec", "une", "dans", "sur", "pas", "vous", "je", "qui"},
    "german language": {"der", "die", "und", "ist", "nicht", "mit", "ein", "eine", "ich", "sie", "auf", "für", "das"},
    "portuguese language": {"não", "você", "uma", "para", "com", "os", "em", "mais", "como", "é", "ao", "seu", "isso"},
}


def load_vocabulary(path: str | Path | None = None) -> list[tuple[str, list[str]]]:
    """(tag, cues) per line of a vocabulary file (`tag | cue, cue`); None reads the packaged one.

    Raises:
        ValueError: naming the file and line of an empty tag or a duplicate tag.
    """
    if path is None:
        text = resources.files("diversity.taggers").joinpath("prompts/intent_tags.txt").read_text(encoding="utf-8")
        name = "intent_tags.txt"
    else:
        text, name = Path(path).read_text(encoding="utf-8"), str(path)
    entries: list[tuple[str, list[str]]] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        tag, _, cues = line.partition("|")
        tag = " ".join(tag.lower().split())
        if not tag:
            raise ValueError(f"{name}, line {lineno}: empty tag")
        if tag in seen:
            raise ValueError(f"{name}, line {lineno}: duplicate tag {tag!r}")
        seen.add(tag)
        entries.append((tag, [c.strip().lower() for c in cues.split(",") if c.strip()]))
    if not entries:
        raise ValueError(f"{name}: no tags")
    return entries


@lru_cache(maxsize=4)
def _prototype_vectors(embedder: str, phrases: tuple[str, ...]) -> np.ndarray:
    """Vectors of the vocabulary's tags and cues, once per process (both components reuse them)."""
    from diversity.embeddings import embed

    vectors = embed(list(phrases), embedder, batch_size=256, max_seq_length=32, progress=False)
    vectors.setflags(write=False)
    return vectors


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    return _porter().stem(word)


@lru_cache(maxsize=1)
def _porter() -> Any:
    from nltk.stem.porter import PorterStemmer

    return PorterStemmer()


def stemmed_words(text: str) -> tuple[str, ...]:
    """Lowercase Porter-stemmed words of `text` (keeps c++, c#, .net-style tokens whole)."""
    return tuple(_stem(w) for w in _WORD.findall(text.lower()))


def detect_language(text: str) -> str | None:
    """A language tag for text that is mostly not English: by script, else by foreign stop words."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    for tag, ranges in _SCRIPTS.items():
        share = sum(any(lo <= ord(c) <= hi for lo, hi in ranges) for c in letters) / len(letters)
        if share > 0.3:
            return tag
    words = re.findall(r"\w+", text.lower())
    if len(words) < 3:
        return None
    counts = {tag: sum(w in stops for w in words) for tag, stops in _STOP_WORDS.items()}
    tag, hits = max(counts.items(), key=lambda kv: kv[1])
    english = sum(w in {"the", "and", "is", "of", "to", "in", "you", "it", "that", "for"} for w in words)
    return tag if hits >= max(2, 0.15 * len(words)) and hits > 2 * english else None


class IntentTagger:
    """Best-matching vocabulary tags per text (see the module docstring).

    Args:
        embedder: name for `diversity.embeddings.embed`, used for texts and tags alike.
        vocabulary_file: `tag | cue, cue` lines; None uses the packaged `prompts/intent_tags.txt`.
        min_tags: relevant tags kept whatever the margin.
        max_tags: most tags per text (the paper's meso tags average ~4).
        margin: tags beyond `min_tags` are kept while their score is within `margin` of the best.
        min_relevance: cosine between the text and the tag's best prototype (no bonus) a tag needs.
        lexical_bonus: added to a tag's score when one of its cues occurs in the text (stemmed words).
        language_tags: add a language tag to text that is mostly not English (counts toward `max_tags`).
        max_seq_length: embedder tokens read per text.
        batch_size: embedding batch size.
        progress: show the embedding progress bar.
    """

    def __init__(
        self,
        embedder: str = DEFAULT_EMBEDDER,
        vocabulary_file: str | None = None,
        min_tags: int = 3,
        max_tags: int = 5,
        margin: float = 0.08,
        min_relevance: float = 0.3,
        lexical_bonus: float = 0.1,
        language_tags: bool = True,
        max_seq_length: int = 64,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        if not 1 <= min_tags <= max_tags:
            raise ValueError(f"IntentTagger needs 1 <= min_tags <= max_tags, got {min_tags}, {max_tags}")
        self.embedder = embedder
        self.vocabulary_file = vocabulary_file
        self.min_tags = min_tags
        self.max_tags = max_tags
        self.margin = margin
        self.min_relevance = min_relevance
        self.lexical_bonus = lexical_bonus
        self.language_tags = language_tags
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.progress = progress

    def cache_key(self) -> dict[str, Any]:
        """Includes the vocabulary itself, so editing the file invalidates cached tags."""
        return {
            "class": type(self).__name__,
            "embedder": self.embedder,
            "vocabulary": load_vocabulary(self.vocabulary_file),
            "min_tags": self.min_tags,
            "max_tags": self.max_tags,
            "margin": self.margin,
            "min_relevance": self.min_relevance,
            "window": "embedder tokens",
            "lexical_bonus": self.lexical_bonus,
            "language_tags": self.language_tags,
            "max_seq_length": self.max_seq_length,
        }

    def scores(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(tags, relevance, score): matrices of shape (len(texts), len(tags)).

        A tag's relevance, which must reach `min_relevance`, is its best cosine over its prototypes, the tag
        itself and each of its cues: one sentence of "tag: cue, cue, ..." blurs into a vector close to none of
        them, and abstract tag names alone sit far from every text ("code generation" has cosine 0.11 to
        "Write a Python function that reverses a linked list", its cue "python function" 0.50). Its score,
        which ranks it, adds the lexical bonus.
        """
        from diversity.embeddings import embed

        vocabulary = load_vocabulary(self.vocabulary_file)
        tags = [tag for tag, _ in vocabulary]
        prototypes = [(j, phrase) for j, (tag, cues) in enumerate(vocabulary) for phrase in (tag, *cues)]
        owner = np.array([j for j, _ in prototypes])
        proto_vectors = _prototype_vectors(self.embedder, tuple(p for _, p in prototypes))
        texts = [str(t) for t in texts]
        unique = list(dict.fromkeys(texts))  # pools repeat short turns ("continue") many times
        index = {text: i for i, text in enumerate(unique)}
        row = [index[t] for t in texts]
        windows = embedding_windows(unique, self.embedder, self.max_seq_length)
        text_vectors = embed(windows, self.embedder, self.batch_size, self.max_seq_length + 2, progress=self.progress)
        relevance = np.full((len(unique), len(tags)), -np.inf, dtype=np.float32)
        np.maximum.at(relevance.T, owner, (text_vectors @ proto_vectors.T).T)  # best prototype per tag
        scores = relevance.copy()
        if self.lexical_bonus:
            scores += self.lexical_bonus * self._cue_hits(windows, vocabulary)
        return tags, relevance[row], scores[row]

    def _cue_hits(self, texts: Sequence[str], vocabulary: list[tuple[str, list[str]]]) -> np.ndarray:
        """1 where some cue of tag j occurs in text i as whole stemmed word(s); stop-word cues never count."""
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        cue_tags: dict[tuple[str, ...], list[int]] = {}
        for j, (_, cues) in enumerate(vocabulary):
            for cue in cues:
                words = tuple(w for w in _WORD.findall(cue))
                if words and not (len(words) == 1 and words[0] in ENGLISH_STOP_WORDS):
                    cue_tags.setdefault(tuple(_stem(w) for w in words), []).append(j)
        longest = max((len(c) for c in cue_tags), default=1)
        hits = np.zeros((len(texts), len(vocabulary)), dtype=np.float32)
        for i, text in enumerate(texts):
            words = stemmed_words(str(text))
            grams = {words[k : k + n] for n in range(1, longest + 1) for k in range(len(words) - n + 1)}
            for gram in grams & cue_tags.keys():
                hits[i, cue_tags[gram]] = 1.0
        return hits

    def tag(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[list[str]]:
        """Tags per text, best first (`ids` is accepted for the common tagger interface and ignored)."""
        return [[tag for tag, _ in row] for row in self.tag_with_scores(texts)]

    def tag_with_scores(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """(tag, relevance) per text, best score first; a language tag carries NaN (detected, not scored)."""
        texts = [str(t) for t in texts]
        if not texts:
            return []
        names, similarity, scores = self.scores(texts)
        out: list[list[tuple[str, float]]] = []
        for text, sim, row in zip(texts, similarity, scores, strict=True):
            if not text.strip():
                out.append([])
                continue
            order = [j for j in np.argsort(-row, kind="stable") if sim[j] >= self.min_relevance][: self.max_tags]
            keep = [j for k, j in enumerate(order) if k < self.min_tags or row[j] >= row[order[0]] - self.margin]
            tags = [(names[j], float(sim[j])) for j in keep]
            language = detect_language(text[: 8 * self.max_seq_length]) if self.language_tags else None
            if language is not None:
                tags = [(language, float("nan")), *([] if language in NON_LATIN else tags[: self.max_tags - 1])]
            out.append(tags)
        return out
