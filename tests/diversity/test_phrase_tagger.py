"""PhraseTagger: open-vocabulary candidates, tags only above the relevance threshold (the baseline-corrected
cosine of window and tag; bonuses only rank, cue words count only in their tag's context), phrases shared by
relevance, no length bias on the default pool."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from diversity.extractors.meso import MesoExtractor
from diversity.taggers import PhraseTagger
from diversity.taggers.candidates import candidate_phrases

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

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
    assert tags[7] == tags[8] and "continuation request" in tags[7]  # an intent no word of the text names
    assert tags[10] == ["korean language"]  # MiniLM cannot judge Hangul: no tags from noise similarities
    # a vocabulary drawn from the pool: phrases two texts share become tags of both
    assert "linked list" in set(tags[0]) & set(tags[1]) and len(set(tags[0]) & set(tags[1])) >= 3
    assert {"lisbon"} <= set(tags[5]) & set(tags[6])


def _bare_cosines(tagger: PhraseTagger, texts: list[str], tags: list[str]) -> np.ndarray:
    """cos(embed(window of text i), embed(tag j)), recomputed outside the tagger."""
    from diversity.embeddings import embed
    from diversity.taggers.window import embedding_windows

    windows = embedding_windows(texts, tagger.embedder, tagger.max_seq_length)
    text_vectors = embed(windows, tagger.embedder, 64, tagger.max_seq_length + 2, progress=False)
    return text_vectors @ embed(tags, tagger.embedder, 64, 32, progress=False).T


def test_without_baseline_correction_a_phrase_is_kept_on_its_bare_cosine():
    """Issue 22 audit: the recorded relevance of a phrase is cos(window, phrase) recomputed here, with no bonus;
    with the baseline correction it is that cosine shifted by one constant per text (order within a text kept)."""
    plain = PhraseTagger(progress=False, intents=False, baseline_weight=0.0, lexical_bonus=5.0)
    rows = plain.tag_with_scores(POOL)
    pairs = [(i, tag, score) for i, row in enumerate(rows) for tag, score in row if not math.isnan(score)]
    names = sorted({tag for _, tag, _ in pairs})
    cosines = _bare_cosines(plain, POOL, names)
    bare = np.array([cosines[i, names.index(tag)] for i, tag, _ in pairs])
    np.testing.assert_allclose([score for *_, score in pairs], bare, atol=1e-3)
    assert bare.min() >= plain.min_relevance  # a word of the text with a huge bonus is still kept on its cosine
    corrected = PhraseTagger(progress=False, intents=False).tag_with_scores(POOL)
    for i, row in enumerate(corrected):
        shifts = {round(float(cosines[i, names.index(t)]) - s, 4) for t, s in row if t in names}
        assert len(shifts) <= 1  # one shift per text: the correction never reorders a text's tags


def test_a_bare_cue_word_never_admits_an_intent():
    """ "spring" is a cue of "java programming": bare, it scores 0.47 on a gardening text while the tag scores
    0.04 (the audit found this tag there). Described in context ("java programming: spring") it does not pass;
    the pre-audit rule (phrase_lexical: admit_on="score", bare cues) keeps it."""
    garden = "Spring is an excellent time to plant native plants in your garden. Choose perennials for your soil."
    texts = [garden, "Plant tomatoes in spring, in a sunny garden.", "What is having a garden like? Tell me later."]
    from bench_tagger import build_tagger  # conf/tagger/phrase_lexical.yaml, as a study would compose it

    assert "java programming" in {t for t, _ in build_tagger("phrase_lexical", {}).tag_with_scores(texts)[0]}
    tagger = PhraseTagger(progress=False)
    rows = tagger.tag_with_scores(texts)
    assert all("java programming" not in {t for t, _ in row} for row in rows)
    assert all(score >= tagger.min_relevance for row in rows for _, score in row)
    from diversity.embeddings import embed
    from diversity.taggers.window import embedding_windows

    vectors = embed(embedding_windows(texts[:1], tagger.embedder, 64), tagger.embedder, 64, 66, progress=False)
    names, relevance, _ = tagger._intent_scores(vectors)
    _, _, bare_cue_rank = PhraseTagger(progress=False, cue_context=False)._intent_scores(vectors)
    j = names.index("java programming")
    assert bare_cue_rank[0, j] >= tagger.min_relevance > relevance[0, j]  # the cue case is really exercised


def test_a_phrase_relevant_to_one_text_only_is_never_a_tag(tagged):
    _, rows = tagged
    phrases = {t for row in rows for t, _ in row}
    assert not {"csv", "read csv file"} & phrases  # relevant to one text only: below min_support
    assert {"csv", "read csv file"} <= set(PhraseTagger(min_support=1, intents=False, progress=False).tag(POOL)[2])
    two = PhraseTagger(intents=False, progress=False).tag(["Write a poem", "write a poem about cats"])
    assert "write poem" in two[0] and "write poem" in two[1]  # in 2 of 2 texts: max_df must not drop it


def test_the_baseline_correction_evens_out_short_and_long_texts():
    """MiniLM gives a short text higher cosines to every tag; the correction takes part of that off, so a short
    text gets no more tags than a long one of the same topic for being short."""
    short = ["Python list sort.", "Bake bread.", "Lisbon trip.", "Chess openings.", "Tax forms."]
    long = [
        "I have a Python list of dictionaries and I want to sort it by two keys, first by date and then by name, "
        "but the dates are strings in different formats; what is the cleanest way to do this?",
        "My sourdough bread keeps coming out dense and flat even though the starter bubbles well; I bake at 230 "
        "degrees in a Dutch oven. What should I change in the proofing or the shaping?",
        "We are planning a four-day trip to Lisbon in March with two teenagers who like history and food; "
        "which neighbourhoods should we stay in and what day trips are worth it?",
    ]
    pool = short + long
    plain = PhraseTagger(progress=False, baseline_weight=0.0).tag_with_scores(pool)
    corrected = PhraseTagger(progress=False).tag_with_scores(pool)
    gap = [np.mean([len(r) for r in rows[: len(short)]]) - np.mean([len(r) for r in rows[len(short) :]])
           for rows in (plain, corrected)]  # fmt: skip
    assert gap[1] < gap[0]


def test_meso_extractor_records_threshold_and_untyped(tagged):
    tagger, rows = tagged
    types = MesoExtractor(tagger=tagger, progress=False).fit_tags([[t for t, _ in row] for row in rows])
    assert types.meta["tag_min_relevance"] == tagger.min_relevance
    assert types.meta["tag_relevance_rule"] == tagger.relevance_rule and ">= 0.3" in tagger.relevance_rule
    assert types.meta["tagger"] == "PhraseTagger"
    assert types.meta["n_samples_without_type"] == int((types.types_per_sample() == 0).sum()) >= 1


def test_cache_key_and_bad_parameters():
    for change in ({"min_relevance": 0.4}, {"admit_on": "score"}, {"min_support": 1}, {"baseline_weight": 0.0},
                   {"cue_context": False}):  # fmt: skip
        assert PhraseTagger().cache_key() != PhraseTagger(**change).cache_key()
    assert PhraseTagger().cache_key() == PhraseTagger(block=7).cache_key()  # blocks change no tag
    with pytest.raises(ValueError, match="admit_on"):
        PhraseTagger(admit_on="bonus")
    with pytest.raises(ValueError, match="max_df"):
        PhraseTagger(max_df=0)
    with pytest.raises(ValueError, match="min_df"):
        PhraseTagger(min_df=0)
    with pytest.raises(ValueError, match="baseline_weight"):
        PhraseTagger(baseline_weight=1.5)


def test_blocks_change_no_tag():
    assert PhraseTagger(progress=False).tag(POOL) == PhraseTagger(progress=False, block=3).tag(POOL)


@pytest.mark.slow
def test_default_pool_tags_relevant_and_not_length_biased(default_response_tags):
    """Issue 22: the number of tags and their mean relevance must not follow response length (|rho| <= 0.1);
    the old tagger scanned whole responses for cue words and gave long ones ~3x the bonus."""
    from bench_tagger import length_spearman  # the benchmark's figure, computed once for both

    texts, rows = default_response_tags
    n_tags = np.array([len(r) for r in rows])
    scored = [[s for _, s in r if not math.isnan(s)] for r in rows]
    rho_n, rho_rel = length_spearman(texts, rows)
    print(f"rho(n_tags, length) {rho_n:.3f}, rho(relevance, length) {rho_rel:.3f}, {n_tags.mean():.2f} tags/sample")
    assert abs(rho_n) <= 0.1 and abs(rho_rel) <= 0.1
    assert min(s for row in scored for s in row) >= 0.3
    assert (n_tags == 0).mean() <= 0.05  # untyped: counted, and rare
