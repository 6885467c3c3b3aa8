"""Pairwise judging against a scripted OpenAI-compatible judge server started on 127.0.0.1."""

from __future__ import annotations

import json
import re

import pytest
from helpers import chat_server

from core.chat import ChatClient
from core.generate import load_jsonl
from evaluation.judge import load_template, outcome, parse_verdict, win_rate
from evaluation.scorers.base import EvalContext
from evaluation.scorers.pairwise import PairwiseScorer

# What the scripted judge prefers for item i, when the model's answer is shown first / second.
# "model" / "baseline": names the slot holding that answer; "A": always slot A (position bias);
# "tie": [[C]]; "junk": no verdict mark at all.
SCRIPT = {
    0: ("model", "model"),  # 2 wins -> 1.0
    1: ("baseline", "baseline"),  # 2 losses -> 0.0
    2: ("A", "A"),  # position bias: win then loss -> 0.5 (both orders cancel it)
    3: ("tie", "tie"),  # 2 ties -> 0.5
    4: ("model", "junk"),  # one win, one unparseable -> 1.0 from the valid order
}
# Hand-computed: item scores 1, 0, .5, .5, 1 -> 100 * 3/5.
EXPECTED_WIN_RATE = 60.0


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
    model_slot = "A" if model_first else "B"
    slot = model_slot if choice == "model" else ("B" if model_slot == "A" else "A")
    return f"Considering [[A]] and [[B]] carefully, my verdict:\n[[{slot}]]"


@pytest.fixture()
def judge_server():
    """A tiny `POST /v1/chat/completions` server answering from SCRIPT; yields (base_url, seen headers)."""
    with chat_server(lambda body: _reply(body["messages"][-1]["content"])) as (url, seen):
        yield url, seen


def test_parse_verdict_takes_the_last_mark():
    assert parse_verdict("compare [[A]] with [[B]] ... final: [[B]]") == "B"
    assert parse_verdict("[[c]]") == "tie" and parse_verdict("[[ TIE ]]") == "tie"
    assert parse_verdict("no mark") is None and parse_verdict("") is None
    assert outcome("A", "A") == "win" and outcome("A", "B") == "loss"
    assert outcome("tie", "B") == "tie" and outcome(None, "A") is None


def test_win_rate_with_bootstrap_interval_is_seeded():
    rows = [{"id": str(i), "outcome": o} for i, o in enumerate(["win", "loss", "tie", "win", "win", "loss"])]
    result = win_rate(rows, n_resamples=500, seed=1)
    assert result["win_rate"] == pytest.approx(100 * 3.5 / 6)
    assert result["ci_low"] < result["win_rate"] < result["ci_high"]
    assert result == win_rate(rows, n_resamples=500, seed=1)
    assert win_rate([{"id": "0", "outcome": "tie"}])["ci_low"] == 50.0


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
            fh.write(json.dumps({"question_id": str(i), "turns": [{"content": f"Question {i}?"}]}) + "\n")
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

    assert scores["eval/pairwise/arena_hard_win_rate"] == pytest.approx(EXPECTED_WIN_RATE)
    assert scores["eval/pairwise/arena_hard_wins"] == 4
    assert scores["eval/pairwise/arena_hard_losses"] == 3
    assert scores["eval/pairwise/arena_hard_ties"] == 2
    assert scores["eval/pairwise/arena_hard_invalid"] == 1
    assert scores["eval/pairwise/arena_hard_n"] == 5
    assert scores["eval/pairwise/arena_hard_ci_low"] <= EXPECTED_WIN_RATE <= scores["eval/pairwise/arena_hard_ci_high"]
    assert len(seen) == 10 and {s["path"] for s in seen} == {"/v1/chat/completions"}
    assert {s["auth"] for s in seen} == {"Bearer sk-test-123"}

    verdicts = load_jsonl(run_dir / "verdicts" / "arena_hard.jsonl")
    assert len(verdicts) == 10 and all(v["raw"] for v in verdicts)
    by_item = {(v["id"], v["model_position"]): v["outcome"] for v in verdicts}
    assert by_item[("2", "A")] == "win" and by_item[("2", "B")] == "loss"
    assert by_item[("4", "B")] is None
    assert ctx.rows["arena_hard"]["1"]["verdict"] == "loss/loss"
