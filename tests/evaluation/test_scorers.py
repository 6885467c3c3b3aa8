"""Judge-free scorers, generation and the `evaluate` runner, on the real SmolLM2 with tiny sizes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from core.generate import generate
from core.jsonl import load_jsonl
from evaluation.runner import build_scorers, evaluate
from evaluation.scorers.base import EvalContext
from evaluation.scorers.generation_stats import distinct_n
from evaluation.scorers.ifbench import IFBenchScorer, check_item, load_registry, loose_variants
from evaluation.scorers.reference_loss import ReferenceLossScorer, encode_references, reference_nll

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
    full, _ = reference_nll(model, tokenizer, [prompt, prompt], [fluent, scrambled], 2, 256)
    assert full[0][0] / full[0][1] < full[1][0] / full[1][1]
    # Padding in a batch does not change a row's loss.
    single, _ = reference_nll(model, tokenizer, [prompt], [fluent], 1, 256)
    assert single[0][0] == pytest.approx(full[0][0], rel=1e-4)


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir):
    """The tiny random Llama with SmolLM2's tokenizer and chat template (fast stand-in for the real model)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()


def _closing(tokenizer) -> list[int]:
    from core.prompting import encode_template, render_segments

    return encode_template(tokenizer, render_segments(tokenizer)[4])


def test_a_literal_end_token_in_a_reference_is_scored_as_text(tokenizer):
    """A reference quoting `<|im_end|>` must not end the turn early: inside the answer it is plain text, and the
    answer ends with the template's closing text, as in training."""
    end_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    full, head, _ = encode_references(
        tokenizer, ["Which token ends a turn?"], ["It is <|im_end|>, literally."], 256, 128
    )
    labels = [x for x in full[0]["labels"] if x != -100]
    closing = _closing(tokenizer)
    assert labels[-len(closing) :] == closing and closing[0] == end_id
    assert end_id not in labels[: -len(closing)]  # the quoted token is text
    assert tokenizer.eos_token_id not in labels[: -len(closing)] or tokenizer.eos_token_id == end_id
    assert head[0] == len(labels) - len(closing)  # the no-end variant: the answer without its closing text


def test_reference_score_equals_the_training_loss_on_the_same_pair(tiny_lm, tokenizer):
    import torch

    from training.loss import response_loss
    from training.tokenization import PadCollator, encode_pair

    prompt, reference = "Name a prime number.", "Seven is prime <|im_end|> and so is 11."
    full, _ = reference_nll(tiny_lm, tokenizer, [prompt, "Hi"], [reference, "Hello there, my friend."], 2, 64)
    nll, n = full[0]  # batched with a longer pair: padded, as in training
    batch = PadCollator(tokenizer.pad_token_id)([encode_pair(tokenizer, prompt, reference, 64)])
    with torch.no_grad():
        total, count = response_loss(tiny_lm, batch)
    assert n == int(count) and nll == pytest.approx(float(total), rel=1e-5)


def test_the_first_tokens_view_equals_scoring_the_cut_answer(tiny_lm, tokenizer):
    """The first-m view is read off the full pass; it equals the training loss of the pair cut after m answer
    tokens (no closing text), and excludes the end token."""
    import torch

    from training.loss import response_loss
    from training.tokenization import PadCollator, encode_pair

    prompt, reference = "Count.", " ".join(str(i) for i in range(1, 30))
    full, head = reference_nll(tiny_lm, tokenizer, [prompt, "Hi"], [reference, "Yo"], 2, 256, first_tokens=8)
    pair = encode_pair(tokenizer, prompt, reference, 256)
    start = next(i for i, x in enumerate(pair["labels"]) if x != -100)
    cut = {k: v[: start + 8] for k, v in pair.items()}
    with torch.no_grad():
        total, count = response_loss(tiny_lm, PadCollator(tokenizer.pad_token_id)([cut]))
    assert head[0][1] == int(count) == 8 and head[0][0] == pytest.approx(float(total), rel=1e-5)
    short = len(tokenizer("Yo", add_special_tokens=False)["input_ids"])
    assert head[1][1] == short == full[1][1] - len(_closing(tokenizer))  # shorter than m: all but the closing


def test_reference_scorer_item_mean_first_tokens_and_items_file(tiny_lm, tokenizer, tmp_path):
    """Every reference weighs the same in `_loss` (differs from the token-weighted mean on a short and a long
    reference); `_loss_first<m>` covers at most m tokens and no end token; the items file keeps each one."""
    source = tmp_path / "refs.jsonl"
    refs = [
        {"prompt": "Say hi.", "reference": "Hi!"},
        {"prompt": "Count to forty.", "reference": " ".join(str(i) for i in range(1, 41))},
        {"prompt": "No reference here."},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in refs))
    ctx = EvalContext(
        model=tiny_lm, tokenizer=tokenizer, run_dir=tmp_path, benchmarks={"custom": {"source": str(source)}}
    )
    scores = ReferenceLossScorer(batch_size=2, max_length=256, first_tokens=16).score(ctx)
    rows = load_jsonl(tmp_path / "scores" / "reference_items.jsonl")
    assert [r["id"] for r in rows] == [item.id for item in ctx.all_items("custom") if item.reference]
    closing = len(_closing(tokenizer))
    answer = [len(tokenizer(r["reference"], add_special_tokens=False)["input_ids"]) for r in refs[:2]]
    assert [r["tokens"] for r in rows] == [n + closing for n in answer]
    assert [r["tokens_first16"] for r in rows] == [min(16, n) for n in answer]
    item_mean = sum(r["nll"] / r["tokens"] for r in rows) / 2
    token_mean = sum(r["nll"] for r in rows) / sum(r["tokens"] for r in rows)
    assert scores["eval/reference_loss/custom_loss"] == pytest.approx(item_mean)
    assert scores["eval/reference_loss/custom_loss_token_weighted"] == pytest.approx(token_mean)
    assert abs(item_mean - token_mean) > 1e-3
    assert scores["eval/reference_loss/custom_loss_first16"] == pytest.approx(
        sum(r["nll_first16"] / r["tokens_first16"] for r in rows) / 2
    )
    assert scores["counts/reference_loss/custom_items"] == 2 and scores["counts/reference_loss/custom_cut"] == 0
    assert ctx.rows["custom"][rows[0]["id"]]["reference_tokens"] == rows[0]["tokens"]


def test_reference_loss_scores_every_mtbench_reference_by_default(tokenizer, tmp_path):
    """The benchmark's `limit` sizes generation only: reference loss reads all 30 MT-Bench references."""
    ctx = EvalContext(
        model=None, tokenizer=None, run_dir=tmp_path, benchmarks={"mtbench": {"limit": 4, "require_reference": True}}
    )
    assert len(ctx.items("mtbench")) == 4
    everything = ctx.all_items("mtbench", None)
    assert len([i for i in everything if i.reference]) == 30
    assert len(ctx.rows["mtbench"]) == 30 and len(ctx.items("mtbench")) == 4


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
            "eval.reference_loss.limit=3",  # all 30 by default (tested without the model above)
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
    # Generations (2 of a seeded sample) and reference losses (the first 3 references) annotate the same table.
    assert any({"prompt", "generation", "reference", "length"} <= set(row) for row in tables["mtbench"])
    assert sum("reference_nll" in row for row in tables["mtbench"]) == 3
    assert (
        len(load_jsonl(tmp_path / "scores" / "reference_items.jsonl")) == 3 + 2
    )  # its limit, not the benchmark's, and the custom two
    assert not model.training
