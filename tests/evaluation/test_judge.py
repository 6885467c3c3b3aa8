"""Pairwise judging against a scripted OpenAI-compatible judge server started on 127.0.0.1."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from helpers import chat_server

from core.chat import ChatClient
from core.jsonl import load_jsonl
from evaluation.judge import LABELS, fill_template, load_template, outcome, parse_verdict
from evaluation.scorers.base import EvalContext
from evaluation.scorers.pairwise import PairwiseScorer
from evaluation.winrate import item_scores, length_controlled_win_rate, win_rate

# What the scripted judge answers for item i, when the model's answer is shown first / second.
# "model" / "baseline": names the slot holding that answer ([[A]]/[[B]]); "A": always slot A (position bias);
# "tie": [[C]]; "junk": no verdict mark at all; "strong_model" / "weak_baseline": Arena-Hard labels;
# "ambiguous": two different marks on the verdict line.
SCRIPT = {
    0: ("model", "model"),  # 2 wins -> 1.0
    1: ("baseline", "baseline"),  # 2 losses -> 0.0
    2: ("A", "A"),  # position bias: win then loss -> 0.5 (both orders cancel it)
    3: ("tie", "tie"),  # 2 ties -> 0.5
    4: ("model", "junk"),  # one order unparseable -> invalid, not a full win
    5: ("strong_model", "weak_baseline"),  # [[A>>B]] then [[B>A]]... in slots: strong win, weak loss -> 0.5
    6: ("model", "model"),  # the question itself contains "{answer_b}": filled in one pass -> 1.0
    7: ("ambiguous", "model"),  # "[[A]] or [[B]]" on the last line -> invalid
}
# Hand-computed over the valid items 0, 1, 2, 3, 5, 6: scores 1, 0, .5, .5, .5, 1 -> 100 * 3.5 / 6.
EXPECTED_WIN_RATE = 100 * 3.5 / 6
# Item 5 weighted (strong win x3, weak loss x1): 3/4 -> 100 * 3.75 / 6.
EXPECTED_WEIGHTED = 100 * 3.75 / 6


def _slot(choice: str, model_first: bool) -> str:
    model_slot = "A" if model_first else "B"
    return model_slot if choice == "model" else ("B" if model_slot == "A" else "A")


def _reply(prompt: str) -> str:
    item = int(re.search(r"MODEL-ANSWER-(\d+)", prompt).group(1))
    model_first = prompt.index("MODEL-ANSWER") < prompt.index("BASE-ANSWER")
    choice = SCRIPT[item][0 if model_first else 1]
    if choice == "junk":
        return "Both answers have merits; I cannot decide."
    if choice == "tie":
        return "Equally good.\n[[C]]"
    if choice == "A":
        return "The first one reads better. [[A]]"
    if choice == "ambiguous":
        return "Hard to say.\nMy verdict: [[A]] or [[B]]"
    if choice == "strong_model":
        winner = _slot("model", model_first)
        return f"Reasoning.\n[[{winner}>>{'B' if winner == 'A' else 'A'}]]"
    if choice == "weak_baseline":
        winner = _slot("baseline", model_first)
        return f"Reasoning.\n[[{winner}>{'B' if winner == 'A' else 'A'}]]"
    return f"Considering [[A]] and [[B]] carefully, my verdict:\n[[{_slot(choice, model_first)}]]"


@pytest.fixture()
def judge_server():
    """A tiny `POST /v1/chat/completions` server answering from SCRIPT; yields (base_url, seen headers)."""
    with chat_server(lambda body: _reply(body["messages"][-1]["content"])) as (url, seen):
        yield url, seen


def test_parse_verdict_reads_the_final_verdict_line():
    assert parse_verdict("compare [[A]] with [[B]] ...\nfinal: [[B]]") == "B>A"
    assert parse_verdict("[[c]]") == "A=B" and parse_verdict("[[ TIE ]]") == "A=B"
    assert parse_verdict("no mark") is None and parse_verdict("") is None and parse_verdict(None) is None
    # Arena-Hard's labels, and their mirrored forms.
    assert [parse_verdict(f"[[{m}]]") for m in ("A>>B", "A>B", "A=B", "B>A", "B>>A")] == list(LABELS)
    assert parse_verdict("[[A<<B]]") == "B>>A" and parse_verdict("[[ b < a ]]") == "A>B"
    # A mark quoted in the reasoning does not override the verdict line; marks after it on other lines do.
    assert parse_verdict("Answer B wrote [[A]] in its text.\nVerdict: [[B>>A]]\nThanks!") == "B>>A"
    # Disagreeing marks on the verdict line are ambiguous; repeating the same verdict is not.
    assert parse_verdict("[[A]]\nEither [[A>B]] or [[B>A]]") is None
    assert parse_verdict("My final verdict is [[A]]: [[A]]") == "A>B"
    assert parse_verdict("[[A>A]]") is None
    assert outcome("A>B", "A") == "win" and outcome("A>>B", "B") == "loss" and outcome("B>A", "B") == "win"
    assert outcome("A=B", "B") == "tie" and outcome(None, "A") is None


def test_fill_template_substitutes_in_one_pass():
    template = "Q: {instruction}\nA: {answer_a}\nB: {answer_b}"
    filled = fill_template(template, "Explain {answer_b} and {x}", "first {instruction}", "second")
    assert filled == "Q: Explain {answer_b} and {x}\nA: first {instruction}\nB: second"


def _rows(outcomes: list[tuple[str, str]], model_chars=None, baseline_chars=None) -> list[dict]:
    """Verdict rows: one (model-first outcome, baseline-first outcome) pair per item."""
    rows = []
    for i, pair in enumerate(outcomes):
        for position, result in zip("AB", pair, strict=True):
            rows.append(
                {
                    "id": str(i),
                    "model_position": position,
                    "outcome": result,
                    "strong": False,
                    "model_chars": model_chars[i] if model_chars else 100,
                    "baseline_chars": baseline_chars[i] if baseline_chars else 100,
                }
            )
    return rows


def test_win_rate_with_bootstrap_interval_is_seeded():
    rows = _rows([("win", "win"), ("loss", "loss"), ("tie", "tie"), ("win", "loss"), ("win", "win"), ("loss", "tie")])
    result = win_rate(rows, n_resamples=500, seed=1)
    assert result["win_rate"] == pytest.approx(100 * 3.25 / 6)
    assert result["ci_low"] < result["win_rate"] < result["ci_high"]
    assert result == win_rate(rows, n_resamples=500, seed=1)
    tie = win_rate(_rows([("tie", "tie")]))
    assert tie["ci_low"] == tie["win_rate"] == tie["lc_win_rate"] == 50.0


def test_one_parsed_order_makes_the_item_invalid_not_a_full_win():
    result = win_rate(_rows([("win", None), ("loss", "loss"), ("tie", "win")]))
    assert item_scores(_rows([("win", None)])) == {}
    assert result["win_rate"] == pytest.approx(100 * 0.75 / 2)
    assert (result["n"], result["n_items"], result["invalid"], result["invalid_verdicts"]) == (2, 3, 1, 1)
    assert result["invalid_share"] == pytest.approx(1 / 3)
    assert (result["wins"], result["ties"], result["losses"]) == (1, 1, 2)  # judgements of scored items only
    nothing = win_rate(_rows([(None, None)]))
    assert math.isnan(nothing["win_rate"]) and nothing["invalid_share"] == 1.0


def test_length_controlled_win_rate_removes_a_pure_length_preference():
    # Preferences that follow length alone (logit = 2 tanh(delta / std), no intercept); the model is longer on
    # 30 of 40 prompts, so its raw rate is high, but at equal length it is even with the baseline.
    model, baseline = np.array([200] * 30 + [50] * 10), np.full(40, 125)
    delta = model - baseline
    preference = 1 / (1 + np.exp(-2 * np.tanh(delta / delta.std(ddof=1))))
    assert 100 * preference.mean() > 65
    assert length_controlled_win_rate(preference, model, baseline) == pytest.approx(50.0, abs=1.0)
    # The same with a model that is better at equal length (intercept 1): sigmoid(1) = 73.1.
    better = 1 / (1 + np.exp(-(1 + 2 * np.tanh(delta / delta.std(ddof=1)))))
    assert length_controlled_win_rate(better, model, baseline) == pytest.approx(73.1, abs=1.0)
    # Without length differences there is nothing to control for.
    assert length_controlled_win_rate([1.0, 0.5, 0.0, 1.0], [10] * 4, [10] * 4) == pytest.approx(62.5)
    # Through win_rate: the length-controlled rate and the mean lengths stand beside the raw rate.
    rows = _rows([("win", "win")] * 20 + [("win", "loss")] * 10 + [("loss", "tie")] * 10, list(model), list(baseline))
    result = win_rate(rows, n_resamples=100)
    assert result["model_chars"] == pytest.approx(model.mean()) and result["baseline_chars"] == 125
    assert result["win_rate"] == pytest.approx(100 * 27.5 / 40) and 0 < result["lc_win_rate"] < result["win_rate"]


def test_template_needs_its_placeholders(tmp_path):
    assert "{answer_b}" in load_template()
    bad = tmp_path / "judge.txt"
    bad.write_text("Judge {instruction} and {answer_a}")
    with pytest.raises(ValueError, match=r"answer_b"):
        load_template(bad)


def test_missing_api_key_variable_is_named(monkeypatch):
    monkeypatch.delenv("M2M_TEST_JUDGE_KEY", raising=False)
    judge = ChatClient(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="M2M_TEST_JUDGE_KEY")
    with pytest.raises(RuntimeError, match="M2M_TEST_JUDGE_KEY"):
        judge.complete(["hi"])


def test_pairwise_win_rate_against_scripted_judge(judge_server, tmp_path, monkeypatch):
    base_url, seen = judge_server
    monkeypatch.setenv("M2M_TEST_JUDGE_KEY", "sk-test-123")
    data = tmp_path / "arena"
    data.mkdir()
    with open(data / "question.jsonl", "w") as fh, open(data / "gpt-4-0314_answers.jsonl", "w") as ans:
        for i in SCRIPT:
            question = f"Question {i}" + (" about {answer_b}?" if i == 6 else "?")
            fh.write(json.dumps({"question_id": str(i), "turns": [{"content": question}]}) + "\n")
            answer = {"question_id": str(i), "choices": [{"turns": [{"content": f"BASE-ANSWER-{i}"}]}]}
            ans.write(json.dumps(answer) + "\n")
    run_dir = tmp_path / "run"
    ctx = EvalContext(model=None, tokenizer=None, run_dir=run_dir, benchmarks={"arena_hard": {"source": str(data)}})
    ctx.items("arena_hard")
    ctx._generations["arena_hard"] = [f"MODEL-ANSWER-{i}" for i in SCRIPT]  # answers already generated
    scorer = PairwiseScorer(
        judge={
            "backend": "openai",
            "base_url": base_url,
            "model": "scripted",
            "api_key_env": "M2M_TEST_JUDGE_KEY",
        },
        n_resamples=200,
    )
    scores = scorer.score(ctx)

    bench = "eval/pairwise/arena_hard"
    assert scores[f"{bench}_win_rate"] == pytest.approx(EXPECTED_WIN_RATE)
    assert scores[f"{bench}_weighted_win_rate"] == pytest.approx(EXPECTED_WEIGHTED)
    assert scores[f"{bench}_wins"] == 6  # items 0 (2), 2, 5, 6 (2)
    assert scores[f"{bench}_losses"] == 4  # items 1 (2), 2, 5
    assert scores[f"{bench}_ties"] == 2
    assert (scores[f"{bench}_n"], scores[f"{bench}_n_items"], scores[f"{bench}_invalid"]) == (6, 8, 2)
    assert scores[f"{bench}_invalid_share"] == 0.25 and scores[f"{bench}_invalid_verdicts"] == 2
    assert scores[f"{bench}_model_chars"] == len("MODEL-ANSWER-0")
    assert scores[f"{bench}_baseline_chars"] == len("BASE-ANSWER-0")
    assert scores[f"{bench}_lc_win_rate"] == pytest.approx(EXPECTED_WIN_RATE)  # equal lengths: nothing to control
    assert scores[f"{bench}_ci_low"] <= EXPECTED_WIN_RATE <= scores[f"{bench}_ci_high"]
    assert len(seen) == 16 and {s["path"] for s in seen} == {"/v1/chat/completions"}
    assert {s["auth"] for s in seen} == {"Bearer sk-test-123"}
    prompts = [
        s["body"]["messages"][-1]["content"] for s in seen if "MODEL-ANSWER-6" in s["body"]["messages"][-1]["content"]
    ]
    assert all("Question 6 about {answer_b}?" in p for p in prompts)

    verdicts = load_jsonl(run_dir / "verdicts" / "arena_hard.jsonl")
    assert len(verdicts) == 16 and all(v["raw"] for v in verdicts)
    by_item = {(v["id"], v["model_position"]): v for v in verdicts}
    assert by_item[("2", "A")]["outcome"] == "win" and by_item[("2", "B")]["outcome"] == "loss"
    assert by_item[("4", "B")]["outcome"] is None and by_item[("7", "A")]["verdict"] is None
    assert by_item[("5", "A")]["verdict"] == "A>>B" and by_item[("5", "A")]["strong"]
    assert ctx.rows["arena_hard"]["1"]["verdict"] == "loss/loss"
    assert ctx.rows["arena_hard"]["4"]["score"] is None


def test_a_local_judge_answers_every_prompt_in_order(tiny_model_dir):
    """The `hf` backend loads its model through the one loader taggers use and answers greedily."""
    from evaluation.judge import HFJudge

    judge = HFJudge(str(tiny_model_dir), max_new_tokens=4, batch_size=2, device="cpu")
    prompts = ["first ${x} {}", "second", "third %s \\"]
    answers = judge.complete(prompts)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    assert judge.complete(prompts) == answers  # greedy: the same verdict text every time
