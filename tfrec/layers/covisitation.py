"""Item-item co-visitation: vectorised pair counting and a sparse top-N neighbour table.

``count_pairs`` counts, with numpy and without Python loops over events, how often two
items occur close together in the same session; ``top_neighbours`` keeps the N heaviest
neighbours of each item; ``CoVisitationTable`` stores them as fixed-size
``[n_items + 1, N]`` index and weight tensors and scores histories with TF ops.

Counting costs one ``np.sort`` of the pair keys (about 4 keys per event with window 5)
and one of the surviving pairs; no dense item-by-item matrix is ever built. With
``time_half_life`` the weights are real numbers per pair and the aggregation needs an
``argsort`` instead, several times slower.
"""
from __future__ import annotations

import numpy as np

from tfrec._keras import keras, tf

_INT64_LIMIT = 2**63 - 1


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Indices where a new value starts in a sorted array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def count_pairs(
    items: np.ndarray,
    session: np.ndarray,
    timestamp: np.ndarray | None = None,
    *,
    window: int = 5,
    max_time_gap: float | None = None,
    position_decay: float = 1.0,
    time_half_life: float | None = None,
    directed: bool = False,
    sort: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted co-visitation counts of item pairs.

    Input: one row per event, rows grouped by session and in order within a session:
    ``items`` int[m] (indices >= 1; 0 = unknown item: it keeps its position but forms no
    pair), ``session`` int[m] (equal values = same session; sessions contiguous),
    ``timestamp`` int[m] (needed for ``max_time_gap`` / ``time_half_life``).

    Every pair of positions (p, q = p + d) in the same session with 1 <= d < ``window``,
    ``items[p] != items[q]``, both known, and ``|t_q - t_p| <= max_time_gap`` (when set),
    adds to C[items[p], items[q]] the weight

        w(p, q) = position_decay ** (d - 1) * 0.5 ** (|t_q - t_p| / time_half_life)

    (the second factor only with ``time_half_life``). ``directed=False`` (symmetric)
    also adds w(p, q) to C[items[q], items[p]]; ``directed=True`` keeps only "q follows
    p" (next-item counts).

    Returns ``(row, col, weight)``: int64, int64, float64 arrays of the non-zero C[row, col],
    sorted by (row, col) (with ``sort=False`` and symmetric counts: the pairs with
    row < col in that order, then their mirror images, which saves an argsort when the
    caller sorts anyway, as ``top_neighbours`` does). Vectorised: one array operation per
    offset d, then one sort of the pair keys.
    """
    items = np.asarray(items, dtype=np.int64)
    session = np.asarray(session)
    m = len(items)
    if len(session) != m or (timestamp is not None and len(timestamp) != m):
        raise ValueError("count_pairs: items, session and timestamp must have the same length")
    timed = max_time_gap is not None or time_half_life is not None
    if timed and timestamp is None:
        raise ValueError("count_pairs: max_time_gap / time_half_life need timestamps")
    timestamp = None if timestamp is None else np.asarray(timestamp, dtype=np.int64)
    n_slots = int(items.max()) + 1 if m else 1
    if n_slots * n_slots * window >= _INT64_LIMIT:
        raise ValueError(f"count_pairs: {n_slots - 1} items are too many for int64 pair keys")
    keys, weights = [], []
    for d in range(1, min(window, m)):
        a, b = items[:-d], items[d:]
        ok = (session[:-d] == session[d:]) & (a > 0) & (b > 0) & (a != b)
        gap = None
        if timed:
            gap = np.abs(timestamp[d:] - timestamp[:-d])
            if max_time_gap is not None:
                ok &= gap <= max_time_gap
            gap = gap[ok]
        a, b = a[ok], b[ok]
        if not directed:
            a, b = np.minimum(a, b), np.maximum(a, b)
        key = a * n_slots + b
        if time_half_life is not None:
            keys.append(key)
            weights.append(position_decay ** (d - 1) * np.exp2(-gap / float(time_half_life)))
        elif position_decay != 1.0:  # the offset rides in the key, so one sort aggregates everything exactly
            keys.append(key * window + (d - 1))
        else:  # every pair weighs 1: counts
            keys.append(key)
    if not keys:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float64)
    key = np.concatenate(keys)
    del keys
    if time_half_life is not None:
        order = np.argsort(key, kind="stable")
        key = key[order]
        weight = np.concatenate(weights)[order]
        del order
        starts = _run_starts(key)
        pair = key[starts]
        total = np.add.reduceat(weight, starts) if len(key) else np.zeros(0)
    elif position_decay != 1.0:
        key.sort()
        starts = _run_starts(key)
        count = np.diff(np.append(starts, len(key)))
        coded = key[starts]
        decay = float(position_decay) ** np.arange(window, dtype=np.float64)
        per_offset = count * decay[coded % window]
        pair_code = coded // window
        pair_starts = _run_starts(pair_code)
        pair = pair_code[pair_starts]
        total = np.add.reduceat(per_offset, pair_starts) if len(pair_code) else np.zeros(0)
    else:
        key.sort()
        starts = _run_starts(key)
        pair = key[starts]
        total = np.diff(np.append(starts, len(key))).astype(np.float64)
    row, col = pair // n_slots, pair % n_slots
    if not directed:
        row, col, total = np.concatenate([row, col]), np.concatenate([col, row]), np.concatenate([total, total])
        if sort:
            order = np.argsort(row * n_slots + col, kind="stable")
            row, col, total = row[order], col[order], total[order]
    return row, col, total.astype(np.float64)


def top_neighbours(
    row: np.ndarray, col: np.ndarray, weight: np.ndarray, n_rows: int, top_n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``top_n`` heaviest neighbours of every row: ties by lower column index.

    Returns ``neighbours`` int64[n_rows, top_n] (0 = empty slot), ``weights``
    float32[n_rows, top_n] (0 in empty slots), heaviest first, and ``degree``
    int64[n_rows], the number of distinct neighbours before truncation. Implemented with
    one ``np.sort`` of a composite int64 key (row, weight rank, column).
    """
    row = np.asarray(row, np.int64)
    col = np.asarray(col, np.int64)
    weight = np.asarray(weight, np.float64)
    neighbours = np.zeros((n_rows, top_n), np.int64)
    weights = np.zeros((n_rows, top_n), np.float32)
    degree = np.bincount(row, minlength=n_rows).astype(np.int64)
    if len(row) == 0:
        return neighbours, weights, degree
    values = np.unique(weight)  # a sort; searchsorted beats return_inverse's argsort
    rank = np.searchsorted(values, weight)
    n_values = len(values)
    n_cols = int(col.max()) + 1
    if n_rows * n_values * n_cols < _INT64_LIMIT:
        composite = (row * n_values + (n_values - 1 - rank)) * n_cols + col
        composite.sort()
        col = composite % n_cols
        rest = composite // n_cols
        weight = values[n_values - 1 - rest % n_values]
        row = rest // n_values
        del composite, rest
    else:  # astronomically many distinct weights: a (slower) lexicographic sort
        order = np.lexsort((col, -weight, row))
        row, col, weight = row[order], col[order], weight[order]
    starts = np.concatenate(([0], np.cumsum(degree)[:-1]))
    slot = np.arange(len(row)) - starts[row]
    keep = slot < top_n
    neighbours[row[keep], slot[keep]] = col[keep]
    weights[row[keep], slot[keep]] = weight[keep]
    return neighbours, weights, degree


class CoVisitationTable(keras.layers.Layer):
    """Top-N co-visitation neighbours per item, stored sparse as fixed-size tables.

    Weights: ``neighbours`` int64[n_items + 1, N] (0 = empty slot), ``weights``
    float32[n_items + 1, N] (C[i, neighbours[i, j]], heaviest first, 0 in empty slots),
    ``degree`` int64[n_items + 1] (distinct neighbours before truncation). Row 0 is the
    out-of-vocabulary item and is empty.

    ``scores(items, query, item_weights, batch, n_slots)``: for events (query b, item i,
    weight a), score[b, c] = sum of a * C[i, c] over the query's events and the stored
    neighbours c of i: float32[batch, n_slots].
    """

    def __init__(self, top_n: int = 100, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.top_n = top_n
        self.neighbours = tf.Variable(tf.zeros([1, 1], tf.int64), shape=tf.TensorShape([None, None]), trainable=False, name="neighbours")
        self.weights_table = tf.Variable(tf.zeros([1, 1], tf.float32), shape=tf.TensorShape([None, None]), trainable=False, name="weights")
        self.degree = tf.Variable(tf.zeros([1], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="degree")

    def set_counts(self, row: np.ndarray, col: np.ndarray, weight: np.ndarray, n_slots: int) -> None:
        """Keep the top-N of the counts from ``count_pairs`` (n_slots = n_items + 1)."""
        neighbours, weights, degree = top_neighbours(row, col, weight, n_slots, self.top_n)
        self.neighbours.assign(neighbours)
        self.weights_table.assign(weights)
        self.degree.assign(degree)
        self.built = True

    def scores(self, items: tf.Tensor, query: tf.Tensor, item_weights: tf.Tensor, batch: tf.Tensor, n_slots: tf.Tensor) -> tf.Tensor:
        neighbours = tf.gather(self.neighbours, items)  # [M, N]
        weights = tf.gather(self.weights_table, items) * item_weights[:, tf.newaxis]
        batch = tf.cast(batch, tf.int64)
        n_slots = tf.cast(n_slots, tf.int64)
        segment = tf.cast(query, tf.int64)[:, tf.newaxis] * n_slots + neighbours
        flat = tf.math.unsorted_segment_sum(tf.reshape(weights, [-1]), tf.reshape(segment, [-1]), batch * n_slots)
        return tf.reshape(flat, tf.stack([batch, n_slots]))

    def call(self, items: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """item_idx[...] -> (neighbours int64[..., N], weights float32[..., N])."""
        return tf.gather(self.neighbours, items), tf.gather(self.weights_table, items)

    def get_config(self) -> dict:
        return {**super().get_config(), "top_n": self.top_n}
