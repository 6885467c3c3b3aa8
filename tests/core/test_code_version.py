"""Issue 21.5: the cache outlives the code. An entry is stamped with the version of the code that computed it
(derived from the compute function, no change at the call sites), so editing the logic recomputes."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest

from core.cache import FeatureCache
from core.code_version import code_version, reached_modules

MODULE = """
from {helper} import scale


class Extractor:
    def __init__(self, factor):
        self.factor = factor

    def fit(self, texts):
        return [scale(len(t), self.factor) for t in texts]
"""
HELPER = "def scale(n, factor):\n    return n * factor{tweak}\n"


def _write(tmp_path, name, text):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    importlib.invalidate_caches()


@pytest.fixture()
def fake_package(tmp_path, monkeypatch):
    """An extractor module and the helper it calls, importable from tmp_path (names unique to this test)."""
    name, helper = f"m2m_fake_extractor_{tmp_path.name}", f"m2m_fake_helper_{tmp_path.name}"
    _write(tmp_path, helper, HELPER.format(tweak=""))
    _write(tmp_path, name, MODULE.format(helper=helper))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path, name, helper
    for module in (name, helper):
        sys.modules.pop(module, None)


def _types(cache, extractor, texts):
    """A call site as the strategies write it: the key names the parameters, not the code."""
    return cache.get_or_compute(
        "types",
        {"texts": texts, "factor": extractor.factor},
        lambda: extractor.fit(texts),
        save=lambda value, d: (d / "v.json").write_text(json.dumps(value)),
        load=lambda d: json.loads((d / "v.json").read_text()),
    )


def test_editing_the_logic_or_a_helper_it_calls_recomputes_the_entry(fake_package):
    tmp_path, name, helper = fake_package
    cache, texts = FeatureCache(tmp_path / "cache"), ["ab", "abcd"]
    module = importlib.import_module(name)
    assert _types(cache, module.Extractor(2), texts) == [4, 8]
    assert _types(cache, module.Extractor(2), texts) == [4, 8]  # same code: a hit

    _write(tmp_path, name, MODULE.format(helper=helper).replace("len(t)", "len(t) + 1"))
    module = importlib.reload(module)
    assert _types(cache, module.Extractor(2), texts) == [6, 10]  # the extractor's logic changed: recomputed

    _write(tmp_path, helper, HELPER.format(tweak=" * 10"))
    importlib.reload(sys.modules[helper])
    module = importlib.reload(module)  # its `scale` is the new one now; the key did not change
    assert _types(cache, module.Extractor(2), texts) == [60, 100]  # a helper it calls changed: recomputed


def test_an_explicit_code_version_overrides_the_derived_one(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return [1]

    save = lambda v, d: (d / "v.json").write_text(json.dumps(v))  # noqa: E731
    load = lambda d: json.loads((d / "v.json").read_text())  # noqa: E731
    for code in ("v1", "v1", "v2"):
        cache.get_or_compute("x", {"k": 1}, compute, save, load, code=code)
    assert len(calls) == 2


def test_real_call_sites_reach_the_modules_that_compute_their_entries(monkeypatch):
    """What the strategies' "types", the meso "tags" and the "embeddings" entries are stamped with."""
    from diversity.embeddings import embed
    from diversity.extractors.meso import MesoExtractor
    from diversity.extractors.micro import MicroExtractor
    from diversity.pools.base import Pool
    from diversity.strategy import Strategy
    from diversity.taggers.keyword import KeywordTagger

    seen = {}

    class Stop(Exception):
        pass

    def spy(self, namespace, key, compute, save, load, code=None):
        seen[namespace] = set(reached_modules(compute, save, load))
        raise Stop

    monkeypatch.setattr(FeatureCache, "get_or_compute", spy)
    cache = FeatureCache("/nonexistent")
    pool = Pool(["0"], ["a question"], ["an answer"], "src", "hash", {}, ["row:0"])
    for extractor in (MicroExtractor(), MesoExtractor(KeywordTagger())):
        with pytest.raises(Stop):
            Strategy("s", "instruction", extractor).types(pool, cache=cache)
        assert {"diversity.strategy", "diversity.types", type(extractor).__module__} <= seen["types"]
    with pytest.raises(Stop):
        MesoExtractor(KeywordTagger()).tag(["a text"], cache=cache)
    assert {"diversity.extractors.meso", "diversity.taggers.keyword"} <= seen["tags"]
    with pytest.raises(Stop):
        embed(["a text"], cache=cache)
    assert "diversity.embeddings" in seen["embeddings"]
    assert not any(m.startswith(("numpy", "torch", "core.cache")) for mods in seen.values() for m in mods)
    assert code_version(Strategy("s", "instruction", MicroExtractor()).types) == code_version(
        Strategy("t", "response", MicroExtractor()).types
    )  # the version is the code's, not the parameters' (those are in the key)


def test_fresh_names_only_complete_entries_of_the_same_code(tmp_path):
    cache = FeatureCache(tmp_path)
    save = lambda v, d: (d / "v.json").write_text(json.dumps(v))  # noqa: E731
    load = lambda d: json.loads((d / "v.json").read_text())  # noqa: E731
    assert cache.fresh("x", {"k": 1}, "v1") is None
    cache.get_or_compute("x", {"k": 1}, lambda: [1], save, load, code="v1")
    assert cache.fresh("x", {"k": 1}, "v1") == cache.entry("x", {"k": 1})
    assert cache.fresh("x", {"k": 1}, "v2") is None


LAZY = """
import json


class Tagger:
    def tag(self, texts):
        from .helper import scale  # imported only when the tags are computed

        return [scale(len(t), 2) for t in texts]

    def save(self, value, folder):
        def write():
            from . import writer  # nested function, `from package import submodule`

            writer.write(folder, json.dumps(value))

        write()
"""


@pytest.fixture()
def lazy_package(tmp_path, monkeypatch):
    """A package whose compute and save functions import their helpers inside their bodies, not at the top."""
    name = f"m2m_lazy_{tmp_path.name}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tagger.py").write_text(LAZY)
    (package / "helper.py").write_text(HELPER.format(tweak=""))
    (package / "writer.py").write_text("def write(folder, text):\n    (folder / 'v.json').write_text(text)\n")
    importlib.invalidate_caches()
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package, name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        sys.modules.pop(module)


def test_modules_imported_inside_functions_are_part_of_the_version(lazy_package):
    package, name = lazy_package
    tagger = importlib.import_module(f"{name}.tagger").Tagger()
    assert f"{name}.helper" not in sys.modules  # not imported before the version is taken
    reached = reached_modules(tagger.tag, tagger.save)
    assert {f"{name}.tagger", f"{name}.helper", f"{name}.writer"} <= set(reached)
    assert not any(m == "json" or m.startswith("core.") for m in reached)  # stdlib and unrelated code: not followed
    before = code_version(tagger.tag)
    assert code_version(tagger.tag) == before

    (package / "helper.py").write_text(HELPER.format(tweak=" * 10"))
    assert code_version(tagger.tag) != before  # only the lazily imported helper changed
    writer = code_version(tagger.save)
    (package / "writer.py").write_text("def write(folder, text):\n    (folder / 'w.json').write_text(text)\n")
    assert code_version(tagger.save) != writer


def test_the_llm_tagger_and_micro_types_reach_what_they_import_lazily():
    """The LLM tagger asks `core.chat` or `core.generate` (and its `core.prompting`), micro types count tokens with
    `core.assets.load_tokenizer`: all imported inside functions."""
    from diversity.extractors.meso import MesoExtractor
    from diversity.extractors.micro import MicroExtractor
    from diversity.strategy import Strategy
    from diversity.taggers.keyword import KeywordTagger
    from diversity.taggers.llm import LLMTagger

    llm = set(reached_modules(MesoExtractor(LLMTagger(model="m")).tag))
    assert {"diversity.taggers.llm", "core.chat", "core.generate", "core.prompting", "core.assets"} <= llm
    micro = set(reached_modules(Strategy("s", "instruction", MicroExtractor()).types))
    assert "core.assets" in micro
    keyword = set(reached_modules(MesoExtractor(KeywordTagger()).tag))
    assert not keyword & {"core.chat", "core.generate"}  # a tagger that asks no model does not depend on them
