"""User text is never interpolated: benchmark prompts, reference answers, pool rows and judge templates holding
`${...}`, `{}`, `{0}`, `%s` or backslashes come back verbatim from every loader and reach the judge verbatim.

Issue 21.1: Arena-Hard prompt 455 holds `${` and crashed a run that passed prompts through OmegaConf.
"""

from __future__ import annotations

import json

import pytest
from helpers import chat_server
from omegaconf import OmegaConf

from diversity.pools import load_pool
from evaluation.benchmarks import configured_prompts, load_benchmark
from evaluation.judge import fill_template, judge_pairs, load_template

TEXTS = [
    "Use ${oc.env:HOME} and ${a.b}, or ${} and $${escaped}",
    "Format {} and {0} and {instruction} and {answer_b}",
    "printf('%s %d %(name)s %%')",
    "C:\\new\\table \\n \\\\ \\1 \\g<0>",
    "mixed ${x:{y}} {z} %s \\",
]


def _eval_cfg(**benchmarks):
    """An eval config as Hydra hands it over (a DictConfig), naming only sources: prompts never enter it."""
    return OmegaConf.create({"enabled": True, "benchmarks": benchmarks})


def test_real_arena_hard_and_alpaca_eval_texts_come_back_verbatim(shared_data):
    arena, alpaca = shared_data / "arena_hard", shared_data / "alpaca_eval"
    raw_q = [json.loads(line) for line in (arena / "question.jsonl").read_text().splitlines() if line.strip()]
    raw_a = {
        (row := json.loads(line))["question_id"]: row["choices"][0]["turns"][0]["content"]
        for line in (arena / "gpt-4-0314_answers.jsonl").read_text().splitlines()
        if line.strip()
    }
    items = load_benchmark("arena_hard", str(arena))
    assert "${" in items[455].prompt and items[455].prompt == raw_q[455]["turns"][0]["content"]
    assert [i.prompt for i in items] == [q["turns"][0]["content"] for q in raw_q]
    assert [i.reference for i in items] == [raw_a[q["question_id"]] for q in raw_q]
    assert sum("${" in i.prompt for i in items) == 2 and sum("${" in i.reference for i in items) == 13

    raw_alpaca = json.loads((alpaca / "gpt4_1106_preview_outputs.json").read_text())
    rows = load_benchmark("alpaca_eval", str(alpaca))
    assert [(i.prompt, i.reference) for i in rows] == [(r["instruction"], r["output"]) for r in raw_alpaca]
    assert sum("${" in i.prompt + i.reference for i in rows) == 3

    prompts = configured_prompts(_eval_cfg(arena_hard={"source": str(arena)}, alpaca_eval={"source": str(alpaca)}))
    assert prompts["arena_hard"][455] == raw_q[455]["turns"][0]["content"]
    assert prompts["alpaca_eval"] == [r["instruction"] for r in raw_alpaca]


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_every_benchmark_format_and_the_pool_keep_special_texts_verbatim(tmp_path):
    n = len(TEXTS)
    (tmp_path / "alpaca").mkdir()
    (tmp_path / "alpaca" / "gpt4_1106_preview_outputs.json").write_text(
        json.dumps([{"instruction": t, "output": t[::-1]} for t in TEXTS])
    )
    for name in ("arena", "mt"):
        _write_jsonl(tmp_path / name / "question.jsonl", [{"question_id": i, "turns": [TEXTS[i]]} for i in range(n)])
    answers = [{"question_id": i, "choices": [{"turns": [{"content": TEXTS[i][::-1]}]}]} for i in range(n)]
    _write_jsonl(tmp_path / "arena" / "gpt-4-0314_answers.jsonl", answers)
    _write_jsonl(tmp_path / "mt" / "reference_answer" / "gpt-4.jsonl", answers)
    rule = {"instruction_id_list": [], "kwargs": []}
    _write_jsonl(tmp_path / "if" / "IFBench_test.jsonl", [{"key": i, "prompt": t, **rule} for i, t in enumerate(TEXTS)])
    _write_jsonl(tmp_path / "custom.jsonl", [{"prompt": t, "reference": t[::-1], "baseline": t} for t in TEXTS])
    specs = {
        "alpaca_eval": {"source": str(tmp_path / "alpaca")},
        "arena_hard": {"source": str(tmp_path / "arena")},
        "mtbench": {"source": str(tmp_path / "mt")},
        "ifbench": {"source": str(tmp_path / "if")},
        "custom": {"source": str(tmp_path / "custom.jsonl")},
    }
    for name, spec in specs.items():
        items = load_benchmark(name, spec["source"])
        assert [i.prompt for i in items] == TEXTS, name
        if name != "ifbench":
            assert [i.reference for i in items] == [t[::-1] for t in TEXTS], name
    assert configured_prompts(_eval_cfg(**specs)) == dict.fromkeys(specs, TEXTS)

    pool_file = tmp_path / "pool.json"
    pool_file.write_text(json.dumps([{"instruction": t, "output": t[::-1]} for t in TEXTS]))
    pool = load_pool(str(pool_file))
    assert pool.instructions == TEXTS and pool.responses == [t[::-1] for t in TEXTS]


def test_judge_templates_are_filled_by_plain_replacement(tmp_path):
    template_file = tmp_path / "judge.txt"
    template_file.write_text("Literal ${keep} {} {0} %s \\n.\nQ:{instruction}\nA:{answer_a}\nB:{answer_b}\n")
    template = load_template(template_file)
    for text in TEXTS:
        filled = fill_template(template, text, text + "a", text + "b")
        assert filled == f"Literal ${{keep}} {{}} {{0}} %s \\n.\nQ:{text}\nA:{text}a\nB:{text}b\n"


def test_special_texts_reach_the_judge_endpoint_verbatim():
    with chat_server(lambda body: "[[C]]") as (url, seen):
        from core.chat import ChatClient

        rows = judge_pairs(ChatClient(url, "m"), load_template(), ["0", "1"], TEXTS[:2], TEXTS[2:4], TEXTS[3:5])
    sent = [s["body"]["messages"][-1]["content"] for s in seen]
    assert len(sent) == 4 and all(r["verdict"] == "A=B" for r in rows)
    for i in range(2):
        assert any(TEXTS[i] in p and TEXTS[2 + i] in p and TEXTS[3 + i] in p for p in sent)


@pytest.mark.parametrize("text", [t for t in TEXTS if "${" in t])
def test_omegaconf_cannot_carry_these_texts(text):
    """Why no user text may go through OmegaConf (the crash of issue 21.1): it parses `${` as an interpolation."""
    from omegaconf.errors import OmegaConfBaseException

    with pytest.raises(OmegaConfBaseException):
        OmegaConf.create({"t": text}).t  # noqa: B018 - the read resolves it


def test_tag_files_give_back_special_tags_and_texts_verbatim(tmp_path):
    """A user's tag file (JsonlTagger) is matched by text and by id, and its tags are never interpolated."""
    from diversity.taggers.jsonl import JsonlTagger

    by_text = tmp_path / "by_text.jsonl"
    _write_jsonl(by_text, [{"text": t, "tags": [t[::-1], "plain tag"]} for t in TEXTS])
    assert JsonlTagger(str(by_text)).tag(TEXTS) == [[t[::-1], "plain tag"] for t in TEXTS]
    by_id = tmp_path / "by_id.jsonl"
    _write_jsonl(by_id, [{"id": f"id-{i}", "tags": [t]} for i, t in enumerate(TEXTS)])
    ids = [f"id-{i}" for i in range(len(TEXTS))]
    assert JsonlTagger(str(by_id)).tag(["other"] * len(TEXTS), ids=ids) == [[t] for t in TEXTS]


def test_llm_tagger_prompts_fill_only_the_text_placeholder(tmp_path):
    """The InsTag prompt (packaged or the user's file) is filled by plain replacement of `{text}`: the template's
    own braces, `${...}`, `%s` and backslashes, and the same inside the text, arrive verbatim."""
    from diversity.taggers.llm import LLMTagger

    template = "Tag ${oc.env:HOME} {} %s \\n: <<{text}>> {answer_a}"
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(template, encoding="utf-8")
    tagger = LLMTagger(prompt_file=str(prompt_file), max_chars=10_000, progress=False)
    assert tagger.prompts(TEXTS) == [template.replace("{text}", t) for t in TEXTS]
    assert all(t in p for t, p in zip(TEXTS, LLMTagger(progress=False).prompts(TEXTS), strict=True))
