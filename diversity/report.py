"""Post-hoc description of the subset a job selected: diversity metrics on both components + type coverage.

Computed whatever strategy chose the subset, so every run of a sweep (random included) is described alike
and the analysis can correlate any metric with any score.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from diversity.metrics import compute_subset_metrics, write_subset_metrics


def describe_subset(datamodule: Any, metrics_cfg: Any, tokenizer: str) -> dict[str, float | int]:
    """Metrics of `datamodule`'s selected subset, written to `<run_dir>/subset_metrics.json`.

    Coverage `subset/k/<name>` is the number of types the subset covers: for the strategy's own types (when
    it has any; random has none) and for every extra `metrics_cfg.coverage` entry (name -> {component,
    extractor}), so every run of a sweep, random included, is described at the same granularities. Types
    are computed on the candidate pool the selector saw and cached, so a strategy's own types are reused.
    """
    pool, indices = datamodule.pool_, datamodule.subset_indices_
    embed_fn = None
    if metrics_cfg.get("embeddings", True):
        from diversity.embeddings import embed

        embed_fn = partial(embed, model=metrics_cfg.get("embedder"), cache=datamodule.cache)
    selected = np.asarray(datamodule.selection_.indices)  # indices into the candidate pool
    coverage = {}
    for name, spec in (metrics_cfg.get("coverage") or {}).items():
        from hydra.utils import instantiate

        from diversity.strategy import Strategy

        counter = Strategy(name, component=spec["component"], extractor=instantiate(spec["extractor"]))
        coverage[name] = (counter.types(datamodule.candidates_, datamodule.cache), selected)
    metrics = compute_subset_metrics(
        [pool.instructions[i] for i in indices],
        [pool.responses[i] for i in indices],
        tokenizer=tokenizer,
        embed_fn=embed_fn,
        seed=datamodule.seed,
        self_bleu_samples=int(metrics_cfg.get("self_bleu_samples", 100)),
        type_assignments=coverage,
    )
    if datamodule.selection_.k is not None:
        metrics.setdefault(f"subset/k/{datamodule.strategy.name}", int(datamodule.selection_.k))
    write_subset_metrics(metrics, datamodule.run_dir)
    return metrics
