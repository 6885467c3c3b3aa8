"""MacroExtractor: clearly separated topics come out as topics; HDBSCAN noise handled both documented ways;
the topic-count floor keeps small real pools from collapsing to a couple of topics."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import robustness_pool

from core.cache import FeatureCache
from diversity.embeddings import embed
from diversity.extractors.macro import MacroExtractor, auto_min_topics

FOODS = ["pasta", "risotto", "chicken curry", "lentil soup", "banana bread"]
TEAMS = ["Arsenal", "Liverpool", "Barcelona", "Bayern Munich", "Juventus"]
CODE = ["a linked list", "a binary search", "a JSON parser", "a web scraper", "a sorting function"]


def corpus() -> tuple[list[str], np.ndarray]:
    texts, topics = [], []
    for food in FOODS:
        texts += [
            f"How long should I cook {food} and which spices go well with it in the pan?",
            f"My {food} recipe tastes bland; how can I season it better while simmering?",
            f"What ingredients do I need to prepare {food} for dinner tonight in my kitchen?",
        ]
        topics += [0] * 3
    for team in TEAMS:
        texts += [
            f"Did {team} win their football match last weekend and who scored the goals?",
            f"Which striker should {team} sign to score more goals in the football league?",
            f"Explain the tactics {team} used in the second half of the football game.",
        ]
        topics += [1] * 3
    for thing in CODE:
        texts += [
            f"Write Python code that implements {thing} with a class and unit tests.",
            f"Why does my Python implementation of {thing} raise a TypeError in the loop?",
            f"Refactor this Python function for {thing} to use type hints and a docstring.",
        ]
        topics += [2] * 3
    return texts, np.array(topics)


@pytest.fixture(scope="module")
def topic_corpus() -> tuple[list[str], np.ndarray, np.ndarray]:
    texts, topics = corpus()
    return texts, topics, embed(texts, progress=False)


def _is_same_partition(labels: np.ndarray, truth: np.ndarray) -> bool:
    pairs = set(zip(labels.tolist(), truth.tolist(), strict=True))
    return len(pairs) == len(set(labels.tolist())) == len(set(truth.tolist()))


def test_three_topics_found_without_umap(topic_corpus):
    texts, truth, vectors = topic_corpus
    types = MacroExtractor(umap_components=None, min_cluster_size=5).fit(texts, embeddings=vectors)
    labels = types.matrix.indices  # exactly one type per row
    assert types.n_types == 3 and (types.types_per_sample() == 1).all()
    assert _is_same_partition(labels, truth)
    names = " | ".join(types.type_names)
    assert "football" in names and "python" in names
    assert types.embeddings is not None and types.embeddings.shape == (45, 384)
    assert types.meta["n_clusters"] == 3 and types.meta["min_cluster_size_used"] == 5


def blobs_with_noise() -> tuple[np.ndarray, np.ndarray]:
    """Three tight blobs of 20 points plus 4 scattered points far from all of them."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0, 0], [10, 0, 0], [0, 10, 0]])
    blobs = np.concatenate([c + rng.normal(scale=0.3, size=(20, 3)) for c in centres])
    outliers = np.array([[30.0, 30, 30], [-30, 25, 5], [6, 6, -30], [-25, -25, 20]])
    return np.concatenate([blobs, outliers]), np.repeat([0, 1, 2], 20)


@pytest.mark.parametrize("noise", ["nearest", "own_type"])
def test_noise_handling(noise):
    points, truth = blobs_with_noise()
    texts = [f"sample {i}" for i in range(len(points))]
    extractor = MacroExtractor(umap_components=None, min_cluster_size=10, noise=noise)
    types = extractor.fit(texts, embeddings=points)
    labels = types.matrix.indices
    assert types.meta["n_clusters"] == 3 and types.meta["n_noise"] == 4
    assert _is_same_partition(labels[:60], truth)
    if noise == "own_type":
        assert types.n_types == 4 and (labels[60:] == 3).all()
        assert types.type_names[3].startswith("noise")
    else:
        assert types.n_types == 3
        centroids = np.stack([points[:60][labels[:60] == c].mean(axis=0) for c in range(3)])
        expected = ((points[60:, None] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
        np.testing.assert_array_equal(labels[60:], expected)


def test_tiny_pool_and_bad_noise_mode():
    types = MacroExtractor(umap_components=5).fit(["a", "b", "c"], embeddings=np.eye(3, 4))
    assert types.n_samples == 3 and (types.types_per_sample() == 1).all()
    assert types.n_types == 2 and types.meta["clustering"] == "kmeans"  # HDBSCAN finds none; floor 2
    same = MacroExtractor(umap_components=None).fit(["a", "a", "a"], embeddings=np.ones((3, 4)))
    assert same.n_types == 1 and same.meta["noise_handling"] == "no cluster found: one type"
    with pytest.raises(ValueError, match="noise must be one of"):
        MacroExtractor(noise="drop").fit(["a"], embeddings=np.eye(1, 4))
    with pytest.raises(ValueError, match="min_topics"):
        MacroExtractor(umap_components=None, min_topics=-1).fit(["a", "b"], embeddings=np.eye(2, 4))


def nested_blobs() -> np.ndarray:
    """Two far-apart groups of four close blobs (25 points each): HDBSCAN's excess of mass keeps the 2 groups."""
    rng = np.random.default_rng(0)
    corners = [(0, 0), (1.5, 0), (0, 1.5), (1.5, 1.5)]
    centres = [np.array([group * 100.0 + dx, dy]) for group in (0, 1) for dx, dy in corners]
    return np.concatenate([c + rng.normal(scale=0.3, size=(25, 2)) for c in centres])


def test_topic_floor_falls_back_to_finer_clusterings():
    points = nested_blobs()
    texts = [f"sample {i}" for i in range(len(points))]
    coarse = MacroExtractor(umap_components=None, min_cluster_size=10, min_topics=0).fit(texts, embeddings=points)
    assert coarse.meta["clustering"] == "hdbscan-eom" and coarse.n_types == 2
    fine = MacroExtractor(umap_components=None, min_cluster_size=10, min_topics=8).fit(texts, embeddings=points)
    assert fine.meta["clustering"] == "hdbscan-leaf" and fine.n_types == 8
    majority = [np.bincount(fine.matrix.indices[b * 25 : (b + 1) * 25]).argmax() for b in range(8)]
    assert len(set(majority)) == 8  # one topic per blob
    forced = MacroExtractor(umap_components=None, min_cluster_size=10, min_topics=12).fit(texts, embeddings=points)
    assert forced.meta["clustering"] == "kmeans" and forced.n_types == 12
    assert forced.meta["min_topics_used"] == 12 and forced.meta["n_noise"] == 0
    again = MacroExtractor(umap_components=None, min_cluster_size=10, min_topics=12).fit(texts, embeddings=points)
    assert np.array_equal(again.matrix.indices, forced.matrix.indices)  # seeded k-means


def test_auto_topic_floor():
    assert [auto_min_topics(n) for n in (3, 200, 805, 1000, 2000, 2500, 57000)] == [2, 4, 16, 20, 40, 50, 50]


def test_cache_key_names_class_and_params():
    key = MacroExtractor(min_cluster_size=7).cache_key()
    assert key["class"] == "MacroExtractor" and key["min_cluster_size"] == 7
    assert key != MacroExtractor(min_cluster_size=8).cache_key()


@pytest.mark.slow
def test_umap_pipeline_groups_topics_deterministically(topic_corpus):
    texts, truth, vectors = topic_corpus
    first = MacroExtractor(min_cluster_size=5, random_state=0).fit(texts, embeddings=vectors)
    second = MacroExtractor(min_cluster_size=5, random_state=0).fit(texts, embeddings=vectors)
    assert _is_same_partition(first.matrix.indices, truth)
    np.testing.assert_array_equal(first.matrix.indices, second.matrix.indices)
    assert first.type_names == second.type_names


@pytest.mark.slow
@pytest.mark.parametrize(("pool_name", "at_least"), [("sharegpt", 20), ("alpaca_eval", 16)])
@pytest.mark.parametrize("component", ["instruction", "response"])
def test_real_pools_give_enough_topics_for_seven_degrees(pool_name, at_least, component):
    """HDBSCAN alone found 2 instruction topics on the 2,000-pair default pool (degrees k in {1, 2})."""
    texts = robustness_pool(pool_name).texts(component)
    # 128 embedding tokens instead of the default 256: half the cost on 2 cores (2,000 default-pool responses: ~3 min
    # at 256), and the clustering question (enough topics on a real pool, none swallowing it) is the same.
    types = MacroExtractor(max_seq_length=128, progress=False).fit(texts, cache=FeatureCache())
    assert types.n_types >= at_least and types.n_types == len(set(types.matrix.indices.tolist()))
    assert (types.types_per_sample() == 1).all()
    assert max(types.meta["type_sizes"]) < 0.5 * len(texts)  # no topic swallows the pool
