"""In-batch softmax retrieval loss: ``tfrs.tasks.Retrieval`` with its training loss in one XLA computation.

For queries ``q`` float32[B, d], their positives ``c`` float32[B, d] (row b is query
b's positive, the other rows its negatives), candidate ids ``ids`` [B] and sampling
probabilities ``p`` [B]:

    s_bj = q_b . c_j / temperature - log(clip(p_j, 1e-6, 1))          (logQ correction)
    s_bj += MIN_FLOAT   where ids_j == ids_b and j != b               (accidental hits)
    loss = sum_b [ logsumexp_j s_bj - s_bb ]

which is ``tfrs.tasks.Retrieval(temperature=..., remove_accidental_hits=True)``'s loss
(softmax cross-entropy against the identity, summed). TFRS computes it as about ten
separate [B, B] passes (labels, scaling, correction, mask, softmax, ...); compiled as
one function, XLA fuses them into the logits matmul's neighbours, forward and backward.
The tests check loss and gradients against TFRS's own task.

Under a ``tf.distribute`` strategy with N > 1 replicas, TFRS's task takes its negatives
from the local replica's batch only (global_batch / N - 1 per query, and a different
logQ-corrected softmax). ``InBatchRetrieval`` gathers the candidates, their ids and
sampling probabilities from every replica (``all_gather``, whose gradient flows back to
each replica's towers) and computes ``cross_replica_softmax_loss``: the replicas' losses
sum to the single-process loss on the global batch (tested with two replicas).
"""
from __future__ import annotations

import numpy as np
import tensorflow_recommenders as tfrs

from tfrec._keras import tf
from tfrec.distribute.replicas import all_gather_rows, global_batch_position

#: What TFRS adds to an accidental hit's logit (``tfrs.layers.loss.MIN_FLOAT``).
MIN_FLOAT = float(np.finfo(np.float32).min / 100.0)


def in_batch_softmax_loss(
    queries: tf.Tensor, candidates: tf.Tensor, candidate_ids: tf.Tensor, sampling_probability: tf.Tensor | None, temperature: float | None
) -> tf.Tensor:
    """The summed in-batch softmax loss of the module docstring (a float32 scalar)."""
    scores = tf.linalg.matmul(queries, candidates, transpose_b=True)
    if temperature is not None:
        scores = scores / temperature
    if sampling_probability is not None:
        scores = scores - tf.math.log(tf.clip_by_value(sampling_probability, 1e-6, 1.0))
    others = tf.logical_not(tf.eye(tf.shape(scores)[0], tf.shape(scores)[1], dtype=tf.bool))
    hits = tf.logical_and(tf.equal(candidate_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :]), others)
    scores = tf.where(hits, scores + MIN_FLOAT, scores)
    return tf.reduce_sum(tf.reduce_logsumexp(scores, axis=1) - tf.linalg.diag_part(scores))


def cross_replica_softmax_loss(
    queries: tf.Tensor, all_candidates: tf.Tensor, query_ids: tf.Tensor, all_candidate_ids: tf.Tensor,
    all_sampling_probability: tf.Tensor | None, temperature: float | None, offset: tf.Tensor,
) -> tf.Tensor:
    """One replica's share of the in-batch softmax loss over the GLOBAL batch.

    ``queries`` float32[b, d] and ``query_ids`` [b] are this replica's; ``all_candidates``
    float32[B, d], ``all_candidate_ids`` [B] and ``all_sampling_probability`` [B] are every
    replica's, gathered in replica order, so query k's positive is column ``offset + k``
    (``offset`` = replica id x b). Same formula as ``in_batch_softmax_loss`` with the
    labels shifted; the replicas' losses add up to that loss on the global batch, so
    N replicas see global_batch - 1 negatives per query, as one process does.
    """
    scores = tf.linalg.matmul(queries, all_candidates, transpose_b=True)
    if temperature is not None:
        scores = scores / temperature
    if all_sampling_probability is not None:
        scores = scores - tf.math.log(tf.clip_by_value(all_sampling_probability, 1e-6, 1.0))
    labels = tf.range(tf.shape(scores)[0]) + tf.cast(offset, tf.int32)
    positive = tf.equal(tf.range(tf.shape(scores)[1])[tf.newaxis, :], labels[:, tf.newaxis])
    hits = tf.logical_and(tf.equal(query_ids[:, tf.newaxis], all_candidate_ids[tf.newaxis, :]), tf.logical_not(positive))
    scores = tf.where(hits, scores + MIN_FLOAT, scores)
    return tf.reduce_sum(tf.reduce_logsumexp(scores, axis=1) - tf.gather(scores, labels, batch_dims=1))


_compiled_loss = tf.function(in_batch_softmax_loss, jit_compile=True, reduce_retracing=True)


class InBatchRetrieval(tfrs.tasks.Retrieval):
    """``tfrs.tasks.Retrieval`` with accidental-hit removal whose training loss (no
    metrics, weights, masks or hard negatives) is ``in_batch_softmax_loss``, compiled
    with XLA; every other call is TFRS's own."""

    def __init__(self, metrics=None, temperature: float | None = None, name: str | None = None):
        super().__init__(metrics=metrics, temperature=temperature, remove_accidental_hits=True, name=name)

    def call(
        self,
        query_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        sample_weight: tf.Tensor | None = None,
        candidate_sampling_probability: tf.Tensor | None = None,
        candidate_ids: tf.Tensor | None = None,
        compute_metrics: bool = True,
        compute_batch_metrics: bool = True,
        score_mask: tf.Tensor | None = None,
    ) -> tf.Tensor:
        plain = sample_weight is None and score_mask is None and self._num_hard_negatives is None
        if compute_metrics or not plain or candidate_ids is None or self._loss_metrics or (compute_batch_metrics and self._batch_metrics):
            return super().call(
                query_embeddings,
                candidate_embeddings,
                sample_weight=sample_weight,
                candidate_sampling_probability=candidate_sampling_probability,
                candidate_ids=candidate_ids,
                compute_metrics=compute_metrics,
                compute_batch_metrics=compute_batch_metrics,
                score_mask=score_mask,
            )
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:  # negatives from every replica's batch
            offset, _ = global_batch_position(tf.shape(query_embeddings)[0])  # the last batch may split unevenly
            probability = None if candidate_sampling_probability is None else all_gather_rows(candidate_sampling_probability)
            return cross_replica_softmax_loss(
                query_embeddings, all_gather_rows(candidate_embeddings), candidate_ids, all_gather_rows(candidate_ids),
                probability, self._temperature, offset,
            )
        return _compiled_loss(query_embeddings, candidate_embeddings, candidate_ids, candidate_sampling_probability, self._temperature)
