"""Post-hoc description of the subset a job selected: diversity metrics on both components + type coverage.

Computed whatever strategy chose the subset, so every run of a sweep (random included) is described alike
and the analysis can correlate any metric with any score.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from diversity.metrics import compute_subset_metrics, write_subset_metrics


def describe_subset(datamodule: Any, metrics_cfg: Any, tokenizer: str) -> dict[str, float | int]:
    """Metrics of `datamodule`'s selected subset, written to `<run_dir>/subset_metrics.json`.

    Coverage `subset/k/<strategy>` is the number of the strategy's own types the subset covers (when the
    strategy has types; random has none).
    """
    pool, indices = datamodule.pool_, datamodule.subset_indices_
    embed_fn = None
    if metrics_cfg.get("embeddings", True):
        from diversity.embeddings import embed

        embed_fn = partial(embed, model=metrics_cfg.get("embedder"), cache=datamodule.cache)
    metrics = compute_subset_metrics(
        [pool.instructions[i] for i in indices],
        [pool.responses[i] for i in indices],
        tokenizer=tokenizer,
        embed_fn=embed_fn,
        seed=datamodule.seed,
        self_bleu_samples=int(metrics_cfg.get("self_bleu_samples", 100)),
    )
    if datamodule.selection_.k is not None:
        metrics[f"subset/k/{datamodule.strategy.name}"] = int(datamodule.selection_.k)
    write_subset_metrics(metrics, datamodule.run_dir)
    return metrics
