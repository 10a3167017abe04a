"""Serving: call a model's serving signatures, from a SavedModel or from memory.

``ServedModel.load(path)`` wraps a SavedModel exported by ``tfrec.export_model``;
``ServedModel.from_model(model)`` wraps a fitted in-memory model. Both call the very
same serving functions (the in-memory ``tf.function``s are what gets exported), so
evaluation through a ``ServedModel`` measures what is served. Inputs are checked here
first, so a user mistake is one clear ``ValueError``, not a TensorFlow traceback.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.export.catalog import read_catalog
from tfrec.export.layout import incomplete_reason, numbered_entries, version_number
from tfrec.export.provenance import TrainingRecord, read_training_record, training_record
from tfrec.export.savedmodel import METADATA_ASSET
from tfrec.models.base import Recommender


def _no_savedmodel(path: Path) -> ValueError:
    return ValueError(f"{path}: no SavedModel here (expected saved_model.pb or integer version folders like {path}/1)")


def resolve_version_dir(path: str | Path) -> Path:
    """The SavedModel folder to serve from ``path``: ``path`` itself when it holds a
    ``saved_model.pb``, else its newest *complete* integer version (TF Serving's rule; see
    ``tfrec.export.layout.incomplete_reason``). ``ValueError`` when there is none."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    for version_dir in numbered_entries(path):
        if incomplete_reason(version_dir) is None:
            return version_dir
    raise _no_savedmodel(path)


def _one_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return f"{type(error).__name__}: {text.strip().splitlines()[0] if text.strip() else 'no message'}"


def _check_id(value: Any, where: str, allow_empty: bool = False) -> None:
    """ValueError unless ``value`` is a str or bytes id (non-empty unless ``allow_empty``)."""
    if not isinstance(value, (str, bytes)):
        raise ValueError(f"{where} must be a string id, got {type(value).__name__} {value} (string ids only: convert ids with str())")
    if not value and not allow_empty:
        raise ValueError(f"{where} must be a non-empty string id")


def _as_id_array(values: Any, what: str) -> np.ndarray:
    """One id (str or bytes) or a flat sequence of them -> an object array of the very same
    objects: nothing is converted, so ``"0\x00"`` stays ``"0\x00"`` (numpy's ``str_`` would
    strip the NUL). None, numbers, nested lists and empty ids are refused with a ValueError
    naming the position, e.g. ``user_ids[2] must be a string id, got int 7``."""
    if isinstance(values, (str, bytes)):
        values = [values]
    if isinstance(values, np.ndarray) and values.ndim != 1:
        raise ValueError(f"{what} must be a flat list of string ids, got shape {values.shape}")
    values = list(values)
    for position, value in enumerate(values):
        if isinstance(value, (list, tuple, np.ndarray)):
            raise ValueError(f"{what} must be a flat list of string ids; {what}[{position}] is a {type(value).__name__}")
        _check_id(value, f"{what}[{position}]")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _pad_histories(histories: Sequence[Sequence[str]] | None, batch: int) -> np.ndarray:
    """One list of item ids (str or bytes, passed through unchanged) per user -> an object
    array [batch, longest history] padded with "" ("" entries are padding too). Non-string
    ids are refused naming the position, e.g. ``history[0][2] must be a string id, got int 5``."""
    if histories is None:
        return np.zeros((batch, 0), dtype=object)
    if isinstance(histories, (str, bytes)) or len(histories) != batch:
        count = 1 if isinstance(histories, (str, bytes)) else len(histories)
        raise ValueError(f"history must hold one list of item ids per user: {count} lists for {batch} users")
    rows = []
    for row, items in enumerate(histories):
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise ValueError(f"history[{row}] must be a list of item ids, not {type(items).__name__} {items!r}")
        items = list(items)
        for column, item in enumerate(items):
            _check_id(item, f"history[{row}][{column}]", allow_empty=True)
        rows.append(items)
    padded = np.full((batch, max((len(items) for items in rows), default=0)), "", dtype=object)
    for row, items in enumerate(rows):
        padded[row, : len(items)] = items
    return padded


def _decoded(ids: np.ndarray) -> np.ndarray:
    """The signature's item ids (bytes) as an object array of UTF-8 ``str``, exactly: numpy's
    ``astype(str)`` decodes ASCII only and drops trailing NULs."""
    return np.array([item.decode("utf-8") for item in ids.ravel()], dtype=object).reshape(ids.shape)


@dataclass(frozen=True)
class Explanation:
    """Why ``recommend`` gave each row what it gave (``ServedModel.explain``), one entry per user.

    known_user: bool[B], the user is in the training data.
    fallback: bool[B], the row got the model's fallback (training popularity; see
        ``ServedModel.fallback_description``): an unknown user with no history item the
        model knows, or any unknown user for a model that does not read histories.
    unknown_history: per row, the history items the model does not know (ignored by it), as given, in input order.
    excluded: int[B], how many distinct items were kept out of the row as already seen:
        the user's training items and the known history items.
    """

    known_user: np.ndarray
    fallback: np.ndarray
    unknown_history: list[list[str]]
    excluded: np.ndarray


class ServedModel:
    """The serving signatures of one model, with input checks and string outputs."""

    #: The integer version loaded by ``load`` (None for an in-memory model or a folder not named by a number).
    version: int | None = None

    def __init__(self, functions: dict[str, Callable[..., dict]], meta: dict[str, Any], catalog: pd.DataFrame, path: Path | None = None,
                 trained_on: TrainingRecord | None = None, tables: Any = None):
        self._functions = functions
        self.metadata = meta
        self.catalog = catalog
        self.path = path
        #: What the model was trained on (``training.json``); None for exports made before tfrec recorded it.
        self.trained_on = trained_on
        self._tables = tables  # the model (or its restored object): users/items vocabularies and each user's training items
        self._titles = dict(zip(catalog["item_id"], catalog["title"]))
        self._lookups: tuple[dict[bytes, int], dict[bytes, int], np.ndarray, np.ndarray] | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path) -> ServedModel:
        """Load a SavedModel exported by ``tfrec.export_model``.

        ``path``: a SavedModel folder (holding ``saved_model.pb``), or a model folder of
        integer versions, of which the newest that is complete and loads is served (as TF
        Serving would); each newer version skipped is reported on stderr, one line with
        the reason. ``served.version`` and ``served.path`` say what was loaded. Raises a
        one-line ``ValueError`` when nothing there is usable.
        """
        path = Path(path)
        if (path / "saved_model.pb").is_file():
            try:
                return cls._load_folder(path)
            except Exception as error:  # a corrupt SavedModel fails in many TF/protobuf/OS ways
                raise ValueError(f"{path}: the SavedModel does not load ({_one_line(error)})") from None
        skipped: list[str] = []
        for version_dir in numbered_entries(path):
            reason = incomplete_reason(version_dir)
            if reason is None:
                try:
                    served = cls._load_folder(version_dir)
                except Exception as error:  # fall back to the next older version, as TF Serving does
                    reason = f"does not load ({_one_line(error)})"
                else:
                    for line in skipped:
                        print(f"tfrec: warning: {path}: skipped {line}; serving version {version_dir.name}", file=sys.stderr)
                    return served
            skipped.append(f"version {version_dir.name}: {reason}")
        if skipped:
            raise ValueError(f"{path}: no usable SavedModel version ({'; '.join(skipped)})")
        raise _no_savedmodel(path)

    @classmethod
    def _load_folder(cls, version_dir: Path) -> ServedModel:
        loaded = tf.saved_model.load(str(version_dir))
        meta = json.loads((version_dir / "assets" / METADATA_ASSET).read_text(encoding="utf-8"))
        catalog = read_catalog(version_dir / "assets")
        served = cls(dict(loaded.signatures), meta, catalog, version_dir, read_training_record(version_dir / "assets"), getattr(loaded, "model", None))
        served.version = version_number(version_dir)
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
        return cls(model.serving_functions(), metadata(model), catalog, trained_on=training_record(model), tables=model)

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

    @property
    def uses_history(self) -> bool:
        """Unknown users are scored from their history (else they get the fallback)."""
        return bool(self.metadata.get("uses_history", False))

    @property
    def fallback_description(self) -> str:
        """What a fallback row holds and what its scores mean, in words."""
        if self.name == "popularity":
            return "the most popular items, scored by training interaction count (the model's own scores)"
        return "the most popular items, scored by share of training interactions (count / total, in [0, 1])"

    def describe(self) -> str:
        """One line: model, version and what it was trained on."""
        version = f"version {self.version}" if self.version is not None else "in memory"
        where = f" ({self.path})" if self.path is not None else ""
        trained = self.trained_on.describe() if self.trained_on is not None else "not recorded (exported before tfrec recorded it)"
        return f"{self.name} {version}{where}, trained on {trained}"

    def title(self, item_id: str) -> str:
        return self._titles.get(item_id, "")

    def _vocabularies(self) -> tuple[dict[bytes, int], dict[bytes, int], np.ndarray, np.ndarray]:
        """(user index, item index, row_splits, item_indices) of the model's tables, read once;
        the indexes map UTF-8 ids to positions (1-based, as the signatures' lookups)."""
        if self._lookups is None:
            if self._tables is None:
                raise ValueError(f"model '{self.name}': this ServedModel has no vocabularies to explain results with")

            def index(vocabulary) -> dict[bytes, int]:
                return {value: position for position, value in enumerate(vocabulary.ids.numpy()) if position}

            table = self._tables.user_items
            self._lookups = (index(self._tables.users), index(self._tables.items), table.row_splits.numpy(), table.item_indices.numpy())
        return self._lookups

    # ----------------------------------------------------------------- calls
    def _check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"k must be an integer, got {type(k).__name__} {k!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if k > self.n_items:
            raise ValueError(f"k={k} is larger than the {self.n_items} items this model can recommend")
        return int(k)

    def recommend(
        self, user_ids: Sequence[str] | str, history: Sequence[Sequence[str]] | None = None, k: int = 10, with_flags: bool = False
    ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Top-k item ids (str objects [B, k], "" where nothing is left) and scores (float32[B, k]);
        with ``with_flags``, also ``fallback`` bool[B]: the row is the model's fallback
        (``explain`` says more: unknown history items, items excluded as seen)."""
        users = _as_id_array(user_ids, "user_ids")
        k = self._check_k(k)
        padded = _pad_histories(history, len(users))
        out = self._functions["recommend"](
            user_id=tf.constant(users, tf.string), history=tf.constant(padded, tf.string, shape=padded.shape), k=tf.constant(k, tf.int32)
        )
        ids, scores = _decoded(out["item_ids"].numpy()), out["scores"].numpy()
        if with_flags:
            return ids, scores, self.explain(users, padded).fallback
        return ids, scores

    def explain(self, user_ids: Sequence[str] | str, history: Sequence[Sequence[str]] | None = None) -> Explanation:
        """For the same arguments as ``recommend``: which users are unknown, which rows get
        the fallback, which history items the model does not know, how many seen items are
        excluded (see `Explanation`). Computed from the model's vocabularies, without a call."""
        users = _as_id_array(user_ids, "user_ids")
        padded = history if isinstance(history, np.ndarray) and history.ndim == 2 else _pad_histories(history, len(users))
        user_index, item_index, row_splits, item_indices = self._vocabularies()
        known_user = np.zeros(len(users), bool)
        fallback = np.zeros(len(users), bool)
        unknown_history: list[list[str]] = []
        excluded = np.zeros(len(users), np.int64)
        def key(value: str | bytes) -> bytes:  # what the signature's lookup sees
            return value if isinstance(value, bytes) else value.encode("utf-8")

        for row, user in enumerate(users):
            position = user_index.get(key(user), 0)
            given = [item for item in padded[row] if item]
            unknown_history.append([item for item in given if key(item) not in item_index])
            known_history = {item_index[key(item)] for item in given if key(item) in item_index}
            seen = set(item_indices[row_splits[position]: row_splits[position + 1]].tolist()) if position else set()
            known_user[row] = position > 0
            fallback[row] = not position and not (self.uses_history and known_history)
            excluded[row] = len(seen | known_history)
        return Explanation(known_user=known_user, fallback=fallback, unknown_history=unknown_history, excluded=excluded)

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
        return _decoded(out["item_ids"].numpy()), out["scores"].numpy()
