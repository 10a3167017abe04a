"""user_knn / item_knn: similarities against a dense plain-numpy reference, the blocked
top-k, baselines, the scoring formulas, and scikit-surprise / implicit on ML-100K."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import tfrec.layers.neighbours as neighbours_module
from tfrec._keras import tf
from tfrec.layers.neighbours import (
    RATING_SIMILARITIES,
    NeighbourTable,
    baseline_als,
    deduplicate,
    neighbour_table,
    support_shrinkage,
    top_k_per_row,
)
from tfrec.models import make_model
from tfrec.training import fit


# --------------------------------------------------------------- dense reference
def _random_matrix(seed=0, n_rows=31, n_cols=23, density=0.35):
    """Rows 1..n_rows-1 (row 0 empty, like the models), integer-ish ratings 1..5."""
    rng = np.random.default_rng(seed)
    dense = np.where(rng.random((n_rows, n_cols)) < density, rng.integers(1, 6, (n_rows, n_cols)).astype(float), 0.0)
    dense[0] = 0.0
    dense[5] = dense[6]  # two identical rows: exact ties
    dense[1:, 0] = np.where(rng.random(n_rows - 1) < 0.9, 4.0, 0.0)  # a heavy column
    dense[7, :] = 0.0  # an empty row
    return dense


def _reference_similarity(dense, similarity, binary, shrinkage, min_support, row_bias=None, col_bias=None, mu=0.0):
    """All-pairs similarity by the textbook loops (Surprise's definitions)."""
    n = dense.shape[0]
    mask = dense != 0
    col_means = np.array([dense[mask[:, y], y].mean() if mask[:, y].any() else 0.0 for y in range(dense.shape[1])])
    sims = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            common = mask[a] & mask[b]
            support = common.sum()
            if binary:
                sim = support / math.sqrt(mask[a].sum() * mask[b].sum()) if support else 0.0
            else:
                ra, rb = dense[a, common], dense[b, common]
                if similarity == "adjusted_cosine":
                    ra, rb = ra - col_means[common], rb - col_means[common]
                if similarity == "pearson_baseline":
                    ra = ra - (mu + row_bias[a] + col_bias[common])
                    rb = rb - (mu + row_bias[b] + col_bias[common])
                if similarity == "pearson" and support:
                    ra, rb = ra - ra.mean(), rb - rb.mean()
                if similarity == "msd":
                    sim = 1.0 / (np.mean((ra - rb) ** 2) + 1.0) if support else 0.0
                else:
                    den = math.sqrt((ra**2).sum() * (rb**2).sum())
                    sim = (ra * rb).sum() / den if den > 0 else 0.0
            if similarity == "pearson_baseline" and not binary:
                factor = (support - 1) / (support - 1 + shrinkage) if support - 1 + shrinkage > 0 else 0.0
                threshold = max(2, min_support)
            else:
                factor = support / (support + shrinkage) if shrinkage else 1.0
                threshold = max(1, min_support)
            sims[a, b] = sim * factor if support >= threshold else 0.0
    return sims


def _reference_top_k(sims, k):
    index = np.zeros((len(sims), k), np.int64)
    weight = np.zeros((len(sims), k))
    for row, values in enumerate(sims):
        candidates = [(-v, j) for j, v in enumerate(values) if v > 0]
        for slot, (v, j) in enumerate(sorted(candidates)[:k]):
            index[row, slot], weight[row, slot] = j, -v
    return index, weight


CASES = [(True, "cosine")] + [(False, name) for name in RATING_SIMILARITIES]


@pytest.mark.parametrize("binary,similarity", CASES)
@pytest.mark.parametrize("shrinkage,min_support", [(0.0, 1), (5.0, 3)])
@pytest.mark.parametrize("block_rows,heavy_share", [(None, 0.1), (4, 0.0), (7, 1e9)])
def test_neighbour_table_matches_dense_reference(binary, similarity, shrinkage, min_support, block_rows, heavy_share):
    dense = _random_matrix()
    rows, cols = np.nonzero(dense)
    mu, row_bias, col_bias = baseline_als(rows, cols, dense[rows, cols], dense.shape[0], dense.shape[1])
    reference = _reference_similarity(dense, similarity, binary, shrinkage, min_support, row_bias, col_bias, mu)
    k = 6
    index, weight = neighbour_table(
        sp.csr_matrix(dense), k, similarity, binary=binary, shrinkage=shrinkage, min_support=min_support,
        row_bias=row_bias, col_bias=col_bias, mu=mu, block_rows=block_rows, heavy_share=heavy_share,
    )
    chosen = _assert_matches_reference(index, weight, reference, k, binary)
    assert not chosen[0].any() and not chosen[7].any(), "empty rows have no neighbours"


def _assert_matches_reference(index, weight, reference, k, binary):
    """The table holds the reference's top k: equal weights, each chosen neighbour's
    reference similarity, equal sets except at floating-point near-ties, no row its own
    neighbour. Returns the mask of chosen slots."""
    ref_index, ref_weight = _reference_top_k(reference, k)
    tolerance = 1e-6 if binary else 1e-10  # the binary path computes in float32
    np.testing.assert_allclose(weight, ref_weight, atol=tolerance)
    chosen = index > 0
    np.testing.assert_allclose(weight[chosen], reference[np.nonzero(chosen)[0], index[chosen]], atol=tolerance)
    for row in range(len(reference)):
        values = np.sort(reference[row][reference[row] > 0])[::-1]
        if len(values) <= k or values[k - 1] - values[k] > 10 * tolerance:
            assert set(index[row][chosen[row]]) == set(ref_index[row][ref_weight[row] > 0])
    assert all(row not in set(index[row]) for row in range(1, len(reference))), "a row is its own neighbour"
    return chosen


# ------------------------------------------- the pruned sweep (thresholds from a sample)
def _count_candidates(monkeypatch):
    """Wrap ``_select_candidates`` to count the candidates the sweep keeps."""
    seen = []
    select = neighbours_module._select_candidates
    monkeypatch.setattr(neighbours_module, "_select_candidates", lambda rows, *rest: seen.append(len(rows)) or select(rows, *rest))
    return seen


def _power_law_matrix(seed=0, n_rows=301, n_cols=90):
    """Row 0 empty, lognormal row sizes, power-law column popularity, duplicate rows (exact ties)."""
    rng = np.random.default_rng(seed)
    popularity = (np.arange(n_cols) + 3.0) ** -1.2
    popularity /= popularity.sum()
    dense = np.zeros((n_rows, n_cols))
    for row in range(1, n_rows):
        size = int(np.clip(rng.lognormal(2.3, 0.8), 2, n_cols // 2))
        dense[row, rng.choice(n_cols, size, replace=False, p=popularity)] = rng.integers(1, 6, size)
    dense[11] = dense[12] = dense[13]
    dense[20] = 0.0
    return dense


def _binary_cosine_top_k(binary, k, shrinkage, min_support=1):
    """The binary cosine of every pair, dense, in the sweep's float32 operations, then its top k."""
    counts = (binary @ binary.T).toarray().astype(np.float32)
    sizes = counts.diagonal().astype(np.float64)
    inverse = np.where(sizes > 0, 1.0 / np.sqrt(np.maximum(sizes, 1.0)), 0.0).astype(np.float32)
    sims = counts * inverse[:, None]  # the row's norm first, as the sweep (and the blocked products before it)
    sims *= inverse[None, :]
    if shrinkage:
        sims *= counts / (counts + np.float32(shrinkage))
    sims[counts < min_support] = 0.0
    np.fill_diagonal(sims, 0.0)
    return top_k_per_row(sims, min(k, len(sims) - 1))


@pytest.mark.parametrize(
    "sample_every,block_rows,chunk_cols,budget",
    [(None, None, None, None), (None, 16, 48, 0), (3, 7, 32, None), (16, 64, 64, None), (2, 40, 8, None)],
)
@pytest.mark.parametrize("shrinkage,min_support", [(0.0, 1), (10.0, 1), (5.0, 3)])
def test_pruned_binary_sweep_equals_the_dense_top_k(sample_every, block_rows, chunk_cols, budget, shrinkage, min_support, monkeypatch):
    if budget is not None:
        monkeypatch.setattr(neighbours_module, "CANDIDATE_BUDGET", budget)  # the automatic switch to the pre-pass
        monkeypatch.setattr(neighbours_module, "MERGE_ROWS_PER_NEIGHBOUR", 0)  # ... to the pruned sweep
    seen = _count_candidates(monkeypatch)
    binary = sp.csr_matrix(_power_law_matrix() != 0, dtype=np.float32)
    k = 5
    index, weight = neighbour_table(
        binary, k, binary=True, shrinkage=shrinkage, min_support=min_support,
        block_rows=block_rows, chunk_cols=chunk_cols, sample_every=sample_every,
    )
    ref_index, ref_weight = _binary_cosine_top_k(binary, k, shrinkage, min_support)
    np.testing.assert_array_equal(index, ref_index)  # bit for bit: the same float32 operations, the same ties
    np.testing.assert_array_equal(weight, ref_weight)
    assert set(index[12]) >= {11, 13} and not index[20].any() and not index[0].any()
    counts = (binary @ binary.T).toarray()
    np.fill_diagonal(counts, 0)
    positive_pairs = int((counts >= max(1, min_support)).sum())  # ordered pairs, each a candidate without thresholds
    if sample_every or budget is not None:  # the thresholds did prune
        assert sum(seen) < 0.6 * positive_pairs, (sum(seen), positive_pairs)
    else:
        assert sum(seen) == positive_pairs


@pytest.mark.parametrize("block_rows", [None, 13, 64])
@pytest.mark.parametrize("shrinkage,min_support", [(0.0, 1), (10.0, 1), (5.0, 3)])
def test_merge_sweep_equals_the_dense_top_k(block_rows, shrinkage, min_support, monkeypatch):
    """Large problems with k a large share of the rows take the running top-k merge:
    bit for bit the same table as the dense reference, no candidate lists."""
    monkeypatch.setattr(neighbours_module, "CANDIDATE_BUDGET", 0)
    seen = _count_candidates(monkeypatch)
    binary = sp.csr_matrix(_power_law_matrix() != 0, dtype=np.float32)
    index, weight = neighbour_table(binary, 5, binary=True, shrinkage=shrinkage, min_support=min_support, block_rows=block_rows)
    ref_index, ref_weight = _binary_cosine_top_k(binary, 5, shrinkage, min_support)
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_array_equal(weight, ref_weight)
    assert not seen, "the merge sweep keeps no candidate lists"


@pytest.mark.parametrize("binary,similarity", CASES)
def test_merge_sweep_matches_dense_reference_for_every_similarity(binary, similarity, monkeypatch):
    monkeypatch.setattr(neighbours_module, "CANDIDATE_BUDGET", 0)
    dense = np.vstack([_random_matrix(seed=4), _random_matrix(seed=5)[1:]])
    rows, cols = np.nonzero(dense)
    mu, row_bias, col_bias = baseline_als(rows, cols, dense[rows, cols], dense.shape[0], dense.shape[1])
    reference = _reference_similarity(dense, similarity, binary, 5.0, 2, row_bias, col_bias, mu)
    index, weight = neighbour_table(
        sp.csr_matrix(dense), 4, similarity, binary=binary, shrinkage=5.0, min_support=2, row_bias=row_bias, col_bias=col_bias, mu=mu, block_rows=9
    )
    _assert_matches_reference(index, weight, reference, 4, binary)


@pytest.mark.parametrize("binary,similarity", CASES)
@pytest.mark.parametrize("sample_every,block_rows,chunk_cols,heavy_share", [(3, 8, 16, 0.1), (5, 32, 40, 1e9), (2, 5, 5, 0.0)])
def test_pruned_sweep_matches_dense_reference(binary, similarity, sample_every, block_rows, chunk_cols, heavy_share, monkeypatch):
    seen = _count_candidates(monkeypatch)
    dense = np.vstack([_random_matrix(seed=4), _random_matrix(seed=5)[1:]])  # 61 rows, row 0 and 7 empty
    rows, cols = np.nonzero(dense)
    mu, row_bias, col_bias = baseline_als(rows, cols, dense[rows, cols], dense.shape[0], dense.shape[1])
    reference = _reference_similarity(dense, similarity, binary, 5.0, 2, row_bias, col_bias, mu)
    k = 4
    index, weight = neighbour_table(
        sp.csr_matrix(dense), k, similarity, binary=binary, shrinkage=5.0, min_support=2, row_bias=row_bias,
        col_bias=col_bias, mu=mu, block_rows=block_rows, chunk_cols=chunk_cols, heavy_share=heavy_share,
        sample_every=sample_every,
    )
    _assert_matches_reference(index, weight, reference, k, binary)
    assert sum(seen) < (reference > 0).sum(), "the thresholds pruned nothing"


def test_select_candidates_packed_keys_equal_lexsort():
    rng = np.random.default_rng(7)
    keys = rng.choice(40 * 3000, 5000, replace=False)  # distinct (row, column) pairs, as the sweep makes them
    rows, cols = keys // 3000, keys % 3000
    values = rng.choice(np.float32([0.5, 0.25, 1e-40, 0.3, 1.0]), 5000) * rng.choice(np.float32([1, 1, 0.999]), 5000)
    for width in (1, 7, 200):
        packed = neighbours_module._select_candidates(rows, cols, values.astype(np.float32), 40, width)
        by_lexsort = neighbours_module._select_candidates(rows, cols, values.astype(np.float64), 40, width)
        np.testing.assert_array_equal(packed[0], by_lexsort[0])
        np.testing.assert_array_equal(packed[1], by_lexsort[1])
        for row in range(40):  # best first, ties by lower column, padding 0 / 0
            pairs = sorted({(-values[i], cols[i]) for i in np.nonzero(rows == row)[0]})[:width]
            assert packed[0][row][: len(pairs)].tolist() == [c for _, c in pairs]
            assert packed[1][row][: len(pairs)].tolist() == [-v for v, _ in pairs]
            assert not packed[0][row][len(pairs) :].any()


@pytest.mark.parametrize("sample_every", [None, 4])
@pytest.mark.parametrize("side", ["user", "item"])
def test_binary_table_is_the_exact_top_k_on_ml100k(ml100k, side, sample_every, monkeypatch):
    """user_knn's default similarity (binary cosine, shrinkage 10, 50 neighbours), users and
    items, without the pre-pass (ML-100K is below ``CANDIDATE_BUDGET``) and forced to use it."""
    seen = _count_candidates(monkeypatch)
    frame = ml100k.interactions
    users = frame["user_id"].astype(int).to_numpy()
    items = frame["item_id"].astype(int).to_numpy()
    rows, cols = (users, items) if side == "user" else (items, users)
    binary = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)))  # row 0 empty, as in the models
    binary.sum_duplicates()
    binary.data[:] = 1.0
    k = 50
    index, weight = neighbour_table(binary, k, binary=True, shrinkage=10.0, sample_every=sample_every)
    ref_index, ref_weight = _binary_cosine_top_k(binary, k, 10.0)
    np.testing.assert_array_equal(index, ref_index)
    np.testing.assert_array_equal(weight, ref_weight)
    if sample_every:
        assert sum(seen) < 0.5 * binary.shape[0] ** 2


def test_exact_ties_break_by_lower_index():
    dense = _random_matrix()
    index, weight = neighbour_table(sp.csr_matrix(dense), 30, binary=True, block_rows=3)
    for row in range(1, len(dense)):
        if row in (5, 6):
            continue
        where = {j: slot for slot, j in enumerate(index[row])}
        if 5 in where and 6 in where:
            assert weight[row, where[5]] == weight[row, where[6]] and where[5] < where[6]
    columns, values = top_k_per_row(np.array([[0.0, 2.0, 1.0, 2.0, 2.0, -1.0]]), 2)
    assert columns.tolist() == [[1, 3]] and values.tolist() == [[2.0, 2.0]]
    columns, values = top_k_per_row(np.array([[0.0, 0.5, 0.0, -3.0]]), 3, offset=10)
    assert columns.tolist() == [[11, 0, 0]] and values.tolist() == [[0.5, 0.0, 0.0]]


def test_top_k_per_row_matches_lexsort():
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=(50, 40)), 1)  # many ties
    for k in (1, 5, 39, 40, 60):
        columns, values = top_k_per_row(scores, k)
        for row in range(len(scores)):
            order = [j for j in np.lexsort((np.arange(40), -scores[row])) if scores[row, j] > 0][:k]
            assert columns[row][: len(order)].tolist() == order
            assert np.all(values[row][len(order):] == 0)


def test_shrinkage_baselines_and_deduplication():
    np.testing.assert_allclose(support_shrinkage(np.array([0, 1, 10]), 10.0), [0.0, 1 / 11, 0.5])
    np.testing.assert_allclose(support_shrinkage(np.array([1, 2, 101]), 100.0, offset=1), [0.0, 1 / 101, 0.5])
    np.testing.assert_array_equal(support_shrinkage(np.array([3, 4]), 0.0), [1.0, 1.0])
    # Surprise's baseline_als, as its loops are written
    rng = np.random.default_rng(1)
    users, items = rng.integers(0, 9, 60), rng.integers(0, 7, 60)
    users, items, ratings = deduplicate(users, items, rng.integers(1, 6, 60).astype(float))
    mu, b_u, b_i = baseline_als(users, items, ratings, 9, 7, reg_u=15, reg_i=10, n_epochs=10)
    ref_u, ref_i, ref_mu = np.zeros(9), np.zeros(7), ratings.mean()
    for _ in range(10):
        for i in range(7):
            sel = items == i
            ref_i[i] = (ratings[sel] - ref_mu - ref_u[users[sel]]).sum() / (10 + sel.sum())
        for u in range(9):
            sel = users == u
            ref_u[u] = (ratings[sel] - ref_mu - ref_i[items[sel]]).sum() / (15 + sel.sum())
    assert mu == pytest.approx(ref_mu)
    np.testing.assert_allclose(b_u, ref_u)
    np.testing.assert_allclose(b_i, ref_i)
    u, i, r = deduplicate([2, 1, 2, 2], [5, 3, 5, 4], [1.0, 2.0, 3.0, 4.0])
    assert u.tolist() == [1, 2, 2] and i.tolist() == [3, 4, 5] and r.tolist() == [2.0, 4.0, 3.0]


# ------------------------------------------------------- models on the demo data
def _dense_ratings(model):
    n_users, n_items = model.users.size, model.items.size
    splits = model.ratings.row_splits.numpy()
    cols, values = model.ratings.cols.numpy(), model.ratings.values.numpy()
    dense = np.zeros((n_users, n_items))
    for u in range(n_users):
        dense[u, cols[splits[u] : splits[u + 1]]] = values[splits[u] : splits[u + 1]]
    return dense


def _table(model):
    return model.neighbour_table.index.numpy(), model.neighbour_table.weight.numpy()


@pytest.mark.parametrize("path", ["gather", "sparse product"])
def test_item_knn_ranking_formula(fitted, path, monkeypatch):
    monkeypatch.setattr(NeighbourTable, "GATHER_COST", 0 if path == "gather" else 10**12)
    model = fitted.model("item_knn")
    index, weight = _table(model)
    rated = _dense_ratings(model) > 0
    users = np.arange(1, 9)
    history = np.array([[0, 3], [5, 0], [0, 0], [7, 8], [1, 1], [0, 0], [2, 0], [9, 10]])
    scores = model.score_candidates(tf.constant(users, tf.int64), tf.constant(history, tf.int64)).numpy()
    for row, user in enumerate(users):
        query = set(np.nonzero(rated[user])[0]) | (set(history[row]) - {0})
        expected = np.zeros(model.items.size)
        for c in range(1, model.items.size):
            expected[c] = sum(w for j, w in zip(index[c], weight[c]) if j in query)
        np.testing.assert_allclose(scores[row], expected, rtol=1e-5, atol=1e-6)


def test_both_summation_paths_are_bitwise_equal(fitted, monkeypatch):
    model = fitted.model("item_knn")
    users = tf.range(model.users.size, dtype=tf.int64)
    history = tf.zeros([model.users.size, 0], tf.int64)
    results = []
    for cost in (0, 10**12):
        monkeypatch.setattr(NeighbourTable, "GATHER_COST", cost)
        results.append(model.score_candidates(users, history).numpy())
    np.testing.assert_array_equal(results[0], results[1])
    monkeypatch.setattr(NeighbourTable, "GATHER_COST", 0)
    for user in range(model.users.size):  # a single request: the gathered path without row indices
        alone = model.score_candidates(tf.constant([user], tf.int64), tf.zeros([1, 0], tf.int64)).numpy()
        np.testing.assert_array_equal(alone[0], results[0][user], err_msg=f"user {user} alone")


def test_item_knn_similar_items_is_the_table_row(fitted):
    model = fitted.model("item_knn")
    memory, _, _ = fitted.exported("item_knn")
    index, weight = _table(model)
    item = model.items.ids.numpy()[3].decode()
    ids, scores = memory.similar_items([item], k=5)
    expected = [model.items.ids.numpy()[j].decode() for j in index[3][:5]]
    assert list(ids[0]) == expected
    np.testing.assert_allclose(scores[0], weight[3][:5], rtol=1e-6)


def test_user_knn_ranking_formula_and_fold_in(fitted):
    model = fitted.model("user_knn")
    index, weight = _table(model)
    rated = _dense_ratings(model) > 0
    users = np.array([1, 2, 3, 0])
    history = np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0], [4, 9, 4]])
    scores = model.score_candidates(tf.constant(users, tf.int64), tf.constant(history, tf.int64)).numpy()
    for row, user in enumerate(users[:3]):
        expected = (weight[user][:, None] * rated[index[user]]).sum(axis=0)
        np.testing.assert_allclose(scores[row], expected, rtol=1e-5, atol=1e-6)
    # fold-in: binary cosine of the history {4, 9} against every user, shrunk, top k
    h = {4, 9}
    sims = np.zeros(model.users.size)
    for v in range(1, model.users.size):
        overlap = len(h & set(np.nonzero(rated[v])[0]))
        if overlap >= max(model.min_support, 1):
            shrink = overlap / (overlap + model.shrinkage_value)
            sims[v] = overlap / math.sqrt(len(h) * rated[v].sum()) * shrink
    neighbours, weights = model.fold_in(tf.constant(history[3:], tf.int64))
    ref_index, ref_weight = _reference_top_k(sims[None, :], neighbours.shape[1])
    np.testing.assert_allclose(weights.numpy(), ref_weight, rtol=1e-6)
    expected = (ref_weight[0][:, None] * rated[ref_index[0]]).sum(axis=0)
    np.testing.assert_allclose(scores[3], expected, rtol=1e-5, atol=1e-6)


def _reference_estimate(model, user, item, dense, rating_form):
    """Surprise's KNNBasic / KNNWithMeans / KNNBaseline estimate from the model's table."""
    index, weight = _table(model)
    x, y = (user, item) if model.user_based else (item, user)
    mu = float(model.baseline_mean.numpy())
    b_u, b_i = model.user_bias.numpy(), model.item_bias.numpy()
    means = model.row_means.numpy()
    used = []
    for j, w in zip(index[x], weight[x]):
        r = dense[j, y] if model.user_based else dense[y, j]
        if j > 0 and w > 0 and r != 0:
            used.append((j, w, r))
    used = used[: model.rating_neighbours]
    sum_w = sum(w for _, w, _ in used)
    enough = len(used) >= model.min_rating_neighbours and sum_w > 0
    if rating_form == "basic":
        return sum(w * r for _, w, r in used) / sum_w if enough else float(model.rating_range.numpy()[1])
    if rating_form == "means":
        base, residual = means[x], [r - means[j] for j, _, r in used]
    else:
        base = mu + b_u[user] + b_i[item]
        residual = [r - (mu + (b_u[j] + b_i[item] if model.user_based else b_u[user] + b_i[j])) for j, _, r in used]
    return base + (sum(w * e for (_, w, _), e in zip(used, residual)) / sum_w if enough else 0.0)


@pytest.mark.parametrize("name", ["item_knn", "user_knn"])
@pytest.mark.parametrize("rating_form", ["basic", "means", "baseline"])
def test_rating_prediction_formula(demo_split, name, rating_form):
    model = make_model(
        name, rating_form=rating_form, feedback="explicit", similarity="pearson", neighbours=8, rating_neighbours=3, min_rating_neighbours=2, shrinkage=0.0
    )
    fit(model, demo_split.train, verbose=0)
    dense = _dense_ratings(model)
    rng = np.random.default_rng(0)
    users = rng.integers(1, model.users.size, 40)
    items = rng.integers(1, model.items.size, 40)
    predicted = model.score_pairs(tf.constant(users, tf.int64), tf.constant(items, tf.int64)).numpy()
    expected = [_reference_estimate(model, u, i, dense, rating_form) for u, i in zip(users, items)]
    np.testing.assert_allclose(predicted, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"similarity": "pearson"}, "feedback='explicit'"),
        ({"rating_form": "median"}, "rating_form must be one of"),
        ({"similarity": "jaccard", "feedback": "explicit"}, "similarity must be one of"),
        ({"neighbours": 0}, "neighbours must be an integer"),
        ({"shrinkage": -1.0}, "shrinkage must be None .* or a number"),
    ],
)
def test_bad_parameters_are_named(demo, params, match):
    with pytest.raises(ValueError, match=match):
        fit(make_model("item_knn", **params), demo, verbose=0)


# --------------------------------------------------------------------- ML-100K
SURPRISE_CASES = {
    # name, Surprise class, its options, tfrec parameters (neighbours=5000: the full similarity row)
    "item KNNBaseline pearson_baseline": (
        "item_knn", "KNNBaseline", {"sim_options": {"name": "pearson_baseline", "user_based": False}},
        {"feedback": "explicit", "similarity": "pearson_baseline", "rating_form": "baseline"},
    ),
    "user KNNWithMeans msd": (
        "user_knn", "KNNWithMeans", {"sim_options": {"name": "msd", "user_based": True}},
        {"feedback": "explicit", "similarity": "msd", "rating_form": "means", "shrinkage": 0.0},
    ),
    "item KNNBasic pearson min_support min_k": (
        "item_knn", "KNNBasic", {"k": 20, "min_k": 2, "sim_options": {"name": "pearson", "user_based": False, "min_support": 3}},
        {"feedback": "explicit", "similarity": "pearson", "rating_form": "basic", "shrinkage": 0.0, "rating_neighbours": 20, "min_rating_neighbours": 2,
         "min_support": 3},
    ),
}


@pytest.fixture(scope="module")
def u1(ml100k):
    from tfrec.data import make_split

    return make_split(ml100k, "u1")


@pytest.mark.parametrize("case", list(SURPRISE_CASES))
@pytest.mark.slow
def test_predictions_equal_surprise_on_u1(u1, case):
    surprise = pytest.importorskip("surprise")
    from tfrec.serving import ServedModel

    name, algo_name, options, params = SURPRISE_CASES[case]
    train, test = u1.train.interactions, u1.test
    reader = surprise.Reader(rating_scale=(1, 5))
    frame = pd.DataFrame({"u": train["user_id"], "i": train["item_id"], "r": train["rating"].astype(float)})
    algo = getattr(surprise, algo_name)(verbose=False, **options)
    algo.fit(surprise.Dataset.load_from_df(frame, reader).build_full_trainset())
    expected = np.array([algo.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"])])
    model = make_model(name, neighbours=5000, **params)
    fit(model, u1.train, verbose=0)
    predicted = ServedModel.from_model(model).score(test["user_id"].tolist(), test["item_id"].tolist())
    known = (test["user_id"].isin(set(train["user_id"])) & test["item_id"].isin(set(train["item_id"]))).to_numpy()
    assert known.sum() > 19_900 and (~known).sum() > 0
    np.testing.assert_allclose(predicted[known], expected[known], atol=1e-4)
    # unknown user or item: Surprise's answer too (KNNBaseline: mu + b_u; else the mean)
    np.testing.assert_allclose(predicted[~known], expected[~known], atol=1e-4)


@pytest.mark.filterwarnings("ignore:Method expects CSR input")
def test_binary_table_equals_implicit_cosine(ml100k):
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    from tfrec.data import make_split

    train = make_split(ml100k, "temporal").train.interactions
    users = pd.factorize(train["user_id"])[0]
    items = pd.factorize(train["item_id"])[0]
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)))
    reference = implicit_nn.CosineRecommender(K=100)
    reference.fit(matrix, show_progress=False)
    similarity = reference.similarity.tocsr()  # row i: i itself and its 99 nearest items
    rows = sp.vstack([sp.csr_matrix((1, matrix.shape[0])), matrix.T]).tocsr()  # row 0 empty, as in the models
    index, weight = neighbour_table(rows, 99, binary=True)
    counts = (matrix.T @ matrix).toarray().astype(np.float64)
    cosine = counts / np.sqrt(np.outer(counts.diagonal(), counts.diagonal()))
    for item in range(matrix.shape[1]):
        data = similarity[item].toarray().ravel()
        data[item] = 0.0
        # the same top-99 similarities (which of several tied items is kept differs:
        # implicit keeps the first found, tfrec the lower index)
        ours, neighbours = weight[item + 1][index[item + 1] > 0], index[item + 1][index[item + 1] > 0] - 1
        np.testing.assert_allclose(ours, np.sort(data[data > 0])[::-1][:99], rtol=1e-5)
        np.testing.assert_allclose(ours, cosine[item, neighbours], rtol=1e-6)


@pytest.fixture(scope="module")
def temporal_metrics(ml100k):
    from tfrec.data import make_split
    from tfrec.evaluation import evaluate
    from tfrec.serving import ServedModel

    split = make_split(ml100k, "temporal")
    metrics = {}
    for name in ("item_knn", "user_knn"):
        model = fit(make_model(name), split.train, verbose=0).model
        metrics[name] = evaluate(ServedModel.from_model(model), split)
    return metrics


@pytest.mark.slow
def test_protocol_t_at_or_above_peer_knn_rows(temporal_metrics):
    # PROTOCOLS.md: implicit CosineRecommender K=100: NDCG@10 0.1853, R@10 0.1087;
    # UserKNN cosine k=50, sum of neighbour similarity: NDCG@10 0.1867, R@10 0.1053.
    item, user = temporal_metrics["item_knn"], temporal_metrics["user_knn"]
    assert item["ndcg@10"] >= 0.1853 and item["recall@10"] >= 0.1087
    assert user["ndcg@10"] >= 0.1867 and user["recall@10"] >= 0.1053
    # measured with the defaults (deterministic)
    assert item["ndcg@10"] == pytest.approx(0.1915, abs=5e-4)
    assert user["ndcg@10"] == pytest.approx(0.1894, abs=5e-4)
