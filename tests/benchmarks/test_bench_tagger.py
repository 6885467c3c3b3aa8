"""benchmarks/bench_tagger.py scoring: AUC and retrieval@5 on similarity matrices whose answers are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_tagger import label_auc, load_labelled, retrieval_at, type_similarity  # noqa: E402

LABELS = np.array(["a", "a", "b", "b", "c", "c"])


def test_perfect_chance_and_tied_similarities():
    perfect = (LABELS[:, None] == LABELS[None, :]).astype(float)
    assert label_auc(perfect, LABELS) == 1.0 and retrieval_at(perfect, LABELS) == 1.0
    assert label_auc(np.zeros((6, 6)), LABELS) == 0.5  # all ties count half: no tags is chance, not failure
    assert label_auc(1 - perfect, LABELS) == 0.0


def test_type_similarity_weights_rare_shared_types_more():
    # samples 0,1 share a rare type; 2,3 share a type everyone else carries too
    rows = [[0, 1], [0, 1], [1, 2], [1, 2], [1], [1]]
    matrix = sp.csr_matrix((np.ones(sum(map(len, rows))), np.concatenate(rows), np.cumsum([0, *map(len, rows)])))
    sim = type_similarity(matrix)
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 2] < sim[2, 3]
    untyped = type_similarity(sp.csr_matrix((6, 0)))  # a tagger that gave no type at all scores chance, not a crash
    assert untyped.shape == (6, 6) and label_auc(untyped, LABELS) == 0.5
    assert sim[4, 5] == pytest.approx(1.0) and sim[0, 4] < 0.5


def test_labelled_jsonl_errors_name_file_row_and_field(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(ValueError, match=r"set\.jsonl, row 2: field 'label'"):
        load_labelled("jsonl", path)
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(ValueError, match=r"set\.jsonl, line 2: invalid JSON"):
        load_labelled("jsonl", path)
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n')
    name, texts, labels = load_labelled("jsonl", path)
    assert name == "set.jsonl" and texts == ["a", "b"] and labels.tolist() == ["x", "y"]


def test_low_cosine_share_is_issue_22s_audit_and_leaves_language_tags_out():
    from bench_tagger import low_cosine_share

    texts = ["Write a Python function that reverses a linked list.", "Give me a recipe for a vegan chocolate cake."]
    tags = [["python programming", "accounting", "korean language"], ["vegan chocolate cake"]]
    assert low_cosine_share(texts, tags, 64) == (pytest.approx(1 / 3), pytest.approx(1 / 3))  # only "accounting"


def test_a_tagger_file_may_extend_another():
    from bench_tagger import build_tagger

    lexical, default = build_tagger("phrase_lexical", {}), build_tagger("phrase", {"max_tags": "12"})
    assert (lexical.admit_on, lexical.min_df, lexical.max_tags, lexical.progress) == ("score", 2, 10, False)
    assert lexical.embedder == default.embedder and default.max_tags == 12 and default.admit_on == "cosine"


def test_length_spearman_sees_tags_that_follow_length():
    from bench_tagger import length_spearman

    texts = ["a" * n for n in (10, 20, 30, 40, 50)]
    growing = [[(f"t{j}", 0.3 + 0.01 * i) for j in range(i + 1)] for i in range(5)]  # more and more relevant tags
    assert length_spearman(texts, growing) == pytest.approx((1.0, 1.0))
    flat = [[("t", 0.4), ("language", float("nan"))][: 1 + i % 2] for i in range(5)]  # NaN language tags ignored
    rho_tags, rho_relevance = length_spearman(texts, flat)
    assert abs(rho_tags) < 0.5 and np.isnan(rho_relevance)  # constant relevance: no correlation defined


def test_oracle_vocabulary_adds_label_names_once(tmp_path):
    from bench_tagger import oracle_vocabulary

    from diversity.taggers.intent import load_vocabulary

    packaged = {tag for tag, _ in load_vocabulary()}
    path = oracle_vocabulary(np.array(["SQL | Databases", "sql / databases", "Kite Flying", "role play"]), tmp_path)
    added = [tag for tag, _ in load_vocabulary(path) if tag not in packaged]
    assert added == ["kite flying", "sql / databases"]  # "|" kept out of the tag, duplicates and known ones once


def test_overlap_shares_count_isolated_prompts_and_strangers():
    from bench_tagger import overlap_shares

    sim = np.zeros((6, 6))
    sim[0, 1] = sim[1, 0] = 1.0  # pair a shares a type; pairs b and c share none
    sim[2, 4] = sim[4, 2] = 0.5  # one stranger pair shares a type
    shares = overlap_shares(sim, LABELS)
    assert shares["isolated"] == pytest.approx(4 / 6)
    assert shares["strangers>0"] == pytest.approx(2 / (6 * 4))


def test_gap_interval_is_exact_on_constant_gaps_and_covers_the_truth_at_its_level():
    from bench_tagger import gap_interval

    labels = np.repeat(np.arange(40), 2)
    aucs = np.linspace(0.5, 1.0, 80)
    assert gap_interval(aucs, aucs - 0.1, labels) == pytest.approx((0.1, 0.1, 0.1))
    # clusters share a random effect: the interval must resample clusters, not prompts, to keep its 95%
    rng, truth, covered = np.random.default_rng(1), 0.07, 0
    for _ in range(200):
        effect = rng.normal(0, 0.05, 40)[labels] + rng.normal(0, 0.01, 80)
        _, low, high = gap_interval(aucs + truth + effect, aucs, labels, n_boot=1000, seed=int(rng.integers(1 << 30)))
        covered += low <= truth <= high
    assert 0.88 <= covered / 200 <= 0.99
