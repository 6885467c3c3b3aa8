"""What every scorer shares: the evaluation context (model, prompts, cached generations) and the scorer API.

A scorer is built from config (`__init__` stores its parameters, nothing else) and has
`score(ctx: EvalContext) -> dict[str, float]` with keys `eval/<scorer>/<metric>`. Scorers ask the context for
benchmark items and generations, so a benchmark is generated once per run however many scorers read it, and
they add per-prompt columns (verdict, loss, ...) to the context's table rows for the W&B table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from evaluation.benchmarks import BenchmarkItem, load_benchmark


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
        """The model's answers to benchmark `name`, generated once and saved as JSONL."""
        if name not in self._generations:
            from core.generate import generate
            from core.jsonl import save_jsonl

            items = self.items(name)
            counts: list[int] = []
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
            save_jsonl(self.run_dir / "generations" / f"{name}.jsonl", rows)
            for item, answer, count in zip(items, answers, counts, strict=True):
                self.rows[name][item.id].update(generation=answer, tokens=count)
            self._generations[name] = answers
            self.token_counts[name] = counts
        return self._generations[name]

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
