"""Models by name: the names used by the CLI, the registry and the export folders."""
from __future__ import annotations

import inspect
from typing import Any

from tfrec.models.base import Recommender
from tfrec.models.covisit import CoVisitation
from tfrec.models.knn import ItemKNN, UserKNN
from tfrec.models.mf import MatrixFactorization
from tfrec.models.popularity import Popularity
from tfrec.models.tfidf import TfidfRecommender
from tfrec.models.two_tower import TwoTower

MODELS: dict[str, type[Recommender]] = {cls.registry_name: cls for cls in (Popularity, TfidfRecommender, CoVisitation, UserKNN, ItemKNN, MatrixFactorization, TwoTower)}


class UnknownModelError(ValueError):
    """A model name or parameter the registry does not know."""


def model_class(name: str) -> type[Recommender]:
    try:
        return MODELS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model '{name}'; models are: {', '.join(MODELS)}") from None


def make_model(name: str, **params: Any) -> Recommender:
    """Build a registered model; parameters are checked against its constructor."""
    cls = model_class(name)
    known = cls.hyperparameters()
    for key in params:
        if key not in known:
            raise UnknownModelError(f"model '{name}' has no parameter '{key}'; parameters are: {', '.join(known) or 'none'}")
    return cls(**params)


def parse_param(name: str, text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` CLI parameter for model ``name`` to the type of its default."""
    if "=" not in text:
        raise UnknownModelError(f"parameter '{text}' is not of the form key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    params = model_class(name).hyperparameters()
    if key not in params:
        raise UnknownModelError(f"model '{name}' has no parameter '{key}'; parameters are: {', '.join(params) or 'none'}")
    default = params[key].default
    annotation = str(params[key].annotation)
    try:
        if raw.lower() in ("none", "null") and (default is None or "None" in annotation):
            return key, None
        if isinstance(default, bool) or annotation.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return key, True
            if raw.lower() in ("0", "false", "no", "off"):
                return key, False
            raise ValueError(raw)
        if isinstance(default, int) or annotation.startswith("int"):
            return key, int(raw)
        if isinstance(default, float) or annotation.startswith("float"):
            return key, float(raw)
    except ValueError:
        kind = type(default).__name__ if default is not None else annotation
        raise UnknownModelError(f"parameter {key}={raw!r} of model '{name}' is not a valid {kind}") from None
    return key, raw


def describe_models() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, one-line description, {parameter: default}) for every registered model."""
    rows = []
    for name, cls in MODELS.items():
        doc = inspect.getdoc(cls) or ""
        defaults = {k: p.default for k, p in cls.hyperparameters().items()}
        rows.append((name, doc.splitlines()[0] if doc else "", defaults))
    return rows
