"""Shared, session-scoped fixtures: TF start-up and tracing dominate, so fit once."""
from __future__ import annotations

from pathlib import Path

import pytest

import tfrec  # noqa: F401  (selects Keras 2 before anything else imports TensorFlow)

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {ML100K} (tests on real data need ../shared/data/ml-100k)")
    return ML100K


@pytest.fixture(scope="session")
def ml100k(ml100k_dir):
    from tfrec.data import load_movielens

    return load_movielens(ml100k_dir)


@pytest.fixture(scope="session")
def demo():
    from tfrec.data import load_demo

    return load_demo()


@pytest.fixture(scope="session")
def demo_split(demo):
    from tfrec.data import make_split

    return make_split(demo, "temporal")


class FittedModels:
    """Fit each registered model once on the demo temporal split, export it once."""

    def __init__(self, split, export_dir: Path):
        self.split = split
        self.export_dir = export_dir
        self._models: dict = {}
        self._served: dict = {}

    def model(self, name: str):
        if name not in self._models:
            from tfrec.models import make_model
            from tfrec.training import fit

            self._models[name] = fit(make_model(name), self.split.train, verbose=0).model
        return self._models[name]

    def exported(self, name: str):
        """(in-memory ServedModel, reloaded ServedModel, export path)."""
        if name not in self._served:
            from tfrec.export import export_model
            from tfrec.serving import ServedModel

            model = self.model(name)
            path = export_model(model, self.export_dir)
            self._served[name] = (ServedModel.from_model(model), ServedModel.load(path), path)
        return self._served[name]


@pytest.fixture(scope="session")
def fitted(demo_split, tmp_path_factory) -> FittedModels:
    return FittedModels(demo_split, tmp_path_factory.mktemp("savedmodels"))
