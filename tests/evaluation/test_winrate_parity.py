"""Dev-only parity of `lc_win_rate` with the `alpaca-eval` package's own GLM fit (skipped when not installed).

The package is not a dependency (it pins an old stack and imports `pkg_resources`); install it aside to run this,
e.g. `pip install --target /tmp/aeenv --no-deps alpaca-eval patsy fire python-dotenv "setuptools<80"` and
`PYTHONPATH=/tmp/aeenv pytest tests/evaluation/test_winrate_parity.py`. Compared: AlpacaEval's
`length_controlled_minimal` GLM (its data-free formula) fitted by its `fit_LogisticRegressionCV`.
"""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.winrate import length_controlled_win_rate

glm = pytest.importorskip("alpaca_eval.metrics.glm_winrate", reason="alpaca-eval not installed (dev-only check)")
FORMULA = "np.tanh(std_delta_len) + not_gamed_baseline.astype(float) - 1"


def alpaca_eval_lc(scores: np.ndarray, model_chars: np.ndarray, baseline_chars: np.ndarray) -> float:
    """AlpacaEval's LC for one model, built as its `_get_featurized_data` builds it (output_1 = baseline)."""
    import pandas as pd
    import sklearn

    delta = pd.Series(baseline_chars - model_chars, dtype=float)
    df = pd.DataFrame({"preference": scores, "std_delta_len": delta / delta.std(), "not_gamed_baseline": True})
    test = df[["not_gamed_baseline"]].copy()
    test["std_delta_len"] = 0.0
    routing = sklearn.get_config()["enable_metadata_routing"]
    try:
        train, x_test = glm.make_dmatrix_for_model(df, test, formula=FORMULA)
        model = glm.fit_LogisticRegressionCV(train, "preference", is_ytrue_proba=True, n_splits=5)
        return float(model.predict_proba(x_test)[:, 1].mean() * 100)
    finally:
        sklearn.set_config(enable_metadata_routing=routing)  # it switches routing on for the whole process


def _case(n: int, seed: int, mean_delta: float, slope: float, intercept: float):
    rng = np.random.default_rng(seed)
    baseline = rng.integers(800, 2500, size=n).astype(float)
    model = np.clip(baseline + rng.normal(mean_delta, 600, size=n), 20, None)
    x = np.tanh((model - baseline) / np.std(model - baseline, ddof=1))
    p = 1 / (1 + np.exp(-(intercept + slope * x)))
    first, second = rng.random(n) < p, rng.random(n) < p  # two orders, averaged as `item_scores` does
    return (first + second) / 2.0, model, baseline


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::UserWarning")
@pytest.mark.parametrize(
    ("n", "mean_delta", "slope", "intercept"),
    [(805, 0, 1.5, -0.5), (805, 300, 2.0, 0.3), (500, -900, 1.0, -1.0), (64, -1500, 0.0, -0.8), (30, 200, 3.0, 0.0)],
)
def test_lc_matches_alpaca_eval_minimal_glm(n, mean_delta, slope, intercept):
    scores, model, baseline = _case(n, n + abs(int(mean_delta)), mean_delta, slope, intercept)
    ours = length_controlled_win_rate(scores, model, baseline)
    assert ours == pytest.approx(alpaca_eval_lc(scores, model, baseline), abs=0.05)
