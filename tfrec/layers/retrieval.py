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
"""
from __future__ import annotations

import numpy as np
import tensorflow_recommenders as tfrs

from tfrec._keras import tf

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
        return _compiled_loss(query_embeddings, candidate_embeddings, candidate_ids, candidate_sampling_probability, self._temperature)
