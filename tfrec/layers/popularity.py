"""Item interaction counts, fitted from tf.data with the Keras adapt pattern."""
from __future__ import annotations

import numpy as np

from tfrec._keras import keras, tf


class PopularityCounts(keras.layers.Layer):
    """Weighted interaction count per item.

    count[i] = sum over interactions (u, i, r, t) of  w_r * w_t, where
      w_r = r if ``rating_weighted`` else 1, and
      w_t = 0.5 ** ((t_max - t) / time_half_life) if ``time_half_life`` else 1
    (``t_max`` is the latest timestamp in the data; ``time_half_life`` is in timestamp units,
    seconds for MovieLens). Row 0 (out-of-vocabulary) stays 0.

    Fitted in one streaming pass: ``reset_state(n_items)``, ``update_state(item_idx,
    rating, timestamp)`` per batch, ``finalize_state()``. Time decay is exact in one pass:
    the running sums are kept relative to the largest timestamp seen so far and rescaled
    when it grows. Weight: ``counts`` float64[n_items + 1].
    """

    def __init__(self, rating_weighted: bool = False, time_half_life: float | None = None, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.rating_weighted = rating_weighted
        self.time_half_life = time_half_life
        self.counts = tf.Variable(tf.zeros([1], tf.float64), shape=tf.TensorShape([None]), trainable=False, name="counts")
        self._reference_time = tf.Variable(tf.constant(-(2**62), tf.int64), trainable=False, name="reference_time")

    def reset_state(self, n_items: int) -> None:
        self.counts.assign(tf.zeros([n_items], tf.float64))
        self._reference_time.assign(-(2**62))

    def update_state(self, item_idx: tf.Tensor, rating: tf.Tensor, timestamp: tf.Tensor) -> None:
        weights = tf.cast(rating, tf.float64) if self.rating_weighted else tf.ones_like(rating, tf.float64)
        if self.time_half_life:
            new_reference = tf.maximum(self._reference_time, tf.reduce_max(timestamp))
            rescale = tf.pow(0.5, tf.cast(new_reference - self._reference_time, tf.float64) / self.time_half_life)
            self.counts.assign(self.counts * rescale)
            self._reference_time.assign(new_reference)
            age = tf.cast(new_reference - timestamp, tf.float64)
            weights = weights * tf.pow(0.5, age / self.time_half_life)
        self.counts.scatter_add(tf.IndexedSlices(weights, item_idx))

    def combine_state(self, collectives) -> None:
        """Sum the workers' partial counts (``tfrec.distribute.collectives``). With time
        decay, each worker's counts are first rescaled from its own latest timestamp to
        the latest of all workers (equal to a one-process fit to about 1e-15 relative:
        the decay factors are applied in two steps instead of one)."""
        if not collectives.distributed:
            return
        counts = self.counts.numpy()
        if self.time_half_life:
            local = int(self._reference_time.numpy())
            latest = collectives.max(local)
            counts = counts * 0.5 ** ((latest - local) / float(self.time_half_life)) if local > -(2**62) else np.zeros_like(counts)
            self._reference_time.assign(latest)
        self.counts.assign(collectives.sum(counts))

    def finalize_state(self) -> None:
        self.built = True

    def call(self, item_idx: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.counts, item_idx)

    def get_config(self) -> dict:
        return {**super().get_config(), "rating_weighted": self.rating_weighted, "time_half_life": self.time_half_life}
