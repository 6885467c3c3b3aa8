"""Embeddings of a subset's rows taken from its pool, so the runs of a sweep embed each pool text once.

Every run's subset is a different list of texts, so caching `embed(subset_texts)` never hits across runs and
each run re-embedded its subset (~110 s a run on 2 busy cores). Here a subset's rows come from, in order:

1. the pool's full embedding matrix, when the feature cache holds it: the macro and meso extractors and the
   kcenter/deita strategies embed the whole pool through `diversity.embeddings.embed` under the same key, so
   nothing is encoded;
2. row shards left by earlier runs on the same pool texts and embedder (`embedding_rows/<key>/rows-*.npz`);
3. the encoder, for the rows still missing only, saved as a new shard.

Over a sweep the encoder sees each pool text at most once, and a single run costs no more than its subset
(embedding the whole pool up front would make a lone random run 10x slower at the default n / pool size).
Shards are separate files, each written atomically, so concurrent jobs never lose or corrupt each other's rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.cache import FeatureCache, atomic_write, stable_hash
from diversity.embeddings import DEFAULT_EMBEDDER, embed, load_matrix, save_matrix, texts_hash

log = logging.getLogger(__name__)

SHARDS = "embedding_rows"


def pool_key(pool_texts: Sequence[str], model: str, max_seq_length: int) -> dict:
    """The key `diversity.embeddings.embed` files the pool's full matrix under (namespace "embeddings")."""
    return {"model": model, "max_seq_length": max_seq_length, "texts": texts_hash(pool_texts), "n": len(pool_texts)}


def subset_embeddings(
    pool_texts: Sequence[str],
    rows: Sequence[int] | np.ndarray,
    model: str = DEFAULT_EMBEDDER,
    cache: FeatureCache | None = None,
    max_seq_length: int = 256,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """Unit-length embeddings of `pool_texts[rows]`, one row per entry of `rows`, in that order.

    Args:
        pool_texts: every text of the pool the rows index (one component, e.g. all responses).
        rows: the subset's indices into `pool_texts`.
        model, max_seq_length, batch_size, progress: as in `diversity.embeddings.embed`.
        cache: the feature cache; None embeds the subset's texts directly.

    Raises:
        ValueError: if a row falls outside the pool.
    """
    pool_texts = [str(t) for t in pool_texts]
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= len(pool_texts)):
        raise ValueError(f"subset_embeddings: rows span [{rows.min()}, {rows.max()}] for {len(pool_texts)} pool texts")
    if cache is None or not cache.enabled or not len(rows):
        return embed([pool_texts[i] for i in rows], model, batch_size, max_seq_length, progress=progress)
    key = pool_key(pool_texts, model, max_seq_length)
    full = cache.fresh("embeddings", key, _code())  # a pool matrix of the current embedding code only
    if full is not None:
        return np.asarray(np.load(full / "embeddings.npy", mmap_mode="r", allow_pickle=False)[rows])
    shard_dir = cache.root / SHARDS / stable_hash(key)
    wanted = np.unique(rows)
    known_rows, known_vectors = _read_shards(shard_dir, wanted)
    missing = np.setdiff1d(wanted, known_rows)
    if len(missing):
        log.info(
            "embedding %d of %d subset texts (%d cached by earlier runs)", len(missing), len(rows), len(known_rows)
        )
        vectors = embed([pool_texts[i] for i in missing], model, batch_size, max_seq_length, progress=progress)
        _write_shard(shard_dir, key, missing, vectors)
        known_rows = np.concatenate([known_rows, missing])
        known_vectors = vectors if known_vectors is None else np.concatenate([known_vectors, vectors])
    order = np.argsort(known_rows, kind="stable")
    position = np.searchsorted(known_rows[order], rows)
    return np.ascontiguousarray(known_vectors[order[position]], dtype=np.float32)


def _read_shards(shard_dir: Path, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of `wanted` found in the shards (each once) and their vectors; O(total shard rows)."""
    found_rows: list[np.ndarray] = []
    found_vectors: list[np.ndarray] = []
    seen = np.zeros(0, dtype=np.int64)
    for path in sorted(shard_dir.glob("rows-*.npz")) if shard_dir.is_dir() else []:
        try:
            with np.load(path, allow_pickle=False) as shard:
                shard_rows, vectors = shard["rows"], shard["vectors"]
        except (OSError, ValueError, KeyError) as err:  # a damaged shard only costs re-embedding its rows
            log.warning("ignoring unreadable embedding shard %s (%s)", path, err)
            continue
        take = np.isin(shard_rows, wanted) & ~np.isin(shard_rows, seen)
        if take.any():
            found_rows.append(shard_rows[take])
            found_vectors.append(vectors[take])
            seen = np.concatenate([seen, shard_rows[take]])
    if not found_rows:
        return np.zeros(0, dtype=np.int64), None
    return np.concatenate(found_rows), np.concatenate(found_vectors)


def _write_shard(shard_dir: Path, key: dict, rows: np.ndarray, vectors: np.ndarray) -> None:
    shard_dir.mkdir(parents=True, exist_ok=True)
    key_file = shard_dir / "key.json"
    if not key_file.exists():
        with atomic_write(key_file) as fh:
            json.dump(key, fh, sort_keys=True, indent=1)
    with atomic_write(shard_dir / f"rows-{stable_hash(rows.tolist())}.npz", "wb") as fh:
        np.savez(fh, rows=rows.astype(np.int64), vectors=np.asarray(vectors, dtype=np.float32))


def pool_matrix(
    pool_texts: Sequence[str],
    model: str = DEFAULT_EMBEDDER,
    cache: FeatureCache | None = None,
    max_seq_length: int = 256,
    batch_size: int = 64,
    progress: bool = True,
) -> np.ndarray:
    """Unit-length embeddings of every pool text, for the pool-relative metrics (NovelSum, coverage).

    Filed under the pool's full key (the one `subset_embeddings` reads first), so one computation per pool
    and embedder serves every run of a sweep and every later subset lookup; rows already embedded into
    shards by earlier runs are reused rather than re-encoded.
    """
    pool_texts = [str(t) for t in pool_texts]
    if cache is None or not cache.enabled:
        return embed(pool_texts, model, batch_size, max_seq_length, progress=progress)
    key = pool_key(pool_texts, model, max_seq_length)

    def compute() -> np.ndarray:
        rows = np.arange(len(pool_texts))
        known_rows, known_vectors = _read_shards(cache.root / SHARDS / stable_hash(key), rows)
        missing = np.setdiff1d(rows, known_rows)
        log.info("pool embeddings: encoding %d of %d texts (%d from shards)", len(missing), len(rows), len(known_rows))
        if not len(missing):
            return np.ascontiguousarray(known_vectors[np.argsort(known_rows)], dtype=np.float32)
        vectors = embed([pool_texts[i] for i in missing], model, batch_size, max_seq_length, progress=progress)
        out = np.empty((len(rows), vectors.shape[1]), dtype=np.float32)
        out[missing] = vectors
        if known_vectors is not None:
            out[known_rows] = known_vectors
        return out

    return cache.get_or_compute(
        "embeddings",
        key,
        compute,
        save=save_matrix,
        load=load_matrix,
        code=_code(),  # the same version `subset_embeddings` checks before mapping the matrix directly
    )


def _code() -> str:
    """Version of the code that computes pool embeddings (the embedder), shared by the matrix's writer and reader."""
    from core.code_version import code_version

    return code_version(embed)
