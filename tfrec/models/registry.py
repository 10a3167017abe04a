"""Models by name: the names used by the CLI, the registry and the export folders."""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from tfrec.models.specs import PRESET_PROTOCOLS, SPECS, ModelSpec

if TYPE_CHECKING:  # only for annotations: checking a model name must not import TensorFlow
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

    def __contains__(self, name: object) -> bool:  # a name check imports no model
        return name in MODEL_PATHS

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


def make_model(name: str, *, preset: str | None = None, **params: Any) -> Recommender:
    """Build a registered model and check its parameters (``check_params``), so that a
    bad name or value fails before any data is read.

    ``preset``: a protocol letter, "R" (rating prediction), "T" (top-N) or "S" (next
    item), e.g. ``split.protocol``: start from the model's good setting for that task
    (``tfrec.models.specs``; none for that protocol: the defaults); ``params`` override
    its keys (``params_for``). None (default) or "none": the constructor's defaults.
    ``make_model("mf", preset="T")`` is ``make_model("mf", feedback="implicit")``.
    """
    cls = model_class(name)
    model = cls(**params_for(name, preset, **params))
    model.check_params()
    return model


def preset_params(name: str, preset: str | None) -> dict[str, Any]:
    """The parameters of model ``name``'s preset for protocol ``preset`` ("R", "T" or "S";
    any case): those of its good setting that differ from the defaults, ``{}`` when it has
    none for that protocol or ``preset`` is None or "none". UnknownModelError for an
    unknown model or preset."""
    spec = _spec(name)
    if preset is None or preset.strip().lower() == "none":
        return {}
    protocol = preset.strip().upper()
    if protocol not in PRESET_PROTOCOLS:
        known = ", ".join(f"{key} ({task})" for key, task in PRESET_PROTOCOLS.items())
        raise UnknownModelError(f"unknown preset '{preset}'; presets are the protocols {known}, or none")
    return dict(spec.presets.get(protocol, {}))


def params_for(name: str, preset: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The parameters model ``name`` gets: its preset for protocol ``preset`` (see
    ``preset_params``), then ``overrides`` on top (an override wins over the preset's
    value). Parameters not in either keep the constructor's defaults and are not in the
    result. UnknownModelError for an unknown model, preset or parameter name; values are
    checked by ``make_model``."""
    params = {**preset_params(name, preset), **overrides}
    _check_known(name, params)
    return params


def parse_param(name: str, text: str) -> tuple[str, Any]:
    """Parse one ``key=value`` CLI parameter of model ``name`` by the kind of its spec
    (``PARAMS``) and check the value against the spec's rule."""
    if "=" not in text:
        raise UnknownModelError(f"parameter '{text}' is not of the form key=value")
    key, raw = (part.strip() for part in text.split("=", 1))
    _check_known(name, {key: raw})
    spec = _spec(name).params[key]
    try:
        value = spec.parse(raw)
    except ValueError:
        raise UnknownModelError(f"parameter {key}={raw!r} of model '{name}' is not a valid {spec.kind_name}") from None
    spec.check(name, key, value)
    return key, value


def _spec(name: str) -> ModelSpec:
    """The spec of model ``name``: its entry in ``tfrec.models.specs.SPECS`` (imports no
    model module), or, for a model registered in ``MODEL_PATHS`` only, one read from its
    class: ``PARAMS``, the constructor's defaults, the docstring's first line and the
    class's ``PRESETS`` (protocol -> parameters) if it has one."""
    if name not in MODEL_PATHS:
        raise UnknownModelError(f"unknown model '{name}'; models are: {', '.join(MODELS)}")
    if name in SPECS:
        return SPECS[name]
    cls = model_class(name)
    defaults = {key: parameter.default for key, parameter in cls.hyperparameters().items()}
    description = (cls.__doc__ or name).strip().splitlines()[0]
    return ModelSpec(description=description, params=dict(cls.PARAMS), defaults=defaults, presets=dict(getattr(cls, "PRESETS", {})))


def _check_known(name: str, params: dict[str, Any]) -> None:
    known = _spec(name).params
    for key in params:
        if key not in known:
            raise UnknownModelError(f"model '{name}' has no parameter '{key}'; parameters are: {', '.join(known) or 'none'}")


def describe_models() -> dict[str, ModelSpec]:
    """Every registered model's spec (description, parameter rules and defaults, presets),
    by name, in registry order; imports no model module (and so no TensorFlow)."""
    return {name: _spec(name) for name in MODEL_PATHS}
