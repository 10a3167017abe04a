"""Recommender models: the shared contract, the registry and the algorithms.

Each name below is imported on first use, so the registry (names, ``UnknownModelError``)
is usable without importing TensorFlow.
"""
from __future__ import annotations

from tfrec._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("NotFittedError", "Recommender"), "tfrec.models.base"),
    "Popularity": "tfrec.models.popularity",
    **dict.fromkeys(("MODELS", "UnknownModelError", "describe_models", "make_model", "model_class", "parse_param"), "tfrec.models.registry"),
}

__all__ = ["MODELS", "NotFittedError", "Popularity", "Recommender", "UnknownModelError", "describe_models", "make_model", "model_class", "parse_param"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
