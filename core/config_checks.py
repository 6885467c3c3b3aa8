"""Check a job's whole configuration before any work: every problem at once, in one error (litgpt's validate_args).

Without this, `diversity.level=-1` with a macro strategy costs the whole embedding and clustering of the pool
before the selector rejects it, and a judge without its API key fails only after training. The checks read the
plain resolved config dict; classes named by `_target_` are imported only to read their signatures.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

from core.secrets import check_env_name


class ConfigError(ValueError):
    """One or more configuration problems, each naming its config field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = "invalid configuration: " if len(problems) == 1 else f"invalid configuration ({len(problems)} problems):"
        super().__init__(head + problems[0] if len(problems) == 1 else "\n  - ".join([head, *problems]))


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_config(cfg: Mapping[str, Any], layers: tuple[str, ...], check_assets: bool = True) -> None:
    """Raise `ConfigError` listing every problem of a train/select job's resolved config; return if none.

    Each layer declares its own rules next to what they check, as a module-level
    `config_problems(cfg, check_assets) -> list[str]`; the entry point names the layers (`run.CONFIG_RULES`)
    and this collects them in order, so nothing is mirrored from a layer above into this one.
    """
    import importlib

    problems = [p for layer in layers for p in importlib.import_module(layer).config_problems(cfg, check_assets)]
    if problems:
        raise ConfigError(problems)


def config_problems(cfg: Mapping[str, Any], check_assets: bool = True) -> list[str]:
    """The ground floor's own rules: every `*api_key_env` names a variable; the model loads (`check_assets`)."""
    problems = env_name_problems(cfg, "")
    if check_assets:
        problems += _model_problems(cfg.get("model") or {})
    return problems


def parameter_problems(where: str, node: Mapping[str, Any]) -> list[str]:
    """The `_target_` must import, and every configured key must be one of its parameters."""
    from hydra.utils import get_class

    target = node.get("_target_")
    try:
        cls = get_class(str(target))
    except Exception as err:  # hydra wraps ImportError/AttributeError in its own error types
        return [f"{where}._target_={target!r}: cannot be imported ({type(err).__name__})"]
    params = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []
    unknown = sorted(k for k in node if not k.startswith("_") and k not in params)
    return [f"{where}.{k}: {cls.__name__} has no parameter '{k}' (has {sorted(params)})" for k in unknown]


def env_name_problems(node: Any, prefix: str) -> list[str]:
    """Every `*api_key_env` (judge, LLM tagger) must name a variable, not hold a key."""
    if not isinstance(node, Mapping):
        return []
    problems = []
    for key, value in node.items():
        if isinstance(value, Mapping):
            problems += env_name_problems(value, f"{prefix}{key}.")
        elif str(key).endswith("api_key_env") and (problem := check_env_name(value, f"{prefix}{key}")):
            problems.append(problem)
    return problems


def _model_problems(model: Mapping[str, Any]) -> list[str]:
    from core.assets import check_model

    name = model.get("name_or_path")
    if not name or name == "???":
        return ["model.name_or_path: not set"]
    try:
        check_model(str(name))
    except (OSError, ValueError) as err:
        return [str(err)]
    return []
