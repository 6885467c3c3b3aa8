"""Pool-relative diversity of a subset: NovelSum (density-aware novelty) and facility-location coverage.

Both compare the subset with the pool it was drawn from, on the same unit-length sentence embeddings as
`embedding_distance` and `vendi` (`diversity.metrics.pool_embeddings`). `pool_scan` makes the one pass over
subset x pool similarities that both need (the k nearest pool neighbours of every subset row for NovelSum's
density, the best subset match of every pool row for coverage): O(m * N * d) for m subset rows and N pool
rows, computed in blocks of `block_size` subset rows so memory stays O(block_size * N); at 10K x 117K x 384 the
product dominates (benchmarks/README.md).
"""

from __future__ import annotations

import numpy as np

from diversity.metrics.semantic import _unit_rows

DENSITY_EPS = 1e-9  # the reference code's regularisation of the mean neighbour distance


def pool_scan(
    subset: np.ndarray, pool: np.ndarray, n_neighbors: int = 10, block_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Per subset row, the mean squared L2 distance to its k nearest pool rows; per pool row, its best match.

    The nearest pool row of a subset row is dropped before averaging, as NovelSum's reference code drops the
    first hit of its index (the sample itself, since the subset is drawn from the pool). Rows are unit length,
    so squared L2 = 2 - 2 cos. Neighbours are distinct pool rows: a text that occurs 40 times in the pool (the
    same instruction with different responses) is one neighbour, not 40 at distance 0, which would make its
    density 1/sqrt(1e-9) ~ 3e4 and let one repeated prompt dominate the subset's NovelSum. On a pool without
    repeated rows this is the reference computation. Coverage still counts every pool row.

    Args:
        subset: (m, d) embeddings of the subset's texts.
        pool: (N, d) embeddings of every pool text (the subset's rows among them).
        n_neighbors: k, neighbours averaged after dropping the nearest.
        block_size: subset rows per matrix product.

    Returns:
        (mean_sq_dist of shape (m,), best_similarity of shape (N,)): best_similarity[i] is the largest cosine
        between pool row i and any subset row.

    Raises:
        ValueError: if the pool holds fewer than k + 1 rows or the dimensions differ.
    """
    import torch

    x = _unit_rows(subset, "pool_scan(subset)").astype(np.float32)
    p = _unit_rows(pool, "pool_scan(pool)").astype(np.float32)
    if x.shape[1] != p.shape[1]:
        raise ValueError(f"pool_scan: subset has dimension {x.shape[1]} but the pool {p.shape[1]}")
    distinct, pool_row = np.unique(p, axis=0, return_inverse=True)  # O(N log N d); repeated texts collapse
    if n_neighbors < 1 or len(distinct) < n_neighbors + 1:
        raise ValueError(
            f"pool_scan: n_neighbors={n_neighbors} needs >= 1 and a pool of >= {n_neighbors + 1} distinct rows"
        )
    mean_sq = np.empty(len(x), dtype=np.float64)
    best = np.full(len(distinct), -np.inf, dtype=np.float32)
    for start in range(0, len(x), block_size):
        sim = x[start : start + block_size] @ distinct.T
        np.maximum(best, sim.max(axis=0), out=best)
        # k + 1 largest per row, descending; the first is the nearest (the sample itself), dropped below.
        # torch.topk (zero-copy view) is ~7x faster than np.partition over 117K columns on 2 cores.
        top = torch.topk(torch.from_numpy(sim), n_neighbors + 1, dim=1, sorted=True).values.numpy()
        sq = np.clip(2.0 - 2.0 * top[:, 1:].astype(np.float64), 0.0, None)
        mean_sq[start : start + len(sq)] = sq.mean(axis=1)
    return mean_sq, best[np.ravel(pool_row)]


def density(mean_sq_dist: np.ndarray, density_power: float = 0.5) -> np.ndarray:
    """NovelSum's information density: 1 / (mean squared distance to the k nearest pool rows + 1e-9)^beta."""
    return 1.0 / np.power(np.asarray(mean_sq_dist, dtype=np.float64) + DENSITY_EPS, density_power)


def novelsum(
    embeddings: np.ndarray,
    densities: np.ndarray | None = None,
    proximity_power: float = 1.0,
    block_size: int = 1024,
) -> float:
    """NovelSum (Yang et al. 2025, arXiv 2502.17184): mean proximity-weighted, density-aware novelty.

    For each sample i, its cosine distances to all m samples (itself included, at distance 0) are sorted
    ascending and averaged with weights 1 / rank^alpha (alpha = `proximity_power`), so close samples count
    most; the average is multiplied by the density factor of sample i, and NovelSum is the mean over i.
    This follows the reference implementation (UmeanNever/NovelSum, `novelsum.py`), which scales row i of
    the distance matrix by sample i's density and takes the weighted average (not sum) per row.
    With `densities=None` every density is 1 (the reference's `density_power=0`, distances only).

    Args:
        embeddings: (m, d) subset embeddings (re-normalised to unit rows).
        densities: (m,) density factors, e.g. `density(pool_scan(subset, pool)[0])`; None = all ones.
        proximity_power: alpha of the rank weights (0 = plain mean distance).
        block_size: rows sorted per step.

    Complexity: O(m^2 d) for the distances plus O(m^2 log m) for the row sorts; O(block_size * m) memory.
    A 10K x 384 subset takes a few seconds on 2 cores (benchmarks/README.md).

    Raises:
        ValueError: if fewer than two rows, or densities of the wrong length.
    """
    x = _unit_rows(embeddings, "novelsum").astype(np.float32)
    m = len(x)
    if m < 2:
        raise ValueError(f"novelsum needs >= 2 embeddings, got {m}")
    rho = np.ones(m) if densities is None else np.asarray(densities, dtype=np.float64)
    if rho.shape != (m,):
        raise ValueError(f"novelsum: {rho.shape} densities for {m} embeddings")
    weights = 1.0 / np.power(np.arange(1, m + 1, dtype=np.float64), proximity_power)
    weights /= weights.sum()
    novelty = np.empty(m, dtype=np.float64)
    for start in range(0, m, block_size):
        dist = 1.0 - x[start : start + block_size] @ x.T
        dist.sort(axis=1)
        novelty[start : start + len(dist)] = dist @ weights
    return float(np.mean(novelty * rho))


def facility_coverage(best_similarity: np.ndarray) -> float:
    """Facility-location coverage: mean over pool rows of max(0, best cosine to any subset row), in [0, 1].

    1 means every pool sample has an identical representative in the subset. It is the facility-location
    objective sum_i max_{j in S} max(0, cos(i, j)) divided by the pool size, i.e. what
    `diversity.selectors.facility` maximises (there on a sparse k-NN graph, here exactly).
    """
    best = np.asarray(best_similarity, dtype=np.float64)
    if best.ndim != 1 or not len(best):
        raise ValueError(f"facility_coverage: expected a non-empty 1-d array, got shape {best.shape}")
    return float(np.clip(best, 0.0, None).mean())
