"""Optimizers of the trained models."""
from __future__ import annotations

from tfrec._keras import keras, tf


class LazyAdam(keras.optimizers.Adam):
    """Adam whose sparse (embedding-table) updates touch only the rows in the batch.

    Keras' Adam, given the ``IndexedSlices`` gradient of an embedding lookup, decays the
    first and second moments of *every* row of the table and moves every row, at every
    step: the work of a step grows with the table (138k users x 64 floats, three times
    over, per step at MovieLens-20M size), not with the batch. LazyAdam (the rule of
    TensorFlow Addons' ``LazyAdam``, a library no longer maintained) sums the gradient
    of duplicate rows, then applies Adam's formulas to those rows only::

        m_r = b1 m_r + (1 - b1) g_r,   v_r = b2 v_r + (1 - b2) g_r^2
        w_r -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m_r / (sqrt(v_r) + eps)

    Rows absent from the batch keep their moments and values. Dense gradients (the dense
    layers' kernels and biases) take Keras' Adam step unchanged. ``amsgrad`` is not
    supported.
    """

    def __init__(self, learning_rate: float = 0.001, **kwargs):
        if kwargs.get("amsgrad"):
            raise ValueError("LazyAdam does not support amsgrad")
        kwargs.setdefault("jit_compile", False)  # tf.unique has no XLA kernel
        super().__init__(learning_rate=learning_rate, **kwargs)

    def update_step(self, gradient, variable):
        if not isinstance(gradient, tf.IndexedSlices):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        beta_2_power = tf.pow(beta_2, step)
        alpha = tf.cast(self.learning_rate, dtype) * tf.sqrt(1 - beta_2_power) / (1 - tf.pow(beta_1, step))
        epsilon = self.epsilon * tf.sqrt(1 - beta_2_power) if getattr(self, "adaptive_epsilon", False) else self.epsilon
        key = self._var_key(variable)
        m = self._momentums[self._index_dict[key]]
        v = self._velocities[self._index_dict[key]]
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
        m_rows = beta_1 * tf.gather(m, rows) + (1 - beta_1) * grad
        v_rows = beta_2 * tf.gather(v, rows) + (1 - beta_2) * tf.square(grad)
        m.scatter_update(tf.IndexedSlices(m_rows, rows))
        v.scatter_update(tf.IndexedSlices(v_rows, rows))
        variable.scatter_sub(tf.IndexedSlices(alpha * m_rows / (tf.sqrt(v_rows) + epsilon), rows))
