"""Judge-free scorers, generation and the `evaluate` runner, on the real SmolLM2 with tiny sizes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.generate import generate, load_jsonl
from evaluation.runner import build_scorers, evaluate
from evaluation.scorers.base import EvalContext
from evaluation.scorers.generation_stats import distinct_n
from evaluation.scorers.ifbench import IFBenchScorer, check_item, load_registry, loose_variants
from evaluation.scorers.reference_loss import reference_nll

CONF = Path(__file__).resolve().parents[2] / "conf"


def _eval_config(name: str, overrides: list[str] | None = None):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(f"eval/{name}", overrides=overrides or []).eval


def test_distinct_n_counts_corpus_level_ngrams():
    texts = ["the cat sat", "the cat ran!"]
    assert distinct_n(texts, 1) == pytest.approx(5 / 7)  # the cat sat ran ! over 7 words
    assert distinct_n(texts, 2) == pytest.approx(4 / 5)  # "the cat" repeats
    assert distinct_n([""], 2) == 0.0


def test_ifbench_checkers_run_offline():
    registry = load_registry()
    rule, kwargs = ["count:numbers"], [{"N": 3, "keyword": None}]
    assert check_item(registry, "p", rule, kwargs, "I have 1 cat, 2 dogs and 3 fish.") == [True]
    assert check_item(registry, "p", rule, kwargs, "I have 1 cat.") == [False]
    assert check_item(registry, "p", rule, kwargs, "   ") == [False]
    # Sentence-based rules use the offline splitter (no NLTK download).
    assert check_item(registry, "p", ["sentence:keyword"], [{"word": "apple", "N": 2}], "One. An apple now.") == [True]


def test_ifbench_loose_variants_follow_ifeval():
    registry = load_registry()
    answer = "Intro with 4 items.\nI have 1 cat, 2 dogs and 3 fish."
    assert check_item(registry, "p", ["count:numbers"], [{"N": 3}], answer) == [False]
    assert check_item(registry, "p", ["count:numbers"], [{"N": 3}], answer, loose=True) == [True]
    assert loose_variants("*a*\nb\nc") == ["*a*\nb\nc", "b\nc", "*a*\nb", "b", "a\nb\nc", "b\nc", "a\nb", "b"]


def test_ifbench_counts_checker_errors_as_failures(tmp_path):
    """words:start_verb needs a part-of-speech tagger, which is missing offline: that prompt fails, not vanishes."""
    rows = [
        {"key": 1, "prompt": "Give 3 numbers.", "instruction_id_list": ["count:numbers"], "kwargs": [{"N": 3}]},
        {"key": 2, "prompt": "Start with a verb.", "instruction_id_list": ["words:start_verb"], "kwargs": [{}]},
        {
            "key": 3,
            "prompt": "Both.",
            "instruction_id_list": ["count:numbers", "words:start_verb"],
            "kwargs": [{"N": 3}, {}],
        },
    ]
    source = tmp_path / "ifbench.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    ctx = EvalContext(model=None, tokenizer=None, run_dir=tmp_path, benchmarks={})
    scorer = IFBenchScorer(limit=None, source=str(source))
    ctx.items("ifbench", source=str(source), limit=None)
    ctx._generations["ifbench"] = ["1, 2 and 3.", "Run!", "Intro 9.\n1, 2 and 3."]  # answers already generated
    scores = scorer.score(ctx)
    assert scores["eval/ifbench/n"] == 3 and scores["eval/ifbench/n_instructions"] == 4
    assert scores["eval/ifbench/checker_errors"] == 2
    assert scores["eval/ifbench/prompt_accuracy"] == pytest.approx(1 / 3)  # the errored prompts count as failed
    assert scores["eval/ifbench/instruction_accuracy"] == pytest.approx(1 / 4)
    assert scores["eval/ifbench/instruction_accuracy_loose"] == pytest.approx(2 / 4)  # item 3 without line 1
    assert scores["eval/ifbench/prompt_accuracy_loose"] == pytest.approx(1 / 3)
    assert math.isnan(scores["eval/ifbench/hit_cap"])  # not generated here


def test_configs_build_the_documented_scorers():
    assert [s.name for s in build_scorers(_eval_config("offline"))] == [
        "reference_loss",
        "generation_stats",
        "ifbench",
        "lm_eval",
    ]
    paper = build_scorers(_eval_config("paper"))
    assert [s.name for s in paper] == ["reference_loss", "generation_stats", "pairwise", "lm_eval"]
    assert build_scorers(_eval_config("offline", ["eval.ifbench.enabled=false", "eval.lm_eval=null"]))[-1].name == (
        "generation_stats"
    )
    assert evaluate(_eval_config("none"), None, None, "unused") == ({}, {})
    with pytest.raises(ValueError, match="unknown keys"):
        build_scorers({"judge": {}})


@pytest.mark.slow
def test_generate_is_greedy_deterministic_and_capped(eval_model_and_tokenizer):
    model, tokenizer = eval_model_and_tokenizer
    prompts = ["What is 2 + 2?", "Name a fruit.", "Say hello in French, please, in one word."]
    side = tokenizer.padding_side
    first = generate(model, tokenizer, prompts, max_new_tokens=8, batch_size=2, progress=False)
    assert first == generate(model, tokenizer, prompts, max_new_tokens=8, batch_size=2, progress=False)
    assert all(0 < len(tokenizer(a, add_special_tokens=False)["input_ids"]) <= 8 for a in first)
    assert tokenizer.padding_side == side  # left padding only during generation


@pytest.mark.slow
def test_reference_loss_prefers_fluent_answers(eval_model_and_tokenizer):
    model, tokenizer = eval_model_and_tokenizer
    prompt = "What is the capital of France?"
    fluent = "The capital of France is Paris."
    scrambled = "Paris France capital the is of The."
    sums, counts = reference_nll(model, tokenizer, [prompt, prompt], [fluent, scrambled], 2, 256)
    assert counts[0] == len(tokenizer(fluent + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
    assert sums[0] / counts[0] < sums[1] / counts[1]
    # Padding in a batch does not change a row's loss.
    single, _ = reference_nll(model, tokenizer, [prompt], [fluent], 1, 256)
    assert single[0] == pytest.approx(sums[0], rel=1e-4)


@pytest.mark.slow
def test_evaluate_offline_default_end_to_end(eval_model_and_tokenizer, tmp_path):
    model, tokenizer = eval_model_and_tokenizer
    custom = tmp_path / "mine.jsonl"
    custom.write_text(
        json.dumps({"instruction": "Say hello.", "output": "Hello!"})
        + "\n"
        + json.dumps({"instruction": "Write a long story about a dragon.", "output": "Once upon a time..."})
        + "\n"
    )
    cfg = _eval_config(
        "offline",
        [
            "eval.benchmarks.mtbench.limit=2",
            "eval.generation.max_new_tokens=12",
            "eval.ifbench.limit=2",
            "eval.generation_stats.embedder=null",
            f"+eval.benchmarks.custom={{source: '{custom}', fields: {{prompt: instruction, reference: output}}}}",
        ],
    )
    scores, tables = evaluate(cfg, model, tokenizer, tmp_path, progress=False)
    for key in (
        "eval/reference_loss/mtbench_loss",
        "eval/generation_stats/mtbench_mean_length",
        "eval/generation_stats/mtbench_distinct_2",
        "eval/ifbench/prompt_accuracy",
        "eval/ifbench/prompt_accuracy_loose",
        "eval/reference_loss/custom_loss",
        "eval/generation_stats/custom_mean_length",
    ):
        assert key in scores, key
    assert 0 < scores["eval/reference_loss/mtbench_loss"] < 10
    assert 0 < scores["eval/generation_stats/mtbench_mean_length"] <= 12
    assert "eval/generation_stats/mtbench_similarity" not in scores
    # A story in 12 tokens is cut: the cap shows; the share is counted from the generated token counts.
    rows = load_jsonl(tmp_path / "generations" / "custom.jsonl")
    assert rows[1]["tokens"] == 12 and scores["eval/generation_stats/custom_hit_cap"] >= 0.5
    assert (
        scores["eval/ifbench/hit_cap"]
        == sum(r["tokens"] >= 12 for r in load_jsonl(tmp_path / "generations" / "ifbench.jsonl")) / 2
    )
    rows = load_jsonl(tmp_path / "generations" / "mtbench.jsonl")
    assert len(rows) == 2 and all(r["generation"] and r["reference"] for r in rows)
    assert len(load_jsonl(tmp_path / "generations" / "ifbench.jsonl")) == 2
    assert {"prompt", "generation", "reference", "reference_nll", "length"} <= set(tables["mtbench"][0])
    assert not model.training
