"""ALS with conjugate gradient (``tfrec.layers.als``): exact solves against numpy for both
objectives, the objective the sweeps report, a monotone objective, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from tfrec._keras import tf
from tfrec.layers.als import (
    als_interactions,
    conjugate_gradient_solve,
    explicit_als_sweep,
    implicit_als_sweep,
    implicit_objective,
    pair_dots,
)


def random_problem(seed=0, n_users=12, n_items=9, d=4, nnz=40, dtype=np.float64):
    rng = np.random.default_rng(seed)
    users = rng.integers(1, n_users, nnz)  # row 0 (and maybe others) without interactions
    items = rng.integers(1, n_items, nnz)  # repeated pairs included
    p = rng.normal(scale=0.3, size=(n_users, d)).astype(dtype)
    q = rng.normal(scale=0.3, size=(n_items, d)).astype(dtype)
    ratings = rng.integers(1, 6, nnz).astype(dtype)
    return users.astype(np.int64), items.astype(np.int64), p, q, ratings


def numpy_user_solve(users, items, p, q, l2, gram_weight):
    """Each user's exact solution of A_u p_u = b_u (the module docstring), one at a time."""
    gram = q.T @ q
    out = np.zeros_like(p)
    for u in range(len(p)):
        y = q[items[users == u]]
        a = gram_weight * gram + y.T @ y + l2 * max(len(y), 1) * np.eye(q.shape[1])
        out[u] = np.linalg.solve(a, y.sum(axis=0))
    return out


def numpy_explicit_solve(users, items, ratings, q, item_bias, mu, l2, bias_l2):
    """Each user's exact ridge solution [p_u, b_u] (features [q_i, 1], targets r - mu - b_i)."""
    n_users = users.max() + 1 if len(users) else 0
    d = q.shape[1]
    out = np.zeros((n_users, d + 1))
    for u in range(n_users):
        mask = users == u
        y = np.concatenate([q[items[mask]], np.ones((mask.sum(), 1))], axis=1)
        penalty = np.diag([l2 * np.sqrt(max(mask.sum(), 1))] * d + [bias_l2])
        out[u] = np.linalg.solve(y.T @ y + penalty, y.T @ (ratings[mask] - mu - item_bias[items[mask]]))
    return out


def numpy_objective(users, items, p, q, l2, gram_weight):
    n_u = np.maximum(np.bincount(users, minlength=len(p)), 1)
    n_i = np.maximum(np.bincount(items, minlength=len(q)), 1)
    error = 1.0 - np.sum(p[users] * q[items], axis=1)
    return (
        np.sum(error**2)
        + gram_weight * np.sum((p @ (q.T @ q)) * p)
        + l2 * np.sum(n_u * np.sum(p * p, 1))
        + l2 * np.sum(n_i * np.sum(q * q, 1))
    )


def numpy_explicit_objective(users, items, ratings, p, q, b_u, b_i, mu, l2, bias_l2):
    n_u = np.maximum(np.bincount(users, minlength=len(p)), 1)
    n_i = np.maximum(np.bincount(items, minlength=len(q)), 1)
    error = ratings - mu - b_u[users] - b_i[items] - np.sum(p[users] * q[items], axis=1)
    factors = l2 * (np.sum(np.sqrt(n_u) * np.sum(p * p, 1)) + np.sum(np.sqrt(n_i) * np.sum(q * q, 1)))
    return np.sum(error**2) + factors + bias_l2 * (np.sum(b_u**2) + np.sum(b_i**2))


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_enough_cg_steps_equal_the_exact_solve(dtype, tolerance):
    users, items, p, q, _ = random_problem(dtype=dtype)
    l2, gram_weight = 0.1, 0.5
    data = als_interactions(users, items, len(p), len(q), dtype=tf.as_dtype(dtype))
    gram = tf.linalg.matmul(q, q, transpose_a=True)
    reg = (l2 * tf.maximum(data.user_counts, 1.0))[:, None]
    ones = tf.ones_like(data.targets)
    solved, start, end = conjugate_gradient_solve(tf.constant(p), tf.constant(q), data, True, ones, reg, gram, gram_weight, cg_steps=30)
    expected = numpy_user_solve(users, items, p.astype(np.float64), q.astype(np.float64), l2, gram_weight)
    np.testing.assert_allclose(solved.numpy(), expected, atol=tolerance, rtol=tolerance)
    np.testing.assert_allclose(solved.numpy()[0], 0.0, atol=tolerance)  # no interactions: b = 0, the solution is 0
    # the dots it reports: at the start, and of the solution (tracked through the steps, not recomputed)
    np.testing.assert_allclose(start.numpy(), pair_dots(p, q, data.rows, data.cols).numpy(), rtol=tolerance)
    np.testing.assert_allclose(end.numpy(), pair_dots(solved, q, data.rows, data.cols).numpy(), atol=tolerance, rtol=tolerance)


def test_pairs_are_distinct_with_counts_and_mean_targets():
    data = als_interactions([2, 1, 2, 2], [3, 0, 3, 1], 3, 4, ratings=[4.0, 2.0, 5.0, 1.0])
    np.testing.assert_array_equal(data.rows.numpy(), [1, 2, 2])
    np.testing.assert_array_equal(data.cols.numpy(), [0, 1, 3])
    np.testing.assert_array_equal(data.counts.numpy(), [1, 1, 2])
    np.testing.assert_array_equal(data.targets.numpy(), [2.0, 1.0, 4.5])
    np.testing.assert_array_equal(data.user_counts.numpy(), [0, 1, 3])
    np.testing.assert_array_equal(data.item_counts.numpy(), [1, 1, 0, 2])


@pytest.mark.parametrize("d", [4, 7])  # a power of two, and an odd width for the dots' halving tree
def test_pair_dots_equal_numpy(d):
    users, items, p, q, _ = random_problem(seed=5, d=d)
    np.testing.assert_allclose(pair_dots(p, q, users, items).numpy(), np.sum(p[users] * q[items], axis=1), rtol=1e-12)


def test_item_half_sweep_is_the_symmetric_solve():
    users, items, p, q, _ = random_problem(seed=1)
    l2, gram_weight = 0.05, 0.3
    data = als_interactions(users, items, len(p), len(q), dtype=tf.float64)
    new_p, new_q, objective, squared_error = implicit_als_sweep(tf.constant(p), tf.constant(q), data, l2, gram_weight, cg_steps=30)
    expected_p = numpy_user_solve(users, items, p, q, l2, gram_weight)
    expected_q = numpy_user_solve(items, users, q, expected_p, l2, gram_weight)  # users <-> items
    np.testing.assert_allclose(new_p.numpy(), expected_p, atol=1e-9)
    np.testing.assert_allclose(new_q.numpy(), expected_q, atol=1e-9)
    # the reported objective is the one of the factors the sweep started from
    np.testing.assert_allclose(objective.numpy(), numpy_objective(users, items, p, q, l2, gram_weight), rtol=1e-12)
    np.testing.assert_allclose(squared_error.numpy(), np.sum((1.0 - np.sum(p[users] * q[items], axis=1)) ** 2), rtol=1e-12)


def test_explicit_sweep_is_the_exact_ridge_solve_with_biases():
    users, items, p, q, ratings = random_problem(seed=4)
    rng = np.random.default_rng(4)
    b_u, b_i = rng.normal(size=len(p)), rng.normal(size=len(q))
    mu, l2, bias_l2 = 3.5, 0.2, 0.7
    data = als_interactions(users, items, len(p), len(q), dtype=tf.float64, ratings=ratings)
    new_p, new_q, new_bu, new_bi, objective, squared_error = explicit_als_sweep(p, q, b_u, b_i, mu, data, l2, bias_l2, cg_steps=30)
    expected_users = numpy_explicit_solve(users, items, ratings, q, b_i, mu, l2, bias_l2)
    np.testing.assert_allclose(new_p.numpy(), expected_users[:, :-1], atol=1e-9)
    np.testing.assert_allclose(new_bu.numpy(), expected_users[:, -1], atol=1e-9)
    expected_items = numpy_explicit_solve(items, users, ratings, expected_users[:, :-1], expected_users[:, -1], mu, l2, bias_l2)
    np.testing.assert_allclose(new_q.numpy(), expected_items[:, :-1], atol=1e-9)
    np.testing.assert_allclose(new_bi.numpy(), expected_items[:, -1], atol=1e-9)
    expected_objective = numpy_explicit_objective(users, items, ratings, p, q, b_u, b_i, mu, l2, bias_l2)
    np.testing.assert_allclose(objective.numpy(), expected_objective, rtol=1e-8)
    errors = ratings - mu - b_u[users] - b_i[items] - np.sum(p[users] * q[items], axis=1)
    np.testing.assert_allclose(squared_error.numpy(), np.sum(errors**2), rtol=1e-8)


def test_objective_equals_numpy():
    users, items, p, q, _ = random_problem(seed=2)
    data = als_interactions(users, items, len(p), len(q), dtype=tf.float64)
    value = implicit_objective(tf.constant(p), tf.constant(q), data, 0.1, 0.4)
    np.testing.assert_allclose(value.numpy(), numpy_objective(users, items, p, q, 0.1, 0.4), rtol=1e-12)


@pytest.mark.parametrize("cg_steps", [1, 3])
def test_objective_decreases_every_sweep(cg_steps):
    users, items, p, q, ratings = random_problem(seed=3, n_users=60, n_items=40, d=8, nnz=500, dtype=np.float32)
    data = als_interactions(users, items, len(p), len(q))
    p, q = tf.constant(p), tf.constant(q)
    values = [implicit_objective(p, q, data, 0.01, 0.2).numpy()]
    for _ in range(10):
        p, q, _, _ = implicit_als_sweep(p, q, data, 0.01, 0.2, cg_steps=cg_steps)
        values.append(implicit_objective(p, q, data, 0.01, 0.2).numpy())
    assert np.all(np.diff(values) <= 1e-5 * values[0]), values
    assert values[-1] < 0.5 * values[0]
    explicit = als_interactions(users, items, len(p), len(q), ratings=ratings)
    b_u, b_i = tf.zeros([len(p)]), tf.zeros([len(q)])
    reported = []
    for _ in range(10):
        p, q, b_u, b_i, objective, _ = explicit_als_sweep(p, q, b_u, b_i, 3.0, explicit, 0.1, 1.0, cg_steps=cg_steps)
        reported.append(objective.numpy())
    assert np.all(np.diff(reported) <= 1e-5 * reported[0]), reported


def test_deterministic_on_demo_data(demo):
    frame = demo.interactions
    users = frame["user_id"].astype("category").cat.codes.to_numpy(np.int64) + 1
    items = frame["item_id"].astype("category").cat.codes.to_numpy(np.int64) + 1
    n_users, n_items = users.max() + 1, items.max() + 1
    data = als_interactions(users, items, n_users, n_items)
    rng = np.random.default_rng(0)
    p0 = tf.constant(rng.normal(scale=0.1, size=(n_users, 16)), tf.float32)
    q0 = tf.constant(rng.normal(scale=0.1, size=(n_items, 16)), tf.float32)
    sweep = tf.function(implicit_als_sweep)
    runs = []
    for _ in range(2):
        p, q = p0, q0
        for _ in range(5):
            p, q, _, _ = sweep(p, q, data, 0.01, 0.5, 3)
        runs.append((p.numpy(), q.numpy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
