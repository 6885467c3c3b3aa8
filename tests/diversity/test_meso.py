"""MesoExtractor: near-synonym tags merge into one type named by its most frequent member; tags are cached;
the default (phrase) tagger types nearly every sample with several tags on real pools."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from core.cache import FeatureCache
from diversity.extractors.meso import MesoExtractor, normalise_tag
from diversity.taggers import JsonlTagger, KeywordTagger, PhraseTagger

ROOT = Path(__file__).resolve().parents[2]
ALPACA = ROOT.parent / "shared" / "data" / "alpaca_eval" / "gpt4_1106_preview_outputs.json"

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
    assert types.n_types == 4 and types.meta["n_samples_without_type"] == 0


class ParentKeywordTagger(KeywordTagger):
    """A tagger that asks the meso extractor for a parent level, as PhraseTagger does (0.3)."""

    parent_threshold = 0.3


def test_parent_types_group_related_types_and_every_sample_carries_its_parents():
    raw = RAW + [["football match", "basketball game"], ["basketball game", "cooking recipes"]]
    extractor = MesoExtractor(tagger=ParentKeywordTagger(), min_tag_count=1)
    types = extractor.fit_tags(raw)
    t, parent = extractor.tag_to_type_, extractor.parent_of_type_
    n_types = types.meta["types_after_merge"]
    assert types.meta["parent_types"] == types.n_types - n_types >= 1 and types.meta["parent_threshold"] == 0.3
    assert parent[t["python programming"]] == parent[t["java programming"]] >= n_types  # programming
    assert parent[t["football match"]] == parent[t["basketball game"]] != parent[t["java programming"]]  # sport
    assert t["cooking recipes"] not in parent  # a parent of one type would only repeat its column
    assert types.type_names[parent[t["java programming"]]].startswith("group: ")
    for i, row in enumerate(raw):  # every sample carries its types and their parents, nothing else
        own = {t[normalise_tag(tag)] for tag in row}
        assert set(types.matrix[i].indices.tolist()) == own | {parent[c] for c in own if c in parent}
    assert "parent_threshold" in extractor.params()  # in the types' cache key, not in the tags' (tags unchanged)
    assert "parent_threshold" not in MesoExtractor(KeywordTagger()).params()
    assert MesoExtractor(tagger=ParentKeywordTagger(), min_tag_count=1).fit_tags(raw).type_names == types.type_names


class CountingJsonlTagger(JsonlTagger):
    """A JSONL tagger that counts how often it is asked for tags."""

    calls = 0

    def tag(self, texts, ids=None):
        self.calls += 1
        return super().tag(texts, ids)


def test_fit_with_jsonl_tagger_and_tag_cache(tmp_path):
    path = tmp_path / "tags.jsonl"
    path.write_text("\n".join(json.dumps({"tags": row}) for row in RAW) + "\n")
    texts = [f"text {i}" for i in range(len(RAW))]
    cache = FeatureCache(tmp_path / "cache")
    tagger = CountingJsonlTagger(str(path))
    extractor = MesoExtractor(tagger=tagger, min_tag_count=1)
    types = extractor.fit(texts, cache=cache)
    assert types.n_samples == 6 and types.n_types == 5  # python, cooking, football, java, one-off
    entries = list((tmp_path / "cache" / "tags").glob("*/tags.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text()) == RAW
    again = extractor.fit(texts, cache=cache)  # a hit reads the entry and does not re-tag
    assert tagger.calls == 1 and again.type_names == types.type_names
    assert extractor.cache_key()["tagger"]["file_sha256"]  # the tagger's own key, file content included
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


def test_default_meso_tagger_is_the_phrase_tagger():
    """Chosen by benchmarks/bench_tagger.py (figures in benchmarks/README.md)."""
    defaults = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "extractor" / "meso.yaml"))["defaults"]
    assert {"/tagger@tagger": "phrase"} in defaults
    assert OmegaConf.load(ROOT / "conf" / "tagger" / "phrase.yaml")["_target_"].endswith("PhraseTagger")


def _thick_types(texts: list[str], cache: FeatureCache | None) -> dict:
    """Meso types of `texts` with the default tagger; returns the meta plus measured samples/s of tagging."""
    extractor = MesoExtractor(tagger=PhraseTagger(progress=False), progress=False)
    start = time.perf_counter()
    raw = extractor.tag(texts)
    rate = len(texts) / (time.perf_counter() - start)
    types = extractor.fit_tags(raw, cache=cache)
    return {**types.meta, "samples_per_s": rate, "n_types": types.n_types}


@pytest.mark.slow
def test_second_domain_pool_gets_several_types_per_sample():
    if not ALPACA.exists():
        pytest.skip(f"{ALPACA} not present")
    rows = json.loads(ALPACA.read_text())[:200]
    for field in ("instruction", "output"):
        meta = _thick_types([r[field] for r in rows], cache=None)
        assert meta["types_per_sample"] >= 3 and meta["n_samples_without_type"] <= 0.05 * len(rows), (field, meta)


@pytest.mark.slow
@pytest.mark.parametrize("component", ["instruction", "response"])
def test_default_pool_types_nearly_every_sample_with_several_tags(component, default_pool, default_response_tags):
    """The YAKE keyword tagger left 30% of the 2,000 default instructions untyped, 1.2 types per typed sample;
    the default tagger must type nearly every sample, with only relevant tags (none forced)."""
    if component == "response":
        texts, rows = default_response_tags
        raw = [[t for t, _ in row] for row in rows]
    else:
        texts = default_pool.texts(component)
        raw = PhraseTagger(progress=False).tag(texts)
    extractor = MesoExtractor(tagger=PhraseTagger(progress=False), progress=False)
    types = extractor.fit_tags(raw, cache=FeatureCache())
    meta = types.meta
    print(f"{component}: {types.n_types} types, {meta['types_per_sample']:.2f} types/sample")
    assert meta["types_per_sample"] >= 3, meta
    assert meta["n_samples_without_type"] <= 0.05 * len(texts), meta
    assert types.n_types >= 50  # far more than the seven degrees need
    assert meta["tag_min_relevance"] == 0.3
