"""A 2 x 2 factorial with paired seeds: `score ~ window * diversity + (1 | seed)` and an exact sign-flip test.

Cells are named by any run-table column or config field (e.g. the length window's name and the degree), so the
same functions serve the length-controlled study of issue 20 and any other two-factor design. Factors are coded
-1/2, +1/2, so a main effect is the difference of the two levels averaged over the other factor and the
interaction is the difference of the two simple effects (diversity effect in window 2 minus in window 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.analysis.linear import LinearFit, fit_linear

__all__ = [
    "FactorialDesign",
    "FactorialFit",
    "baseline_table",
    "find_design",
    "add_config_field",
    "factorial_fit",
    "factorial_table",
    "paired_contrasts",
    "sign_flip_test",
]

EFFECTS = ("window", "diversity", "window:diversity")
MAX_EXACT = 20  # 2^20 sign patterns (~1M x m); beyond that a seeded Monte Carlo sample of patterns


@dataclass(frozen=True)
class FactorialFit:
    """Effects of a two-factor fit with the levels they contrast."""

    fit: LinearFit
    levels: dict[str, tuple[Any, Any]]
    """Factor -> (low, high): each effect is high minus low."""
    n_seeds: int

    def effect(self, name: str) -> tuple[float, float, float]:
        """`(estimate, se, p)` of `window`, `diversity` or `window:diversity`."""
        return self.fit.estimate(name), self.fit.se(name), self.fit.pvalue(name)


def add_config_field(runs: Sequence[dict], sweep_dir: str | Path, field: str, column: str | None = None) -> list[dict]:
    """Copy a dotted config field (`diversity.match_length.name`) from each run's `config.yaml` into its row.

    Raises:
        ValueError: Naming the run folder when its config lacks the field.
    """
    import yaml

    column = column or field
    out = []
    for row in runs:
        path = Path(sweep_dir) / row["run_dir"] / "config.yaml"
        node: Any = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
        for part in field.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ValueError(f"{path}: config field {field!r} missing (needed to name the factorial cell)")
            node = node[part]
        out.append({**row, column: node})
    return out


def _two_levels(values: Sequence[Any], name: str, order: Sequence[Any] | None) -> tuple[Any, Any]:
    found = sorted(set(values), key=str)
    levels = tuple(order) if order is not None else tuple(found)
    if len(levels) != 2 or set(found) != set(levels):
        raise ValueError(f"factor {name!r} must have exactly 2 levels, found {found}")
    return levels[0], levels[1]


def factorial_fit(
    runs: Sequence[dict],
    score: str,
    window: str | Callable[[dict], Any],
    diversity: str | Callable[[dict], Any],
    seed: str = "seed",
    order: dict[str, Sequence[Any]] | None = None,
    paired: bool = True,
) -> FactorialFit:
    """Fit `score ~ window * diversity + (1 | seed)` (statsmodels MixedLM, REML), or OLS when `paired=False`.

    Args:
        runs: Rows of the four cells (other runs, e.g. a random baseline, must be filtered out first).
        score: Score column.
        window: Column name (or function of the row) naming the window cell.
        diversity: Column name (or function) naming the diversity cell (e.g. `level`).
        seed: Column holding the seed index shared across cells.
        order: Optional `{"window": (low, high), "diversity": (low, high)}`; default sorted levels.
        paired: Model the seed as a random intercept.

    Returns:
        A `FactorialFit`; effects `window`, `diversity` (main effects) and `window:diversity` (interaction).
    """
    get_w = window if callable(window) else (lambda r, k=window: r.get(k))
    get_d = diversity if callable(diversity) else (lambda r, k=diversity: r.get(k))
    rows = [r for r in runs if isinstance(r.get(score), int | float) and np.isfinite(r[score])]
    order = order or {}
    w_lv = _two_levels([get_w(r) for r in rows], "window", order.get("window"))
    d_lv = _two_levels([get_d(r) for r in rows], "diversity", order.get("diversity"))
    w = np.array([0.5 if get_w(r) == w_lv[1] else -0.5 for r in rows])
    d = np.array([0.5 if get_d(r) == d_lv[1] else -0.5 for r in rows])
    # w * d is +-1/4, so its coefficient is the difference of differences (the interaction) itself.
    design = np.stack([np.ones_like(w), w, d, w * d], axis=1)
    y = np.array([float(r[score]) for r in rows])
    seeds = [r.get(seed) for r in rows]
    fit = fit_linear(design, y, ["intercept", *EFFECTS], groups=seeds if paired else None)
    return FactorialFit(fit=fit, levels={"window": w_lv, "diversity": d_lv}, n_seeds=len(set(seeds)))


def paired_contrasts(
    runs: Sequence[dict],
    score: str,
    window: str,
    diversity: str,
    levels: dict[str, tuple[Any, Any]],
    seed: str = "seed",
) -> dict[str, np.ndarray]:
    """Per-seed contrasts over seeds that ran all four cells (O(runs)).

    Returns:
        `{"seeds", "diversity@<low window>", "diversity@<high window>", "diversity", "window",
        "window:diversity"}`: arrays over the complete seeds, with the same signs as `factorial_fit`.
    """
    cells: dict[Any, dict[tuple, float]] = {}
    for r in runs:
        value = r.get(score)
        if isinstance(value, int | float) and np.isfinite(value):
            cells.setdefault(r.get(seed), {})[(r.get(window), r.get(diversity))] = float(value)
    (w0, w1), (d0, d1) = levels["window"], levels["diversity"]
    need = [(w0, d0), (w0, d1), (w1, d0), (w1, d1)]
    complete = sorted((s for s, c in cells.items() if all(k in c for k in need)), key=str)
    y = np.array([[cells[s][k] for k in need] for s in complete]).reshape(len(complete), 4)
    low, high = y[:, 1] - y[:, 0], y[:, 3] - y[:, 2]
    return {
        "seeds": np.array(complete, dtype=object),
        f"diversity@{w0}": low,
        f"diversity@{w1}": high,
        "diversity": (low + high) / 2.0,
        "window": (y[:, 2] + y[:, 3] - y[:, 0] - y[:, 1]) / 2.0,
        "window:diversity": high - low,
    }


def sign_flip_test(contrasts: Sequence[float] | np.ndarray, n_random: int = 100_000, seed: int = 0) -> dict[str, Any]:
    """Exact two-sided sign-flip (randomisation) test of mean contrast = 0 over paired seeds.

    Under H0 each seed's contrast is symmetric about 0, so all `2^m` sign patterns are equally likely; the p-value
    is the share of patterns whose |mean| reaches the observed one (the observed pattern included, so p >= 2^-m).
    Exact for m <= 20 (O(2^m m)); above that `n_random` seeded patterns (the observed one added).

    Returns:
        `{"mean", "p", "m", "exact", "min_p"}`; `min_p = 2 / 2^m` is the smallest p the test can give.
    """
    c = np.asarray(contrasts, dtype=float).ravel()
    m = c.size
    if m == 0 or not np.isfinite(c).all():
        raise ValueError(f"sign_flip_test: need finite contrasts, got {m} values")
    observed = abs(c.mean())
    exact = m <= MAX_EXACT
    if exact:
        signs = 1.0 - 2.0 * ((np.arange(2**m)[:, None] >> np.arange(m)) & 1)
    else:
        rng = np.random.default_rng(seed)
        signs = np.vstack([np.ones(m), rng.choice([-1.0, 1.0], size=(n_random, m))])
    flipped = np.abs(signs @ c) / m
    p = float(np.mean(flipped >= observed * (1 - 1e-12)))
    return {"mean": float(c.mean()), "p": p, "m": m, "exact": exact, "min_p": 2.0 / 2**m}


def factorial_table(
    runs: Sequence[dict],
    scores: Sequence[str],
    window: str,
    diversity: str = "level",
    order: dict[str, Sequence[Any]] | None = None,
    seed: str = "seed",
) -> list[dict[str, Any]]:
    """One row per (score, effect): the mixed model's estimate, se, df and p beside the exact sign-flip test of
    the same per-seed contrast (`flip_mean`, `flip_p`, `seeds`), plus the simple diversity effect in each window.

    Args:
        runs: Rows of the four cells only (filter out random baselines and the base model first).
        scores: Score columns.
        window: Column naming the window (fill it with `add_config_field` from a config field).
        diversity: Column naming the diversity level.
        order: `{"window": (low, high), "diversity": (low, high)}`; default sorted.
        seed: Seed column.
    """
    rows = []
    for score in scores:
        fit, err = _paired_else_unpaired_fit(runs, score, window, diversity, seed, order)
        if fit is None:
            rows.append({"score": score, "effect": "all", "missing": f"no factorial fit: {err}"})
            continue
        contrasts = paired_contrasts(runs, score, window, diversity, fit.levels, seed=seed)
        w0, w1 = fit.levels["window"]
        for effect in (*EFFECTS, f"diversity@{w0}", f"diversity@{w1}"):
            row: dict[str, Any] = {"score": score, "effect": effect, "levels": str(fit.levels)}
            if effect in EFFECTS:
                est, se, p = fit.effect(effect)
                row.update(estimate=est, se=se, df=fit.fit.df, p=p, method=fit.fit.method,
                           sigma=fit.fit.sigma, sigma_seed=fit.fit.sigma_seed)  # fmt: skip
            values = contrasts[effect]
            if values.size:
                flip = sign_flip_test(values)
                row.update(flip_mean=flip["mean"], flip_p=flip["p"], flip_exact=flip["exact"], seeds=flip["m"])
            rows.append(row)
    return rows


def _paired_else_unpaired_fit(runs, score, window, diversity, seed, order) -> tuple[Any, Exception | None]:
    """The seed-paired fit, or the plain OLS one when pairing cannot be fitted (e.g. no seed variance); (None, the
    paired fit's error) when neither can (e.g. too few complete cells)."""
    first_error: Exception | None = None
    for paired in (True, False):
        try:
            return factorial_fit(runs, score, window, diversity, seed=seed, order=order, paired=paired), None
        except (np.linalg.LinAlgError, ValueError) as err:
            first_error = first_error or err
    return None, first_error


@dataclass(frozen=True)
class FactorialDesign:
    """A sweep's 2 x 2 length-window x degree design, as found in its run table (`find_design`)."""

    strategy: str
    runs: list[dict]
    windows: tuple[str, str]
    levels: tuple[float, float]


def _window_start(window: str) -> float:
    try:
        return float(str(window).split("-")[0])
    except ValueError:
        return float("inf")


def find_design(runs: Sequence[dict], window: str = "length_window") -> FactorialDesign | None:
    """The 2 x 2 design of a sweep: one non-random strategy run at exactly two length windows, each at the same two
    degrees; None when the sweep is not such a design. Windows are ordered by their lower bound (short first)."""
    trained = [r for r in runs if r.get("strategy_name") != "random" and r.get("train/steps") != 0]
    names = {r.get("strategy_name") for r in trained}
    if len(names) != 1:
        return None
    windows = sorted({str(r.get(window) or "") for r in trained}, key=_window_start)
    if len(windows) != 2 or "" in windows:
        return None
    per_window = [sorted({float(r["level"]) for r in trained if str(r.get(window)) == w}) for w in windows]
    if any(len(levels) != 2 for levels in per_window) or per_window[0] != per_window[1]:
        return None
    return FactorialDesign(str(next(iter(names))), trained, (windows[0], windows[1]), tuple(per_window[0]))


def baseline_table(runs: Sequence[dict], scores: Sequence[str], window: str = "length_window") -> list[dict]:
    """Per score: the base model (0 steps) and, per length window, the random baseline's mean, sd and runs."""
    rows = []
    base = [r for r in runs if r.get("train/steps") == 0]
    randoms = [r for r in runs if r.get("strategy_name") == "random" and r.get("train/steps") != 0]
    for score in scores:
        for label, members in [("base model", base)] + [
            (f"random {w or 'no window'}", [r for r in randoms if str(r.get(window) or "") == w])
            for w in sorted({str(r.get(window) or "") for r in randoms}, key=_window_start)
        ]:
            values = np.array([r[score] for r in members if isinstance(r.get(score), int | float)], dtype=float)
            values = values[np.isfinite(values)]  # a run that failed to score is not a baseline value
            if values.size:
                sd = float(values.std(ddof=1)) if values.size > 1 else float("nan")
                rows.append(
                    {"score": score, "baseline": label, "mean": float(values.mean()), "sd": sd, "runs": values.size}
                )
    return rows
