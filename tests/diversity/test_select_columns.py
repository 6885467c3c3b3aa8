"""QDIT on a pool column end to end (diversity/select.py + diversity/selectors/qdit.py): the value read with each row
reaches the selector for exactly the rows it chooses from, through decontamination, the held-out split and a length
window; alpha = 1 takes the top-quality samples; selection.json records the column; the config composes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from core.cache import FeatureCache
from diversity.extractors.embedding import EmbeddingExtractor
from diversity.lengths import LengthControl
from diversity.manifest import write_manifest
from diversity.pools import PoolError, load_pool
from diversity.select import HeldoutSpec, pool_columns, select_subset
from diversity.selectors import QditSelector
from diversity.strategy import Strategy
from evaluation.benchmarks import load_benchmark

ROOT = Path(__file__).resolve().parents[2]
N_ROWS = 150
COPIES = 6  # rows copying an MT-Bench prompt: dropped by decontamination, and given the best scores of all


@pytest.fixture(scope="module")
def mtbench() -> list[str]:
    return [item.prompt for item in load_benchmark("mtbench")]


def write_pool(path: Path, mtbench: list[str], reverse: bool = False) -> Path:
    """Alpaca rows with a unique `quality` each (a permutation of the rows); the benchmark copies score highest, so a
    column that slipped out of line with its rows after decontamination would put them into the subset."""
    rows = []
    for i in range(N_ROWS):
        quality = float((i * 37) % 151) + 0.25  # 151 is prime: every row its own score
        instruction = mtbench[i] if i < COPIES else f"Question number {i} about topic {i % 7}?"
        quality = 1000.0 + i if i < COPIES else quality
        rows.append({"instruction": instruction, "output": f"Answer {i}: " + "word " * (i % 9), "quality": quality})
    if reverse:
        for row in rows:
            row["quality"] = -row["quality"]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def line_of(pair_id: str) -> int:
    return int(pair_id.split(":")[0])


def qdit(alpha: float = 1.0, quality: str = "column:quality") -> Strategy:
    extractor = EmbeddingExtractor(max_seq_length=32, progress=False)
    return Strategy("qdit_response", "response", extractor, QditSelector(alpha=alpha, quality=quality, n_neighbors=8))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> FeatureCache:
    return FeatureCache(tmp_path_factory.mktemp("cache"))  # one embedding pass for every test of this file


def select(pool, cache, mtbench, **kwargs):
    settings = {"n": 20, "level": 1.0, "seed": 0, "heldout": HeldoutSpec(size=12), "cache": cache}
    return select_subset(pool, qdit(), exclude_prompts={"mtbench": mtbench}, **{**settings, **kwargs})


def top(values: np.ndarray, rows: np.ndarray, n: int) -> list[int]:
    return sorted(rows[np.argsort(-values[rows], kind="stable")[:n]].tolist())


@pytest.mark.slow  # the real MiniLM embedder (~10-30 s on 2 cores for the first)
def test_alpha_one_takes_the_top_quality_candidates_with_every_filter(tmp_path, cache, mtbench):
    source = write_pool(tmp_path / "pool.jsonl", mtbench)
    rows = [json.loads(line) for line in source.read_text().splitlines()]
    pool = load_pool(str(source), columns=pool_columns(qdit()))
    subset = select(pool, cache, mtbench)
    for part in (subset.pool, subset.candidates):  # each value beside its own row, after every filter
        assert part.columns["quality"].tolist() == [rows[line_of(i)]["quality"] for i in part.ids]
    values = pool.columns["quality"]
    selectable = np.asarray([pool.ids.index(i) for i in subset.candidates.ids])
    assert subset.record["decontamination"]["total"] == COPIES and len(subset.heldout) == 12
    assert not set(selectable) & set(subset.heldout.tolist()) and values[selectable].max() < 1000
    assert sorted(subset.indices.tolist()) == top(values, selectable, 20)
    write_manifest(tmp_path / "run", subset)
    info = json.loads((tmp_path / "run" / "selection.json").read_text())
    chosen = values[subset.indices]
    assert info["info"]["quality_column"] == {
        "column": "quality",
        "candidates": {
            "count": len(selectable),
            "min": values[selectable].min(),
            "max": values[selectable].max(),
            "mean": pytest.approx(values[selectable].mean()),
        },
        "selected": {"count": 20, "min": chosen.min(), "max": chosen.max(), "mean": pytest.approx(chosen.mean())},
    }
    assert info["pool"]["columns"] == ["quality"] and info["info"]["quality"] == "column:quality"


@pytest.mark.slow  # the real MiniLM embedder (~10-30 s on 2 cores for the first)
def test_same_seed_same_subset_and_new_scores_are_not_served_from_the_cache(tmp_path, cache, mtbench):
    pool = load_pool(str(write_pool(tmp_path / "pool.jsonl", mtbench)), columns=["quality"])
    first = select(pool, cache, mtbench)
    assert np.array_equal(select(pool, cache, mtbench).indices, first.indices)  # a cache hit
    assert np.array_equal(select(pool, None, mtbench).indices, first.indices)  # computed afresh
    reversed_pool = load_pool(str(write_pool(tmp_path / "reversed.jsonl", mtbench, reverse=True)), columns=["quality"])
    assert reversed_pool.content_hash == pool.content_hash  # same texts, other scores
    flipped = select(reversed_pool, cache, mtbench)
    selectable = np.asarray([pool.ids.index(i) for i in flipped.candidates.ids])
    assert sorted(flipped.indices.tolist()) == top(reversed_pool.columns["quality"], selectable, 20)
    assert not set(flipped.indices.tolist()) & set(first.indices.tolist())


@pytest.mark.slow  # the real MiniLM embedder (~10-30 s on 2 cores for the first)
def test_a_length_window_hands_over_the_window_rows_only(tmp_path, cache, mtbench):
    pool = load_pool(str(write_pool(tmp_path / "pool.jsonl", mtbench)), columns=["quality"])
    subset = select(pool, cache, mtbench, length=LengthControl(window=(3, 6), tokenizer="whitespace"))
    values = pool.columns["quality"]
    selectable = np.asarray([pool.ids.index(i) for i in subset.candidates.ids])
    in_window = np.asarray([i for i in selectable if 3 <= len(pool.responses[i].split()) <= 6])
    assert sorted(subset.indices.tolist()) == top(values, in_window, 20)
    assert subset.selection.info["quality_column"]["candidates"]["count"] == len(in_window)


@pytest.mark.slow  # the real MiniLM embedder (~10-30 s on 2 cores for the first)
def test_a_pool_loaded_without_the_column_is_refused_before_any_work(tmp_path, mtbench):
    pool = load_pool(str(write_pool(tmp_path / "pool.jsonl", mtbench)))
    with pytest.raises(PoolError, match=r"reads the pool column\(s\) \['quality'\].*pool_columns\(strategy\)"):
        select(pool, None, mtbench)
    with pytest.raises(ValueError, match="no values were handed over"):  # the selector alone cannot find them
        qdit().select(pool, n=5, level=1.0, seed=0)


@pytest.mark.slow  # the real MiniLM embedder (~10-30 s on 2 cores for the first)
def test_alpha_between_zero_and_one_raises_the_quality_of_a_facility_subset(tmp_path, cache, mtbench):
    pool = load_pool(str(write_pool(tmp_path / "pool.jsonl", mtbench)), columns=["quality"])
    coverage_only = select_subset(pool, qdit(alpha=0.0), 20, 1.0, 0, HeldoutSpec(12), cache=cache)
    mixed = select_subset(pool, qdit(alpha=0.5), 20, 1.0, 0, HeldoutSpec(12), cache=cache)
    quality = [s.selection.info["quality_column"]["selected"]["mean"] for s in (coverage_only, mixed)]
    assert quality[1] > quality[0]


def compose_cfg(*overrides: str):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose("config", overrides=["paths.output_dir=.", "paths.cache_dir=.", *overrides])
    finally:
        GlobalHydra.instance().clear()


SECTIONS = ("diversity", "data", "strategy")


def problems_of(cfg) -> list[str]:
    """The diversity layer's config problems (the sections it reads; run.py's resolvers are not registered here)."""
    from diversity.config_rules import config_problems

    return config_problems({key: OmegaConf.to_container(cfg[key], resolve=True) for key in SECTIONS} | {"seed": 0})


def test_the_column_option_composes_and_is_checked():
    cfg = compose_cfg("strategy=qdit_response", "strategy.selector.quality=column:scores.reward")
    assert problems_of(cfg) == []
    assert pool_columns(instantiate(cfg.strategy)) == ["scores.reward"]
    assert pool_columns(instantiate(compose_cfg("strategy=qdit_response").strategy)) == []  # typicality: no column
    assert pool_columns(instantiate(compose_cfg().strategy)) == []  # random
    bad = compose_cfg("strategy=qdit_response", "strategy.selector.quality=column:")
    problems = problems_of(bad)
    assert any("strategy.selector.quality='column:'" in p and "column:<field>" in p for p in problems)
