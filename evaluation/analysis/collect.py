"""Collect the runs of a sweep into one table: one row per finished run, plus a list of unfinished ones.

A run dir (docs/CONTRACTS.md) holds `config.yaml`, `selection.json`, `subset_metrics.json`, `metrics.json` and
a `DONE` marker once finished. A run without `DONE` or without a readable `metrics.json` is reported as
incomplete with the reason, never silently dropped: a missing run changes the design of the regression.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from core.cache import atomic_write, file_sha256

__all__ = [
    "BASE_MODEL",
    "GRANULARITIES",
    "collect_runs",
    "collect_wandb_runs",
    "diversity_metric_keys",
    "drop_repeated_baselines",
    "is_baseline",
    "is_random",
    "matching_random",
    "score_keys",
    "strategy_label",
    "write_csv",
]

GRANULARITIES = ("macro", "meso", "micro")
SCORE_PREFIXES = ("eval/", "heldout/")  # outcome columns
BASE_MODEL = "Base model"  # the label of the untrained model's run (0 steps), scored once per sweep
RUN_FILES = ("config.yaml", "selection.json", "subset_metrics.json", "metrics.json", "DONE")
SKIP_DIRS = {".hydra", "analysis", "checkpoints", "model", "generations", "verdicts", "wandb"}


def strategy_label(name: str | None, component: str | None) -> str:
    """Paper-style label: `micro_response` or (`micro`, `response`) -> `R-Micro`; `random` -> `Random`.

    Extra parts of the name are kept in brackets (`micro_response_whitespace` -> `R-Micro (whitespace)`), so
    an ablation never pools with the main strategy; names without a known granularity are returned unchanged.
    """
    name = (name or "unknown").lower()
    parts = name.split("_")
    if parts[0] == "random":
        return "Random" + (f" ({' '.join(parts[1:])})" if len(parts) > 1 else "")
    granularity = next((g for g in GRANULARITIES if g in parts), None)
    if component is None:
        component = next((c for c in ("instruction", "response") if c in parts), None)
    if granularity is None or component is None:
        return name
    rest = [p for p in parts if p not in (granularity, component)]
    label = f"{component[0].upper()}-{granularity.capitalize()}"
    return label + (f" ({' '.join(rest)})" if rest else "")


def _dig(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_yaml(path: Path) -> dict:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at top level")
    return data


def _numeric(flat: dict, source: Path) -> dict[str, float]:
    """Numeric metrics with namespaced keys (`heldout/loss`); bare keys (`k`, `level`, `n`) are design
    columns that `metrics.json` only repeats, and selection.json stays their source.
    """
    out = {}
    for key, value in flat.items():
        if isinstance(value, dict):
            raise ValueError(f"{source}: key {key!r} is nested; the contract wants flat metric keys")
        if "/" in key and isinstance(value, int | float) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def _find_run_dirs(sweep_dir: Path) -> list[Path]:
    # A `.hydra/` dir marks a job that started, even one that crashed before writing any run file.
    found = {
        p.parent
        for p in sweep_dir.rglob(".hydra")
        if p.is_dir() and not SKIP_DIRS.intersection(p.relative_to(sweep_dir).parts[:-1])
    }
    for name in RUN_FILES:
        for path in sweep_dir.rglob(name):
            rel = path.relative_to(sweep_dir).parts[:-1]
            if not SKIP_DIRS.intersection(rel):
                found.add(path.parent)
    return sorted(found)


def _read_run(run_dir: Path, sweep_dir: Path) -> dict[str, Any]:
    """One run's row; raises ValueError with the reason when the run cannot be used."""
    missing = [f for f in ("DONE", "metrics.json") if not (run_dir / f).is_file()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (unfinished or failed)")
    cfg = _read_yaml(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else {}
    sel = _read_json(run_dir / "selection.json") if (run_dir / "selection.json").is_file() else {}
    if not cfg and not sel:
        raise ValueError("neither config.yaml nor selection.json: cannot tell strategy and level")
    # selection.json is the design's home (what was selected); config.yaml only fills in for older runs
    name = _first(sel.get("strategy"), _dig(cfg, "strategy.name"))
    component = _first(sel.get("component"), _dig(cfg, "strategy.component"))
    level = _first(sel.get("level"), _dig(cfg, "diversity.level"))
    if name is None or level is None:
        raise ValueError("strategy name or level missing from config.yaml and selection.json")
    window, lock = _length_control(sel, cfg)
    row: dict[str, Any] = {
        "run_dir": str(run_dir.relative_to(sweep_dir)),
        "strategy": strategy_label(str(name), component) + length_suffix(window, lock),
        "strategy_name": str(name),
        "component": component if component is not None else "",
        "level": float(level),
        "n": _first(sel.get("n"), _dig(cfg, "diversity.n")),
        "seed": _first(sel.get("seed"), _dig(cfg, "seed")),
        "model": _first(_dig(cfg, "model.name_or_path"), ""),
    }
    for key in ("k", "k_target", "k_min", "k_max", "n_types"):
        row[key] = sel.get(key)
    row["length_window"] = "" if window is None else f"{window[0]}-{window[1]}"
    row["length_lock"] = lock
    drift = ((sel.get("length") or {}).get("drift") or {}).get("response") or {}
    if isinstance(drift.get("mean"), int | float):
        row["mean_response_tokens"] = float(drift["mean"])
        row["response_length_ks"] = float(drift.get("ks", math.nan))
    if (run_dir / "subset.jsonl").is_file():  # which samples it trained on, to recognise exact repeats
        row["subset_hash"] = file_sha256(run_dir / "subset.jsonl")[:16]
    info = sel.get("info") if isinstance(sel.get("info"), dict) else {}
    # Degree 0 of some selectors picks one subset whatever the seed: those runs are one observation.
    row["subset_independent_of_seed"] = bool(info.get("subset_independent_of_seed", False))
    if (run_dir / "subset_metrics.json").is_file():
        row.update(_numeric(_read_json(run_dir / "subset_metrics.json"), run_dir / "subset_metrics.json"))
    row.update(_numeric(_read_json(run_dir / "metrics.json"), run_dir / "metrics.json"))
    if row.get("train/steps") == 0:  # the untrained base model, scored once per sweep: the effects' denominator
        row["strategy"] = BASE_MODEL
    return row


def is_random(label: str) -> bool:
    """A random baseline's label: `Random`, `Random [30-100 tokens, locked]`, `Random (ablation)`."""
    return label.split(" ", 1)[0] == "Random"


def is_baseline(label: str) -> bool:
    """A run with no degree to vary (a random baseline or the base model): it gets no slope and is not a cell
    of the degree design (it does not decide whether seeds are paired)."""
    return is_random(label) or label == BASE_MODEL


def drop_repeated_baselines(runs: Sequence[dict]) -> tuple[list[dict], list[str]]:
    """Random-baseline runs that repeat another exactly, kept once, and a note saying how many.

    Random ignores the degree, so a sweep over degrees trains it on one subset per seed several times (the
    `smoke_grid` preset does): identical subset, seed and scores. Counted as replicates they would add residual
    degrees of freedom with zero noise, and the pooled tables would call effects with t ~ 1e10. O(runs).
    """
    seen: set[tuple] = set()
    kept, dropped = [], 0
    for r in runs:
        if is_random(str(r.get("strategy"))) and r.get("subset_hash"):
            scores = tuple(sorted((k, v) for k, v in r.items() if k.startswith(SCORE_PREFIXES)))
            key = (r["strategy"], r.get("model"), r.get("n"), r.get("seed"), r["subset_hash"], scores)
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
        kept.append(r)
    note = (
        f"{dropped} random run(s) repeat another exactly (same subset, seed and scores: random ignores the degree), "
        "so each is counted once"
    )
    return kept, [note] if dropped else []


def matching_random(label: str, labels: Iterable[str]) -> str | None:
    """The random baseline a strategy is compared with: the one with the same length control
    (`R-Micro [30-100 tokens, locked]` -> `Random [30-100 tokens, locked]`; `R-Micro` -> `Random`), or None when
    the sweep has none: a length-controlled strategy is never compared with a baseline of other lengths."""
    bracket = label.find(" [")
    same_control = "Random" + (label[bracket:] if bracket >= 0 else "")
    return same_control if same_control in set(labels) else None


def _length_control(sel: dict, cfg: dict) -> tuple[list[int] | None, bool | str]:
    """(response-length window or None, locked?) from selection.json, or from an older run's config; a lock that
    holds instruction length too is `"locked + instruction"`."""
    control = (sel.get("length") or {}).get("control")
    if not isinstance(control, dict):  # W&B rows carry only the config
        configured = _dig(cfg, "diversity.length")
        active = isinstance(configured, dict) and (configured.get("window") or configured.get("lock"))
        control = configured if active else None
    if isinstance(control, dict):
        lock = bool(control.get("lock"))
        return control.get("window"), ("locked + instruction" if lock and control.get("instruction_bins") else lock)
    legacy = _dig(cfg, "diversity.match_length") or {}  # runs made before diversity.length existed
    if isinstance(legacy, dict) and legacy.get("enabled"):
        return [legacy.get("min_tokens"), legacy.get("max_tokens")], False
    return None, False


def length_suffix(window: list[int] | None, lock: bool | str) -> str:
    """` [150-300 tokens, locked]`: a length-controlled strategy never pools with the uncontrolled one."""
    locked = [lock if isinstance(lock, str) else "locked"] if lock else []
    parts = ([f"{window[0]}-{window[1]} tokens"] if window else []) + locked
    return f" [{', '.join(parts)}]" if parts else ""


def collect_runs(sweep_dir: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Read every run dir under `sweep_dir` (recursively, O(files)).

    Args:
        sweep_dir: A Hydra multirun dir (or any dir holding run dirs at any depth).

    Returns:
        `(runs, incomplete)`: `runs` has one dict per finished run with `run_dir`, `strategy` (paper
        label), `strategy_name`, `component`, `level`, `n`, `seed`, `model`, `k`, `k_target`, `k_min`, `k_max`,
        `n_types`, `subset_independent_of_seed` (selection.json `info`) and every numeric key of
        `subset_metrics.json` and `metrics.json`; `incomplete` has `{"run_dir", "reason"}`.

    Raises:
        FileNotFoundError: If `sweep_dir` does not exist.
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep dir {sweep_dir} does not exist")
    runs, incomplete = [], []
    for run_dir in _find_run_dirs(sweep_dir):
        try:
            runs.append(_read_run(run_dir, sweep_dir))
        except (ValueError, OSError) as err:
            incomplete.append({"run_dir": str(run_dir.relative_to(sweep_dir)), "reason": str(err)})
    return runs, incomplete


def collect_wandb_runs(project: str, group: str, entity: str | None = None) -> list[dict[str, Any]]:
    """Rows in the `collect_runs` layout from W&B (online only): config for the design, summary for metrics.

    Only finished runs are returned; the others are skipped here because W&B does not hold the reason.
    """
    import wandb

    path = f"{entity}/{project}" if entity else project
    rows = []
    for run in wandb.Api().runs(path, filters={"group": group}):
        if run.state != "finished":
            continue
        cfg = dict(run.config)
        name, component = _dig(cfg, "strategy.name"), _dig(cfg, "strategy.component")
        window, lock = _length_control({}, cfg)
        row = {
            "run_dir": f"wandb:{run.id}",
            "strategy": strategy_label(name, component) + length_suffix(window, lock),
            "strategy_name": name,
            "component": component or "",
            "level": _dig(cfg, "diversity.level"),
            "n": _dig(cfg, "diversity.n"),
            "seed": cfg.get("seed"),
            "model": _dig(cfg, "model.name_or_path") or "",
        }
        summary = {k: v for k, v in dict(run.summary).items() if not k.startswith("_")}
        row.update(_numeric(summary, Path(f"wandb:{run.id}")))
        rows.append(row)
    return rows


def score_keys(runs: Sequence[dict]) -> list[str]:
    """The outcome columns: every `eval/...` and `heldout/...` key present in any run, sorted."""
    keys = {k for row in runs for k in row if k.startswith(SCORE_PREFIXES)}
    return sorted(keys)


def diversity_metric_keys(runs: Sequence[dict]) -> list[str]:
    """The post-hoc diversity columns `subset/<component>/<metric>` (type counts `subset/k/...` excluded)."""
    keys = {k for row in runs for k in row if k.startswith("subset/") and not k.startswith("subset/k/")}
    return sorted(keys)


def _cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return "" if value is None else value


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Write dict rows atomically; columns default to the union of keys in first-seen order."""
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_write(path, "w") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _cell(row.get(c)) for c in columns})
    return Path(path)
