"""Evaluation: the protocol metrics, computed through a model's serving functions."""
from tfrec.evaluation.evaluate import REPORTED_METRICS, evaluate
from tfrec.evaluation.metrics import ranking_metrics, rating_metrics

__all__ = ["REPORTED_METRICS", "evaluate", "ranking_metrics", "rating_metrics"]
