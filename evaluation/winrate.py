"""Win rates from pairwise verdict rows (`evaluation.judge.judge_pairs`), with what a reader needs beside them.

Counting. A prompt is *scored* only when both of its orders (model first, baseline first) gave a parseable
verdict, so position bias is always cancelled; its score is the mean of the two (win 1, tie 0.5, loss 0). A
prompt with a missing verdict in either order is *invalid*: left out of every rate, and reported as `invalid`
(prompts) and `invalid_share` (of all prompts) beside the rate, with `invalid_verdicts` (unparseable
judgements). `win_rate` is 100 x the mean prompt score (baseline = 50) with a seeded percentile-bootstrap
interval over prompts. Strong and weak wins count the same in `win_rate`; `weighted_win_rate` weighs each
`>>` verdict 3 times, as Arena-Hard weighs strong wins in its Bradley-Terry fit.

Length. LLM judges prefer longer answers, so `model_chars` / `baseline_chars` (mean answer lengths in
characters, as AlpacaEval reports them) stand beside every rate, and `lc_win_rate` is AlpacaEval 2.0's
length-controlled win rate: a logistic GLM of the preference on tanh(length difference / its standard deviation)
plus a baseline term, read at zero length difference. It is fitted as AlpacaEval fits it (soft labels, an L1
penalty on both terms, liblinear, C chosen among 10 values by 5-fold cross-validated log loss, no separate
intercept). What its data do not allow here is left out: the per-instruction difficulty term and the
regularisation towards gamed baselines need AlpacaEval's leaderboard annotations (so this is its
`length_controlled_minimal` GLM). With fewer than `LC_MIN_FOLD_PROMPTS` prompts there is no cross-validation and C
is fixed at 100 (AlpacaEval's value without CV). With no length spread there is nothing to control: LC = raw.

The LC rate is a model's prediction at equal lengths, trustworthy only where the data have answers of about
equal length. Beside it stand `lc_support_share`, the share of prompts whose length difference lies within
`LC_SUPPORT_SD` standard deviations of zero (the fitted support around the point LC is read at), and two flags
(1.0 = yes), each also logged as a warning: `lc_extrapolated` when that share is under `LC_MIN_SUPPORT` or every
answer is shorter (or every one longer) than the baseline's, and `lc_far_from_raw` when LC moves away from the raw
rate by more than `LC_WARN_POINTS` points and more than `LC_WARN_FRACTION` of the way to 0 or 100 (AlpacaEval's
own warning rule). E.g. a small model whose answers are all much shorter than the baseline's, with verdicts that
do not depend on length: the slope is fitted far from equal length, and LC - raw has a standard deviation of
about 5 points over 805 prompts and 15 over 64 (simulated; 15 and 29 with the earlier L2 fit).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}
STRONG_WEIGHT = 3.0  # Arena-Hard's weight of a `>>` verdict
LC_PENALTY_C = 100.0  # AlpacaEval's C when it does not cross-validate
LC_FOLDS = 5
LC_MIN_FOLD_PROMPTS = 10  # fewer prompts: fixed C, no cross-validation
LC_SUPPORT_SD = 0.5
LC_MIN_SUPPORT = 0.10
LC_WARN_POINTS = 10.0
LC_WARN_FRACTION = 0.25


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


def _glm_baseline_term(x: np.ndarray, y: np.ndarray) -> float:
    """The fitted baseline term (logit of the preference at x = 0) of AlpacaEval's minimal GLM.

    Soft labels as AlpacaEval passes them to scikit-learn: every prompt twice, as a win weighted by its score
    and a loss weighted by one minus it, the two copies kept in one cross-validation group. O(Cs x folds x n).
    """
    import inspect

    import sklearn
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import log_loss, make_scorer
    from sklearn.model_selection import GroupKFold

    n = len(y)
    design = np.column_stack([x, np.ones(n)])  # tanh(length term), baseline term; no separate intercept
    features, labels = np.vstack([design, design]), np.r_[np.ones(n), np.zeros(n)]
    weights, groups = np.r_[y, 1.0 - y], np.r_[np.arange(n), np.arange(n)]
    cv_kwargs = inspect.signature(LogisticRegressionCV).parameters
    l1 = {"l1_ratios": (1.0,), "use_legacy_attributes": False} if "use_legacy_attributes" in cv_kwargs else {}
    common = {"solver": "liblinear", "fit_intercept": False, "random_state": 123}
    with sklearn.config_context(enable_metadata_routing=True):
        if n < LC_MIN_FOLD_PROMPTS:
            single = {"l1_ratio": 1.0} if "l1_ratio" in inspect.signature(LogisticRegression).parameters else {}
            model = LogisticRegression(C=LC_PENALTY_C, **common, **(single or {"penalty": "l1"}))
            model.set_fit_request(sample_weight=True)
            model.fit(features, labels, sample_weight=weights)
        else:
            scorer = make_scorer(log_loss, response_method="predict_proba", greater_is_better=False)
            model = LogisticRegressionCV(
                cv=GroupKFold(LC_FOLDS),
                scoring=scorer.set_score_request(sample_weight=True),
                **common,
                **(l1 or {"penalty": "l1"}),
            )
            model.set_fit_request(sample_weight=True)
            model.fit(features, labels, sample_weight=weights, groups=groups)
    return float(np.ravel(model.coef_)[1])


def far_from_raw(lc: float, raw: float) -> bool:
    """AlpacaEval's warning rule: LC moved by more than `LC_WARN_POINTS` and `LC_WARN_FRACTION` of the room."""
    low = raw - max(LC_WARN_POINTS, raw * LC_WARN_FRACTION)
    high = raw + max(LC_WARN_POINTS, (100.0 - raw) * LC_WARN_FRACTION)
    return bool(lc < low or lc > high)


def length_control(
    scores: Sequence[float], model_chars: Sequence[float], baseline_chars: Sequence[float]
) -> dict[str, float]:
    """`lc_win_rate` with `lc_support_share`, `lc_extrapolated` and `lc_far_from_raw` (module docstring)."""
    y = np.asarray(scores, dtype=float)
    delta = np.asarray(model_chars, dtype=float) - np.asarray(baseline_chars, dtype=float)
    nan = float("nan")
    if len(y) == 0:
        return {"lc_win_rate": nan, "lc_support_share": nan, "lc_extrapolated": nan, "lc_far_from_raw": nan}
    raw = float(100.0 * y.mean())
    spread = float(np.std(delta, ddof=1)) if len(y) > 1 else 0.0
    if spread == 0.0 or np.all(y == y[0]):  # nothing to control for, or nothing to fit
        return {"lc_win_rate": raw, "lc_support_share": 1.0, "lc_extrapolated": 0.0, "lc_far_from_raw": 0.0}
    x = np.tanh(delta / spread)
    lc = float(100.0 / (1.0 + np.exp(-_glm_baseline_term(x, y))))
    support = float(np.mean(np.abs(delta) <= LC_SUPPORT_SD * spread))
    extrapolated = support < LC_MIN_SUPPORT or delta.min() > 0 or delta.max() < 0
    far = far_from_raw(lc, raw)
    if extrapolated:
        log.warning(
            "LC win rate %.1f is an extrapolation: only %.0f%% of %d prompts have answers within %.1f sd of the "
            "baseline's length (raw win rate %.1f)",
            lc,
            100 * support,
            len(y),
            LC_SUPPORT_SD,
            raw,
        )
    if far:
        log.warning("LC win rate %.1f is far from the raw win rate %.1f: the length GLM may not fit", lc, raw)
    return {
        "lc_win_rate": lc,
        "lc_support_share": support,
        "lc_extrapolated": float(extrapolated),
        "lc_far_from_raw": float(far),
    }


def length_controlled_win_rate(
    scores: Sequence[float], model_chars: Sequence[float], baseline_chars: Sequence[float]
) -> float:
    """100 x the GLM's preference at zero length difference (see `length_control` for its caveats)."""
    return length_control(scores, model_chars, baseline_chars)["lc_win_rate"]


def win_rate(
    rows: Sequence[dict[str, Any]], n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Every number of the module docstring for one set of verdict rows (O(n_resamples x n) for the interval).

    Returns `win_rate`, `ci_low`, `ci_high`, `weighted_win_rate`, `lc_win_rate` (with `lc_support_share`,
    `lc_extrapolated`, `lc_far_from_raw`), `model_chars`,
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
        lc_keys = ("lc_win_rate", "lc_support_share", "lc_extrapolated", "lc_far_from_raw")
        return {
            **result,
            "win_rate": nan,
            "ci_low": nan,
            "ci_high": nan,
            "weighted_win_rate": nan,
            **dict.fromkeys(lc_keys, nan),
        }
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
    lc = length_control(
        scores, [r["model_chars"] for r in first.values()], [r["baseline_chars"] for r in first.values()]
    )
    return {
        **result,
        "win_rate": float(rate),
        "ci_low": float(low),
        "ci_high": float(high),
        "weighted_win_rate": float(100.0 * weighted.mean()),
        **lc,
    }
