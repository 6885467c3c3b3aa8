"""Benchmark loaders: the asset-package defaults, the shared AlpacaEval/Arena-Hard files, and bad input."""

from __future__ import annotations

import json

import pytest

from evaluation.benchmarks import BenchmarkItem, load_benchmark, subsample


def test_mtbench_from_asset_package_has_gpt4_references_for_30_questions():
    items = load_benchmark("mtbench")
    assert len(items) == 80
    assert items[0].id == "81" and items[0].prompt.startswith("Compose an engaging travel blog")
    with_reference = load_benchmark("mtbench", require_reference=True)
    assert len(with_reference) == 30
    assert {item.meta["category"] for item in with_reference} == {"math", "reasoning", "coding"}


def test_ifbench_items_carry_rule_ids_and_kwargs():
    items = load_benchmark("ifbench")
    assert len(items) == 294
    assert all(item.reference is None for item in items)
    assert all(len(item.meta["instruction_id_list"]) == len(item.meta["kwargs"]) for item in items)


def test_subsample_is_seeded_and_keeps_benchmark_order():
    first = [item.id for item in load_benchmark("mtbench", limit=5, seed=3)]
    assert first == [item.id for item in load_benchmark("mtbench", limit=5, seed=3)]
    assert first != [item.id for item in load_benchmark("mtbench", limit=5, seed=4)]
    assert first == sorted(first, key=int)
    items = [BenchmarkItem(str(i), f"p{i}") for i in range(4)]
    assert subsample(items, None, 0) == items and subsample(items, 10, 0) == items
    with pytest.raises(ValueError, match="limit"):
        subsample(items, 0, 0)


def test_alpaca_eval_and_arena_hard_from_shared_data(shared_data):
    alpaca = load_benchmark("alpaca_eval", str(shared_data / "alpaca_eval"))
    assert len(alpaca) == 805 and all(item.reference for item in alpaca)
    arena = load_benchmark("arena_hard", str(shared_data / "arena_hard"), limit=20, seed=0)
    assert len(arena) == 20 and all(item.reference and item.prompt for item in arena)
    # The same file given directly (not its folder) reads the same rows.
    direct = load_benchmark("alpaca_eval", str(shared_data / "alpaca_eval" / "gpt4_1106_preview_outputs.json"))
    assert direct[5] == alpaca[5]


def test_arena_hard_format_joins_answers_by_question_id(tmp_path):
    questions = [
        {"question_id": "q2", "turns": [{"content": "Second?"}]},
        {"question_id": "q1", "turns": [{"content": "First?"}]},
    ]
    answers = [{"question_id": q, "choices": [{"turns": [{"content": f"answer {q}"}]}]} for q in ("q1", "q2")]
    (tmp_path / "question.jsonl").write_text("\n".join(json.dumps(r) for r in questions))
    (tmp_path / "gpt-4-0314_answers.jsonl").write_text("\n".join(json.dumps(r) for r in answers))
    items = load_benchmark("arena_hard", str(tmp_path))
    got = [(i.id, i.prompt, i.reference) for i in items]
    assert got == [("q2", "Second?", "answer q2"), ("q1", "First?", "answer q1")]


def test_bad_input_names_file_row_and_field(tmp_path):
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps([{"instruction": "a", "output": "b"}, {"instruction": "c"}]))
    with pytest.raises(ValueError, match=r"outputs\.json, row 1: missing field \['output'\]"):
        load_benchmark("alpaca_eval", str(path))
    (tmp_path / "question.jsonl").write_text('{"question_id": 1, "turns": ["hi"]}\n')
    (tmp_path / "gpt-4-0314_answers.jsonl").write_text("")
    with pytest.raises(ValueError, match=r"no baseline answer for question ids \['1'\]"):
        load_benchmark("arena_hard", str(tmp_path))
    (tmp_path / "question.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"question\.jsonl, line 1"):
        load_benchmark("arena_hard", str(tmp_path))


def test_unknown_benchmark_and_missing_sources_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("helm")
    with pytest.raises(ValueError, match="no offline copy"):
        load_benchmark("alpaca_eval")
    with pytest.raises(FileNotFoundError, match="benchmark file not found"):
        load_benchmark("arena_hard", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="neither a local path nor a Hub dataset id"):
        load_benchmark("alpaca_eval", str(tmp_path / "missing" / "file.json"))


def _write_jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_custom_benchmark_reads_configured_fields(tmp_path):
    rows = [
        {"qid": "a", "instruction": "Say hi.", "output": "Hi!", "gpt": "Hello there."},
        {"qid": 7, "instruction": "Count to 3.", "output": None},
    ]
    source = _write_jsonl(tmp_path / "mine.jsonl", rows)
    fields = {"prompt": "instruction", "reference": "output", "baseline": "gpt", "id": "qid"}
    items = load_benchmark("my_prompts", source, kind="custom", fields=fields)
    assert [(i.id, i.prompt, i.reference) for i in items] == [("a", "Say hi.", "Hi!"), ("7", "Count to 3.", None)]
    assert items[0].meta == {"baseline": "Hello there."} and items[1].meta == {}
    assert [
        i.id for i in load_benchmark("my_prompts", source, kind="custom", fields=fields, require_reference=True)
    ] == ["a"]
    # Default field names, a JSON array, no ids: the row number is the id; the name `custom` implies the kind.
    array = tmp_path / "plain.json"
    array.write_text(json.dumps([{"prompt": f"p{i}", "reference": f"r{i}"} for i in range(5)]))
    items = load_benchmark("custom", str(array), limit=2, seed=0)
    assert len(items) == 2 and all(i.prompt == f"p{i.id}" and i.reference == f"r{i.id}" for i in items)


@pytest.mark.parametrize(
    "content, fields, message",
    [
        ('{"prompt": "a"}\n{"text": "b"}\n', None, r"bad\.jsonl: line 2: missing field 'prompt'"),
        ('{"prompt": "a"}\n{"prompt": "  "}\n', None, r"line 2: field 'prompt' is empty"),
        ('{"prompt": "a", "reference": 3}\n', None, r"line 1: field 'reference' must be text, got int"),
        ('{"q": "a", "id": 1}\n{"q": "b", "id": 1}\n', {"prompt": "q"}, r"line 2: field 'id': id '1' repeats line 1"),
        ('{"prompt": "a"}\n["b"]\n', None, r"line 2: expected an object with a 'prompt' field, got list"),
        ('{"prompt": "a"}\n{"prompt": \n', None, r"line 2: invalid JSON"),
        ("", None, r"bad\.jsonl"),
        ('{"prompt": "a"}\n', {"answer": "x"}, r"unknown fields \['answer'\]"),
        ('{"prompt": "a"}\n', {"prompt": None}, r"fields\.prompt must name the prompt field"),
    ],
)
def test_custom_benchmark_bad_files_name_file_row_and_field(tmp_path, content, fields, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_benchmark("custom", str(path), fields=fields)


def test_custom_json_array_rows_are_named_by_row(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"prompt": "a"}, {"prompt": 5}]))
    with pytest.raises(ValueError, match=r"bad\.json: row 1: field 'prompt' must be text, got int"):
        load_benchmark("custom", str(path))


def test_custom_fields_and_kinds_are_checked(tmp_path):
    with pytest.raises(ValueError, match="fields apply to kind 'custom' only"):
        load_benchmark("mtbench", fields={"prompt": "q"})
    with pytest.raises(ValueError, match="kind: custom"):
        load_benchmark("my_prompts", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="custom benchmark not found"):
        load_benchmark("custom", str(tmp_path / "missing.jsonl"))


def test_decontamination_reads_a_custom_benchmark_as_evaluation_does(tmp_path):
    """The README's own custom benchmark failed every run: decontamination loaded it without its kind and fields."""
    from omegaconf import OmegaConf

    from evaluation.benchmarks import configured_prompts

    source = _write_jsonl(tmp_path / "mine.jsonl", [{"question": "Name ${three} {} colours."}, {"question": "Why?"}])
    cfg = OmegaConf.create(
        {
            "enabled": True,
            "benchmarks": {"mine": {"kind": "custom", "source": source, "fields": {"prompt": "question"}}},
        }
    )
    assert configured_prompts(cfg) == {"mine": ["Name ${three} {} colours.", "Why?"]}


def test_a_two_file_benchmark_given_one_file_says_to_give_its_folder(tmp_path):
    questions = _write_jsonl(tmp_path / "question.jsonl", [{"question_id": "q1", "turns": [{"content": "Hi?"}]}])
    with pytest.raises(ValueError, match=r"'arena_hard' reads 2 files .*give the folder holding them"):
        load_benchmark("arena_hard", questions)
