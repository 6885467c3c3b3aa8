"""Analysis of a sweep: collect run dirs, fit the paper's slopes and correlations, plot, report.

Pipeline: `collect_runs` (run dirs -> rows) -> `slope_table` (per strategy, Bayesian) and `pooled_slopes` (one
noise model per sweep, covariate-adjusted, Holm-corrected) / `metric_correlations` -> plots -> `analyze` writes
everything under `<sweep_dir>/analysis/` and optionally logs it to W&B. `factorial_fit` and `sign_flip_test`
analyse a paired 2 x 2 design; `plan` sizes a grid before it runs.
"""

from evaluation.analysis.collect import collect_runs, collect_wandb_runs, strategy_label, write_csv
from evaluation.analysis.factorial import (
    add_config_field,
    factorial_fit,
    factorial_table,
    paired_contrasts,
    sign_flip_test,
)
from evaluation.analysis.linear import LinearFit, fit_linear, holm
from evaluation.analysis.plan import PlanReport, plan
from evaluation.analysis.pooled import entropy_table, noise_table, pooled_slopes
from evaluation.analysis.report import analyze
from evaluation.analysis.stats import BayesFit, bayes_linreg, bootstrap_ci
from evaluation.analysis.tables import metric_correlations, slope_table, widen

__all__ = [
    "BayesFit",
    "LinearFit",
    "PlanReport",
    "add_config_field",
    "analyze",
    "bayes_linreg",
    "bootstrap_ci",
    "collect_runs",
    "collect_wandb_runs",
    "entropy_table",
    "factorial_fit",
    "factorial_table",
    "fit_linear",
    "holm",
    "metric_correlations",
    "noise_table",
    "paired_contrasts",
    "plan",
    "pooled_slopes",
    "sign_flip_test",
    "slope_table",
    "strategy_label",
    "widen",
    "write_csv",
]
