"""Embeddings only, no discrete types: what the embedding-based ablation selectors (k-center, DEITA) need.

They read `TypeAssignment.embeddings` and ignore types, so running the macro extractor for them would spend
UMAP + HDBSCAN (~80 s on the 57K ShareGPT pool) on clusters nobody uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from diversity.embeddings import DEFAULT_EMBEDDER
from diversity.types import TypeAssignment


class EmbeddingExtractor:
    """Unit-length sentence embeddings of every text, as a `TypeAssignment` with zero type columns.

    Args:
        embedder: name for `diversity.embeddings.embed` (the offline MiniLM, a model2vec variant, a Hub id).
        max_seq_length: tokens per text for the embedder.
        batch_size: embedding batch size.
        progress: show the embedding progress bar.
    """

    def __init__(
        self,
        embedder: str = DEFAULT_EMBEDDER,
        max_seq_length: int = 256,
        batch_size: int = 64,
        progress: bool = True,
    ) -> None:
        self.embedder = embedder
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.progress = progress

    def cache_key(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "embedder": self.embedder, "max_seq_length": self.max_seq_length}

    def fit(self, texts: Sequence[str], cache: Any = None, ids: Sequence[str] | None = None) -> TypeAssignment:
        """Embed `texts` (cached like every embedding); `ids` is unused."""
        from diversity.embeddings import embed

        emb = embed(
            list(texts),
            model=self.embedder,
            batch_size=self.batch_size,
            max_seq_length=self.max_seq_length,
            cache=cache,
            progress=self.progress,
        )
        matrix = sp.csr_matrix((len(texts), 0), dtype=np.uint8)
        meta = {"extractor": type(self).__name__, **self.cache_key()}
        return TypeAssignment(matrix=matrix, type_names=[], meta=meta, embeddings=emb)
