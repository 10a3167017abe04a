"""k-nearest-neighbour building blocks: blocked top-k similarities, shrinkage, baselines.

The fitting side is small pure numpy/scipy functions (testable against a dense
reference); the serving side is two Keras layers holding the results as sparse,
fixed-size tensors (never an N x N matrix):

- ``NeighbourTable``: the top-k neighbours of every row (user or item), index and
  weight tensors ``[n + 1, k]``, plus the same table as a canonical sparse matrix for
  "sum of my similarities to your items" products.
- ``SparseRatings``: a CSR rating matrix with sorted ``row * n_cols + col`` keys, for
  "did u rate j, and how" look-ups inside a ``tf.function`` (``tf.searchsorted``).

The neighbour search, `neighbour_table`, is exact and never ranks an n x n matrix:
every pair's similarity is computed once, from sparse products in row-block x
column-chunk tiles, and a tile keeps only the pairs that reach their row's threshold,
a lower bound of the row's k-th best similarity found first against a sample of the
rows (about ``k * SAMPLE_EVERY`` candidates per row are kept and ranked, not n).

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

import os
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
#: goes to the dense part of the products (BLAS), the rest stays sparse: a dense column
#: costs ~n_rows^2 multiply-adds, a sparse one ~entries^2 slower ones.
HEAVY_SHARE = 0.1
#: Memory for the dense (heavy-column) copies of the operands, all together.
DENSE_BYTES = 256 * 2**20
#: Threads for the tiles of a block (the CPUs this process may use, at most 4).
PRODUCT_THREADS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)))
#: Rows per block, and entries per tile (block rows x column chunk): a tile's few dense
#: arrays stay within the CPU caches.
BLOCK_ROWS = 256
TILE_ENTRIES = 2**20
#: The threshold pre-pass samples every ``SAMPLE_EVERY``-th row when an unpruned sweep
#: could keep more than ``CANDIDATE_BUDGET`` pairs (``n_rows^2 / 2``); smaller problems
#: keep every positive pair as a candidate and skip it.
SAMPLE_EVERY = 16
CANDIDATE_BUDGET = 2**24
#: Thresholds are lowered by this relative margin, so that a pair whose similarity is
#: recomputed in another summation order (a few ulps away) is never lost.
THRESHOLD_MARGIN = 1e-4
#: With at most this many rows per neighbour kept (k a large share of the rows: item_knn's
#: 300 neighbours among 14k items at 5M interactions), thresholds from a sample prune
#: little and the candidate lists cost more than the running top-k merge of whole blocks
#: (item_knn at 5M: 21.8 s pruned, 13.1 s merged); above it (user_knn's 50 among 138k
#: users at 20M) pruning wins. Forced ``sample_every`` always prunes.
MERGE_ROWS_PER_NEIGHBOUR = 256


class _SplitOperand:
    """One operand of the products, its columns split into a sparse and a dense part.

    ``right(rows)`` is the same rows transposed for the right-hand side of a product
    (built once per column chunk, never per block).
    """

    def __init__(self, matrix: sp.csr_matrix, heavy: np.ndarray, dtype) -> None:
        light = np.ones(matrix.shape[1], bool)
        light[heavy] = False
        self.light = matrix[:, light].astype(dtype).tocsr()
        self.heavy = matrix[:, heavy].toarray().astype(dtype) if len(heavy) else None

    def right(self, rows: slice | np.ndarray) -> tuple[sp.csr_matrix, np.ndarray | None]:
        return self.light[rows].T.tocsr(), (self.heavy[rows] if self.heavy is not None else None)

    def times(self, start: int, stop: int, right: tuple[sp.csr_matrix, np.ndarray | None]) -> np.ndarray:
        """``self[start:stop] @ right`` as a dense array (scipy releases the GIL here)."""
        light, heavy = right
        out = np.empty((stop - start, light.shape[1]), np.result_type(self.light.dtype, light.dtype))
        (self.light[start:stop] @ light).toarray(out=out)
        if heavy is not None:
            out += self.heavy[start:stop] @ heavy.T
        return out


def _heavy_columns(counts: np.ndarray, n_rows: int, n_operands: int, itemsize: int, heavy_share: float) -> np.ndarray:
    heavy = np.nonzero(counts >= max(2.0, heavy_share * n_rows))[0]
    budget = DENSE_BYTES // max(1, n_rows * n_operands * itemsize)
    if len(heavy) > budget:
        heavy = np.sort(heavy[np.lexsort((heavy, -counts[heavy]))[:budget]])
    return heavy


def _select_candidates(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``width`` best candidates, best first, ties by lower column.

    ``rows`` in ``[0, n)``, ``values`` positive; returns ``(index int64[n, width], weight
    float64[n, width])``, padding index 0 / weight 0. float32 values are ranked by one
    sort of packed ``(row, value bits descending, column)`` keys (the bits of a positive
    float order like the float), ~25x faster than ``np.lexsort``.
    """
    index = np.zeros((n, width), np.int64)
    weight = np.zeros((n, width), np.float64)
    if not len(rows):
        return index, weight
    col_bits = max(1, int(cols.max()).bit_length())
    row_bits = max(1, (n - 1).bit_length())
    if values.dtype == np.float32 and row_bits + 31 + col_bits <= 64:
        top = np.uint64(0x7FFFFFFF)
        keys = rows.astype(np.uint64) << np.uint64(31 + col_bits)
        keys |= (top - values.view(np.uint32).astype(np.uint64)) << np.uint64(col_bits)
        keys |= cols.astype(np.uint64)
        keys.sort()
        rows = (keys >> np.uint64(31 + col_bits)).astype(np.int64)
        cols = (keys & np.uint64((1 << col_bits) - 1)).astype(np.int64)
        values = (top - ((keys >> np.uint64(col_bits)) & top)).astype(np.uint32).view(np.float32)
    else:
        order = np.lexsort((cols, -values, rows))
        rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    keep = rank < width
    index[rows[keep], rank[keep]] = cols[keep]
    weight[rows[keep], rank[keep]] = values[keep]
    return index, weight


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
    chunk_cols: int | None = None,
    sample_every: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k neighbours of every row of ``matrix`` (rows x columns, values = ratings); exact.

    Every pair's co-rating statistics are products of sparse operands (scipy for light
    columns, dense BLAS for heavy ones, ``HEAVY_SHARE``), computed once per pair: the
    rows are swept in blocks ``[s, e)`` of ``block_rows`` (``BLOCK_ROWS``), each against
    the rows ``[s, n)`` in column chunks of ``chunk_cols`` (tiles of ``TILE_ENTRIES``,
    run on ``PRODUCT_THREADS`` threads), and a tile's similarities serve both the block's
    rows and, transposed, the later rows. What is bounded is everything per pair beyond
    the product: no tile is ever ranked. A tile keeps only the pairs at or above the
    threshold of their row, a lower bound of that row's k-th best similarity known
    before the sweep, and each row's final top k is chosen among its kept candidates
    once all of them are in (after its own block).

    The thresholds come from a pre-pass: every row against a sample of the rows (every
    ``sample_every``-th, ``SAMPLE_EVERY``): the k-th best similarity within a subset is
    at most the k-th best overall, so every pair that belongs in a row's top k (ties at
    the k-th value included) reaches its threshold (lowered by ``THRESHOLD_MARGIN``
    against rounding); a row with fewer than k positive similarities in the sample keeps
    all its positive ones. The pre-pass costs ``2 / sample_every`` of the sweep and keeps
    about ``k * sample_every`` candidates per row instead of all ``n``. Small problems
    (``n^2 / 2 <= CANDIDATE_BUDGET``) skip it and keep every positive pair. The result
    is the exact top k either way (same formulas, same ties); only the memory for the
    candidates and their final ranking depend on the thresholds.

    Formulas: module docstring; ``binary=True`` is implicit's cosine on binarised
    interactions (``similarity`` must be "cosine"; float32); ``row_bias``/``col_bias``/
    ``mu`` are the baselines for ``pearson_baseline``.

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
    right_keys = sorted({b for _, b in products.values()})

    def similarities(start: int, stop: int, right: dict, columns: np.ndarray) -> np.ndarray:
        """Rows ``[start, stop)`` against the rows ``columns`` (``right``: their operands);
        a pair that is no candidate (too little support, itself) gets 0, and every
        candidate is a positive value (the thresholds are positive). Returns the
        similarities and the supports."""
        stats = {key: split[a].times(start, stop, right[b]) for key, (a, b) in products.items()}
        support = stats["n"]
        if name == "binary":  # float32 throughout: counts are exact, and memory traffic halves
            sims = support * inverse_norm[start:stop, None]  # the row's own norm first (see binary_value)
            sims *= inverse_norm[None, columns]
            if shrinkage:
                factor = support + np.float32(shrinkage)
                np.divide(support, factor, out=factor)
                sims *= factor
                del factor
        else:
            sims = similarity_from_statistics(name, stats)
            if shrinkage:
                sims *= support_shrinkage(support, shrinkage, offset)
        if min_support > 1:
            np.copyto(sims, 0, where=support < min_support)
        own = np.nonzero((columns >= start) & (columns < stop))[0]
        sims[columns[own] - start, own] = 0  # never your own neighbour
        return sims, support

    def binary_value(support: np.ndarray, row: np.ndarray, column: np.ndarray) -> np.ndarray:
        """The binary similarity of (row, column) pairs in the float32 operations and order
        of ``similarities`` for that row: a row's values never depend on which side of a
        tile computed them, so equal pairs tie exactly."""
        value = support * inverse_norm[row]
        value *= inverse_norm[column]
        if shrinkage:
            value *= support / (support + np.float32(shrinkage))
        return value

    def merge_sweep() -> tuple[np.ndarray, np.ndarray]:
        """The running top-k merge, for k a large share of the rows (see ``MERGE_ROWS_PER_NEIGHBOUR``):
        each block of rows against all later rows as one dense array, merged into the
        block's and the later rows' running top k (every pair computed once)."""
        rows_per_block = int(block_rows) if block_rows else max(1, BLOCK_BYTES // max(1, 8 * n_rows * (len(products) + 3)), 2 * width)
        index = np.zeros((n_rows, width), np.int64)
        weight = np.zeros((n_rows, width), np.float64)
        kept_values = np.full((n_rows, width), -np.inf, dtype)  # candidates from earlier blocks, ascending index
        kept_index = np.zeros((n_rows, width), np.int64)
        for start in range(0, n_rows, rows_per_block):
            stop = min(n_rows, start + rows_per_block)
            right = {key: split[key].right(slice(start, n_rows)) for key in right_keys}
            sims, support = similarities(start, stop, right, np.arange(start, n_rows))
            sims[~(sims > 0)] = -np.inf  # no candidate (itself, too little support, not positive)
            candidates = np.concatenate([kept_values[start:stop], sims], axis=1)
            candidate_index = np.concatenate([kept_index[start:stop], np.broadcast_to(np.arange(start, n_rows, dtype=np.int64), sims.shape)], axis=1)
            index[start:stop], weight[start:stop] = _best_first(*_take(candidates, candidate_index, _select_top_k(candidates, width)))
            if stop < n_rows:  # later rows: this block's rows are candidates for them
                later = sims[:, stop - start :].T
                if name == "binary":  # each later row's own rounding order, as its own block computes it
                    own = support[:, stop - start :].T * inverse_norm[stop:, None]
                    own *= inverse_norm[None, start:stop]
                    if shrinkage:
                        later_support = support[:, stop - start :].T
                        own *= later_support / (later_support + np.float32(shrinkage))
                    later = np.where(np.isfinite(later), own, -np.inf).astype(dtype)
                candidates = np.concatenate([kept_values[stop:], later], axis=1)
                candidate_index = np.concatenate([kept_index[stop:], np.broadcast_to(np.arange(start, stop, dtype=np.int64), later.shape)], axis=1)
                kept_values[stop:], kept_index[stop:] = _take(candidates, candidate_index, _select_top_k(candidates, width))
        return index, weight

    block = int(block_rows) if block_rows else BLOCK_ROWS
    chunk = int(chunk_cols) if chunk_cols else max(block, TILE_ENTRIES // block // block * block)
    floor = np.finfo(dtype).smallest_subnormal  # ">= floor" is "> 0"
    threshold = np.full(n_rows, floor, dtype)
    every = int(sample_every) if sample_every else (SAMPLE_EVERY if n_rows * n_rows / 2 > CANDIDATE_BUDGET else 1)
    if every > 1 and not sample_every and n_rows <= MERGE_ROWS_PER_NEIGHBOUR * width:
        return merge_sweep()

    with ThreadPoolExecutor(PRODUCT_THREADS) as pool:
        if every > 1:  # the pre-pass: k-th best similarity against a sample of the rows
            sample = np.arange(0, n_rows, every)
            right = {key: split[key].right(sample) for key in right_keys}

            def sample_threshold(start: int, stop: int) -> None:
                sims = similarities(start, stop, right, sample)[0]
                sims[~(sims > 0)] = 0  # also NaN
                if sims.shape[1] >= width:
                    kth = np.partition(sims, sims.shape[1] - width, axis=1)[:, sims.shape[1] - width]
                    kth = kth * (1 - THRESHOLD_MARGIN)
                    threshold[start:stop] = np.where(kth > floor, kth, floor)

            step = max(1, TILE_ENTRIES // max(1, len(sample)))
            for future in [pool.submit(sample_threshold, s, min(n_rows, s + step)) for s in range(0, n_rows, step)]:
                future.result()

        chunks = [(c, min(n_rows, c + chunk)) for c in range(0, n_rows, chunk)]
        rights = [None] * len(chunks)
        pending: dict[int, list] = {}  # block number -> candidates (row, col, value) found for its rows by earlier blocks

        def tile(start: int, stop: int, c0: int, c1: int, right: dict) -> tuple:
            """Candidates of one tile: (row, column, value) for the block's rows (columns
            ``>= start``) and, transposed, for the later rows (columns ``>= stop``)."""
            sims, support = similarities(start, stop, right, np.arange(c0, c1))
            first, later = max(c0, start), max(c0, stop)
            mine = sims[:, first - c0 :]
            keep = mine >= threshold[start:stop, None]
            if later < c1:
                keep[:, later - first :] |= mine[:, later - first :] >= threshold[None, later:c1]
            r, c = np.nonzero(keep)
            v = mine[r, c]
            r += start
            c += first
            own = v >= threshold[r]
            theirs = (c >= later) & (v >= threshold[c])  # within THRESHOLD_MARGIN of the later row's value
            v_theirs = v[theirs]
            if name == "binary":  # the later row's own value (rating similarities are symmetric as computed)
                v_theirs = binary_value(support[r[theirs] - start, c[theirs] - c0], c[theirs], r[theirs])
            return (r[own], c[own], v[own]), (c[theirs], r[theirs], v_theirs)

        index = np.zeros((n_rows, width), np.int64)
        weight = np.zeros((n_rows, width), np.float64)
        for number, start in enumerate(range(0, n_rows, block)):
            stop = min(n_rows, start + block)
            futures = []
            for position, (c0, c1) in enumerate(chunks):
                if c1 <= start:
                    continue
                if rights[position] is None:
                    rights[position] = {key: split[key].right(slice(c0, c1)) for key in right_keys}
                futures.append(pool.submit(tile, start, stop, c0, c1, rights[position]))
            found = pending.pop(number, [])
            for future in futures:
                own, theirs = future.result()
                found.append(own)
                targets = theirs[0] // block
                for target in np.unique(targets):
                    where = targets == target
                    pending.setdefault(int(target), []).append(tuple(part[where] for part in theirs))
            rows, cols, vals = (np.concatenate(part) for part in zip(*found))
            index[start:stop], weight[start:stop] = _select_candidates(rows - start, cols, vals, stop - start, width)
            for position, (_, c1) in enumerate(chunks):
                if c1 <= stop:
                    rights[position] = None  # no later block needs it
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
    - ``sum_over_owners(query float32[B, n + 1]) -> float32[B, n + 1]``:
      ``out[b, c] = sum_{j: query[b, j] = 1} weight(c -> j)``, the sum of c's similarities
      to the query entities (a 0/1 indicator) that are among c's top-k.
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

    #: Costs that choose the path of ``sum_over_owners`` (in units of one sparse-matrix
    #: multiply-add, ~0.25 ns on 2 CPU cores): a gathered pair, and building the CSR
    #: matrix, per stored entry. A gathered pair cost ~3.75x a CSR entry at 5M
    #: interactions and ~1x on ML-100K (21 vs 20 ns: there a single user with 150k hits
    #: took 4.1 ms gathered, 10.0 ms through the CSR build); 150 sits between the two.
    GATHER_COST = 150
    CSR_BUILD_COST = 80

    @tf.autograph.experimental.do_not_convert
    def sum_over_owners(self, query: tf.Tensor) -> tf.Tensor:
        """``out[b, c] = sum_{j: query[b, j] = 1} weight(c -> j)``, float32[B, n + 1], for a
        0/1 indicator ``query`` float32[B, n + 1] of each row's entities (column 0 unused).

        Two ways, the cheaper one per call: (a) gather the inverted rows of the query
        entities (every c holding j) and sum per (b, c), work = the query's total
        in-degree ("hits"); (b) one sparse (CSR) times dense product of the table with
        the indicator, work = nnz * B plus building the CSR matrix. Small requests take
        (a), large batches (b) (a popular j is held by nearly every row). Both add a
        row's terms one by one in ascending j, so the result is bitwise the same on
        either path and does not depend on the rest of the batch. A single request (the
        latency-bound case) takes (a) without computing a row index per gathered term.
        """
        n = self.n_rows
        batch = tf.shape(query, out_type=tf.int64)[0]
        pairs = tf.where(query > 0)  # (b, j), row-major: each row's entities ascending
        entities = pairs[:, 1]
        starts = tf.gather(self.owner_splits, entities)
        lengths = tf.gather(self.owner_splits, entities + 1) - starts
        nnz = tf.shape(self.owners, out_type=tf.int64)[0]

        def gathered() -> tf.Tensor:
            positions = tf.ragged.range(starts, starts + lengths).flat_values
            owners = tf.gather(self.owners, positions)
            slots = tf.cond(batch > 1, lambda: tf.repeat(pairs[:, 0], lengths) * n + owners, lambda: owners)
            sums = tf.math.unsorted_segment_sum(tf.gather(self.owner_weight, positions), slots, batch * n)
            return tf.reshape(sums, tf.stack([batch, n]))

        def product() -> tf.Tensor:
            table = tf.raw_ops.SparseTensorToCSRSparseMatrix(  # [c, j] = weight(c -> j)
                indices=tf.stack([self.coo_rows, self.coo_cols], axis=1), values=self.coo_weight, dense_shape=tf.stack([n, n])
            )
            return tf.raw_ops.SparseMatrixMatMul(a=table, b=query, transpose_b=True, transpose_output=True)

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
