"""The first pass of every fit: string ids to indices, streamed from ``tf.data`` batches."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.data.dataset import DataError, id_sort_key


class _FirstSeenCoder:
    """Codes 0, 1, 2, ... for strings in the order they are first seen, batch by batch.

    A ``MutableHashTable`` (string -> code) grows with each batch's new ids
    (``tf.unique`` keeps first-occurrence order), so coding a batch costs one unique and
    one lookup in TensorFlow; the ids themselves are kept once, in first-seen order.
    """

    def __init__(self) -> None:
        self.table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=-1)
        self.size = 0
        self.new_ids: list[np.ndarray] = []

    def encode_column(self, values: pd.Series) -> tuple[np.ndarray, int | None]:
        """(codes, the first row holding an empty id or None) of an in-memory column of
        str ids: one ``pd.factorize`` pass (first-seen order, as ``encode`` would give),
        and TensorFlow only on the distinct ids."""
        codes, uniques = pd.factorize(values, sort=False)
        uniques = np.asarray(uniques, dtype=object).astype(str)
        empty = np.flatnonzero(uniques == "")
        if len(empty):
            return codes, int(np.flatnonzero(codes == empty[0])[0])
        if len(uniques) == 0:
            return codes.astype(np.int64), None
        return self.encode(tf.constant(uniques, tf.string))[codes], None

    def encode(self, ids: tf.Tensor) -> np.ndarray:
        unique, position = tf.unique(ids)
        codes = self.table.lookup(unique)
        new = tf.where(codes < 0)
        n_new = int(tf.shape(new)[0])
        if n_new:
            new_codes = tf.range(self.size, self.size + n_new, dtype=tf.int64)
            fresh = tf.gather_nd(unique, new)
            self.table.insert(fresh, new_codes)
            codes = tf.tensor_scatter_nd_update(codes, new, new_codes)
            self.new_ids.append(fresh.numpy())
            self.size += n_new
        return tf.gather(codes, position).numpy()

    def vocabulary(self) -> np.ndarray:
        """The ids in first-seen order, as an object array of str."""
        if not self.new_ids:
            return np.zeros(0, dtype=object)
        raw = np.concatenate(self.new_ids)
        return np.array([value.decode("utf-8") for value in raw], dtype=object)


def user_time_order(user_idx: np.ndarray, timestamp: np.ndarray, item_idx: np.ndarray) -> np.ndarray | None:
    """The stable row order by (user, timestamp, item) of int64[n] columns: int64[n], or
    None when the rows are in that order already.

    One stable argsort of the packed key ``(user * T + t) * I + item`` (t: the timestamp
    minus the smallest, or its rank when that range is too wide to pack; ``np.lexsort``
    when even ranks overflow): 3.5x faster than ``np.lexsort`` at 5M rows. The key is
    built in place and checked for order first (sorted input costs one pass).
    """
    if len(user_idx) == 0:
        return None
    n_users, n_items = int(user_idx.max()) + 1, int(item_idx.max()) + 1
    t_min, t_span = int(timestamp.min()), int(timestamp.max()) - int(timestamp.min()) + 1
    if n_users * t_span * n_items >= 2**62:
        timestamp = np.unique(timestamp, return_inverse=True)[1].reshape(-1).astype(np.int64)
        t_min, t_span = 0, int(timestamp.max()) + 1
        if n_users * t_span * n_items >= 2**62:
            order = np.lexsort((item_idx, timestamp, user_idx))
            return None if np.array_equal(order, np.arange(len(order))) else order
    key = np.multiply(user_idx, t_span, dtype=np.int64)
    key += timestamp
    key -= t_min
    key *= n_items
    key += item_idx
    if np.all(key[1:] >= key[:-1]):
        return None
    return np.argsort(key, kind="stable")


def _sorted_ranks(first_seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids in ``id_sort_key`` order, rank of each first-seen code in that order)."""
    order = np.argsort(id_sort_key(pd.Series(first_seen, dtype=str)).to_numpy(), kind="stable")
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return first_seen[order], rank


class InteractionLog:
    """The vocabulary pass: streams ``model.fit``'s batches into vocabularies and an
    integer log of the interactions, the Keras adapt pattern (``update_state`` per
    batch, ``finalize_state`` at the end), like ``StringLookup.adapt``.

    Per batch (``tfrec.data.pipelines.interaction_batches``' dicts): user and item ids
    become first-seen codes (``_FirstSeenCoder``) and the batch is kept as int64 codes,
    float32 ratings and int64 timestamps (28 bytes per interaction; no strings are
    kept but each distinct id once). A batch without ``timestamp`` gets the rows'
    positions in the stream (row order is time).

    ``finalize_state()`` returns ``(user_ids, item_ids, indexed)``: the vocabularies in
    ``id_sort_key`` order (numeric ids numerically; lower index = lower id, which
    breaks ties), and the interactions as a DataFrame with ``user_idx``, ``item_idx``
    (1-based: 0 is the out-of-vocabulary slot), ``rating``, ``timestamp``, in
    (user, timestamp, item) order, stable.
    """

    def __init__(self, source: str = "the dataset") -> None:
        self.source = source
        self.reset_state()

    def reset_state(self) -> None:
        self.users = _FirstSeenCoder()
        self.items = _FirstSeenCoder()
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows = 0

    def update_state(self, batch: dict[str, tf.Tensor]) -> None:
        for key in ("user_id", "item_id"):
            if bool(tf.reduce_any(tf.strings.length(batch[key]) == 0)):
                raise DataError(f"{self.source}: an empty {key} in the batch starting at row {self.rows:,}; ids must be non-empty strings")
        rating = batch["rating"].numpy()
        if not np.all(np.isfinite(rating)):
            bad = int(np.flatnonzero(~np.isfinite(rating))[0])
            raise DataError(f"{self.source}: rating {rating[bad]} at row {self.rows + bad:,} is not a finite number")
        size = len(rating)
        if "timestamp" in batch:
            timestamp = batch["timestamp"].numpy()
        else:
            timestamp = np.arange(self.rows, self.rows + size, dtype=np.int64)
        self.chunks.append((self.users.encode(batch["user_id"]), self.items.encode(batch["item_id"]), rating, timestamp))
        self.rows += size

    def update_frame(self, frame: pd.DataFrame) -> None:
        """``update_state`` for interactions already in memory (a ``tfrec.data.Dataset``'s
        frame with str ids): the same codes, from one pandas pass instead of batches of
        strings through ``tf.data``."""
        rating = frame["rating"].to_numpy(np.float32)
        if not np.all(np.isfinite(rating)):
            bad = int(np.flatnonzero(~np.isfinite(rating))[0])
            raise DataError(f"{self.source}: rating {rating[bad]} at row {self.rows + bad:,} is not a finite number")
        timestamp = frame["timestamp"].to_numpy(np.int64)
        codes = {}
        for key, coder in (("user_id", self.users), ("item_id", self.items)):
            codes[key], empty_row = coder.encode_column(frame[key])
            if empty_row is not None:
                raise DataError(f"{self.source}: an empty {key} at row {self.rows + empty_row:,}; ids must be non-empty strings")
        self.chunks.append((codes["user_id"], codes["item_id"], rating, timestamp))
        self.rows += len(frame)

    def finalize_state(self, allow_empty: bool = False) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
        """See the class docstring. ``allow_empty``: no rows give empty results (a worker
        whose shard is empty) instead of a ``DataError``."""
        if not self.rows:
            if not allow_empty:
                raise DataError(f"{self.source}: no interactions to fit on")
            empty = np.zeros(0, dtype=object)
            return empty, empty, _frame(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64))
        user_codes, item_codes, rating, timestamp = (parts[0] if len(parts) == 1 else np.concatenate(parts) for parts in zip(*self.chunks))
        self.chunks = []
        user_ids, user_rank = _sorted_ranks(self.users.vocabulary())
        item_ids, item_rank = _sorted_ranks(self.items.vocabulary())
        columns = {
            "user_idx": user_rank[user_codes] + 1,  # index 0 is the out-of-vocabulary slot
            "item_idx": item_rank[item_codes] + 1,
            "rating": rating.astype(np.float32, copy=False),
            "timestamp": timestamp.astype(np.int64, copy=False),
        }
        del user_codes, item_codes
        return user_ids, item_ids, _frame(**columns)


def _frame(user_idx: np.ndarray, item_idx: np.ndarray, rating: np.ndarray, timestamp: np.ndarray) -> pd.DataFrame:
    """The indexed interactions as ``InteractionLog.finalize_state`` returns them: in
    (user, timestamp, item) order, stable."""
    columns = {"user_idx": user_idx, "item_idx": item_idx, "rating": rating.astype(np.float32, copy=False), "timestamp": timestamp}
    order = user_time_order(user_idx, timestamp, item_idx)
    if order is not None:
        columns = {key: value[order] for key, value in columns.items()}
    return pd.DataFrame(columns, copy=False)  # copy=False: no block copy


def _in_sort_order(ids: np.ndarray) -> np.ndarray:
    """The distinct ``ids`` in ``id_sort_key`` order."""
    distinct = np.array(list(dict.fromkeys(ids.tolist())), dtype=object)
    return _sorted_ranks(distinct)[0] if len(distinct) else distinct


def combine_interaction_logs(user_ids: np.ndarray, item_ids: np.ndarray, indexed: pd.DataFrame, collectives, source: str) -> tuple:
    """The vocabulary pass of a distributed fit, combined across workers.

    Each worker passes what ``InteractionLog.finalize_state`` gave for its shard (its own
    vocabularies and indices). Returns ``(user_ids, item_ids, shard, indexed)``: the
    vocabularies of all workers' ids (gathered strings, in ``id_sort_key`` order: the
    vocabularies a one-process fit builds), this worker's interactions re-indexed with
    them, and every worker's (gathered: 28 bytes per interaction received by each worker,
    the table the SavedModel holds), in the order of a one-process fit. That order is
    exact because each user's rows are on one worker in their original order
    (``tfrec.distribute.sharding``) and the sort is stable.
    """
    all_users = _in_sort_order(collectives.gather_strings(user_ids))
    all_items = _in_sort_order(collectives.gather_strings(item_ids))
    if len(all_users) == 0:
        raise DataError(f"{source}: no interactions to fit on (on any worker)")
    user_index = np.concatenate([[0], pd.Index(all_users).get_indexer(user_ids) + 1]).astype(np.int64)
    item_index = np.concatenate([[0], pd.Index(all_items).get_indexer(item_ids) + 1]).astype(np.int64)
    shard = _frame(
        user_index[indexed["user_idx"].to_numpy()], item_index[indexed["item_idx"].to_numpy()],
        indexed["rating"].to_numpy(np.float32), indexed["timestamp"].to_numpy(np.int64),
    )
    rows = np.stack([shard["user_idx"].to_numpy(), shard["item_idx"].to_numpy(), shard["rating"].to_numpy(np.float64).view(np.int64),
                     shard["timestamp"].to_numpy()], axis=1)
    rows = collectives.gather(rows.reshape(-1, 4))
    indexed = _frame(rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy().view(np.float64), rows[:, 3].copy())
    return all_users, all_items, shard, indexed
