"""Taggers: embedding-ranked intent tags, YAKE keyphrases, LLM reply parsing against a scripted local endpoint,
JSONL alignment."""

from __future__ import annotations

import json

import pytest
from helpers import chat_server

from diversity.taggers import IntentTagger, JsonlTagger, KeywordTagger, LLMTagger, parse_tags
from diversity.taggers.intent import detect_language, load_vocabulary


@pytest.fixture(scope="module")
def intent_tags():
    texts = [
        "Write a Python function that reverses a linked list.",
        "Translate this paragraph into French, please.",
        "Continue",
        "Give me a recipe for a vegan chocolate cake.",
        "Summarize the following article in three bullet points.",
        "여행 계획을 세워 주세요. 서울에서 부산까지 가는 가장 좋은 방법은?",
        "",
    ]
    return IntentTagger(progress=False).tag_with_scores(texts)


def test_intent_tagger_gives_intent_and_domain_tags(intent_tags):
    code, translate, cont, cake, summary, korean, empty = [[t for t, _ in row] for row in intent_tags]
    assert "python programming" in code and {"code generation", "data structures"} & set(code)
    assert "translation" in translate[:2]
    assert cont[0] == "continuation request"  # no keyphrase exists here; an intent does
    assert "food and cooking" in cake and summary[0] == "summarization"
    assert korean == ["korean language"] and empty == []
    vocabulary = {tag for tag, _ in load_vocabulary()} | {"korean language"}
    tags = [[t for t, _ in row] for row in intent_tags[:-1]]
    assert all(1 <= len(t) <= 5 and set(t) <= vocabulary and len(set(t)) == len(t) for t in tags)
    # only relevant tags (the old min_tags=3 forced tags with cosine < 0.2 onto texts)
    assert all(s >= 0.3 for row in intent_tags for t, s in row if t != "korean language")


def test_intent_cues_read_the_embedding_window_only():
    """The cue bonus once scanned whole texts: long responses got it on ~3x as many tags as short ones."""
    opener = "Here is a short story about a dragon who learns to fly over the mountains at night."
    far = opener + " It flew on and on." * 40 + " Then it wrote an Excel spreadsheet formula in Python."
    names, _, scores = IntentTagger(progress=False, max_seq_length=16).scores([opener, far])
    _, _, plain = IntentTagger(progress=False, max_seq_length=16, lexical_bonus=0).scores([opener, far])
    for tag in ("spreadsheet", "python programming"):  # their cues (excel, python) lie beyond the window: no bonus
        assert scores[1, names.index(tag)] == pytest.approx(plain[1, names.index(tag)])
    near = IntentTagger(progress=False).scores(["Write an Excel formula in Python."])[2]
    assert near[0, names.index("spreadsheet")] > plain[1, names.index("spreadsheet")] + 0.1  # inside it: bonus


def test_intent_tags_below_the_threshold_are_not_forced():
    """Issue 22's example got accounting, version control, prompt engineering, real estate, travel (all <= 0.20)."""
    text = "Can I make it clear the local storage only if the tab is closed in the browser?"
    tags = IntentTagger(progress=False).tag_with_scores([text])[0]
    assert all(s >= 0.3 for _, s in tags) and not {"accounting", "real estate", "travel"} & {t for t, _ in tags}


def test_intent_vocabulary_file_errors_and_cache_key(tmp_path):
    custom = tmp_path / "tags.txt"
    custom.write_text("# mine\ncooking | recipe, bake\ncoding | python\nsport\n")
    assert load_vocabulary(custom) == [("cooking", ["recipe", "bake"]), ("coding", ["python"]), ("sport", [])]
    tagger = IntentTagger(vocabulary_file=str(custom), min_tags=1, max_tags=2, progress=False)
    assert tagger.tag(["How do I bake bread?"])[0][0] == "cooking"
    before = tagger.cache_key()
    custom.write_text("cooking | recipe\n")
    assert tagger.cache_key() != before  # the vocabulary is part of the key
    custom.write_text("a | x\n\nb\nA | y\n")
    with pytest.raises(ValueError, match=r"tags\.txt, line 4: duplicate tag 'a'"):
        load_vocabulary(custom)
    with pytest.raises(ValueError, match="min_tags <= max_tags"):
        IntentTagger(min_tags=4, max_tags=3)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿Qué es la fotosíntesis y por qué es importante para las plantas?", "spanish language"),
        ("Какая аудитория у сайта", "russian language"),
        ("Pourquoi le ciel est bleu et pas vert pour nous?", "french language"),
        ("What is the capital of France and why is it there?", None),
        ("", None),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


def test_keyword_tagger_gives_few_lowercase_relevant_tags():
    texts = [
        "Python decorators wrap a Python function. A decorator in Python takes a function and returns one.",
        "Preheat the oven. Bake the chocolate cake for thirty minutes, then let the chocolate cake cool.",
        "",
    ]
    tags = KeywordTagger(top_k=3, progress=False).tag(texts)
    assert len(tags) == 3 and tags[2] == []
    assert all(1 <= len(t) <= 3 for t in tags[:2])
    assert all(t == t.lower() for row in tags for t in row)
    assert any("python" in t for t in tags[0])
    assert any("cake" in t or "chocolate" in t for t in tags[1])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            '[{"tag": "Code Generation", "explanation": "x"}, {"tag": "python"}]',
            ["code generation", "python"],
        ),
        ('Sure! ```json\n["math", "algebra", "math"]\n``` Hope this helps.', ["math", "algebra"]),
        ('{"tags": ["travel planning"]}', ["travel planning"]),
        ('{"tag": "poetry", "explanation": "a poem"}', ["poetry"]),
        ("Tags: [broken, {not json", None),
        ("no json at all", None),
        ('[1, 2, 3] then ["real tag"]', ["real tag"]),
    ],
)
def test_parse_tags(reply, expected):
    assert parse_tags(reply) == expected


@pytest.fixture
def endpoint():
    """A local OpenAI-compatible server answering scripted replies in order; records requests."""
    replies = iter(
        [
            '[{"tag": "code generation", "explanation": "asks for code"}, {"tag": "Python"}]',
            'I think the tags are: ```["cooking", "baking"]```',
            "I cannot answer that.",
        ]
    )
    with chat_server(lambda body: next(replies)) as (url, seen):
        yield url, seen


def test_llm_tagger_against_endpoint(endpoint, monkeypatch):
    url, seen = endpoint
    monkeypatch.setenv("M2M_TEST_KEY", "secret-123")
    tagger = LLMTagger(model="scripted", base_url=url, api_key_env="M2M_TEST_KEY", concurrency=1, progress=False)
    tags = tagger.tag(["write python code", "a cake recipe", "???"])
    assert tags == [["code generation", "python"], ["cooking", "baking"], []]
    assert tagger.parse_failures_ == 1
    assert [s["path"] for s in seen] == ["/v1/chat/completions"] * 3
    assert seen[0]["auth"] == "Bearer secret-123"
    assert seen[0]["body"]["model"] == "scripted"
    assert "write python code" in seen[0]["body"]["messages"][0]["content"]
    assert "secret" not in json.dumps(tagger.cache_key())


def test_llm_tagger_unreachable_endpoint_fails_loudly():
    """A failed request must not become "no tags" (that result would be cached as real)."""
    tagger = LLMTagger(base_url="http://127.0.0.1:9/v1", timeout=2, max_attempts=2, progress=False)
    with pytest.raises(RuntimeError, match=r"http://127.0.0.1:9/v1/chat/completions unreachable"):
        tagger.tag(["x"])


def test_prompt_template_needs_placeholder(tmp_path):
    bad = tmp_path / "p.txt"
    bad.write_text("no placeholder here")
    with pytest.raises(ValueError, match="text"):
        LLMTagger(prompt_file=str(bad)).prompts(["x"])
    assert "hello" in LLMTagger().prompts(["hello"])[0]


@pytest.mark.slow
def test_llm_tagger_local_smollm2_runs():
    tagger = LLMTagger(max_new_tokens=12, batch_size=2, progress=False)
    tags = tagger.tag(["Write a haiku about autumn.", "How do I sort a list in Python?"])
    assert len(tags) == 2 and len(tagger.replies_) == 2
    assert all(isinstance(t, str) for row in tags for t in row)
    assert 0 <= tagger.parse_failures_ <= 2


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_jsonl_by_order_text_and_id(tmp_path):
    by_order = _write(tmp_path / "a.jsonl", [{"tags": ["x"]}, {"tags": ["y", "z"]}])
    assert JsonlTagger(by_order).tag(["t1", "t2"]) == [["x"], ["y", "z"]]
    by_text = _write(
        tmp_path / "b.jsonl",
        [{"text": "t2", "tags": ["b"]}, {"text": "t1", "tags": ["a"]}, {"text": "extra", "tags": []}],
    )
    assert JsonlTagger(by_text).tag(["t1", "t2"]) == [["a"], ["b"]]
    by_id = _write(tmp_path / "c.jsonl", [{"id": "s2", "tags": ["b"]}, {"id": "s1", "tags": ["a"]}])
    assert JsonlTagger(by_id).tag(["t1", "t2"], ids=["s1", "s2"]) == [["a"], ["b"]]


def test_jsonl_errors_name_file_row_and_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        JsonlTagger(str(tmp_path / "missing.jsonl")).tag(["t"])
    bad_json = _write(tmp_path / "bad.jsonl", [{"tags": ["x"]}, "{not json"])
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: invalid JSON"):
        JsonlTagger(bad_json).tag(["a", "b"])
    bad_field = _write(tmp_path / "field.jsonl", [{"tags": ["x"]}, {"tags": "x"}])
    with pytest.raises(ValueError, match=r"field\.jsonl, row 2: field 'tags' must be a list of strings"):
        JsonlTagger(bad_field).tag(["a", "b"])
    with pytest.raises(ValueError, match="2 rows for 3 texts"):
        JsonlTagger(_write(tmp_path / "n.jsonl", [{"tags": []}, {"tags": []}])).tag(["a", "b", "c"])
    by_text = _write(tmp_path / "t.jsonl", [{"text": "a", "tags": []}])
    with pytest.raises(ValueError, match=r"no row whose 'text' matches sample 1 \('zzz'\); 1 of 2"):
        JsonlTagger(by_text).tag(["a", "zzz"])


def test_jsonl_cache_key_follows_file_content(tmp_path):
    path = _write(tmp_path / "k.jsonl", [{"tags": ["x"]}])
    before = JsonlTagger(path).cache_key()
    _write(tmp_path / "k.jsonl", [{"tags": ["y"]}])
    assert JsonlTagger(path).cache_key() != before
