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
    assert sim[4, 5] == pytest.approx(1.0) and sim[0, 4] < 0.5


def test_a_tagger_that_gave_no_type_scores_chance():
    untyped = type_similarity(sp.csr_matrix((6, 0)))  # e.g. an LLM tagger whose replies held no tags: no crash
    assert untyped.shape == (6, 6) and label_auc(untyped, LABELS) == 0.5


def test_labelled_jsonl_errors_name_file_row_and_field(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(ValueError, match=r"set\.jsonl, row 2: field 'label'"):
        load_labelled("jsonl", path)
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": \n')
    with pytest.raises(ValueError, match=r"set\.jsonl, line 2: invalid JSON"):
        load_labelled("jsonl", path)
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n')
    with pytest.raises(ValueError, match=r"set\.jsonl: 2 prompts under 2 labels"):
        load_labelled("jsonl", path)  # no label with two prompts: no AUC
    path.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"}\n{"text": "c", "label": "y"}\n')
    name, texts, labels = load_labelled("jsonl", path)
    assert name == "set.jsonl" and texts == ["a", "b", "c"] and labels.tolist() == ["x", "y", "y"]


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


def test_length_spearman_sees_tags_that_follow_length_and_skips_language_tags():
    from bench_tagger import length_spearman

    texts = ["a" * n for n in (10, 20, 30, 40, 50)]
    growing = [[(f"t{j}", 0.3 + 0.01 * i) for j in range(i + 1)] for i in range(5)]  # more and more relevant tags
    assert length_spearman(texts, growing) == pytest.approx((1.0, 1.0))
    # relevance falls with length; the NaN of a language tag must not turn a row's mean into NaN (dropping it)
    falling = [[("t", 0.5 - 0.01 * i), ("korean", float("nan"))] for i in range(5)]
    assert length_spearman(texts, falling) == pytest.approx((float("nan"), -1.0), nan_ok=True)


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


def _clustered_similarities(rng: np.random.Generator, n_labels: int, sizes: tuple[int, ...], extra_noise: float):
    """Cosine similarities of prompts around their label's centre, and of the same prompts seen more noisily
    (a weaker method); sizes cycle over labels."""
    labels = np.concatenate([[c] * sizes[c % len(sizes)] for c in range(n_labels)])
    x = rng.normal(size=(n_labels, 16))[labels] + rng.normal(size=(len(labels), 16))
    y = x + extra_noise * rng.normal(size=x.shape)
    x, y = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (x, y))
    return labels, x @ x.T, y @ y.T


def _rank_aucs(similarity: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Plainly correct reference: per prompt, the Mann-Whitney U of its mates against its strangers from ranks."""
    from scipy.stats import rankdata

    aucs = np.full(len(labels), np.nan)
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        same = labels[others] == labels[i]
        n_pos, n_neg = int(same.sum()), int((~same).sum())
        if n_pos and n_neg:
            ranks = rankdata(similarity[i, others])
            aucs[i] = (ranks[same].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return aucs


def test_auc_and_its_leave_one_label_out_replicates_match_recomputing_from_ranks():
    from bench_tagger import jackknife_aucs, prompt_aucs

    rng = np.random.default_rng(0)
    labels, sim, _ = _clustered_similarities(rng, 9, (2, 3, 1, 4), 0.0)
    sim = np.round(sim, 1)  # ties, counted half
    np.testing.assert_allclose(prompt_aucs(sim, labels), _rank_aucs(sim, labels))  # NaN for the singletons alike
    full, replicates = jackknife_aucs(sim, labels)
    assert full == pytest.approx(np.nanmean(_rank_aucs(sim, labels)))
    for c, value in zip(np.unique(labels), replicates, strict=True):
        keep = labels != c
        assert value == pytest.approx(np.nanmean(_rank_aucs(sim[np.ix_(keep, keep)], labels[keep])))


def test_gap_interval_is_zero_for_the_same_ranking_and_calibrated_on_simulated_sets():
    from bench_tagger import gap_interval

    rng = np.random.default_rng(1)
    labels, sim, noisy = _clustered_similarities(rng, 30, (2,), 1.0)
    assert gap_interval(sim, 2 * sim + 1, labels) == pytest.approx((0.0, 0.0, 0.0))  # same ranking, same AUC
    # Against a plainly correct reference: over 300 independent sets, the jackknife's standard error must match
    # the spread of the gap itself (measured: 0.97 of it).
    gaps, errors = [], []
    for _ in range(300):
        labels, sim, noisy = _clustered_similarities(rng, 30, (2,), 1.0)
        gap, lower, upper = gap_interval(sim, noisy, labels)
        gaps.append(gap)
        errors.append((upper - lower) / 2 / 2.045)  # t(0.975, 29)
    assert 0.8 <= np.mean(errors) / np.std(gaps) <= 1.25
