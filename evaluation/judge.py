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
labels) with `{instruction}`, `{answer_a}` and `{answer_b}`, filled by plain one-pass replacement (never
`str.format` or OmegaConf), so answers and prompts may hold any braces, `${...}`, `%s` or backslashes.

Resuming. Judge calls are the slow and paid part, so with a `cache_path` every reply is appended to a JSON-lines
verdict cache (`VerdictCache`) as it arrives, keyed by (judge identity, template hash, prompt, both answers,
order). A rerun after a crash, a kill or an endpoint that gave up sends only the judgements not yet made; the
`EndpointError` of an endpoint that gave up says how many judgements are kept and where.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.chat import EndpointError
from core.progress import Ticker

log = logging.getLogger(__name__)

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
        from core.generate import generate_with_model

        return generate_with_model(
            self.name_or_path,
            prompts,
            self.device,
            max_new_tokens=self.max_new_tokens,
            batch_size=self.batch_size,
            description="judging",
        )


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


def judge_identity(judge: Any) -> dict[str, Any] | None:
    """What makes two judges give the same verdict (model and decoding); None when unknown (no caching).

    The endpoint's URL is not part of it, so a judge served again elsewhere (a restarted server on a new port)
    resumes from the same cache. A judge object of your own may define `cache_id` (any JSON value) to be cached.
    """
    if hasattr(judge, "cache_id"):
        return {"cache_id": judge.cache_id}
    if hasattr(judge, "base_url") and hasattr(judge, "model"):  # core.chat.ChatClient
        return {"backend": "openai", "model": judge.model, "temperature": judge.temperature, "max": judge.max_tokens}
    if isinstance(judge, HFJudge):
        return {"backend": "hf", "model": judge.name_or_path, "max": judge.max_new_tokens}
    return None


class VerdictCache:
    """An append-only JSON-lines file of judge replies, one `{"key", "raw"}` per line.

    Each reply is appended with one `write` and synced at once, so a killed run keeps every reply it received; a
    line torn by the kill is skipped (and counted in `torn`) when the file is read back. Reading is O(lines).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, str] = {}
        self.torn = 0
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.entries[entry["key"]] = entry["raw"]
                except (ValueError, KeyError, TypeError):
                    self.torn += bool(line.strip())
        if self.torn:
            log.warning("verdict cache %s: %d unreadable line(s) skipped (a killed write)", self.path, self.torn)

    @staticmethod
    def key(identity: Any, template: str, instruction: str, answer_a: str, answer_b: str, order: str) -> str:
        """SHA-256 over everything the reply depends on."""
        template_hash = hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()
        blob = json.dumps([identity, template_hash, instruction, answer_a, answer_b, order], ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        return self.entries.get(key)

    def add(self, key: str, raw: str) -> None:
        """Append one reply durably (a torn last line from an earlier kill is closed first)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"key": key, "raw": raw}, ensure_ascii=False) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            if os.fstat(fd).st_size and not self._ends_with_newline():
                line = "\n" + line
            os.write(fd, line.encode("utf-8", "surrogatepass"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries[key] = raw

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"


def _ask(judge: Judge, prompts: list[str], on_answer: Any, chunk: int) -> None:
    """Send `prompts`, handing each reply to `on_answer(index, raw)`: as it arrives when the judge can stream
    (`core.chat.ChatClient`), else after each `chunk` of prompts (a local model), so a crash loses little."""
    if "on_answer" in inspect.signature(judge.complete).parameters:
        judge.complete(prompts, on_answer=on_answer)
        return
    for start in range(0, len(prompts), chunk):
        for offset, raw in enumerate(judge.complete(prompts[start : start + chunk])):
            on_answer(start + offset, raw)


def judge_pairs(
    judge: Judge,
    template: str,
    ids: Sequence[str],
    instructions: Sequence[str],
    answers: Sequence[str],
    references: Sequence[str],
    cache_path: str | Path | None = None,
    chunk: int = 16,
) -> list[dict[str, Any]]:
    """Judge every (answer, reference) pair in both orders; one verdict row per judgement.

    Rows hold `id`, `model_position` (`A` = model shown first), `verdict` (a label of `LABELS` or None),
    `outcome` for the model (`win`/`tie`/`loss`/None when unparseable), `strong` (a `>>` verdict),
    `model_chars` / `baseline_chars` (answer lengths in characters, for the length-controlled win rate), `raw`
    (the judge's full text) and `cached` (the reply came from the verdict cache of an earlier run).

    With `cache_path` (a JSON-lines file, e.g. `<run_dir>/verdicts/<benchmark>.cache.jsonl`), replies are read
    from and appended to a `VerdictCache`, so a rerun resumes. Identical judgements are asked once. Progress
    with ETA is logged (`core.progress`). O(2n) judge calls at most.
    """
    jobs = []
    for item_id, instruction, answer, reference in zip(ids, instructions, answers, references, strict=True):
        jobs.append((item_id, "A", answer, reference, instruction, answer, reference))
        jobs.append((item_id, "B", answer, reference, instruction, reference, answer))
    identity = judge_identity(judge)
    if cache_path is not None and identity is None:
        log.warning("judge %s has no identity (model, decoding): its verdicts are not cached", type(judge).__name__)
    cache = VerdictCache(cache_path) if cache_path is not None and identity is not None else None
    keys = [VerdictCache.key(identity, template, *job[4:], job[1]) for job in jobs]
    raws: dict[str, str] = {}
    cached = set()
    if cache is not None:
        raws = {key: hit for key in keys if (hit := cache.get(key)) is not None}
        cached = set(raws)
    pending: dict[str, str] = {}  # key -> prompt, each distinct judgement once
    for key, job in zip(keys, jobs, strict=True):
        if key not in raws and key not in pending:
            pending[key] = fill_template(template, *job[4:])
    order = list(pending)
    ticker = Ticker(len(order))
    if cached:
        log.info("judging: %d of %d judgements from the verdict cache %s", len(cached), len(jobs), cache_path)

    def on_answer(index: int, raw: str) -> None:
        raws[order[index]] = raw
        if cache is not None:
            cache.add(order[index], raw)
        done = len(raws) - len(cached)
        if ticker.due(done):
            log.info("judging: %s", ticker.status(done))

    if order:
        try:
            _ask(judge, [pending[key] for key in order], on_answer, chunk)
        except EndpointError as err:
            if cache is None:
                raise
            unique = set(keys)
            kept = sum(key in raws for key in unique)
            raise EndpointError(
                f"{err}\njudging stopped with {kept} of {len(unique)} judgements made; they are kept in the verdict "
                f"cache {cache_path}, and a rerun with the same cache asks only the {len(unique) - kept} missing"
            ) from None
    rows = []
    for (item_id, position, answer, reference, *_), key in zip(jobs, keys, strict=True):
        raw = raws[key]
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
                "cached": key in cached,
            }
        )
    return rows
