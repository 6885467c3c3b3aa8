"""Batched answer generation with the fine-tuned model (the JSONL files that keep the answers: `core.jsonl`).

Prompts go through the model's own chat template (the format it was fine-tuned on), are left-padded so every
row of a batch ends where generation starts, and decoding is greedy by default so a run is reproducible.
Prompts are sorted by length before batching, which wastes less compute on padding; answers come back in the
caller's order.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from core.progress import Ticker

log = logging.getLogger(__name__)


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 128,
    batch_size: int = 4,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_prompt_tokens: int = 1024,
    seed: int = 0,
    progress: bool = True,
    description: str = "generating",
    token_counts: list[int] | None = None,
) -> list[str]:
    """Answer every prompt; returns the decoded answers (special tokens removed) in input order.

    Args:
        model: A causal LM (plain or peft-wrapped), left in eval mode.
        tokenizer: Its tokenizer; a pad token falls back to EOS.
        prompts: Raw user prompts (the chat template is applied here).
        max_new_tokens: Cap on answer length, the main cost knob on CPU.
        batch_size: Prompts per `generate` call.
        do_sample: False = greedy (deterministic); True samples with `temperature`/`top_p`, seeded by `seed`.
        max_prompt_tokens: Cap on prompt tokens: an over-long instruction loses its middle, as in training
            (`core.prompting.keep_ends`); the chat template is never cut.
        progress: Show a progress bar over batches.
        description: Progress bar label.
        token_counts: When given, refilled with each answer's generated token count (stop token excluded), in
            input order; a count equal to `max_new_tokens` means the answer was cut by the cap.
    """
    import torch
    from tqdm.auto import tqdm

    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    from core.prompting import encode_prompt, render_segments

    segments = render_segments(tokenizer)
    encoded = [encode_prompt(tokenizer, p, max_prompt_tokens, segments) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    answers: list[str] = [""] * len(encoded)
    counts: list[int] = [0] * len(encoded)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    generator_kwargs: dict[str, Any] = {"do_sample": do_sample}
    if do_sample:
        torch.manual_seed(seed)  # transformers samples from the global torch generator
        generator_kwargs.update(temperature=temperature, top_p=top_p)
    else:
        generator_kwargs.update(temperature=None, top_p=None, top_k=None)
    try:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        ticker = Ticker(len(batches))  # plain lines for log files, where the live bar shows nothing
        for b, batch in enumerate(tqdm(batches, desc=description, disable=not progress, leave=False)):
            enc = _left_padded([encoded[i] for i in batch], tokenizer.pad_token_id, device)
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    **generator_kwargs,
                )
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            if token_counts is not None:
                for i, count in zip(batch, _generated_lengths(model, tokenizer, new_tokens), strict=True):
                    counts[i] = count
            for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                answers[i] = text.strip()
            if ticker.due(b + 1):
                log.info("%s: batch %s", description, ticker.status(b + 1))
    finally:
        model.train(was_training)
    if token_counts is not None:
        token_counts[:] = counts
    return answers


def generate_with_model(
    name_or_path: str, prompts: Sequence[str], device: str | None = None, **generation: Any
) -> list[str]:
    """Load the causal LM `name_or_path` (anything `core.assets.resolve_model_path` accepts) onto `device` (CUDA
    when available), answer `prompts` with `generate(**generation)`, and release the model: what a local tagger
    or judge needs, which keeps no model between calls."""
    import torch
    from transformers import AutoModelForCausalLM

    from core.assets import load_tokenizer, resolve_model_path

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(name_or_path)).to(device)
    try:
        return generate(model, load_tokenizer(name_or_path), prompts, **generation)
    finally:
        del model


def _left_padded(rows: list[list[int]], pad_token_id: int, device: Any) -> dict[str, Any]:
    """A batch of prompts padded on the left, so every row ends where generation starts."""
    import torch

    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[r, width - len(row) :] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def _generated_lengths(model: Any, tokenizer: Any, new_tokens: Any) -> list[int]:
    """Tokens generated per row before the first stop (EOS or pad), i.e. the answer's length in tokens."""
    import torch

    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    stop_ids = {tokenizer.eos_token_id, tokenizer.pad_token_id, *(eos if isinstance(eos, list) else [eos])}
    stops = torch.isin(new_tokens, torch.tensor(sorted(t for t in stop_ids if t is not None), device=new_tokens.device))
    first_stop = torch.where(
        stops.any(dim=1), stops.int().argmax(dim=1), torch.full_like(stops[:, 0], stops.shape[1], dtype=torch.long)
    )
    return first_stop.tolist()
