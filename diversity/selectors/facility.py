"""Comparison selector: facility location (submodular coverage of the pool) on sentence embeddings.

Facility location picks S to maximise F(S) = sum_i max_{j in S} s(i, j) over every pool sample i: each
sample should have a close representative in the subset (the objective of QDIT and of coreset methods).
Greedy selection is (1 - 1/e)-optimal; lazy evaluation (Minoux) re-scores only the candidate at the top
of a max-heap of stale gains, which is exact because marginal gains of a submodular function only shrink.

Approximation at scale. The dense 117K x 117K similarity matrix (55 GB) is out of reach, so s(i, j) is a
sparse k-NN graph: samples are partitioned by k-means into cells of about `cell_size`, each sample keeps its
`n_neighbors` most similar samples *of its own cell* (exact within the cell), the graph is symmetrised, and
s = max(0, cos) on its edges and 0 elsewhere. A pool of at most `cell_size` samples is one cell, so its
graph is the exact k-NN graph. Chosen by measurement (benchmarks/README.md): at 117K x 384 / N = 10,000 on
2 cores this own lazy greedy took 3.3 s on the graph, apricot-select's lazy optimizer 10.1 s on the same
graph, and submodlib-py 0.0.3 had not finished 5% of the picks at 20K / N = 2,000 after 300 s.
"""

from __future__ import annotations

import heapq
import logging
import time

import numpy as np
import scipy.sparse as sp

from diversity.selectors.base import Selection, check_request
from diversity.selectors.kcenter import _embeddings
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


CONFIG_RULES = {
    "n_neighbors": (_positive_int, "a positive integer"),
    "cell_size": (_positive_int, "a positive integer"),
    "block_size": (_positive_int, "a positive integer"),
}


def cells(emb: np.ndarray, cell_size: int, seed: int) -> np.ndarray:
    """k-means cell of every sample, ceil(N / cell_size) cells (MiniBatchKMeans, 5 epochs: the cells only bound
    the neighbour search, and more epochs did not raise the share of true 20-NN found in the own cell)."""
    n_cells = -(-len(emb) // cell_size)
    if n_cells == 1:
        return np.zeros(len(emb), dtype=np.int64)
    from sklearn.cluster import MiniBatchKMeans

    kmeans = MiniBatchKMeans(n_cells, random_state=seed, batch_size=4096, n_init=1, max_iter=5)
    return np.unique(kmeans.fit_predict(emb), return_inverse=True)[1].astype(np.int64)  # no empty cell ids


def knn_graph(emb: np.ndarray, n_neighbors: int, cell_size: int, seed: int, block_size: int = 2048) -> sp.csr_matrix:
    """Symmetric sparse similarity max(0, cos) to each sample's `n_neighbors` nearest samples of its k-means cell.

    `emb` must have unit rows. The diagonal is 1 (a selected sample covers itself fully).

    Complexity: k-means O(iters * N * C * d) for C = ceil(N / cell_size) cells, then O(sum_c N_c^2 d) ~
    O(N * cell_size * d) for the within-cell products; memory O(block_size * max N_c + N * n_neighbors).
    """
    import torch

    n = len(emb)
    labels = cells(emb, cell_size, seed)
    n_cells = int(labels.max()) + 1
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_cells + 1))
    rows, cols, vals = [], [], []
    for c in range(n_cells):
        members = order[bounds[c] : bounds[c + 1]]
        k = min(n_neighbors, len(members) - 1)
        if k < 1:
            continue
        for start in range(0, len(members), block_size):
            query = members[start : start + block_size]
            sim = emb[query] @ emb[members].T
            sim[np.arange(len(query)), np.arange(start, start + len(query))] = -np.inf  # not its own neighbour
            top = torch.topk(torch.from_numpy(sim), k, dim=1)  # ~7x faster than np.argpartition on wide rows
            rows.append(np.repeat(query, k))
            cols.append(members[top.indices.numpy()].ravel())
            vals.append(top.values.numpy().ravel())
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(np.ones(n, dtype=np.float32))
    data = np.clip(np.concatenate(vals), 0.0, None).astype(np.float32)
    graph = sp.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    graph = graph.maximum(graph.T).tocsr()  # an edge if either endpoint lists the other
    graph.eliminate_zeros()
    return graph


def lazy_greedy(
    graph: sp.csr_matrix,
    m: int,
    quality: np.ndarray | None = None,
    alpha: float = 0.0,
) -> np.ndarray:
    """`m` samples maximising (1 - alpha) * F(S) + alpha * sum_{j in S} quality_j by lazy greedy, in pick order.

    F is facility location on the symmetric similarity `graph`: the gain of j is
    sum over its neighbours i of max(0, s(i, j) - cover_i), cover_i the best similarity to S so far. The
    modular quality term keeps the objective submodular, so lazy evaluation stays exact. Ties go to the
    smaller index, so the result is deterministic.

    Complexity: O(N log N) to heapify, then O(deg) per re-evaluation; N = 117K, m = 10K, deg ~ 30 took ~4e5
    re-evaluations (~3 s) in benchmarks/bench_select.py.
    """
    n = graph.shape[0]
    indptr, indices, data = graph.indptr, graph.indices, graph.data
    bonus = np.zeros(n) if quality is None else alpha * np.asarray(quality, dtype=np.float64)
    gains = (1.0 - alpha) * np.asarray(graph.sum(axis=1)).ravel() + bonus
    heap = list(zip((-gains).tolist(), range(n), strict=True))
    heapq.heapify(heap)
    cover = np.zeros(n, dtype=np.float32)
    chosen = np.empty(m, dtype=np.int64)
    picked = 0
    while picked < m:
        _, j = heapq.heappop(heap)
        lo, hi = indptr[j], indptr[j + 1]
        neighbours, sims = indices[lo:hi], data[lo:hi]
        gain = (1.0 - alpha) * float(np.maximum(sims - cover[neighbours], 0.0).sum()) + bonus[j]
        if not heap or gain >= -heap[0][0]:
            chosen[picked] = j
            picked += 1
            cover[neighbours] = np.maximum(cover[neighbours], sims)
        else:
            heapq.heappush(heap, (-gain, j))
    return chosen


def facility_value(graph: sp.csr_matrix, chosen: np.ndarray) -> float:
    """F(S) / N on the graph: the mean best similarity of a pool sample to the chosen ones (0 if none)."""
    if not len(chosen):
        return 0.0
    return float(graph[:, np.asarray(chosen)].max(axis=1).toarray().mean())


class FacilitySelector:
    """Facility-location greedy on `types.embeddings`, mixed with random picks to control the degree.

    As for `KCenterSelector`, `level` is the fraction of the `n` samples chosen by the greedy; the remaining
    `round((1 - level) * n)` are drawn uniformly from the rest, so level 0 equals random and level 1 is the
    pure facility-location subset. No discrete types, so `Selection.k` is None.

    Args:
        n_neighbors: neighbours kept per sample in the similarity graph.
        cell_size: samples per k-means cell within which neighbours are searched (pools up to this size get
            the exact k-NN graph).
        block_size: query rows per matrix product while building the graph.

    Complexity: see `knn_graph` and `lazy_greedy`; at 117K x 384 / N = 10,000 12 s on 2 quiet cores, 40-50 s on
    the shared sandbox, 266 MB traced (benchmarks/README.md).
    """

    CONFIG_RULES = CONFIG_RULES

    def __init__(self, n_neighbors: int = 20, cell_size: int = 1200, block_size: int = 2048) -> None:
        self.n_neighbors = n_neighbors
        self.cell_size = cell_size
        self.block_size = block_size

    def _check(self) -> None:
        bad = []
        for name, (accepts, expected) in self.CONFIG_RULES.items():
            if not accepts(getattr(self, name)):
                bad.append(f"{name}={getattr(self, name)!r} (expected {expected})")
        if bad:
            raise ValueError(f"{type(self).__name__}: " + "; ".join(bad))

    def _graph(self, types: TypeAssignment, m: int, seed: int) -> tuple[sp.csr_matrix, dict]:
        """The candidates' k-NN similarity graph, and the facts every greedy records about it."""
        emb = _embeddings(types, type(self).__name__)
        start = time.perf_counter()
        graph = knn_graph(emb, self.n_neighbors, self.cell_size, seed, self.block_size)
        seconds = time.perf_counter() - start
        log.info("%s graph of %d samples: %d edges in %.1f s; greedy for %d", type(self).__name__, len(emb),
                 graph.nnz, seconds, m)  # fmt: skip
        return graph, {"graph_edges": int(graph.nnz), "graph_seconds": round(seconds, 2)}

    def _greedy(self, types: TypeAssignment, m: int, seed: int) -> tuple[np.ndarray, dict]:
        graph, facts = self._graph(types, m, seed)
        start = time.perf_counter()
        chosen = lazy_greedy(graph, m)
        facts.update(facility_value=facility_value(graph, chosen), greedy_seconds=round(time.perf_counter() - start, 2))
        return chosen, facts

    def select(self, types: TypeAssignment, n: int, level: float, seed: int) -> Selection:
        check_request(n, level, types.n_samples)
        self._check()
        rng = np.random.default_rng(seed)
        m = round(float(level) * n)
        chosen = np.zeros(types.n_samples, dtype=bool)
        info: dict = {"selector": type(self).__name__, "candidate_pool_size": types.n_samples, "n_greedy": m}
        info.update(n_neighbors=self.n_neighbors, n_cells=-(-types.n_samples // self.cell_size))
        if m:
            picks, facts = self._greedy(types, m, seed)
            chosen[picks] = True
            info.update(facts)
        rest = np.flatnonzero(~chosen)
        chosen[rng.choice(rest, size=n - m, replace=False)] = True
        return Selection(indices=np.flatnonzero(chosen), level=float(level), info=info)
