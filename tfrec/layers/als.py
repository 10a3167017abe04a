"""Alternating least squares with conjugate gradient for matrix factorization, in TensorFlow.

Both ``mf`` objectives are ridge problems in one side's vectors when the other side is
fixed. The interactions ``O`` are (user, item) pairs; a pair given ``c`` times counts ``c``
times (its target is the mean of its ``c`` targets). ``P`` float[n_u, d] holds the user
factors ``p_u``, ``Q`` float[n_i, d] the item factors ``q_i``; ``n_u`` / ``n_i`` count the
interactions of user u / item i and ``m = max(n, 1)``.

Implicit feedback (``implicit_als_sweep``; ``a = gram_weight``, for ``mf`` ``w0 * nbar``)::

    L(P, Q) = sum_{(u,i) in O} (1 - p_u . q_i)^2
              + a * sum_u p_u^T G p_u                 G = Q^T Q = sum_i q_i q_i^T
              + l2 * sum_u m_u |p_u|^2 + l2 * sum_i m_i |q_i|^2

(``a * sum_u p_u^T G p_u = a * sum_i q_i^T H q_i`` with ``H = P^T P``: the objective is
symmetric in users and items). Its gradient in ``p_u`` is zero where (``I_u``: the items of
u's interactions, with repetitions)::

    A_u p_u = b_u,  A_u = a * G + sum_{i in I_u} q_i q_i^T + l2 * m_u * I,   b_u = sum_{i in I_u} q_i

and symmetrically for each item with ``H`` and the users of its interactions.

Explicit feedback (``explicit_als_sweep``, ALS-WR with biases; ``mu`` the fixed global mean)::

    L = sum_{(u,i) in O} (r_ui - mu - b_u - b_i - p_u . q_i)^2
        + l2 * (sum_u m_u^0.5 |p_u|^2 + sum_i m_i^0.5 |q_i|^2) + bias_l2 * (sum_u b_u^2 + sum_i b_i^2)

Each user's ``x_u = [p_u, b_u]`` solves the ridge system with features ``y_i = [q_i, 1]``,
targets ``r_ui - mu - b_i`` and the diagonal penalty ``[l2 * m_u^0.5] * d + [bias_l2]``
(no Gramian); then each item's ``[q_i, b_i]`` with ``[p_u, 1]`` and ``r_ui - mu - b_u``.

Every row's system has the form ``(a * G + sum_k c_k y_k y_k^T + diag(reg_r)) x_r = sum_k c_k t_k y_k``
(k over the row's distinct pairs, ``c_k`` the pair's count, ``t_k`` its target), solved
approximately by ``cg_steps`` steps of conjugate gradient warm-started at the current
vectors, as implicit's ``least_squares_cg`` does, for all rows at once. One pass over the
interactions computes ``A x`` for every row: the pair dot products ``x_{row_k} . y_k``
(an XLA-compiled gather-multiply-reduce that never materialises the ``nnz x d`` gathered
rows), then ``sum_k c_k dot_k y_k`` per row as one CSR sparse-dense product
(``SparseMatrixMatMul``; the item half multiplies the transposed matrix's CSR). A sweep makes
``2 * cg_steps + 1`` passes: one per CG step, and one for the user half's residual
``b - A x``; the item half's residual needs none, since dots are linear in x and the user
half's steps already computed the pieces of the new users' dots. With ``A`` positive
definite, each CG step does not increase that row's quadratic, so ``L`` does not
increase from one sweep to the next. The user half's first pass sees the vectors the
sweep starts from, so it also yields ``L`` at the start of the sweep at no extra pass:
the sweeps return it, as a Keras training step reports the loss of the weights it
started from.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tfrec._keras import tf

_EPS = 1e-20  # residual norm^2 under which a row's CG stops, as in implicit


class AlsInteractions(NamedTuple):
    """The distinct (user, item) pairs, sorted by user then item, with their counts and targets.

    ``rows`` / ``cols``: int32[nnz] user / item indices; ``indices``: int64[nnz, 2] the same
    pairs (the CSR matrices' coordinates); ``counts``: float[nnz] how often each pair
    occurs; ``targets``: float[nnz] each pair's mean rating (1 without ratings);
    ``spread``: the sum of the squared differences of repeated ratings from their pair's
    mean (a scalar; what squared errors summed per pair miss of the sum per interaction);
    ``user_counts`` / ``item_counts``: float[n_users] / float[n_items] interactions per
    row, repetitions included (0 for rows without any); ``shape``: int64[2] (n_users, n_items);
    ``by_item``: int32[nnz] the pairs' order sorted by item then user, and
    ``item_indices`` int64[nnz, 2] the (item, user) coordinates in that order (the
    transposed matrix's CSR; ``SparseMatrixMatMul(transpose_a=True)`` is not deterministic).
    """

    rows: tf.Tensor
    cols: tf.Tensor
    indices: tf.Tensor
    counts: tf.Tensor
    targets: tf.Tensor
    spread: tf.Tensor
    user_counts: tf.Tensor
    item_counts: tf.Tensor
    shape: tf.Tensor
    by_item: tf.Tensor
    item_indices: tf.Tensor


def als_interactions(user_idx, item_idx, n_users: int, n_items: int, dtype=tf.float32, ratings=None) -> AlsInteractions:
    """``AlsInteractions`` of the (user_idx, item_idx) int[nnz] pairs (indices < n_users / n_items),
    with optional ``ratings`` float[nnz] as the targets."""
    users = np.asarray(user_idx, np.int64)
    items = np.asarray(item_idx, np.int64)
    keys, inverse, counts = np.unique(users * int(n_items) + items, return_inverse=True, return_counts=True)
    targets, spread = np.ones(len(keys)), 0.0
    if ratings is not None:
        ratings = np.asarray(ratings, np.float64)
        targets = np.bincount(inverse, ratings, len(keys)) / counts
        spread = float(np.sum((ratings - targets[inverse]) ** 2))
    rows, cols = keys // int(n_items), keys % int(n_items)
    by_item = np.lexsort((rows, cols))
    as_float = dtype.as_numpy_dtype
    return AlsInteractions(
        rows=tf.constant(rows, tf.int32),
        cols=tf.constant(cols, tf.int32),
        indices=tf.constant(np.stack([rows, cols], axis=1), tf.int64),
        counts=tf.constant(counts, dtype),
        targets=tf.constant(targets, dtype),
        spread=tf.constant(spread, dtype),
        user_counts=tf.constant(np.bincount(users, minlength=int(n_users)).astype(as_float)),
        item_counts=tf.constant(np.bincount(items, minlength=int(n_items)).astype(as_float)),
        shape=tf.constant([int(n_users), int(n_items)], tf.int64),
        by_item=tf.constant(by_item, tf.int32),
        item_indices=tf.constant(np.stack([cols[by_item], rows[by_item]], axis=1), tf.int64),
    )


@tf.function(jit_compile=True)
def pair_dots(users: tf.Tensor, items: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """float[nnz]: ``users[rows_k] . items[cols_k]`` (users float[n_u, d], items float[n_i, d]).

    Compiled by XLA into one loop, so the gathered rows are never stored. The sum over d
    is written as a fixed tree of halvings (column j + column j + w/2): XLA's CPU
    ``reduce_sum`` keeps the sequential order and cannot vectorise; the tree is
    vectorised across pairs (4x faster at d = 64) and just as deterministic.
    """
    products = tf.gather(users, rows) * tf.gather(items, cols)
    width = int(products.shape[1])
    while width > 1:
        half = width // 2
        summed = products[:, :half] + products[:, half : 2 * half]
        if width % 2:  # the odd column joins the first
            summed = tf.concat([summed[:, :1] + products[:, 2 * half :], summed[:, 1:]], axis=1)
        products, width = summed, half
    return products[:, 0]


def weighted_row_sums(data: AlsInteractions, weights: tf.Tensor, other: tf.Tensor, users: bool) -> tf.Tensor:
    """``sum_k weights_k * other[col_k]`` per user (``users=True``, other float[n_i, d] -> float[n_u, d])
    or ``sum_k weights_k * other[user_k]`` per item (other float[n_u, d] -> float[n_i, d]):
    the CSR product ``S @ other`` or ``S^T @ other`` with ``S[user_k, item_k] = weights_k``."""
    if users:
        indices, shape = data.indices, data.shape
    else:
        indices, shape, weights = data.item_indices, tf.reverse(data.shape, [0]), tf.gather(weights, data.by_item)
    matrix = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=weights, dense_shape=shape)
    return tf.raw_ops.SparseMatrixMatMul(a=matrix, b=other)


def conjugate_gradient_solve(
    x: tf.Tensor,
    other: tf.Tensor,
    data: AlsInteractions,
    users: bool,
    targets: tf.Tensor,
    reg: tf.Tensor,
    gram: tf.Tensor | None = None,
    gram_weight: float = 0.0,
    cg_steps: int = 3,
    start_dots: tf.Tensor | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``cg_steps`` conjugate-gradient steps on every row's system, from ``x`` (float[n, d]).

    Row r's system: ``(gram_weight * gram + sum_k c_k y_k y_k^T + diag(reg_r)) x_r = sum_k c_k t_k y_k``,
    k over r's pairs in ``data``, ``y_k`` the other side's row of the pair in ``other``
    (float[m, d]), ``c_k = data.counts``, ``t_k = targets`` (float[nnz]); ``users``: the
    rows are users (else items); ``reg`` float[n, 1] or float[n, d]; ``gram`` float[d, d]
    symmetric or None; ``start_dots``: the pairs' dots ``x_{row_k} . y_k`` float[nnz] when
    known (saves a pass). Returns (the new x float[n, d], the dots at the start, the dots of
    the new x): dots are linear in x, so the new ones are the start ones plus each step's
    ``alpha_row * (p_{row_k} . y_k)``, from the passes the steps make anyway.
    """
    counts = data.counts
    row_of_pair = data.rows if users else data.cols

    def dots(v: tf.Tensor) -> tf.Tensor:
        return pair_dots(v, other, data.rows, data.cols) if users else pair_dots(other, v, data.rows, data.cols)

    def dense_part(v: tf.Tensor) -> tf.Tensor:
        part = reg * v
        if gram is not None:
            part += gram_weight * tf.linalg.matmul(v, gram)
        return part

    if start_dots is None:
        start_dots = dots(x)
    end_dots = start_dots
    r = weighted_row_sums(data, counts * (targets - start_dots), other, users) - dense_part(x)
    p = r
    rs = tf.reduce_sum(r * r, axis=1)
    for _ in range(int(cg_steps)):
        p_dots = dots(p)
        ap = weighted_row_sums(data, counts * p_dots, other, users) + dense_part(p)
        pap = tf.reduce_sum(p * ap, axis=1)
        active = (rs > _EPS) & (pap > 0)
        alpha = tf.where(active, rs / tf.where(active, pap, 1.0), 0.0)[:, tf.newaxis]
        x = x + alpha * p
        end_dots += tf.gather(alpha[:, 0], row_of_pair) * p_dots
        r = r - alpha * ap
        rs_new = tf.reduce_sum(r * r, axis=1)
        beta = tf.where(active, rs_new / tf.where(active, rs, 1.0), 0.0)[:, tf.newaxis]
        p = r + beta * p
        rs = tf.where(active, rs_new, 0.0)
    return x, start_dots, end_dots


def _squared_norms(x: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(x * x, axis=1)


def implicit_als_sweep(
    user_factors: tf.Tensor, item_factors: tf.Tensor, data: AlsInteractions, l2: float, gram_weight: float, cg_steps: int = 3
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """One implicit sweep (module docstring): users with items fixed, then items with the new users.

    ``user_factors`` float[n_users, d], ``item_factors`` float[n_items, d]; returns both
    updated, then ``L`` and its squared-error term ``sum c (1 - p . q)^2`` at the factors
    the sweep started from (scalars).
    """
    ones = tf.ones_like(data.targets)
    user_reg = (l2 * tf.maximum(data.user_counts, 1.0))[:, tf.newaxis]
    item_reg = (l2 * tf.maximum(data.item_counts, 1.0))[:, tf.newaxis]
    gram = tf.linalg.matmul(item_factors, item_factors, transpose_a=True)
    new_users, start_dots, dots = conjugate_gradient_solve(user_factors, item_factors, data, True, ones, user_reg, gram, gram_weight, cg_steps)
    objective, squared_error = _implicit_terms(user_factors, item_factors, data, l2, gram_weight, start_dots, gram)
    gram = tf.linalg.matmul(new_users, new_users, transpose_a=True)
    new_items, _, _ = conjugate_gradient_solve(item_factors, new_users, data, False, ones, item_reg, gram, gram_weight, cg_steps, dots)
    return new_users, new_items, objective, squared_error


def implicit_objective(user_factors: tf.Tensor, item_factors: tf.Tensor, data: AlsInteractions, l2: float, gram_weight: float) -> tf.Tensor:
    """The implicit ``L(P, Q)`` of the module docstring (a scalar)."""
    dots = pair_dots(user_factors, item_factors, data.rows, data.cols)
    return _implicit_terms(user_factors, item_factors, data, l2, gram_weight, dots)[0]


def _implicit_terms(user_factors, item_factors, data: AlsInteractions, l2: float, gram_weight: float, dots, gram=None) -> tuple[tf.Tensor, tf.Tensor]:
    """(``L(P, Q)``, its squared-error term) from the pairs' ``dots`` (and ``gram = Q^T Q`` if known)."""
    if gram is None:
        gram = tf.linalg.matmul(item_factors, item_factors, transpose_a=True)
    errors = 1.0 - dots
    squared_error = tf.reduce_sum(data.counts * errors * errors)
    objective = (
        squared_error
        + gram_weight * tf.reduce_sum(tf.linalg.matmul(user_factors, gram) * user_factors)
        + l2 * tf.reduce_sum(tf.maximum(data.user_counts, 1.0) * _squared_norms(user_factors))
        + l2 * tf.reduce_sum(tf.maximum(data.item_counts, 1.0) * _squared_norms(item_factors))
    )
    return objective, squared_error


def _with_column(x: tf.Tensor, column: tf.Tensor) -> tf.Tensor:
    return tf.concat([x, column[:, tf.newaxis]], axis=1)


def _ridge_penalty(counts: tf.Tensor, d: int, l2: float, bias_l2: float) -> tf.Tensor:
    """float[n, d + 1]: ``[l2 * m^0.5] * d + [bias_l2]`` per row."""
    factor = tf.repeat((l2 * tf.sqrt(tf.maximum(counts, 1.0)))[:, tf.newaxis], d, axis=1)
    return _with_column(factor, tf.fill(tf.shape(counts), tf.cast(bias_l2, counts.dtype)))


def explicit_als_sweep(
    user_factors: tf.Tensor,
    item_factors: tf.Tensor,
    user_bias: tf.Tensor,
    item_bias: tf.Tensor,
    global_mean: float,
    data: AlsInteractions,
    l2: float,
    bias_l2: float,
    cg_steps: int = 3,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """One explicit sweep (module docstring): ``[p_u, b_u]`` with items fixed, then ``[q_i, b_i]``.

    Factors float[n, d], biases float[n]; ``data.targets`` are the ratings. Returns the
    new (user_factors, item_factors, user_bias, item_bias), then ``L`` and its squared-error
    term at the start (scalars).
    """
    d = int(user_factors.shape[1])
    item_ones, user_ones = tf.ones_like(item_bias), tf.ones_like(user_bias)
    user_reg = _ridge_penalty(data.user_counts, d, l2, bias_l2)
    item_reg = _ridge_penalty(data.item_counts, d, l2, bias_l2)
    targets = data.targets - global_mean - tf.gather(item_bias, data.cols)
    users, start_dots, dots = conjugate_gradient_solve(
        _with_column(user_factors, user_bias), _with_column(item_factors, item_ones), data, True, targets, user_reg, cg_steps=cg_steps
    )
    errors = targets - start_dots
    squared_error = tf.reduce_sum(data.counts * errors * errors) + data.spread
    start_users, start_items = _with_column(user_factors, user_bias), _with_column(item_factors, item_bias)
    objective = (
        squared_error
        + tf.reduce_sum(user_reg * start_users * start_users)
        + tf.reduce_sum(item_reg * start_items * start_items)
    )
    user_factors, user_bias = users[:, :d], users[:, d]
    # [p_u, 1] . [q_i, b_i] = [p_u, b_u] . [q_i, 1] - b_u + b_i: the user half's end dots give the item half's start dots
    new_user_bias = tf.gather(user_bias, data.rows)
    targets = data.targets - global_mean - new_user_bias
    items, _, _ = conjugate_gradient_solve(
        _with_column(item_factors, item_bias),
        _with_column(user_factors, user_ones),
        data,
        False,
        targets,
        item_reg,
        cg_steps=cg_steps,
        start_dots=dots - new_user_bias + tf.gather(item_bias, data.cols),
    )
    return user_factors, items[:, :d], user_bias, items[:, d], objective, squared_error
