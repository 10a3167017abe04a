"""Fold-in: the factors of a user the model has not seen, solved from their history.

A factor model scores ``s(u, i) = p_u . q_i (+ biases)``. For a user outside the
training data who brings a list of items (the ``history``), tfrec does not refit: it
solves the per-user ridge problem that training would have solved for that user, with
the item factors held fixed (one step of alternating least squares):

    p = argmin_p  sum_{h in H} (y_h - p . q_h)^2 + p^T G p + reg * ||p||^2
      = (Q_H^T Q_H + G + reg * I)^-1  Q_H^T y

``Q_H`` [|H|, d] are the history items' factors (padding and unknown items, index 0,
are left out), ``y`` [|H|] the targets of the history items, ``G`` [d, d] an optional
fixed matrix (the weighted Gramian of all item factors for implicit-feedback losses),
``reg`` a per-user scalar (``l2 * |H|^exponent``, ``|H|`` the number of valid history
items, at least 1). Everything is TF ops, so it runs inside exported serving functions.
"""
from __future__ import annotations

from tfrec._keras import tf


def ridge_fold_in(
    item_factors: tf.Tensor,
    history_idx: tf.Tensor,
    targets: tf.Tensor,
    l2: float,
    exponent: float = 1.0,
    gram: tf.Tensor | None = None,
) -> tf.Tensor:
    """User factors float32[B, d] from histories.

    Args:
        item_factors: float32[n_items + 1, d] (row 0 = out-of-vocabulary item).
        history_idx: int64[B, H], 0 = padding / unknown item.
        targets: float32[B, H], the ridge target y_h of each history item (ignored at
            padding).
        l2: ridge strength; the per-user penalty is ``l2 * max(|H|, 1) ** exponent``.
        exponent: how the penalty grows with the history length (1 = frequency-scaled,
            as in ALS-WR; 0 = constant).
        gram: optional float32[d, d] added to the normal matrix (see module docstring).

    A row without a valid history item gets the zero vector.
    """
    valid = tf.cast(history_idx > 0, item_factors.dtype)  # [B, H]
    factors = tf.gather(item_factors, history_idx) * valid[..., tf.newaxis]  # [B, H, d]
    dim = tf.shape(item_factors)[1]
    count = tf.maximum(tf.reduce_sum(valid, axis=1), 1.0)  # [B]
    reg = l2 * tf.pow(count, exponent)
    normal = tf.linalg.matmul(factors, factors, transpose_a=True)  # [B, d, d]
    normal += reg[:, tf.newaxis, tf.newaxis] * tf.eye(dim, dtype=item_factors.dtype)
    if gram is not None:
        normal += gram[tf.newaxis]
    rhs = tf.linalg.matvec(factors, targets * valid, transpose_a=True)  # [B, d]
    # The normal matrix is symmetric positive definite (reg > 0): Cholesky solve.
    chol = tf.linalg.cholesky(normal)
    return tf.linalg.cholesky_solve(chol, rhs[..., tf.newaxis])[..., 0]
