"""Alternating least squares with conjugate gradient for implicit-feedback MF, in TensorFlow.

The objective (the one ``mf`` documents for ``feedback="implicit"``; ``P`` float[n_u, d]
user factors ``p_u``, ``Q`` float[n_i, d] item factors ``q_i``, ``O`` the observed
(user, item) interactions, duplicates counted as often as they occur, ``n_u`` / ``n_i``
the interactions of user u / item i, ``a = gram_weight`` (``mf``: ``w0 * nbar``, the
unobserved weight times the mean number of interactions per user))::

    L(P, Q) = sum_{(u,i) in O} (1 - p_u . q_i)^2
              + a * sum_u p_u^T G p_u                 G = Q^T Q = sum_i q_i q_i^T
              + l2 * sum_u m_u |p_u|^2 + l2 * sum_i m_i |q_i|^2,   m = max(n, 1)

(``a * sum_u p_u^T G p_u = a * sum_i q_i^T H q_i`` with ``H = P^T P``, so the objective is
symmetric in users and items). Setting the gradient in ``p_u`` to zero gives one d x d
linear system per user (``I_u``: the items of u's interactions, with repetitions)::

    A_u p_u = b_u,  A_u = a * G + sum_{i in I_u} q_i q_i^T + l2 * m_u * I,
                    b_u = sum_{i in I_u} q_i * 1

and symmetrically for each item (``U_i``: the users of i's interactions)::

    A_i q_i = b_i,  A_i = a * H + sum_{u in U_i} p_u p_u^T + l2 * m_i * I,
                    b_i = sum_{u in U_i} p_u

Rows without interactions get ``A = a * G + l2 * I``, ``b = 0``: their solution is 0.

``als_sweep`` solves the user systems (Q fixed) then the item systems (P fixed), as
implicit's ``least_squares_cg`` does: each system is solved approximately by
``cg_steps`` steps of conjugate gradient warm-started at the current factors, with the
Gramian computed once per half-sweep. All users (items) are solved at once: ``A x`` for
every row is ``a * x @ G + l2 * m * x`` plus, over the interactions,
``segment_sum(q_i * (q_i . p_u), u)`` (interactions sorted by u), computed with gathers in chunks of
``chunk_size`` interactions so that the memory stays ``O(chunk_size * d)`` whatever the
number of interactions. Each half-sweep makes ``cg_steps + 1`` passes over the
interactions (the first computes the residual ``b - A x``). With ``A`` positive definite
(``l2 > 0``), each CG step does not increase that row's quadratic, so ``L`` does not
increase from one sweep to the next.
"""
from __future__ import annotations

from typing import NamedTuple

from tfrec._keras import tf

#: Interactions per gather / segment-sum chunk: the memory of a pass is a few chunk_size x d floats
#: (chunks run one after the other, so a pass's temporaries do not grow with the number of interactions).
DEFAULT_CHUNK = 1 << 20
_EPS = 1e-20  # residual norm^2 under which a row's CG stops, as in implicit


class AlsInteractions(NamedTuple):
    """The interactions twice, sorted by user and by item, with the per-row counts.

    ``by_user``: (user_idx, item_idx) int64[nnz] sorted by user; ``by_item``: (item_idx,
    user_idx) int64[nnz] sorted by item; ``user_counts`` / ``item_counts``:
    float[n_users] / float[n_items], interactions per row (0 for rows without any).
    """

    by_user: tuple[tf.Tensor, tf.Tensor]
    by_item: tuple[tf.Tensor, tf.Tensor]
    user_counts: tf.Tensor
    item_counts: tf.Tensor


def als_interactions(user_idx, item_idx, n_users: int, n_items: int, dtype=tf.float32) -> AlsInteractions:
    """``AlsInteractions`` of the (user_idx, item_idx) int64[nnz] pairs (indices < n_users / n_items)."""
    users = tf.convert_to_tensor(user_idx, tf.int64)
    items = tf.convert_to_tensor(item_idx, tf.int64)
    by_user = tf.argsort(users, stable=True)
    by_item = tf.argsort(items, stable=True)
    ones = tf.ones_like(users, dtype=dtype)
    return AlsInteractions(
        by_user=(tf.gather(users, by_user), tf.gather(items, by_user)),
        by_item=(tf.gather(items, by_item), tf.gather(users, by_item)),
        user_counts=tf.math.unsorted_segment_sum(ones, users, n_users),
        item_counts=tf.math.unsorted_segment_sum(ones, items, n_items),
    )


def _segment_sum_sorted(values: tf.Tensor, rows: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """float[n, d]: ``values`` summed by ``rows`` (sorted, non-empty), via ``segment_sum``
    on the span of rows present, padded to n rows (faster than ``unsorted_segment_sum``)."""
    first, last = rows[0], rows[-1]
    summed = tf.math.segment_sum(values, rows - first)
    return tf.pad(summed, [[first, n - last - 1], [0, 0]])


def _interaction_pass(
    rows: tf.Tensor, cols: tf.Tensor, x: tf.Tensor, other: tf.Tensor, target: float | None, chunk_size: int, gathered: tf.Tensor | None = None
) -> tf.Tensor:
    """float[n, d]: sum over the interactions k of ``y_k * (target - y_k . x_{rows_k})``
    summed by ``rows`` (sorted) with ``y_k = other[cols_k]``; ``target=None``:
    ``y_k * (y_k . x)``. ``gathered``: ``other[cols]`` already gathered (one chunk)."""
    n = tf.shape(x, out_type=tf.int64)[0]

    def chunk(r: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        dot = tf.reduce_sum(y * tf.gather(x, r), axis=1, keepdims=True)
        weight = (target - dot) if target is not None else dot
        return _segment_sum_sorted(y * weight, r, n)

    if gathered is not None:
        return chunk(rows, gathered) if rows.shape[0] else tf.zeros_like(x)
    nnz = tf.shape(rows, out_type=tf.int64)[0]
    chunks = (nnz + chunk_size - 1) // chunk_size

    def body(c, total):
        start = c * chunk_size
        size = tf.minimum(tf.cast(chunk_size, tf.int64), nnz - start)
        return c + 1, total + chunk(tf.slice(rows, [start], [size]), tf.gather(other, tf.slice(cols, [start], [size])))

    _, total = tf.while_loop(lambda c, _: c < chunks, body, (tf.constant(0, tf.int64), tf.zeros_like(x)), parallel_iterations=1)
    return total


def conjugate_gradient_solve(
    x: tf.Tensor,
    other: tf.Tensor,
    rows: tf.Tensor,
    cols: tf.Tensor,
    counts: tf.Tensor,
    gram: tf.Tensor,
    l2: float,
    gram_weight: float,
    cg_steps: int = 3,
    chunk_size: int = DEFAULT_CHUNK,
) -> tf.Tensor:
    """``cg_steps`` conjugate-gradient steps on every row's system, from ``x``: float[n, d].

    Row r's system: ``(gram_weight * gram + sum_{k: rows_k = r} y_k y_k^T + l2 * max(counts_r, 1) * I) x_r
    = sum_{k: rows_k = r} y_k`` with ``y_k = other[cols_k]`` (float[m, d]); ``rows`` /
    ``cols`` int64[nnz], sorted by ``rows`` (required: sums by ``segment_sum``); ``gram``
    float[d, d] symmetric; ``counts`` float[n]. Returns the new x, float[n, d].
    """
    reg = (l2 * tf.maximum(counts, 1.0))[:, tf.newaxis]
    # One chunk (a static number of interactions up to chunk_size): gather other[cols] once for all the passes.
    gathered = tf.gather(other, cols) if rows.shape[0] is not None and rows.shape[0] <= chunk_size else None

    def matvec(v: tf.Tensor) -> tf.Tensor:
        return gram_weight * tf.linalg.matmul(v, gram) + reg * v + _interaction_pass(rows, cols, v, other, None, chunk_size, gathered)

    r = _interaction_pass(rows, cols, x, other, 1.0, chunk_size, gathered) - gram_weight * tf.linalg.matmul(x, gram) - reg * x
    p = r
    rs = tf.reduce_sum(r * r, axis=1)
    for _ in range(int(cg_steps)):
        ap = matvec(p)
        pap = tf.reduce_sum(p * ap, axis=1)
        active = (rs > _EPS) & (pap > 0)
        alpha = tf.where(active, rs / tf.where(active, pap, 1.0), 0.0)[:, tf.newaxis]
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = tf.reduce_sum(r * r, axis=1)
        beta = tf.where(active, rs_new / tf.where(active, rs, 1.0), 0.0)[:, tf.newaxis]
        p = r + beta * p
        rs = tf.where(active, rs_new, 0.0)
    return x


def als_sweep(
    user_factors: tf.Tensor,
    item_factors: tf.Tensor,
    interactions: AlsInteractions,
    l2: float,
    gram_weight: float,
    cg_steps: int = 3,
    chunk_size: int = DEFAULT_CHUNK,
) -> tuple[tf.Tensor, tf.Tensor]:
    """One sweep (module docstring): users with items fixed, then items with the new users.

    ``user_factors`` float[n_users, d], ``item_factors`` float[n_items, d]; returns both updated.
    """
    users_by_user, items_by_user = interactions.by_user
    items_by_item, users_by_item = interactions.by_item
    gram = tf.linalg.matmul(item_factors, item_factors, transpose_a=True)
    user_factors = conjugate_gradient_solve(
        user_factors, item_factors, users_by_user, items_by_user, interactions.user_counts, gram, l2, gram_weight, cg_steps, chunk_size
    )
    gram = tf.linalg.matmul(user_factors, user_factors, transpose_a=True)
    item_factors = conjugate_gradient_solve(
        item_factors, user_factors, items_by_item, users_by_item, interactions.item_counts, gram, l2, gram_weight, cg_steps, chunk_size
    )
    return user_factors, item_factors


def implicit_objective(
    user_factors: tf.Tensor, item_factors: tf.Tensor, interactions: AlsInteractions, l2: float, gram_weight: float, chunk_size: int = DEFAULT_CHUNK
) -> tf.Tensor:
    """L(P, Q) of the module docstring (a scalar)."""
    rows, cols = interactions.by_user
    nnz = tf.shape(rows, out_type=tf.int64)[0]
    chunks = (nnz + chunk_size - 1) // chunk_size

    def body(c, total):
        start = c * chunk_size
        size = tf.minimum(tf.cast(chunk_size, tf.int64), nnz - start)
        p = tf.gather(user_factors, tf.slice(rows, [start], [size]))
        q = tf.gather(item_factors, tf.slice(cols, [start], [size]))
        error = 1.0 - tf.reduce_sum(p * q, axis=1)
        return c + 1, total + tf.reduce_sum(error * error)

    _, observed = tf.while_loop(lambda c, _: c < chunks, body, (tf.constant(0, tf.int64), tf.zeros([], user_factors.dtype)), parallel_iterations=1)
    gram = tf.linalg.matmul(item_factors, item_factors, transpose_a=True)
    unobserved = tf.reduce_sum(tf.linalg.matmul(user_factors, gram) * user_factors)
    penalty = tf.reduce_sum(tf.maximum(interactions.user_counts, 1.0) * tf.reduce_sum(user_factors * user_factors, axis=1))
    penalty += tf.reduce_sum(tf.maximum(interactions.item_counts, 1.0) * tf.reduce_sum(item_factors * item_factors, axis=1))
    return observed + gram_weight * unobserved + l2 * penalty
