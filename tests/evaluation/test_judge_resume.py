"""A judge run survives a flaky endpoint, an endpoint that dies mid-run and a killed process: the verdict cache
resumes it with the same verdicts as a clean run, and no judgement is ever asked for twice."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from flaky_server import flaky_chat_server

from core.chat import ChatClient, EndpointError
from evaluation.judge import VerdictCache, judge_pairs, load_template

N = 30
IDS = [str(i) for i in range(N)]
PROMPTS = [f"Question {i}: ${{oc.env:HOME}} {{}} {{0}} %s \\n" for i in range(N)]
ANSWERS = [f"MODEL-{i} " + "x" * (i % 7) for i in range(N)]
BASELINES = [f"BASE-{i}" for i in range(N)]


def _reply(body: dict) -> str:
    """Deterministic verdicts: the model wins items divisible by 3, ties those = 1 mod 3, else loses."""
    prompt = body["messages"][-1]["content"]
    item = int(re.search(r"MODEL-(\d+)", prompt).group(1))
    model_slot = "A" if prompt.index("MODEL-") < prompt.index("BASE-") else "B"
    other = "B" if model_slot == "A" else "A"
    return {0: f"[[{model_slot}]]", 1: "[[C]]", 2: f"[[{other}]]"}[item % 3]


def _judge(url: str) -> ChatClient:
    return ChatClient(url, "scripted", backoff_s=0.01, max_wait_s=0.5, timeout=0.5, max_attempts=6)


def _rows(judge, cache=None):
    return judge_pairs(judge, load_template(), IDS, PROMPTS, ANSWERS, BASELINES, cache_path=cache)


def _core(rows):
    return [(r["id"], r["model_position"], r["verdict"], r["raw"]) for r in rows]


def test_flaky_and_dying_endpoint_resumes_to_the_clean_verdicts(tmp_path):
    with flaky_chat_server(_reply, fail_rate=0.0) as clean_srv:
        clean = _rows(_judge(clean_srv.url))
    assert len(clean) == 2 * N and all(r["verdict"] for r in clean)

    cache = tmp_path / "verdicts" / "bench.cache.jsonl"
    with flaky_chat_server(_reply, fail_rate=0.2, seed=7, die_after=25, stall_s=0.7) as first:
        judge = _judge(first.url)
        with pytest.raises(EndpointError, match="gave up"):
            _rows(judge, cache)
    assert sum(first.failures.values()) > 0 and judge.stats["retries"] > 0
    kept = len(VerdictCache(cache).entries)
    assert kept == sum(first.answered.values()) >= 25  # every answer delivered before the death was kept

    with flaky_chat_server(_reply, fail_rate=0.2, seed=8, stall_s=0.7) as second:
        rows = _rows(_judge(second.url), cache)
    assert _core(rows) == _core(clean)
    assert not set(first.answered) & set(second.answered)  # nothing judged twice
    assert max([*first.answered.values(), *second.answered.values()]) == 1
    assert len(first.answered) + len(second.answered) == 2 * N
    assert sum(r["cached"] for r in rows) == kept

    with flaky_chat_server(_reply, fail_rate=0.0) as third:
        again = _rows(_judge(third.url), cache)
    assert third.requests == 0 and _core(again) == _core(clean)


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_new_line(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = VerdictCache(path)
    cache.add("k1", "[[A]] with {braces} and ${x}")
    with open(path, "a") as fh:
        fh.write('{"key": "k2", "raw": "[[B')  # killed mid-write
    reread = VerdictCache(path)
    assert reread.entries == {"k1": "[[A]] with {braces} and ${x}"} and reread.torn == 1
    reread.add("k3", "[[C]]")
    assert VerdictCache(path).entries == {"k1": "[[A]] with {braces} and ${x}", "k3": "[[C]]"}


def test_the_key_changes_with_every_input_of_a_verdict():
    base = ({"model": "m"}, "T {instruction}", "p", "a", "b", "A")
    keys = {VerdictCache.key(*base)}
    for i, other in enumerate([{"model": "n"}, "T2 {instruction}", "p2", "a2", "b2", "B"]):
        keys.add(VerdictCache.key(*base[:i], other, *base[i + 1 :]))
    assert len(keys) == 7


SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {root!r} + '/tests', {tests!r}]
from test_judge_resume import _judge, _rows
from pathlib import Path
_rows(_judge(sys.argv[1]), Path(sys.argv[2]))
"""


def test_a_killed_judge_process_resumes_without_judging_twice(tmp_path):
    root = Path(__file__).resolve().parents[2]
    cache = tmp_path / "killed.cache.jsonl"
    script = tmp_path / "judge.py"
    script.write_text(textwrap.dedent(SCRIPT.format(root=str(root), tests=str(Path(__file__).parent))))
    slow = lambda body: (time.sleep(0.05), _reply(body))[1]  # noqa: E731 - ~80 answers/s with 4 workers
    with flaky_chat_server(slow, fail_rate=0.0) as first:
        proc = subprocess.Popen([sys.executable, str(script), first.url, str(cache)], env={**os.environ})
        deadline = time.monotonic() + 60
        while sum(first.answered.values()) < 12 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, "the judge process ended before it was killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    kept = VerdictCache(cache).entries
    assert 0 < len(kept) < 2 * N
    with flaky_chat_server(_reply, fail_rate=0.0) as second:
        rows = _rows(_judge(second.url), cache)
    assert len(rows) == 2 * N and all(r["verdict"] for r in rows)
    lost = sum(first.answered.values()) - len(kept)  # answered while the process was being killed
    assert lost <= 4 and second.requests == 2 * N - len(kept)
    assert all(json.loads(line) for line in cache.read_text().splitlines())


class ChunkJudge:
    """A judge without streaming (as a local model): fails on its third batch, as a crash would."""

    cache_id = "chunk-judge"

    def __init__(self, fail_on_batch: int | None = None):
        self.batches: list[list[str]] = []
        self.fail_on_batch = fail_on_batch

    def complete(self, prompts):
        if len(self.batches) == self.fail_on_batch:
            raise RuntimeError("out of memory")
        self.batches.append(list(prompts))
        return [_reply({"messages": [{"content": p}]}) for p in prompts]


def test_a_judge_without_streaming_is_cached_batch_by_batch(tmp_path):
    cache = tmp_path / "chunks.cache.jsonl"
    first = ChunkJudge(fail_on_batch=2)
    with pytest.raises(RuntimeError, match="out of memory"):
        judge_pairs(first, load_template(), IDS, PROMPTS, ANSWERS, BASELINES, cache_path=cache, chunk=8)
    assert len(VerdictCache(cache).entries) == 16  # two whole batches kept
    second = ChunkJudge()
    rows = judge_pairs(second, load_template(), IDS, PROMPTS, ANSWERS, BASELINES, cache_path=cache, chunk=8)
    assert sum(len(b) for b in second.batches) == 2 * N - 16 and sum(r["cached"] for r in rows) == 16
    assert not {p for b in first.batches for p in b} & {p for b in second.batches for p in b}


# Scorer level: a run's pairwise scorer (AlpacaEval + Arena-Hard) against the scripted server, on a real tiny model.

GENERATION = {"max_new_tokens": 8, "batch_size": 4}
JUDGE = {"backend": "openai", "model": "scripted", "backoff_s": 0.01, "max_wait_s": 0.5, "timeout": 0.5}


def _hashed_verdict(body: dict) -> str:
    """A verdict that depends only on the judge prompt (so only on the answers shown and their order)."""
    digest = hashlib.sha256(body["messages"][-1]["content"].encode()).digest()
    return ["Reasoning.\n[[A]]", "[[B]]", "Equal.\n[[C]]", "[[A>>B]]", "no verdict"][digest[0] % 5]


def _benchmarks(tmp_path: Path) -> dict[str, dict]:
    """Local AlpacaEval (8 prompts) and Arena-Hard (6 prompts) folders, prompts with `${...}`, braces and `%s`."""
    alpaca, arena = tmp_path / "alpaca_eval", tmp_path / "arena_hard"
    alpaca.mkdir()
    arena.mkdir()
    rows = [{"instruction": f"Tell me about ${{x}} {{}} %s item {i}.", "output": f"GPT4-{i}"} for i in range(8)]
    (alpaca / "gpt4_1106_preview_outputs.json").write_text(json.dumps(rows))
    with open(arena / "question.jsonl", "w") as qs, open(arena / "gpt-4-0314_answers.jsonl", "w") as ans:
        for i in range(6):
            qs.write(json.dumps({"question_id": f"q{i}", "turns": [{"content": f"Explain topic {i} \\ {{0}}"}]}) + "\n")
            ans.write(json.dumps({"question_id": f"q{i}", "choices": [{"turns": [{"content": f"BASE {i}"}]}]}) + "\n")
    return {"alpaca_eval": {"source": str(alpaca)}, "arena_hard": {"source": str(arena)}}


def _fresh_model(model_dir: Path):
    """The model as a new process loads it, with its real `generate` wrapped to count the calls."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    calls: list[int] = []
    real = model.generate

    def counted(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return real(*args, **kwargs)

    model.generate = counted
    return model, AutoTokenizer.from_pretrained(model_dir), calls


def _score(model_dir: Path, run_dir: Path, benchmarks: dict, url: str):
    from evaluation.scorers.base import EvalContext
    from evaluation.scorers.pairwise import PairwiseScorer

    model, tokenizer, calls = _fresh_model(model_dir)
    ctx = EvalContext(model, tokenizer, run_dir, benchmarks, generation=GENERATION, progress=False)
    scorer = PairwiseScorer(judge={**JUDGE, "base_url": url}, n_resamples=50)
    try:
        return scorer.score(ctx), ctx, calls
    except EndpointError as err:
        err.calls = calls
        raise


def _verdicts(run_dir: Path, bench: str):
    from core.jsonl import load_jsonl

    return [
        (r["id"], r["model_position"], r["verdict"], r["raw"])
        for r in load_jsonl(run_dir / "verdicts" / f"{bench}.jsonl")
    ]


def test_a_rerun_of_the_pairwise_scorer_reuses_its_answers_and_resumes_its_verdicts(tmp_path, tiny_model_dir):
    benchmarks, total = _benchmarks(tmp_path), 2 * (8 + 6)
    with flaky_chat_server(_hashed_verdict, fail_rate=0.0) as clean_srv:
        clean, _, clean_calls = _score(tiny_model_dir, tmp_path / "clean", benchmarks, clean_srv.url)
    assert sum(clean_srv.answered.values()) == total

    run_dir = tmp_path / "run"
    dying = flaky_chat_server(_hashed_verdict, fail_rate=0.2, seed=7, die_after=20, stall_s=0.7)
    with dying as first, pytest.raises(EndpointError) as failed:
        _score(tiny_model_dir, run_dir, benchmarks, first.url)
    message = str(failed.value)  # one error saying what is kept (run.py adds how to resume, once)
    assert "gave up" in message and "kept in the verdict cache" in message and str(run_dir / "generations") in message
    assert "hydra.run.dir" not in message  # a multirun resumes by its sweep dir: run.py says which
    assert sum(first.failures.values()) > 0 and 16 < sum(first.answered.values()) < total  # died inside Arena-Hard
    kept = sum(len(VerdictCache(run_dir / "verdicts" / f"{b}.cache.jsonl").entries) for b in benchmarks)
    assert kept == sum(first.answered.values())  # every verdict delivered before the death was kept
    assert failed.value.calls == clean_calls  # both benchmarks were generated before the judge died
    saved = {b: (run_dir / "generations" / f"{b}.jsonl").stat() for b in benchmarks}

    with flaky_chat_server(_hashed_verdict, fail_rate=0.2, seed=8, stall_s=0.7) as second:
        scores, ctx, calls = _score(tiny_model_dir, run_dir, benchmarks, second.url)
    assert calls == []  # the model generated nothing: its saved answers were read back
    assert ctx.reused == {"alpaca_eval": True, "arena_hard": True}
    for bench, stat in saved.items():
        now = (run_dir / "generations" / f"{bench}.jsonl").stat()
        assert (now.st_mtime_ns, now.st_ino) == (stat.st_mtime_ns, stat.st_ino)
        assert _verdicts(run_dir, bench) == _verdicts(tmp_path / "clean", bench)  # the clean run's verdicts
    assert not set(first.answered) & set(second.answered)  # nothing judged twice
    assert max([*first.answered.values(), *second.answered.values()]) == 1
    assert sum(first.answered.values()) + sum(second.answered.values()) == total
    assert scores == pytest.approx(clean, nan_ok=True)  # every win rate, interval and hit_cap as a clean run's


def test_saved_answers_are_regenerated_when_model_settings_prompts_or_file_differ(tmp_path, tiny_model_dir):
    from evaluation.scorers.base import EvalContext

    benchmarks = {"arena_hard": {**_benchmarks(tmp_path)["arena_hard"], "limit": 3}}  # one batch: quick
    settings = {**GENERATION, "max_new_tokens": 2}
    run_dir = tmp_path / "run"
    path, sidecar = run_dir / "generations" / "arena_hard.jsonl", run_dir / "generations" / "arena_hard.meta.json"

    def answers(generation=settings, bench=benchmarks, tweak=None):
        model, tokenizer, calls = _fresh_model(tiny_model_dir)
        if tweak:
            tweak(model)
        ctx = EvalContext(model, tokenizer, run_dir, bench, generation=generation, progress=False)
        return ctx.generations("arena_hard"), calls

    first, calls = answers()
    assert calls and path.is_file() and json.loads(sidecar.read_text())["file"] == path.name
    assert answers() == (first, [])  # same model, settings and prompts: read back
    _, calls = answers(generation={**settings, "max_new_tokens": 3})
    assert calls  # other settings: generated again, and the file now holds those
    _, calls = answers(generation={**settings, "max_new_tokens": 3})
    assert calls == []
    _, calls = answers(tweak=lambda m: m.model.norm.weight.data.mul_(2))
    assert calls  # another checkpoint
    _, calls = answers(bench={"arena_hard": {**benchmarks["arena_hard"], "limit": 2}})
    assert calls  # other prompts
    answers()
    path.write_text(path.read_text().replace('"generation": "', '"generation": "edited '))
    _, calls = answers()
    assert calls  # a file edited after it was generated is not trusted
    sidecar.unlink()
    _, calls = answers()
    assert calls  # no sidecar (a run of older code, or killed between the two writes): generated again
