"""Open-vocabulary tagger in InsTag's spirit: intent phrases drawn from the pool, kept only when relevant.

InsTag asks an LLM for free-form atomic intents per sample, then normalises them across the pool (frequency
filter, synonym merging) into a vocabulary of thousands that grows with the pool. Offline, this tagger draws
the vocabulary from the pool's own texts and lets MiniLM judge which entries fit each text:

1. **Window.** Every text is cut to its first `max_seq_length` embedder tokens (`taggers.window`); the
   embedding and the candidate phrases both come from that window, so a long text has no more chances to
   collect tags than a short one.
2. **Candidates.** Content-word runs (split at stop words and punctuation) give key phrases of 1..`max_ngram`
   words ("linked list", "python function"); a verb and its object across an article or pronoun give
   verb-object phrases ("write a poem" -> "write poem", "reverses a linked list" -> "reverses linked list").
   Words are compared by Porter stem, so "functions" and "function" are one candidate, shown in its most
   frequent surface form.
3. **Vocabulary, pool-wide.** Candidates found in at least `min_df` texts (and at most `max_df` of them) form
   the vocabulary, the `max_vocabulary` most frequent first: a phrase of one text only could never be a shared
   type (InsTag's long-tail filter). Any text may receive any vocabulary phrase, not only its own words, as
   InsTag's tags need not be words of the text; a phrase that occurs in the text's window gets
   `lexical_bonus`. Intents of a fixed vocabulary (`prompts/intent_tags.txt`, scored as `IntentTagger` does:
   the best cosine over the tag and its cues) join them, since abstract intents ("role play",
   "summarization") seldom occur as words.
4. **Relevance.** score(text, phrase) = cos(embed(window), embed(phrase)) + bonus; score(text, intent) = best
   prototype cosine. A tag is kept only at `min_relevance` or above (0.3: ~99.5% of (prompt, phrase of another
   prompt) pairs score lower, `benchmarks/README.md`); the best `max_tags` are kept, intents and phrases in one
   budget, skipping a phrase whose cosine to a kept phrase reaches `redundancy`. A text with no relevant tag
   gets none: the meso extractor counts it as untyped, never forcing tags.

Synonym merging of the kept tags (embedding clusters) happens in `MesoExtractor`, for every tagger alike; for
this tagger it also adds a coarser level, `parent_threshold` (0.3): merged types clustered again at that much
looser cosine, each sample also carrying its types' parents ("seaborn" and "matplotlib" share "group: data
visualization, ..."). That level raised the cluster-mate AUC on Arena-Hard from 0.795 to 0.823 and on MT-Bench
from 0.668 to 0.717 (embedding reference 0.866 / 0.749; `benchmarks/README.md`).
Text mostly not in English also gets a language tag (`intent.detect_language`), which MiniLM cannot see; text
in a non-Latin script gets that tag only, as MiniLM's similarities to it are noise.

Cost: one embedder pass over the unique windows (the bulk), one over the u <= `max_vocabulary` phrases (a few
tokens each), and O(n x (u + prototypes) x d) dot products: 60 (MT-Bench) to 83 (Arena-Hard) prompts/s from
CPU time on the 2-core sandbox (2026-12-07, beside a training study; wall clock 27-39/s), 27/s wall for 64-token
response windows of the default pool with their 5,000-phrase vocabulary. Windows take ~70% of it, phrases ~25%.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from diversity.embeddings import DEFAULT_EMBEDDER
from diversity.taggers.intent import NON_LATIN, _prototype_vectors, _stem, detect_language, load_vocabulary
from diversity.taggers.window import embedding_windows

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


class PhraseTagger:
    """Relevant open-vocabulary intent phrases per text, plus relevant intents of a seed vocabulary.

    Args:
        embedder: name for `diversity.embeddings.embed`, for windows and phrases alike.
        max_seq_length: embedder tokens per text window (both the embedding and the candidate words read it).
        max_ngram: longest candidate phrase, in words.
        min_df: a phrase enters the pool's vocabulary when found in at least this many texts (inclusive).
        max_df: ... and in at most this share of them (or `min_df` texts, if more: a tiny pool keeps them).
        max_vocabulary: the most frequent phrases kept in the vocabulary (the phrase-embedding cost).
        min_relevance: score a tag needs (see the module docstring); calibrated in `benchmarks/README.md`.
        lexical_bonus: added to a phrase's cosine when the phrase occurs in the text's window.
        max_tags: most tags per text, intents and phrases together (ranked by score: a text whose opening
            matches few intents gets more phrases, so the tag count does not follow the kind of text).
        redundancy: a phrase whose cosine to an already kept phrase of the text reaches this is skipped.
        intents: also give each text the relevant tags of a fixed intent vocabulary (as `IntentTagger`):
            abstract intents ("roleplay", "summarization") seldom occur as words of the text.
        vocabulary_file: that vocabulary (`tag | cue, cue` lines); None: the packaged `intent_tags.txt`.
        max_intent_tags: most intent tags per text (within `max_tags`).
        language_tags: add a language tag to text that is mostly not English.
        parent_threshold: the meso extractor's coarser level: types whose centroids reach this mean cosine
            (average linkage) form a parent type every sample of theirs also carries (None: no parents). Read
            by `MesoExtractor`, not by the tagger; it does not change the tags, so it is not in `cache_key`.
        batch_size: embedding batch size for windows.
        progress: show the embedding progress bar.
    """

    def __init__(
        self,
        embedder: str = DEFAULT_EMBEDDER,
        max_seq_length: int = 64,
        max_ngram: int = 3,
        min_df: int = 2,
        max_df: float = 0.5,
        max_vocabulary: int = 5000,
        min_relevance: float = 0.3,
        lexical_bonus: float = 0.2,
        max_tags: int = 10,
        redundancy: float = 0.8,
        intents: bool = True,
        vocabulary_file: str | None = None,
        max_intent_tags: int = 5,
        language_tags: bool = True,
        parent_threshold: float | None = 0.3,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        if min(min_df, max_tags, max_ngram, max_vocabulary) < 1 or max_intent_tags < 0:
            raise ValueError("PhraseTagger: min_df, max_tags, max_ngram, max_vocabulary >= 1; max_intent_tags >= 0")
        if not 0.0 < max_df <= 1.0:
            raise ValueError(f"PhraseTagger needs 0 < max_df <= 1, got {max_df}")
        self.embedder = embedder
        self.max_seq_length = max_seq_length
        self.max_ngram = max_ngram
        self.min_df = min_df
        self.max_df = max_df
        self.max_vocabulary = max_vocabulary
        self.min_relevance = min_relevance
        self.lexical_bonus = lexical_bonus
        self.max_tags = max_tags
        self.redundancy = redundancy
        self.intents = intents
        self.vocabulary_file = vocabulary_file
        self.max_intent_tags = max_intent_tags
        self.language_tags = language_tags
        self.parent_threshold = parent_threshold
        self.batch_size = batch_size
        self.progress = progress

    def cache_key(self) -> dict[str, Any]:
        """Every parameter that changes the tags, and the intent vocabulary itself."""
        keys = ("embedder", "max_seq_length", "max_ngram", "min_df", "max_df", "max_vocabulary", "min_relevance",
                "lexical_bonus", "max_tags", "redundancy", "max_intent_tags", "language_tags")  # fmt: skip
        vocabulary = load_vocabulary(self.vocabulary_file) if self.intents else None
        params = {k: getattr(self, k) for k in keys}
        return {"class": type(self).__name__, "version": 1, **params, "intents": vocabulary}

    def tag(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[list[str]]:
        """Tags per text: language, then intents and phrases, most relevant first (`ids` is ignored)."""
        return [[tag for tag, _ in row] for row in self.tag_with_scores(texts)]

    def tag_with_scores(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """(tag, relevance) per text; a language tag carries NaN (detected, not scored).

        The phrase vocabulary is the pool's, so the same text can get other phrases in another pool.
        O(n x (candidates + vocabulary) x d) after the embedder passes.
        """
        from diversity.embeddings import embed

        texts = [str(t) for t in texts]
        if not texts:
            return []
        unique = list(dict.fromkeys(texts))  # pools repeat short turns ("continue") many times
        windows = embedding_windows(unique, self.embedder, self.max_seq_length)
        phrases = [candidate_phrases(w, self.max_ngram) for w in windows]
        stemmed = [[tuple(_stem(w) for w in p) for p in row] for row in phrases]
        df = Counter(key for keys in stemmed for key in set(keys))
        most = max(self.max_df * len(unique), self.min_df)  # on a handful of texts a share bound means nothing
        vocab = [key for key, count in df.items() if self.min_df <= count <= most]
        vocab = sorted(vocab, key=lambda key: (-df[key], key))[: self.max_vocabulary]
        surface = _surfaces(phrases, stemmed)
        names = [surface[key] for key in vocab]
        column = {key: j for j, key in enumerate(vocab)}
        phrase_vectors = embed(names, self.embedder, 256, 16, progress=self.progress and len(names) > 1000)
        window_vectors = embed(windows, self.embedder, self.batch_size, self.max_seq_length + 2, progress=self.progress)
        intent_names, intent_relevance = self._intent_scores(window_vectors)
        by_text: dict[str, list[tuple[str, float]]] = {}
        for i, (text, keys) in enumerate(zip(unique, stemmed, strict=True)):
            if not text.strip():  # nothing to be relevant to: untyped, not tagged with whatever scores highest
                by_text[text] = []
                continue
            scores = phrase_vectors @ window_vectors[i] if len(vocab) else np.zeros(0, dtype=np.float32)
            own = [column[k] for k in set(keys) if k in column]
            scores[own] += self.lexical_bonus
            intents = self._pick_intents(intent_names, intent_relevance[i])
            tags = intents + self._pick(scores, phrase_vectors, names)
            tags = sorted(tags, key=lambda tag_score: -tag_score[1])[: self.max_tags]  # one budget, best first
            language = detect_language(text[: 8 * self.max_seq_length]) if self.language_tags else None
            if language is not None:  # MiniLM cannot judge tags of non-Latin script: the language tag only
                tags = [(language, float("nan")), *([] if language in NON_LATIN else tags)]
            by_text[text] = tags
        return [by_text[t] for t in texts]

    def _intent_scores(self, window_vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Relevance of each intent tag to each window: the best cosine over the tag and its cues (as
        `IntentTagger`: abstract tag names alone sit far from every text). O(n x prototypes x d)."""
        if not self.intents or not self.max_intent_tags:
            return [], np.zeros((len(window_vectors), 0), dtype=np.float32)
        vocabulary = load_vocabulary(self.vocabulary_file)
        prototypes = [(j, phrase) for j, (tag, cues) in enumerate(vocabulary) for phrase in (tag, *cues)]
        owner = np.array([j for j, _ in prototypes])
        vectors = _prototype_vectors(self.embedder, tuple(p for _, p in prototypes))
        scores = np.full((len(window_vectors), len(vocabulary)), -np.inf, dtype=np.float32)
        np.maximum.at(scores.T, owner, (window_vectors @ vectors.T).T)
        return [tag for tag, _ in vocabulary], scores

    def _pick_intents(self, names: list[str], relevance: np.ndarray) -> list[tuple[str, float]]:
        """The `max_intent_tags` most relevant intents reaching `min_relevance`. O(tags log tags)."""
        order = np.argsort(-relevance, kind="stable")[: self.max_intent_tags]
        return [(names[j], float(relevance[j])) for j in order if relevance[j] >= self.min_relevance]

    def _pick(self, scores: np.ndarray, vectors: np.ndarray, names: list[str]) -> list[tuple[str, float]]:
        """Best phrases scoring at least `min_relevance`, skipping near repeats of kept ones. O(V + c log c)."""
        if not len(scores):
            return []
        top = min(len(scores), 8 * self.max_tags)
        best = np.argpartition(-scores, top - 1)[:top]
        kept: list[int] = []
        for j in best[np.argsort(-scores[best], kind="stable")]:
            if scores[j] < self.min_relevance or len(kept) == self.max_tags:
                break
            if kept and float(np.max(vectors[kept] @ vectors[j])) >= self.redundancy:
                continue
            kept.append(int(j))
        return [(names[j], float(scores[j])) for j in kept]


def _surfaces(phrases: list[list[tuple[str, ...]]], stemmed: list[list[tuple[str, ...]]]) -> dict[tuple[str, ...], str]:
    """Most frequent surface form of every stemmed candidate (first seen wins a tie)."""
    counts: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for row, keys in zip(phrases, stemmed, strict=True):
        for phrase, key in zip(row, keys, strict=True):
            counts[key][" ".join(phrase)] += 1
    return {key: c.most_common(1)[0][0] for key, c in counts.items()}
