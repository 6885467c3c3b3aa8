"""Generated pool files, valid and broken, in every supported format: `load_pool` never crashes or loses data.

Each case is built from a seed: records in one of four schemas (Alpaca, instruction/response, ShareGPT,
messages), written into one container (JSON array, {"data": [...]}, JSON lines, gzip, Parquet), then changed
by one mutation. Every case knows its outcome in advance: the exact pairs and counters it must give, or the
`PoolError` it must raise and the row (or line) that error must name. Any other exception fails the test.
"""

from __future__ import annotations

import codecs
import gzip
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from diversity.pools import PoolError, load_pool

SCHEMAS = ("alpaca", "instruction_response", "sharegpt", "messages")
CONTAINERS = ("json", "data", "jsonl", "jsonl.gz", "parquet")
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "river",
    "token",
    "garden",
    "bridge",
    "ünïcode",
    "数据",
    "emoji🙂",
    "tab\tin",
    "line\u2028sep",
]
ASSISTANT_ALIASES = ("gpt", "assistant", "bot", "model", "chatgpt", "Assistant\n", "GPT", "ai")
USER_ALIASES = ("human", "user", "User", " human ")
N_CASES = 2000
# Texts with nothing visible: zero-width space, soft hyphen, direction marks, Hangul filler, word joiner, BOM,
# braille blank, a variation selector (issue 21.7: all but the first were accepted as instructions).
INVISIBLE_ONLY = ["\u200b \u200b", "\u00ad", "\u200e\u200f", "\u3164", "\u2060 \u2060", "\ufeff", "\u2800", "\ufe0f"]


@dataclass
class Case:
    """One generated file and what loading it must give."""

    records: list[Any]
    pairs: list[tuple[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    turns: int = 0
    error: str | None = None  # regex the PoolError must match (besides the file name)
    options: dict[str, Any] = field(default_factory=dict)


def text(rng: random.Random, i: int) -> str:
    return f"t{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 6)))


def build_records(rng: random.Random, schema: str, n: int) -> Case:
    """Valid records with their expected pairs (texts are unique, clean and non-empty)."""
    case = Case([])
    for i in range(n):
        ins, res = text(rng, 2 * i), text(rng, 2 * i + 1)
        if schema == "alpaca":
            extra = rng.choice(["", "   ", None, text(rng, 10_000 + i)])
            row = {"instruction": ins, "output": res}
            if extra is not None or rng.random() < 0.5:
                row["input"] = extra
            case.pairs.append((f"{ins}\n\n{extra}" if extra and extra.strip() else ins, res))
        elif schema == "instruction_response":
            row = {rng.choice(["instruction", "prompt"]): ins, rng.choice(["response", "completion"]): res}
            case.pairs.append((ins, res))
        else:
            role_key, text_key = ("from", "value") if schema == "sharegpt" else ("role", "content")
            turns = []
            if rng.random() < 0.2:
                turns.append({role_key: "system", text_key: "be brief"})
                case.counts["skipped_turns"] = case.counts.get("skipped_turns", 0) + 1
            for t in range(rng.randint(1, 3)):
                q, a = (
                    (ins, res) if t == 0 else (text(rng, 1000 * (i + 1) + 2 * t), text(rng, 1000 * (i + 1) + 2 * t + 1))
                )
                turns += [
                    {role_key: rng.choice(USER_ALIASES), text_key: q},
                    {role_key: rng.choice(ASSISTANT_ALIASES), text_key: a},
                ]
                case.pairs.append((q, a))
            case.turns += len(turns)
            row = {"id": f"c{i}", "conversations" if schema == "sharegpt" else "messages": turns}
        case.records.append(row)
    return case


def write(path: Path, case: Case, container: str) -> Path:
    """The records in a container; returns the path to load."""
    if container == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = path.with_suffix(".parquet")
        columns = list(dict.fromkeys(key for record in case.records for key in record))  # mixed schema: nulls
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in case.records]), path)
        return path
    if container == "json":
        data = json.dumps(case.records, indent=1, ensure_ascii=False)
    elif container == "data":
        data = json.dumps({"data": case.records}, indent=1, ensure_ascii=False)
    else:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in case.records)
    raw = data.encode()
    if container == "jsonl.gz":
        path = path.with_suffix(".jsonl.gz")
        path.write_bytes(gzip.compress(raw))
        return path
    path = path.with_suffix(".jsonl" if container == "jsonl" else ".json")
    path.write_bytes(raw)
    return path


def where(container: str, i: int) -> str:
    """How an error names record i in a container (field errors)."""
    return {"json": f"row {i}", "data": f"row {i} of 'data'", "parquet": f"row {i}"}.get(container, f"line {i + 1}")


# ---- mutations: each changes the records, the expectation, or the written bytes -------------------------------


def mutate_records(rng: random.Random, case: Case, schema: str, container: str) -> str:
    """Change records (before writing); returns the mutation's name."""
    i = rng.randrange(len(case.records))
    row = case.records[i]
    conversation = schema in ("sharegpt", "messages")
    turns_key = "conversations" if schema == "sharegpt" else "messages"
    options = ["none", "extra_null", "extra_field", "duplicate", "zero_width", "missing_field"]
    options += ["bad_type", "not_object"] if container != "parquet" else []
    if conversation:
        options += ["empty_conversation", "user_only", "assistant_first", "unknown_role", "turn_missing_text"]
        options += ["turns_not_list", "turn_not_object"] if container != "parquet" else []
    elif container != "parquet":
        options += ["alpaca_input_falsy"] if schema == "alpaca" else []
    name = rng.choice(options)
    lost = pairs_of(case, schema, i)
    if name == "extra_null":
        row["messages" if not conversation else "instruction"] = None
    elif name == "extra_field":
        row["meta"] = {"source": "x", "n": [1, 2]}
    elif name == "duplicate":
        case.records.append(json.loads(json.dumps(row)))
        extra = pairs_of(case, schema, len(case.records) - 1, pairs_before=len(case.pairs))
        case.counts["duplicates"] = len(extra)
        case.turns += len(row.get(turns_key, [])) if conversation else 0
        case.counts["skipped_turns"] = case.counts.get("skipped_turns", 0) + sum(
            1 for t in row.get(turns_key, []) if isinstance(t, dict) and "system" in t.values()
        )
    elif name == "zero_width":
        if conversation:
            turn = next(t for t in row[turns_key] if t.get("from", t.get("role")) != "system")
            key = "value" if "value" in turn else "content"
            old = turn[key]
            turn[key] = rng.choice(INVISIBLE_ONLY)
            case.pairs = [(a, b) for a, b in case.pairs if old not in (a, b)]
        else:
            key = "output" if "output" in row else next(k for k in ("response", "completion") if k in row)
            row[key] = rng.choice(INVISIBLE_ONLY)
            case.pairs = [p for p in case.pairs if p not in lost]
        case.counts["empty"] = 1
    elif name == "not_object":
        case.records[i] = rng.choice([[1, 2], "text", 3, True])
        case.error = f"{where(container, i)}: expected an object"
    elif name == "missing_field":
        if conversation:
            row.pop(turns_key)
            case.error = f"{where(container, i)}: no 'conversations', 'messages', 'instruction' or 'prompt' field"
        else:
            key = next(k for k in ("output", "response", "completion") if k in row)
            row.pop(key)
            case.error = f"{where(container, i)}: field 'output' \\(or 'response' / 'completion'\\) is missing"
    elif name == "bad_type":
        if conversation:
            row[turns_key][-1]["value" if schema == "sharegpt" else "content"] = rng.choice([3, [1], {"a": 1}])
            case.error = f"{where(container, i)}: field '{turns_key}\\[\\d+\\]\\.(value|content)' is not a string"
        else:
            key = next(k for k in ("instruction", "prompt") if k in row)
            row[key] = rng.choice([3, 0.5, ["x"], {"a": "b"}, False])
            case.error = f"{where(container, i)}: field '{key}' is not a string"
    elif name == "alpaca_input_falsy":
        row["input"] = rng.choice([0, False, [], {}])
        case.error = f"{where(container, i)}: field 'input' is not a string"
    elif name == "empty_conversation":
        case.turns -= len(row[turns_key])
        case.counts.pop("skipped_turns", None)
        row[turns_key] = []
        case.pairs = [p for p in case.pairs if p not in lost]
        case.counts["empty_conversations"] = 1
        _recount_system(case, turns_key)
    elif name == "user_only":
        keep = [t for t in row[turns_key] if t.get("from", t.get("role")).strip().lower() in ("human", "user")]
        _keep_only(case, row, turns_key, keep, lost, "unanswered_turns")
    elif name == "assistant_first":
        keep = [t for t in row[turns_key] if t.get("from", t.get("role")).strip().lower() not in ("human", "user")]
        keep = [t for t in keep if t.get("from", t.get("role")) != "system"]
        _keep_only(case, row, turns_key, keep, lost, "unprompted_turns")
    elif name == "unknown_role":
        role = rng.choice(["narrator", "", "critic"])
        turn = next(t for t in row[turns_key] if t.get("from", t.get("role")).strip().lower() in ("human", "user"))
        turn["from" if "from" in turn else "role"] = role
        first = next(p for p in lost)
        case.pairs = [p for p in case.pairs if p != first]
        case.counts["unknown_roles"] = 1
        case.counts["unprompted_turns"] = 1
    elif name == "turn_missing_text":
        turn = row[turns_key][-1]
        turn.pop("value" if schema == "sharegpt" else "content")
        case.error = f"{where(container, i)}: field '{turns_key}\\[\\d+\\]\\.(value|content)' is missing"
    elif name == "turns_not_list":
        row[turns_key] = "human: hi"
        case.error = f"{where(container, i)}: field '{turns_key}' is not a list"
    elif name == "turn_not_object":
        row[turns_key][0] = "hi"
        case.error = f"{where(container, i)}: field '{turns_key}\\[0\\]' is not an object"
    return name


def _keep_only(case: Case, row: dict, turns_key: str, keep: list, lost: list, counter: str) -> None:
    """Cut the conversation down to `keep`, whose turns the reader drops and counts under `counter`."""
    case.turns -= len(row[turns_key]) - len(keep)
    row[turns_key] = keep
    case.pairs = [p for p in case.pairs if p not in lost]
    case.counts[counter] = len(keep)
    _recount_system(case, turns_key)


def _recount_system(case: Case, turns_key: str) -> None:
    n = sum(
        1
        for r in case.records
        if isinstance(r, dict)
        for t in r.get(turns_key) or []
        if t.get("from", t.get("role")) == "system"
    )
    case.counts["skipped_turns"] = n


def pairs_of(case: Case, schema: str, i: int, pairs_before: int | None = None) -> list[tuple[str, str]]:
    """The expected pairs record i contributes (by content; texts are unique per record)."""
    row = case.records[i]
    if not isinstance(row, dict):
        return []
    texts = set()
    for value in row.values():
        if isinstance(value, str):
            texts.add(value)
        if isinstance(value, list):
            texts |= {t.get("value", t.get("content")) for t in value if isinstance(t, dict)}
    return [p for p in case.pairs[:pairs_before] if p[1] in texts]


def mutate_bytes(rng: random.Random, path: Path, case: Case, container: str, before: str) -> str:
    """Change the written file's bytes (JSON containers only); returns the mutation's name."""
    raw = path.read_bytes()
    plain = container in ("json", "data", "jsonl")
    options = ["none", "bom", "crlf"] if plain else ["none"]
    if plain:
        options += ["utf16", "invalid_utf8", "latin1", "gzip_named_json", "trailing_garbage", "deep_nesting"]
        options += ["truncated", "truncated_allowed", "broken_element"] * 3 + ["empty_file", "blank_lines"]
        options += ["second_array"] * 2 if container == "json" else []
    name = rng.choice(options)
    n = len(case.records)
    if case.error and name not in ("none", "bom", "crlf", "gzip_named_json"):
        return "none"  # one fault per case: the expected error stays the record's
    if name == "bom":
        path.write_bytes(codecs.BOM_UTF8 + raw)
    elif name == "crlf":
        path.write_bytes(raw.replace(b"\n", b"\r\n"))
    elif name == "blank_lines":
        path.write_bytes(b"\n\n" + raw.replace(b"\n", b"\n \n") + b"\n")
    elif name == "utf16":
        path.write_bytes(raw.decode().encode("utf-16"))
    elif name == "gzip_named_json":
        path.write_bytes(gzip.compress(raw))
    elif name == "invalid_utf8":
        at = raw.index(b"t", len(raw) // 2)
        path.write_bytes(raw[:at] + b"\xff" + raw[at:])
        line = raw.count(b"\n", 0, at) + 1
        case.error, case.pairs = f"line {line}: not UTF-8", []
    elif name == "latin1":
        if b'"t' not in raw:
            return "none"
        path.write_bytes(raw.decode().replace('"t', '"café t', 1).encode("latin-1", "replace"))
        case.error, case.pairs = "line \\d+: not UTF-8", []
    elif name == "empty_file":
        path.write_bytes(rng.choice([b"", b"  \n\t"]))
        case.error = "line 1: the file is empty"
    elif name == "trailing_garbage":
        path.write_bytes(raw.rstrip() + b"\n}garbage")
        case.error = "line \\d+: (unexpected data after|invalid JSON)"
    elif name == "second_array":
        path.write_bytes(raw + b"\n" + raw)
        case.error = "line \\d+: unexpected data after the JSON array ends"
    elif name == "deep_nesting":
        depth = 100_000
        nested = b"[" * depth + b"]" * depth
        if container == "jsonl":
            lines = raw.split(b"\n")
            lines.insert(1, b'{"instruction": "x", "output": "y", "deep": ' + nested + b"}")
            path.write_bytes(b"\n".join(lines))
            case.error = "line 2: JSON nested too deeply"
        else:
            path.write_bytes(raw.replace(b"[", b"[" + nested + b",", 1) if container == "json" else nested)
            case.error = "(row 0|line 1)[^:]*: JSON nested too deeply"
    elif name in ("truncated", "truncated_allowed", "broken_element"):
        if container == "data" or n < 2 or before not in ("none", "extra_field", "extra_null"):
            return "none"
        starts = record_starts(raw, container)
        cut = starts[-1] + (len(raw) - starts[-1]) // 2
        if name == "broken_element":
            k = rng.randrange(n)
            path.write_bytes(raw[: starts[k]] + b"{oops " + raw[starts[k] :])
            case.error = (
                f"row {k} \\(line \\d+\\): invalid JSON" if container == "json" else f"line {k + 1}: invalid JSON"
            )
            return name
        path.write_bytes(raw[:cut])
        lost = pairs_of(case, "", n - 1)
        if name == "truncated":
            case.error = (
                f"{'row' if container == 'json' else 'line'} {n - 1}[ (]"
                if container == "json"
                else f"line {n}: invalid JSON"
            )
        else:
            case.options["allow_truncated_tail"] = True
            case.pairs = [p for p in case.pairs if p not in lost]
            case.counts["truncated_tail_chars"] = len(raw[starts[-1] : cut].decode("utf-8", "ignore"))
            last = case.records.pop()
            case.turns -= len(last.get("conversations", last.get("messages", [])))
            _recount_system(case, "conversations" if "conversations" in last else "messages")
    return name


def record_starts(raw: bytes, container: str) -> list[int]:
    """Byte offset where each record starts in a written JSON array or JSON lines file."""
    if container == "jsonl":
        starts, at = [], 0
        for line in raw.split(b"\n")[:-1]:
            starts.append(at)
            at += len(line) + 1
        return starts
    text = raw.decode()
    decoder, pos, starts = json.JSONDecoder(), text.index("[") + 1, []
    while True:
        while text[pos] in " \n,":
            pos += 1
        if text[pos] == "]":
            return [len(text[:s].encode()) for s in starts]
        starts.append(pos)
        _, pos = decoder.raw_decode(text, pos)


def make_case(seed: int, tmp_path: Path) -> tuple[Path, Case, str]:
    rng = random.Random(seed)
    schema, container = rng.choice(SCHEMAS), rng.choice(CONTAINERS)
    case = build_records(rng, schema, rng.randint(1, 6))
    name = mutate_records(rng, case, schema, container)
    path = write(tmp_path / f"case{seed}", case, container)
    if container != "parquet":
        name += "+" + mutate_bytes(rng, path, case, container, name)
    if not case.pairs and case.error is None:
        case.error = "no usable \\(instruction, response\\) pairs"
    return path, case, f"{schema}/{container}/{name}"


def check(path: Path, case: Case, label: str) -> None:
    try:
        pool = load_pool(str(path), **{"turns": "all", **case.options})  # every pair: the cases count them all
    except PoolError as err:
        message = str(err)
        assert "\n" not in message, label
        assert str(path) in message, f"{label}: error does not name the file: {message}"
        assert case.error is not None, f"{label}: valid file refused: {message}"
        assert re.search(case.error, message), f"{label}: expected /{case.error}/, got: {message}"
        return
    assert case.error is None, f"{label}: accepted, but expected an error /{case.error}/"
    assert list(zip(pool.instructions, pool.responses, strict=True)) == case.pairs, label
    stats = pool.stats
    for key, expected in case.counts.items():
        got = sum(stats[key].values()) if isinstance(stats[key], dict) else stats[key]
        assert got == expected, f"{label}: stats[{key}] = {stats[key]}, expected {expected}"
    # nothing lost uncounted: every pair is kept or counted, every turn is in a pair or counted
    assert stats["pairs"] == stats["kept"] + stats["empty"] + stats["too_long"] + stats["duplicates"] + stats["capped"]
    if case.turns:
        odd = sum(stats["skipped_turns"].values()) + sum(stats["unknown_roles"].values())
        counted = 2 * stats["pairs"] + stats["unanswered_turns"] + stats["unprompted_turns"] + odd
        assert counted == case.turns, f"{label}: {counted} turns accounted for, file has {case.turns} ({stats})"


def test_generated_pools_load_exactly_or_fail_with_one_located_error(tmp_path):
    kinds: Counter[str] = Counter()
    for seed in range(N_CASES):
        path, case, label = make_case(seed, tmp_path)
        check(path, case, f"seed {seed} {label}")
        kinds[label.split("/")[1]] += 1
    assert sum(kinds.values()) >= 1000 and set(kinds) == set(CONTAINERS)


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("pool.txt", b"[]", "unsupported pool file type '.txt'"),
        ("corrupt.parquet", b"PAR1 not really", "not a readable Parquet file"),
        ("cut.parquet", None, "not a readable Parquet file|row 0: unreadable Parquet data"),
        ("array.json", b"[]", "no usable"),
        ("scalar.json", b"42", "line 1: expected an object"),
        ("wrapped.json", b'{"data": {"instruction": "a"}}', "field 'data' is not a list"),
    ],
)
def test_file_level_faults_are_one_line(tmp_path, name, content, error):
    path = tmp_path / name
    if content is None:  # a real Parquet file cut in half
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{"instruction": f"q{i}", "output": "a" * 50} for i in range(500)]), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(PoolError, match=error) as info:
        load_pool(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
