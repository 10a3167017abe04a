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
    """Build a registered model and check its parameters (``check_params``), so that a
    bad name or value fails before any data is read."""
    cls = model_class(name)
    _check_known(name, cls, params)
    model = cls(**params)
    model.check_params()
    return model


def parse_param(name: str, text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` CLI parameter of model ``name`` by the kind of its spec
    (``PARAMS``) and check the value against the spec's rule."""
    if "=" not in text:
        raise UnknownModelError(f"parameter '{text}' is not of the form key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    cls = model_class(name)
    _check_known(name, cls, {key: raw})
    spec = cls.PARAMS[key]
    try:
        value = spec.parse(raw)
    except ValueError:
        raise UnknownModelError(f"parameter {key}={raw!r} of model '{name}' is not a valid {spec.kind_name}") from None
    spec.check(name, key, value)
    return key, value


def _check_known(name: str, cls: type[Recommender], params: dict[str, Any]) -> None:
    for key in params:
        if key not in cls.PARAMS:
            raise UnknownModelError(f"model '{name}' has no parameter '{key}'; parameters are: {', '.join(cls.PARAMS) or 'none'}")


def describe_models() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, one-line description, {parameter: default}) for every registered model."""
    rows = []
    for name, cls in MODELS.items():
        doc = inspect.getdoc(cls) or ""
        defaults = {k: p.default for k, p in cls.hyperparameters().items()}
        rows.append((name, doc.splitlines()[0] if doc else "", defaults))
    return rows
