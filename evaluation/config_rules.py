"""The evaluation layer's config rules (collected by `core.config_checks.validate_config`): the pairwise judge
of a train job is checked now rather than after training."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from core.secrets import check_env_name

JUDGE_BACKENDS = ("openai", "hf")


def config_problems(cfg: Mapping[str, Any], check_assets: bool = True) -> list[str]:
    return _judge_problems(cfg)


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
