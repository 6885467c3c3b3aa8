"""Your own evaluation prompts: any JSON / JSON-lines / Parquet file (or saved dataset, or Hub id) of records.

Each record gives a prompt and, optionally, a reference answer (scored by `reference_loss` and the
`generation_stats` similarity, and the judge's baseline unless a separate baseline is given), a baseline answer
for the pairwise judge, and an id. Field names are configurable (`fields`). Files are read by the pool reader
(`diversity.pools.readers`), so a broken file fails the same way a broken pool does, and every bad record is
reported with the file, the row (or line) and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evaluation.benchmarks import BenchmarkItem

DEFAULT_FIELDS = {"prompt": "prompt", "reference": "reference", "baseline": "baseline", "id": "id"}


def _text(record: dict, key: str | None, where: str, required: bool) -> str | None:
    """`record[key]` as text; None when optional and absent/null; errors name the row and field."""
    if key is None:
        return None
    value = record.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}: missing field '{key}'")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}: field '{key}' must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise ValueError(f"{where}: field '{key}' is empty")
    return value


def load_custom(source: str, fields: dict[str, str | None] | None = None) -> list[BenchmarkItem]:
    """Items of a custom prompt file, in file order (see the module docstring).

    Args:
        source: A .json / .jsonl / .parquet file, a `save_to_disk` folder, or a Hub dataset id.
        fields: Record keys for `prompt` (required), `reference`, `baseline` and `id` (optional; null = not
            read). Unset entries keep `DEFAULT_FIELDS`. Without an id field, the row number is the id.
    """
    from diversity.pools.readers import read_records

    if unknown := sorted(set(fields or {}) - set(DEFAULT_FIELDS)):
        raise ValueError(f"custom benchmark {source}: unknown fields {unknown}; use {sorted(DEFAULT_FIELDS)}")
    keys = {**DEFAULT_FIELDS, **(fields or {})}
    path = Path(source).expanduser()
    hub_id = source.count("/") == 1 and not source.startswith((".", "/", "~")) and not path.suffix
    if not path.exists() and not hub_id:
        raise FileNotFoundError(f"custom benchmark not found: {source} (no such file or folder, nor a Hub dataset id)")
    if not keys["prompt"]:
        raise ValueError(f"custom benchmark {source}: fields.prompt must name the prompt field")
    items: list[BenchmarkItem] = []
    seen: dict[str, str] = {}
    for index, label, record in read_records(str(source), "train", False, {}):
        where = f"{source}: {label}"
        if not isinstance(record, dict):
            raise ValueError(
                f"{where}: expected an object with a '{keys['prompt']}' field, got {type(record).__name__}"
            )
        item_id = record.get(keys["id"]) if keys["id"] else None
        item_id = str(index) if item_id is None else item_id
        if not isinstance(item_id, str | int) or isinstance(item_id, bool):
            raise ValueError(f"{where}: field '{keys['id']}' must be text or an integer, got {type(item_id).__name__}")
        item_id = str(item_id)
        if item_id in seen:
            raise ValueError(f"{where}: field '{keys['id']}': id '{item_id}' repeats {seen[item_id]}")
        seen[item_id] = label
        meta: dict[str, Any] = {}
        if (baseline := _text(record, keys["baseline"], where, required=False)) is not None:
            meta["baseline"] = baseline
        items.append(
            BenchmarkItem(
                id=item_id,
                prompt=_text(record, keys["prompt"], where, required=True),
                reference=_text(record, keys["reference"], where, required=False),
                meta=meta,
            )
        )
    if not items:
        raise ValueError(f"custom benchmark {source}: no prompts in the file")
    return items
