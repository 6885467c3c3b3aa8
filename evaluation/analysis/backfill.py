"""Add subset metrics a committed run lacks (e.g. NovelSum, facility coverage, log-det), without training.

A sweep made before a metric existed, or with `diversity.metrics.pool_metrics=false`, has `subset_metrics.json`
files without the newer keys. `backfill_run` rebuilds the run's pool and candidate pool the way `run.py` did
(`data` group of the run's `config.yaml` -> `load_pool` -> `diversity.select.select_subset`'s decontamination and
held-out split), maps every `subset.jsonl` row back to its pair by `pool_index` and checks its `sha256`, then
computes the subset's metrics with the pool's embeddings (`compute_subset_metrics`, as `describe_subset` does with
`pool_metrics` on) and adds the keys the file lacks. Keys already present are never rewritten; the lexical ones
recomputed here must equal the recorded values, a second check that the subset is the recorded one.

A run is skipped, naming why and writing nothing, when it has no `subset.jsonl`, when the rebuilt pool's content
hash differs from the one `selection.json` recorded, or when any row's hash or a recorded lexical metric does not
reproduce: a number computed on other texts than the run trained on would be wrong, not missing.

    python -m evaluation.analysis.backfill docs/results/factorial [--dry-run]

Cost: the pool's embeddings once per candidate pool and component (cached in the feature cache, ~2-4 min for
5,000 texts on 2 cores), then O(n x pool) per run.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from core.cache import FeatureCache
from core.jsonl import load_jsonl
from diversity.pools import COMPONENTS, POOL_KEYS, load_pool, pool_settings
from diversity.select import HeldoutSpec, select_subset
from diversity.selectors import Selection
from evaluation.benchmarks import decontamination_prompts

__all__ = ["LEXICAL", "Backfill", "backfill_run", "backfill_sweep", "main"]

log = logging.getLogger(__name__)

LEXICAL = ("compression_ratio", "distinct_1", "distinct_2", "mean_tokens", "self_bleu", "token_entropy")
"""Metrics of the subset's texts alone (no embedder): recomputed, they must equal the recorded values."""


@dataclass
class Backfill:
    """What `backfill_run` did for one run: `added` keys (written unless dry), or `skipped` with the reason."""

    run_dir: Path
    added: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None
    embedding_drift: float = math.nan  # largest relative difference of a recorded embedding metric, recomputed


class _Replay:
    """A strategy that selects the rows a run's `subset.jsonl` recorded, found in the candidate pool by hash."""

    name = "replay"
    component = None

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def cache_key(self) -> dict:
        return {"replay": [r["sha256"] for r in self.rows]}

    def select(self, candidates: Any, n: int, level: float, seed: int, **_: Any) -> Selection:
        position = {candidates.sample_hash(i): i for i in range(len(candidates))}
        missing = [r["pool_index"] for r in self.rows if r["sha256"] not in position]
        if missing:
            raise _Mismatch(f"{len(missing)} subset rows (pool_index {missing[:3]}...) are not candidates")
        return Selection(np.sort([position[r["sha256"]] for r in self.rows]).astype(np.int64), level)


class _Mismatch(Exception):
    """The rebuilt pool is not the run's."""


def backfill_run(run_dir: str | Path, cache: FeatureCache | None = None, dry_run: bool = False) -> Backfill:
    """Add the subset metrics `<run_dir>/subset_metrics.json` lacks (pool metrics on); see the module docstring.

    The file is rewritten atomically (sorted keys, as `write_subset_metrics` writes it) only when a key is added;
    recorded keys keep their values.
    """
    from diversity.metrics import compute_subset_metrics, write_subset_metrics
    from diversity.metrics.pool_embeddings import pool_matrix

    run_dir = Path(run_dir)
    result = Backfill(run_dir)
    manifest = run_dir / "subset.jsonl"
    if not manifest.exists():
        result.skipped = "no subset.jsonl: the subset cannot be identified without selecting again"
        return result
    cfg = OmegaConf.load(run_dir / "config.yaml")
    missing = [key for key in POOL_KEYS if key not in cfg.data]
    if missing:
        result.skipped = f"config.yaml's data block lacks {missing} (written by older code)"
        return result
    recorded = json.loads((run_dir / "selection.json").read_text())
    metrics = json.loads((run_dir / "subset_metrics.json").read_text())
    rows = load_jsonl(manifest)
    pool = load_pool(**pool_settings(cfg.data))
    if pool.content_hash != recorded["pool"]["content_hash"]:
        result.skipped = (
            f"pool content hash {pool.content_hash[:12]} != recorded {recorded['pool']['content_hash'][:12]}"
        )
        return result
    bad = [
        r["pool_index"]
        for r in rows
        if r["pool_index"] >= len(pool) or pool.sample_hash(r["pool_index"]) != r["sha256"]
    ]
    if bad:
        result.skipped = f"{len(bad)} of {len(rows)} subset rows' sha256 differ from the rebuilt pool's pairs"
        return result
    data = cfg.data
    try:
        subset = select_subset(
            pool,
            _Replay(rows),
            n=len(rows),
            level=float(recorded.get("level", 0.0)),
            seed=int(recorded.get("seed", cfg.seed)),
            heldout=HeldoutSpec(data.heldout_size, data.heldout_seed, data.heldout_max_fraction),
            exclude_prompts=decontamination_prompts(cfg),
            decontaminate=OmegaConf.to_container(data.decontaminate),
        )
    except _Mismatch as err:
        result.skipped = str(err)
        return result
    if sorted(int(i) for i in subset.indices) != sorted(r["pool_index"] for r in rows):
        result.skipped = "the candidate rows found by hash are not the recorded pool indices"
        return result
    if len(subset.candidates) != recorded["pool"]["selectable"]:
        result.skipped = f"{len(subset.candidates)} candidates rebuilt, {recorded['pool']['selectable']} recorded"
        return result
    spec = cfg.diversity.metrics
    cache = cache if cache is not None else FeatureCache()
    pools = {c: pool_matrix(subset.candidates.texts(c), model=spec.embedder, cache=cache) for c in COMPONENTS}
    fresh = compute_subset_metrics(  # the texts in the order the run described them (`describe_subset`)
        *subset.pairs("train"),
        tokenizer=cfg.model.name_or_path,
        embeddings={c: pools[c][subset.selected] for c in COMPONENTS},
        seed=int(recorded.get("seed", 0)),
        self_bleu_samples=int(spec.self_bleu_samples),
        progress=False,
        pool_embeddings=pools,
    )
    lexical = [f"subset/{c}/{m}" for c in COMPONENTS for m in LEXICAL]
    differ = [
        k for k in lexical if k in metrics and not math.isclose(metrics[k], fresh[k], rel_tol=1e-9, abs_tol=1e-12)
    ]
    if differ:
        result.skipped = f"recomputed {differ[0]} = {fresh[differ[0]]!r} != recorded {metrics[differ[0]]!r}"
        return result
    drift = [
        abs(fresh[k] - metrics[k]) / max(abs(metrics[k]), 1e-12) for k in fresh if k in metrics and k not in lexical
    ]
    result.embedding_drift = max(drift, default=math.nan)
    result.added = {k: v for k, v in fresh.items() if k not in metrics}
    if result.added and not dry_run:
        write_subset_metrics({**metrics, **result.added}, run_dir)
    return result


def backfill_sweep(sweep_dir: str | Path, cache: FeatureCache | None = None, dry_run: bool = False) -> list[Backfill]:
    """`backfill_run` for every run folder under `sweep_dir` that holds a `subset_metrics.json`."""
    runs = sorted(p.parent for p in Path(sweep_dir).rglob("subset_metrics.json"))
    if not runs:
        raise ValueError(f"no subset_metrics.json under {sweep_dir}")
    return [backfill_run(run, cache, dry_run) for run in runs]


def main(argv: Sequence[str] | None = None) -> list[Backfill]:
    """`python -m evaluation.analysis.backfill SWEEP [SWEEP ...] [--dry-run]`: one line per run, then a count."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("sweeps", nargs="+", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="compute and check, write nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cache = FeatureCache()
    results = [r for sweep in args.sweeps for r in backfill_sweep(sweep, cache, args.dry_run)]
    for r in results:
        what = f"skipped: {r.skipped}" if r.skipped else f"added {', '.join(sorted(r.added)) or 'nothing'}"
        print(f"{r.run_dir}: {what}" + ("" if r.skipped else f" (embedding drift {r.embedding_drift:.1e})"))
    done = sum(bool(r.added) for r in results)
    print(
        f"{done} run(s) updated{' (dry run)' if args.dry_run else ''}, {sum(bool(r.skipped) for r in results)} skipped"
    )
    return results


if __name__ == "__main__":
    main()
