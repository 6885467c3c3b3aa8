"""MesoExtractor: near-synonym tags merge into one type named by its most frequent member; tags are cached."""

from __future__ import annotations

import json

import pytest

from core.cache import FeatureCache
from diversity.extractors.meso import MesoExtractor, normalise_tag
from diversity.taggers import JsonlTagger, KeywordTagger

RAW = [
    ["python programming", "cooking recipes"],
    ["Programming in Python", "football match"],
    ["python programming", "recipe for cooking"],
    ["python coding", "football match", "one-off tag"],
    ["java programming", "cooking recipes"],
    ["java programming", "football match"],
]


def test_normalise_tag():
    assert normalise_tag('  "Python   Programming." ') == "python programming"


def test_near_synonyms_merge_and_type_is_named_by_most_frequent():
    extractor = MesoExtractor(tagger=KeywordTagger(), min_tag_count=1)
    types = extractor.fit_tags(RAW)
    t = extractor.tag_to_type_
    assert t["python programming"] == t["programming in python"] == t["python coding"]
    assert t["cooking recipes"] == t["recipe for cooking"]
    assert len({t["python programming"], t["java programming"], t["football match"], t["cooking recipes"]}) == 4
    assert types.type_names[t["python programming"]] == "python programming"
    assert types.type_names[t["cooking recipes"]] == "cooking recipes"
    # types ordered by support: python (4 samples) first
    assert t["python programming"] == 0
    assert types.matrix[0].indices.tolist() == sorted([t["python programming"], t["cooking recipes"]])
    assert types.meta["raw_tags_per_sample"] == pytest.approx(13 / 6)


def test_rare_tags_dropped_and_counted():
    types = MesoExtractor(tagger=KeywordTagger(), min_tag_count=2, merge_threshold=1.0).fit_tags(RAW)
    assert "one-off tag" not in types.type_names
    assert types.meta["tags_dropped_rare"] == 4  # programming in python, recipe for cooking, python coding, one-off
    assert types.n_types == 4 and types.meta["samples_without_type"] == 0


def test_fit_with_jsonl_tagger_and_tag_cache(tmp_path):
    path = tmp_path / "tags.jsonl"
    path.write_text("\n".join(json.dumps({"tags": row}) for row in RAW) + "\n")
    texts = [f"text {i}" for i in range(len(RAW))]
    cache = FeatureCache(tmp_path / "cache")
    extractor = MesoExtractor(tagger=JsonlTagger(str(path)), min_tag_count=1)
    types = extractor.fit(texts, cache=cache)
    assert types.n_samples == 6 and types.n_types == 5  # python, cooking, football, java, one-off
    entries = list((tmp_path / "cache" / "tags").glob("*/tags.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text()) == RAW
    entries[0].write_text(json.dumps([["cached"]] * 6))  # a hit must read the entry, not re-tag
    assert extractor.fit(texts, cache=cache).type_names == ["cached"]
    assert extractor.cache_key()["tagger"]["class"] == "JsonlTagger"
    assert json.loads(json.dumps(extractor.cache_key()))  # JSON-serialisable for the strategy's cache


def test_fit_with_keyword_tagger_on_texts():
    texts = [
        "Python lists and Python dictionaries store data in Python programs.",
        "A Python dictionary maps keys to values in Python programs.",
        "Bake the chocolate cake in the oven; the chocolate cake needs sugar.",
        "The chocolate cake recipe needs eggs, sugar and butter for the cake.",
    ]
    types = MesoExtractor(tagger=KeywordTagger(progress=False), min_tag_count=2).fit(texts)
    assert types.n_samples == 4 and types.n_types >= 2
    rows = [set(types.matrix[i].indices.tolist()) for i in range(4)]
    assert rows[0] & rows[1] and rows[2] & rows[3] and not (rows[0] & rows[2])
