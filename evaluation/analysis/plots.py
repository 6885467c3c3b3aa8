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
from evaluation.analysis.collect import GRANULARITIES, is_random
from evaluation.analysis.notes import MIN_LEVELS, format_pm, format_value, score_label
from evaluation.analysis.stats import bayes_linreg
from evaluation.analysis.tables import fit_points, higher_is_better

__all__ = ["correlation_heatmap", "factorial_plot", "plot_validity", "save_figure", "score_vs_degree"]

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
    Length-controlled variants of a strategy get their own line style, as does each random baseline (one per
    length window). A strategy with fewer than `MIN_LEVELS` degrees shows its points with a legend saying why
    there is no line, and a panel without runs says which strategies it is waiting for.

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
    labels_present = sorted({str(r["strategy"]) for r in runs})
    randoms = [label for label in labels_present if is_random(label)]
    for ax, component in zip(axes, COMPONENTS, strict=True):
        labels = [f"{component[0].upper()}-{g.capitalize()}" for g in GRANULARITIES]
        drawn = 0
        for granularity, base in zip(GRANULARITIES, labels, strict=True):
            # The strategy and its length-controlled variants (`R-Micro [30-100 tokens, locked]`), a style each.
            variants = [label for label in labels_present if label.split(" [")[0] == base]
            styles, markers = _cycle(LINE_STYLES, variants), _cycle(MARKERS, variants)
            for style, marker, label in zip(styles, markers, variants, strict=True):
                drawn += _draw_strategy(ax, [r for r in runs if r["strategy"] == label], score, x, label,
                                        COLORS[granularity], style, marker)  # fmt: skip
        for style, label in zip(_cycle(LINE_STYLES, randoms), randoms, strict=True):
            _draw_random(ax, _xy([r for r in runs if r["strategy"] == label], score, x)[1], label, style, sigma_seed)
        if not drawn:
            ax.text(0.5, 0.5, f"no finished run of\n{', '.join(labels)}", transform=ax.transAxes,
                    ha="center", va="center", color="gray")  # fmt: skip
        ax.set_title(f"{component} side")
        ax.set_xlabel("degree of diversity (%)")
        ax.set_xlim(-5, 105)
        ax.set_xticks([0, 17, 33, 50, 67, 83, 100])
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))  # below: never over the points
    axes[0].set_ylabel(score_label(score))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")


def _cycle(styles: Sequence[str], items: Sequence[Any]) -> list[str]:
    """One style per item, repeating when there are more items than styles (none is dropped)."""
    return [styles[i % len(styles)] for i in range(len(items))]


def _draw_strategy(
    ax: Any, runs: Sequence[dict], score: str, x: str, label: str, color: str, style: str, marker: str
) -> int:
    """One strategy's runs, degree means and Bayesian line with its 1-sigma band (below `MIN_LEVELS` degrees:
    the means joined by a thin line, no fitted slope); 1 if anything was drawn."""
    xs, ys, same = _xy(runs, score, x)
    if xs.size == 0:
        return 0
    ax.scatter(100 * xs, ys, s=10, alpha=0.35, color=color, marker=marker)
    levels = np.unique(xs)
    means = [ys[xs == lv].mean() for lv in levels]
    if levels.size < MIN_LEVELS:
        degrees = ", ".join(f"{100 * lv:.0f}%" for lv in levels)
        ax.plot(100 * levels, means, style, marker=marker, color=color, markersize=6, linewidth=1,
                label=f"{label}: means at {degrees} (no slope)")  # fmt: skip
        return 1
    ax.plot(100 * levels, means, marker, color=color, markersize=4)
    fx, fy, _ = fit_points(xs, ys, same)
    fit = bayes_linreg(fx, fy)
    grid = np.linspace(levels.min(), levels.max(), 50)
    mean, sd = fit.band(grid)
    ax.plot(100 * grid, mean, style, color=color, label=f"{label}: slope {format_pm(fit.slope, fit.slope_sd)}")
    ax.fill_between(100 * grid, mean - sd, mean + sd, color=color, alpha=0.2)
    return 1


def _draw_random(ax: Any, values: np.ndarray, label: str, style: str, sigma_seed: float | None) -> None:
    """A random baseline's mean as a gray line, with a +/- sigma_seed band when the noise is known."""
    if not values.size:
        return
    mean = values.mean()
    ax.axhline(mean, color="gray", linestyle=style,
               label=f"{label}: {format_value(mean)} ({values.size} run{'s' * (values.size > 1)})")  # fmt: skip
    if sigma_seed is not None and math.isfinite(sigma_seed) and sigma_seed > 0:
        ax.axhspan(mean - sigma_seed, mean + sigma_seed, color="gray", alpha=0.12,
                   label=f"{label} ± σ_seed ({format_value(sigma_seed, 2)})")  # fmt: skip


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


def plot_validity(rows: Sequence[dict], title: str = "") -> Any:
    """One panel per section x score: LOSO R^2 per metric (ranked bars; green = beats length), length alone dashed."""
    plt = _pyplot()
    sections = list(dict.fromkeys(r.get("section", "") for r in rows))
    scores = list(dict.fromkeys(r["score"] for r in rows))
    per_panel = max(
        sum(r["score"] == s for r in rows if r.get("section", "") == sec) for s in scores for sec in sections
    )
    fig, axes = plt.subplots(
        len(sections), len(scores), figsize=(5.5 * len(scores), (0.2 * per_panel + 1.2) * len(sections)), squeeze=False
    )
    for axes_row, section in zip(axes, sections, strict=True):
        for ax, score in zip(axes_row, scores, strict=True):
            mine = [r for r in rows if r["score"] == score and r.get("section", "") == section][::-1]
            values = [r["loso_r2"] if math.isfinite(r["loso_r2"]) else 0.0 for r in mine]
            colors = [
                "tab:red"
                if r["metric"].endswith("[length baseline]")
                else "tab:green"
                if r["beats_length"]
                else "tab:gray"
                for r in mine
            ]
            ax.barh([r["metric"].removeprefix("subset/") for r in mine], np.clip(values, -1.0, None), color=colors)
            base = next((r["loso_r2_length"] for r in mine if math.isfinite(r["loso_r2_length"])), None)
            if base is not None:
                ax.axvline(max(base, -1.0), color="tab:red", linestyle="--", label=f"length alone ({base:.2f})")
                ax.legend(loc="lower right", fontsize=7)
            ax.axvline(0.0, color="black", linewidth=0.5)
            ax.set_xlim(-1.05, 1.0)
            ax.set_xlabel("leave-one-strategy-out R^2 (clipped at -1)")
            ax.set_title(f"{section}: {score}" if section else score, fontsize=9)
            ax.tick_params(axis="y", labelsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


WINDOW_COLORS = ("tab:blue", "tab:orange")


def factorial_plot(design: Any, baselines: Sequence[dict], scores: Sequence[str], title: str | None = None) -> Any:
    """The 2 x 2 window x degree design as an interaction plot, one panel per score.

    Per window: each seed's two runs joined by a thin line (the paired contrast the sign-flip test reads), the cell
    means with +/- 1 se over seeds, and the window's locked random baseline as a dashed line of the same colour;
    the base model's score is named in the panel title (it sits far above the trained runs).

    Args:
        design: A `factorial.FactorialDesign` (its windows, degrees and cell runs).
        baselines: `factorial.baseline_table` rows of the sweep (random per window, base model), drawn as given.
        scores: Scores to draw, one panel each.
        title: Figure title.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(scores), figsize=(4.2 * len(scores), 4), squeeze=False)
    low, high = design.levels
    for ax, score in zip(axes[0], scores, strict=True):
        baseline = {r["baseline"]: r for r in baselines if r["score"] == score}
        for color, window in zip(WINDOW_COLORS, design.windows, strict=True):
            cells = {lv: {r["seed"]: r[score] for r in design.runs
                          if str(r.get("length_window")) == window and r["level"] == lv and _finite(r.get(score))}
                     for lv in (low, high)}  # fmt: skip
            for seed in sorted(set(cells[low]) & set(cells[high])):
                ax.plot([0, 1], [cells[low][seed], cells[high][seed]], color=color, alpha=0.25, linewidth=0.8)
            means = [np.mean(list(cells[lv].values())) if cells[lv] else math.nan for lv in (low, high)]
            errors = [np.std(list(cells[lv].values()), ddof=1) / math.sqrt(len(cells[lv])) if len(cells[lv]) > 1
                      else 0.0 for lv in (low, high)]  # fmt: skip
            ax.errorbar([0, 1], means, yerr=errors, color=color, marker="o", linewidth=2, capsize=4,
                        label=f"{window} tokens ({len(cells[low])} / {len(cells[high])} seeds)")  # fmt: skip
            if (random := baseline.get(f"random {window}")) is not None:
                ax.axhline(random["mean"], color=color, linestyle="--", linewidth=1,
                           label=f"random {window} ({random['runs']} runs)")  # fmt: skip
        base = baseline.get("base model")
        ax.set_xticks([0, 1], [f"degree {100 * low:.0f}%", f"degree {100 * high:.0f}%"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_ylabel("higher is better" if higher_is_better(score) else "lower is better")
        ax.set_title(score + (f"\nbase model {format_value(base['mean'])}" if base else ""), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.94 if title else 1))
    return fig


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
