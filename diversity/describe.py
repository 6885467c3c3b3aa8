"""Post-hoc description of the subset a job selected: diversity metrics on both components + type coverage.

Computed whatever strategy chose the subset, so every run of a sweep (random included) is described alike
and the analysis can correlate any metric with any score. `selection_facts` and `selection_warnings` turn a
run's `selection.json` into the summary lines and warnings that `print_summary` prints at the end of a job.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.cache import FeatureCache
from diversity.decontaminate import copies_by_benchmark
from diversity.metrics import compute_subset_metrics, write_subset_metrics
from diversity.pools import COMPONENTS
from diversity.select import Subset
from diversity.selectors.degree import DEGREES

log = logging.getLogger("macro2micro")  # the run's own logger: warnings reach the console and run.log


def describe_subset(
    subset: Subset, metrics_cfg: Any, tokenizer: str, run_dir: Path, cache: FeatureCache | None = None
) -> dict[str, float | int]:
    """Metrics of the selected subset, written to `<run_dir>/subset_metrics.json`.

    Coverage `subset/k/<name>` is the number of types the subset covers: for the strategy's own types (when
    it has any; random has none) and for every extra `metrics_cfg.coverage` entry (name -> {component,
    extractor}), so every run of a sweep, random included, is described at the same granularities. Types
    are computed on the candidate pool the selector saw and cached, so a strategy's own types are reused.
    Embeddings are rows of the candidate pool's cached matrix (`diversity.metrics.pool_embeddings`), so the
    runs of a sweep embed each pool text at most once.
    """
    candidates, selected = subset.candidates, subset.selected
    embeddings = None
    if metrics_cfg["embeddings"]:
        from diversity.embeddings import DEFAULT_EMBEDDER
        from diversity.metrics.pool_embeddings import subset_embeddings

        model = metrics_cfg["embedder"] or DEFAULT_EMBEDDER
        embeddings = {c: subset_embeddings(candidates.texts(c), selected, model=model, cache=cache) for c in COMPONENTS}
    pool_embeddings = None  # NovelSum's density and facility-location coverage read the whole candidate pool
    if embeddings is not None and metrics_cfg["pool_metrics"]:
        from diversity.metrics.pool_embeddings import pool_matrix

        pool_embeddings = {c: pool_matrix(candidates.texts(c), model=model, cache=cache) for c in COMPONENTS}
    coverage = {}
    for name, spec in (metrics_cfg.get("coverage") or {}).items():
        from hydra.utils import instantiate

        from diversity.strategy import Strategy

        counter = Strategy(name, component=spec["component"], extractor=instantiate(spec["extractor"]))
        coverage[name] = (counter.types(candidates, cache), selected)
    instructions, responses = subset.pairs("train")
    metrics = compute_subset_metrics(
        instructions,
        responses,
        tokenizer=tokenizer,
        embeddings=embeddings,
        seed=int(subset.record.get("seed", 0)),
        self_bleu_samples=int(metrics_cfg["self_bleu_samples"]),
        type_assignments=coverage,
        pool_embeddings=pool_embeddings,
    )
    if subset.selection.k is not None:
        metrics.setdefault(f"subset/k/{subset.record['strategy']}", int(subset.selection.k))
    write_subset_metrics(metrics, run_dir)
    return metrics


TYPELESS_WARN_SHARE = 0.2  # candidates without a type are never selected: above this, the pool shrinks a lot
CUT_WARN_SHARE = 0.10  # samples cut at data.max_length: above this, training sees a different subset (its one home)
DROP_KEYS = ("empty", "too_long", "duplicates")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def selection_facts(selection: Mapping[str, Any]) -> dict[str, str]:
    """Summary rows from `selection.json`: target and achieved k, the k range, the pool's accounting.

    Keys added by newer code (`k_target`, `decontamination`, `truncation`) are optional: absent ones are
    left out, so older run dirs summarise too.
    """
    facts: dict[str, str] = {}
    info = selection.get("info") or {}
    k, target = selection.get("k"), selection.get("k_target", info.get("k_target"))
    if k is not None:
        facts["k (achieved / target)"] = f"{k} / {target}" if target is not None else str(k)
    if selection.get("k_min") is not None:
        facts["k range (k_min..k_max)"] = f"{selection['k_min']}..{selection.get('k_max')}"
    pool = selection.get("pool") or {}
    if _number(pool.get("size")):
        facts["pool (pairs / selectable)"] = f"{pool['size']} / {pool.get('selectable', '?')}"
    dropped = {key: pool[key] for key in DROP_KEYS if _number(pool.get(key)) and pool[key]}
    if dropped:
        facts["dropped pool rows"] = ", ".join(f"{key.replace('_', ' ')} {count}" for key, count in dropped.items())
    length = selection.get("length") or {}
    window = (length.get("control") or {}).get("window")
    if window and _number(length.get("window_candidates")):
        facts[f"in the {window[0]}-{window[1]} token window"] = f"{length['window_candidates']} candidates"
    typeless = info.get("n_typeless")
    if _number(typeless) and selection.get("strategy") != "random":
        facts["untyped candidates (never selected)"] = str(typeless)
    meso = info.get("extractor") or {}
    if _number(meso.get("raw_tags_per_sample")) and _number(meso.get("types_after_merge")):  # what tags became
        relevance = f" at relevance >= {meso['tag_min_relevance']}" if _number(meso.get("tag_min_relevance")) else ""
        facts["meso tags per sample, distinct tags -> types (+ parents)"] = (
            f"{meso['raw_tags_per_sample']:.1f}{relevance}, {meso.get('distinct_tags', '?')} -> "
            f"{meso['types_after_merge']} (+ {meso.get('parent_types') or 0})"
        )
    for component in ("response", "instruction"):
        drift = (length.get("drift") or {}).get(component)
        if isinstance(drift, Mapping) and _number(drift.get("mean")):
            locked = " (locked)" if component == "response" and (length.get("control") or {}).get("lock") else ""
            facts[f"{component} tokens: mean, drift, KS{locked}"] = (
                f"{drift['mean']:.0f}, {drift['mean_drift']:+.1%} vs {drift['reference_mean']:.0f}, {drift['ks']:.3f}"
            )
    trunc = selection.get("truncation") or {}
    if _number(trunc.get("n_cut")):
        facts["cut at max_length (samples / tokens)"] = f"{trunc['n_cut']} / {trunc.get('tokens_dropped', '?')}"
    decontamination = selection.get("decontamination") or {}
    total = decontamination.get("total", pool.get("decontaminated"))
    if decontamination.get("benchmarks"):  # shown at 0 too: "checked against these benchmarks, nothing copied"
        facts["decontaminated (copies of benchmark prompts)"] = f"{total} ({copies_by_benchmark(decontamination)})"
    elif _number(total) and total:
        facts["decontaminated (copies of benchmark prompts)"] = str(total)
    return facts


def selection_warnings(selection: Mapping[str, Any]) -> list[str]:
    """What makes this run's degree of diversity or training set differ from what was asked, one line each."""
    warnings: list[str] = []
    info = selection.get("info") or {}
    k, target = selection.get("k"), selection.get("k_target", info.get("k_target"))
    if _number(k) and _number(target) and target and abs(k - target) > max(1, 0.005 * target):
        warnings.append(f"achieved k={k} misses the target k={target} ({(k - target) / target:+.1%})")
    distinct = info.get("n_distinct_k")
    if _number(distinct) and distinct < len(DEGREES):
        warnings.append(
            f"the {len(DEGREES)} paper degrees reach only {distinct} distinct k in "
            f"{selection.get('k_min')}..{selection.get('k_max')}: some degrees select the same coverage "
            "(a larger pool, data.max_samples, or a smaller diversity.n spreads them)"
        )
    typeless = info.get("n_typeless")
    candidates = (selection.get("pool") or {}).get("selectable") or info.get("candidate_pool_size")
    if _number(typeless) and _number(candidates) and candidates and typeless / candidates > TYPELESS_WARN_SHARE:
        warnings.append(
            f"{typeless} of {candidates} candidates ({typeless / candidates:.0%}) carry no "
            f"{selection.get('strategy', '')} type and are never selected"
        )
    length = selection.get("length") or {}
    drift = (length.get("drift") or {}).get("response") or {}
    if (
        (length.get("control") or {}).get("lock")
        and _number(drift.get("mean_drift"))
        and abs(drift["mean_drift"]) > 0.02
    ):
        warnings.append(
            f"the length lock missed the reference mean by {drift['mean_drift']:+.1%} (KS {drift['ks']:.3f})"
        )
    truncation = selection.get("truncation") or {}
    share = truncation.get("share_cut")
    if _number(share) and share > CUT_WARN_SHARE:
        limit = truncation.get("max_length")
        where = f" at data.max_length={limit}" if limit is not None else ""
        warnings.append(
            f"{share:.0%} of the subset's samples are cut{where}: training sees shortened responses "
            "(raise data.max_length, or lower data.max_chars)"
        )
    return warnings


def print_summary(path: Path, metrics: dict, selection: dict | None = None) -> None:
    """Headline numbers, the selection's k (achieved / target, k_min..k_max) and pool accounting, then one
    warning line (console and run.log) for each thing that makes the run differ from what was asked."""
    from rich.console import Console
    from rich.table import Table

    selection = selection or {}
    table = Table(title=path.name)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in selection_facts(selection).items():
        table.add_row(key, value)
    for key, value in metrics.items():
        if key == "k" and "k" in selection:
            continue  # shown with its target above
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    for warning in selection_warnings(selection):
        log.warning(warning)
    print(f"outputs: {path}")
