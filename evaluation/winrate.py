"""Win rates from pairwise verdict rows (`evaluation.judge.judge_pairs`), with what a reader needs beside them.

Counting. A prompt is *scored* only when both of its orders (model first, baseline first) gave a parseable
verdict, so position bias is always cancelled; its score is the mean of the two (win 1, tie 0.5, loss 0). A
prompt with a missing verdict in either order is *invalid*: left out of every rate, and reported as `invalid`
(prompts) and `invalid_share` (of all prompts) beside the rate, with `invalid_verdicts` (unparseable
judgements). `win_rate` is 100 x the mean prompt score (baseline = 50) with a seeded percentile-bootstrap
interval over prompts. Strong and weak wins count the same in `win_rate`; `weighted_win_rate` weighs each
`>>` verdict 3 times, as Arena-Hard weighs strong wins in its Bradley-Terry fit.

Length. LLM judges prefer longer answers, so `model_chars` / `baseline_chars` (mean answer lengths in
characters, as AlpacaEval reports them) stand beside every rate, and `lc_win_rate` is a length-controlled win
rate: AlpacaEval 2.0's GLM (a logistic regression of the preference on tanh(length difference / its standard
deviation)), evaluated at zero length difference. Simplified: AlpacaEval's per-instruction difficulty term and
its regularisation towards gamed baselines need its leaderboard data, so they are left out; the fit here has an
intercept and the length slope under a light L2 penalty (C = 100, AlpacaEval's default for a plain fit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
STRONG_WEIGHT = 3.0  # Arena-Hard's weight of a `>>` verdict
LC_PENALTY_C = 100.0


def _by_item(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    items: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        items.setdefault(row["id"], []).append(row)
    return items


def _valid(judgements: list[dict[str, Any]]) -> bool:
    """Both orders present and parsed."""
    positions = {r["model_position"] for r in judgements if r["outcome"] is not None}
    return positions == {"A", "B"} and all(r["outcome"] is not None for r in judgements)


def item_scores(rows: Sequence[dict[str, Any]], weighted: bool = False) -> dict[str, float]:
    """Score of every *valid* prompt (see module docstring): the mean over its two orders, or with `weighted`
    the mean with strong verdicts counted `STRONG_WEIGHT` times."""
    scores = {}
    for item, judgements in _by_item(rows).items():
        if _valid(judgements):
            weights = [STRONG_WEIGHT if weighted and r.get("strong") else 1.0 for r in judgements]
            values = [OUTCOME_SCORE[r["outcome"]] for r in judgements]
            scores[item] = float(np.average(values, weights=weights))
    return scores


def length_controlled_win_rate(scores: Sequence[float], model_chars: Sequence[float], baseline_chars: Sequence[float]):
    """100 x sigmoid(intercept) of the soft-label logistic fit `score ~ 1 + tanh(delta / std(delta))`,
    delta = model - baseline length; the raw win rate when the lengths do not vary (nothing to control for)."""
    from scipy.optimize import minimize

    y = np.asarray(scores, dtype=float)
    delta = np.asarray(model_chars, dtype=float) - np.asarray(baseline_chars, dtype=float)
    if len(y) == 0:
        return float("nan")
    spread = float(np.std(delta, ddof=1)) if len(y) > 1 else 0.0
    if spread == 0.0:
        return float(100.0 * y.mean())
    x = np.tanh(delta / spread)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] + w[1] * x
        # soft-label log loss, written with logaddexp to stay finite for large |z|
        value = np.sum(y * np.logaddexp(0.0, -z) + (1 - y) * np.logaddexp(0.0, z)) + w @ w / (2 * LC_PENALTY_C)
        residual = 1.0 / (1.0 + np.exp(-z)) - y
        return float(value), np.array([residual.sum(), residual @ x]) + w / LC_PENALTY_C

    fit = minimize(loss, np.zeros(2), jac=True, method="L-BFGS-B")
    return float(100.0 / (1.0 + np.exp(-fit.x[0])))


def win_rate(
    rows: Sequence[dict[str, Any]], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Every number of the module docstring for one set of verdict rows (O(n_resamples x n) for the interval).

    Returns `win_rate`, `ci_low`, `ci_high`, `weighted_win_rate`, `lc_win_rate`, `model_chars`,
    `baseline_chars` (over scored prompts), `n` (scored prompts), `n_items`, `invalid`, `invalid_share`,
    `invalid_verdicts`, and `wins`/`ties`/`losses` (judgements of scored prompts).
    """
    by_item = _by_item(rows)
    scores_by_item = item_scores(rows)
    scored = [r for item in scores_by_item for r in by_item[item]]
    first = {item: by_item[item][0] for item in scores_by_item}
    scores = np.array(list(scores_by_item.values()), dtype=float)
    n_items = len(by_item)
    result = {
        "n": float(len(scores)),
        "n_items": float(n_items),
        "invalid": float(n_items - len(scores)),
        "invalid_share": float((n_items - len(scores)) / n_items) if n_items else float("nan"),
        "invalid_verdicts": float(sum(r["outcome"] is None for r in rows)),
        "wins": float(sum(r["outcome"] == "win" for r in scored)),
        "ties": float(sum(r["outcome"] == "tie" for r in scored)),
        "losses": float(sum(r["outcome"] == "loss" for r in scored)),
        "model_chars": float(np.mean([r["model_chars"] for r in first.values()])) if first else float("nan"),
        "baseline_chars": float(np.mean([r["baseline_chars"] for r in first.values()])) if first else float("nan"),
    }
    if len(scores) == 0:
        nan = float("nan")
        return {**result, "win_rate": nan, "ci_low": nan, "ci_high": nan, "weighted_win_rate": nan, "lc_win_rate": nan}
    rate = 100.0 * scores.mean()
    if len(scores) < 2 or np.all(scores == scores[0]):
        low = high = rate  # no spread: every resample has the same mean
    else:
        from scipy.stats import bootstrap

        ci = bootstrap(
            (scores,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
        low, high = 100.0 * ci.low, 100.0 * ci.high
    weighted = np.array(list(item_scores(rows, weighted=True).values()), dtype=float)
    lc = length_controlled_win_rate(
        scores, [r["model_chars"] for r in first.values()], [r["baseline_chars"] for r in first.values()]
    )
    return {
        **result,
        "win_rate": float(rate),
        "ci_low": float(low),
        "ci_high": float(high),
        "weighted_win_rate": float(100.0 * weighted.mean()),
        "lc_win_rate": lc,
    }
