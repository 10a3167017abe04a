"""Recommender models: the shared contract, the registry and the algorithms."""
from tfrec.models.base import NotFittedError, Recommender
from tfrec.models.popularity import Popularity
from tfrec.models.registry import MODELS, UnknownModelError, describe_models, make_model, model_class, parse_param

__all__ = ["MODELS", "NotFittedError", "Popularity", "Recommender", "UnknownModelError", "describe_models", "make_model", "model_class", "parse_param"]
