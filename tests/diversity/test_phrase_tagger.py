"""PhraseTagger: open-vocabulary candidates, tags only above the relevance threshold (by default on the ranking
score; with admit_on="cosine" on the bare tag-text cosine, bonuses and cue words only ranking), a vocabulary drawn
from the pool, no length bias on the default pool."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diversity.extractors.meso import MesoExtractor
from diversity.taggers import PhraseTagger
from diversity.taggers.phrase import candidate_phrases

POOL = [
    "Write a Python function that reverses a linked list.",
    "Write a Python function to sort a linked list.",
    "How do I read a CSV file in Python?",
    "Give me a recipe for a vegan chocolate cake.",
    "What can I bake with chocolate and bananas? A vegan cake recipe please.",
    "Plan a three-day trip to Lisbon on a budget.",
    "Plan a weekend trip to Lisbon with kids.",
    "Continue",
    "Continue",
    "nginx configuration of rewrite url",
    "여행 계획을 세워 주세요. 서울에서 부산까지 가는 가장 좋은 방법은?",
    "",
]


def test_candidate_phrases_give_keyphrases_and_verb_object_phrases():
    found = candidate_phrases("Write a Python function that reverses a linked list, please!")
    assert ("python", "function") in found and ("linked", "list") in found
    assert ("write", "python", "function") in found and ("reverses", "linked", "list") in found  # across "a"
    assert not any(w in {"a", "that", "please"} for phrase in found for w in phrase)  # stop words split runs
    assert ("function", "reverses") not in found  # "that" is no bridge between a noun and its clause
    assert candidate_phrases("Continue") == [("continue",)] and candidate_phrases("!!") == []


@pytest.fixture(scope="module")
def tagged():
    tagger = PhraseTagger(progress=False)
    return tagger, tagger.tag_with_scores(POOL)


def test_tags_are_relevant_shared_and_never_forced(tagged):
    tagger, rows = tagged
    tags = [[t for t, _ in row] for row in rows]
    scores = [s for row in rows for _, s in row if not math.isnan(s)]
    assert min(scores) >= tagger.min_relevance  # nothing below the threshold is kept
    assert all(len(row) <= tagger.max_tags + 1 for row in tags)  # + a language tag
    assert tags[-1] == []  # empty text: untyped, not forced
    assert tags[7] == tags[8] and tags[7][0] == "continuation request"  # an intent no word of the text names
    assert tags[10] == ["korean language"]  # MiniLM cannot judge Hangul: no tags from noise similarities
    # a vocabulary drawn from the pool: phrases two texts share become tags of both
    assert "linked list" in set(tags[0]) & set(tags[1]) and len(set(tags[0]) & set(tags[1])) >= 3
    assert {"lisbon"} <= set(tags[5]) & set(tags[6])


def test_admit_on_cosine_keeps_only_tags_whose_bare_cosine_passes():
    """Issue 22 audit: with admit_on="cosine" the kept share below the threshold is 0 by construction, because
    the recorded relevance is cos(embed(window), embed(tag name)) recomputed here, without bonus or cue."""
    from diversity.embeddings import embed
    from diversity.taggers.window import embedding_windows

    tagger = PhraseTagger(progress=False, admit_on="cosine")
    rows = tagger.tag_with_scores(POOL)
    pairs = [(i, tag, score) for i, row in enumerate(rows) for tag, score in row if not math.isnan(score)]
    windows = embedding_windows(POOL, tagger.embedder, tagger.max_seq_length)
    text_vectors = embed(windows, tagger.embedder, 64, tagger.max_seq_length + 2, progress=False)
    names = sorted({tag for _, tag, _ in pairs})
    tag_vectors = dict(zip(names, embed(names, tagger.embedder, 64, 32, progress=False), strict=True))
    cosines = np.array([text_vectors[i] @ tag_vectors[tag] for i, tag, _ in pairs])
    np.testing.assert_allclose([score for *_, score in pairs], cosines, atol=1e-3)
    assert np.mean(cosines < tagger.min_relevance) == 0.0


def test_with_admit_on_cosine_a_cue_word_or_the_lexical_bonus_never_admits_a_tag():
    """A cue ranks an intent but cannot admit it: "spring" is a cue of "java programming", and on a gardening
    text that cue scores 0.47 while the tag itself scores 0.04 (the audit found this tag there; the default,
    admit_on="score", keeps it, which benchmarks/README.md states)."""
    garden = "Spring is an excellent time to plant native plants in your garden. Choose perennials for your soil."
    texts = [garden, "Plant tomatoes in spring, in a sunny garden.", "What is having a garden like? Tell me later."]
    default = PhraseTagger(progress=False).tag_with_scores(texts)
    assert "java programming" in {t for t, _ in default[0]}  # the score rule admits it on its cue
    tagger = PhraseTagger(progress=False, admit_on="cosine")
    rows = tagger.tag_with_scores(texts)
    assert all("java programming" not in {t for t, _ in row} for row in rows)
    assert all(score >= tagger.min_relevance for row in rows for _, score in row)
    # the cue case is really exercised: ranked by its cue the intent would pass, by its name it does not
    from diversity.embeddings import embed
    from diversity.taggers.window import embedding_windows

    vectors = embed(embedding_windows(texts[:1], tagger.embedder, 64), tagger.embedder, 64, 66, progress=False)
    names, relevance, rank = tagger._intent_scores(vectors)
    j = names.index("java programming")
    assert rank[0, j] >= tagger.min_relevance > relevance[0, j]
    # a word found in the window ("garden", "having", "later") ranks higher but is kept only on its own cosine
    boosted = PhraseTagger(progress=False, lexical_bonus=5.0, admit_on="cosine").tag_with_scores(texts)
    assert all(score >= tagger.min_relevance for row in boosted for _, score in row)


def test_pool_vocabulary_excludes_one_off_phrases(tagged):
    _, rows = tagged
    phrases = {t for row in rows for t, _ in row}
    assert "csv file" not in phrases  # occurs in one text only: below min_df, never a candidate
    assert PhraseTagger(min_df=1, intents=False, progress=False).tag(POOL[:3])[2]  # min_df=1 admits it
    two = PhraseTagger(intents=False, progress=False).tag(["Write a poem", "write a poem about cats"])
    assert "write poem" in two[0] and "write poem" in two[1]  # in 2 of 2 texts: max_df must not drop it


def test_meso_extractor_records_threshold_and_untyped(tagged):
    tagger, rows = tagged
    types = MesoExtractor(tagger=tagger, progress=False).fit_tags([[t for t, _ in row] for row in rows])
    assert types.meta["tag_min_relevance"] == tagger.min_relevance
    assert types.meta["tagger"] == "PhraseTagger"
    assert types.meta["n_samples_without_type"] == int((types.types_per_sample() == 0).sum()) >= 1


def test_cache_key_and_bad_parameters():
    assert PhraseTagger().cache_key() != PhraseTagger(min_relevance=0.4).cache_key()
    assert PhraseTagger().cache_key() != PhraseTagger(admit_on="cosine").cache_key()
    with pytest.raises(ValueError, match="admit_on"):
        PhraseTagger(admit_on="bonus")
    with pytest.raises(ValueError, match="max_df"):
        PhraseTagger(max_df=0)
    with pytest.raises(ValueError, match="min_df"):
        PhraseTagger(min_df=0)


@pytest.mark.slow
def test_default_pool_tags_relevant_and_not_length_biased(default_response_tags):
    """Issue 22: the number of tags and their mean relevance must not follow response length (|rho| <= 0.1);
    the old tagger scanned whole responses for cue words and gave long ones ~3x the bonus."""
    from scipy.stats import spearmanr

    texts, rows = default_response_tags
    length = np.array([len(t) for t in texts])
    n_tags = np.array([len(r) for r in rows])
    scored = [[s for _, s in r if not math.isnan(s)] for r in rows]
    relevance = np.array([np.mean(s) if s else np.nan for s in scored])
    has = ~np.isnan(relevance)
    rho_n, rho_rel = spearmanr(n_tags, length)[0], spearmanr(relevance[has], length[has])[0]
    print(f"rho(n_tags, length) {rho_n:.3f}, rho(relevance, length) {rho_rel:.3f}, {n_tags.mean():.2f} tags/sample")
    assert abs(rho_n) <= 0.1 and abs(rho_rel) <= 0.1
    assert min(s for row in scored for s in row) >= 0.3
    assert (n_tags == 0).mean() <= 0.05  # untyped: counted, and rare
