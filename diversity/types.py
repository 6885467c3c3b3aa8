"""The one data structure every granularity produces: a sparse samples x types incidence.

Macro gives ~1 type per sample (a topic), meso ~4 (tags), micro 20+ (mid-frequency token types).
The selector only ever sees this structure, which is what lets one selector serve all six strategies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.cache import atomic_write


@dataclass(frozen=True)
class TypeAssignment:
    """Which types each sample carries.

    Attributes:
        matrix: CSR matrix of shape (n_samples, n_types), value 1 where sample i carries type j.
            Rows with no entries are samples with no type (e.g. no token in micro's frequency band).
        type_names: human-readable meaning of every type id (topic keywords, tag text, token string).
        meta: extractor name, params and anything a report should show (e.g. noise handling, band used).
        embeddings: optional (n_samples, d) float32 array, kept when the extractor computed one
            (macro); embedding-based selectors (k-center, DEITA) use it.
    """

    matrix: sp.csr_matrix
    type_names: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    embeddings: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.matrix.shape[1] != len(self.type_names):
            raise ValueError(
                f"TypeAssignment: matrix has {self.matrix.shape[1]} type columns but {len(self.type_names)} type names"
            )

    @property
    def n_samples(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_types(self) -> int:
        return int(self.matrix.shape[1])

    def types_per_sample(self) -> np.ndarray:
        """Number of distinct types each sample carries, shape (n_samples,)."""
        return np.diff(self.matrix.indptr)

    def types_of(self, rows: np.ndarray) -> np.ndarray:
        """Sorted ids of the distinct types carried by any of `rows`."""
        sub = self.matrix[np.asarray(rows)]
        return np.unique(sub.indices)

    def save(self, directory: str | Path) -> None:
        """Write as `matrix.npz` + `types.json` (+ `embeddings.npy`); no pickle anywhere."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_write(directory / "matrix.npz", "wb") as fh:
            sp.save_npz(fh, self.matrix.tocsr().astype(np.uint8), compressed=True)
        if self.embeddings is not None:
            with atomic_write(directory / "embeddings.npy", "wb") as fh:
                np.save(fh, self.embeddings, allow_pickle=False)
        with atomic_write(directory / "types.json", "w") as fh:
            json.dump({"type_names": self.type_names, "meta": self.meta}, fh)

    @classmethod
    def load(cls, directory: str | Path) -> TypeAssignment:
        directory = Path(directory)
        matrix = sp.load_npz(directory / "matrix.npz").tocsr()
        info = json.loads((directory / "types.json").read_text())
        emb_path = directory / "embeddings.npy"
        embeddings = np.load(emb_path, allow_pickle=False) if emb_path.exists() else None
        return cls(matrix=matrix, type_names=info["type_names"], meta=info["meta"], embeddings=embeddings)

    @staticmethod
    def from_lists(type_lists: list[list[int]], type_names: list[str], **kwargs: Any) -> TypeAssignment:
        """Build from per-sample lists of type ids (duplicates within a row are merged)."""
        indptr = np.zeros(len(type_lists) + 1, dtype=np.int64)
        cols: list[np.ndarray] = []
        for i, ids in enumerate(type_lists):
            uniq = np.unique(np.asarray(ids, dtype=np.int64))
            cols.append(uniq)
            indptr[i + 1] = indptr[i] + len(uniq)
        indices = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        data = np.ones(len(indices), dtype=np.uint8)
        matrix = sp.csr_matrix((data, indices, indptr), shape=(len(type_lists), len(type_names)))
        return TypeAssignment(matrix=matrix, type_names=type_names, **kwargs)
