"""tf.data batches for fitting: the adapt pass, and deterministic, resumable training epochs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec._keras import tf


def indexed_batches(indexed: pd.DataFrame, batch_size: int) -> tf.data.Dataset:
    """tf.data over integer-indexed interactions, in (user, time) order, prefetched.

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
    return starts.map(lambda start: {key: column[start : start + batch_size] for key, column in tensors.items()}).prefetch(
        tf.data.AUTOTUNE
    )


def epoch_batches(columns: dict[str, np.ndarray], batch_size: int, seed: int, first_epoch: int, epochs: int) -> tf.data.Dataset:
    """Shuffled batches for epochs ``first_epoch .. epochs - 1``, one dataset for all of them.

    Epoch ``e`` visits the rows in the order ``stateless_shuffle(range(n), seed=[seed, e])``,
    so the order of every epoch is a function of (seed, epoch) alone: a fit resumed at
    epoch ``e`` sees exactly the batches an uninterrupted fit would have seen. Each
    element is a dict of the columns gathered for one batch (the last batch of an epoch
    may be smaller); pass ``steps_per_epoch=ceil(n / batch_size)`` to ``fit``.
    """
    n = len(next(iter(columns.values())))
    tensors = {key: tf.constant(value) for key, value in columns.items()}

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    batches = tf.data.Dataset.range(first_epoch, max(first_epoch, epochs)).flat_map(epoch_order)
    return batches.map(lambda index: {key: tf.gather(t, index) for key, t in tensors.items()}).prefetch(tf.data.AUTOTUNE)


def ordered_batches(columns: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Batches in row order (validation data), cached after the first pass."""
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): a random ``round(n * fraction)`` rows drawn from ``seed``."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction)) if fraction > 0 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])
