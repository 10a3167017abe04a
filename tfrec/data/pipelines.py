"""Every tf.data pipeline of tfrec: what ``model.fit`` reads, and what fitting feeds itself.

- ``interactions_dataset`` / ``sessions_dataset``: batches with string ids from a
  ``Dataset``, for ``model.fit`` and any Keras pipeline;
- ``interaction_batches`` / ``session_batches``: a user's ``tf.data.Dataset`` checked
  and normalised for ``model.fit`` (the one place that says which datasets fit accepts);
- ``indexed_batches``, ``epoch_batches``, ``ordered_batches``: batches of integer
  indices, for the adapt pass and the training epochs of the trained models.

Ids travel as int32 codes into a small vocabulary and become ``tf.string`` batch by batch
(one ``tf.gather`` per batch), so a 20M-row pipeline holds 4 bytes per id until it is
cached. Elements are whole batches (one dataset element per batch, not per row).
"""
from __future__ import annotations

import math

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


# --------------------------------------------------------------- what model.fit reads
FIT_KEYS = ("user_id", "item_id", "rating", "timestamp")
#: Rows per batch where fitting makes its own batches (rows given one at a time; the adapt pass).
DEFAULT_FIT_BATCH = 2**18


class DatasetSpecError(TypeError):
    """A ``tf.data.Dataset`` that ``model.fit`` cannot read, with a message naming the fix."""


def interaction_batches(dataset: tf.data.Dataset, batch_size: int = DEFAULT_FIT_BATCH) -> tf.data.Dataset:
    """The batches ``model.fit`` reads, from a user's ``tf.data.Dataset``, checked once up front.

    Accepted elements: dicts with ``user_id`` and ``item_id`` (strings; integer ids are
    converted to their decimal text, so ``make_csv_dataset`` on MovieLens works as is)
    and optionally ``rating`` (any number; default 1.0) and ``timestamp`` (an integer;
    default: the row's position in the stream, so row order is time). Other keys are
    ignored. Elements may be batches (rank 1, what ``tfrec.data.interactions_dataset``
    and ``make_csv_dataset`` yield) or single rows (rank 0; batched here by
    ``batch_size``). Raises ``DatasetSpecError`` (one line, naming the fix) for anything
    else: not a dataset, tuples, missing keys, wrong dtypes, or a dataset that repeats
    forever. Yields ``{"user_id": string[B], "item_id": string[B], "rating": float32[B],
    "timestamp": int64[B]}``, without ``timestamp`` where the data has none.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise DatasetSpecError(
            f"model.fit expects a tf.data.Dataset of dicts with 'user_id' and 'item_id' (and optionally 'rating', "
            f"'timestamp'), or a tfrec.data.Dataset; got {type(dataset).__name__}"
        )
    spec = dataset.element_spec
    if not isinstance(spec, dict):
        hint = " (make_csv_dataset: leave label_name unset)" if isinstance(spec, tuple) else ""
        raise DatasetSpecError(f"model.fit expects dataset elements that are dicts of columns, got {type(spec).__name__}{hint}")
    missing = [key for key in ("user_id", "item_id") if key not in spec]
    if missing:
        raise DatasetSpecError(f"the dataset has no {' and no '.join(map(repr, missing))} column; its columns are {sorted(spec)}")
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise DatasetSpecError(
            "the dataset repeats forever, so the pass over the data would never end: drop .repeat() "
            "(make_csv_dataset: pass num_epochs=1)"
        )
    ranks = {key: spec[key].shape.rank for key in FIT_KEYS if key in spec}
    for key in FIT_KEYS:
        if key not in spec:
            continue
        dtype = spec[key].dtype
        allowed = {
            "user_id": dtype == tf.string or dtype.is_integer,
            "item_id": dtype == tf.string or dtype.is_integer,
            "rating": dtype.is_floating or dtype.is_integer,
            "timestamp": dtype.is_integer,
        }[key]
        if not allowed or ranks[key] not in (0, 1):
            wanted = {"user_id": "string (or integer)", "item_id": "string (or integer)", "rating": "a number", "timestamp": "an integer"}[key]
            raise DatasetSpecError(
                f"dataset column {key!r} must be {wanted} of rank 0 (rows) or 1 (batches), got {dtype.name} of shape {spec[key].shape}"
            )
    if len(set(ranks.values())) != 1:
        raise DatasetSpecError(f"dataset columns must all be rows or all be batches, got ranks {ranks}")
    if next(iter(ranks.values())) == 0:
        dataset = dataset.batch(batch_size)

    def normalise(batch: dict) -> dict:
        def ids(value: tf.Tensor) -> tf.Tensor:
            return value if value.dtype == tf.string else tf.strings.as_string(value)

        size = tf.shape(batch["user_id"])[0]
        out = {
            "user_id": ids(batch["user_id"]),
            "item_id": ids(batch["item_id"]),
            "rating": tf.cast(batch["rating"], tf.float32) if "rating" in batch else tf.ones([size], tf.float32),
        }
        if "timestamp" in batch:
            out["timestamp"] = tf.cast(batch["timestamp"], tf.int64)
        return out

    return dataset.map(normalise, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


SESSION_KEYS = ("session_id", "item_id", "position", "timestamp")


def session_batches(dataset: tf.data.Dataset, batch_size: int = DEFAULT_FIT_BATCH) -> tf.data.Dataset:
    """Session batches for ``model.fit(..., sessions=...)``, checked once up front.

    Elements: dicts with integer ``session_id`` and ``position`` (0-based within the
    session), ``item_id`` (string or integer) and optionally an integer ``timestamp``
    (default 0), as rows or batches (what ``sessions_dataset`` yields). Raises
    ``DatasetSpecError`` naming the fix. Yields ``{"session_id": int64[B], "item_id":
    string[B], "position": int64[B], "timestamp": int64[B]}``.
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise DatasetSpecError(f"sessions must be a tf.data.Dataset or a pandas DataFrame (e.g. data.sessions), got {type(dataset).__name__}")
    spec = dataset.element_spec
    if not isinstance(spec, dict):
        raise DatasetSpecError(f"sessions: dataset elements must be dicts of columns, got {type(spec).__name__}")
    missing = [key for key in SESSION_KEYS[:3] if key not in spec]
    if missing:
        raise DatasetSpecError(f"sessions: the dataset has no column {', '.join(map(repr, missing))}; its columns are {sorted(spec)}")
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise DatasetSpecError("sessions: the dataset repeats forever; drop .repeat() (make_csv_dataset: num_epochs=1)")
    for key in SESSION_KEYS:
        if key in spec and not (spec[key].dtype.is_integer or (key == "item_id" and spec[key].dtype == tf.string)):
            raise DatasetSpecError(f"sessions: column {key!r} must be {'a string or ' if key == 'item_id' else 'an '}integer, got {spec[key].dtype.name}")
    if spec["session_id"].shape.rank == 0:
        dataset = dataset.batch(batch_size)

    def normalise(batch: dict) -> dict:
        item = batch["item_id"]
        return {
            "session_id": tf.cast(batch["session_id"], tf.int64),
            "item_id": item if item.dtype == tf.string else tf.strings.as_string(item),
            "position": tf.cast(batch["position"], tf.int64),
            "timestamp": tf.cast(batch["timestamp"], tf.int64) if "timestamp" in batch else tf.zeros_like(tf.cast(batch["position"], tf.int64)),
        }

    return dataset.map(normalise, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


# ------------------------------------------------------------ batches of fitted indices
def indexed_batches(indexed: pd.DataFrame, batch_size: int) -> tf.data.Dataset:
    """tf.data over integer-indexed interactions, in their row order, prefetched.

    Batches are slices of whole-column tensors (``from_tensor_slices(...).batch`` would
    handle rows one at a time: 50x slower at 5M interactions).
    """
    tensors = {
        "user_idx": tf.constant(indexed["user_idx"].to_numpy(np.int64)),
        "item_idx": tf.constant(indexed["item_idx"].to_numpy(np.int64)),
        "rating": tf.constant(indexed["rating"].to_numpy(np.float32)),
        "timestamp": tf.constant(indexed["timestamp"].to_numpy(np.int64)),
    }
    starts = tf.data.Dataset.range(0, len(indexed), batch_size)
    return starts.map(lambda start: {key: column[start : start + batch_size] for key, column in tensors.items()}).prefetch(AUTOTUNE)


def epoch_batches(
    columns: dict[str, np.ndarray], batch_size: int, seed: int, first_epoch: int, epochs: int, steps_per_epoch: int | None = None
) -> tf.data.Dataset:
    """Shuffled batches for epochs ``first_epoch .. epochs - 1``, one dataset for all of them.

    The batches form one stream of passes over the rows: pass ``p`` visits them in the
    order ``stateless_shuffle(range(n), seed=[seed, p])`` in batches of ``batch_size``
    (the last batch of a pass may be smaller). Epoch ``e`` is the stream's batches
    ``[e * steps_per_epoch, (e + 1) * steps_per_epoch)``; by default ``steps_per_epoch``
    is one pass, ``ceil(n / batch_size)``, so that epoch e is pass e, and a smaller one
    makes epochs that are slices of passes (to validate more often on large data). The
    order is a function of (seed, epoch) alone: a fit resumed at epoch ``e`` sees exactly
    the batches an uninterrupted fit would have seen. Each element is a dict of the
    columns gathered for one batch; pass the same ``steps_per_epoch`` to ``fit``.
    """
    n = len(next(iter(columns.values())))
    tensors = {key: tf.constant(value) for key, value in columns.items()}
    per_pass = max(1, math.ceil(n / batch_size))
    steps = per_pass if steps_per_epoch is None else int(steps_per_epoch)
    first_batch, end_batch = first_epoch * steps, max(first_epoch, epochs) * steps
    first_pass, end_pass = first_batch // per_pass, math.ceil(end_batch / per_pass)

    def pass_order(index: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), index]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    batches = tf.data.Dataset.range(first_pass, end_pass).flat_map(pass_order)
    batches = batches.skip(first_batch - first_pass * per_pass).take(end_batch - first_batch)
    return batches.map(lambda index: {key: tf.gather(t, index) for key, t in tensors.items()}).prefetch(AUTOTUNE)


def ordered_batches(columns: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Batches in row order (validation data), cached after the first pass."""
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size).cache().prefetch(AUTOTUNE)


def split_validation(n: int, fraction: float, seed: int, max_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): a random ``round(n * fraction)`` rows (at most
    ``max_rows``) drawn from ``seed``."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction)) if fraction > 0 else 0
    if max_rows is not None:
        n_val = min(n_val, int(max_rows))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
