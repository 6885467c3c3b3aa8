"""The end-of-job summary reads selection.json: k achieved vs target, and warnings for what differs from the ask."""

from __future__ import annotations

from diversity.describe import selection_facts, selection_warnings

FULL = {
    "strategy": "micro_response",
    "k": 180,
    "k_target": 200,
    "k_min": 40,
    "k_max": 400,
    "pool": {"size": 2000, "selectable": 1900, "empty": 3, "too_long": 0, "duplicates": 41, "decontaminated": 7},
    "decontamination": {"total": 7},
    "truncation": {"share_cut": 0.25, "max_length": 256},
    "info": {"n_distinct_k": 4, "n_typeless": 600, "candidate_pool_size": 900},
}


def test_facts_show_target_and_achieved_k_range_and_pool_accounting():
    facts = selection_facts(FULL)
    assert facts["k (achieved / target)"] == "180 / 200"
    assert facts["k range (k_min..k_max)"] == "40..400"
    assert facts["pool (pairs / selectable)"] == "2000 / 1900"
    assert facts["dropped pool rows"] == "empty 3, duplicates 41"
    assert facts["decontaminated (copies of benchmark prompts)"] == "7"


def test_warnings_name_each_problem():
    warnings = selection_warnings(FULL)
    assert len(warnings) == 4
    assert warnings[0] == "achieved k=180 misses the target k=200 (-10.0%)"
    assert warnings[1].startswith("the 7 paper degrees reach only 4 distinct k in 40..400")
    assert warnings[2].startswith("600 of 1900 candidates (32%) carry no micro_response type")
    assert warnings[3].startswith("25% of the subset's samples are cut at data.max_length=256")


def test_older_or_random_selections_degrade_gracefully():
    random = {"strategy": "random", "k": None, "k_min": None, "pool": {"size": 10}, "info": {}}
    assert selection_facts(random) == {"pool (pairs / selectable)": "10 / ?"}
    assert selection_warnings(random) == []
    assert selection_warnings({}) == [] and selection_facts({}) == {}
    close = {**FULL, "k": 199, "truncation": {"share_cut": 0.05}, "info": {"n_distinct_k": 7}}
    assert selection_warnings(close) == []  # within 0.5% of target, all degrees distinct, few cuts


def test_the_summary_shows_every_count_that_can_change_a_study():
    """Untyped candidates, the window's candidates, instruction drift and the per-benchmark split were only in
    selection.json; a decontamination that found nothing was not shown at all."""
    drift = {"mean": 60.0, "mean_drift": -0.01, "reference_mean": 60.6, "ks": 0.04}
    selection = {
        **FULL,
        "decontamination": {"total": 0, "mtbench": 0, "alpaca_eval": 0, "benchmarks": ["alpaca_eval", "mtbench"]},
        "length": {
            "control": {"window": [30, 100], "lock": True},
            "window_candidates": 395,
            "drift": {"response": drift, "instruction": {**drift, "mean": 40.0, "reference_mean": 41.0}},
        },
    }
    facts = selection_facts(selection)
    assert facts["untyped candidates (never selected)"] == "600"
    assert facts["in the 30-100 token window"] == "395 candidates"
    assert facts["response tokens: mean, drift, KS (locked)"] == "60, -1.0% vs 61, 0.040"
    assert facts["instruction tokens: mean, drift, KS"].startswith("40, ")
    assert facts["decontaminated (copies of benchmark prompts)"] == "0 (alpaca_eval 0, mtbench 0)"


def test_meso_selections_say_what_the_tags_became():
    extractor = {"raw_tags_per_sample": 9.79, "tag_min_relevance": 0.3, "distinct_tags": 1400,
                 "types_after_merge": 254, "parent_types": 41}  # fmt: skip
    info = {"n_typeless": 1, "extractor": extractor}  # as Strategy.select writes it
    facts = selection_facts({"strategy": "meso_response", "k": 5, "info": info})
    line = facts["meso tags per sample, distinct tags -> types (+ parents)"]
    assert line == "9.8 at relevance >= 0.3, 1400 -> 254 (+ 41)"
    assert not any(key.startswith("meso") for key in selection_facts(FULL))
