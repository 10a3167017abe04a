"""What ``model.fit`` reads besides the interactions: the item catalogue and sessions."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from tfrec._keras import tf
from tfrec.data.dataset import ITEM_COLUMNS, SESSION_COLUMNS, DataError
from tfrec.data.pipelines import session_batches


@dataclass(frozen=True)
class FitInputs:
    """The side inputs of one fit, checked (``fit_inputs``).

    items: the catalogue, columns ``item_id``, ``title``, ``text``, ``category`` (str);
        empty when none was given (titles are then the ids; ``tfidf`` needs one).
    sessions: a table as ``tfrec.data.Dataset.sessions`` (in memory), or batches of
        ``session_id``, ``item_id``, ``position``, ``timestamp``
        (``tfrec.data.pipelines.session_batches``), or None (``covisit`` then cuts
        sessions from each user's interactions).
    name: the data's name for messages and TensorBoard ("tf.data" for a plain dataset).
    """

    items: pd.DataFrame
    sessions: pd.DataFrame | tf.data.Dataset | None
    name: str

    @property
    def has_catalog(self) -> bool:
        return len(self.items) > 0


def fit_inputs(catalog: pd.DataFrame | None, sessions: pd.DataFrame | tf.data.Dataset | None, name: str) -> FitInputs:
    """Check and complete the ``catalog=`` and ``sessions=`` arguments of ``model.fit``.

    ``catalog``: a DataFrame with an ``item_id`` column and any of ``title``, ``text``
    (what content models read) and ``category`` (several joined with "|"); a missing
    ``title`` or ``category`` is "", a missing ``text`` is the title and categories
    joined by a space. Ids become str. ``tfrec.data`` loaders give this frame as
    ``data.items``. ``sessions``: a table as ``tfrec.data.Dataset.sessions``, or a
    ``tf.data.Dataset`` of such rows or batches (``session_batches``); streamed by the
    model that reads it.
    """
    if catalog is None:
        items = pd.DataFrame({column: pd.Series(dtype=object) for column in ITEM_COLUMNS})
    else:
        if not isinstance(catalog, pd.DataFrame):
            raise DataError(f"catalog must be a pandas DataFrame with an 'item_id' column (e.g. data.items), got {type(catalog).__name__}")
        if "item_id" not in catalog.columns:
            raise DataError(f"catalog has no column 'item_id'; its columns are {list(catalog.columns)}")
        items = pd.DataFrame({"item_id": catalog["item_id"].astype(str)})
        for column in ("title", "category"):
            items[column] = catalog[column].fillna("").astype(str) if column in catalog.columns else ""
        if "text" in catalog.columns:
            items["text"] = catalog["text"].fillna("").astype(str)
        else:
            items["text"] = (items["title"] + " " + items["category"].str.replace("|", " ", regex=False)).str.strip()
        items = items[list(ITEM_COLUMNS)].reset_index(drop=True)
    if isinstance(sessions, pd.DataFrame):
        missing = [c for c in SESSION_COLUMNS if c not in sessions.columns]
        if missing:
            raise DataError(f"sessions lack columns {missing}; columns are {list(sessions.columns)}")
    elif sessions is not None:
        sessions = session_batches(sessions)
    return FitInputs(items=items, sessions=sessions, name=name)
