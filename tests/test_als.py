"""ALS with conjugate gradient (``tfrec.layers.als``): exact solves against numpy, a
monotone objective, determinism, chunking."""
from __future__ import annotations

import numpy as np
import pytest

from tfrec._keras import tf
from tfrec.layers.als import als_interactions, als_sweep, conjugate_gradient_solve, implicit_objective


def random_problem(seed=0, n_users=12, n_items=9, d=4, nnz=40, dtype=np.float64):
    rng = np.random.default_rng(seed)
    users = rng.integers(1, n_users, nnz)  # row 0 (and maybe others) without interactions
    items = rng.integers(1, n_items, nnz)  # repeated pairs included
    p = rng.normal(scale=0.3, size=(n_users, d)).astype(dtype)
    q = rng.normal(scale=0.3, size=(n_items, d)).astype(dtype)
    return users.astype(np.int64), items.astype(np.int64), p, q


def numpy_user_solve(users, items, p, q, l2, gram_weight):
    """Each user's exact solution of A_u p_u = b_u (the module docstring), one at a time."""
    gram = q.T @ q
    out = np.zeros_like(p)
    for u in range(len(p)):
        y = q[items[users == u]]
        a = gram_weight * gram + y.T @ y + l2 * max(len(y), 1) * np.eye(q.shape[1])
        out[u] = np.linalg.solve(a, y.sum(axis=0))
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


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-9), (np.float32, 1e-4)])
@pytest.mark.parametrize("chunk_size", [7, 1 << 20])
def test_enough_cg_steps_equal_the_exact_solve(dtype, tolerance, chunk_size):
    users, items, p, q = random_problem(dtype=dtype)
    l2, gram_weight = 0.1, 0.5
    data = als_interactions(users, items, len(p), len(q), dtype=tf.as_dtype(dtype))
    rows, cols = data.by_user
    gram = tf.linalg.matmul(q, q, transpose_a=True)
    solved = conjugate_gradient_solve(tf.constant(p), tf.constant(q), rows, cols, data.user_counts, gram, l2, gram_weight, cg_steps=30, chunk_size=chunk_size)
    expected = numpy_user_solve(users, items, p.astype(np.float64), q.astype(np.float64), l2, gram_weight)
    np.testing.assert_allclose(solved.numpy(), expected, atol=tolerance, rtol=tolerance)
    np.testing.assert_allclose(solved.numpy()[0], 0.0, atol=tolerance)  # no interactions: b = 0, the solution is 0


def test_item_half_sweep_is_the_symmetric_solve():
    users, items, p, q = random_problem(seed=1)
    l2, gram_weight = 0.05, 0.3
    data = als_interactions(users, items, len(p), len(q), dtype=tf.float64)
    new_p, new_q = als_sweep(tf.constant(p), tf.constant(q), data, l2, gram_weight, cg_steps=30)
    expected_p = numpy_user_solve(users, items, p, q, l2, gram_weight)
    expected_q = numpy_user_solve(items, users, q, expected_p, l2, gram_weight)  # users <-> items
    np.testing.assert_allclose(new_p.numpy(), expected_p, atol=1e-9)
    np.testing.assert_allclose(new_q.numpy(), expected_q, atol=1e-9)


def test_objective_equals_numpy():
    users, items, p, q = random_problem(seed=2)
    data = als_interactions(users, items, len(p), len(q), dtype=tf.float64)
    for chunk_size in (5, 1 << 20):
        value = implicit_objective(tf.constant(p), tf.constant(q), data, 0.1, 0.4, chunk_size=chunk_size)
        np.testing.assert_allclose(value.numpy(), numpy_objective(users, items, p, q, 0.1, 0.4), rtol=1e-12)


@pytest.mark.parametrize("cg_steps", [1, 3])
def test_objective_decreases_every_sweep(cg_steps):
    users, items, p, q = random_problem(seed=3, n_users=60, n_items=40, d=8, nnz=500, dtype=np.float32)
    data = als_interactions(users, items, len(p), len(q))
    p, q = tf.constant(p), tf.constant(q)
    values = [implicit_objective(p, q, data, 0.01, 0.2).numpy()]
    for _ in range(10):
        p, q = als_sweep(p, q, data, 0.01, 0.2, cg_steps=cg_steps, chunk_size=128)
        values.append(implicit_objective(p, q, data, 0.01, 0.2).numpy())
    assert np.all(np.diff(values) <= 1e-5 * values[0]), values
    assert values[-1] < 0.5 * values[0]


def test_deterministic_on_demo_data(demo):
    frame = demo.interactions
    users = frame["user_id"].astype("category").cat.codes.to_numpy(np.int64) + 1
    items = frame["item_id"].astype("category").cat.codes.to_numpy(np.int64) + 1
    n_users, n_items = users.max() + 1, items.max() + 1
    data = als_interactions(users, items, n_users, n_items)
    rng = np.random.default_rng(0)
    p0 = tf.constant(rng.normal(scale=0.1, size=(n_users, 16)), tf.float32)
    q0 = tf.constant(rng.normal(scale=0.1, size=(n_items, 16)), tf.float32)
    sweep = tf.function(als_sweep)
    runs = []
    for _ in range(2):
        p, q = p0, q0
        for _ in range(5):
            p, q = sweep(p, q, data, 0.01, 0.5, 3, 1000)
        runs.append((p.numpy(), q.numpy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    # chunking changes only the order of float sums
    p, q = p0, q0
    for _ in range(5):
        p, q = als_sweep(p, q, data, 0.01, 0.5, 3)
    np.testing.assert_allclose(p.numpy(), runs[0][0], atol=1e-4)
