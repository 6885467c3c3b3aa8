"""Open-vocabulary tagger in InsTag's spirit: intent phrases drawn from the pool, kept only when relevant.

InsTag asks an LLM for free-form atomic intents per sample, then normalises them across the pool (frequency
filter, synonym merging) into a vocabulary of thousands that grows with the pool. Offline, this tagger draws
the vocabulary from the pool's own texts and lets MiniLM judge which entries fit each text:

1. **Window.** Every text is cut to its first `max_seq_length` embedder tokens (`taggers.window`); the
   embedding and the candidate phrases both come from that window, so a long text has no more chances to
   collect tags than a short one.
2. **Candidates** (`taggers.candidates`). Content-word runs (split at stop words and punctuation) give key
   phrases of 1..`max_ngram` words ("linked list", "python function"); a verb and its object across an article or
   pronoun give verb-object phrases ("write a poem" -> "write poem"). Words are compared by Porter stem, so
   "functions" and "function" are one candidate, shown in its most frequent surface form. The `max_vocabulary`
   candidates found in the most texts (at least `min_df`, at most a `max_df` share) form the pool's vocabulary.
   Any text may receive any vocabulary phrase, not only its own words (InsTag's tags need not be words of the
   text), and the intents of a fixed vocabulary (`prompts/intent_tags.txt`) join them, as abstract intents ("role
   play", "summarization") seldom occur as words.
3. **Relevance** of a tag to a text: the cosine of the text's window and the tag (an intent: the best of its name
   and, per cue, the mean of the name's and "name: cue"'s vectors, so a cue counts only with its tag: a bare cue
   "spring" made "java programming" fit a gardening text), minus `baseline_weight` x (the text's baseline - the
   pool's median baseline). The baseline is the text's mean cosine to the whole vocabulary: MiniLM gives a short
   text higher cosines to every tag (Spearman of the baseline with response length -0.34 on the default pool), so
   without the correction short texts pass more tags. A tag is kept only when its relevance reaches
   `min_relevance` (0.3: the relevance of a window to a phrase of *another* text reaches it in 0.42% of pairs on
   Arena-Hard, `benchmarks/README.md`).
4. **Frequency filter by relevance.** A phrase is a tag only when it is relevant to at least `min_support`
   texts of the pool: a tag of one text could never be a shared type (InsTag's long-tail filter), and
   counting relevance, not literal occurrence, lets a phrase of one text be the shared tag of two.
5. **Choice.** The best `max_tags` by relevance (+ `lexical_bonus` for a phrase found in the window, which
   ranks and never admits) are kept, intents and phrases in one budget, skipping a phrase whose cosine to a
   kept one reaches `redundancy`. A text with no relevant tag gets none: the meso extractor counts it as
   untyped, never forcing tags.

Synonym merging of the kept tags (embedding clusters) happens in `MesoExtractor`, for every tagger alike; for
this tagger it also adds a coarser level, `parent_threshold`: merged types clustered again at that much looser
cosine, each sample also carrying its types' parents ("seaborn" and "matplotlib" share "group: data
visualization, ..."). Text mostly not in English also gets a language tag (`intent.detect_language`), which
MiniLM cannot see; text in a non-Latin script gets that tag only, as MiniLM's similarities to it are noise.

`admit_on="score"` with `min_df=2, max_tags=10, lexical_bonus=0.2, min_support=1, baseline_weight=0,
cue_context=False` is the tagger before issue 22's audit (`conf/tagger/phrase_lexical.yaml`): the threshold
gated cosine + bonus and bare cues, so a word of the text passed at cosine 0.1 and 39% / 55% of kept
instruction / response tags had plain cosine < 0.3.

Cost: one embedder pass over the unique windows and one over the u <= `max_vocabulary` phrases (a few tokens
each), then O(n x (u + prototypes) x d) dot products in blocks of `block` texts; only the relevant
(text, phrase) pairs are kept. Figures and wall clock in `benchmarks/README.md`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from diversity.embeddings import DEFAULT_EMBEDDER
from diversity.taggers.candidates import candidate_phrases, surface_forms
from diversity.taggers.intent import NON_LATIN, _prototype_vectors, _stem, detect_language, load_vocabulary
from diversity.taggers.window import embedding_windows

ADMIT_ON = ("cosine", "score")
"""What `min_relevance` is compared with. "cosine" (default): the relevance (baseline-corrected cosine of the
window and the tag), the lexical bonus only ranking; "score": relevance + `lexical_bonus` for a phrase in the
window and the best bare cue for an intent, the rule before issue 22's audit (kept tags whose cosine is low)."""


class PhraseTagger:
    """Relevant open-vocabulary intent phrases per text, plus relevant intents of a seed vocabulary.

    Args:
        embedder: name for `diversity.embeddings.embed`, for windows and phrases alike.
        max_seq_length: embedder tokens per text window (both the embedding and the candidate words read it).
        max_ngram: longest candidate phrase, in words.
        min_df: a candidate enters the vocabulary when found in at least this many texts (inclusive).
        max_df: ... and in at most this share of them (or 2 texts, if more: a tiny pool keeps shared ones).
        max_vocabulary: the candidates found in most texts kept in the vocabulary (the phrase-embedding cost).
        min_relevance: what a tag needs (`admit_on`; module docstring); recorded by the meso extractor.
        lexical_bonus: added to a phrase's rank when it occurs in the window.
        max_tags: most tags per text, intents and phrases together, best rank first.
        redundancy: a phrase whose cosine to an already kept phrase of the text reaches this is skipped.
        intents: also give each text the relevant tags of a fixed intent vocabulary.
        vocabulary_file: that vocabulary (`tag | cue, cue` lines); None: the packaged `intent_tags.txt`.
        max_intent_tags: most intent tags per text (within `max_tags`).
        language_tags: add a language tag to text that is mostly not English.
        parent_threshold: the meso extractor's coarser level (None: no parents). Read by `MesoExtractor`, not
            by the tagger; it does not change the tags, so it is not in `cache_key`.
        batch_size: embedding batch size for windows.
        progress: show the embedding progress bars.
        admit_on: "cosine" (default) or "score" is what `min_relevance` gates.
        min_support: a phrase is a tag only if relevant to at least this many texts (1: no filter).
        baseline_weight: share of a text's baseline (mean cosine to the vocabulary, less the pool median)
            taken off its relevances, so tag counts do not follow text length; 0: plain cosine.
        cue_context: describe an intent by "name: cue" as well as its name (False: by its name, or under
            "score" by its bare cues).
        block: texts per block of dot products (memory ~ block x vocabulary floats).
    """

    def __init__(
        self,
        embedder: str = DEFAULT_EMBEDDER,
        max_seq_length: int = 64,
        max_ngram: int = 3,
        min_df: int = 1,
        max_df: float = 0.5,
        max_vocabulary: int = 5000,
        min_relevance: float = 0.3,
        lexical_bonus: float = 0.0,
        max_tags: int = 15,
        redundancy: float = 0.8,
        intents: bool = True,
        vocabulary_file: str | None = None,
        max_intent_tags: int = 5,
        language_tags: bool = True,
        parent_threshold: float | None = 0.3,
        batch_size: int = 32,
        progress: bool = True,
        admit_on: str = "cosine",
        min_support: int = 2,
        baseline_weight: float = 0.6,
        cue_context: bool = True,
        block: int = 4096,
    ) -> None:
        if admit_on not in ADMIT_ON:
            raise ValueError(f"PhraseTagger: admit_on must be one of {ADMIT_ON}, got {admit_on!r}")
        if min(min_df, max_tags, max_ngram, max_vocabulary, min_support, block) < 1 or max_intent_tags < 0:
            raise ValueError("PhraseTagger: min_df, max_tags, max_ngram, max_vocabulary, min_support, block >= 1; "
                             "max_intent_tags >= 0")  # fmt: skip
        if not 0.0 < max_df <= 1.0:
            raise ValueError(f"PhraseTagger needs 0 < max_df <= 1, got {max_df}")
        if not 0.0 <= baseline_weight <= 1.0:
            raise ValueError(f"PhraseTagger needs 0 <= baseline_weight <= 1, got {baseline_weight}")
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
        self.min_support = min_support
        self.baseline_weight = baseline_weight
        self.cue_context = cue_context
        self.block = block

    def cache_key(self) -> dict[str, Any]:
        """Every parameter that changes the tags, and the intent vocabulary itself (`block` changes none)."""
        keys = ("embedder", "max_seq_length", "max_ngram", "min_df", "max_df", "max_vocabulary", "min_relevance",
                "lexical_bonus", "max_tags", "redundancy", "max_intent_tags", "language_tags", "admit_on",
                "min_support", "baseline_weight", "cue_context")  # fmt: skip
        vocabulary = load_vocabulary(self.vocabulary_file) if self.intents else None
        params = {k: getattr(self, k) for k in keys}
        # version 3: support filter, baseline correction, cues in context, sparse picking (issue 22)
        return {"class": type(self).__name__, "version": 3, **params, "intents": vocabulary}

    @property
    def relevance_rule(self) -> str:
        """What a kept tag passed, in words (the meso extractor records it beside `min_relevance`)."""
        extras = []
        if self.admit_on == "score":
            extras.append(f"+ {self.lexical_bonus} for a phrase in the window")
        if self.cue_context or self.admit_on == "score":
            extras.append("an intent: best of its name and " + ("name+cue" if self.cue_context else "bare cues"))
        extra = f" ({'; '.join(extras)})" if extras else ""
        return (f"cos(first {self.max_seq_length} tokens, tag){extra} - {self.baseline_weight} x (text baseline - "
                f"pool median) >= {self.min_relevance}; a phrase relevant to >= {self.min_support} texts")  # fmt: skip

    def tag(self, texts: Sequence[str], ids: Sequence[str] | None = None) -> list[list[str]]:
        """Tags per text: language, then intents and phrases, best first (`ids` is ignored)."""
        return [[tag for tag, _ in row] for row in self.tag_with_scores(texts)]

    def tag_with_scores(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """(tag, relevance) per text, relevance >= `min_relevance` under "cosine" (the score under "score"); a
        language tag carries NaN (detected, not scored). Tags are in rank order.

        The phrase vocabulary is the pool's, so the same text can get other phrases in another pool.
        O(n x (vocabulary + prototypes) x d) after the embedder passes.
        """
        from diversity.embeddings import embed

        texts = [str(t) for t in texts]
        if not texts:
            return []
        unique = list(dict.fromkeys(texts))  # pools repeat short turns ("continue") many times
        windows = embedding_windows(unique, self.embedder, self.max_seq_length)
        phrases = [candidate_phrases(w, self.max_ngram) for w in windows]
        stemmed = [[tuple(_stem(w) for w in p) for p in row] for row in phrases]
        names, vocab = self._vocabulary(phrases, stemmed)
        phrase_vectors = embed(names, self.embedder, 256, 16, progress=self.progress and len(names) > 1000)
        window_vectors = embed(windows, self.embedder, self.batch_size, self.max_seq_length + 2, progress=self.progress)
        baseline = window_vectors @ phrase_vectors.mean(0) if len(names) else np.zeros(len(unique), np.float32)
        shift = (self.baseline_weight * (baseline - np.median(baseline))).astype(np.float32)
        intent_names, intent_relevance, intent_rank = self._intent_scores(window_vectors)
        intent_relevance, intent_rank = intent_relevance - shift[:, None], intent_rank - shift[:, None]
        column = {key: j for j, key in enumerate(vocab)}
        in_window = [sorted({column[k] for k in keys if k in column}) for keys in stemmed] if self.lexical_bonus else []
        candidates = self._relevant_phrases(window_vectors, phrase_vectors, shift, in_window)
        support = np.bincount(np.concatenate([c[:, 0] for c in candidates]).astype(int), minlength=len(names))
        by_text: dict[str, list[tuple[str, float]]] = {}
        for i, text in enumerate(unique):
            if not text.strip():  # nothing to be relevant to: untyped, not tagged with whatever scores highest
                by_text[text] = []
                continue
            ranked = self._pick_intents(intent_names, intent_relevance[i], intent_rank[i])
            shared = candidates[i][support[candidates[i][:, 0].astype(int)] >= self.min_support]
            ranked += self._pick(shared, phrase_vectors, names, {tag for tag, _, _ in ranked})
            ranked = sorted(ranked, key=lambda tag_rank: -tag_rank[2])[: self.max_tags]  # one budget, best first
            tags = [(tag, score) for tag, score, _ in ranked]
            language = detect_language(text[: 8 * self.max_seq_length]) if self.language_tags else None
            if language is not None:  # MiniLM cannot judge tags of non-Latin script: the language tag only
                tags = [(language, float("nan")), *([] if language in NON_LATIN else tags)]
            by_text[text] = tags
        return [by_text[t] for t in texts]

    def _vocabulary(
        self, phrases: list[list[tuple[str, ...]]], stemmed: list[list[tuple[str, ...]]]
    ) -> tuple[list[str], list]:
        """(surface names, stemmed keys) of the `max_vocabulary` candidates in most texts, within the df bounds;
        ties by key, so the vocabulary is a function of the pool. O(candidates log candidates)."""
        df = Counter(key for keys in stemmed for key in set(keys))
        most = max(self.max_df * len(phrases), self.min_df, 2)  # in a handful of texts a share bound means nothing
        vocab = [key for key, count in df.items() if self.min_df <= count <= most]
        vocab = sorted(vocab, key=lambda key: (-df[key], key))[: self.max_vocabulary]
        surface = surface_forms(phrases, stemmed)
        return [surface[key] for key in vocab], vocab

    def _relevant_phrases(
        self, windows: np.ndarray, phrases: np.ndarray, shift: np.ndarray, in_window: list[list[int]]
    ) -> list[np.ndarray]:
        """Per text, a (c, 3) array of (phrase column, recorded relevance, rank) for the c phrases that pass
        `min_relevance`. `in_window`: per text, the columns of its own phrases (read only for a `lexical_bonus`).

        Blocks of `block` texts bound the memory at block x vocabulary floats; only passing pairs (a few per
        cent) are kept, as arrays (117K texts x ~50 passing phrases stay ~70 MB). O(n x u x d).
        """
        out: list[np.ndarray] = []
        for start in range(0, len(windows), self.block):
            stop = min(start + self.block, len(windows))
            relevance = windows[start:stop] @ phrases.T - shift[start:stop, None]
            rank = relevance.copy() if self.lexical_bonus else relevance  # `_admit` returns a new array
            if self.lexical_bonus:  # phrases found in their window rank higher
                own = in_window[start:stop]
                rows = np.repeat(np.arange(stop - start), [len(cols) for cols in own])
                rank[rows, np.concatenate([np.asarray(cols, dtype=int) for cols in own])] += self.lexical_bonus
            recorded, rank = self._admit(relevance, rank)
            rows, cols = np.nonzero(np.isfinite(rank))  # row-major: each text's passing phrases in column order
            table = np.column_stack([cols, recorded[rows, cols], rank[rows, cols]]).astype(np.float64)
            out += np.split(table, np.searchsorted(rows, np.arange(1, stop - start)))
        return out

    def _intent_scores(self, window_vectors: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Intent names, their relevance to each window and their rank. With `cue_context` both are the best
        cosine over the intent's descriptions: its name, and per cue the mean of the name's and "name: cue"'s
        vectors, so a cue fits only together with its tag ("spring" alone fits gardening, "java programming"
        with it does not); without, the relevance is the name's cosine and the rank the best over the name and
        its bare cues (as `IntentTagger`).
        O(n x prototypes x d)."""
        if not self.intents or not self.max_intent_tags:
            empty = np.zeros((len(window_vectors), 0), dtype=np.float32)
            return [], empty, empty
        vocabulary = load_vocabulary(self.vocabulary_file)
        context = (lambda tag, cue: f"{tag}: {cue}") if self.cue_context else (lambda tag, cue: cue)
        prototypes = [
            (j, p) for j, (tag, cues) in enumerate(vocabulary) for p in (tag, *(context(tag, c) for c in cues))
        ]
        owner = np.array([j for j, _ in prototypes])
        first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # each tag's own name comes first
        vectors = _prototype_vectors(self.embedder, tuple(p for _, p in prototypes))
        if self.cue_context:  # "name: cue" averaged with the name: a cue counts only with its tag (a name: 2x itself)
            vectors = vectors + vectors[first][owner]
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        cosines = window_vectors @ vectors.T
        rank = np.full((len(window_vectors), len(vocabulary)), -np.inf, dtype=np.float32)
        np.maximum.at(rank.T, owner, cosines.T)
        return [tag for tag, _ in vocabulary], (rank if self.cue_context else cosines[:, first]), rank

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
        self, candidates: np.ndarray, vectors: np.ndarray, names: list[str], taken: set[str]
    ) -> list[tuple[str, float, float]]:
        """(phrase, relevance, rank) of the best-ranked passing phrases (rows of `candidates`: column, relevance,
        rank), skipping near repeats of kept ones and names already `taken` by an intent.
        O(c log c + c x max_tags x d) for c passing phrases."""
        kept: list[tuple[int, float, float]] = []
        for row in candidates[np.lexsort((candidates[:, 0], -candidates[:, 2]))]:
            j, recorded, rank = int(row[0]), float(row[1]), float(row[2])
            if len(kept) == self.max_tags:
                break
            near = kept and float(np.max(vectors[[k for k, _, _ in kept]] @ vectors[j])) >= self.redundancy
            if near or names[j] in taken:
                continue
            kept.append((j, recorded, rank))
        return [(names[j], recorded, rank) for j, recorded, rank in kept]
