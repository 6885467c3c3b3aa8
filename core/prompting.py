"""The chat format every package shares: how one instruction (and its response) is rendered for the model.

Training (`training.tokenization`), generation (`core.generate`) and the LLM tagger all format text here, so a
model is always prompted exactly as it was fine-tuned.
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
