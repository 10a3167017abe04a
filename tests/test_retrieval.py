"""The in-batch softmax loss and the towers' pooling, against TFRS's task and numpy."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow_recommenders as tfrs

from tfrec._keras import tf
from tfrec.layers.retrieval import InBatchRetrieval, in_batch_softmax_loss
from tfrec.layers.towers import masked_mean


def batch(seed: int, size: int = 200, dim: int = 16):
    rng = np.random.default_rng(seed)
    queries = tf.Variable(rng.normal(size=(size, dim)).astype(np.float32))
    candidates = tf.Variable(rng.normal(size=(size, dim)).astype(np.float32))
    ids = tf.constant(rng.integers(0, size // 4, size), tf.int64)  # many accidental hits
    probability = tf.constant(rng.uniform(1e-7, 0.05, size).astype(np.float32))  # some under the 1e-6 clip
    return queries, candidates, ids, probability


def loss_and_gradients(task, queries, candidates, ids, probability):
    with tf.GradientTape() as tape:
        loss = task(queries, candidates, candidate_sampling_probability=probability, candidate_ids=ids, compute_metrics=False)
    return loss.numpy(), [g.numpy() for g in tape.gradient(loss, [queries, candidates])]


@pytest.mark.parametrize("temperature, with_probability", [(0.1, True), (None, True), (0.5, False)])
def test_training_loss_and_gradients_equal_tfrs_retrieval(temperature, with_probability):
    queries, candidates, ids, probability = batch(int(with_probability) + int(temperature is None))
    probability = probability if with_probability else None
    ours = loss_and_gradients(InBatchRetrieval(temperature=temperature), queries, candidates, ids, probability)
    reference = loss_and_gradients(tfrs.tasks.Retrieval(temperature=temperature, remove_accidental_hits=True), queries, candidates, ids, probability)
    np.testing.assert_allclose(ours[0], reference[0], rtol=1e-5)
    for mine, theirs in zip(ours[1], reference[1]):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)  # float32 sums in another order


def test_loss_equals_a_numpy_softmax_without_the_accidental_hits():
    queries, candidates, ids, probability = batch(3, size=40, dim=4)
    q, c, i, p = queries.numpy().astype(np.float64), candidates.numpy().astype(np.float64), ids.numpy(), probability.numpy()
    scores = q @ c.T / 0.2 - np.log(np.clip(p, 1e-6, 1))
    expected = 0.0
    for b in range(len(q)):
        keep = (i != i[b]) | (np.arange(len(q)) == b)  # the positive and every other item's rows
        expected += np.log(np.exp(scores[b, keep]).sum()) - scores[b, b]
    actual = in_batch_softmax_loss(queries, candidates, ids, probability, 0.2).numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_validation_calls_are_tfrs_own_with_its_metrics():
    queries, candidates, _, _ = batch(4, size=50)
    ids = tf.range(50, dtype=tf.int64)

    def task(kind):
        index = tfrs.layers.factorized_top_k.BruteForce(k=5).index(candidates, identifiers=ids)
        return kind(metrics=tfrs.metrics.FactorizedTopK(candidates=index, ks=(1, 5)), temperature=0.1)

    ours, reference = task(InBatchRetrieval), task(lambda **kw: tfrs.tasks.Retrieval(remove_accidental_hits=True, **kw))
    losses = [t(queries, candidates, candidate_ids=ids, compute_metrics=True).numpy() for t in (ours, reference)]
    assert losses[0] == losses[1]
    results = [[r.numpy().tolist() for m in t.factorized_metrics for r in m.result()] for t in (ours, reference)]
    assert results[0] == results[1] and len(results[0]) == 2


def test_masked_mean_averages_the_nonzero_entries_and_sums_gradient_rows():
    rng = np.random.default_rng(5)
    table = tf.Variable(rng.normal(size=(7, 3)).astype(np.float32))
    index = np.array([[1, 2, 0, 2], [0, 0, 0, 0], [6, 0, 0, 0], [3, 3, 3, 1]], dtype=np.int32)
    with tf.GradientTape() as tape:
        pooled = masked_mean(table, index)
        loss = tf.reduce_sum(pooled * np.arange(1, 4, dtype=np.float32))
    gradient = tape.gradient(loss, table)
    t = table.numpy()
    expected = np.stack([t[row[row > 0]].mean(axis=0) if (row > 0).any() else np.zeros(3) for row in index])
    np.testing.assert_allclose(pooled.numpy(), expected, rtol=1e-6)
    assert isinstance(gradient, tf.IndexedSlices)
    assert sorted(gradient.indices.numpy().tolist()) == [1, 2, 3, 6]  # each row once
    dense = tf.convert_to_tensor(gradient).numpy()
    weights = np.arange(1, 4, dtype=np.float32)
    expected_gradient = np.zeros_like(t)
    for row in index:
        used = row[row > 0]
        for r in used:
            expected_gradient[r] += weights / len(used)
    np.testing.assert_allclose(dense, expected_gradient, rtol=1e-6)
