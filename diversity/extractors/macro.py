"""Macro types: one semantic topic per sample, BERTopic-style (embed -> UMAP -> HDBSCAN).

The paper's macro granularity clusters sentence embeddings with HDBSCAN and treats each cluster as a topic.
HDBSCAN on raw 384-d vectors grows ~n^2 and finds little density structure in high dimensions, so, as
BERTopic does, vectors are first reduced with UMAP (cosine metric, seeded) to a handful of dimensions, where
HDBSCAN takes well under a second for 5K points. Topic names are the top c-TF-IDF words of each topic, only
so that reports are readable.

HDBSCAN's default excess-of-mass selection can keep only the root split of a small pool: on the 2,000-pair
ShareGPT default it finds 2 instruction topics, so the seven degrees of diversity collapse to k in {1, 2}. A
topic-count floor (`min_topics`) therefore guards the result: below it, HDBSCAN's finer "leaf" selection is
tried, and if that is still short, seeded k-means on the same reduced points gives exactly `min_topics`.
`meta["clustering"]` says which one produced the topics.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.cache import FeatureCache
from diversity.embeddings import DEFAULT_EMBEDDER, embed
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)

NOISE_MODES = ("nearest", "own_type")
MAX_AUTO_MIN_TOPICS = 50


DEFAULT_MIN_CLUSTER_SIZE = 10  # BERTopic's; see MacroExtractor's min_cluster_size


class MacroExtractor:
    """Cluster sample embeddings into topics; each sample gets exactly one topic.

    Args:
        embedder: embedder name for `diversity.embeddings.embed`.
        umap_components: UMAP output dimensions; None clusters the unit-length embeddings directly (fine
            for pools below ~2K samples, and skips UMAP's ~15 s numba compilation).
        umap_neighbors: UMAP neighbourhood size; clamped to n - 1 for tiny pools.
        min_cluster_size: HDBSCAN's smallest topic. None means 10, BERTopic's default: on the 57K ShareGPT
            responses (model2vec embeddings, UMAP to 5-d) it gives ~1,000 topics in ~10 s. Do not scale it
            with the pool: n // 200 (= 285 there) collapses that pool to 2-3 topics, leaving no degrees of
            diversity to control. Clamped to [2, n].
        min_samples: HDBSCAN's density smoothing; None means equal to `min_cluster_size`.
        min_topics: fewest topics accepted before falling back (see the module docstring). None means
            `auto_min_topics(n)` = n // 50 clamped to [2, 50]: 20 topics at 1,000 samples, 40 at 2,000, 50
            from 2,500 on (where HDBSCAN alone usually finds many more). 0 turns the floor off.
        noise: what HDBSCAN's noise label -1 becomes. `"nearest"`: each noise sample joins the topic whose
            centroid (mean of its members in the clustered space) is closest, so every topic is a real
            cluster. `"own_type"`: all noise samples form one extra type, the last column, named
            `"noise: ..."`. If HDBSCAN finds no cluster at all, every sample gets one single type.
        max_seq_length: tokens per text for the embedder.
        batch_size: embedding batch size.
        random_state: UMAP seed. A seeded UMAP runs single-threaded (`n_jobs=1`): that is the price of
            a result that does not depend on thread timing.
        top_words: words per topic name.
        progress: show the embedding progress bar (pools over 200 texts); not part of the cache key.

    Topic ids are ordered by size (0 = largest; ties by first occurrence), so they read the same across runs.
    Cost: embedding O(n * L) model passes, UMAP ~O(n log n), HDBSCAN ~O(n log n) in low dimensions.
    """

    def __init__(
        self,
        embedder: str = DEFAULT_EMBEDDER,
        umap_components: int | None = 5,
        umap_neighbors: int = 15,
        min_cluster_size: int | None = None,
        min_samples: int | None = None,
        min_topics: int | None = None,
        noise: str = "nearest",
        max_seq_length: int = 256,
        batch_size: int = 64,
        random_state: int = 0,
        top_words: int = 4,
        progress: bool = True,
    ) -> None:
        self.embedder = embedder
        self.umap_components = umap_components
        self.umap_neighbors = umap_neighbors
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.min_topics = min_topics
        self.noise = noise
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.random_state = random_state
        self.top_words = top_words
        self.progress = progress

    def params(self) -> dict[str, Any]:
        return {
            "embedder": self.embedder,
            "umap_components": self.umap_components,
            "umap_neighbors": self.umap_neighbors,
            "min_cluster_size": self.min_cluster_size,
            "min_samples": self.min_samples,
            "min_topics": self.min_topics,
            "noise": self.noise,
            "max_seq_length": self.max_seq_length,
            "random_state": self.random_state,
            "top_words": self.top_words,
        }

    def cache_key(self) -> dict[str, Any]:
        return {"class": type(self).__name__, **self.params()}

    def fit(
        self,
        texts: Sequence[str],
        cache: FeatureCache | None = None,
        ids: Sequence[str] | None = None,
        embeddings: np.ndarray | None = None,
    ) -> TypeAssignment:
        """Assign one topic to every text.

        Args:
            texts: the pool's instructions or responses.
            cache: embedding cache (shared with metrics); None recomputes.
            ids: unused (every extractor's `fit` takes the same arguments).
            embeddings: precomputed unit-length embeddings of `texts` (skips the embedder).
        """
        if self.noise not in NOISE_MODES:
            raise ValueError(f"MacroExtractor: noise must be one of {NOISE_MODES}, got {self.noise!r}")
        texts = list(texts)
        n = len(texts)
        if embeddings is None:
            embeddings = embed(
                texts,
                self.embedder,
                self.batch_size,
                self.max_seq_length,
                cache=cache,
                progress=self.progress and n > 200,
            )
        if len(embeddings) != n:
            raise ValueError(f"MacroExtractor: {len(embeddings)} embeddings for {n} texts")
        self.reduced_ = self._reduce(embeddings)
        raw, method = self._cluster(self.reduced_)
        labels, n_clusters = _relabel_by_size(raw)
        n_noise = int((labels < 0).sum())
        if n_clusters == 0:
            labels = np.zeros(n, dtype=np.int64)
            n_types = 1 if n else 0
        elif self.noise == "nearest":
            labels = _assign_noise_to_nearest(self.reduced_, labels, n_clusters)
            n_types = n_clusters
        else:
            labels = np.where(labels < 0, n_clusters, labels)
            n_types = n_clusters + (1 if n_noise else 0)
        self.labels_ = labels
        names = _topic_names(texts, labels, n_types, self.top_words)
        if self.noise == "own_type" and n_noise and n_clusters:
            names[-1] = f"noise: {names[-1]}"
        meta = {
            "extractor": type(self).__name__,
            "params": self.params(),
            "n_clusters": n_clusters,
            "n_noise": n_noise,
            "clustering": method,
            "min_topics_used": self.min_topics_used_,
            "noise_handling": self.noise if n_clusters else "no cluster found: one type",
            "min_cluster_size_used": self.min_cluster_size_used_,
            "umap_neighbors_used": self.umap_neighbors_used_,
            "type_sizes": np.bincount(labels, minlength=n_types).tolist(),
        }
        log.info("macro: %d topics from %d samples by %s (%d noise -> %s)", n_clusters, n, method, n_noise, self.noise)
        return TypeAssignment.from_lists(
            [[int(x)] for x in labels], names, meta=meta, embeddings=np.asarray(embeddings, dtype=np.float32)
        )

    def _reduce(self, embeddings: np.ndarray) -> np.ndarray:
        n = len(embeddings)
        self.umap_neighbors_used_ = None
        # UMAP's spectral layout needs more points than dimensions + neighbours; tiny pools skip it.
        if self.umap_components is None or n <= self.umap_components + 2 or n < 4:
            return np.asarray(embeddings, dtype=np.float64)
        import umap

        self.umap_neighbors_used_ = max(2, min(self.umap_neighbors, n - 1))
        reducer = umap.UMAP(
            n_neighbors=self.umap_neighbors_used_,
            n_components=self.umap_components,
            min_dist=0.0,
            metric="cosine",
            random_state=self.random_state,
            n_jobs=1,
        )
        return np.asarray(reducer.fit_transform(embeddings), dtype=np.float64)

    def _cluster(self, points: np.ndarray) -> tuple[np.ndarray, str]:
        """Raw labels (-1 = noise) and the method that gave them: HDBSCAN (eom, then leaf), else k-means."""
        from sklearn.cluster import HDBSCAN, KMeans

        n = len(points)
        size = self.min_cluster_size if self.min_cluster_size is not None else DEFAULT_MIN_CLUSTER_SIZE
        self.min_cluster_size_used_ = int(min(max(2, size), max(n, 2)))
        floor = auto_min_topics(n) if self.min_topics is None else self.min_topics
        if floor < 0:
            raise ValueError(f"MacroExtractor: min_topics must be >= 0 or None, got {self.min_topics}")
        self.min_topics_used_ = int(min(floor, n))
        if n < 2:
            return np.full(n, -1, dtype=np.int64), "hdbscan-eom"
        samples = None if self.min_samples is None else min(self.min_samples, n)
        labels = np.full(n, -1, dtype=np.int64)
        for selection in ("eom", "leaf"):
            labels = HDBSCAN(
                min_cluster_size=self.min_cluster_size_used_,
                min_samples=samples,
                cluster_selection_method=selection,
                copy=True,
            ).fit_predict(points)
            found = len(set(labels.tolist()) - {-1})
            if found >= self.min_topics_used_:
                return labels, f"hdbscan-{selection}"
            log.info("macro: HDBSCAN (%s) found %d < min_topics=%d topics", selection, found, self.min_topics_used_)
        if len(np.unique(points, axis=0)) < self.min_topics_used_:  # k-means cannot split identical points
            return labels, "hdbscan-leaf"
        kmeans = KMeans(n_clusters=self.min_topics_used_, n_init=4, random_state=self.random_state)
        return kmeans.fit_predict(points).astype(np.int64), "kmeans"


def auto_min_topics(n: int) -> int:
    """Default topic-count floor for a pool of `n` samples: n // 50 within [2, MAX_AUTO_MIN_TOPICS]."""
    return int(min(MAX_AUTO_MIN_TOPICS, max(2, n // 50)))


def _relabel_by_size(raw: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber clusters 0..c-1 by decreasing size (ties: first occurrence); noise stays -1."""
    ids = [c for c in dict.fromkeys(raw.tolist()) if c >= 0]
    ids.sort(key=lambda c: -int((raw == c).sum()))  # stable sort keeps first-occurrence order on ties
    mapping = {c: i for i, c in enumerate(ids)}
    labels = np.array([mapping.get(c, -1) for c in raw.tolist()], dtype=np.int64)
    return labels, len(ids)


def _assign_noise_to_nearest(points: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Give each noise point the label of the closest cluster centroid (Euclidean, clustered space)."""
    centroids = np.stack([points[labels == c].mean(axis=0) for c in range(n_clusters)])
    out = labels.copy()
    noise = np.flatnonzero(labels < 0)
    if len(noise):
        dists = ((points[noise, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
        out[noise] = dists.argmin(axis=1)
    return out


def _topic_names(texts: list[str], labels: np.ndarray, n_types: int, top_words: int) -> list[str]:
    """Name each topic by its top c-TF-IDF words: term frequency within the topic, down-weighted by how
    common the term is across topics (BERTopic's class-based TF-IDF, computed on one document per topic)."""
    fallback = [f"topic {j}" for j in range(n_types)]
    if n_types == 0:
        return fallback
    from sklearn.feature_extraction.text import CountVectorizer

    docs = [" ".join(texts[i][:2000] for i in np.flatnonzero(labels == j)) for j in range(n_types)]
    try:
        vectorizer = CountVectorizer(stop_words="english", max_features=20000)
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # only stop words or empty texts
        return fallback
    words = vectorizer.get_feature_names_out()
    words_per_topic = counts.sum(axis=1).A1.astype(np.float64)
    tf = counts.toarray() / np.maximum(words_per_topic[:, None], 1.0)
    idf = np.log1p(words_per_topic.mean() / np.maximum(counts.sum(axis=0).A1, 1.0))
    scores = tf * idf
    names = []
    for j in range(n_types):
        top = [words[t] for t in np.argsort(-scores[j], kind="stable")[:top_words] if scores[j, t] > 0]
        names.append(", ".join(top) if top else fallback[j])
    return names
