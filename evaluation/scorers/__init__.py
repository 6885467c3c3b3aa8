"""Evaluation scorers, one per file; each is switched on or off by its key in the `eval` config group."""

from evaluation.scorers.base import EvalContext, Scorer
from evaluation.scorers.generation_stats import GenerationStatsScorer
from evaluation.scorers.ifbench import IFBenchScorer
from evaluation.scorers.lm_eval import LMEvalScorer
from evaluation.scorers.pairwise import PairwiseScorer
from evaluation.scorers.reference_loss import ReferenceLossScorer

__all__ = [
    "EvalContext",
    "GenerationStatsScorer",
    "IFBenchScorer",
    "LMEvalScorer",
    "PairwiseScorer",
    "ReferenceLossScorer",
    "Scorer",
]
