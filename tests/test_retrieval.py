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


TWO_REPLICAS = """
import json
import numpy as np
from tfrec._keras import tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)  # two replicas, one process
from tfrec.layers.retrieval import InBatchRetrieval, in_batch_softmax_loss

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
size, dim, local = 8, 4, 4
queries, candidates = (rng.normal(size=(size, dim)).astype(np.float32) for _ in range(2))
ids = tf.constant([3, 1, 3, 2, 5, 1, 7, 2], tf.int64)  # accidental hits within and across the two halves
probability = tf.constant(rng.uniform(0.01, 0.5, size).astype(np.float32))
tower = np.eye(dim, dtype=np.float32) + 0.1  # a shared weight, so that gradients flow through both sides

weight = tf.Variable(tower)
with tf.GradientTape() as tape:
    single = in_batch_softmax_loss(queries @ weight, candidates @ weight, ids, probability, 0.5)
single_gradient = tape.gradient(single, weight)

with strategy.scope():
    replicated = tf.Variable(tower)
    task = InBatchRetrieval(temperature=0.5)


def step():
    rows = tf.range(local) + tf.distribute.get_replica_context().replica_id_in_sync_group * local
    with tf.GradientTape() as tape:
        loss = task(tf.gather(queries, rows) @ replicated, tf.gather(candidates, rows) @ replicated,
                    candidate_sampling_probability=tf.gather(probability, rows), candidate_ids=tf.gather(ids, rows),
                    compute_metrics=False, compute_batch_metrics=False)
    return loss, tape.gradient(loss, replicated)


losses, gradients = tf.function(lambda: strategy.run(step))()
print(json.dumps({
    "replicas": strategy.num_replicas_in_sync,
    "single": float(single), "distributed": float(strategy.reduce("SUM", losses, axis=None)),
    "gradient_difference": float(np.abs(strategy.reduce("SUM", gradients, axis=None).numpy() - single_gradient.numpy()).max()),
}))
"""


@pytest.mark.slow
def test_two_replicas_take_their_negatives_from_the_global_batch():
    """Under a strategy with two replicas, each query's negatives are the other 7 candidates of the
    global batch of 8 (not the 3 of its replica's half): the replicas' losses sum to the
    single-process loss and their gradients to its gradient. Two logical CPUs need a fresh process."""
    import json
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", TWO_REPLICAS], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["replicas"] == 2
    assert got["distributed"] == pytest.approx(got["single"], rel=1e-6)
    assert got["gradient_difference"] < 1e-4
