"""Check a job's whole configuration before any work: every problem at once, in one error (litgpt's validate_args).

Without this, `diversity.level=-1` with a macro strategy costs the whole embedding and clustering of the pool
before the selector rejects it, and a judge without its API key fails only after training. The checks read the
plain resolved config dict; classes named by `_target_` are imported only to read their signatures.
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from core.secrets import check_env_name

COMPONENTS = ("instruction", "response")  # diversity.pools.COMPONENTS (a test keeps them in sync)
JUDGE_BACKENDS = ("openai", "hf")


class ConfigError(ValueError):
    """One or more configuration problems, each naming its config field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        head = "invalid configuration: " if len(problems) == 1 else f"invalid configuration ({len(problems)} problems):"
        super().__init__(head + problems[0] if len(problems) == 1 else "\n  - ".join([head, *problems]))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Per selector class: parameter -> (accepts value, what is expected). Mirrors the checks in each `select`.
SELECTOR_RULES: dict[str, dict[str, tuple[Callable[[Any], bool], str]]] = {
    "DegreeSelector": {"fill": (lambda v: v in ("balanced", "random"), "one of 'balanced', 'random'")},
    "DeitaSelector": {
        "min_threshold": (lambda v: _number(v) and -1 <= v <= 1, "a number in [-1, 1]"),
        "block_size": (lambda v: _int(v) and v >= 1, "a positive integer"),
    },
}


def validate_config(cfg: Mapping[str, Any], check_assets: bool = True) -> None:
    """Raise `ConfigError` listing every problem of a train/select job's resolved config; return if none.

    Checks n, level, held-out size, the strategy and its selector's parameters, length matching, every
    `*api_key_env`, the judge (when this job will use it) and, with `check_assets`, that the model loads.
    """
    problems = [
        *_selection_problems(cfg),
        *_strategy_problems(cfg.get("strategy") or {}),
        *_env_name_problems(cfg, ""),
        *_judge_problems(cfg),
    ]
    if check_assets:
        problems += _model_problems(cfg.get("model") or {})
    if problems:
        raise ConfigError(problems)


def _selection_problems(cfg: Mapping[str, Any]) -> list[str]:
    div, data = cfg.get("diversity") or {}, cfg.get("data") or {}
    n, level, heldout = div.get("n"), div.get("level"), data.get("heldout_size", 0)
    problems = []
    if not _int(n) or n < 1:
        problems.append(f"diversity.n={n!r}: must be a positive integer")
    if not _number(level) or not 0 <= level <= 1:
        problems.append(f"diversity.level={level!r}: must be a number in [0, 1]")
    if not _int(heldout) or heldout < 0:
        problems.append(f"data.heldout_size={heldout!r}: must be a non-negative integer")
    cap = data.get("max_samples")
    if _int(cap) and _int(heldout):  # the datamodule holds out at most heldout_max_fraction of a small pool
        heldout = min(heldout, int(float(data.get("heldout_max_fraction", 1.0)) * cap))
    if _int(n) and _int(cap) and _int(heldout) and n > cap - heldout:
        problems.append(
            f"diversity.n: n={n} were requested but data.max_samples={cap} minus data.heldout_size={heldout} "
            f"leaves at most {max(cap - heldout, 0)} selectable samples"
        )
    match = div.get("match_length") or {}
    if match.get("enabled"):
        low, high = match.get("min_tokens"), match.get("max_tokens")
        if not (_int(low) and _int(high) and 0 <= low <= high):
            problems.append(
                f"diversity.match_length: min_tokens={low!r}, max_tokens={high!r}: need integers 0 <= min <= max"
            )
    return problems


def _strategy_problems(strategy: Mapping[str, Any]) -> list[str]:
    if not strategy.get("_target_"):
        return ["strategy: no _target_ (pick one with strategy=<name>)"]
    problems = []
    component, extractor = strategy.get("component"), strategy.get("extractor")
    if extractor is not None and component not in COMPONENTS:
        problems.append(f"strategy.component={component!r}: must be one of {list(COMPONENTS)}")
    if extractor is not None and not (isinstance(extractor, Mapping) and extractor.get("_target_")):
        problems.append("strategy.extractor: needs a _target_ (pick one with extractor=<name>)")
    selector = strategy.get("selector")
    if isinstance(selector, Mapping):
        problems += _parameter_problems("strategy.selector", selector)
        rules = SELECTOR_RULES.get(str(selector.get("_target_", "")).rsplit(".", 1)[-1], {})
        for name, (accepts, expected) in rules.items():
            if name in selector and not accepts(selector[name]):
                problems.append(f"strategy.selector.{name}={selector[name]!r}: must be {expected}")
    if isinstance(extractor, Mapping) and extractor.get("_target_"):
        problems += _parameter_problems("strategy.extractor", extractor)
    return problems


def _parameter_problems(where: str, node: Mapping[str, Any]) -> list[str]:
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


def _env_name_problems(node: Any, prefix: str) -> list[str]:
    """Every `*api_key_env` (judge, LLM tagger) must name a variable, not hold a key."""
    if not isinstance(node, Mapping):
        return []
    problems = []
    for key, value in node.items():
        if isinstance(value, Mapping):
            problems += _env_name_problems(value, f"{prefix}{key}.")
        elif str(key).endswith("api_key_env") and (problem := check_env_name(value, f"{prefix}{key}")):
            problems.append(problem)
    return problems


def _judge_problems(cfg: Mapping[str, Any]) -> list[str]:
    """The pairwise judge of a train job, checked now rather than after training."""
    evaluation = cfg.get("eval") or {}
    pairwise = evaluation.get("pairwise")
    if cfg.get("mode") != "train" or not evaluation.get("enabled") or not isinstance(pairwise, Mapping):
        return []
    if not pairwise.get("enabled", True):
        return []
    judge, where = pairwise.get("judge") or {}, "eval.pairwise.judge"
    backend = judge.get("backend", "openai")
    if backend not in JUDGE_BACKENDS:
        return [f"{where}.backend={backend!r}: must be one of {list(JUDGE_BACKENDS)}"]
    if backend == "hf":
        return [] if judge.get("name_or_path") else [f"{where}.name_or_path: needed by the hf judge backend"]
    from core.chat import ChatClient

    known = {f.name for f in fields(ChatClient)} | {"backend"}
    problems = [f"{where}.{k}: not a judge setting (known: {sorted(known)})" for k in sorted(set(judge) - known)]
    url = judge.get("base_url")
    if not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        problems.append(f"{where}.base_url={url!r}: must be an http(s) URL of an OpenAI-compatible endpoint")
    if not judge.get("model"):
        problems.append(f"{where}.model: the judge's model name is empty")
    env = judge.get("api_key_env")
    if env and check_env_name(env) is None and not os.environ.get(env):
        problems.append(
            f"{where}.api_key_env: environment variable '{env}' is not set (the judge would fail after training)"
        )
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
