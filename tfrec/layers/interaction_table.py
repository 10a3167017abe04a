"""Each user's training items, stored sparse (CSR), for exclusion and history."""
from __future__ import annotations

import numpy as np

from tfrec._keras import keras, tf


class UserItemTable(keras.layers.Layer):
    """Row-compressed table: row u holds user u's training item indices in time order.

    Weights: ``row_splits`` int64[n_users + 2] (row 0 is the out-of-vocabulary user and is
    empty) and ``item_indices`` int64[nnz]. ``rows(user_idx[B])`` returns a ragged
    int64[B, None], the items ``recommend`` excludes (``mask_ragged`` sets their scores to
    -inf).
    """

    def __init__(self, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.row_splits = tf.Variable([0, 0], shape=tf.TensorShape([None]), dtype=tf.int64, trainable=False, name="row_splits")
        self.item_indices = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="item_indices")

    def set_rows(self, user_idx: np.ndarray, item_idx: np.ndarray, n_users: int) -> None:
        """user_idx/item_idx: int arrays already sorted by (user, time); n_users counts slot 0."""
        counts = np.bincount(user_idx, minlength=n_users)
        self.row_splits.assign(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.item_indices.assign(np.asarray(item_idx, dtype=np.int64))
        self.built = True

    def rows(self, user_idx: tf.Tensor) -> tf.RaggedTensor:
        table = tf.RaggedTensor.from_row_splits(self.item_indices, self.row_splits, validate=False)
        return tf.gather(table, user_idx)


def mask_ragged(scores: tf.Tensor, columns: tf.RaggedTensor) -> tf.Tensor:
    """scores[b, columns[b, j]] = -inf for every (b, j)."""
    index = tf.stack([columns.value_rowids(), tf.cast(columns.flat_values, tf.int64)], axis=1)
    minus_inf = tf.fill(tf.shape(index)[:1], tf.constant(-np.inf, scores.dtype))
    return tf.tensor_scatter_nd_update(scores, index, minus_inf)
