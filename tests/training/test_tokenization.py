from core.prompting import prompt_text
from training.tokenization import IGNORE_INDEX, PadCollator, encode_pair


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


def test_packing_keeps_every_token_and_label_in_order(tokenizer):
    from training.tokenization import pack

    examples = [encode_pair(tokenizer, f"question {i}", "answer " * (i + 1), 64) for i in range(6)]
    packed = pack(examples, max_length=256)
    assert len(packed) < len(examples)
    assert all(len(p["input_ids"]) <= 256 for p in packed)
    assert sum((p["input_ids"] for p in packed), []) == sum((e["input_ids"] for e in examples), [])
    assert sum((p["labels"] for p in packed), []) == sum((e["labels"] for e in examples), [])
