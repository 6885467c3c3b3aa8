"""The training layer's config rules (collected by `core.config_checks.validate_config`): `data.max_length` must
leave room for content after the model's chat template. Checked before the pool is loaded and typed, which at scale
takes minutes, rather than when the subset is encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.config_checks import is_int


def config_problems(cfg: Mapping[str, Any], check_assets: bool = True) -> list[str]:
    max_length = (cfg.get("data") or {}).get("max_length")
    if not is_int(max_length) or max_length < 1:
        return [f"data.max_length={max_length!r}: must be a positive integer (tokens per sample)"]
    if not check_assets:
        return []
    from core.assets import load_tokenizer
    from training.tokenization import MIN_CONTENT_TOKENS, template_tokens

    name = (cfg.get("model") or {}).get("name_or_path")
    try:
        fixed = template_tokens(load_tokenizer(str(name)))
    except (OSError, ValueError):  # a model that does not load is reported by core's own rule
        return []
    if max_length - fixed < MIN_CONTENT_TOKENS:
        return [
            f"data.max_length={max_length}: leaves no room for content after the model's {fixed}-token chat template"
        ]
    return []
