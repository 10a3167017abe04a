"""The one in-memory dataset type every data source produces and every model consumes."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "text", "category")
SESSION_COLUMNS = ("session_id", "user_id", "item_id", "position", "timestamp")
# The largest |rating| a loader accepts: finite, and squares and sums over billions of
# ratings stay finite in float32 (1e39 is inf in float32; 1e30 squared is).
RATING_LIMIT = 1e6


class DataError(ValueError):
    """A problem with user-supplied data, with a message that names the input and the fix."""


def id_sort_key(ids: pd.Series) -> pd.Series:
    """Sort key for string ids: numeric order when every id is an integer, else text order.

    MovieLens ids are "1".."1682"; ties in every protocol break by the *lower* id, which
    means numeric order ("2" < "10"), not string order.
    """
    ids = ids.astype(str)
    if len(ids) and ids.str.fullmatch(r"-?\d{1,18}").all():
        return ids.astype(np.int64)
    return ids


def sorted_ids(ids) -> np.ndarray:
    """Unique ids in `id_sort_key` order, as an object array of str."""
    return encode_ids(ids)[0]


def encode_ids(ids) -> tuple[np.ndarray, np.ndarray]:
    """``(vocabulary, codes)``: the unique ids in `id_sort_key` order (object array of
    str) and each id's position in it (int64[n]), from one hashing pass."""
    codes, unique = pd.factorize(pd.Series(ids, dtype=str).to_numpy(object))
    order = np.argsort(id_sort_key(pd.Series(unique, dtype=str)).to_numpy(), kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return np.asarray(unique, dtype=object)[order], rank[codes]


@dataclass(frozen=True)
class Dataset:
    """Interactions, item catalog and (optionally) sessions, with string ids.

    interactions: columns ``user_id`` (str), ``item_id`` (str), ``rating`` (float32;
        loaders accept finite values with |rating| <= `RATING_LIMIT`), ``timestamp``
        (int64; row order when the source has no time).
    items: columns ``item_id`` (str), ``title`` (str), ``text`` (str, what content models
        read), ``category`` (str; several categories joined with "|"). May hold items
        nobody interacted with.
    sessions: columns ``session_id`` (int64), ``user_id`` (str), ``item_id`` (str),
        ``position`` (int32, 0-based within the session), ``timestamp`` (int64), or None
        when the source has no sessions (models then derive them from interactions).
    name: a short label for logs and tables ("demo", "ml-100k", ...).
    source_dir: the directory the data came from, when there is one (official splits
        read their fold files from it).
    """

    interactions: pd.DataFrame
    items: pd.DataFrame
    sessions: pd.DataFrame | None = None
    name: str = "data"
    source_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for frame, columns, what in (
            (self.interactions, INTERACTION_COLUMNS, "interactions"),
            (self.items, ITEM_COLUMNS, "items"),
        ):
            missing = [c for c in columns if c not in frame.columns]
            if missing:
                raise DataError(f"{self.name}: {what} lack columns {missing}; columns are {list(frame.columns)}")
        if self.sessions is not None:
            missing = [c for c in SESSION_COLUMNS if c not in self.sessions.columns]
            if missing:
                raise DataError(f"{self.name}: sessions lack columns {missing}")

    @property
    def n_users(self) -> int:
        return int(self.interactions["user_id"].nunique())

    @property
    def n_items(self) -> int:
        return int(self.interactions["item_id"].nunique())

    def with_interactions(self, interactions: pd.DataFrame, sessions: pd.DataFrame | None = None) -> Dataset:
        """The same catalog with other interactions (used by splits)."""
        return replace(self, interactions=interactions.reset_index(drop=True), sessions=sessions)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {len(self.interactions):,} interactions, {self.n_users:,} users, "
            f"{self.n_items:,} items, catalog {len(self.items):,}, "
            f"sessions {'none' if self.sessions is None else self.sessions['session_id'].nunique()})"
        )


def _column_bytes(column: str, values: pd.Series) -> bytes:
    """The bytes of one interactions column, unambiguously: ids as their UTF-8 lengths
    (int64) followed by the concatenated UTF-8 text, ratings as float32 and timestamps as
    int64, little-endian."""
    if column in ("user_id", "item_id"):
        encoded = [str(value).encode("utf-8") for value in values]
        return np.array([len(e) for e in encoded], dtype="<i8").tobytes() + b"".join(encoded)
    return values.to_numpy(dtype="<f4" if column == "rating" else "<i8").tobytes()


def interactions_fingerprint(interactions: pd.DataFrame) -> str:
    """A stable hash of an interactions frame: ``"sha256:<hex>"`` over its (user_id, item_id,
    rating, timestamp) rows in sorted order, so row order does not matter and any changed,
    added or removed interaction does. Ratings are hashed as float32, timestamps as int64
    (the `Dataset` dtypes). ML-100K: about 0.1 s."""
    frame = interactions[list(INTERACTION_COLUMNS)]
    codes = [pd.factorize(frame[column], sort=True)[0] for column in reversed(INTERACTION_COLUMNS)]
    ordered = frame.iloc[np.lexsort(codes)]
    digest = hashlib.sha256()
    for column in INTERACTION_COLUMNS:
        digest.update(column.encode("ascii"))
        digest.update(_column_bytes(column, ordered[column]))
    return f"sha256:{digest.hexdigest()}"


def normalise_interactions(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce an interactions frame to the canonical dtypes and column order."""
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype(str).to_numpy(dtype=object),
            "item_id": frame["item_id"].astype(str).to_numpy(dtype=object),
            "rating": frame["rating"].to_numpy(dtype=np.float32),
            "timestamp": frame["timestamp"].to_numpy(dtype=np.int64),
        }
    )
    return out
