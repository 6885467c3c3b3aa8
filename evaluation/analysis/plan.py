"""`mode=plan`: before spending compute, what a proposed grid can detect and what it costs.

From a pilot sweep's noise (the pooled residual sd of `noise_table`, within seed when the pilot paired its seeds;
or a given sigma) and its step time
(`run.log`'s "training finished: N step(s) in T" lines, or a given time), for a grid of strategies x degrees x
seeds x lock it prints the minimum detectable effect (MDE) at two-sided alpha and the asked power:

- slope over degrees (score change from degree 0 to 1) in the pooled model: `se = sigma / sqrt(seeds * Sxx)`
  on the pooled residual df (seed-paired when every cell runs the same seeds);
- a 2 x 2 factorial with paired seeds (window x diversity): per-seed contrasts tested with a paired t (or the
  sign-flip test, which has the same power to first order): main effect sd `sigma`, simple effect `sqrt(2) sigma`,
  interaction `2 sigma`, on `seeds - 1` df.

MDE solves `power(delta) = target` under the noncentral t (scipy `nct`, brentq), the same maths as statsmodels'
`TTestPower`. With a pilot whose seeds were not paired, sigma includes the seed's shared shift, so the paired
MDEs are conservative.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize
from scipy import stats as sps

__all__ = ["PlanReport", "main", "mde", "pilot_noise", "pilot_step_seconds", "plan", "power"]

PLAN_KEYS = (
    "pilot_sweep_dir",
    "sigma",
    "step_seconds",
    "grid",
    "factorial",
    "score",
    "alpha",
    "target_power",
    "sigma_df",
)
"""`plan()`'s arguments a config may set; one it leaves out (or nulls) keeps `plan()`'s default, which
`tests/test_configs.py` keeps equal to conf/plan/default.yaml."""
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "plan" / "default.yaml"
FINISHED = re.compile(r"training finished: (\d+) step\(s\) in (\d+h\d{2}m|\d+m\d{2}s|\d+s)")


def power(effect: float, se: float, df: float, alpha: float = 0.05) -> float:
    """Two-sided power of a t test of `estimate / se` on `df` degrees of freedom when the truth is `effect`."""
    if not (se > 0 and df > 0):
        return float("nan")
    crit = sps.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) / se
    lower = sps.nct.cdf(-crit, df, nc)  # the wrong-sign tail; scipy returns NaN where it underflows
    return float(sps.nct.sf(crit, df, nc) + (0.0 if not np.isfinite(lower) else lower))


def mde(se: float, df: float, alpha: float = 0.05, target: float = 0.8) -> float:
    """Smallest |effect| detected with probability `target` (O(brentq iterations)); NaN without df."""
    if not (se > 0 and df > 0 and math.isfinite(se)):
        return float("nan")
    # Solved in units of se (the noncentrality), where scipy's nct is well conditioned.
    hi = sps.t.ppf(1 - alpha / 2, df) + sps.t.ppf(target, df) + 5.0
    nc = optimize.brentq(lambda d: power(d, 1.0, df, alpha) - target, 0.0, hi, xtol=1e-12)
    return float(nc * se)


def _seconds(text: str) -> int:
    parts = {unit: value for value, unit in re.findall(r"(\d+)([hms])", text)}
    return int(parts.get("h", 0)) * 3600 + int(parts.get("m", 0)) * 60 + int(parts.get("s", 0))


def pilot_step_seconds(sweep_dir: str | Path) -> tuple[float, int] | None:
    """Mean seconds per optimizer step over every `run.log` under the pilot (total time / total steps) and
    the number of runs it rests on; None when no log has a "training finished" line."""
    steps = seconds = runs = 0
    for log in Path(sweep_dir).rglob("run.log"):
        found = FINISHED.findall(log.read_text(encoding="utf-8", errors="replace"))
        if found:
            n, took = found[-1]
            steps, seconds, runs = steps + int(n), seconds + _seconds(took), runs + 1
    return (seconds / steps, runs) if steps else None


def pilot_noise(sweep_dir: str | Path, score: str) -> tuple[float, float, str]:
    """`(sigma, df, method)` of the pilot's pooled model for `score`: the within-seed residual sd when the pilot
    paired its seeds (MixedLM; the designs planned here are paired, so a seed's shared shift cancels in every
    contrast), else the per-run sd around a cell's mean (which then includes that shift: conservative)."""
    from evaluation.analysis.collect import collect_runs, drop_repeated_baselines
    from evaluation.analysis.pooled import noise_table

    runs = drop_repeated_baselines(collect_runs(sweep_dir)[0])[0]
    rows = [r for r in noise_table(runs, [score]) if "sigma_run" in r]
    if not rows:
        have = sorted({k for r in runs for k in r if k.startswith(("eval/", "heldout/"))})
        raise ValueError(
            f"{sweep_dir}: no pooled noise for score {score!r} ({len(runs)} finished runs; scores {have}): "
            "set plan.score to one of those"
        )
    row = max(rows, key=lambda r: r["df"])
    sigma = row["sigma_pooled"] if row["method"] == "mixedlm" else row["sigma_run"]
    return float(sigma), float(row["df"]), str(row["method"])


@dataclass(frozen=True)
class PlanReport:
    """What a grid can detect and what it costs."""

    sigma: float
    sigma_df: float
    sigma_source: str
    step_seconds: float
    step_source: str
    alpha: float
    power: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    """One per design line: `design`, `effect`, `jobs`, `se`, `df`, `mde`, optional `mde_per_bit`,
    `power_at_target`, and the compute `hours`."""
    score: str = ""
    """The score the noise (and any target effect) is measured on."""

    def format(self) -> str:
        """Plain-text table for the console and the experiment file."""
        lines = [
            f"plan: sigma {self.sigma:.3g} ({self.sigma_source}), step {self.step_seconds:.3g} s ({self.step_source}); "
            f"MDE at two-sided alpha {self.alpha} and power {self.power}",
            f"{'design':<44} {'effect':<26} {'jobs':>5} {'hours':>6} {'se':>9} {'df':>4} {'MDE':>9} {'MDE/bit':>9}",
        ]
        for r in self.rows:
            per_bit = f"{r['mde_per_bit']:.3g}" if math.isfinite(r.get("mde_per_bit", math.nan)) else "-"
            lines.append(
                f"{r['design']:<44} {r['effect']:<26} {r['jobs']:>5} {r['hours']:>6.2f} {r['se']:>9.3g} "
                f"{r['df']:>4.0f} {r['mde']:>9.3g} {per_bit:>9}"
                + (f"  power at {r['target']:.3g}: {r['power_at_target']:.2f}" if "power_at_target" in r else "")
            )
        targets = sorted({r["target"] for r in self.rows if "target" in r})
        if targets:
            lines.append(
                f"note: target effects {', '.join(f'{t:.3g}' for t in targets)} are read as effects on {self.score}; "
                "for another score set plan.grid.target_slope and plan.factorial.target in its units"
            )
        if self.sigma_df < 10:
            upper = self.sigma * math.sqrt(self.sigma_df / sps.chi2.ppf(0.1, self.sigma_df))
            lines.append(
                f"note: sigma rests on {self.sigma_df:.0f} df; its 90% upper bound {upper:.3g} would scale every "
                f"MDE by {upper / self.sigma:.2f}"
            )
        return "\n".join(lines)


def _row(design: str, effect: str, jobs: int, seconds: float, se: float, df: float, alpha: float, target: float,
         bits: float | None, effect_size: float | None) -> dict[str, Any]:  # fmt: skip
    row = {"design": design, "effect": effect, "jobs": jobs, "hours": seconds / 3600.0, "se": se, "df": df}
    row["mde"] = mde(se, df, alpha, target)
    row["mde_per_bit"] = row["mde"] / bits if bits else math.nan
    if effect_size is not None:
        row["target"], row["power_at_target"] = effect_size, power(effect_size, se, df, alpha)
    return row


def plan(
    pilot_sweep_dir: str | Path | None = None,
    sigma: float | None = None,
    step_seconds: float | None = None,
    grid: Mapping[str, Any] | None = None,
    factorial: Mapping[str, Any] | None = None,
    score: str = "eval/reference_loss/mtbench_loss",
    alpha: float = 0.05,
    target_power: float = 0.8,
    sigma_df: float | None = None,
) -> PlanReport:
    """MDE and compute of a degree grid and of a 2 x 2 factorial (see the module docstring).

    Args:
        pilot_sweep_dir: Pilot sweep; gives sigma (when `sigma` is None) and step time (when `step_seconds` is None).
        sigma: Per-run noise sd of `score`; overrides the pilot's.
        step_seconds: Seconds per optimizer step; overrides the pilot's run.log.
        grid: `{strategies, levels, seeds, locks, random_seeds, steps, job_overhead_seconds, entropy_bits?,
            target_slope?}`: each strategy at each level with `seeds` seeds (paired), under each lock setting.
        factorial: `{seeds, random_seeds, windows, steps, job_overhead_seconds, entropy_bits?, target?}` or None.
        score: Pilot score whose noise is used.
        alpha: Two-sided level.
        target_power: Power at which the MDE is read.
        sigma_df: df of a given sigma (for the note on its uncertainty); default inf.

    Raises:
        ValueError: When neither the pilot nor the arguments give sigma or the step time, naming the key to set.
    """
    if sigma is None:
        if pilot_sweep_dir is None:
            raise ValueError("plan: give sigma or pilot_sweep_dir (plan.sigma / plan.pilot_sweep_dir)")
        sigma, sigma_df, method = pilot_noise(pilot_sweep_dir, score)
        kind = "within-seed residual" if method == "mixedlm" else "per-run"
        sigma_source = f"pooled {kind} sd ({method}) of {score} in {pilot_sweep_dir}, {sigma_df:.0f} df"
    else:
        sigma_source, sigma_df = "given", math.inf if sigma_df is None else sigma_df
    if step_seconds is None:
        found = pilot_step_seconds(pilot_sweep_dir) if pilot_sweep_dir is not None else None
        if found is None:
            raise ValueError(
                f"plan: no run.log with 'training finished' under {pilot_sweep_dir}; set plan.step_seconds"
            )
        step_seconds, n_logs = found
        step_source = f"mean of {n_logs} run.log(s)"
    else:
        step_source = "given"
    rows: list[dict[str, Any]] = []
    if grid:
        g = dict(grid)
        levels = np.asarray(g["levels"], dtype=float)
        seeds, locks, n_rand = int(g["seeds"]), list(g.get("locks", [False])), int(g.get("random_seeds", 0))
        strategies = list(g["strategies"])
        job = g["steps"] * step_seconds + g.get("job_overhead_seconds", 0.0)
        jobs = len(locks) * (len(strategies) * levels.size * seeds + n_rand)
        params = len(locks) * (2 * len(strategies) + (1 if n_rand else 0))
        df = jobs - params - (seeds - 1 if seeds > 1 else 0)
        se = sigma / math.sqrt(seeds * float(((levels - levels.mean()) ** 2).sum()))
        design = f"{len(strategies)} strat x {levels.size} deg x {seeds} seeds x {len(locks)} lock + {n_rand} rand"
        rows.append(_row(design, "slope over degrees 0->1", jobs, jobs * job, se, df, alpha, target_power,
                         g.get("entropy_bits"), g.get("target_slope")))  # fmt: skip
    if factorial:
        f = dict(factorial)
        m, n_rand, windows = int(f["seeds"]), int(f.get("random_seeds", 0)), int(f.get("windows", 2))
        job = f["steps"] * step_seconds + f.get("job_overhead_seconds", 0.0)
        jobs = 4 * m + windows * n_rand
        design = f"2x2 factorial x {m} paired seeds + {windows}x{n_rand} rand"
        for effect, sd in (("diversity main effect", 1.0), ("diversity within a window", math.sqrt(2.0)),
                           ("window x diversity", 2.0)):  # fmt: skip
            rows.append(_row(design, effect, jobs, jobs * job, sigma * sd / math.sqrt(m), m - 1, alpha,
                             target_power, f.get("entropy_bits"), f.get("target")))  # fmt: skip
    return PlanReport(
        sigma, float(sigma_df), sigma_source, float(step_seconds), step_source, alpha, target_power, rows, score
    )


def main(cfg: Mapping[str, Any] | None = None, **overrides: Any) -> PlanReport:
    """Plan from a config mapping (the `plan` group, e.g. `conf/plan/default.yaml`), print it and return it.

    Standalone: `python -c "from evaluation.analysis.plan import main; main()"` reads `conf/plan/default.yaml`;
    keyword overrides replace top-level keys (`main(sigma=0.001, step_seconds=7.5)`).
    """
    if cfg is None:
        import yaml

        cfg = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            cfg = OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover (omegaconf is a dependency)
        pass
    conf = {**dict(cfg), **overrides}
    conf["target_power"] = conf.pop("power", None)  # the YAML's name for plan()'s `target_power`
    report = plan(**{key: value for key, value in conf.items() if key in PLAN_KEYS and value is not None})
    print(report.format())
    return report
