"""Serving: call a model's serving signatures, from a SavedModel or from memory.

``ServedModel.load(path)`` wraps a SavedModel exported by ``tfrec.export_model``;
``ServedModel.from_model(model)`` wraps a fitted in-memory model. Both call the very
same serving functions (the in-memory ``tf.function``s are what gets exported), so
evaluation through a ``ServedModel`` measures what is served. Inputs are checked here
first, so a user mistake is one clear ``ValueError``, not a TensorFlow traceback.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.export.savedmodel import CATALOG_ASSET, METADATA_ASSET, versions
from tfrec.models.base import Recommender


def resolve_version_dir(path: str | Path) -> Path:
    """A SavedModel folder: ``path`` itself, or its latest integer version."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    found = versions(path)
    if found:
        return path / str(found[-1])
    raise ValueError(f"{path}: no SavedModel here (expected saved_model.pb or integer version folders like {path}/1)")


def _as_id_array(values: Any, what: str) -> np.ndarray:
    if isinstance(values, (str, bytes)):
        values = [values]
    array = np.asarray(list(values), dtype=object)
    if array.ndim != 1:
        raise ValueError(f"{what} must be a flat list of string ids, got shape {array.shape}")
    for value in array:
        if not isinstance(value, (str, bytes, np.str_)):
            raise ValueError(f"{what} must be string ids; got {type(value).__name__} {value!r} (convert ids with str())")
        if len(value) == 0:
            raise ValueError(f"{what} must be non-empty strings")
    return array.astype(str).astype(object)


def _pad_histories(histories: Sequence[Sequence[str]] | None, batch: int) -> np.ndarray:
    if histories is None:
        return np.zeros((batch, 0), dtype=object)
    if len(histories) != batch:
        raise ValueError(f"history must hold one list of item ids per user: {len(histories)} lists for {batch} users")
    width = max((len(h) for h in histories), default=0)
    padded = np.full((batch, width), "", dtype=object)
    for row, items in enumerate(histories):
        if isinstance(items, (str, bytes)):
            raise ValueError("each history must be a list of item ids, not one string")
        padded[row, : len(items)] = [str(i) for i in items]
    return padded


class ServedModel:
    """The serving signatures of one model, with input checks and string outputs."""

    def __init__(self, functions: dict[str, Callable[..., dict]], meta: dict[str, Any], catalog: pd.DataFrame, path: Path | None = None):
        self._functions = functions
        self.metadata = meta
        self.catalog = catalog
        self.path = path
        self._titles = dict(zip(catalog["item_id"], catalog["title"]))

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path) -> ServedModel:
        version_dir = resolve_version_dir(path)
        loaded = tf.saved_model.load(str(version_dir))
        meta = json.loads((version_dir / "assets" / METADATA_ASSET).read_text(encoding="utf-8"))
        catalog = pd.read_csv(version_dir / "assets" / CATALOG_ASSET, sep="\t", dtype=str, keep_default_na=False, quoting=3)
        functions = dict(loaded.signatures)
        served = cls(functions, meta, catalog, version_dir)
        served._loaded = loaded  # keep the resources alive
        return served

    @classmethod
    def from_model(cls, model: Recommender) -> ServedModel:
        from tfrec.export.savedmodel import metadata

        if not bool(model.is_fitted.numpy()):
            raise ValueError(f"{model.registry_name}: the model is not fitted; call model.fit(dataset) or tfrec.fit(model, data) first")
        catalog = pd.DataFrame(
            {
                "item_id": [i.decode() for i in model.items.ids.numpy()[1:]],
                "title": [t.decode() for t in model.item_titles.numpy()[1:]],
            }
        )
        return cls(model.serving_functions(), metadata(model), catalog)

    # ------------------------------------------------------------------ facts
    @property
    def name(self) -> str:
        return self.metadata["model"]

    @property
    def n_items(self) -> int:
        return int(self.metadata["n_items"])

    @property
    def signatures(self) -> list[str]:
        return sorted(self._functions)

    def title(self, item_id: str) -> str:
        return self._titles.get(item_id, "")

    # ----------------------------------------------------------------- calls
    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"k must be an integer, got {type(k).__name__} {k!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if k > self.n_items:
            raise ValueError(f"k={k} is larger than the {self.n_items} items this model can recommend")
        return int(k)

    def recommend(self, user_ids: Sequence[str] | str, history: Sequence[Sequence[str]] | None = None, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item ids (str[B, k], "" where nothing is left) and scores (float32[B, k])."""
        users = _as_id_array(user_ids, "user_ids")
        k = self._check_k(k)
        padded = _pad_histories(history, len(users))
        out = self._functions["recommend"](
            user_id=tf.constant(users, tf.string), history=tf.constant(padded, tf.string, shape=padded.shape), k=tf.constant(k, tf.int32)
        )
        return out["item_ids"].numpy().astype(str), out["scores"].numpy()

    def score(self, user_ids: Sequence[str] | str, item_ids: Sequence[str] | str) -> np.ndarray:
        """Score (predicted rating for rating models) of each (user, item) pair: float32[B]."""
        users = _as_id_array(user_ids, "user_ids")
        items = _as_id_array(item_ids, "item_ids")
        if len(users) != len(items):
            raise ValueError(f"user_ids and item_ids must have the same length ({len(users)} != {len(items)})")
        out = self._functions["score"](user_id=tf.constant(users, tf.string), item_id=tf.constant(items, tf.string))
        return out["score"].numpy()

    def similar_items(self, item_ids: Sequence[str] | str, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k items most similar to each item (never the item itself)."""
        if "similar_items" not in self._functions:
            raise ValueError(f"model '{self.name}' has no similar_items signature")
        items = _as_id_array(item_ids, "item_ids")
        k = self._check_k(k)
        out = self._functions["similar_items"](item_id=tf.constant(items, tf.string), k=tf.constant(k, tf.int32))
        return out["item_ids"].numpy().astype(str), out["scores"].numpy()
