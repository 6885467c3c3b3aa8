"""Plots of the paper's Figure 3 (score vs degree with Bayesian line and 1-sigma band) and Figure 4 (heatmap).

matplotlib is imported lazily with the Agg backend so the analysis runs on headless machines and in tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.cache import atomic_write
from diversity.pools import COMPONENTS
from evaluation.analysis.collect import GRANULARITIES
from evaluation.analysis.notes import MIN_LEVELS, format_pm, format_value, score_label
from evaluation.analysis.stats import bayes_linreg
from evaluation.analysis.tables import fit_points

__all__ = ["correlation_heatmap", "save_figure", "score_vs_degree"]

COLORS = {"macro": "tab:blue", "meso": "tab:orange", "micro": "tab:green"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure as PNG atomically (temp file then rename) and close it."""
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
    _pyplot().close(fig)
    return Path(path)


def _xy(runs: Sequence[dict], score: str, x: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.array([float(r.get(x, math.nan)) for r in runs], dtype=float)
    ys = np.array([float(r[score]) if isinstance(r.get(score), int | float) else math.nan for r in runs])
    same = np.array([bool(r.get("subset_independent_of_seed")) for r in runs], dtype=bool)
    ok = np.isfinite(xs) & np.isfinite(ys)
    return xs[ok], ys[ok], same[ok]


def score_vs_degree(
    runs: Sequence[dict], score: str, x: str = "level", title: str | None = None, sigma_seed: float | None = None
) -> Any:
    """Two panels (instruction, response); per granularity the runs, level means, Bayesian line and 1 sigma.

    Degrees are drawn in percent on a fixed 0..100 axis; the y label says whether higher or lower is better.
    A strategy with fewer than `MIN_LEVELS` degrees shows its points with a legend saying why there is no line,
    and a panel without runs says which strategies it is waiting for.

    Args:
        runs: Rows of `collect_runs` for one model and subset size.
        score: Score column on the y axis.
        x: Degree column on the x axis (`level` in [0, 1], drawn as percent).
        title: Figure title.
        sigma_seed: sd of one run around its expected score (the pooled model's `sigma_run`); when given, a
            gray band of +/- sigma_seed around the random mean shows how far a single run strays by chance.

    Returns:
        The matplotlib Figure (save it with `save_figure`).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    random_y = _xy([r for r in runs if r["strategy"] == "Random"], score, x)[1]
    for ax, component in zip(axes, COMPONENTS, strict=True):
        labels = [f"{component[0].upper()}-{g.capitalize()}" for g in GRANULARITIES]
        drawn = 0
        for granularity, label in zip(GRANULARITIES, labels, strict=True):
            xs, ys, same = _xy([r for r in runs if r["strategy"] == label], score, x)
            if xs.size == 0:
                continue
            drawn += 1
            color = COLORS[granularity]
            ax.scatter(100 * xs, ys, s=10, alpha=0.35, color=color)
            levels = np.unique(xs)
            means = [ys[xs == lv].mean() for lv in levels]
            if levels.size < MIN_LEVELS:
                degrees = ", ".join(f"{100 * lv:.0f}%" for lv in levels)
                ax.plot(100 * levels, means, "o", color=color, markersize=4, label=f"{label}: {degrees} (no slope)")
                continue
            ax.plot(100 * levels, means, "o", color=color, markersize=4)
            fx, fy, _ = fit_points(xs, ys, same)
            fit = bayes_linreg(fx, fy)
            grid = np.linspace(levels.min(), levels.max(), 50)
            mean, sd = fit.band(grid)
            ax.plot(100 * grid, mean, color=color, label=f"{label}: slope {format_pm(fit.slope, fit.slope_sd)}")
            ax.fill_between(100 * grid, mean - sd, mean + sd, color=color, alpha=0.2)
        if random_y.size:
            label = f"Random: {format_value(random_y.mean())} ({random_y.size} run{'s' * (random_y.size > 1)})"
            ax.axhline(random_y.mean(), color="gray", linestyle="--", label=label)
            if sigma_seed is not None and math.isfinite(sigma_seed) and sigma_seed > 0:
                low, high = random_y.mean() - sigma_seed, random_y.mean() + sigma_seed
                ax.axhspan(
                    low, high, color="gray", alpha=0.15, label=f"Random ± σ_seed ({format_value(sigma_seed, 2)})"
                )
        if not drawn:
            ax.text(0.5, 0.5, f"no finished run of\n{', '.join(labels)}", transform=ax.transAxes,
                    ha="center", va="center", color="gray")  # fmt: skip
        ax.set_title(f"{component} side")
        ax.set_xlabel("degree of diversity (%)")
        ax.set_xlim(-5, 105)
        ax.set_xticks([0, 17, 33, 50, 67, 83, 100])
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[0].set_ylabel(score_label(score))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def correlation_heatmap(rows: Sequence[dict], scores: Sequence[str], title: str | None = None) -> Any:
    """Heatmap of Pearson r: rows metrics, columns `<score>/<component>` (blank where undefined).

    Args:
        rows: Output of `metric_correlations`.
        scores: Scores to show, in order.
        title: Figure title.
    """
    plt = _pyplot()
    columns = [f"{s}/{c}" for s in scores for c in COMPONENTS]
    metrics = [r["metric"] for r in rows]
    values = np.array([[float(r.get(c, math.nan)) for c in columns] for r in rows], dtype=float).reshape(
        len(rows), len(columns)
    )
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(columns), 1.0 + 0.45 * max(len(metrics), 1)))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), [c.replace("/", "/\n") for c in columns], fontsize=7)
    ax.set_yticks(range(len(metrics)), metrics, fontsize=8)
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="Pearson r")
    ax.set_title(title or "post-hoc diversity metric vs score")
    fig.tight_layout()
    return fig
