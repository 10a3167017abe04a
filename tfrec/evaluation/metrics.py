"""Vectorised offline metrics (pure numpy/pandas) for the tfrec protocols.

The definitions follow ``shared/PROTOCOLS.md`` literally.

Top-N ranking (protocol T; protocol S is the special case ``|T| = 1``)
-----------------------------------------------------------------------
For one evaluated user u with test set T (distinct test items of u, including
items that can never be recommended, e.g. items absent from train) and a
ranked list r_1, r_2, ... (best first, "" = empty slot, never a hit):

- hit(i)       = 1 if r_i is in T, else 0                  (i is 1-based)
- Recall@K     = sum_{i<=K} hit(i) / |T|
- HR@K         = 1 if sum_{i<=K} hit(i) > 0, else 0
- Precision@K  = sum_{i<=K} hit(i) / K   (empty slots count as misses)
- NDCG@K       = DCG@K / IDCG@K,  DCG@K = sum_{i<=K} hit(i) / log2(i + 1),
                 IDCG@K = sum_{i<=min(K,|T|)} 1 / log2(i + 1)
- MAP@K        = (1 / min(K, |T|)) * sum_{i<=K} P@i * hit(i),
                 P@i = sum_{j<=i} hit(j) / i
- MRR@K        = 1 / (rank of the first hit) if that rank <= K, else 0
                 (with |T| = 1 this is protocol S's MRR@10; HR@10 likewise)

Each of these is averaged (unweighted mean) over the evaluated users.

- Coverage@K   = |union over evaluated users of the non-empty top-K ids|
                 / n_catalog   (n_catalog = number of train items)

Duplicate (user, item) test rows count once. A recommendation list that
contains the same item twice is rejected (it would count one hit twice).

Rating prediction (protocol R)
------------------------------
- RMSE = sqrt(mean((p - y)^2)),  MAE = mean(|p - y|)

Protocol R clips predictions to [1, 5] and replaces predictions the model
cannot make by the training global mean; ``rating_metrics`` does both when
called as ``rating_metrics(p, y, clip=(1, 5), fallback=train_mean)`` (missing
predictions are NaN in ``p``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["ranking_metrics", "rating_metrics"]


def _factorize_column(col: pd.Series) -> tuple[np.ndarray, pd.Index | np.ndarray]:
    """Hash-factorize a column; string columns go through their object array
    (faster than the extension-array path)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return pd.factorize(col)
    return pd.factorize(col.to_numpy())


def _factorize_unicode(flat: np.ndarray) -> tuple[np.ndarray, int]:
    """Exact factorization of a 1-D fixed-width numpy unicode array.

    Hashing 100k x 20 Python strings costs ~0.5 s; instead the UCS-4 code
    points are packed into uint64 words (8 chars/word for Latin-1, 2 otherwise)
    and the words are factorized as integers. Numpy pads unicode values with
    NUL code points, so equal strings give equal words.
    Returns (codes in [0, n_unique), n_unique).
    """
    n = len(flat)
    width = flat.dtype.itemsize // 4
    if width == 0 or n == 0:
        return np.zeros(n, dtype=np.intp), int(n > 0)
    chars = np.ascontiguousarray(flat).view(np.uint32).reshape(n, width)
    if int(chars.max()) < 256:
        per_word, dtype = 8, np.uint8
    else:
        per_word, dtype = 2, np.uint32
    n_words = -(-width // per_word)
    buf = np.zeros((n, n_words * per_word), dtype=dtype)
    buf[:, :width] = chars
    words = buf.view(np.uint64)
    codes, uniq = pd.factorize(words[:, 0])
    n_unique = len(uniq)
    for j in range(1, n_words):
        cj, uj = pd.factorize(words[:, j])
        codes, uniq = pd.factorize(codes.astype(np.int64) * len(uj) + cj)
        n_unique = len(uniq)
    return codes.astype(np.intp, copy=False), n_unique


def _encode_recommended(rec: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer-code a (U, K) id matrix.

    Returns (codes, uniques, empty_code): ``codes`` (U, K) with -1 for empty
    slots, ``uniques`` the id of each code, and ``empty_code`` the code of ""
    in ``uniques`` (-1 if absent; no entry of ``codes`` points to it).
    """
    n_users, k = rec.shape
    flat = rec.reshape(-1)
    if flat.dtype.kind == "U":
        codes, n_unique = _factorize_unicode(flat)
        first = np.zeros(n_unique, dtype=np.intp)
        first[codes] = np.arange(len(flat))  # any occurrence will do
        uniques = flat[first]
    else:
        codes, uniques = pd.factorize(flat)  # None / NaN -> -1 (empty)
        uniques = np.asarray(uniques)
    codes = codes.astype(np.intp, copy=False).reshape(n_users, k)
    empty_code = -1
    if uniques.dtype.kind in "UO" and len(uniques):
        is_empty = np.asarray(
            [isinstance(x, str) and x == "" for x in uniques]
            if uniques.dtype.kind == "O"
            else uniques == "",
            dtype=bool,
        )
        if is_empty.any():
            empty_code = int(np.flatnonzero(is_empty)[0])
            codes = np.where(codes == empty_code, -1, codes)
    return codes, uniques, empty_code


def ranking_metrics(
    users: np.ndarray,
    recommended: np.ndarray,
    test: pd.DataFrame,
    n_catalog: int,
    ks: Sequence[int] = (10, 20),
) -> dict[str, float]:
    """Top-N metrics of protocol T (see the module docstring for formulas).

    Parameters
    ----------
    users : array (U,)
        Unique ids of the evaluated users; each must have at least one row in
        ``test``. Test rows of other users are ignored.
    recommended : array (U, Kmax)
        Item ids, best first, row u for ``users[u]``; "" marks an empty slot.
    test : DataFrame with columns ``user_id``, ``item_id``
        Test interactions; items that can never be recommended stay in |T|;
        duplicate (user, item) rows count once.
    n_catalog : int
        Number of train items (denominator of coverage).
    ks : cut-offs; Kmax must be >= max(ks).

    Returns
    -------
    dict with ``recall@k``, ``ndcg@k``, ``hr@k``, ``map@k``, ``mrr@k``,
    ``precision@k``, ``coverage@k`` for every k in ``ks`` (floats) and
    ``users`` (the number of evaluated users, an int).
    """
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be a non-empty sequence of positive ints, got {ks}")
    if int(n_catalog) <= 0:
        raise ValueError(f"n_catalog must be positive, got {n_catalog}")
    users = np.asarray(users)
    rec = np.asarray(recommended)
    if users.ndim != 1:
        raise ValueError(f"users must be 1-D, got shape {users.shape}")
    if rec.ndim != 2:
        raise ValueError(f"recommended must be 2-D (users, K), got shape {rec.shape}")
    if rec.shape[0] != users.shape[0]:
        raise ValueError(
            f"recommended has {rec.shape[0]} rows but there are {users.shape[0]} users"
        )
    kmax = max(ks)
    if rec.shape[1] < kmax:
        raise ValueError(
            f"recommended has only {rec.shape[1]} columns but max(ks) = {kmax}"
        )
    n_users = users.shape[0]
    if n_users == 0:
        raise ValueError("no users to evaluate")
    missing_cols = {"user_id", "item_id"} - set(test.columns)
    if missing_cols:
        raise ValueError(f"test is missing column(s) {sorted(missing_cols)}")
    user_index = pd.Index(users)
    if not user_index.is_unique:
        dup = user_index[user_index.duplicated()][0]
        raise ValueError(f"users must be unique; {dup!r} appears more than once")

    # --- recommendations -> integer codes (-1 = empty), at most kmax columns
    rec = rec[:, :kmax]
    codes, uniques, empty_code = _encode_recommended(rec)
    n_unique = len(uniques)
    order = np.argsort(codes, axis=1, kind="stable")
    sorted_codes = np.take_along_axis(codes, order, axis=1)
    same = sorted_codes[:, 1:] == sorted_codes[:, :-1]
    dup_rows = (same & (sorted_codes[:, 1:] >= 0)).any(axis=1)
    if dup_rows.any():
        u = int(np.flatnonzero(dup_rows)[0])
        raise ValueError(
            f"recommended row of user {users[u]!r} contains the same item more than once"
        )

    # --- test pairs -> (user index, item code) in a common code space:
    # codes [0, n_unique) are recommendable ids, [n_unique, ...) unreachable.
    tu_codes, tu_uniq = _factorize_column(test["user_id"])
    ti_codes, ti_uniq = _factorize_column(test["item_id"])
    if (tu_codes < 0).any() or (ti_codes < 0).any():
        raise ValueError("test has missing user_id or item_id values")
    if rec.dtype.kind == "U" and pd.api.types.is_numeric_dtype(np.asarray(ti_uniq).dtype):
        raise ValueError(
            "test item_id is numeric but recommended holds strings; "
            "convert item ids to str (nothing would ever match)"
        )
    u_rows = user_index.get_indexer(tu_uniq)[tu_codes]
    imap = pd.Index(uniques).get_indexer(ti_uniq) if n_unique else np.full(len(ti_uniq), -1)
    imap = np.asarray(imap, dtype=np.int64)
    if empty_code >= 0:
        imap[imap == empty_code] = -1  # "" is an empty slot, never a hit
    unreachable = imap < 0
    imap[unreachable] = n_unique + np.arange(int(unreachable.sum()))
    stride = n_unique + int(unreachable.sum()) + 1
    if n_users * stride >= np.iinfo(np.int64).max // 2:
        raise ValueError("too many users x items for 64-bit keys")
    keep = u_rows >= 0
    keys = u_rows[keep].astype(np.int64) * stride + imap[ti_codes[keep]] + 1
    keys.sort()  # sorted, deduplicated (user, item) pairs (np.unique is slower)
    if len(keys) > 1:
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    key_user = keys // stride
    n_test = np.bincount(key_user, minlength=n_users)
    if (n_test == 0).any():
        u = int(np.flatnonzero(n_test == 0)[0])
        raise ValueError(
            f"user {users[u]!r} has no test rows ({int((n_test == 0).sum())} such users); "
            "pass only users with at least one test item"
        )

    # --- hits: merge sorted test keys with row-sorted recommendation keys
    # (empty slots get key offset 0, which no test key has)
    rec_keys = (
        np.arange(n_users, dtype=np.int64)[:, None] * stride + sorted_codes + 1
    ).ravel()
    reach_keys = keys[(keys % stride) - 1 < n_unique]
    hits = np.zeros((n_users, kmax), dtype=bool)
    if len(reach_keys):
        pos = np.searchsorted(rec_keys, reach_keys)
        np.minimum(pos, len(rec_keys) - 1, out=pos)
        pos = pos[rec_keys[pos] == reach_keys]
        rows, scol = np.divmod(pos, kmax)
        hits[rows, order[rows, scol]] = True

    # --- metrics
    hit_f = hits.astype(np.float64)
    cum = np.cumsum(hit_f, axis=1)
    ranks = np.arange(1, kmax + 1, dtype=np.float64)
    disc = 1.0 / np.log2(ranks + 1.0)
    cum_disc = np.cumsum(disc)
    prec_hits = hit_f * (cum / ranks)  # P@i * hit(i)
    first_hit = np.argmax(hits, axis=1)  # 0 when there is no hit at all
    n_test_f = n_test.astype(np.float64)

    out: dict[str, float] = {}
    for k in ks:
        n_hits = cum[:, k - 1]
        any_hit = n_hits > 0
        m = np.minimum(k, n_test)
        dcg = hit_f[:, :k] @ disc[:k]
        ap = prec_hits[:, :k].sum(axis=1) / m
        rr = np.where(any_hit & (first_hit < k), 1.0 / (first_hit + 1.0), 0.0)
        seen = np.zeros(n_unique + 1, dtype=bool)
        seen[codes[:, :k].ravel() + 1] = True
        out[f"recall@{k}"] = float(np.mean(n_hits / n_test_f))
        out[f"ndcg@{k}"] = float(np.mean(dcg / cum_disc[m - 1]))
        out[f"hr@{k}"] = float(np.mean(any_hit))
        out[f"map@{k}"] = float(np.mean(ap))
        out[f"mrr@{k}"] = float(np.mean(rr))
        out[f"precision@{k}"] = float(np.mean(n_hits / k))
        out[f"coverage@{k}"] = float(seen[1:].sum()) / float(n_catalog)
    out["users"] = int(n_users)
    return out


def rating_metrics(
    predictions: np.ndarray,
    ratings: np.ndarray,
    *,
    clip: tuple[float, float] | None = None,
    fallback: float | None = None,
) -> dict[str, float]:
    """RMSE and MAE of ``predictions`` against ``ratings``.

    With ``fallback`` set, NaN predictions (ones the model cannot make) are
    replaced by it (protocol R: the training global mean); with ``clip=(lo,
    hi)`` predictions are clipped to [lo, hi] (protocol R: (1, 5)). Without
    ``fallback`` a non-finite prediction raises ValueError.
    """
    p = np.asarray(predictions, dtype=np.float64).reshape(-1)
    y = np.asarray(ratings, dtype=np.float64).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(
            f"predictions shape {np.shape(predictions)} != ratings shape {np.shape(ratings)}"
        )
    if p.size == 0:
        raise ValueError("no ratings to evaluate")
    if not np.isfinite(y).all():
        raise ValueError("ratings contain non-finite values")
    if fallback is not None:
        p = np.where(np.isnan(p), float(fallback), p)
    if not np.isfinite(p).all():
        raise ValueError(
            "predictions contain non-finite values; pass fallback=<train global mean>"
        )
    if clip is not None:
        p = np.clip(p, clip[0], clip[1])
    err = p - y
    return {
        "rmse": float(np.sqrt(np.mean(err * err))),
        "mae": float(np.mean(np.abs(err))),
    }
