"""Surface-form diversity of a subset: distinct-n, token entropy, length and gzip compression ratio.

Every function here is a pure, stateless `name(tokens_or_texts, **params) -> float` over a *whole subset*.
Token inputs are sequences of per-text token sequences (ids from the model tokenizer, or words under the
whitespace ablation; anything hashable that numpy can sort works). N-grams never cross text boundaries.
All are vectorised with numpy and run in well under a second on ~3M tokens (10K texts of ~300 tokens).
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence

import numpy as np

TokenSeqs = Sequence[Sequence[int] | Sequence[str] | np.ndarray]


def flatten_tokens(token_seqs: TokenSeqs) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-text tokens into dense ids in [0, V) plus the per-text lengths.

    Dense ids (the rank of each distinct token) keep n-gram codes small enough to pack into one int64 and
    let string tokens (the whitespace ablation) share the integer code path.

    Returns:
        (ids, lengths): ids of shape (total_tokens,) int64, lengths of shape (n_texts,) int64.
    """
    lengths = np.fromiter((len(seq) for seq in token_seqs), dtype=np.int64, count=len(token_seqs))
    if lengths.sum() == 0:
        return np.zeros(0, dtype=np.int64), lengths
    flat = np.concatenate([np.asarray(seq) for seq in token_seqs if len(seq)])
    if np.issubdtype(flat.dtype, np.integer) and flat.min() >= 0 and flat.max() < 50_000_000:
        # Tokenizer ids: rank by a presence table in O(N), ~10x faster than the sort inside np.unique.
        present = np.zeros(int(flat.max()) + 1, dtype=bool)
        present[flat] = True
        return (np.cumsum(present) - 1)[flat].astype(np.int64), lengths
    _, ids = np.unique(flat, return_inverse=True)
    return ids.astype(np.int64).ravel(), lengths


def _ngram_codes(token_seqs: TokenSeqs, n: int) -> np.ndarray:
    """One code per n-gram occurrence (n-grams inside each text only); equal codes = equal n-grams.

    Codes pack the n dense ids in base V into an int64 when V**n fits, else they are rows of an (m, n) array.
    """
    if n < 1:
        raise ValueError(f"n-gram order must be >= 1, got n={n}")
    ids, lengths = flatten_tokens(token_seqs)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    within = np.arange(len(ids)) - starts
    positions = np.nonzero(within <= np.repeat(lengths - n, lengths))[0]
    vocab = int(ids.max()) + 1 if len(ids) else 1
    if vocab**n < 2**62:
        codes = np.zeros(len(positions), dtype=np.int64)
        for offset in range(n):
            codes = codes * vocab + ids[positions + offset]
        return codes
    return np.stack([ids[positions + offset] for offset in range(n)], axis=1)


def distinct_n(token_seqs: TokenSeqs, n: int = 1) -> float:
    """Distinct-n ratio: unique n-grams / total n-grams over the whole subset, in (0, 1].

    Higher means more diverse. Computed over the pooled subset (not averaged per text), so repeating a text
    lowers it. Texts shorter than n contribute no n-gram.

    Raises:
        ValueError: if the subset holds no n-gram at all (e.g. every text shorter than n).
    """
    codes = _ngram_codes(token_seqs, n)
    if len(codes) == 0:
        raise ValueError(f"distinct_{n}: no {n}-gram in {len(token_seqs)} texts (all shorter than {n} tokens)")
    n_unique = len(np.unique(codes, axis=0 if codes.ndim == 2 else None))
    return n_unique / len(codes)


def token_entropy(token_seqs: TokenSeqs) -> float:
    """Shannon entropy in bits of the subset's token-type distribution (unigram frequencies, pooled).

    This is the paper's response-side micro statistic (e.g. 9.90 -> 10.82 bits as the degree rises).
    A uniform distribution over T types gives log2(T); a single repeated type gives 0.

    Raises:
        ValueError: if the subset holds no token.
    """
    ids, _ = flatten_tokens(token_seqs)
    if len(ids) == 0:
        raise ValueError(f"token_entropy: no token in {len(token_seqs)} texts")
    counts = np.bincount(ids).astype(np.float64)
    p = counts[counts > 0] / len(ids)
    return float(-(p * np.log2(p)).sum())


def mean_tokens(token_seqs: TokenSeqs) -> float:
    """Mean text length in tokens (the paper's strongest covariate of score, Pearson 0.73 on responses)."""
    if len(token_seqs) == 0:
        raise ValueError("mean_tokens: empty subset")
    return float(np.mean([len(seq) for seq in token_seqs]))


def compression_ratio(texts: Sequence[str], level: int = 9) -> float:
    """gzip-compressed bytes / raw UTF-8 bytes of the texts joined by newlines, in (0, ~1].

    Direction: **higher = less compressible = more diverse** (the inverse of the "raw / compressed" form
    some papers report). gzip only sees repeats within its 32 KiB window, so this measures local redundancy
    between neighbouring texts in subset order plus within-text repetition; shuffle order does matter a
    little, which is why callers pass texts in manifest (pool index) order. `mtime=0` keeps it deterministic.

    Raises:
        ValueError: if the joined texts are empty.
    """
    raw = "\n".join(texts).encode("utf-8", "surrogatepass")
    if not raw:
        raise ValueError("compression_ratio: texts are empty")
    return len(gzip.compress(raw, compresslevel=level, mtime=0)) / len(raw)
