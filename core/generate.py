"""Batched answer generation with the fine-tuned model, and the JSONL files that keep the answers.

Prompts go through the model's own chat template (the format it was fine-tuned on), are left-padded so every
row of a batch ends where generation starts, and decoding is greedy by default so a run is reproducible.
Prompts are sorted by length before batching, which wastes less compute on padding; answers come back in the
caller's order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.cache import atomic_write


def chat_prompt(tokenizer: Any, prompt: str) -> str:
    """The prompt exactly as fine-tuning formatted instructions (chat template, or the plain template for
    models without one), ending where the answer starts."""
    from core.prompting import prompt_text

    return prompt_text(tokenizer, prompt)


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 256,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_prompt_tokens: int = 1024,
    seed: int = 0,
    progress: bool = True,
    description: str = "generating",
) -> list[str]:
    """Answer every prompt; returns the decoded answers (special tokens removed) in input order.

    Args:
        model: A causal LM (plain or peft-wrapped), left in eval mode.
        tokenizer: Its tokenizer; a pad token falls back to EOS.
        prompts: Raw user prompts (the chat template is applied here).
        max_new_tokens: Cap on answer length, the main cost knob on CPU.
        batch_size: Prompts per `generate` call.
        do_sample: False = greedy (deterministic); True samples with `temperature`/`top_p`, seeded by `seed`.
        max_prompt_tokens: Longer prompts keep their last tokens (the end of a chat prompt is the question).
        progress: Show a progress bar over batches.
        description: Progress bar label.
    """
    import torch
    from tqdm.auto import tqdm

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    texts = [chat_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    answers: list[str] = [""] * len(texts)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    padding_side, truncation_side = tokenizer.padding_side, tokenizer.truncation_side
    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    generator_kwargs: dict[str, Any] = {"do_sample": do_sample}
    if do_sample:
        torch.manual_seed(seed)  # transformers samples from the global torch generator
        generator_kwargs.update(temperature=temperature, top_p=top_p)
    else:
        generator_kwargs.update(temperature=None, top_p=None, top_k=None)
    try:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        for batch in tqdm(batches, desc=description, disable=not progress, leave=False):
            enc = tokenizer(
                [texts[i] for i in batch],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_prompt_tokens,
                add_special_tokens=False,
            ).to(device)
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    **generator_kwargs,
                )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                answers[i] = text.strip()
    finally:
        tokenizer.padding_side, tokenizer.truncation_side = padding_side, truncation_side
        model.train(was_training)
    return answers


def save_jsonl(path: str | Path, rows: Sequence[dict]) -> Path:
    """Write rows as JSON lines atomically (temp file, then rename), so a killed job leaves no half file."""
    path = Path(path)
    with atomic_write(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def load_jsonl(path: str | Path) -> list[dict]:
    """Read a JSONL file written by `save_jsonl`."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
