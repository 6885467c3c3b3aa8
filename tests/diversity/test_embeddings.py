"""embed: unit-length float32 rows, deterministic, cached as .npy; uses the real offline MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from core.assets import resolve_embedder_path
from core.cache import FeatureCache
from diversity.embeddings import embed, texts_hash

SENTENCES = [
    "How do I boil pasta?",
    "Write a Python function that reverses a list.",
    "Who won the football match last night?",
    "Simmer the tomato sauce with garlic.",
    "Explain list comprehensions in Python.",
]


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return embed(SENTENCES, progress=False)


def test_texts_hash_is_order_and_boundary_sensitive():
    assert texts_hash(["a", "b"]) != texts_hash(["b", "a"])
    assert texts_hash(["ab", "c"]) != texts_hash(["a", "bc"])
    assert texts_hash(["a", "b"]) == texts_hash(["a", "b"])


def test_unknown_pypi_asset_names_the_package():
    with pytest.raises(FileNotFoundError, match="no_such_asset_pkg"):
        resolve_embedder_path("pypi:no_such_asset_pkg")


def test_embeddings_are_unit_float32(vectors):
    assert vectors.shape == (len(SENTENCES), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embeddings_are_deterministic_and_order_independent(vectors):
    again = embed(list(reversed(SENTENCES)), progress=False, batch_size=2)
    np.testing.assert_allclose(again[::-1], vectors, atol=1e-5)


def test_similar_sentences_are_closer(vectors):
    sims = vectors @ vectors.T
    assert sims[1, 4] > sims[1, 2]  # two Python questions vs Python and football
    assert sims[0, 3] > sims[0, 2]  # two cooking sentences vs cooking and football


def test_cache_stores_npy_and_reloads(tmp_path, vectors):
    cache = FeatureCache(tmp_path)
    first = embed(SENTENCES, cache=cache, progress=False)
    files = list(tmp_path.glob("embeddings/*/embeddings.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(np.load(files[0], allow_pickle=False), first)
    before = files[0].stat()
    np.testing.assert_array_equal(embed(SENTENCES, cache=cache, progress=False), first)
    after = files[0].stat()  # a hit reads the entry; a recompute would write a new one (new inode)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    other = embed(SENTENCES, cache=cache, progress=False, max_seq_length=8)
    assert other.any() and len(list(tmp_path.glob("embeddings/*/embeddings.npy"))) == 2


def test_empty_input_keeps_width():
    assert embed([], progress=False).shape == (0, 384)


def test_fast_mean_pooling_equals_sentence_transformers_encode():
    """`embed` skips SentenceTransformer.encode's per-batch overhead for MiniLM; the vectors must not move."""
    from diversity.embeddings import DEFAULT_EMBEDDER, _plain_mean_pooling, load_embedder

    encoder = load_embedder(DEFAULT_EMBEDDER, None)
    assert _plain_mean_pooling(encoder)
    texts = ["", "linked list", "a python function", "Write a poem about the sea. " * 40, "résumé ${x} {}"] * 3
    encoder.max_seq_length = 64
    reference = encoder.encode(texts, batch_size=4, convert_to_numpy=True, show_progress_bar=False)
    np.testing.assert_allclose(embed(texts, max_seq_length=64, batch_size=4, progress=False), reference, atol=1e-5)
