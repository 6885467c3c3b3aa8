"""Embedding-space diversity of a subset: mean pairwise cosine distance and the Vendi score.

Both take an (n, d) embedding array (rows are re-normalised to unit length here, so any sentence embedder
works) and are exact, not sampled: they only need the d x d Gram matrix X^T X or the column sum of X, so a
10K x 384 subset costs milliseconds.
"""

from __future__ import annotations

import numpy as np


def _unit_rows(embeddings: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (n, d) embedding array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1)
    bad = np.nonzero(~np.isfinite(norms) | (norms == 0))[0]
    if len(bad):
        raise ValueError(f"{name}: embedding rows {bad[:10].tolist()} are zero or not finite")
    return x / norms[:, None]


def embedding_distance(embeddings: np.ndarray) -> float:
    """Mean cosine distance 1 - cos(x_i, x_j) over all unordered pairs i != j, in [0, 2].

    Exact at any n in O(n d): for unit rows, sum_{i != j} x_i . x_j = ||sum_i x_i||^2 - n, so no pair sampling
    (and no seed) is needed. Higher = more diverse; identical rows give 0, orthogonal rows give 1.

    Raises:
        ValueError: if fewer than two rows, or a row is zero / not finite.
    """
    x = _unit_rows(embeddings, "embedding_distance")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"embedding_distance needs >= 2 embeddings, got {n}")
    s = x.sum(axis=0)
    mean_similarity = (float(s @ s) - n) / (n * (n - 1))
    return 1.0 - mean_similarity


def vendi_score(embeddings: np.ndarray) -> float:
    """Vendi score (Friedman & Dieng 2023), cosine kernel: the effective number of distinct items.

    VS = exp(-sum_i lambda_i log lambda_i), lambda the eigenvalues of K / n with K = X X^T (unit rows X),
    so VS lies in [1, min(n, d)]: n identical rows give 1, n orthogonal rows give n. The nonzero eigenvalues
    of X X^T / n equal those of X^T X / n, so we decompose whichever of the two is smaller: O(n d^2 + d^3)
    with `scipy.linalg.eigvalsh` on the d x d side when n > d (the usual case), O(n^2 d + n^3) otherwise.
    Tiny negative eigenvalues from round-off are clipped to zero.

    Raises:
        ValueError: if the array is empty, or a row is zero / not finite.
    """
    from scipy.linalg import eigvalsh

    x = _unit_rows(embeddings, "vendi_score")
    n, d = x.shape
    gram = (x.T @ x) if d < n else (x @ x.T)
    eigenvalues = np.clip(eigvalsh(gram / n), 0.0, None)
    p = eigenvalues[eigenvalues > 0]
    p = p / p.sum()  # trace(K / n) = 1 for unit rows; renormalise away round-off
    return float(np.exp(-(p * np.log(p)).sum()))


def log_det(embeddings: np.ndarray, scale: float = 1.0) -> float:
    """Log-determinant diversity: log det(I + scale * K), K = X X^T the cosine kernel of the subset (unit rows).

    The volume spanned by the subset in embedding space (the DPP / log-det objective); it grows with every
    direction the subset adds and is 0 for an empty kernel. K alone is singular whenever n > d, hence the
    identity. By Sylvester's identity det(I_n + s X X^T) = det(I_d + s X^T X), so we take the Cholesky
    factor of whichever side is smaller: O(n d^2 + d^3) for n > d (the usual case), O(n^2 d + n^3) otherwise.

    Raises:
        ValueError: if the array is empty, a row is zero / not finite, or scale <= 0.
    """
    from scipy.linalg import cho_factor

    if not scale > 0:
        raise ValueError(f"log_det: scale must be > 0, got {scale}")
    x = _unit_rows(embeddings, "log_det")
    n, d = x.shape
    gram = (x.T @ x) if d < n else (x @ x.T)
    factor, _ = cho_factor(np.eye(len(gram)) + scale * gram, lower=True)
    return float(2.0 * np.log(np.diag(factor)).sum())
