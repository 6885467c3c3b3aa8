"""core.jsonl: atomic JSON-lines files, user files read with errors naming file and line, strict JSON for runs."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from core.jsonl import dump_json, load_jsonl, read_jsonl_objects, save_jsonl, strict_json


def test_rows_round_trip_with_any_text(tmp_path):
    rows = [{"prompt": "${x} {} %s \\ \u200d 👩‍💻", "n": 1}, {"prompt": "", "n": None}]
    path = save_jsonl(tmp_path / "rows.jsonl", rows)
    assert load_jsonl(path) == rows and not list(tmp_path.glob("*.tmp*"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"a": 1}\n\n{"a": \n', r"bad\.jsonl, line 3: invalid JSON"),
        ('{"a": 1}\n[1]\n', r"line 2: expected a JSON object"),
    ],
)
def test_a_users_file_is_refused_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_jsonl_objects(path)


def test_run_files_are_strict_json_with_missing_values_as_null():
    """metrics.json of a 0-step run held a bare NaN (train/loss_first), which strict parsers reject."""
    buffer = io.StringIO()
    dump_json({"train/loss_first": math.nan, "k": np.int64(3), "xs": np.array([0.5, np.inf])}, buffer)
    assert json.loads(buffer.getvalue(), parse_constant=lambda c: pytest.fail(f"bare {c}")) == {
        "train/loss_first": None,
        "k": 3,
        "xs": [0.5, None],
    }
    assert strict_json({"nested": [{"x": -math.inf}]}) == {"nested": [{"x": None}]}
