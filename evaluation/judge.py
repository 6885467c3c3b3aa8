"""Pairwise LLM judging against a benchmark's baseline answers, as the paper scores models (baseline = 50).

Each prompt is judged twice, once with the model's answer shown first and once with the baseline first,
because LLM judges prefer one position; averaging the two orders cancels that bias. A verdict is a win (1), a
tie (0.5) or a loss (0) for the model; an item's score is the mean over its valid orders, and the benchmark
score is 100 x the mean item score with a seeded bootstrap 95% interval over items.

The judge is any OpenAI-compatible chat endpoint (vLLM, llama.cpp server, a hosted API; the API key is read
from an environment variable whose *name* is configured, never the key itself) or a local Hugging Face model.
The prompt is a file (`prompts/judge_pairwise.txt` by default) with `{instruction}`, `{answer_a}` and
`{answer_b}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

DEFAULT_TEMPLATE = Path(__file__).parent / "prompts" / "judge_pairwise.txt"
_VERDICT = re.compile(r"\[\[\s*(A|B|C|TIE)\s*\]\]", re.IGNORECASE)
OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


class Judge(Protocol):
    """Anything that answers a judge prompt with text."""

    def complete(self, prompts: Sequence[str]) -> list[str]: ...


@dataclass
class HFJudge:
    """A local Hugging Face chat model as judge (greedy, so verdicts are reproducible).

    Attributes:
        name_or_path: Anything `core.assets.resolve_model_path` accepts.
        max_new_tokens: Room for the reasoning before the verdict line.
        batch_size: Judge prompts per generate call.
        device: Torch device; None picks CUDA when available.
    """

    name_or_path: str
    max_new_tokens: int = 512
    batch_size: int = 4
    device: str | None = None

    def complete(self, prompts: Sequence[str]) -> list[str]:
        import torch
        from transformers import AutoModelForCausalLM

        from core.assets import load_tokenizer, resolve_model_path
        from core.generate import generate

        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = AutoModelForCausalLM.from_pretrained(resolve_model_path(self.name_or_path)).to(device)
        tokenizer = load_tokenizer(self.name_or_path)
        try:
            return generate(model, tokenizer, prompts, self.max_new_tokens, self.batch_size, description="judging")
        finally:
            del model


def load_template(path: str | Path | None = None) -> str:
    """The judge prompt; it must contain `{instruction}`, `{answer_a}` and `{answer_b}`."""
    path = Path(path) if path else DEFAULT_TEMPLATE
    template = path.read_text(encoding="utf-8")
    missing = [f for f in ("{instruction}", "{answer_a}", "{answer_b}") if f not in template]
    if missing:
        raise ValueError(f"judge prompt {path} lacks the placeholders {missing}")
    return template


def fill_template(template: str, instruction: str, answer_a: str, answer_b: str) -> str:
    """Substitute the placeholders (plain replacement: answers may contain braces)."""
    return (
        template.replace("{instruction}", instruction).replace("{answer_a}", answer_a).replace("{answer_b}", answer_b)
    )


def parse_verdict(text: str) -> str | None:
    """`"A"`, `"B"` or `"tie"` from the judge's last `[[A]]`/`[[B]]`/`[[C]]` mark; None when there is none."""
    marks = _VERDICT.findall(text or "")
    if not marks:
        return None
    mark = marks[-1].upper()
    return "tie" if mark in ("C", "TIE") else mark


def outcome(verdict: str | None, model_position: str) -> str | None:
    """The model's result (`win` / `tie` / `loss`) given the verdict and the slot (`A`/`B`) its answer had."""
    if verdict is None:
        return None
    if verdict == "tie":
        return "tie"
    return "win" if verdict == model_position else "loss"


def judge_pairs(
    judge: Judge,
    template: str,
    ids: Sequence[str],
    instructions: Sequence[str],
    answers: Sequence[str],
    references: Sequence[str],
) -> list[dict[str, Any]]:
    """Judge every (answer, reference) pair in both orders; one verdict row per judgement.

    Rows hold `id`, `model_position` (`A` = model shown first), `raw` (the judge's full text), `verdict`
    (`A`/`B`/`tie`/None) and `outcome` for the model (`win`/`tie`/`loss`/None when unparseable).
    """
    jobs = []
    for item_id, instruction, answer, reference in zip(ids, instructions, answers, references, strict=True):
        jobs.append((item_id, "A", fill_template(template, instruction, answer, reference)))
        jobs.append((item_id, "B", fill_template(template, instruction, reference, answer)))
    raws = judge.complete([prompt for _, _, prompt in jobs])
    rows = []
    for (item_id, position, _), raw in zip(jobs, raws, strict=True):
        verdict = parse_verdict(raw)
        rows.append(
            {
                "id": item_id,
                "model_position": position,
                "verdict": verdict,
                "outcome": outcome(verdict, position),
                "raw": raw,
            }
        )
    return rows


def item_scores(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per-item score: mean over that item's parseable verdicts (both orders), win 1 / tie 0.5 / loss 0."""
    per_item: dict[str, list[float]] = {}
    for row in rows:
        per_item.setdefault(row["id"], [])
        if row["outcome"] is not None:
            per_item[row["id"]].append(OUTCOME_SCORE[row["outcome"]])
    return {item: float(np.mean(v)) for item, v in per_item.items() if v}


def win_rate(
    rows: Sequence[dict[str, Any]], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Win rate (baseline = 50) with a percentile-bootstrap interval over items (O(n_resamples x n)).

    Returns `win_rate`, `ci_low`, `ci_high`, `n` (items with a parseable verdict), `invalid` (unparseable
    verdicts), and the raw `wins`/`ties`/`losses` counts over all judgements.
    """
    scores = np.array(list(item_scores(rows).values()), dtype=float)
    counts = {k: float(sum(r["outcome"] == k for r in rows)) for k in ("win", "tie", "loss")}
    result = {
        "n": float(len(scores)),
        "invalid": float(sum(r["outcome"] is None for r in rows)),
        "wins": counts["win"],
        "ties": counts["tie"],
        "losses": counts["loss"],
    }
    if len(scores) == 0:
        return {**result, "win_rate": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    rate = 100.0 * scores.mean()
    if len(scores) < 2 or np.all(scores == scores[0]):
        low = high = rate  # no spread: every resample has the same mean
    else:
        from scipy.stats import bootstrap

        ci = bootstrap(
            (scores,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
        low, high = 100.0 * ci.low, 100.0 * ci.high
    return {**result, "win_rate": float(rate), "ci_low": float(low), "ci_high": float(high)}
