"""Numeric pool columns (diversity/pools/columns.py): read beside the texts, aligned through the loader's filters,
and refused with the file, row and field when they are not a finite number."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from diversity.pools import PoolError, load_pool


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def line_of(pair_id: str) -> int:
    """The 0-based line a pair comes from (`load_pool` ids are "<row>:<id>:<turn>")."""
    return int(pair_id.split(":")[0])


def chat(*turns):
    return [{"from": role, "value": text} for role, text in turns]


def messy_rows():
    """Rows whose filters (empty, too long, duplicate, later turns) drop or multiply pairs; quality = 10 * line + 0.5
    on every row that yields a kept pair, and a value nobody may read (null, text) on the rows that are dropped."""
    rows = [{"instruction": f"Question {i}?", "output": f"Answer {i}.", "quality": 10 * i + 0.5} for i in range(12)]
    rows[3] = {"instruction": "Question 3?", "output": "\u200b", "quality": None}  # empty after cleaning: never read
    rows[5] = {"instruction": "Question 5?", "output": "x" * 500, "quality": "n/a"}  # too long: never read
    rows[7] = {"instruction": "Question 1?", "output": "Answer 1.", "quality": -1.0}  # duplicate of line 1: dropped
    turns = chat(("human", "Hi 9"), ("gpt", "Hello 9"), ("human", "More 9"), ("gpt", "Sure 9"))
    rows[9] = {"id": "c9", "conversations": turns, "quality": 90.5}
    return rows


@pytest.mark.parametrize("turns", ["first", "with_context", "all"])
def test_columns_follow_their_pairs_through_the_loader_filters(tmp_path, turns):
    rows = messy_rows()
    pool = load_pool(str(write_jsonl(tmp_path / "p.jsonl", rows)), turns=turns, max_chars=200, columns=["quality"])
    values = pool.columns["quality"]
    assert values.dtype == np.float64 and len(values) == len(pool)
    assert [v for v in values] == [rows[line_of(i)]["quality"] for i in pool.ids]
    assert pool.stats["empty"] == 1 and pool.stats["too_long"] == 1 and pool.stats["duplicates"] == 1
    assert pool.stats["columns"] == ["quality"]
    assert list(values).count(90.5) == (1 if turns == "first" else 2)  # both pairs of line 9 carry its score
    capped = load_pool(str(tmp_path / "p.jsonl"), max_samples=5, seed=1, max_chars=200, columns=["quality"])
    assert len(capped) == 5 and list(capped.columns["quality"]) == [rows[line_of(i)]["quality"] for i in capped.ids]
    taken = capped.take([4, 0, 2])
    assert list(taken.columns["quality"]) == [capped.columns["quality"][i] for i in (4, 0, 2)]


def test_a_pool_loaded_without_columns_is_unchanged(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", messy_rows())
    plain, with_column = load_pool(str(path), max_chars=200), load_pool(str(path), max_chars=200, columns=["quality"])
    assert plain.columns == {} and "columns" not in plain.stats
    assert plain.content_hash == with_column.content_hash and plain.ids == with_column.ids  # texts alone make the hash
    assert plain.take([0, 1]).columns == {}


def test_nested_and_dotted_fields(tmp_path):
    rows = [
        {"prompt": "a", "completion": "b", "scores": {"reward": 1.5, "len": 3}, "rm.v2": 7},
        {"prompt": "c", "completion": "d", "scores": {"reward": -2, "len": 4}, "rm.v2": 8.25},
    ]
    pool = load_pool(str(write_jsonl(tmp_path / "p.jsonl", rows)), columns=("scores.reward", "rm.v2"))
    assert pool.columns["scores.reward"].tolist() == [1.5, -2.0]
    assert pool.columns["rm.v2"].tolist() == [7.0, 8.25]  # a field named with a dot is read as itself


def test_parquet_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"instruction": ["a", "c"], "output": ["b", "d"], "quality": [0.25, 4.0]})
    pq.write_table(table, tmp_path / "p.parquet")
    assert load_pool(str(tmp_path / "p.parquet"), columns=["quality"]).columns["quality"].tolist() == [0.25, 4.0]


def good(i, **extra):
    return {"instruction": f"q{i}", "output": f"a{i}", **extra}


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        (good(1), r"line 2: column 'quality' is missing in this row \(fields of the row: \['instruction', 'output'\]"),
        (good(1, quality=None), r"line 2: column 'quality' is null"),
        (good(1, quality="4.5"), r"line 2: column 'quality' is not a number \(str: '4.5'\)"),
        (good(1, quality=True), r"line 2: column 'quality' is not a number \(bool: True\)"),
        (good(1, quality=[4]), r"line 2: column 'quality' is not a number \(list: \[4\]\)"),
        (good(1, quality=math.nan), r"line 2: column 'quality' is not finite \(nan\)"),
        (good(1, quality=-math.inf), r"line 2: column 'quality' is not finite \(-inf\)"),
    ],
)
def test_bad_values_name_file_row_and_column(tmp_path, bad_row, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [good(0, quality=1), bad_row, good(2, quality=3)])  # NaN: json's NaN
    with pytest.raises(PoolError, match=f"^{re.escape(str(path))}: {message}"):
        load_pool(str(path), columns=["quality"])


def test_a_column_the_pool_does_not_have_lists_the_fields_it_has(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [good(0, score=1, meta={"reward": 2}), good(1, score=2)])
    with pytest.raises(PoolError, match=r"line 1: the pool has no column 'quality' \(fields of the row: "):
        load_pool(str(path), columns=["quality"])
    with pytest.raises(PoolError, match=r"'meta.rewards'.*fields of 'meta': \['reward'\]"):
        load_pool(str(path), columns=["meta.rewards"])
    with pytest.raises(PoolError, match=r"'score.value' \('score' is not an object: int\)"):
        load_pool(str(path), columns=["score.value"])
    array = tmp_path / "p.json"
    array.write_text(json.dumps([good(0, quality=1), good(1)]))
    with pytest.raises(PoolError, match=rf"^{re.escape(str(array))}: row 1: column 'quality' is missing in this row"):
        load_pool(str(array), columns=["quality"])
    with pytest.raises(PoolError, match="column names repeat"):
        load_pool(str(array), columns=["quality", "quality"])
