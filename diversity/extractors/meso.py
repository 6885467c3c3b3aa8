"""Meso types: InsTag-style tags per sample, with near-synonym tags merged into one type.

A tagger gives each text a few free-form tags (~4 in the paper). Free-form tags fragment ("python
programming", "programming in python", "python coding"), which would inflate the number of types and make
degree control meaningless, so tags are normalised (lowercase, whitespace, edge punctuation), rare ones are
dropped (InsTag's frequency filter), and the rest are merged by average-linkage agglomerative clustering of
their embeddings under a cosine-similarity threshold. Each merged cluster is one type, named by its most
frequent member tag.

A second, coarser level (InsTag's tags are atomic; degree control and overlap between related samples also
need their topic): when the tagger names a `parent_threshold` (the default `phrase` tagger: 0.3), the merged
types are clustered again, by their centroid embeddings, under that much looser threshold, and every sample
also carries the parent type of each of its types. Parents are named `group: <its three most carried types>`;
a parent with a single member type would only repeat that type's column and is left out. Without the parent
level, "seaborn" and "matplotlib" or "sql query" and "database design" share nothing; with it, the share of
Arena-Hard cluster mates that share no type falls from 34% to 16% (`benchmarks/README.md`, "Meso taggers").

Taggers keep only relevant tags (above their `min_relevance`, recorded in the meta as `tag_min_relevance`), so
a text may have none: it is counted in `n_samples_without_type` and the selector treats it as untyped.
"""

from __future__ import annotations

import json
import logging
import string
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.cache import FeatureCache
from diversity.embeddings import DEFAULT_EMBEDDER, embed, texts_hash
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)


def normalise_tag(tag: str) -> str:
    """Lowercase, collapse whitespace, strip surrounding punctuation and quotes."""
    return " ".join(str(tag).lower().split()).strip(string.punctuation + " ")


class MesoExtractor:
    """Tag every text, merge near-synonym tags, and give each sample the set of merged types it carries.

    Args:
        tagger: object with `tag(texts, ids=None) -> list[list[str]]` and `cache_key()` (see
            `diversity.taggers`); Hydra builds it from `conf/tagger/<name>.yaml`.
        embedder: embedder for tag strings.
        merge_threshold: cosine similarity above which tag clusters merge (average linkage: the mean
            similarity between the members of two clusters must exceed it). 1.0 merges only identical tags.
        min_tag_count: tags carried by fewer samples than this (after normalisation) are dropped before
            merging, inclusive (a count equal to `min_tag_count` is kept). InsTag filters the long tail the
            same way; a tag on one sample cannot help degree control anyway.
        max_tags: at most this many distinct tags (the most frequent) are merged; the clustering holds a
            max_tags^2 / 2 distance matrix (8,000 tags: 256 MB). Tags beyond it are dropped and counted.
        max_seq_length: embedder truncation for tags.
        batch_size: embedding batch size.
        progress: show the tag-embedding progress bar (over 2,000 tags); not part of the cache key.

    The parent level's threshold is the tagger's `parent_threshold` attribute (None or absent: no parents),
    part of the tagger's cache key, so the tagger config that calibrated it carries it.

    Cost: tagging (the tagger's), embedding u distinct tags, agglomerative clustering O(u^2) memory and
    ~O(u^2 log u) time; the parent level clusters the t <= u types again, O(t^2).
    """

    def __init__(
        self,
        tagger: Any,
        embedder: str = DEFAULT_EMBEDDER,
        merge_threshold: float = 0.85,
        min_tag_count: int = 2,
        max_tags: int = 8000,
        max_seq_length: int = 32,
        batch_size: int = 256,
        progress: bool = True,
    ) -> None:
        self.tagger = tagger
        self.embedder = embedder
        self.merge_threshold = merge_threshold
        self.min_tag_count = min_tag_count
        self.max_tags = max_tags
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.progress = progress

    @property
    def parent_threshold(self) -> float | None:
        """The tagger's parent level (None: the tagger asks for none)."""
        return getattr(self.tagger, "parent_threshold", None)

    def params(self) -> dict[str, Any]:
        parent_threshold = self.parent_threshold
        return {
            "tagger": self.tagger.cache_key(),
            **({"parent_threshold": parent_threshold} if parent_threshold is not None else {}),
            "embedder": self.embedder,
            "merge_threshold": self.merge_threshold,
            "min_tag_count": self.min_tag_count,
            "max_tags": self.max_tags,
            "max_seq_length": self.max_seq_length,
        }

    def cache_key(self) -> dict[str, Any]:
        return {"class": type(self).__name__, **self.params()}

    def tag(
        self, texts: Sequence[str], cache: FeatureCache | None = None, ids: Sequence[str] | None = None
    ) -> list[list[str]]:
        """Raw tags per text from the tagger, cached by (ordered texts, tagger config) given a `cache`."""
        texts = list(texts)

        def compute() -> list[list[str]]:
            tags = self.tagger.tag(texts, ids=ids)
            if len(tags) != len(texts):
                raise ValueError(f"{type(self.tagger).__name__} returned {len(tags)} tag lists for {len(texts)}")
            return [[str(t) for t in row] for row in tags]

        if cache is None:
            return compute()
        key = {"texts": texts_hash(texts), "n": len(texts), "tagger": self.tagger.cache_key()}
        return cache.get_or_compute(
            "tags",
            key,
            compute,
            save=lambda value, d: (d / "tags.json").write_text(json.dumps(value, ensure_ascii=False)),
            load=lambda d: json.loads((d / "tags.json").read_text()),
        )

    def fit(
        self, texts: Sequence[str], cache: FeatureCache | None = None, ids: Sequence[str] | None = None
    ) -> TypeAssignment:
        """Tag, merge and build the samples x types matrix. `ids` reach taggers that align by id (JSONL)."""
        raw = self.tag(texts, cache=cache, ids=ids)
        return self.fit_tags(raw, cache=cache)

    def fit_tags(self, raw: list[list[str]], cache: FeatureCache | None = None) -> TypeAssignment:
        """Merge given raw tags into types (the part of `fit` after tagging)."""
        rows = [list(dict.fromkeys(t for t in map(normalise_tag, row) if t)) for row in raw]
        counts = Counter(t for row in rows for t in row)
        frequent = [t for t, c in counts.items() if c >= self.min_tag_count]
        frequent.sort(key=lambda t: (-counts[t], t))
        kept = frequent[: self.max_tags]
        cluster_of, vectors = self._merge(kept, cache)
        n_types = int(cluster_of.max()) + 1 if len(kept) else 0
        # Name each type by its most frequent member; `kept` is sorted by frequency, so first seen wins.
        names: list[str | None] = [None] * n_types
        for tag, c in zip(kept, cluster_of, strict=True):
            if names[c] is None:
                names[c] = tag
        # Order types by how many samples carry them, so ids read the same across runs.
        tag_type = {tag: int(c) for tag, c in zip(kept, cluster_of, strict=True)}
        type_lists = [sorted({tag_type[t] for t in row if t in tag_type}) for row in rows]
        support = np.bincount([c for row in type_lists for c in row], minlength=n_types)
        order = sorted(range(n_types), key=lambda c: (-support[c], names[c]))
        new_id = {old: new for new, old in enumerate(order)}
        type_lists = [[new_id[c] for c in row] for row in type_lists]
        type_names = [str(names[c]) for c in order]
        self.tag_to_type_ = {tag: new_id[c] for tag, c in tag_type.items()}
        parent_threshold = self.parent_threshold
        self.parent_of_type_: dict[int, int] = {}
        if parent_threshold is not None and n_types > 1:
            type_of_tag = np.array([new_id[c] for c in cluster_of.tolist()])
            parent_names, self.parent_of_type_ = self._parents(type_of_tag, vectors, type_lists, type_names,
                                                               parent_threshold)  # fmt: skip
            type_lists = [sorted({*row, *(self.parent_of_type_[c] for c in row if c in self.parent_of_type_)})
                          for row in type_lists]  # fmt: skip
            type_names = type_names + parent_names
        n = len(rows)
        meta = {
            "extractor": type(self).__name__,
            "params": self.params(),
            "raw_tags_per_sample": float(np.mean([len(r) for r in raw])) if n else 0.0,
            "distinct_tags": len(counts),
            "tags_dropped_rare": len(counts) - len(frequent),
            "tags_dropped_cap": len(frequent) - len(kept),
            "types_after_merge": n_types,
            "parent_threshold": parent_threshold,
            "parent_types": len(type_names) - n_types,
            "types_per_sample": float(np.mean([len(r) for r in type_lists])) if n else 0.0,
            "n_samples_without_type": int(sum(not r for r in type_lists)),
            "tagger": type(self.tagger).__name__,
            # the relevance a tag needed (None: the tagger keeps no threshold, e.g. JSONL or LLM tags)
            "tag_min_relevance": getattr(self.tagger, "min_relevance", None),
            "tag_relevance_rule": getattr(self.tagger, "relevance_rule", None),  # what min_relevance gates
            "parse_failures": getattr(self.tagger, "parse_failures_", None),
        }
        log.info(
            "meso: %d distinct tags -> %d types + %d parent types (%.2f raw tags/sample, %d samples without a type)",
            len(counts),
            n_types,
            meta["parent_types"],
            meta["raw_tags_per_sample"],
            meta["n_samples_without_type"],
        )
        return TypeAssignment.from_lists(type_lists, type_names, meta=meta)

    def _parents(
        self,
        type_of_tag: np.ndarray,
        vectors: np.ndarray,
        type_lists: list[list[int]],
        type_names: list[str],
        threshold: float,
    ) -> tuple[list[str], dict[int, int]]:
        """Parent types: the types clustered by their centroid tag embeddings (average linkage, cosine >
        `threshold`). Returns the parents' names (ids follow the t types, most carried first) and type ->
        parent id for every type in a parent of two or more types. O(t^2) for t types."""
        n_types = len(type_names)
        centroids = np.zeros((n_types, vectors.shape[1]), dtype=np.float64)
        np.add.at(centroids, type_of_tag, vectors)
        centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
        labels = _agglomerate(centroids, threshold)
        size = np.bincount(labels)
        carried = np.bincount([g for row in type_lists for g in {int(labels[t]) for t in row}], minlength=len(size))
        groups = [g for g in range(len(size)) if size[g] > 1]
        groups.sort(key=lambda g: (-carried[g], g))
        rank = {g: k for k, g in enumerate(groups)}
        members: list[list[int]] = [[] for _ in groups]
        for t in range(n_types):  # types are sorted by support, so each group's members are too
            if int(labels[t]) in rank:
                members[rank[int(labels[t])]].append(t)
        names = ["group: " + ", ".join(type_names[t] for t in m[:3]) for m in members]
        parent = {t: n_types + k for k, m in enumerate(members) for t in m}
        return names, parent

    def _merge(self, tags: list[str], cache: FeatureCache | None) -> tuple[np.ndarray, np.ndarray]:
        """Cluster id per tag (deterministic: input order is fixed and the linkage has no randomness), and the
        tags' unit embeddings."""
        if len(tags) < 2:
            return np.zeros(len(tags), dtype=np.int64), np.zeros((len(tags), 1), dtype=np.float32)

        vectors = embed(
            tags,
            self.embedder,
            self.batch_size,
            self.max_seq_length,
            cache=cache,
            progress=self.progress and len(tags) > 2000,
        )
        return _agglomerate(vectors, self.merge_threshold), vectors


def _agglomerate(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage clusters of `vectors` whose mean cosine similarity exceeds `threshold`, numbered by first
    occurrence in the input order (deterministic). O(n^2) memory."""
    from sklearn.cluster import AgglomerativeClustering

    clusterer = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=max(1.0 - threshold, 1e-9)
    )
    labels = clusterer.fit_predict(vectors)
    first = {c: i for i, c in reversed(list(enumerate(labels.tolist())))}
    order = {c: k for k, c in enumerate(sorted(first, key=first.get))}
    return np.array([order[c] for c in labels.tolist()], dtype=np.int64)
