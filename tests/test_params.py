"""Hyperparameters: one spec per model (``PARAMS``), checked by one mechanism before fitting."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from tfrec.models import MODELS, UnknownModelError, make_model, parse_param
from tfrec.models.params import Param
from tfrec.models.specs import SPECS as SPECS_BY_NAME

NAMES = list(MODELS)
SPECS = [(name, key) for name in NAMES for key in MODELS[name].PARAMS]


def bad_values(spec: Param) -> list:
    """Values that break ``spec``: wrong type, out of range, not a choice, None when required."""
    values = [] if spec.optional is not None else [None]
    if spec.kind is bool:
        return values + ["yes", 1, 0.0]
    if spec.kind is str:
        return values + [1, True] + (["no-such-choice", spec.choices[0].upper()] if spec.choices else [])
    values += ["1", True, [1]]
    values.append(1.5 if spec.kind is int else float("nan"))
    if spec.kind is float:
        values.append(float("inf"))
    if spec.minimum is not None:
        values.append(spec.minimum if spec.exclusive_minimum else spec.minimum - 1)
    if spec.maximum is not None:
        values.append(spec.maximum if spec.exclusive_maximum else spec.maximum + 1)
    return values


def _message(name: str, key: str, value) -> str:
    return f"^{re.escape(name)}: {re.escape(key)} must be {re.escape(MODELS[name].PARAMS[key].rule())}, got {re.escape(repr(value))}$"


@pytest.mark.parametrize("name", NAMES)
def test_params_name_the_constructor_arguments_in_order(name):
    cls = MODELS[name]
    assert list(cls.PARAMS) == list(cls.hyperparameters()), f"{name}: PARAMS and the constructor's keyword arguments differ"
    for key, spec in cls.PARAMS.items():
        assert isinstance(spec, Param)
        assert spec.doc and "\n" not in spec.doc, f"{name}.{key}: one line of doc"
        default = cls.hyperparameters()[key].default
        assert spec.allows(default), f"{name}.{key}: the default {default!r} breaks its own rule {spec.rule()}"


@pytest.mark.parametrize("name", NAMES)
def test_the_class_reads_its_spec_and_the_spec_has_the_constructor_defaults(name):
    cls = MODELS[name]
    assert cls.PARAMS is SPECS_BY_NAME[name].params
    signature = [(key, type(p.default), p.default) for key, p in cls.hyperparameters().items()]
    assert [(key, type(value), value) for key, value in SPECS_BY_NAME[name].defaults.items()] == signature
    description = SPECS_BY_NAME[name].description
    assert description.endswith(".") and description.count(". ") == 0 and "\n" not in description, "one sentence"


def test_spec_choices_are_those_of_the_layers():
    from tfrec.layers import neighbours, tfidf
    from tfrec.models import specs

    assert (specs.IDF_MODES, specs.NORMS) == (tfidf.IDF_MODES, tfidf.NORMS)
    assert specs.RATING_SIMILARITIES == neighbours.RATING_SIMILARITIES


@pytest.mark.parametrize("name", NAMES)
def test_defaults_pass_and_config_round_trips_with_the_new_names(name):
    model = make_model(name)
    config = model.get_config()
    assert list(config) == list(MODELS[name].PARAMS)
    clone = MODELS[name].from_config(config)
    assert clone.get_config() == config
    clone.check_params()


@pytest.mark.parametrize("name, key", SPECS, ids=[f"{n}.{k}" for n, k in SPECS])
def test_every_bad_value_is_refused_by_make_model_and_by_fit(demo, name, key):
    for value in bad_values(MODELS[name].PARAMS[key]):
        with pytest.raises(ValueError, match=_message(name, key, value)):
            make_model(name, **{key: value})
        model = MODELS[name](**{key: value})  # the constructor only stores the value
        with pytest.raises(ValueError, match=_message(name, key, value)):
            model.fit(demo, verbose=0)


def test_numpy_numbers_and_ints_for_floats_are_accepted():
    make_model("item_knn", neighbours=np.int64(20), shrinkage=np.float32(5.0), baseline_reg_u=3)
    make_model("covisit", window=np.int32(3), directed=np.bool_(True), time_half_life=86400)
    make_model("mf", feedback="implicit", batch_size=None, l2=None, seed=np.uint8(3))


def test_combinations_are_checked_by_the_model_hook(demo):
    message = "^item_knn: similarity must be 'cosine' with feedback='implicit'"
    with pytest.raises(ValueError, match=message):
        make_model("item_knn", similarity="pearson")
    with pytest.raises(ValueError, match=message):
        MODELS["item_knn"](similarity="pearson").fit(demo, verbose=0)
    assert make_model("item_knn", similarity="pearson", feedback="explicit").get_config()["similarity"] == "pearson"


@pytest.mark.parametrize(
    "old, new",
    [
        (("popularity", "half_life"), "time_half_life"),
        (("covisit", "top_n"), "neighbours"),
        (("item_knn", "k"), "neighbours"),
        (("user_knn", "k_rating"), "rating_neighbours"),
        (("user_knn", "min_k"), "min_rating_neighbours"),
        (("item_knn", "implicit"), "feedback"),
        (("item_knn", "mode"), "rating_form"),
        (("mf", "mode"), "feedback"),
    ],
)
def test_renamed_parameters(old, new):
    name, key = old
    with pytest.raises(UnknownModelError, match=f"model '{name}' has no parameter '{key}'.*{new}"):
        make_model(name, **{key: 1})
    assert new in MODELS[name].PARAMS


def test_parse_param_reads_the_kind_of_the_spec():
    assert parse_param("popularity", "time_half_life=2592000") == ("time_half_life", 2592000.0)
    assert parse_param("popularity", "time_half_life=none") == ("time_half_life", None)
    assert parse_param("popularity", "rating_weighted=yes") == ("rating_weighted", True)
    assert parse_param("mf", "batch_size=null") == ("batch_size", None)
    assert parse_param("mf", "feedback=implicit") == ("feedback", "implicit")
    assert parse_param("item_knn", "neighbours=100") == ("neighbours", 100)
    assert parse_param("item_knn", "shrinkage=5") == ("shrinkage", 5.0)
    with pytest.raises(UnknownModelError, match="not a valid integer"):
        parse_param("two_tower", "epochs=2.5")
    with pytest.raises(UnknownModelError, match="not a valid number"):
        parse_param("popularity", "time_half_life=abc")
    with pytest.raises(ValueError, match="^tfidf: max_features must be None"):
        parse_param("tfidf", "max_features=0")  # typed and checked value by value
    with pytest.raises(ValueError, match="^mf: feedback must be one of 'explicit', 'implicit', got 'ratings'$"):
        parse_param("mf", "feedback=ratings")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "popularity", "--param", "time_half_life=-5"],
         "popularity: time_half_life must be None (no time decay) or a number > 0, in timestamp units (seconds for MovieLens), got -5.0"),
        (["train", "item_knn", "--param", "similarity=msd"], "item_knn: similarity must be 'cosine' with feedback='implicit'"),
    ],
)
def test_cli_bad_value_is_one_line_exit_2_before_reading_data(argv, message, capsys):
    from tfrec.cli import main

    assert main([*argv, "--data", "/no/such/dir"]) == 2  # the parameter fails first, not the path
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfrec: error: ") and message in err and "\n" not in err


def test_capability_flags_are_instance_properties():
    expected = {  # trained, uses_history, predicts_ratings
        "popularity": (False, False, False),
        "tfidf": (False, True, False),
        "covisit": (False, True, False),
        "user_knn": (False, True, True),
        "item_knn": (False, True, True),
        "mf": (True, True, True),
        "two_tower": (True, True, False),
    }
    for name, flags in expected.items():
        model = make_model(name)
        assert (model.trained, model.uses_history, model.predicts_ratings) == flags, name
        for flag in ("trained", "uses_history", "predicts_ratings"):
            assert isinstance(getattr(type(model), flag), property), f"{name}.{flag} is not a property"
    assert make_model("mf", feedback="implicit").predicts_ratings is False


@pytest.mark.parametrize(
    "spec, rule",
    [
        (Param(int, minimum=1), "an integer >= 1"),
        (Param(float, minimum=0, exclusive_minimum=True), "a number > 0"),
        (Param(float, minimum=0, maximum=1, exclusive_minimum=True), "a number in (0, 1]"),
        (Param(float, minimum=0, maximum=0.5, exclusive_maximum=True), "a number in [0, 0.5)"),
        (Param(float, maximum=2), "a number <= 2"),
        (Param(bool), "True or False"),
        (Param(str, choices=("a", "b")), "one of 'a', 'b'"),
        (Param(int, minimum=1, optional="every term"), "None (every term) or an integer >= 1"),
        (Param(float, minimum=0, exclusive_minimum=True, unit="days"), "a number > 0, in days"),
    ],
)
def test_rule_text(spec, rule):
    assert spec.rule() == rule
    assert not spec.allows(math.nan if spec.kind is float else "x")
