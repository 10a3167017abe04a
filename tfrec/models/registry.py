"""Models by name: the names used by the CLI, the registry and the export folders."""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from typing import Any

from tfrec.models.base import Recommender

#: Every model: its name (CLI, registry, export folders) -> "module:Class". One line a model.
MODEL_PATHS: dict[str, str] = {
    "popularity": "tfrec.models.popularity:Popularity",
    "tfidf": "tfrec.models.tfidf:TfidfRecommender",
    "covisit": "tfrec.models.covisit:CoVisitation",
    "user_knn": "tfrec.models.knn:UserKNN",
    "item_knn": "tfrec.models.knn:ItemKNN",
    "mf": "tfrec.models.mf:MatrixFactorization",
    "two_tower": "tfrec.models.two_tower:TwoTower",
}


class _Registry(Mapping):
    """Name -> model class, read from ``MODEL_PATHS``; a model's module is imported when
    its class is first asked for (listing the names imports nothing)."""

    def __getitem__(self, name: str) -> type[Recommender]:
        module, _, attribute = MODEL_PATHS[name].partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        if cls.registry_name != name:
            raise RuntimeError(f"{MODEL_PATHS[name]} has registry_name {cls.registry_name!r}, registered as {name!r}")
        return cls

    def __iter__(self) -> Iterator[str]:
        return iter(MODEL_PATHS)

    def __len__(self) -> int:
        return len(MODEL_PATHS)


MODELS: Mapping[str, type[Recommender]] = _Registry()


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
