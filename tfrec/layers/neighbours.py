"""k-nearest-neighbour building blocks: blocked top-k similarities, shrinkage, baselines.

The fitting side is small pure numpy/scipy functions (testable against a dense
reference); the serving side is two Keras layers holding the results as sparse,
fixed-size tensors (never an N x N matrix):

- ``NeighbourTable``: the top-k neighbours of every row (user or item), index and
  weight tensors ``[n + 1, k]``, plus the same table as a canonical sparse matrix for
  "sum of my similarities to your items" products.
- ``SparseRatings``: a CSR rating matrix with sorted ``row * n_cols + col`` keys, for
  "did u rate j, and how" look-ups inside a ``tf.function`` (``tf.searchsorted``).

Notation: the similarity is computed between the *rows* x of a sparse matrix whose
columns y are the other entity (item-based: rows are items, columns users). ``r_xy``
is the value, ``Y_ab`` the columns both a and b have (the co-rating support,
``n_ab = |Y_ab|``). Similarities (the co-rated forms are scikit-surprise's, to the
formula):

- ``cosine`` (co-rated, Surprise): ``sum_Y r_ay r_by / sqrt(sum_Y r_ay^2 * sum_Y r_by^2)``
- ``pearson`` (Surprise): the Pearson correlation over ``Y_ab`` with means over
  ``Y_ab``: ``(n P - S_a S_b) / sqrt((n Q_a - S_a^2)(n Q_b - S_b^2))`` (0 if the
  denominator is 0)
- ``adjusted_cosine`` (Sarwar et al. 2001): co-rated cosine of ``r_xy - mean_y``
  (item-based: ratings centred by each user's mean)
- ``msd`` (Surprise): ``1 / (sum_Y (r_ay - r_by)^2 / n_ab + 1)``
- ``pearson_baseline`` (Surprise): co-rated cosine of ``r_xy - (mu + b_x + b_y)``
  with baselines from `baseline_als`
- implicit cosine (``binary=True``; implicit's ``CosineRecommender``): every
  interaction is 1 and the norms run over *all* interactions:
  ``n_ab / sqrt(n_a * n_b)``

Then shrinkage on the support: ``sim * n_ab / (n_ab + shrinkage)``; for
``pearson_baseline`` Surprise's ``sim * (n_ab - 1) / (n_ab - 1 + shrinkage)``.
Pairs with ``n_ab < min_support`` (``pearson_baseline``: ``max(2, min_support)``)
get similarity 0. Only positive similarities are neighbours; a row never neighbours
itself; ties break by the lower index.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from tfrec._keras import keras, tf

RATING_SIMILARITIES = ("cosine", "pearson", "adjusted_cosine", "msd", "pearson_baseline")
#: Memory for one block's dense statistics (several float64 arrays of block x n).
BLOCK_BYTES = 192 * 2**20


# ---------------------------------------------------------------- pure helpers
def deduplicate(user_idx: np.ndarray, item_idx: np.ndarray, rating: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One rating per (user, item): the last occurrence wins (inputs in (user, time) order).

    Returns (user_idx, item_idx, rating) sorted by (user, item), as int64, int64, float64.
    """
    user_idx = np.asarray(user_idx, np.int64)
    item_idx = np.asarray(item_idx, np.int64)
    rating = np.asarray(rating, np.float64)
    if len(user_idx) == 0:
        return user_idx, item_idx, rating
    shape = (int(user_idx.max()) + 1, int(item_idx.max()) + 1)
    # fast path (no repeated pairs): scipy's COO -> CSR sorts by (user, item) in O(n)
    matrix = sp.coo_matrix((rating, (user_idx, item_idx)), shape=shape).tocsr()
    matrix.sum_duplicates()
    if matrix.nnz == len(user_idx):
        rows = np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(matrix.indptr))
        return rows, matrix.indices.astype(np.int64), matrix.data.astype(np.float64)
    key = user_idx * shape[1] + item_idx
    order = np.argsort(key, kind="stable")  # equal keys keep their input order
    key = key[order]
    last = np.ones(len(key), bool)
    last[:-1] = key[1:] != key[:-1]
    order = order[last]
    return user_idx[order], item_idx[order], rating[order]


def baseline_als(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    rating: np.ndarray,
    n_users: int,
    n_items: int,
    reg_u: float = 15.0,
    reg_i: float = 10.0,
    n_epochs: int = 10,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Surprise's baseline estimates by alternating least squares (``baseline_als``).

    ``mu`` = mean rating; then ``n_epochs`` times, items first:
    ``b_i = sum_{u in U_i} (r_ui - mu - b_u) / (reg_i + |U_i|)``, then
    ``b_u = sum_{i in I_u} (r_ui - mu - b_i) / (reg_u + |I_u|)``.
    Returns ``(mu, b_u float64[n_users], b_i float64[n_items])`` (index = entity index).
    The sums over U_i and I_u are sparse matrix-vector products.
    """
    rating = np.asarray(rating, np.float64)
    mu = float(rating.mean())
    ones = np.ones(len(rating))
    by_user = sp.csr_matrix((ones, (user_idx, item_idx)), shape=(n_users, n_items))
    by_item = by_user.T.tocsr()
    residual = rating - mu
    sum_u = np.bincount(user_idx, residual, minlength=n_users)
    sum_i = np.bincount(item_idx, residual, minlength=n_items)
    count_u = np.bincount(user_idx, minlength=n_users)
    count_i = np.bincount(item_idx, minlength=n_items)
    b_u = np.zeros(n_users)
    b_i = np.zeros(n_items)
    for _ in range(n_epochs):
        b_i = (sum_i - by_item @ b_u) / (reg_i + count_i)
        b_u = (sum_u - by_user @ b_i) / (reg_u + count_u)
    return mu, b_u, b_i


def support_shrinkage(support: np.ndarray, shrinkage: float, offset: int = 0) -> np.ndarray:
    """``(n - offset) / (n - offset + shrinkage)``, elementwise (1 when shrinkage is 0; 0
    where ``n - offset + shrinkage <= 0``)."""
    n = np.array(support, dtype=np.float64)
    if not shrinkage:
        return np.ones_like(n)
    if offset:
        n -= offset
    denominator = n + shrinkage
    positive = denominator > 0
    np.divide(n, denominator, out=n, where=positive)
    n[~positive] = 0.0
    return n


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def similarity_from_statistics(similarity: str, stats: dict[str, np.ndarray]) -> np.ndarray:
    """Similarity from co-rating statistics of row pairs (a, b), all dense, same shape.

    ``n``: support; ``P = sum_Y v_a v_b``; ``Qa = sum_Y v_a^2``; ``Qb = sum_Y v_b^2``;
    ``Sa = sum_Y v_a``; ``Sb = sum_Y v_b`` (sums over the co-rated columns ``Y_ab``, ``v``
    the similarity's values: ratings, centred ratings or baseline residuals). For
    ``binary`` the statistics are ``n`` and the row sizes ``na``, ``nb``.
    """
    if similarity == "binary":
        return _safe_divide(stats["n"], np.sqrt(stats["na"] * stats["nb"]))
    if similarity in ("cosine", "adjusted_cosine", "pearson_baseline"):
        return _safe_divide(stats["P"], np.sqrt(stats["Qa"] * stats["Qb"]))
    if similarity == "pearson":
        n = stats["n"]
        num = n * stats["P"] - stats["Sa"] * stats["Sb"]
        den = np.sqrt(np.maximum(n * stats["Qa"] - stats["Sa"] ** 2, 0) * np.maximum(n * stats["Qb"] - stats["Sb"] ** 2, 0))
        return _safe_divide(num, den)
    if similarity == "msd":
        squared = np.maximum(stats["Qa"] + stats["Qb"] - 2 * stats["P"], 0)
        return np.where(stats["n"] > 0, 1.0 / (_safe_divide(squared, stats["n"]) + 1.0), 0.0)
    raise ValueError(f"similarity must be one of {', '.join(RATING_SIMILARITIES)}; got {similarity!r}")


def _select_top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest finite entries per row, in ascending position order.

    ``values`` float[r, m] with -inf for "not a candidate"; ties at the k-th value keep
    the lowest positions. Returns int64[r, k], padded with -1.
    """
    r, m = values.shape
    if k < m:
        kth = np.partition(values, m - k, axis=1)[:, m - k]
        chosen = values >= kth[:, None]
        short = np.nonzero(np.isneginf(kth))[0]  # fewer than k candidates
        if len(short):
            chosen[short] &= np.isfinite(values[short])
        tied_rows = np.nonzero(chosen.sum(axis=1) > k)[0]
        if len(tied_rows):
            sub, sub_kth = values[tied_rows], kth[tied_rows, None]
            above, tied = sub > sub_kth, sub == sub_kth
            room = k - above.sum(axis=1, keepdims=True)
            chosen[tied_rows] = above | (tied & (np.cumsum(tied, axis=1) <= room))
    else:
        chosen = np.isfinite(values)
    rows, cols = np.nonzero(chosen)  # row-major: ascending positions within a row
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(r))[rows]
    positions = np.full((r, k), -1, np.int64)
    positions[rows, rank] = cols
    return positions


def _take(values: np.ndarray, index: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    safe = np.maximum(positions, 0)
    taken = np.where(positions >= 0, np.take_along_axis(values, safe, axis=1), -np.inf)
    return taken, np.where(positions >= 0, np.take_along_axis(index, safe, axis=1), 0)


def _best_first(values: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort rows by value descending (rows come in ascending index order: ties keep it)."""
    order = np.argsort(-values, axis=1, kind="stable")
    values = np.take_along_axis(values, order, axis=1)
    index = np.take_along_axis(index, order, axis=1)
    padding = ~np.isfinite(values)
    values[padding] = 0.0
    index[padding] = 0
    return index, values


def top_k_per_row(scores: np.ndarray, k: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The k largest *positive* entries of each row, best first, ties by lower column.

    ``scores`` float[b, n]; returns ``(columns int64[b, k], values float64[b, k])``;
    ``offset`` is added to the column numbers. Rows with fewer than k positive entries
    are padded with column 0 and value 0 (padding is not offset).
    """
    scores = np.array(scores, dtype=np.float64)
    scores[~(scores > 0)] = -np.inf  # also NaN
    columns = np.broadcast_to(np.arange(scores.shape[1], dtype=np.int64) + offset, scores.shape)
    values, index = _take(scores, columns, _select_top_k(scores, int(k)))
    return _best_first(values, index)


#: A column (the other entity) with at least this share of the rows' count in entries
#: goes to the dense part of the blocked products (BLAS), the rest stays sparse: a
#: dense column costs ~n_rows^2 multiply-adds, a sparse one ~entries^2 slower ones.
HEAVY_SHARE = 0.1
#: Memory for the dense (heavy-column) copies of the operands, all together.
DENSE_BYTES = 256 * 2**20
#: Threads for the sparse products of a block (the CPUs this process may use, at most 4).
PRODUCT_THREADS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)))


class _SplitOperand:
    """One operand of the blocked products, its columns split into sparse and dense parts."""

    def __init__(self, matrix: sp.csr_matrix, heavy: np.ndarray, dtype) -> None:
        light = np.ones(matrix.shape[1], bool)
        light[heavy] = False
        self.light = matrix[:, light].astype(dtype).tocsr()
        self.heavy = matrix[:, heavy].toarray().astype(dtype) if len(heavy) else None

    def times_transposed(self, other: _SplitOperand, start: int, stop: int, pool: ThreadPoolExecutor) -> np.ndarray:
        """``self[start:stop] @ other[start:].T`` as a dense array.

        The sparse part runs as row chunks on ``pool`` (scipy releases the GIL in its
        sparse products; every output row is computed alone, so chunking does not
        change a bit), the dense part as one BLAS product.
        """
        right = other.light[start:].T.tocsr()
        out = np.empty((stop - start, right.shape[1]), np.result_type(self.light.dtype, right.dtype))
        bounds = np.linspace(start, stop, PRODUCT_THREADS + 1).astype(int)

        def chunk(a: int, b: int) -> None:
            (self.light[a:b] @ right).toarray(out=out[a - start : b - start])

        for future in [pool.submit(chunk, a, b) for a, b in itertools.pairwise(bounds) if b > a]:
            future.result()
        if self.heavy is not None:
            out += self.heavy[start:stop] @ other.heavy[start:].T
        return out


def _heavy_columns(counts: np.ndarray, n_rows: int, n_operands: int, itemsize: int, heavy_share: float) -> np.ndarray:
    heavy = np.nonzero(counts >= max(2.0, heavy_share * n_rows))[0]
    budget = DENSE_BYTES // max(1, n_rows * n_operands * itemsize)
    if len(heavy) > budget:
        heavy = np.sort(heavy[np.lexsort((heavy, -counts[heavy]))[:budget]])
    return heavy


def _row_blocks(n_rows: int, n_cols: int, n_arrays: int, block_rows: int | None, width: int = 1) -> Iterator[tuple[int, int]]:
    if block_rows is None:
        # at least 2 * width rows: each block merges width + rows candidates into every later
        # row's running top-k, so that merging costs at most 1.5x the similarities themselves
        block_rows = max(1, BLOCK_BYTES // max(1, 8 * n_cols * n_arrays), 2 * width)
    for start in range(0, n_rows, block_rows):
        yield start, min(n_rows, start + block_rows)


def neighbour_table(
    matrix: sp.csr_matrix,
    k: int,
    similarity: str = "cosine",
    *,
    binary: bool = False,
    shrinkage: float = 0.0,
    min_support: int = 1,
    row_bias: np.ndarray | None = None,
    col_bias: np.ndarray | None = None,
    mu: float = 0.0,
    block_rows: int | None = None,
    heavy_share: float = HEAVY_SHARE,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k neighbours of every row of ``matrix`` (rows x columns, values = ratings).

    Blocked and symmetric: for each block of rows ``[s, e)`` the co-rating statistics
    against the rows ``[s, n)`` are products ``block @ rows[s:].T`` (sparse scipy products
    for light columns, in row chunks on ``PRODUCT_THREADS`` threads, plus dense BLAS
    products for heavy columns, see ``HEAVY_SHARE``),
    turned into similarities ``[e - s, n - s]`` and used twice: for the block's own rows
    (with the candidates kept from earlier blocks) and, transposed, as candidates for
    the rows after the block. Only the running top k per row is kept, so memory stays
    ``O(block * n + n * k)`` (block size from ``BLOCK_BYTES``, at least ``2 k`` rows) and
    every pair is computed once. Formulas: module docstring; ``binary=True`` is implicit's cosine on binarised
    interactions (``similarity`` must be "cosine"); ``row_bias``/``col_bias``/``mu`` are
    the baselines for ``pearson_baseline``.

    Returns ``(index int64[n, k'], weight float64[n, k'])``, ``k' = min(k, n - 1)`` (at
    least 1), best first with ties by lower index, padding index 0 / weight 0; callers
    keep row 0 empty so that index 0 is never a real neighbour.
    """
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    matrix.sum_duplicates()
    n_rows = matrix.shape[0]
    width = max(1, min(int(k), n_rows - 1))
    structure = matrix.copy()
    structure.data = np.ones_like(structure.data)
    col_counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
    offset = 0
    if binary:
        if similarity != "cosine":
            raise ValueError(f"binary (implicit) similarities support only 'cosine'; got {similarity!r}")
        name, dtype, operands = "binary", np.float32, {"B": structure}
        sizes = np.diff(structure.indptr).astype(np.float64)
        inverse_norm = np.where(sizes > 0, 1.0 / np.sqrt(np.maximum(sizes, 1.0)), 0.0).astype(np.float32)
        products = {"n": ("B", "B")}
    else:
        if similarity not in RATING_SIMILARITIES:
            raise ValueError(f"similarity must be one of {', '.join(RATING_SIMILARITIES)}; got {similarity!r}")
        name, dtype = similarity, np.float64
        values = matrix.copy()
        if similarity == "adjusted_cosine":
            col_means = _safe_divide(np.bincount(matrix.indices, matrix.data, minlength=matrix.shape[1]), col_counts)
            values.data = matrix.data - col_means[matrix.indices]
        elif similarity == "pearson_baseline":
            if row_bias is None or col_bias is None:
                raise ValueError("pearson_baseline needs row_bias and col_bias (see baseline_als)")
            rows = np.repeat(np.arange(n_rows), np.diff(matrix.indptr))
            values.data = matrix.data - (mu + row_bias[rows] + col_bias[matrix.indices])
            offset = 1
            min_support = max(2, min_support)
        squares = values.copy()
        squares.data = values.data**2
        operands = {"B": structure, "V": values, "V2": squares}
        products = {"n": ("B", "B"), "P": ("V", "V"), "Qa": ("V2", "B"), "Qb": ("B", "V2")}
        if similarity == "pearson":
            products.update({"Sa": ("V", "B"), "Sb": ("B", "V")})
    heavy = _heavy_columns(col_counts, n_rows, len(operands), np.dtype(dtype).itemsize, heavy_share)
    split = {key: _SplitOperand(m, heavy, dtype) for key, m in operands.items()}

    index = np.zeros((n_rows, width), np.int64)
    weight = np.zeros((n_rows, width), np.float64)
    kept_values = np.full((n_rows, width), -np.inf, dtype)  # candidates from earlier blocks, ascending index
    kept_index = np.zeros((n_rows, width), np.int64)
    with ThreadPoolExecutor(PRODUCT_THREADS) as pool:
        for start, stop in _row_blocks(n_rows, n_rows, len(products) + 3, block_rows, width):
            stats = {key: split[a].times_transposed(split[b], start, stop, pool) for key, (a, b) in products.items()}
            support = stats["n"]
            if name == "binary":  # float32 throughout: counts are exact, and memory traffic halves
                sims = support * inverse_norm[start:stop, None]
                sims *= inverse_norm[None, start:]
                if shrinkage:
                    factor = support + np.float32(shrinkage)
                    np.divide(support, factor, out=factor)
                    sims *= factor
                    del factor
            else:
                sims = similarity_from_statistics(name, stats)
                if shrinkage:
                    sims *= support_shrinkage(support, shrinkage, offset)
            invalid = ~(sims > 0)
            if min_support > 1:
                invalid |= support < min_support
            sims[invalid] = -np.inf
            del invalid
            block = np.arange(stop - start)
            sims[block, block] = -np.inf  # never your own neighbour
            del stats, support
            # the block's rows: candidates from earlier blocks (index < start), then this one
            candidates = np.concatenate([kept_values[start:stop], sims], axis=1)
            candidate_index = np.concatenate(
                [kept_index[start:stop], np.broadcast_to(np.arange(start, n_rows, dtype=np.int64), sims.shape)], axis=1
            )
            chosen = _take(candidates, candidate_index, _select_top_k(candidates, width))
            index[start:stop], weight[start:stop] = _best_first(*chosen)
            if stop < n_rows:  # later rows: this block's columns are candidates for them
                later = sims[:, stop - start :].T
                candidates = np.concatenate([kept_values[stop:], later], axis=1)
                candidate_index = np.concatenate(
                    [kept_index[stop:], np.broadcast_to(np.arange(start, stop, dtype=np.int64), later.shape)], axis=1
                )
                kept_values[stop:], kept_index[stop:] = _take(candidates, candidate_index, _select_top_k(candidates, width))
    return index, weight


# ---------------------------------------------------------------- serving layers
class NeighbourTable(keras.layers.Layer):
    """Top-k neighbours per row, stored sparse as fixed-size tensors.

    Weights: ``index`` int64[n + 1, k] and ``weight`` float32[n + 1, k] (row 0 = the
    out-of-vocabulary slot, empty; padding slots hold index 0, weight 0), sorted by
    weight descending, ties by lower index; and the same table inverted, by neighbour:
    for each entity j, the rows c that hold j (``owner_splits`` int64[n + 2], CSR
    offsets by j; ``owners`` int64[nnz], ascending within j; ``owner_weight``
    float32[nnz] = weight(c -> j); padding left out).

    - ``rows(x[B]) -> (index[B, k], weight[B, k])``
    - ``dense_rows(x[B]) -> float32[B, n + 1]``: the row's weights, -inf elsewhere
    - ``sum_over_owners(query ragged[B, None]) -> float32[B, n + 1]``:
      ``out[b, c] = sum_{j in query[b]} weight(c -> j)``, the sum of c's similarities to
      the query entities that are among c's top-k (query entities must be unique per row).
    """

    def __init__(self, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.index = tf.Variable(tf.zeros([1, 1], tf.int64), shape=tf.TensorShape([None, None]), trainable=False, name="index")
        self.weight = tf.Variable(tf.zeros([1, 1], tf.float32), shape=tf.TensorShape([None, None]), trainable=False, name="weight")
        self.owner_splits = tf.Variable([0, 0], shape=tf.TensorShape([None]), dtype=tf.int64, trainable=False, name="owner_splits")
        self.owners = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="owners")
        self.owner_weight = tf.Variable(tf.zeros([0], tf.float32), shape=tf.TensorShape([None]), trainable=False, name="owner_weight")
        self.coo_rows = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="coo_rows")
        self.coo_cols = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="coo_cols")
        self.coo_weight = tf.Variable(tf.zeros([0], tf.float32), shape=tf.TensorShape([None]), trainable=False, name="coo_weight")

    def set_table(self, index: np.ndarray, weight: np.ndarray) -> None:
        """index int[n + 1, k], weight float[n + 1, k] (row 0 empty, padding index 0)."""
        index = np.asarray(index, np.int64)
        weight = np.asarray(weight, np.float32)
        owner = np.repeat(np.arange(index.shape[0], dtype=np.int64), index.shape[1])
        flat_index, flat_weight = index.ravel(), weight.ravel()
        keep = (flat_index > 0) & (flat_weight > 0)
        owner, flat_index, flat_weight = owner[keep], flat_index[keep], flat_weight[keep]
        by_owner = np.argsort(owner * index.shape[0] + flat_index)  # canonical COO order: by row c, then j
        self.coo_rows.assign(owner[by_owner])
        self.coo_cols.assign(flat_index[by_owner])
        self.coo_weight.assign(flat_weight[by_owner])
        order = np.argsort(flat_index * index.shape[0] + owner)  # by neighbour j, then owner c (unique)
        counts = np.bincount(flat_index, minlength=index.shape[0])
        self.index.assign(index)
        self.weight.assign(weight)
        self.owner_splits.assign(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.owners.assign(owner[order])
        self.owner_weight.assign(flat_weight[order])
        self.built = True

    @property
    def n_rows(self) -> tf.Tensor:
        return tf.shape(self.index, out_type=tf.int64)[0]

    @tf.autograph.experimental.do_not_convert
    def rows(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.gather(self.index, x), tf.gather(self.weight, x)

    @tf.autograph.experimental.do_not_convert
    def dense_rows(self, x: tf.Tensor) -> tf.Tensor:
        index, weight = self.rows(x)
        batch = tf.shape(x, out_type=tf.int64)[0]
        keep = index > 0
        rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(index, out_type=tf.int64))
        where = tf.stack([tf.boolean_mask(rows, keep), tf.boolean_mask(index, keep)], axis=1)
        empty = tf.fill(tf.stack([batch, self.n_rows]), tf.constant(-np.inf, tf.float32))
        return tf.tensor_scatter_nd_update(empty, where, tf.boolean_mask(weight, keep))

    #: Costs that choose the path of ``sum_over_owners`` (measured on 2 CPU cores at 5M
    #: interactions, in units of one sparse-matrix multiply-add): a gathered pair, and
    #: building the CSR matrix, per stored entry.
    GATHER_COST = 300
    CSR_BUILD_COST = 80

    @tf.autograph.experimental.do_not_convert
    def sum_over_owners(self, query: tf.RaggedTensor) -> tf.Tensor:
        """``out[b, c] = sum_{j in query[b]} weight(c -> j)``, float32[B, n + 1].

        Two ways, the cheaper one per call: (a) gather the inverted rows of the query
        entities (every c holding j) and sum per (b, c), work = the query's total
        in-degree ("hits"); (b) one sparse (CSR) times dense product of the table with
        the query indicator, work = nnz * B plus building the CSR matrix. Small requests
        take (a), large batches (b) (a popular j is held by nearly every row). Both add
        a row's terms one by one in ascending j, so the result is bitwise the same on
        either path and does not depend on the rest of the batch.
        """
        n = self.n_rows
        batch = query.nrows(out_type=tf.int64)
        keys = tf.sort(query.value_rowids() * n + query.flat_values)  # each row's entities ascending
        query = tf.RaggedTensor.from_value_rowids(keys % n, keys // n, nrows=batch)
        starts = tf.gather(self.owner_splits, query.flat_values)
        lengths = tf.gather(self.owner_splits, query.flat_values + 1) - starts
        nnz = tf.shape(self.owners, out_type=tf.int64)[0]

        def gathered() -> tf.Tensor:
            positions = tf.ragged.range(starts, starts + lengths).flat_values
            segments = tf.repeat(query.value_rowids(), lengths) * n + tf.gather(self.owners, positions)
            sums = tf.math.unsorted_segment_sum(tf.gather(self.owner_weight, positions), segments, batch * n)
            return tf.reshape(sums, tf.stack([batch, n]))

        def product() -> tf.Tensor:
            table = tf.raw_ops.SparseTensorToCSRSparseMatrix(  # [c, j] = weight(c -> j)
                indices=tf.stack([self.coo_rows, self.coo_cols], axis=1), values=self.coo_weight, dense_shape=tf.stack([n, n])
            )
            where = tf.stack([query.value_rowids(), query.flat_values], axis=1)
            indicator = tf.scatter_nd(where, tf.ones_like(query.flat_values, tf.float32), tf.stack([batch, n]))
            return tf.raw_ops.SparseMatrixMatMul(a=table, b=indicator, transpose_b=True, transpose_output=True)

        hits = tf.reduce_sum(lengths)
        use_gather = hits * self.GATHER_COST <= nnz * (self.CSR_BUILD_COST + batch)
        return tf.cond(use_gather, gathered, product)

    def call(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return self.rows(x)


class SparseRatings(keras.layers.Layer):
    """A CSR rating matrix (rows x columns, one value per pair) with key look-up.

    Weights: ``row_splits`` int64[n_rows + 1], ``cols`` int64[nnz] (ascending within a
    row), ``values`` float32[nnz], ``keys`` int64[nnz] = ``row * n_cols + col``
    (ascending) and ``n_cols`` int64[].

    - ``rows(r[B]) -> ragged int64[B, None]``: the columns of each row
    - ``lookup(r[...], c[...]) -> (value float32[...], found bool[...])`` by binary search
    """

    def __init__(self, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.row_splits = tf.Variable([0, 0], shape=tf.TensorShape([None]), dtype=tf.int64, trainable=False, name="row_splits")
        self.cols = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="cols")
        self.values = tf.Variable(tf.zeros([0], tf.float32), shape=tf.TensorShape([None]), trainable=False, name="values")
        self.keys = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="keys")
        self.n_cols = tf.Variable(tf.constant(1, tf.int64), trainable=False, name="n_cols")

    def set_matrix(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, n_cols: int) -> None:
        """rows/cols/values: one entry per pair, sorted by (row, col)."""
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        counts = np.bincount(rows, minlength=n_rows)
        self.row_splits.assign(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.cols.assign(cols)
        self.values.assign(np.asarray(values, np.float32))
        self.keys.assign(rows * n_cols + cols)
        self.n_cols.assign(n_cols)
        self.built = True

    @tf.autograph.experimental.do_not_convert
    def rows(self, r: tf.Tensor) -> tf.RaggedTensor:
        table = tf.RaggedTensor.from_row_splits(self.cols, self.row_splits, validate=False)
        return tf.gather(table, r)

    @tf.autograph.experimental.do_not_convert
    def lookup(self, r: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        shape = tf.shape(r)
        query = tf.reshape(r * self.n_cols + c, [-1])
        last = tf.maximum(tf.size(self.keys, out_type=tf.int64) - 1, 0)
        position = tf.minimum(tf.searchsorted(self.keys, query, out_type=tf.int64), last)
        found = tf.gather(self.keys, position) == query
        values = tf.where(found, tf.gather(self.values, position), tf.zeros_like(query, tf.float32))
        return tf.reshape(values, shape), tf.reshape(found, shape)

    def call(self, r: tf.Tensor) -> tf.RaggedTensor:
        return self.rows(r)
