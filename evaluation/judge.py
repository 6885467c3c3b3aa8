"""Pairwise LLM judging against a benchmark's baseline answers, as the paper scores models (baseline = 50).

Each prompt is judged twice, once with the model's answer shown first and once with the baseline first,
because LLM judges prefer one position; only the average of the two orders cancels that bias, so a prompt is
scored only when *both* verdicts parse (`evaluation.winrate` counts the others as invalid and reports them).

Verdict marks. The judge ends with one mark in double brackets. Accepted, case- and space-insensitive:
`[[A]]`, `[[B]]`, `[[C]]` / `[[tie]]` (the packaged prompt) and Arena-Hard's `[[A>>B]]`, `[[A>B]]`, `[[A=B]]`,
`[[B>A]]`, `[[B>>A]]` (and the mirrored `<` forms). Every verdict is stored as one of those five Arena-Hard
labels; `[[A]]` is a plain (not strong) `A>B`. The final verdict is read from the *last line that holds a
mark*, so marks quoted earlier (in the reasoning, or inside the answers being discussed) do not count; if that
line holds marks that disagree (`[[A]] or [[B]]`), the verdict is invalid rather than guessed.

The judge is any OpenAI-compatible chat endpoint (`core.chat.ChatClient`) or a local Hugging Face model. The
prompt is a file (`prompts/judge_pairwise.txt` by default, `prompts/judge_arena_hard.txt` for Arena-Hard's
labels) with `{instruction}`, `{answer_a}` and `{answer_b}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

PROMPTS = Path(__file__).parent / "prompts"
DEFAULT_TEMPLATE = PROMPTS / "judge_pairwise.txt"
FIELDS = ("instruction", "answer_a", "answer_b")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")
_MARK = re.compile(r"\[\[\s*(TIE|[ABC]|[AB]\s*(?:>>|<<|>|<|=)\s*[AB])\s*\]\]", re.IGNORECASE)
# Arena-Hard's labels; `strong` verdicts (>>) weigh 3 in its Bradley-Terry fit and in `weighted_win_rate`.
LABELS = ("A>>B", "A>B", "A=B", "B>A", "B>>A")
_PLAIN = {"A": "A>B", "B": "B>A", "C": "A=B", "TIE": "A=B"}


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
    missing = [f"{{{f}}}" for f in FIELDS if f"{{{f}}}" not in template]
    if missing:
        raise ValueError(f"judge prompt {path} lacks the placeholders {missing}")
    return template


def fill_template(template: str, instruction: str, answer_a: str, answer_b: str) -> str:
    """Substitute the three placeholders in one pass: text inserted for one field is never searched again, so
    an instruction that contains `{answer_b}` stays literal (answers may contain any braces)."""
    values = {"instruction": instruction, "answer_a": answer_a, "answer_b": answer_b}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _label(mark: str) -> str | None:
    """One mark as an Arena-Hard label (`A>B` ...); None for a self-comparison such as `A>A`."""
    mark = re.sub(r"\s+", "", mark).upper()
    if mark in _PLAIN:
        return _PLAIN[mark]
    left, op, right = re.fullmatch(r"([AB])(>>|<<|>|<|=)([AB])", mark).groups()
    if left == right:
        return None
    if op == "=":
        return "A=B"
    if "<" in op:  # A<B is B>A
        left, right, op = right, left, op.replace("<", ">")
    return f"{left}{op}{right}"


def parse_verdict(text: str | None) -> str | None:
    """The judge's final verdict as one of `LABELS`, read from the last line holding a mark; None when there
    is no mark, or that line's marks disagree (ambiguous)."""
    lines = [line for line in (text or "").splitlines() if _MARK.search(line)]
    if not lines:
        return None
    labels = {_label(mark) for mark in _MARK.findall(lines[-1])}
    return labels.pop() if len(labels) == 1 else None


def outcome(verdict: str | None, model_position: str) -> str | None:
    """The model's result (`win` / `tie` / `loss`) given the verdict label and the slot (`A`/`B`) its answer
    had; None for no verdict."""
    if verdict is None:
        return None
    if verdict == "A=B":
        return "tie"
    return "win" if verdict[0] == model_position else "loss"


def judge_pairs(
    judge: Judge,
    template: str,
    ids: Sequence[str],
    instructions: Sequence[str],
    answers: Sequence[str],
    references: Sequence[str],
) -> list[dict[str, Any]]:
    """Judge every (answer, reference) pair in both orders; one verdict row per judgement.

    Rows hold `id`, `model_position` (`A` = model shown first), `verdict` (a label of `LABELS` or None),
    `outcome` for the model (`win`/`tie`/`loss`/None when unparseable), `strong` (a `>>` verdict),
    `model_chars` / `baseline_chars` (answer lengths in characters, for the length-controlled win rate) and
    `raw` (the judge's full text).
    """
    jobs = []
    for item_id, instruction, answer, reference in zip(ids, instructions, answers, references, strict=True):
        jobs.append((item_id, "A", answer, reference, fill_template(template, instruction, answer, reference)))
        jobs.append((item_id, "B", answer, reference, fill_template(template, instruction, reference, answer)))
    raws = judge.complete([job[-1] for job in jobs])
    rows = []
    for (item_id, position, answer, reference, _), raw in zip(jobs, raws, strict=True):
        verdict = parse_verdict(raw)
        rows.append(
            {
                "id": item_id,
                "model_position": position,
                "verdict": verdict,
                "outcome": outcome(verdict, position),
                "strong": verdict is not None and ">>" in verdict,
                "model_chars": len(answer),
                "baseline_chars": len(reference),
                "raw": raw,
            }
        )
    return rows
