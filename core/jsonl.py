"""JSON-lines files: written atomically, read back, and read from a user with errors naming file and row.

Answers, verdicts, per-item scores and user tag files all travel as JSONL; one module keeps how.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from core.cache import atomic_write


def save_jsonl(path: str | Path, rows: Sequence[dict]) -> Path:
    """Write rows as JSON lines atomically (temp file, then rename), so a killed job leaves no half file."""
    path = Path(path)
    with atomic_write(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def load_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file written by `save_jsonl`."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def read_jsonl_objects(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a user's JSONL file; a line that is not a JSON object
    raises one ValueError naming the file and the row."""
    rows = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {lineno}: invalid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise ValueError(f"{path}, line {lineno}: expected a JSON object, got {type(row).__name__}")
            rows.append((lineno, row))
    return rows


def strict_json(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None (recursively), numpy values as plain ones: the
    run's JSON files stay valid JSON (a bare `NaN` is rejected by strict parsers such as jq), and a reader sees a
    missing value rather than a number."""
    if isinstance(value, Mapping):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays and scalars
        return strict_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dump_json(value: Any, fh: IO[str], **kwargs: Any) -> None:
    """`json.dump` of `strict_json(value)`, refusing any NaN left over."""
    json.dump(strict_json(value), fh, allow_nan=False, **kwargs)
