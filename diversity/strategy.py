"""A strategy = which text (component) + how to type it (extractor) + how to pick a subset (selector).

Hydra builds one from `conf/strategy/<name>.yaml`. `Strategy.select` is the only thing `run.py` calls:
it extracts (or loads cached) types for the pool, optionally restricts candidates to a response-length
window and passes the length lock's quota (`diversity.lengths`), runs the selector and describes the subset.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.cache import FeatureCache
from diversity.pools import COMPONENTS
from diversity.selectors import RandomSelector, Selection
from diversity.selectors.degree import PREVIEW
from diversity.selectors.quota import Quota, holds_length_lock
from diversity.types import TypeAssignment

log = logging.getLogger(__name__)


# Extractor meta copied into every selection's info (see MicroExtractor, MacroExtractor, MesoExtractor).
EXTRACTOR_FACTS = (
    "band",
    "n_samples_without_type",
    "clustering",
    "n_noise",
    "min_topics_used",
    "types_per_sample",
    "tagger",
    "tag_min_relevance",
    "tag_relevance_rule",
    "distinct_tags",
    "parent_threshold",
    "parent_types",
    "raw_tags_per_sample",
    "types_after_merge",
)


class Strategy:
    """One of the paper's strategies (or a baseline/ablation), as configured.

    Args:
        name: the strategy's name, e.g. "micro_response" (recorded in every selection).
        component: "instruction" or "response": the text the extractor types. None only without an
            extractor (random).
        extractor: object with `fit(texts, cache=None, ids=None) -> TypeAssignment` and `cache_key()`;
            None for random.
        selector: object with `select(types, n, level, seed) -> Selection`; RandomSelector if None.
    """

    def __init__(
        self,
        name: str,
        component: str | None = None,
        extractor: Any = None,
        selector: Any = None,
    ) -> None:
        self.name = name
        self.component = component
        self.extractor = extractor
        self.selector = selector if selector is not None else RandomSelector()

    def types(self, pool: Any, cache: FeatureCache | None = None) -> TypeAssignment:
        """Types of every pool sample; an empty (n x 0) assignment when there is no extractor.

        Cached under namespace "types" by (pool content hash, component, extractor cache key).
        """
        if self.extractor is None:
            matrix = sp.csr_matrix((len(pool), 0), dtype=np.uint8)
            return TypeAssignment(matrix=matrix, type_names=[], meta={"extractor": None})
        if self.component not in COMPONENTS:
            raise ValueError(f"strategy {self.name!r}: component must be one of {COMPONENTS}, got {self.component!r}")
        texts, ids, extractor = pool.texts(self.component), pool.ids, self.extractor

        def fit() -> TypeAssignment:
            # Closes over the extractor alone, not `self`: the entry's code version is then the extractor's code,
            # the same whichever strategy (or coverage metric, with another selector) asks for these types.
            return extractor.fit(texts, cache=cache, ids=ids)

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
        within: np.ndarray | None = None,
        quota: Quota | None = None,
    ) -> Selection:
        """Pick `n` pool indices at degree `level`.

        Args:
            pool: a `diversity.pools.Pool` (needs `texts`, `__len__`, `content_hash`).
            n, level, seed: see docs/CONTRACTS.md.
            cache: feature cache for types (None computes everything).
            within: sorted pool indices that may be chosen (a response-length window); None = all. Types are
                still extracted on the whole pool, so every degree shares one type vocabulary.
            quota: per-stratum counts over the `within` rows (the length lock, `diversity.lengths`); the
                selector must accept a `quota` argument (degree and random selectors do).

        Returns:
            A Selection whose indices refer to `pool`, with `info` filled (see `_describe`).
        """
        types = self.types(pool, cache)
        if within is not None:
            if len(within) < n:
                raise ValueError(
                    f"strategy {self.name!r}: the length window leaves {len(within)} samples, fewer than n={n}"
                )
            types = _restrict(types, within)
        if quota is None:
            selection = self.selector.select(types, n, level, seed)
        elif holds_length_lock(self.selector):
            selection = self.selector.select(types, n, level, seed, quota=quota)
        else:
            raise ValueError(
                f"strategy {self.name!r}: {type(self.selector).__name__} cannot hold a length lock "
                "(diversity.length.lock works with the degree and random selectors)"
            )
        if within is not None:
            selection.indices = within[selection.indices]
        selection.info.update(self._describe(pool, types, selection, within))
        return selection

    def _describe(
        self,
        pool: Any,
        types: TypeAssignment,
        selection: Selection,
        candidates: np.ndarray | None,
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
        return info


def _restrict(types: TypeAssignment, rows: np.ndarray) -> TypeAssignment:
    """The assignment of `rows` only (same type columns), so a selector sees just those candidates."""
    embeddings = None if types.embeddings is None else types.embeddings[rows]
    meta = {**types.meta, "restricted_to": int(len(rows))}
    return TypeAssignment(matrix=types.matrix[rows], type_names=types.type_names, meta=meta, embeddings=embeddings)
