"""Inside a replicated training step: each replica's place in the global batch.

Under a ``tf.distribute`` strategy with N > 1 replicas, each replica's step sees its
part of the global batch; these functions let a loss computed there equal the loss of
one process on the whole global batch. With one replica (or outside a strategy) they
reduce to the one-process computation.
"""
from __future__ import annotations

from tfrec._keras import tf


def replicas_in_sync() -> int:
    """How many replicas run this step together (1 outside a strategy or with one replica)."""
    context = tf.distribute.get_replica_context()
    return 1 if context is None else int(context.num_replicas_in_sync)


def global_batch_position(local_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(offset, global size) int32 of this replica's rows in the global batch: replicas'
    parts are in replica order and may differ in size (the last batch of a pass)."""
    if replicas_in_sync() == 1:
        return tf.constant(0, tf.int32), tf.cast(local_size, tf.int32)
    sizes = _sum_over_replicas(tf.one_hot(_replica_id(), replicas_in_sync(), on_value=tf.cast(local_size, tf.int32), dtype=tf.int32))
    return tf.reduce_sum(sizes[: _replica_id()]), tf.reduce_sum(sizes)


def all_gather_rows(rows: tf.Tensor) -> tf.Tensor:
    """Every replica's ``rows`` [b_r, ...], concatenated in replica order (differentiable:
    each replica gets the gradient of its own rows). One replica: ``rows``.

    Built on ``all_reduce`` (each replica places its rows in a zero tensor of the global
    batch's shape; the sum is the concatenation, exactly), because under
    ``MultiWorkerMirroredStrategy`` ``ReplicaContext.all_gather`` inside a Keras train
    step fails ("destinations can not be empty", TF 2.21: it goes through a merge call
    that needs the tensors' devices), while ``all_reduce`` takes the collective path."""
    if replicas_in_sync() == 1:
        return rows
    offset, total = global_batch_position(tf.shape(rows)[0])
    positions = tf.range(offset, offset + tf.shape(rows)[0])[:, tf.newaxis]
    placed = tf.scatter_nd(positions, rows, tf.concat([tf.reshape(total, [1]), tf.shape(rows)[1:]], axis=0))
    return _sum_over_replicas(placed)


def _replica_id() -> tf.Tensor:
    return tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32)


def _sum_over_replicas(value: tf.Tensor) -> tf.Tensor:
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


def global_batch_mean(per_example: tf.Tensor) -> tf.Tensor:
    """This replica's share of the mean of ``per_example`` over the GLOBAL batch: the sum
    of its values divided by the number of examples of all replicas, so that the
    replicas' shares (and their gradients, which the optimizer sums) add up to the mean
    of one process on the same global batch. One replica: ``tf.reduce_mean``."""
    if replicas_in_sync() == 1:
        return tf.reduce_mean(per_example)
    count = _sum_over_replicas(tf.cast(tf.size(per_example), per_example.dtype))
    return tf.reduce_sum(per_example) / count


def global_batch_uniform(local_size: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """float32[local_size] uniform draws: this replica's slice of the draws one process
    makes for the global batch (``tf.random.stateless_uniform([global size], seed)``),
    so that random choices per example (dropout of user ids) do not depend on the split."""
    offset, total = global_batch_position(local_size)
    return tf.random.stateless_uniform(tf.reshape(total, [1]), seed=seed)[offset : offset + tf.cast(local_size, tf.int32)]
