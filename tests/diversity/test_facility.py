"""Facility-location and QDIT selectors against plain (non-lazy) greedy on the exact similarity matrix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from diversity.selectors import FacilitySelector, QditSelector
from diversity.selectors.facility import cells as cell_labels
from diversity.selectors.facility import facility_value, knn_graph, lazy_greedy
from diversity.selectors.qdit import typicality
from diversity.types import TypeAssignment

ROOT = Path(__file__).resolve().parents[2]


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 8))
    x = centres[rng.integers(5, size=n)] + 0.3 * rng.normal(size=(n, 8))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _types(emb: np.ndarray, meta: dict | None = None) -> TypeAssignment:
    return TypeAssignment(sp.csr_matrix((len(emb), 0), dtype=np.uint8), [], meta or {}, emb)


def _plain_greedy(sim: np.ndarray, m: int, bonus: np.ndarray, alpha: float) -> list[int]:
    """Textbook greedy: at every step score every unchosen sample exactly, take the best (smallest index on ties)."""
    cover = np.zeros(len(sim))
    chosen: list[int] = []
    for _ in range(m):
        best, best_gain = -1, -np.inf
        for j in range(len(sim)):
            if j in chosen:
                continue
            gain = (1 - alpha) * sum(max(0.0, sim[i, j] - cover[i]) for i in range(len(sim))) + alpha * bonus[j]
            if gain > best_gain:
                best, best_gain = j, gain
        chosen.append(best)
        cover = np.maximum(cover, sim[:, best])
    return chosen


def test_knn_graph_is_exact_knn_in_one_cell_and_stays_within_cells():
    emb = _unit(80, 6, 0)
    graph = knn_graph(emb, n_neighbors=5, cell_size=1000, seed=0)
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    for i in range(80):
        nearest = np.argsort(-sims[i])[:5]
        np.testing.assert_allclose(graph[i, nearest].toarray().ravel(), np.clip(sims[i, nearest], 0, None), rtol=1e-6)
    assert (graph != graph.T).nnz == 0 and np.all(graph.diagonal() == 1)
    assert graph.nnz <= 80 * (2 * 5 + 1)
    cells = knn_graph(_clustered(300, 1), n_neighbors=4, cell_size=60, seed=0)  # 5 k-means cells
    rows, cols = cells.nonzero()
    labels = cell_labels(_clustered(300, 1), 60, seed=0)
    assert labels.max() == 4 and np.all(labels[rows] == labels[cols])


def test_lazy_greedy_equals_plain_greedy_on_the_exact_graph():
    emb = _unit(40, 5, 2)
    graph = knn_graph(emb, n_neighbors=39, cell_size=1000, seed=0)  # every pair: the dense max(0, cos)
    dense = np.clip(emb @ emb.T, 0, None).astype(np.float64)
    np.fill_diagonal(dense, 1.0)
    np.testing.assert_allclose(graph.toarray(), dense, atol=1e-6)
    assert lazy_greedy(graph, 8).tolist() == _plain_greedy(dense, 8, np.zeros(40), 0.0)
    quality = np.random.default_rng(3).random(40) * 5
    assert lazy_greedy(graph, 8, quality, 0.6).tolist() == _plain_greedy(dense, 8, quality, 0.6)
    assert facility_value(graph, lazy_greedy(graph, 8)) == pytest.approx(
        dense[:, _plain_greedy(dense, 8, np.zeros(40), 0)].max(1).mean(), rel=1e-6
    )


@pytest.mark.parametrize(
    "selector", [FacilitySelector(n_neighbors=6, cell_size=100), QditSelector(n_neighbors=6, cell_size=100)]
)
def test_selection_contract_and_degree(selector):
    types = _types(_clustered(400, 4))
    graph = knn_graph(types.embeddings, 6, 100, seed=0)
    values = []
    for level in (0.0, 0.5, 1.0):
        sel = selector.select(types, 30, level, seed=1)
        assert len(sel.indices) == 30 and len(np.unique(sel.indices)) == 30
        assert np.all(np.diff(sel.indices) > 0) and sel.k is None
        assert sel.info["n_greedy"] == round(level * 30)
        np.testing.assert_array_equal(sel.indices, selector.select(types, 30, level, seed=1).indices)
        values.append(facility_value(graph, sel.indices))
    assert values[2] > values[0]  # the pure greedy covers the pool better than random
    with pytest.raises(ValueError, match="n=500"):
        selector.select(types, 500, 1.0, seed=0)


def test_qdit_alpha_and_quality_sources():
    emb = _clustered(200, 5)
    facility = FacilitySelector(n_neighbors=8, cell_size=1000).select(_types(emb), 20, 1.0, seed=0)
    qdit0 = QditSelector(alpha=0.0, n_neighbors=8, cell_size=1000).select(_types(emb), 20, 1.0, seed=0)
    np.testing.assert_array_equal(qdit0.indices, facility.indices)
    scores = np.random.default_rng(6).random(200)
    top = QditSelector(alpha=1.0, quality="meta:reward", n_neighbors=8, cell_size=1000)
    chosen = top.select(_types(emb, {"reward": scores.tolist()}), 20, 1.0, seed=0)
    np.testing.assert_array_equal(chosen.indices, np.sort(np.argsort(-scores)[:20]))
    assert chosen.info["quality_mean_chosen"] > chosen.info["quality_mean_pool"]
    typical = QditSelector(alpha=1.0, n_neighbors=8, cell_size=1000).select(_types(emb), 20, 1.0, seed=0)
    graph = knn_graph(emb, 8, 1000, seed=0)
    np.testing.assert_array_equal(typical.indices, np.sort(np.argsort(-typicality(graph), kind="stable")[:20]))
    with pytest.raises(ValueError, match="no 'reward'"):
        top.select(_types(emb), 20, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"meta\[.reward.\] has \(3,\) values for 200 candidates"):
        top.select(_types(emb, {"reward": [1, 2, 3]}), 20, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"meta\[.reward.\] is not finite at candidates \[7\]"):
        top.select(_types(emb, {"reward": [0.0] * 7 + [math.nan] + [0.0] * 192}), 20, 1.0, seed=0)


def test_qdit_column_quality_is_handed_over_and_checked():
    emb = _clustered(120, 7)
    scores = np.random.default_rng(8).permutation(120).astype(float)
    selector = QditSelector(alpha=1.0, quality="column:reward", n_neighbors=8, cell_size=1000)
    assert selector.pool_columns == ("reward",) and QditSelector().pool_columns == ()
    chosen = selector.with_columns({"reward": scores}).select(_types(emb), 15, 1.0, seed=0)
    np.testing.assert_array_equal(chosen.indices, np.sort(np.argsort(-scores)[:15]))
    assert chosen.info["quality_column"]["selected"]["min"] == np.sort(scores)[-15]
    assert chosen.info["quality_column"]["candidates"] == {"count": 120, "min": 0.0, "max": 119.0, "mean": 59.5}
    mixed = selector.with_columns({"reward": scores}).select(_types(emb), 15, 0.4, seed=0)  # 6 greedy, 9 random
    assert mixed.info["quality_column"]["selected"]["count"] == 15
    with pytest.raises(ValueError, match="no values were handed over"):
        selector.select(_types(emb), 15, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"column 'reward' has \(3,\) values for 120 candidates"):
        selector.with_columns({"reward": np.ones(3)}).select(_types(emb), 15, 1.0, seed=0)
    with pytest.raises(ValueError, match=r"not finite at candidates \[4\]"):
        selector.with_columns({"reward": np.where(np.arange(120) == 4, np.nan, 1.0)}).select(_types(emb), 5, 1.0, 0)
    accepts = QditSelector.CONFIG_RULES["quality"][0]
    assert accepts("column:quality") and accepts("column:scores.reward") and accepts("meta:reward")
    assert not accepts("column:") and not accepts("column: ") and not accepts("quality")


def test_bad_parameters_name_the_field():
    types = _types(_unit(20, 4, 0))
    with pytest.raises(ValueError, match="n_neighbors=0"):
        FacilitySelector(n_neighbors=0).select(types, 5, 1.0, seed=0)
    with pytest.raises(ValueError, match="alpha=1.5"):
        QditSelector(alpha=1.5).select(types, 5, 1.0, seed=0)
    with pytest.raises(ValueError, match="quality='reward'"):
        QditSelector(quality="reward").select(types, 5, 1.0, seed=0)
    with pytest.raises(ValueError, match="needs sample embeddings"):
        FacilitySelector().select(TypeAssignment(sp.csr_matrix((20, 0), dtype=np.uint8), []), 5, 1.0, seed=0)


@pytest.mark.parametrize("name", ["facility", "qdit"])
def test_selector_configs_instantiate_with_their_rules(name):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(ROOT / "conf" / "selector" / f"{name}.yaml")
    selector = instantiate(cfg)
    for key, (accepts, _) in selector.CONFIG_RULES.items():
        assert accepts(cfg[key]), key
    assert len(selector.select(_types(_unit(50, 4, 1)), 10, 1.0, seed=0).indices) == 10


@pytest.mark.slow
@pytest.mark.parametrize("name", ["facility_response", "qdit_response"])
def test_strategies_select_from_real_embeddings(name, tmp_path):
    """The composed strategies embed a real pool (cached), select exactly n, and cover it better than random."""
    from helpers import embedding_strategy

    from core.cache import FeatureCache

    strategy, pool = embedding_strategy(name, 80)
    cache = FeatureCache(tmp_path)
    chosen = strategy.select(pool, n=15, level=1.0, seed=0, cache=cache)
    again = strategy.select(pool, n=15, level=1.0, seed=0, cache=cache)
    assert len(np.unique(chosen.indices)) == 15 and np.array_equal(chosen.indices, again.indices)
    assert chosen.info["strategy"] == name and chosen.info["n_greedy"] == 15
    graph = knn_graph(strategy.types(pool, cache).embeddings, 20, 1200, seed=0)
    randoms = [strategy.select(pool, n=15, level=0.0, seed=s, cache=cache).indices for s in range(5)]
    random_values = [facility_value(graph, r) for r in randoms]
    if name == "facility_response":
        assert facility_value(graph, chosen.indices) > max(random_values)
    else:  # QDIT trades some coverage for quality: above random on average, and above-average quality
        assert facility_value(graph, chosen.indices) > np.mean(random_values)
        assert chosen.info["quality_mean_chosen"] > chosen.info["quality_mean_pool"]
