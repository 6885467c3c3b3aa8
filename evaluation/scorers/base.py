"""What every scorer shares: the evaluation context (model, prompts, cached generations) and the scorer API.

A scorer is built from config (`__init__` stores its parameters, nothing else) and has
`score(ctx: EvalContext) -> dict[str, float]` with keys `eval/<scorer>/<metric>`. Scorers ask the context for
benchmark items and generations, so a benchmark is generated once per run however many scorers read it, and
they add per-prompt columns (verdict, loss, ...) to the context's table rows for the W&B table.

Saved generations are reused. Beside `generations/<benchmark>.jsonl` a sidecar `<benchmark>.meta.json` records a
fingerprint of what made them: the model's weights, config and generation config, the tokenizer, the generation
settings (`core.generate.generate`'s defaults filled in, and the seed), the version of the generation code
(`core.code_version`) and the benchmark's prompt ids and texts, with the sha256 of the file itself. A rerun of a
run (a resumed job, or one whose judge endpoint failed) whose fingerprint matches reads the answers back instead of
generating them again, so the judge's verdict cache, keyed by the answers, resumes even where generation is not
bit-reproducible (GPU kernels). Anything else (another checkpoint, other settings, an edited file, no sidecar)
regenerates and replaces both files atomically, the sidecar removed first so a stale one never vouches for new
answers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.cache import file_sha256, stable_hash
from evaluation.benchmarks import BenchmarkItem, load_benchmark

log = logging.getLogger(__name__)


def _fingerprint(value: Any) -> str:
    """Full sha256 of a JSON-able value (keys sorted), `core.cache.stable_hash` untruncated."""
    return stable_hash(value, 64)


# `core.generate.generate` parameters that do not change an answer.
_NOT_SETTINGS = {"model", "tokenizer", "prompts", "progress", "description", "token_counts"}
# Config entries that name where a model was loaded from or by which library version, not what it computes.
# (The weights' dtype is in the state dict; `use_cache` changes no answer.)
_NOT_MODEL = {
    "_name_or_path", "name_or_path", "transformers_version", "_commit_hash", "_from_model_config", "torch_dtype",
    "dtype", "use_cache",
}  # fmt: skip


def model_fingerprint(model: Any) -> str:
    """sha256 of what a causal LM computes: its class, config and generation config (without the path it was loaded
    from) and every tensor of its state dict (name, dtype, shape, bytes). A model reloaded from the same checkpoint
    gets the same value; one more training step does not. O(parameters): about a second per GB of weights."""
    import torch

    digest = hashlib.sha256(type(model).__name__.encode())
    for attribute in ("config", "generation_config"):
        config = getattr(model, attribute, None)
        if config is not None and hasattr(config, "to_dict"):
            digest.update(_fingerprint({k: v for k, v in config.to_dict().items() if k not in _NOT_MODEL}).encode())
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            data = tensor.detach().reshape(-1).contiguous()
            digest.update(f"{name}\0{data.dtype}\0{tuple(tensor.shape)}\0".encode())
            digest.update(data.view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """sha256 of how a tokenizer encodes a prompt: its full definition (`tokenizer.json` content, less the padding
    and truncation state that calls change) or, for a slow tokenizer, its vocabulary, with the chat template and
    special tokens. The pad token is left out: generation sets it when missing, and left padding changes no answer."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        definition = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("padding", "truncation")}
    else:
        definition = sorted(tokenizer.get_vocab().items())
    return _fingerprint(
        {
            "class": type(tokenizer).__name__,
            "definition": _fingerprint(definition),
            "chat_template": getattr(tokenizer, "chat_template", None),
            "special": {k: v for k, v in tokenizer.special_tokens_map.items() if k != "pad_token"},
            "size": len(tokenizer),
        }
    )


class Scorer(Protocol):
    """Built from config; `score` returns flat `eval/<scorer>/<metric>` floats."""

    name: str

    def score(self, ctx: EvalContext) -> dict[str, float]: ...


@dataclass
class EvalContext:
    """State shared by the scorers of one `evaluate` call.

    Attributes:
        model: The fine-tuned causal LM (peft-wrapped or plain).
        tokenizer: Its tokenizer.
        run_dir: The Hydra job's output folder; generations go to `run_dir/generations/<benchmark>.jsonl`.
        benchmarks: `name -> load_benchmark kwargs` (`source`, `limit`, `files`, `require_reference`, `kind`,
            `fields`).
        generation: Keyword arguments of `core.generate.generate`.
        seed: Seed of prompt subsamples and sampling.
        progress: Show progress bars.
        token_counts: Generated tokens per answer, by benchmark (what `hit_cap` counts).
    """

    model: Any
    tokenizer: Any
    run_dir: Path
    benchmarks: dict[str, dict[str, Any]]
    generation: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    progress: bool = True
    rows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _items: dict[str, list[BenchmarkItem]] = field(default_factory=dict)
    _generations: dict[str, list[str]] = field(default_factory=dict)
    token_counts: dict[str, list[int]] = field(default_factory=dict)
    reused: dict[str, bool] = field(default_factory=dict)  # benchmark -> answers read back from an earlier run
    _model_id: dict[str, str] = field(default_factory=dict)

    def names(self, wanted: list[str] | None) -> list[str]:
        """Benchmarks a scorer should read: `wanted`, or every configured one when None."""
        return list(self.benchmarks) if wanted is None else list(wanted)

    def items(self, name: str, **defaults: Any) -> list[BenchmarkItem]:
        """Items of benchmark `name` (loaded once); `defaults` apply when `name` is not configured."""
        if name not in self._items:
            kwargs = dict(self.benchmarks.get(name) or defaults)
            self._items[name] = load_benchmark(name, seed=self.seed, **kwargs)
            table = self.rows.setdefault(name, {})
            for item in self._items[name]:  # rows a scorer already added (all_items) keep their columns
                table.setdefault(item.id, {"id": item.id, "prompt": item.prompt, "reference": item.reference})
        return self._items[name]

    def all_items(self, name: str, limit: int | None = None) -> list[BenchmarkItem]:
        """Items of benchmark `name` with its configured `limit` replaced by `limit` (None = every item).

        The configured `limit` sizes what is generated; scorers that read no generations (reference loss) score
        every item instead. The items join the benchmark's table rows.
        """
        spec = dict(self.benchmarks.get(name) or {})
        if name in self._items and spec.get("limit") == limit:
            return self._items[name]
        items = load_benchmark(name, seed=self.seed, **{**spec, "limit": limit})
        table = self.rows.setdefault(name, {})
        for item in items:
            table.setdefault(item.id, {"id": item.id, "prompt": item.prompt, "reference": item.reference})
        return items

    def generations(self, name: str) -> list[str]:
        """The model's answers to benchmark `name`: read back from `generations/<name>.jsonl` when that file was
        made by this model with these settings for these prompts (see the module docstring), else generated and
        saved there (with its sidecar). Once per benchmark and context."""
        if name not in self._generations:
            from core.generate import generate
            from core.jsonl import save_jsonl

            items = self.items(name)
            path = self.run_dir / "generations" / f"{name}.jsonl"
            parts = self.generation_parts(items)
            saved = self._saved_generations(path, items, parts)
            if saved is not None:
                answers, counts = saved
                log.info("%s: reusing the %d answers of %s (same model, settings and prompts)", name, len(items), path)
            else:
                counts = []
                answers = generate(
                    self.model,
                    self.tokenizer,
                    [item.prompt for item in items],
                    seed=self.seed,
                    progress=self.progress,
                    description=f"generating {name}",
                    token_counts=counts,
                    **self.generation,
                )
                rows = [
                    {"id": item.id, "prompt": item.prompt, "generation": a, "tokens": n, "reference": item.reference}
                    for item, a, n in zip(items, answers, counts, strict=True)
                ]
                sidecar = _sidecar(path)
                sidecar.unlink(missing_ok=True)  # never a stale sidecar beside new answers, even if killed here
                save_jsonl(path, rows)
                _write_sidecar(sidecar, path, parts)
            for item, answer, count in zip(items, answers, counts, strict=True):
                self.rows[name][item.id].update(generation=answer, tokens=count)
            self.reused[name] = saved is not None
            self._generations[name] = answers
            self.token_counts[name] = counts
        return self._generations[name]

    def generation_parts(self, items: list[BenchmarkItem]) -> dict[str, str]:
        """What identifies the answers to `items`: model, tokenizer, generation settings and code, prompts (hashes)."""
        import inspect

        from core.code_version import code_version
        from core.generate import generate

        if "model" not in self._model_id:  # one model per context: hashed once
            self._model_id["model"] = model_fingerprint(self.model)
            self._model_id["tokenizer"] = tokenizer_fingerprint(self.tokenizer)
        defaults = {
            key: param.default
            for key, param in inspect.signature(generate).parameters.items()
            if key not in _NOT_SETTINGS and param.default is not inspect.Parameter.empty
        }
        settings = {**defaults, **self.generation, "seed": self.seed}
        return {
            **self._model_id,
            "generation": _fingerprint(settings),
            "code": code_version(generate),
            "prompts": _fingerprint([[item.id, item.prompt] for item in items]),
        }

    def _saved_generations(
        self, path: Path, items: list[BenchmarkItem], parts: dict[str, str]
    ) -> tuple[list[str], list[int]] | None:
        """(answers, token counts) from `path` when its sidecar vouches for them, else None (with the reason)."""
        sidecar = _sidecar(path)
        if not path.is_file():
            return None
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            recorded = meta["parts"]
            file_sha = meta["file_sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            log.info("%s has no readable sidecar %s: generating again", path, sidecar.name)
            return None
        changed = sorted(key for key in parts.keys() | recorded.keys() if parts.get(key) != recorded.get(key))
        if changed:
            log.info("%s was made with another %s: generating again", path, ", ".join(changed))
            return None
        if file_sha256(path) != file_sha:
            log.info("%s changed since it was generated: generating again", path)
            return None
        from core.jsonl import load_jsonl

        rows = load_jsonl(path)
        if [(r.get("id"), r.get("prompt")) for r in rows] != [(item.id, item.prompt) for item in items]:
            return None
        return [r["generation"] for r in rows], [int(r["tokens"]) for r in rows]

    def hit_cap(self, name: str) -> float:
        """Share of benchmark `name`'s answers that stopped at `max_new_tokens` (cut, not finished); NaN when
        its answers were not generated here (e.g. given by a test)."""
        counts = self.token_counts.get(name)
        if not counts:
            return float("nan")
        import inspect

        from core.generate import generate

        default = inspect.signature(generate).parameters["max_new_tokens"].default
        cap = int(self.generation.get("max_new_tokens", default))
        return sum(count >= cap for count in counts) / len(counts)

    def annotate(self, name: str, item_id: str, **columns: Any) -> None:
        """Add per-prompt columns to the table of benchmark `name`."""
        self.rows[name][item_id].update(columns)


def _sidecar(path: Path) -> Path:
    """`generations/<benchmark>.meta.json` beside `generations/<benchmark>.jsonl`."""
    return path.with_name(f"{path.stem}.meta.json")


def _write_sidecar(sidecar: Path, path: Path, parts: dict[str, str]) -> None:
    """Record what made `path` (atomically, after `path` itself is complete)."""
    from core.cache import atomic_write

    meta = {"file": path.name, "file_sha256": file_sha256(path), "parts": parts}
    with atomic_write(sidecar) as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
