"""The chat format every package shares: how one instruction (and its response) is rendered for the model.

Training (`training.tokenization`), generation (`core.generate`) and the LLM tagger all format text here, so a
model is always prompted exactly as it was fine-tuned. An over-long instruction is cut by one rule everywhere
(`keep_ends`: keep its start and its end), never the template around it.
"""

from __future__ import annotations

from typing import Any

PLAIN_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n{response}"
_INS, _RES = "\x00INSTRUCTION\x00", "\x00RESPONSE\x00"


def render_segments(tokenizer: Any) -> list[str]:
    """Split the model's chat template around the two contents: [pre, INS, mid, RES, post].

    Rendering once with sentinels lets template text be tokenized with its special tokens while user
    content is tokenized as plain text (a literal `<|endoftext|>` inside a response stays text).
    Models without a chat template get `PLAIN_TEMPLATE` followed by the EOS token.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "user", "content": _INS}, {"role": "assistant", "content": _RES}]
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    else:
        text = PLAIN_TEMPLATE.format(instruction=_INS, response=_RES) + (tokenizer.eos_token or "")
    pre, rest = text.split(_INS, 1)
    mid, post = rest.split(_RES, 1)
    return [pre, _INS, mid, _RES, post]


def prompt_text(tokenizer: Any, instruction: str) -> str:
    """The generation prompt for one instruction (chat template with generation prompt, or plain)."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": instruction}], tokenize=False, add_generation_prompt=True
        )
    return PLAIN_TEMPLATE.format(instruction=instruction, response="")


def encode_content(tokenizer: Any, text: str) -> list[int]:
    """Token ids of user content: special-token text inside it (a literal `<|im_end|>`) stays plain text."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"] if text else []


def encode_template(tokenizer: Any, text: str) -> list[int]:
    """Token ids of template text (from `render_segments`), whose special tokens are real special tokens."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def keep_ends(ids: list[int], budget: int) -> list[int]:
    """The one truncation rule for an over-long instruction, in training and in generation alike.

    Keeps the first and the last tokens (half the budget each, the extra one at the start) and drops the
    middle: a long prompt usually states its task at the start and asks its question at the end, with the
    pasted document or code in between. The chat template around the instruction is never cut.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    if len(ids) <= budget:
        return list(ids)
    head = (budget + 1) // 2
    return list(ids[:head]) + list(ids[len(ids) - (budget - head) :])


def encode_prompt(tokenizer: Any, instruction: str, max_tokens: int, segments: list[str] | None = None) -> list[int]:
    """Token ids of the generation prompt for one instruction, at most `max_tokens` long.

    Built from the same template pieces as training (`training.tokenization.encode_pair`), so the model is
    prompted token for token as it was fine-tuned; an over-long instruction is cut by `keep_ends`.
    """
    pre, _, mid, _, _ = segments or render_segments(tokenizer)
    pre_ids, mid_ids = encode_template(tokenizer, pre), encode_template(tokenizer, mid)
    room = max_tokens - len(pre_ids) - len(mid_ids)
    if room < 1:
        raise ValueError(
            f"max_prompt_tokens={max_tokens} leaves no room for the instruction after the "
            f"{len(pre_ids) + len(mid_ids)}-token chat template"
        )
    return pre_ids + keep_ends(encode_content(tokenizer, instruction), room) + mid_ids
