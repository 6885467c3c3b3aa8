"""Post-hoc diversity metrics of any subset: pure `name(tokens_or_texts_or_embeddings, **params) -> float`.

`compute_subset_metrics` runs them all on a subset's instructions and responses and returns the flat keys
of `subset_metrics.json`; the single metrics are importable from here for analysis notebooks and tests.
"""

from diversity.metrics.lexical import (
    compression_ratio,
    distinct_n,
    flatten_tokens,
    mean_tokens,
    token_entropy,
)
from diversity.metrics.novelsum import density, facility_coverage, novelsum, pool_scan
from diversity.metrics.self_bleu import self_bleu
from diversity.metrics.semantic import embedding_distance, log_det, vendi_score
from diversity.metrics.subset import (
    compute_subset_metrics,
    text_metrics,
    tokenize,
    type_coverage,
    write_subset_metrics,
)

__all__ = [
    "compression_ratio",
    "compute_subset_metrics",
    "density",
    "distinct_n",
    "embedding_distance",
    "facility_coverage",
    "flatten_tokens",
    "log_det",
    "mean_tokens",
    "novelsum",
    "pool_scan",
    "self_bleu",
    "text_metrics",
    "token_entropy",
    "tokenize",
    "type_coverage",
    "vendi_score",
    "write_subset_metrics",
]
