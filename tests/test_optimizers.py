"""LazyAdam: Adam's formulas on the rows in the batch only, Keras' Adam on dense gradients."""
from __future__ import annotations

import numpy as np
import pytest

from tfrec._keras import keras, tf
from tfrec.models.optimizers import LazyAdam


def numpy_lazy_adam(table, steps, lr=0.01, b1=0.9, b2=0.999, eps=1e-7):
    """Reference: per step, duplicate rows summed, then Adam on those rows only."""
    w, m, v = table.copy(), np.zeros_like(table), np.zeros_like(table)
    for t, (rows, grads) in enumerate(steps, start=1):
        summed = {}
        for r, g in zip(rows, grads):
            summed[r] = summed.get(r, 0) + g
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for r, g in summed.items():
            m[r] = b1 * m[r] + (1 - b1) * g
            v[r] = b2 * v[r] + (1 - b2) * g * g
            w[r] -= alpha * m[r] / (np.sqrt(v[r]) + eps)
    return w


def test_sparse_rows_follow_adam_and_absent_rows_stay():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(6, 3))
    steps = [([1, 3, 1], rng.normal(size=(3, 3))), ([3, 4], rng.normal(size=(2, 3))), ([1], rng.normal(size=(1, 3)))]
    variable = tf.Variable(table)
    optimizer = LazyAdam(learning_rate=0.01)
    for rows, grads in steps:
        optimizer.apply_gradients([(tf.IndexedSlices(tf.constant(grads), tf.constant(rows), tf.constant(table.shape)), variable)])
    # the learning rate is a float32 variable in Keras: agreement to float32 precision
    np.testing.assert_allclose(variable.numpy(), numpy_lazy_adam(table, steps), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(variable.numpy()[[0, 2, 5]], table[[0, 2, 5]])  # never in a batch: untouched


def test_dense_gradients_take_keras_adam_step():
    rng = np.random.default_rng(1)
    start = rng.normal(size=(4, 2)).astype(np.float32)
    lazy, plain = tf.Variable(start), tf.Variable(start)
    lazy_optimizer, plain_optimizer = LazyAdam(learning_rate=0.05), keras.optimizers.Adam(learning_rate=0.05, jit_compile=False)
    for _ in range(3):
        grad = tf.constant(rng.normal(size=(4, 2)).astype(np.float32))
        lazy_optimizer.apply_gradients([(grad, lazy)])
        plain_optimizer.apply_gradients([(grad, plain)])
    np.testing.assert_array_equal(lazy.numpy(), plain.numpy())


def test_embedding_gradient_of_a_keras_model_is_lazy():
    embedding = keras.layers.Embedding(10, 4)
    embedding.build((None,))
    before = embedding.embeddings.numpy().copy()
    optimizer = LazyAdam(learning_rate=0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(embedding(tf.constant([2, 7, 2])))
    optimizer.apply_gradients(zip(tape.gradient(loss, embedding.trainable_variables), embedding.trainable_variables))
    changed = np.any(embedding.embeddings.numpy() != before, axis=1)
    assert changed.tolist() == [i in (2, 7) for i in range(10)]


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)
