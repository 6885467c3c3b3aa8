"""MacroExtractor: clearly separated topics come out as topics; HDBSCAN noise handled both documented ways."""

from __future__ import annotations

import numpy as np
import pytest

from diversity.embeddings import embed
from diversity.extractors.macro import MacroExtractor

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
    with pytest.raises(ValueError, match="noise must be one of"):
        MacroExtractor(noise="drop").fit(["a"], embeddings=np.eye(1, 4))


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
