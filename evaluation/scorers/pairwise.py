"""Pairwise win rate against each benchmark's baseline answers (the paper's score; baseline = 50).

Every verdict, with the judge's raw text, is written to `run_dir/verdicts/<benchmark>.jsonl`. A rerun in the same
run folder resumes: the model's saved answers are read back (`EvalContext.generations`) and every verdict already
made comes from `run_dir/verdicts/<benchmark>.cache.jsonl`, so a judge endpoint that gave up costs nothing twice.
See `evaluation.judge` for how verdicts are read, and `evaluation.winrate` for the both-orders rule, invalid
verdicts, ties, strong wins, the length-controlled rate and the bootstrap interval.
"""

from __future__ import annotations

from typing import Any

from core.chat import ChatClient, EndpointError
from core.jsonl import save_jsonl
from evaluation.benchmarks import BenchmarkItem
from evaluation.judge import HFJudge, judge_pairs, load_template
from evaluation.scorers.base import EvalContext
from evaluation.winrate import item_scores, win_rate


def build_judge(spec: dict[str, Any] | Any) -> Any:
    """A judge from config: `{backend: openai, base_url, model, api_key_env, ...}` or `{backend: hf, ...}`.

    An already built judge (anything with `complete`) is returned unchanged.
    """
    if hasattr(spec, "complete"):
        return spec
    spec = dict(spec)
    backend = spec.pop("backend", "openai")
    if backend == "openai":
        return ChatClient(**spec)
    if backend == "hf":
        return HFJudge(**spec)
    raise ValueError(f"unknown judge backend '{backend}'; use 'openai' or 'hf'")


def baseline_answer(item: BenchmarkItem) -> str | None:
    """What the judge compares against: a custom benchmark's own `baseline`, else the reference answer."""
    return item.meta.get("baseline") or item.reference


class PairwiseScorer:
    """Scores `eval/pairwise/<benchmark>_<metric>` for every metric of `evaluation.winrate.win_rate`.

    `win_rate` (not length-controlled) always comes with `lc_win_rate`, `weighted_win_rate`, the mean answer
    lengths `model_chars` / `baseline_chars`, `n` scored prompts and `invalid` / `invalid_share`, and
    `hit_cap` (share of the model's answers cut by `generation.max_new_tokens`).

    With several benchmarks, `eval/pairwise/all_<metric>` pools their prompts (the paper merges AlpacaEval
    and Arena-Hard into one score).

    Args:
        judge: Judge config (see `build_judge`) or a judge object.
        benchmarks: Benchmarks to judge; None = every configured one that has reference answers.
        prompt_file: Judge prompt; None = the packaged `prompts/judge_pairwise.txt`.
        n_resamples: Bootstrap resamples for the interval.
        confidence: Interval level.
    """

    name = "pairwise"

    def __init__(
        self,
        judge: dict[str, Any] | Any,
        benchmarks: list[str] | None = None,
        prompt_file: str | None = None,
        n_resamples: int = 1000,
        confidence: float = 0.95,
    ):
        self.judge = judge
        self.benchmarks = benchmarks
        self.prompt_file = prompt_file
        self.n_resamples = n_resamples
        self.confidence = confidence

    def score(self, ctx: EvalContext) -> dict[str, float]:
        judge = build_judge(self.judge)
        template = load_template(self.prompt_file)
        scores: dict[str, float] = {}
        pooled: list[dict[str, Any]] = []
        judged = 0
        for bench in ctx.names(self.benchmarks):
            items = ctx.items(bench)
            baselines = [baseline_answer(item) for item in items]
            if not items or not all(baselines):
                if self.benchmarks is not None:
                    raise ValueError(f"pairwise judging needs a baseline answer for every item of '{bench}'")
                continue
            answers = ctx.generations(bench)  # a rerun reads the saved answers back: the cache keys stay the same
            try:
                rows = judge_pairs(
                    judge,
                    template,
                    [item.id for item in items],
                    [item.prompt for item in items],
                    answers,
                    baselines,
                    cache_path=ctx.run_dir / "verdicts" / f"{bench}.cache.jsonl",  # a rerun resumes, none judged twice
                )
            except EndpointError as err:
                raise EndpointError(
                    f"judging {bench}: {err}\nThe model's answers are saved in {ctx.run_dir / 'generations'} and are "
                    "read back, not generated again, by a rerun in the same run directory"
                ) from None
            save_jsonl(ctx.run_dir / "verdicts" / f"{bench}.jsonl", rows)
            per_item = item_scores(rows)
            for item in items:
                outcomes = [r["outcome"] for r in rows if r["id"] == item.id]
                ctx.annotate(bench, item.id, verdict="/".join(str(o) for o in outcomes), score=per_item.get(item.id))
            result = win_rate(rows, self.n_resamples, self.confidence, ctx.seed)
            scores.update({f"eval/{self.name}/{bench}_{key}": value for key, value in result.items()})
            scores[f"eval/{self.name}/{bench}_hit_cap"] = ctx.hit_cap(bench)
            judged += 1
            pooled.extend({**row, "id": f"{bench}/{row['id']}"} for row in rows)
        if judged > 1:  # several benchmarks: the paper's merged score over all their prompts
            result = win_rate(pooled, self.n_resamples, self.confidence, ctx.seed)
            scores.update({f"eval/{self.name}/all_{key}": value for key, value in result.items()})
        return scores
