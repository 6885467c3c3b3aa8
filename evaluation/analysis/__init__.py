"""Analysis of a sweep: collect run dirs, fit the paper's slopes and correlations, plot, report.

Pipeline: `collect_runs` (run dirs -> rows) -> `slope_table` / `metric_correlations` -> plots -> `analyze`
writes everything under `<sweep_dir>/analysis/` and optionally logs it to W&B.
"""

from evaluation.analysis.collect import collect_runs, collect_wandb_runs, strategy_label, write_csv
from evaluation.analysis.report import analyze
from evaluation.analysis.stats import BayesFit, bayes_linreg, bootstrap_ci
from evaluation.analysis.tables import metric_correlations, slope_table, widen

__all__ = [
    "BayesFit",
    "analyze",
    "bayes_linreg",
    "bootstrap_ci",
    "collect_runs",
    "collect_wandb_runs",
    "metric_correlations",
    "slope_table",
    "strategy_label",
    "widen",
    "write_csv",
]
