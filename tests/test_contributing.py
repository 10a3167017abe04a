"""CONTRIBUTING.md's "Adding a model" example works as written: its model file, its
registry line and its test file, run here, and the contract holds for the new model."""
from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tfrec.models import registry

GUIDE = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"


@pytest.fixture(scope="module")
def example():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 3, "CONTRIBUTING.md: expected the model file, the registry line and the test file"
    model_source, registry_line, test_source = blocks
    module = types.ModuleType("tfrec.models.top_rated")
    exec(compile(model_source, "CONTRIBUTING.md: tfrec/models/top_rated.py", "exec"), module.__dict__)
    key, path = eval("{" + registry_line.strip().rstrip(",") + "}").popitem()
    sys.modules[module.__name__] = module
    registry.MODEL_PATHS[key] = path
    tests: dict = {}
    exec(compile(test_source, "CONTRIBUTING.md: tests/test_top_rated.py", "exec"), tests)
    yield key, tests
    del registry.MODEL_PATHS[key]
    del sys.modules[module.__name__]


def test_the_example_test_file_passes(example, demo):
    _, tests = example
    functions = [f for name, f in tests.items() if name.startswith("test_")]
    assert functions
    for function in functions:
        function(demo)


def test_the_example_model_keeps_the_contract(example, demo_split, tmp_path):
    from tfrec.export import export_model
    from tfrec.models import make_model, model_class
    from tfrec.serving import ServedModel

    name, _ = example
    assert name in registry.MODELS and model_class(name).registry_name == name
    with pytest.raises(ValueError, match=f"{name}: damping must be a number > 0, got 0"):
        make_model(name, damping=0)
    model = make_model(name)
    model.fit(demo_split.train, verbose=0)
    again = model_class(name).from_config(model.get_config())
    again.fit(demo_split.train, verbose=0)
    for mine, theirs in zip(model.weights, again.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    memory, loaded = ServedModel.from_model(model), ServedModel.load(export_model(model, tmp_path))
    train = demo_split.train.interactions
    users = list(train["user_id"].unique()[:5]) + ["no-such-user"]
    ids, scores = memory.recommend(users, k=5)
    np.testing.assert_array_equal(ids, loaded.recommend(users, k=5)[0])
    np.testing.assert_array_equal(scores, loaded.recommend(users, k=5)[1])
    for user, row in zip(users, ids):
        assert not set(row) & set(train.loc[train["user_id"] == user, "item_id"]), "a training item was recommended"
