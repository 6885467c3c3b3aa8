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
   InsTag's tags need not be words of the text. Intents of a fixed vocabulary (`prompts/intent_tags.txt`)
   join them, since abstract intents ("role play", "summarization") seldom occur as words.
4. **Relevance.** rank(text, phrase) = cos(embed(window), embed(phrase)) + `lexical_bonus` when the phrase occurs
   in the window; rank(text, intent) = best cosine over the tag and its cues (as `IntentTagger`). What
   `min_relevance` (0.3: ~99.5% of (prompt, phrase of another prompt) pairs score lower, `benchmarks/README.md`)
   is compared with is `admit_on`: "score" (default) the rank itself; "cosine" the bare cosine of the window and
   the tag's name, so the bonus and the cues only rank tags that pass. Under "score" a generic word at cosine 0.1
   passes on its bonus ("having", "later") and an intent on one cue ("java programming" on a gardening text via
   "spring"): 39% / 55% of kept instruction / response tags have plain cosine < 0.3 to their text. "cosine"
   ends that at the price measured in `benchmarks/README.md` (more untyped texts, lower cluster-mate AUC, tag
   count following response length). The best `max_tags` by rank are kept, intents and phrases in one budget,
   skipping a phrase whose cosine to a kept phrase reaches `redundancy`. A text with no tag passing gets none:
   the meso extractor counts it as untyped, never forcing tags.

Synonym merging of the kept tags (embedding clusters) happens in `MesoExtractor`, for every tagger alike; for
this tagger it also adds a coarser level, `parent_threshold` (0.3): merged types clustered again at that much
looser cosine, each sample also carrying its types' parents ("seaborn" and "matplotlib" share "group: data
visualization, ..."). That level raised the cluster-mate AUC on Arena-Hard from 0.795 to 0.823 and on MT-Bench
from 0.668 to 0.717 (embedding reference 0.866 / 0.749; 0.3 was picked on those same sets; with admit_on="cosine"
0.714 / 0.632; `benchmarks/README.md`).
Text mostly not in English also gets a language tag (`intent.detect_language`), which MiniLM cannot see; text
in a non-Latin script gets that tag only, as MiniLM's similarities to it are noise.

Cost: one embedder pass over the unique windows (the bulk), one over the u <= `max_vocabulary` phrases (a few
tokens each), and O(n x (u + prototypes) x d) dot products. Wall clock on the shared 2-core sandbox
(2026-12-07, load average 3.3-4.2): 19 (MT-Bench) to 28 (Arena-Hard) prompts/s, 20/s for 500 default-pool
responses; the same passes ran at 81-106/s on the nearly idle machine. Windows take ~70% of it, phrases ~25%.
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


ADMIT_ON = ("score", "cosine")
"""What `min_relevance` is compared with. "score" (default): the ranking score, cosine + `lexical_bonus` for a phrase
in the window and the best cue cosine for an intent; "cosine": the bare cosine of the tag's name to the window, so
every kept tag is relevant by that measure, at the price measured in benchmarks/README.md (more untyped texts, a
lower cluster-mate AUC, tag count correlated with response length)."""


class PhraseTagger:
    """Relevant open-vocabulary intent phrases per text, plus relevant intents of a seed vocabulary.

    Args:
        embedder: name for `diversity.embeddings.embed`, for windows and phrases alike.
        max_seq_length: embedder tokens per text window (both the embedding and the candidate words read it).
        max_ngram: longest candidate phrase, in words.
        min_df: a phrase enters the pool's vocabulary when found in at least this many texts (inclusive).
        max_df: ... and in at most this share of them (or `min_df` texts, if more: a tiny pool keeps them).
        max_vocabulary: the most frequent phrases kept in the vocabulary (the phrase-embedding cost).
        min_relevance: what a tag needs, compared with its rank or its bare cosine (`admit_on`; see the module
            docstring); calibrated in `benchmarks/README.md`.
        lexical_bonus: added to a phrase's rank when it occurs in the window.
        max_tags: most tags per text, intents and phrases together (ranked by rank: a text whose opening
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
        admit_on: "score" (rank, the default) or "cosine" (bare tag-name cosine) is what `min_relevance` gates.
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
        admit_on: str = "score",
    ) -> None:
        if admit_on not in ADMIT_ON:
            raise ValueError(f"PhraseTagger: admit_on must be one of {ADMIT_ON}, got {admit_on!r}")
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
        self.admit_on = admit_on

    def cache_key(self) -> dict[str, Any]:
        """Every parameter that changes the tags, and the intent vocabulary itself."""
        keys = ("embedder", "max_seq_length", "max_ngram", "min_df", "max_df", "max_vocabulary", "min_relevance",
                "lexical_bonus", "max_tags", "redundancy", "max_intent_tags", "language_tags", "admit_on")  # fmt: skip
        vocabulary = load_vocabulary(self.vocabulary_file) if self.intents else None
        params = {k: getattr(self, k) for k in keys}
        # version 2: admit_on joined the key ("score" gives version 1's tags)
        return {"class": type(self).__name__, "version": 2, **params, "intents": vocabulary}

    def tag(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[list[str]]:
        """Tags per text: language, then intents and phrases, most relevant first (`ids` is ignored)."""
        return [[tag for tag, _ in row] for row in self.tag_with_scores(texts)]

    def tag_with_scores(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """(tag, relevance) per text, relevance = cos(window, tag name) >= `min_relevance`; a language tag
        carries NaN (detected, not scored). Tags are in rank order (relevance + bonus), not relevance order.

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
        intent_names, intent_relevance, intent_rank = self._intent_scores(window_vectors)
        by_text: dict[str, list[tuple[str, float]]] = {}
        for i, (text, keys) in enumerate(zip(unique, stemmed, strict=True)):
            if not text.strip():  # nothing to be relevant to: untyped, not tagged with whatever scores highest
                by_text[text] = []
                continue
            relevance = phrase_vectors @ window_vectors[i] if len(vocab) else np.zeros(0, dtype=np.float32)
            rank = relevance.copy()
            rank[[column[k] for k in set(keys) if k in column]] += self.lexical_bonus  # ranks, never admits
            ranked = self._pick_intents(intent_names, intent_relevance[i], intent_rank[i])
            ranked += self._pick(relevance, rank, phrase_vectors, names)
            ranked = sorted(ranked, key=lambda tag_rank: -tag_rank[2])[: self.max_tags]  # one budget, best first
            tags = [(tag, score) for tag, score, _ in ranked]
            language = detect_language(text[: 8 * self.max_seq_length]) if self.language_tags else None
            if language is not None:  # MiniLM cannot judge tags of non-Latin script: the language tag only
                tags = [(language, float("nan")), *([] if language in NON_LATIN else tags)]
            by_text[text] = tags
        return [by_text[t] for t in texts]

    def _intent_scores(self, window_vectors: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Intent names, their relevance to each window (cosine to the tag name) and their rank (best cosine
        over the tag and its cues, as `IntentTagger`: a cue pins a named thing the tag name blurs, but a cue
        alone, "spring" for "java programming", also fits a gardening text). O(n x prototypes x d)."""
        if not self.intents or not self.max_intent_tags:
            empty = np.zeros((len(window_vectors), 0), dtype=np.float32)
            return [], empty, empty
        vocabulary = load_vocabulary(self.vocabulary_file)
        prototypes = [(j, phrase) for j, (tag, cues) in enumerate(vocabulary) for phrase in (tag, *cues)]
        owner = np.array([j for j, _ in prototypes])
        vectors = _prototype_vectors(self.embedder, tuple(p for _, p in prototypes))
        cosines = window_vectors @ vectors.T
        rank = np.full((len(window_vectors), len(vocabulary)), -np.inf, dtype=np.float32)
        np.maximum.at(rank.T, owner, cosines.T)
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # each tag's own name comes first
        return [tag for tag, _ in vocabulary], cosines[:, first], rank

    def _admit(self, relevance: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(what is recorded and gated, rank with every tag that misses `min_relevance` at -inf), by `admit_on`."""
        recorded = relevance if self.admit_on == "cosine" else rank
        return recorded, np.where(recorded >= self.min_relevance, rank, -np.inf)

    def _pick_intents(
        self, names: list[str], relevance: np.ndarray, rank: np.ndarray
    ) -> list[tuple[str, float, float]]:
        """(intent, relevance, rank) of the `max_intent_tags` best-ranked intents whose relevance reaches
        `min_relevance`. O(tags log tags)."""
        recorded, rank = self._admit(relevance, rank)
        order = np.argsort(-rank, kind="stable")[: self.max_intent_tags]
        return [(names[j], float(recorded[j]), float(rank[j])) for j in order if np.isfinite(rank[j])]

    def _pick(
        self, relevance: np.ndarray, rank: np.ndarray, vectors: np.ndarray, names: list[str]
    ) -> list[tuple[str, float, float]]:
        """(phrase, relevance, rank) of the best-ranked phrases whose relevance reaches `min_relevance`,
        skipping near repeats of kept ones. O(V + c log c)."""
        if not len(relevance):
            return []
        recorded, rank = self._admit(relevance, rank)
        top = min(len(rank), 8 * self.max_tags)
        best = np.argpartition(-rank, top - 1)[:top]
        kept: list[int] = []
        for j in best[np.argsort(-rank[best], kind="stable")]:
            if not np.isfinite(rank[j]) or len(kept) == self.max_tags:
                break
            if kept and float(np.max(vectors[kept] @ vectors[j])) >= self.redundancy:
                continue
            kept.append(int(j))
        return [(names[j], float(recorded[j]), float(rank[j])) for j in kept]


def _surfaces(phrases: list[list[tuple[str, ...]]], stemmed: list[list[tuple[str, ...]]]) -> dict[tuple[str, ...], str]:
    """Most frequent surface form of every stemmed candidate (first seen wins a tie)."""
    counts: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for row, keys in zip(phrases, stemmed, strict=True):
        for phrase, key in zip(row, keys, strict=True):
            counts[key][" ".join(phrase)] += 1
    return {key: c.most_common(1)[0][0] for key, c in counts.items()}
