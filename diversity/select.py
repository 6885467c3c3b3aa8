"""Selection as its own step: pool -> decontamination -> held-out split -> length control -> types -> subset.

`select_subset` is the paper's first four stages in one call, with no training code involved (`mode=select`
never imports Lightning). It returns a `Subset`: the chosen pool indices, the held-out indices, and the record
that becomes the run's `selection.json` (`diversity.manifest`), where every count that can change a study is
kept: pool accounting, decontaminated prompts, the held-out split, target and achieved k, the length control
and the length drift of the subset against its reference.

Pool columns: a selector that reads a numeric field of the pool (QDIT's `quality=column:<field>`) names it in
`pool_columns`; `pool_columns(strategy)` tells the loader what to read (`load_pool(columns=...)`), and
`select_subset` hands the selector the values of exactly the rows it chooses from (after decontamination, the
held-out split and a length window), keyed into the selection cache by their hash.

Complexity: decontamination O(total prompt and instruction words); the split O(pool); token lengths O(pool
tokens) once per (pool, tokenizer), cached; the selection is the selector's (see `diversity.selectors`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.cache import FeatureCache, stable_hash
from diversity.lengths import (
    LengthControl,
    in_window,
    joint_stratum,
    length_drift,
    split_quota,
    strata,
    stratum_of,
    token_lengths,
)
from diversity.manifest import describe
from diversity.pools import COMPONENTS, Pool, PoolError
from diversity.selectors import Selection
from diversity.selectors.quota import Quota

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldoutSpec:
    """The held-out split: `size` pairs of whole conversations (at most `max_fraction` of a small pool),
    fixed by `seed` so every run of a sweep is scored on the same items whatever its own seed."""

    size: int = 64
    seed: int = 0
    max_fraction: float = 0.1


@dataclass
class Subset:
    """What selection chose, and why.

    Attributes:
        pool: the loaded pool (every usable pair).
        candidates: the selectable sub-pool the selector saw (after decontamination and the held-out split).
        selected: indices into `candidates` of the chosen samples (sorted).
        indices: the same samples as indices into `pool` (what `subset.jsonl` records).
        heldout: indices into `pool` of the held-out pairs.
        selection: the selector's `Selection` (k, k_target, k_min..k_max, info).
        record: the run's `selection.json` content.
    """

    pool: Pool
    candidates: Pool
    selected: np.ndarray
    indices: np.ndarray
    heldout: np.ndarray
    selection: Selection
    record: dict[str, Any] = field(default_factory=dict)

    def pairs(self, which: str = "train") -> tuple[list[str], list[str]]:
        """(instructions, responses) of the subset ("train") or of the held-out split ("heldout")."""
        rows = self.indices if which == "train" else self.heldout
        return [self.pool.instructions[i] for i in rows], [self.pool.responses[i] for i in rows]


def select_subset(
    pool: Pool,
    strategy: Any,
    n: int,
    level: float,
    seed: int,
    heldout: HeldoutSpec | None = None,
    exclude_prompts: Mapping[str, list[str]] | None = None,
    decontaminate: Mapping[str, Any] | None = None,
    length: LengthControl | None = None,
    cache: FeatureCache | None = None,
) -> Subset:
    """Choose `n` samples of `pool` at degree `level` with `strategy` (a `diversity.strategy.Strategy`).

    Args:
        exclude_prompts: benchmark name -> prompts the pool must not copy (dropped before the split).
        decontaminate: {enabled, ...settings of `diversity.decontaminate.find_contaminated`}.
        length: response-length window and lock (`diversity.lengths`); its tokenizer also measures the drift.
        cache: feature cache for types, token lengths and selections (None computes everything).

    Raises:
        PoolError: too few selectable samples for `n` (names the knobs to turn).
        ValueError: the selector cannot meet the request (n, level, window, lock).
    """
    heldout, length = heldout or HeldoutSpec(), length or LengthControl()
    columns = pool_columns(strategy)
    absent = [name for name in columns if name not in pool.columns]
    if absent:
        raise PoolError(
            f"strategy {getattr(strategy, 'name', strategy)!r} reads the pool column(s) {absent} "
            f"({type(strategy.selector).__name__}), but pool {pool.source} was loaded with columns "
            f"{sorted(pool.columns)}: load it with load_pool(..., columns=diversity.select.pool_columns(strategy))"
        )
    clean, decontamination = _decontaminate(pool, exclude_prompts or {}, dict(decontaminate or {"enabled": True}))
    if len(clean) == 0 and len(pool):
        from diversity.decontaminate import copies_by_benchmark

        raise PoolError(
            f"pool {pool.source}: all {len(pool)} pairs copy a benchmark prompt "
            f"({copies_by_benchmark(decontamination)}), so nothing is left to "
            "select from: use another pool, or set data.decontaminate.enabled=false if this is on purpose"
        )
    size = _heldout_size(heldout, len(clean))
    split = pool.take(clean).split_heldout(size, heldout.seed)
    selectable, held = clean[split.selectable], clean[split.heldout]
    heldout_block = {"size": len(held), "requested": heldout.size, "seed": heldout.seed, "by": "conversation"}
    heldout_block |= {"conversations": split.groups, "removed_duplicates": split.removed_duplicates}
    if len(selectable) < n:
        raise PoolError(
            f"pool {pool.source} has {len(selectable)} selectable samples ({len(pool)} pairs, minus "
            f"{len(pool) - len(clean)} benchmark copies, {len(held)} held out and {split.removed_duplicates} "
            f"repeating a held-out instruction) but diversity.n={n}: lower diversity.n or data.heldout_size "
            "(or raise data.max_samples)"
        )
    candidates = pool.take(selectable)
    lengths = _lengths(candidates, length.tokenizer, cache)
    within, quota, length_block, reference = _length_control(lengths, n, length)
    key = {
        "pool": candidates.content_hash,
        "strategy": describe(strategy),
        "n": n,
        "level": level,
        "seed": seed,
        "length": {k: v for k, v in length_block["control"].items() if k != "name"},  # a label picks no subset
        "quota": None if quota is None else quota.key,  # the strata themselves, whatever code cut them
        "within": None if within is None else stable_hash(within.tolist()),
    }
    if columns:  # only then, so every other selection keeps its cache key
        key["columns"] = {name: _values_hash(candidates.columns[name]) for name in columns}
        strategy = _with_columns(strategy, candidates, within)

    def choose() -> Selection:
        return strategy.select(candidates, n=n, level=level, seed=seed, cache=cache, within=within, quota=quota)

    selection = (
        choose() if cache is None else cache.get_or_compute("selections", key, choose, Selection.save, Selection.load)
    )
    selected = np.asarray(selection.indices, dtype=np.int64)
    if lengths:  # drift against the reference (the candidates, or the window's), locked or not
        reference = np.arange(len(candidates)) if reference is None else reference
        length_block["drift"] = {c: length_drift(lengths[c][selected], lengths[c][reference]) for c in COMPONENTS}
    subset = Subset(pool, candidates, selected, selectable[selected], held, selection)
    subset.record = _record(subset, strategy, n, level, seed, decontamination, heldout_block, length_block)
    return subset


def pool_columns(strategy: Any) -> list[str]:
    """The numeric pool fields `strategy`'s selector reads (its `pool_columns`; none for most selectors)."""
    return list(getattr(getattr(strategy, "selector", None), "pool_columns", ()))


def _with_columns(strategy: Any, candidates: Pool, within: np.ndarray | None) -> Any:
    """A copy of `strategy` whose selector holds its columns' values for the rows it sees: the candidates, or only
    those of the length window (`Strategy.select` restricts the types to `within`, in order)."""
    rows = np.arange(len(candidates)) if within is None else within
    bound = copy.copy(strategy)
    bound.selector = strategy.selector.with_columns(
        {name: candidates.columns[name][rows] for name in pool_columns(strategy)}
    )
    return bound


def _values_hash(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values, dtype="<f8").tobytes()).hexdigest()


def _decontaminate(pool: Pool, prompts: Mapping[str, list[str]], settings: dict[str, Any]) -> tuple[np.ndarray, dict]:
    """Indices of pool items whose instruction copies no benchmark prompt, and the counts behind them."""
    from diversity.decontaminate import find_contaminated

    enabled = settings.pop("enabled", True)
    if not enabled or not prompts:
        why = "off (data.decontaminate.enabled=false)" if not enabled else "no benchmarks"
        return np.arange(len(pool)), {"total": 0, "benchmarks": [], "method": why}
    found = find_contaminated(pool.instructions, prompts, **settings)
    log.info("decontamination dropped %d pool items %s", len(found.dropped), found.counts)
    return found.keep, {**found.report(**settings), "benchmarks": sorted(prompts)}


def _heldout_size(spec: HeldoutSpec, pool_size: int) -> int:
    """`spec.size`, capped at `spec.max_fraction` of a small pool (with a warning)."""
    cap = int(spec.max_fraction * pool_size)
    if spec.size <= cap:
        return spec.size
    log.warning(
        "pool has %d pairs: holding out %d instead of data.heldout_size=%d (data.heldout_max_fraction=%g)",
        pool_size,
        cap,
        spec.size,
        spec.max_fraction,
    )
    return cap


def _lengths(candidates: Pool, tokenizer: str | None, cache: FeatureCache | None) -> dict[str, np.ndarray]:
    """Token counts of both components under the model's tokenizer (empty without a tokenizer)."""
    if not tokenizer:
        return {}
    return {c: token_lengths(candidates, c, tokenizer, cache) for c in COMPONENTS}


def _length_control(
    lengths: dict[str, np.ndarray], n: int, control: LengthControl
) -> tuple[np.ndarray | None, Quota | None, dict[str, Any], np.ndarray | None]:
    """The candidate rows (window; under a lock without the reference's extreme outliers), the quota (lock), their
    record, and the reference rows the drift is measured against (None = every candidate)."""
    block: dict[str, Any] = {"control": control.as_dict(), "tokenizer": control.tokenizer}
    if not control.active:
        return None, None, block, None
    if "response" not in lengths:
        raise ValueError("diversity.length: a window or lock needs diversity.length.tokenizer (the model's)")
    response = lengths["response"]
    within = None
    if control.window is not None:
        within = in_window(response, control.window)
        block["window_candidates"] = int(len(within))
        if len(within) < n:
            raise ValueError(
                f"diversity.length.window={list(control.window)} tokens leaves {len(within)} of {len(response)} "
                f"selectable samples, fewer than diversity.n={n}"
            )
    reference = np.arange(len(response)) if within is None else within
    quota = None
    if control.lock:
        edges, counts = strata(response[reference], n, control.n_bins(n))
        # The longest 1/(2n) of the reference (a random subset holds half a sample of it on average) is left out:
        # one such outlier, which a type-rich degree would pick, moves the subset's mean by several percent.
        cap = np.quantile(response[reference], 1 - 1 / (2 * n), method="higher")
        within = reference[response[reference] <= cap]
        stratum = stratum_of(response[within], edges)
        block["strata"] = {"edges": edges.tolist(), "quota": counts.tolist()}
        if control.instruction_bins:  # the instruction-length distribution too, inside each response stratum
            instruction = lengths["instruction"]
            ref_outer = stratum_of(response[reference], edges)
            inner_edges, counts, _ = split_quota(ref_outer, counts, instruction[reference], control.instruction_bins)
            stratum = joint_stratum(stratum, instruction[within], inner_edges)
            block["strata"] |= {"instruction_edges": inner_edges.tolist(), "joint_quota": counts.tolist()}
        quota = Quota(stratum, counts)
        block["strata"]["outliers_left_out"] = int(len(reference) - len(within))
    return within, quota, block, reference


def _record(
    subset: Subset,
    strategy: Any,
    n: int,
    level: float,
    seed: int,
    decontamination: dict[str, Any],
    heldout: dict[str, Any],
    length: dict[str, Any],
) -> dict[str, Any]:
    """The run's `selection.json`: the request, what the selector achieved, and every count behind it."""
    selection, pool = subset.selection, subset.pool
    return {
        "strategy": getattr(strategy, "name", type(strategy).__name__),
        "component": getattr(strategy, "component", None),
        "level": level,
        "n": n,
        "seed": seed,
        "k": selection.k,
        "k_target": selection.k_target,
        "k_min": selection.k_min,
        "k_max": selection.k_max,
        "n_types": selection.n_types,
        "pool": {
            "source": pool.source,
            "content_hash": pool.content_hash,
            "size": len(pool),
            **pool.stats,
            "decontaminated": decontamination.get("total", 0),
            "heldout": len(subset.heldout),
            "heldout_duplicates_removed": heldout.get("removed_duplicates", 0),
            "selectable": len(subset.candidates),
        },
        "decontamination": decontamination,
        "heldout": heldout,
        "length": length,
        "info": selection.info,
    }
