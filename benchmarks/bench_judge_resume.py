"""Does a paper judge run survive a flaky endpoint that dies mid-run, and does its rerun resume without asking twice?

Run by hand (not by tests; `tests/evaluation/test_judge_resume.py` checks the same at a small scale):

    HF_HUB_OFFLINE=1 python benchmarks/bench_judge_resume.py            # ../shared/data AlpacaEval + Arena-Hard
    HF_HUB_OFFLINE=1 python benchmarks/bench_judge_resume.py --fail-rate 0.3 --die-after 500 --seed 3

What it does: the real AlpacaEval (805 prompts) and Arena-Hard (500) files are judged in both orders (2,610
judgements) by `evaluation.scorers.pairwise.PairwiseScorer`, as `eval=paper` judges them, against the scripted
OpenAI-compatible server of the tests (`tests/flaky_server.py`), through `core.chat.ChatClient` with its retries.
The model's answers are a deterministic stand-in (a prefix of the baseline answer, of varying length), set on the
evaluation context as saved generations are, so no model runs; the scripted judge's verdict depends only on the
judge prompt it receives (a hash of it), so equal inputs give equal verdicts.

    clean    a server that never fails, into its own run folder: the reference verdicts and scores.
    first    a server failing a seeded `--fail-rate` of requests (HTTP 429 with Retry-After, 500, 503, dropped
             connections, stalls past the client's timeout) that shuts down after `--die-after` answers: the run
             must end in one `EndpointError` saying what is kept and how to resume.
    rerun    the same run folder against a fresh server failing at the same rate with another seed, repeated (as
             a user would) until it completes.

Figures: per phase the requests the server saw, judge answers delivered, failures by kind, client retries,
wall time; then the judgements made in total, those read from the verdict cache on the rerun, judgements asked
twice (must be 0), whether every verdict and score equals the clean run's, and the win rate.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
SHARED = ROOT.parent / "shared" / "data"

from flaky_server import flaky_chat_server  # noqa: E402 (tests/ helper, path set above)

from core.chat import ChatClient, EndpointError  # noqa: E402
from core.jsonl import load_jsonl  # noqa: E402
from evaluation.judge import VerdictCache  # noqa: E402
from evaluation.scorers.base import EvalContext  # noqa: E402
from evaluation.scorers.pairwise import PairwiseScorer  # noqa: E402


def scripted_verdict(body: dict) -> str:
    """The judge's reply: a function of the judge prompt only (both answers, their order, the instruction)."""
    digest = hashlib.sha256(body["messages"][-1]["content"].encode()).digest()
    return ["Reasoning.\n[[A]]", "Reasoning.\n[[B]]", "Equal.\n[[C]]", "[[A>>B]]", "[[B>>A]]"][digest[0] % 5]


def stand_in_answer(reference: str, item_id: str) -> str:
    """A deterministic model answer: a prefix of the baseline answer, 20-100% of its words."""
    words = reference.split()
    share = 0.2 + 0.8 * (hashlib.sha256(item_id.encode()).digest()[0] / 255)
    return " ".join(words[: max(1, math.ceil(share * len(words)))])


def context(run_dir: Path, benchmarks: dict[str, dict[str, Any]]) -> EvalContext:
    """An evaluation context whose answers are already there (as a run's saved generations are on a rerun)."""
    ctx = EvalContext(model=None, tokenizer=None, run_dir=run_dir, benchmarks=benchmarks, progress=False)
    for name in benchmarks:
        ctx._generations[name] = [stand_in_answer(item.reference, f"{name}/{item.id}") for item in ctx.items(name)]
    return ctx


def judge_run(url: str, run_dir: Path, benchmarks: dict, args: argparse.Namespace) -> tuple[Any, ChatClient, float]:
    """Score once; returns (scores or the EndpointError, the client with its stats, seconds)."""
    client = ChatClient(
        url,
        "scripted",
        backoff_s=args.backoff_s,
        max_wait_s=args.max_wait_s,
        timeout=args.timeout,
        max_attempts=args.max_attempts,
        max_workers=args.workers,
    )
    start = time.perf_counter()
    try:
        result: Any = PairwiseScorer(judge=client, n_resamples=200).score(context(run_dir, benchmarks))
    except EndpointError as err:
        result = err
    return result, client, time.perf_counter() - start


def verdicts(run_dir: Path, benchmarks: dict) -> list[tuple]:
    return [
        (name, row["id"], row["model_position"], row["verdict"], row["raw"])
        for name in benchmarks
        for row in load_jsonl(run_dir / "verdicts" / f"{name}.jsonl")
    ]


def line(phase: str, server: Any, client: ChatClient, seconds: float, extra: str = "") -> None:
    failures = ", ".join(f"{k} {v}" for k, v in sorted(server.failures.items())) or "none"
    print(
        f"{phase:<9} requests {server.requests:>5}  answered {sum(server.answered.values()):>5}  "
        f"retries {client.stats['retries']:>4}  failures: {failures}  {seconds:6.1f} s{extra}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alpaca", default=str(SHARED / "alpaca_eval"), help="AlpacaEval folder or file")
    parser.add_argument("--arena", default=str(SHARED / "arena_hard"), help="Arena-Hard folder")
    parser.add_argument("--fail-rate", type=float, default=0.2)
    parser.add_argument("--die-after", type=int, default=1200, help="answers before the first server shuts down")
    parser.add_argument("--seed", type=int, default=0, help="failures of the first server; the rerun uses seed+1")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-attempts", type=int, default=6)
    parser.add_argument("--backoff-s", type=float, default=0.02)
    parser.add_argument("--max-wait-s", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=0.5, help="client timeout; stalls last 2x this")
    parser.add_argument("--max-reruns", type=int, default=5)
    args = parser.parse_args()
    for path in (args.alpaca, args.arena):
        if not Path(path).exists():
            sys.exit(f"error: {path} not found: give --alpaca / --arena (the AlpacaEval and Arena-Hard files)")
    benchmarks = {"alpaca_eval": {"source": args.alpaca}, "arena_hard": {"source": args.arena}}
    stall = 2 * args.timeout

    with tempfile.TemporaryDirectory(prefix="bench_judge_resume_") as tmp:
        clean_dir, run_dir = Path(tmp) / "clean", Path(tmp) / "run"
        with flaky_chat_server(scripted_verdict, fail_rate=0.0) as server:
            clean, client, seconds = judge_run(server.url, clean_dir, benchmarks, args)
        if isinstance(clean, EndpointError):
            sys.exit(f"error: the clean run failed: {clean}")
        total, clean_asked = sum(server.answered.values()), Counter(server.answered)
        n_prompts = {name: len(load_jsonl(clean_dir / "verdicts" / f"{name}.jsonl")) // 2 for name in benchmarks}
        print(
            f"{total} judgements: "
            + " + ".join(f"{name} {n} prompts" for name, n in n_prompts.items())
            + f", both orders; {args.workers} concurrent requests; fail rate {args.fail_rate:.0%}"
        )
        line("clean", server, client, seconds)

        answered: list[Counter] = []
        with flaky_chat_server(
            scripted_verdict, fail_rate=args.fail_rate, seed=args.seed, die_after=args.die_after, stall_s=stall
        ) as server:
            first, client, seconds = judge_run(server.url, run_dir, benchmarks, args)
        answered.append(server.answered)
        line("first", server, client, seconds, f"  died: {server.dead}")
        if isinstance(first, EndpointError):
            print("          its error:", " | ".join(str(first).splitlines())[:600])
        result, reruns, from_cache = first, 0, 0
        while isinstance(result, EndpointError) and reruns < args.max_reruns:
            reruns += 1
            if reruns == 1:
                from_cache = sum(len(VerdictCache(p).entries) for p in (run_dir / "verdicts").glob("*.cache.jsonl"))
            seed = args.seed + reruns
            with flaky_chat_server(scripted_verdict, fail_rate=args.fail_rate, seed=seed, stall_s=stall) as server:
                result, client, seconds = judge_run(server.url, run_dir, benchmarks, args)
            answered.append(server.answered)
            line(f"rerun {reruns}", server, client, seconds, f"  (seed {seed})")
        if isinstance(result, EndpointError):
            print(f"not complete after {reruns} reruns: {result}")
            return 1
        asked = Counter()
        for counter in answered:
            asked.update(counter)
        # A judge prompt may legitimately come twice in a clean run (the same instruction and answers in both
        # benchmarks); asked twice = asked more often, over all phases, than the clean run asked it.
        twice = sum((asked - clean_asked).values())
        same_verdicts = verdicts(run_dir, benchmarks) == verdicts(clean_dir, benchmarks)
        same_scores = all(
            (math.isnan(a) and math.isnan(b)) if isinstance(a, float) and math.isnan(a) else a == b
            for a, b in ((clean[k], result.get(k)) for k in clean)
        )
        print(
            f"judgements made {sum(asked.values())} of {total}; on the first rerun {from_cache} came from the verdict "
            f"cache; asked twice: {twice}; reruns needed: {reruns}"
        )
        print(f"verdicts identical to the clean run: {same_verdicts}; scores identical: {same_scores}")
        print(
            "win rate (all): "
            f"{result['eval/pairwise/all_win_rate']:.2f} (clean {clean['eval/pairwise/all_win_rate']:.2f}), "
            f"invalid share {result['eval/pairwise/all_invalid_share']:.3f}"
        )
        ok = same_verdicts and same_scores and twice == 0 and sum(asked.values()) == total
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
