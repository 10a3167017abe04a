"""tf.data pipelines over a `Dataset`, built from numpy arrays so they scale to millions of rows.

Ids travel as int32 codes into a small vocabulary and become ``tf.string`` batch by batch
(one ``tf.gather`` per batch), so a 20M-row pipeline holds 4 bytes per id until it is
cached. Elements are whole batches (one dataset element per batch, not per row).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.data.dataset import Dataset, id_sort_key

AUTOTUNE = tf.data.AUTOTUNE


def interactions_dataset(
    data: Dataset, batch_size: int = 4096, shuffle: bool = False, seed: int = 0, cache: bool = True
) -> tf.data.Dataset:
    """Batches of ``{"user_id": string[B], "item_id": string[B], "rating": float32[B], "timestamp": int64[B]}``.

    Rows come in the data's order, or, with ``shuffle=True``, in one random permutation
    drawn from ``seed`` (a full shuffle, the same every epoch: the behaviour of
    ``shuffle(..., reshuffle_each_iteration=False)`` with a buffer as large as the data).
    The last batch may be smaller. ``cache=True`` keeps the decoded batches after the first
    pass; the pipeline is prefetched with AUTOTUNE.
    """
    frame = data.interactions
    order = np.random.default_rng(seed).permutation(len(frame)) if shuffle else None
    columns = {
        "user_id": _codes(frame["user_id"], order),
        "item_id": _codes(frame["item_id"], order),
        "rating": _values(frame["rating"], np.float32, order),
        "timestamp": _values(frame["timestamp"], np.int64, order),
    }
    return _batched(columns, batch_size, cache)


def sessions_dataset(data: Dataset, batch_size: int = 4096, cache: bool = True) -> tf.data.Dataset:
    """Batches of ``{"session_id": int64[B], "item_id": string[B], "position": int32[B], "timestamp": int64[B]}``.

    Rows are in session order: by session id, then position (never shuffled; a session
    can span two batches). Without sessions in the data, each user's interactions sorted by
    (timestamp, item id) form one session, numbered in user id order.
    """
    sessions = data.sessions if data.sessions is not None else sessions_from_interactions(data.interactions)
    order = np.lexsort((sessions["position"].to_numpy(), sessions["session_id"].to_numpy()))
    if np.all(order[1:] > order[:-1]):
        order = None  # already in session order
    columns = {
        "session_id": _values(sessions["session_id"], np.int64, order),
        "item_id": _codes(sessions["item_id"], order),
        "position": _values(sessions["position"], np.int32, order),
        "timestamp": _values(sessions["timestamp"], np.int64, order),
    }
    return _batched(columns, batch_size, cache)


def sessions_from_interactions(interactions: pd.DataFrame) -> pd.DataFrame:
    """One session per user: their interactions by (timestamp, item id), session ids in user id order."""
    user_codes, user_ids = pd.factorize(interactions["user_id"])
    user_rank = np.empty(len(user_ids), dtype=np.int64)
    user_rank[np.argsort(id_sort_key(pd.Series(user_ids)).to_numpy(), kind="stable")] = np.arange(len(user_ids))
    item_codes, item_ids = pd.factorize(interactions["item_id"])
    item_rank = np.empty(len(item_ids), dtype=np.int64)
    item_rank[np.argsort(id_sort_key(pd.Series(item_ids)).to_numpy(), kind="stable")] = np.arange(len(item_ids))
    session = user_rank[user_codes]
    timestamp = interactions["timestamp"].to_numpy(np.int64)
    order = np.lexsort((item_rank[item_codes], timestamp, session))
    session = session[order]
    starts = np.flatnonzero(np.diff(session, prepend=-1) != 0)  # prepend: session ids are >= 0
    lengths = np.diff(np.append(starts, len(session)))
    position = (np.arange(len(session)) - np.repeat(starts, lengths)).astype(np.int32)
    return pd.DataFrame(
        {
            "session_id": session,
            "user_id": interactions["user_id"].to_numpy()[order],
            "item_id": interactions["item_id"].to_numpy()[order],
            "position": position,
            "timestamp": timestamp[order],
        }
    )


def _codes(column: pd.Series, order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(int32 codes in row order, vocabulary as bytes) of a str column."""
    codes, uniques = pd.factorize(column)
    codes = codes.astype(np.int32)
    vocabulary = np.array([str(u).encode("utf-8") for u in uniques], dtype=object)
    return (codes if order is None else codes[order]), vocabulary


def _values(column: pd.Series, dtype, order: np.ndarray | None) -> np.ndarray:
    values = column.to_numpy(dtype=dtype)
    return values if order is None else values[order]


def _batched(columns: dict, batch_size: int, cache: bool) -> tf.data.Dataset:
    """One element per batch; id columns are (codes, vocabulary) and become strings per batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    arrays = {k: v[0] if isinstance(v, tuple) else v for k, v in columns.items()}
    vocabularies = {k: tf.constant(v[1], dtype=tf.string) for k, v in columns.items() if isinstance(v, tuple)}
    n = len(next(iter(arrays.values())))
    full = n // batch_size * batch_size
    parts = []
    if full:
        parts.append(
            tf.data.Dataset.from_tensor_slices({k: a[:full].reshape(-1, batch_size) for k, a in arrays.items()})
        )
    if n > full or not parts:
        parts.append(tf.data.Dataset.from_tensors({k: a[full:] for k, a in arrays.items()}))
    ds = parts[0]
    for part in parts[1:]:
        ds = ds.concatenate(part)

    def decode(batch: dict) -> dict:
        return {k: tf.gather(vocabularies[k], v) if k in vocabularies else v for k, v in batch.items()}

    ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    return ds.prefetch(AUTOTUNE)
