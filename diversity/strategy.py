"""A strategy = which text (component) + how to type it (extractor) + how to pick a subset (selector).

Hydra builds one from `conf/strategy/<name>.yaml`. `Strategy.select` is the only thing `run.py` calls:
it extracts (or loads cached) types for the pool, optionally restricts candidates to a response-length
window (the paper's length-control ablation), runs the selector and describes the subset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.cache import FeatureCache
from diversity.extractors.micro import WHITESPACE, count_tokens
from diversity.pools import COMPONENTS
from diversity.selectors import RandomSelector, Selection
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)


PREVIEW = 20
# Extractor meta copied into every selection's info (see MicroExtractor, MacroExtractor, MesoExtractor).
EXTRACTOR_FACTS = ("band", "n_samples_without_type", "clustering", "n_noise", "min_topics_used", "types_per_sample")


def _save_lengths(lengths: np.ndarray, path: Path) -> None:
    np.save(path / "lengths.npy", lengths, allow_pickle=False)


def _load_lengths(path: Path) -> np.ndarray:
    return np.load(path / "lengths.npy", allow_pickle=False)


class Strategy:
    """One of the paper's strategies (or a baseline/ablation), as configured.

    Args:
        name: the strategy's name, e.g. "micro_response" (recorded in every selection).
        component: "instruction" or "response": the text the extractor types. None only without an
            extractor (random).
        extractor: object with `fit(texts, cache=None, ids=None) -> TypeAssignment` and `cache_key()`;
            None for random.
        selector: object with `select(types, n, level, seed) -> Selection`; RandomSelector if None.
        length_tokenizer: tokenizer name for the subset's mean token lengths in `info`. None uses the
            micro extractor's tokenizer when it has a model tokenizer, and skips lengths otherwise.
    """

    def __init__(
        self,
        name: str,
        component: str | None = None,
        extractor: Any = None,
        selector: Any = None,
        length_tokenizer: str | None = None,
    ) -> None:
        self.name = name
        self.component = component
        self.extractor = extractor
        self.selector = selector if selector is not None else RandomSelector()
        self.length_tokenizer = length_tokenizer

    def types(self, pool: Any, cache: FeatureCache | None = None) -> TypeAssignment:
        """Types of every pool sample; an empty (n x 0) assignment when there is no extractor.

        Cached under namespace "types" by (pool content hash, component, extractor cache key).
        """
        if self.extractor is None:
            matrix = sp.csr_matrix((len(pool), 0), dtype=np.uint8)
            return TypeAssignment(matrix=matrix, type_names=[], meta={"extractor": None})
        if self.component not in COMPONENTS:
            raise ValueError(f"strategy {self.name!r}: component must be one of {COMPONENTS}, got {self.component!r}")
        texts = pool.texts(self.component)

        def fit() -> TypeAssignment:
            return self.extractor.fit(texts, cache=cache, ids=pool.ids)

        if cache is None:
            return fit()
        key = {
            "pool": pool.content_hash,
            "component": self.component,
            "extractor": self.extractor.cache_key(),
        }
        return cache.get_or_compute("types", key, fit, lambda v, p: v.save(p), TypeAssignment.load)

    def select(
        self,
        pool: Any,
        n: int,
        level: float,
        seed: int,
        cache: FeatureCache | None = None,
        match_length: Mapping[str, Any] | None = None,
    ) -> Selection:
        """Pick `n` pool indices at degree `level`.

        Args:
            pool: a `diversity.pools.Pool` (needs `texts`, `__len__`, `content_hash`).
            n, level, seed: see docs/CONTRACTS.md.
            cache: feature cache for types and token lengths (None computes everything).
            match_length: `{enabled, tokenizer, min_tokens, max_tokens}` or None. When enabled, only
                samples whose response has min_tokens..max_tokens tokens (inclusive, under `tokenizer`)
                are candidates; types are still extracted on the whole pool, so every degree shares one
                type vocabulary.

        Returns:
            A Selection whose indices refer to `pool`, with `info` filled (see `_describe`).
        """
        types = self.types(pool, cache)
        candidates = None
        if match_length is not None and match_length.get("enabled", False):
            candidates = self._length_window(pool, match_length, cache)
            if len(candidates) < n:
                raise ValueError(
                    f"strategy {self.name!r}: the response-length window "
                    f"{match_length['min_tokens']}..{match_length['max_tokens']} tokens leaves "
                    f"{len(candidates)} of {len(pool)} samples, fewer than n={n}"
                )
            types = _restrict(types, candidates)
        selection = self.selector.select(types, n, level, seed)
        if candidates is not None:
            selection.indices = candidates[selection.indices]
            selection.info["length_window"] = {**dict(match_length), "n_candidates": int(len(candidates))}
        selection.info.update(self._describe(pool, types, selection, candidates, cache))
        return selection

    def _length_window(self, pool: Any, match_length: Mapping[str, Any], cache: FeatureCache | None) -> np.ndarray:
        missing = [k for k in ("tokenizer", "min_tokens", "max_tokens") if k not in match_length]
        if missing:
            raise ValueError(f"match_length is missing {missing}; expected enabled, tokenizer, min_tokens, max_tokens")
        lengths = self._lengths(pool, "response", str(match_length["tokenizer"]), cache)
        ok = (lengths >= match_length["min_tokens"]) & (lengths <= match_length["max_tokens"])
        return np.flatnonzero(ok)

    def _lengths(self, pool: Any, component: str, tokenizer: str, cache: FeatureCache | None) -> np.ndarray:
        texts = pool.texts(component)
        if cache is None:
            return count_tokens(texts, tokenizer)
        key = {"pool": pool.content_hash, "component": component, "tokenizer": tokenizer}
        return cache.get_or_compute(
            "lengths", key, lambda: count_tokens(texts, tokenizer), _save_lengths, _load_lengths
        )

    def _length_tokenizer(self) -> str | None:
        if self.length_tokenizer is not None:
            return self.length_tokenizer
        name = getattr(self.extractor, "tokenizer", None)
        return name if isinstance(name, str) and name != WHITESPACE else None

    def _describe(
        self,
        pool: Any,
        types: TypeAssignment,
        selection: Selection,
        candidates: np.ndarray | None,
        cache: FeatureCache | None,
    ) -> dict[str, Any]:
        """Strategy-level facts about the subset: who chose it, what it covers, how long its texts are."""
        info: dict[str, Any] = {"strategy": self.name, "component": self.component}
        # The selector's own facts (its level-dependent candidate pool P_k, its type preview) win.
        if "candidate_pool_size" not in selection.info:
            info["candidate_pool_size"] = len(pool) if candidates is None else len(candidates)
        # What the extractor decided from this pool (the micro band actually used, how macro clustered, how
        # many samples got no type), so selection.json shows the setting that shaped the degrees.
        extractor_facts = {key: types.meta[key] for key in EXTRACTOR_FACTS if key in types.meta}
        if extractor_facts:
            info["extractor"] = extractor_facts
        if types.n_types:
            local = selection.indices if candidates is None else np.searchsorted(candidates, selection.indices)
            covered = types.types_of(local)
            info["types_covered"] = int(covered.size)
            if "types_preview" not in selection.info:
                info["types_preview"] = [types.type_names[t] for t in covered[:PREVIEW]]
        tokenizer = self._length_tokenizer()
        if tokenizer is not None:
            info["length_tokenizer"] = tokenizer
            for component in COMPONENTS:
                texts = pool.texts(component)
                subset = [texts[i] for i in selection.indices]
                info[f"mean_{component}_tokens"] = float(count_tokens(subset, tokenizer, progress=False).mean())
        return info


def _restrict(types: TypeAssignment, rows: np.ndarray) -> TypeAssignment:
    """The assignment of `rows` only (same type columns), so a selector sees just those candidates."""
    embeddings = None if types.embeddings is None else types.embeddings[rows]
    meta = {**types.meta, "restricted_to": int(len(rows))}
    return TypeAssignment(matrix=types.matrix[rows], type_names=types.type_names, meta=meta, embeddings=embeddings)
