import pytest

from core.prompting import encode_content, encode_prompt, prompt_text
from training.tokenization import IGNORE_INDEX, PadCollator, encode_pair, encode_pairs


def test_labels_cover_exactly_the_response_and_closing_eos(tokenizer):
    item = encode_pair(tokenizer, "Say hi", "Hi there <|endoftext|> friend", max_length=128)
    ids, labels = item["input_ids"], item["labels"]
    first = next(i for i, x in enumerate(labels) if x != IGNORE_INDEX)
    prompt = prompt_text(tokenizer, "Say hi")
    assert tokenizer.decode(ids[:first]) == prompt
    answer = tokenizer.decode(labels[first:])
    assert answer.startswith("Hi there <|endoftext|> friend")  # literal special-token text stays text
    assert tokenizer.eos_token_id in labels[first:]  # the closing <|im_end|> is trained on
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") not in ids


def test_truncation_respects_max_length(tokenizer):
    item = encode_pair(tokenizer, "word " * 500, "answer " * 500, max_length=64)
    assert len(item["input_ids"]) == len(item["labels"]) == 64
    assert any(x != IGNORE_INDEX for x in item["labels"])


def test_collator_pads_by_mask_not_by_id(tokenizer):
    a = encode_pair(tokenizer, "a", "b", 64)
    b = encode_pair(tokenizer, "longer question here", "longer answer here", 64)
    batch = PadCollator(tokenizer.pad_token_id)([a, b])
    n = len(a["input_ids"])
    assert batch["attention_mask"][0, :n].all() and not batch["attention_mask"][0, n:].any()
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all()
    # pad id == eos id: the real closing eos of sample a keeps its label
    assert batch["labels"][0, n - 2] == tokenizer.eos_token_id or batch["labels"][0, n - 1] != IGNORE_INDEX


def _answer(item: dict[str, list[int]]) -> list[int]:
    return [x for x in item["labels"] if x != IGNORE_INDEX]


def test_a_cut_response_is_not_trained_to_stop(tokenizer):
    """A response cut at max_length ends where it was cut: no <|im_end|>, no post-template, nothing wasted."""
    item = encode_pair(tokenizer, "Tell me a story", "Once upon a time " * 100, max_length=64)
    answer = _answer(item)
    assert len(item["input_ids"]) == 64
    assert tokenizer.eos_token_id not in answer
    assert tokenizer.decode(answer).startswith("Once upon a time Once upon")
    fits = encode_pair(tokenizer, "Tell me a story", "Once upon a time.", max_length=64)
    assert tokenizer.eos_token_id in _answer(fits)  # a whole response still closes its turn


def test_a_short_response_leaves_its_room_to_the_instruction(tokenizer):
    item = encode_pair(tokenizer, "word " * 500, "Done.", max_length=64)
    assert len(item["input_ids"]) == 64
    assert tokenizer.decode(_answer(item)).startswith("Done.") and tokenizer.eos_token_id in _answer(item)


def test_truncation_stats_count_what_was_cut(tokenizer):
    items, stats = encode_pairs(
        tokenizer,
        ["Say hi", "word " * 500, "Tell me a story"],
        ["Hi.", "Done.", "Once upon a time " * 100],
        max_length=64,
    )
    block = stats.as_dict()
    assert (block["n"], block["n_cut"], block["n_instruction_cut"], block["n_response_cut"]) == (3, 2, 1, 1)
    assert block["share_cut"] == pytest.approx(2 / 3)
    full = sum(len(encode_content(tokenizer, t)) for t in ["Say hi", "word " * 500, "Tell me a story"])
    full += sum(len(encode_content(tokenizer, t)) for t in ["Hi.", "Done.", "Once upon a time " * 100])
    assert block["tokens_total"] == full and 0 < block["tokens_dropped"] < full
    assert [encode_pair(tokenizer, "Say hi", "Hi.", 64)] == items[:1]


LONG = "Summarize the text below. " + "filler words here " * 400 + "What is the main point?"


def test_training_and_generation_cut_an_instruction_alike(tokenizer):
    """One rule: keep the start and the end of the instruction, never cut the chat template."""
    item = encode_pair(tokenizer, LONG, "It is about filler.", max_length=128)
    first = next(i for i, x in enumerate(item["labels"]) if x != IGNORE_INDEX)
    trained_prompt = item["input_ids"][:first]
    assert encode_prompt(tokenizer, LONG, len(trained_prompt)) == trained_prompt
    text = tokenizer.decode(trained_prompt)
    assert text.startswith(prompt_text(tokenizer, "")[:20])  # template start (system prompt) kept
    assert "Summarize the text below." in text and "What is the main point?" in text
    assert text.endswith(prompt_text(tokenizer, "x").split("x")[-1])  # ends where the answer starts


def test_generation_feeds_the_model_the_cut_prompt(tokenizer, tiny_model_dir):
    """The prompt the model sees in `generate` is `encode_prompt`'s, left-padded (observed with a forward hook)."""
    import torch
    from transformers import AutoModelForCausalLM

    from core.generate import generate

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda mod, args, kwargs: seen.append(kwargs["input_ids"]), with_kwargs=True)
    generate(model, tokenizer, ["Hi", LONG], max_new_tokens=1, batch_size=2, max_prompt_tokens=80, progress=False)
    rows = seen[0].tolist()
    assert rows[1] == encode_prompt(tokenizer, LONG, 80)  # the longer prompt, which fills the batch width
    short = encode_prompt(tokenizer, "Hi", 80)
    assert rows[0][-len(short) :] == short


def test_a_whole_response_that_loses_only_its_end_of_turn_is_counted_as_cut(tokenizer):
    """Issue 21.7: the response's tokens all fit, but its closing <|im_end|> does not: the model never sees this
    turn end, so the sample is cut, even though no content token was dropped."""
    from core.prompting import encode_template, render_segments

    pre, _, mid, _, post = render_segments(tokenizer)
    instruction, response = "Say hi", "Hello there, how are you doing on this fine day?"
    n_ins, n_res = len(encode_content(tokenizer, instruction)), len(encode_content(tokenizer, response))
    n_post = len(encode_template(tokenizer, post))
    assert n_post >= 1
    exact = len(encode_template(tokenizer, pre)) + n_ins + len(encode_template(tokenizer, mid)) + n_res
    items, stats = encode_pairs(tokenizer, [instruction] * 2, [response] * 2, max_length=exact)
    assert tokenizer.decode(_answer(items[0])).strip() == response and tokenizer.eos_token_id not in _answer(items[0])
    block = stats.as_dict()
    assert (block["n_cut"], block["n_response_cut"], block["n_end_of_turn_cut"], block["tokens_dropped"]) == (
        2,
        2,
        2,
        0,
    )
    _, whole = encode_pairs(tokenizer, [instruction], [response], max_length=exact + n_post)
    assert (whole.n_cut, whole.n_end_of_turn_cut) == (0, 0)
