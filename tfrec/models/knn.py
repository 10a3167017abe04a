"""k-nearest-neighbour collaborative filtering: ``user_knn`` and ``item_knn``.

Both models fit one neighbour table (the ``neighbours`` most similar users, or items,
per row; ``tfrec.layers.neighbours``) and use it for everything they serve. (The number
of neighbours is ``neighbours``; ``k`` is only ever the request size of ``recommend``.)

``recommend`` (top-N, sums of similarities, seen items excluded by the base class)
    item_knn: ``score(u, c) = sum_{j in Q(u)} sim(c, j) [j in N(c)]`` — the sum of
    c's similarities to the user's items ``Q(u)`` (training items plus any ``history``
    items, each once) that are among c's stored neighbours ``N(c)``.
    user_knn: ``score(u, c) = sum_{v in N(u), v interacted with c} sim(u, v)``.
    An unknown user with a ``history`` is folded in: ``sim(h, v) = |h & I_v| /
    sqrt(|h| |I_v|) * shrink`` (binary cosine against every known user, with the
    model's shrinkage and minimum support), then the same sum over its ``neighbours``
    most similar users. An unknown user with no known history item gets the base class's
    fallback: training popularity, scored as each item's share of the training
    interactions (count / total, in [0, 1]).

``score`` (a predicted rating; scikit-surprise's ``KNNBasic`` / ``KNNWithMeans`` /
``KNNBaseline`` to the formula). With x the row entity (item_knn: the item i; user_knn:
the user u) and ``N`` the (at most ``rating_neighbours``) most similar neighbours of x, taken
from x's table row, that have a rating on the other side (item_knn: items j that u
rated, ``r_j = r_uj``; user_knn: users v that rated i, ``r_v = r_vi``), similarity > 0:

- ``rating_form="basic"``: ``sum_N sim * r / sum_N sim``
- ``rating_form="means"``: ``mu_x + sum_N sim * (r - mu_n) / sum_N sim`` (``mu``: the entity's
  mean rating)
- ``rating_form="baseline"``: ``b_ui + sum_N sim * (r - b_n) / sum_N sim`` with
  ``b_ui = mu + b_u + b_i`` from `baseline_als` (Surprise's ALS: ``baseline_reg_i``,
  ``baseline_reg_u``, ``baseline_epochs``) and ``b_n`` the neighbour's baseline for the
  same pair side (item_knn: ``mu + b_u + b_j``; user_knn: ``mu + b_v + b_i``).

With fewer than ``min_rating_neighbours`` such neighbours the neighbourhood term is dropped: "basic"
falls back to the global mean (Surprise's "impossible" prediction), "means" to
``mu_x``, "baseline" to ``b_ui``. Predictions are then clipped to the training rating
range; a pair with an unknown user or item gets ``rating_fallback``: the baseline of
the known side in the "baseline" form (Surprise's KNNBaseline), else the global mean.
Surprise picks the neighbours from the full similarity row; here they come from the
stored row of ``neighbours``, which is the same when ``neighbours`` is at least the
number of entities (it is capped there).

Similarities (``similarity``, ``feedback``, ``shrinkage``, ``min_support``; formulas in
``tfrec.layers.neighbours``): ``feedback="implicit"`` binarises the interactions and
uses cosine with norms over all interactions (implicit's ``CosineRecommender``; only
"cosine"); ``feedback="explicit"`` uses the ratings with Surprise's co-rated forms
"cosine", "pearson", "msd", "pearson_baseline" or "adjusted_cosine". ``shrinkage=None`` means 100
for "pearson_baseline" (Surprise's default, ``(n-1)/(n-1+100)``) and 10 otherwise
(``n/(n+10)``).

Settings for the protocols of PROTOCOLS.md, as presets (``tfrec.models.specs``;
``make_model("item_knn", preset="R")``, or ``preset=split.protocol``; ``tfrec train``
and ``tfrec bench`` apply the split's; figures in the README and ``tfrec bench``'s output):

- protocol T (split ``temporal``) and S: the defaults (implicit cosine).
- protocol R (rating folds): ``feedback=explicit similarity=pearson_baseline
  rating_form=baseline neighbours=2000`` is Surprise's KNNBaseline itself (its defaults:
  k=40, here rating_neighbours=40, shrinkage 100, ALS reg_u 15, reg_i 10, 10 epochs;
  equal to Surprise's predictions within 1e-6, tested on ML-100K's u1 fold): ``user_knn``'s
  preset R. ``item_knn``'s preset R adds ``shrinkage=200 baseline_reg_u=5 baseline_reg_i=5``.

Repeated (user, item) pairs count once, with their latest rating.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from tfrec._keras import tf
from tfrec.distribute.collectives import Collectives
from tfrec.layers.neighbours import (
    NeighbourTable,
    SparseRatings,
    baseline_als,
    deduplicate,
    neighbour_table,
)
from tfrec.models.base import Recommender, SimilarItems
from tfrec.models.params import Param
from tfrec.models.specs import SPECS

# The scoring code has no tensor-dependent Python control flow: skip AutoGraph's
# conversion, which otherwise dominates the time to trace the serving functions.
_no_autograph = tf.autograph.experimental.do_not_convert


class _Accumulator:
    """Plain holder of the adapt pass's batches (kept out of Keras attribute tracking)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.ratings: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # after combine_state


class _NeighbourModel(Recommender):
    """Shared fitting and scoring of ``UserKNN`` and ``ItemKNN`` (see the module docstring)."""

    user_based: ClassVar[bool] = False

    @property
    def uses_history(self) -> bool:
        return True

    @property
    def predicts_ratings(self) -> bool:
        return True

    def _store(self, **params) -> None:
        for key, value in params.items():
            setattr(self, key, value)
        self.neighbour_table = NeighbourTable(name="neighbours")
        self.ratings = SparseRatings(name="ratings")  # users x items, deduplicated
        self.user_bias = tf.Variable([0.0], shape=tf.TensorShape([None]), trainable=False, name="user_bias")
        self.item_bias = tf.Variable([0.0], shape=tf.TensorShape([None]), trainable=False, name="item_bias")
        self.row_means = tf.Variable([0.0], shape=tf.TensorShape([None]), trainable=False, name="row_means")
        self.baseline_mean = tf.Variable(0.0, trainable=False, name="baseline_mean")
        self._accumulator = _Accumulator()

    # ---------------------------------------------------------------- params
    @property
    def shrinkage_value(self) -> float:
        """The shrinkage in use: ``shrinkage``, or its default for the similarity."""
        if self.shrinkage is not None:
            return float(self.shrinkage)
        return 100.0 if (self.similarity == "pearson_baseline" and self.feedback == "explicit") else 10.0

    def check_param_combinations(self) -> None:
        if self.feedback == "implicit" and self.similarity != "cosine":
            raise ValueError(
                f"{self.registry_name}: similarity must be 'cosine' with feedback='implicit' (cosine on binarised "
                f"interactions), got {self.similarity!r}; {self.similarity!r} needs ratings: pass feedback='explicit'"
            )

    # --------------------------------------------------------------- fitting
    def reset_state(self) -> None:
        super().reset_state()
        self._accumulator.chunks = []
        self._accumulator.ratings = None

    def update_state(self, batch: dict[str, tf.Tensor]) -> None:
        super().update_state(batch)
        self._accumulator.chunks.append((batch["user_idx"].numpy(), batch["item_idx"].numpy(), batch["rating"].numpy()))

    def combine_state(self, collectives) -> None:
        """The rating matrix of all workers: each deduplicates its shard (one rating per
        (user, item), the last; a user's rows are all on one worker), then the triples are
        gathered (24 bytes per rating received by every worker; the SavedModel holds this
        matrix) and put in (user, item) order, as ``deduplicate`` gives them in one process.
        The similarities are then computed from the whole matrix (``finalize_state``):
        the shrunk, baseline-corrected similarities need every co-rating of a pair and the
        ALS baselines iterate over all ratings, so partial co-rating sums would not give
        the one-process weights exactly."""
        super().combine_state(collectives)
        chunks = self._accumulator.chunks
        columns = [np.concatenate(parts) for parts in zip(*chunks)] if chunks else [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)]
        self._accumulator.chunks = []
        user_idx, item_idx, rating = deduplicate(*columns)
        if collectives.distributed:
            rows = collectives.gather(np.stack([user_idx, item_idx, rating.view(np.int64)], axis=1).reshape(-1, 3))
            order = np.argsort(rows[:, 0] * self.items.size + rows[:, 1], kind="stable")
            rows = rows[order]
            user_idx, item_idx, rating = rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy().view(np.float64)
        self._accumulator.ratings = (user_idx, item_idx, rating)

    def finalize_state(self) -> None:
        if self._accumulator.ratings is None:  # not combined (a caller of the adapt hooks without combine_state)
            self.combine_state(Collectives())  # one worker: every combine is the identity
        user_idx, item_idx, rating = self._accumulator.ratings
        self._accumulator.ratings = None
        n_users, n_items = self.users.size, self.items.size  # slot 0 included
        self.ratings.set_matrix(user_idx, item_idx, rating, n_users, n_items)
        mu, b_u, b_i = baseline_als(
            user_idx, item_idx, rating, n_users, n_items, self.baseline_reg_u, self.baseline_reg_i, self.baseline_epochs
        )
        self.baseline_mean.assign(mu)
        self.user_bias.assign(b_u.astype(np.float32))
        self.item_bias.assign(b_i.astype(np.float32))
        if self.user_based:
            rows, cols, n_rows, n_cols, row_bias, col_bias = user_idx, item_idx, n_users, n_items, b_u, b_i
        else:
            rows, cols, n_rows, n_cols, row_bias, col_bias = item_idx, user_idx, n_items, n_users, b_i, b_u
        counts = np.bincount(rows, minlength=n_rows)
        self.row_means.assign((np.bincount(rows, rating, minlength=n_rows) / np.maximum(counts, 1)).astype(np.float32))
        matrix = sp.csr_matrix((rating, (rows, cols)), shape=(n_rows, n_cols))
        width = max(1, min(self.neighbours, n_rows - 2))  # n_rows - 1 real entities, none its own neighbour
        index, weight = neighbour_table(
            matrix,
            width,
            self.similarity,
            binary=self.feedback == "implicit",
            shrinkage=self.shrinkage_value,
            min_support=self.min_support,
            row_bias=row_bias,
            col_bias=col_bias,
            mu=mu,
        )
        self.neighbour_table.set_table(index, weight)
        self._finalize_extra(user_idx, item_idx, rating)
        super().finalize_state()

    def _finalize_extra(self, user_idx: np.ndarray, item_idx: np.ndarray, rating: np.ndarray) -> None:
        """Subclass hook for more state from the deduplicated (user, item, rating) triples."""

    # --------------------------------------------------------------- scoring
    @_no_autograph
    def _predict(self, x: tf.Tensor, y: tf.Tensor, neighbours: tf.Tensor, weights: tf.Tensor, ratings: tf.Tensor, found: tf.Tensor) -> tf.Tensor:
        """Surprise's estimate for rows x [B] against y [B] from candidate neighbours [B, M]."""
        valid = found & (weights > 0) & (neighbours > 0)
        use = valid & (tf.cumsum(tf.cast(valid, tf.int32), axis=1) <= self.rating_neighbours)
        w = tf.where(use, tf.cast(weights, tf.float64), tf.zeros([], tf.float64))
        r = tf.cast(ratings, tf.float64)
        actual_k = tf.reduce_sum(tf.cast(use, tf.int32), axis=1)
        sum_w = tf.reduce_sum(w, axis=1)
        enough = (actual_k >= self.min_rating_neighbours) & (sum_w > 0)
        safe_sum = tf.where(enough, sum_w, tf.ones_like(sum_w))
        if self.rating_form == "basic":
            estimate = tf.reduce_sum(w * r, axis=1) / safe_sum
            fallback = tf.cast(self.rating_range[1], tf.float64)
            return tf.cast(tf.where(enough, estimate, fallback), tf.float32)
        if self.rating_form == "means":
            means = tf.cast(self.row_means, tf.float64)
            base = tf.gather(means, x)
            residual = r - tf.gather(means, neighbours)
        else:
            mu = tf.cast(self.baseline_mean, tf.float64)
            row_bias = tf.cast(self.user_bias if self.user_based else self.item_bias, tf.float64)
            col_bias = tf.cast(self.item_bias if self.user_based else self.user_bias, tf.float64)
            side = mu + tf.gather(col_bias, y)
            base = side + tf.gather(row_bias, x)
            residual = r - (side[:, tf.newaxis] + tf.gather(row_bias, neighbours))
        correction = tf.where(enough, tf.reduce_sum(w * residual, axis=1) / safe_sum, tf.zeros_like(sum_w))
        return tf.cast(base + correction, tf.float32)

    def rating_fallback(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """Unknown user or item: the baseline mu + b_u + b_i of the known side (the "baseline"
        rating form, as Surprise's KNNBaseline), else the global mean (Surprise's "impossible")."""
        if self.rating_form != "baseline":
            return super().rating_fallback(user_idx, item_idx)
        return self.baseline_mean + tf.gather(self.user_bias, user_idx) + tf.gather(self.item_bias, item_idx)

    @_no_autograph
    def _query_sets(self, user_idx: tf.Tensor, history_idx: tf.Tensor, with_known: bool) -> tf.RaggedTensor:
        """Each row's distinct items: known users' training items (if ``with_known``) and history."""
        n = tf.shape(self.items.ids, out_type=tf.int64)[0]
        parts = [tf.RaggedTensor.from_tensor(tf.cast(history_idx, tf.int64))]
        if with_known:
            parts.insert(0, self.ratings.rows(user_idx))
        both = tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        keys = both.value_rowids() * n + both.flat_values
        keys = tf.boolean_mask(keys, both.flat_values > 0)
        unique = tf.unique(keys).y  # first occurrences: row-major order is kept
        return tf.RaggedTensor.from_value_rowids(unique % n, unique // n, nrows=tf.shape(user_idx, out_type=tf.int64)[0])

    @_no_autograph
    def _query_indicator(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """float32[B, n_items + 1]: 1 where the item is among the row's training items or
        its history, else 0 (``_query_sets`` as an indicator, built without ragged sets)."""
        batch = tf.shape(user_idx, out_type=tf.int64)[0]
        n = tf.shape(self.items.ids, out_type=tf.int64)[0]
        known = tf.ragged.range(tf.gather(self.ratings.row_splits, user_idx), tf.gather(self.ratings.row_splits, user_idx + 1))
        history = tf.cast(history_idx, tf.int64)
        given = tf.where(history > 0)
        rows = tf.concat([known.value_rowids(), given[:, 0]], axis=0)
        items = tf.concat([tf.gather(self.ratings.cols, known.flat_values), tf.gather_nd(history, given)], axis=0)
        counts = tf.scatter_nd(tf.stack([rows, items], axis=1), tf.ones_like(items, tf.float32), tf.stack([batch, n]))
        return tf.minimum(counts, 1.0)

    def write_summaries(self, top_n: int = 10) -> None:
        super().write_summaries(top_n)
        index, weight = self.neighbour_table.index.numpy(), self.neighbour_table.weight.numpy()
        tf.summary.histogram("knn/neighbour_similarity", weight[index > 0], step=0)
        tf.summary.histogram("knn/neighbours_per_row", (index[1:] > 0).sum(axis=1), step=0)
        tf.summary.scalar("knn/table_width", index.shape[1], step=0)
        tf.summary.histogram("knn/user_bias", self.user_bias[1:], step=0)
        tf.summary.histogram("knn/item_bias", self.item_bias[1:], step=0)
        row = self._example_row()
        vocabulary, titles = (self.users, None) if self.user_based else (self.items, self.item_titles.numpy())
        lines = [f"neighbours of {vocabulary.ids.numpy()[row].decode()}" + (f" ({titles[row].decode()})" if titles is not None else ""), ""]
        lines += ["| rank | id | title | similarity |", "|---|---|---|---|"]
        for rank, (j, w) in enumerate(zip(index[row][:top_n], weight[row][:top_n]), start=1):
            if j > 0:
                title = titles[j].decode() if titles is not None else ""
                lines.append(f"| {rank} | {vocabulary.ids.numpy()[j].decode()} | {title} | {w:.4f} |")
        tf.summary.text("knn/example_neighbours", "\n".join(lines), step=0)

    def _example_row(self) -> int:
        counts = np.diff(self.ratings.row_splits.numpy())
        if self.user_based:
            return int(np.argmax(counts)) if len(counts) else 0
        return int(np.argmax(self.fallback.counts.numpy()))


class ItemKNN(SimilarItems, _NeighbourModel):
    """Item-based k-nearest neighbours: ranks by summed item similarities, predicts ratings.

    score_candidates: ``score(u, c) = sum_{j in Q(u)} sim(c, j) [j in N(c)]`` over the
    user's training items and history items ``Q(u)``; ``similar_items``: the item's
    neighbour table row; ``score``: Surprise's item-based KNNBasic / KNNWithMeans /
    KNNBaseline (``rating_form``). Formulas and parameter meaning: ``tfrec.models.knn``.

    Parameters (``PARAMS``):
        neighbours: neighbours kept per item (the table width; capped at n_items - 1).
        rating_neighbours: the most similar neighbours (among the items u rated) per rating.
        min_rating_neighbours: fewer usable neighbours than this drops the neighbourhood term.
        rating_form: "basic", "means" or "baseline" (Surprise's KNNBasic / KNNWithMeans / KNNBaseline).
        similarity: "cosine", "pearson", "adjusted_cosine", "msd", "pearson_baseline".
        feedback: "implicit" binarises interactions (implicit's cosine; needs similarity="cosine"),
            "explicit" uses the ratings.
        shrinkage: support shrinkage (None: 100 for pearson_baseline, else 10).
        min_support: pairs with fewer co-ratings have similarity 0.
        baseline_reg_u, baseline_reg_i, baseline_epochs: Surprise's baseline ALS.

    Presets: R (rating folds) is KNNBaseline with pearson_baseline similarity on the
    ratings (``make_model("item_knn", preset="R")``; see the module docstring); T and S:
    the defaults.
    """

    registry_name = "item_knn"
    PARAMS: ClassVar[dict[str, Param]] = SPECS["item_knn"].params
    user_based = False

    def __init__(
        self,
        neighbours: int = 300,
        rating_neighbours: int = 40,
        min_rating_neighbours: int = 1,
        rating_form: str = "baseline",
        similarity: str = "cosine",
        feedback: str = "implicit",
        shrinkage: float | None = None,
        min_support: int = 1,
        baseline_reg_u: float = 15.0,
        baseline_reg_i: float = 10.0,
        baseline_epochs: int = 10,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self._store(
            neighbours=neighbours,
            rating_neighbours=rating_neighbours,
            min_rating_neighbours=min_rating_neighbours,
            rating_form=rating_form,
            similarity=similarity,
            feedback=feedback,
            shrinkage=shrinkage,
            min_support=min_support,
            baseline_reg_u=baseline_reg_u,
            baseline_reg_i=baseline_reg_i,
            baseline_epochs=baseline_epochs,
        )

    @_no_autograph
    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        return self.neighbour_table.sum_over_owners(self._query_indicator(user_idx, history_idx))

    @_no_autograph
    def score_pairs(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        neighbours, weights = self.neighbour_table.rows(item_idx)
        users = tf.broadcast_to(user_idx[:, tf.newaxis], tf.shape(neighbours, out_type=tf.int64))
        ratings, found = self.ratings.lookup(users, neighbours)
        return self._predict(item_idx, user_idx, neighbours, weights, ratings, found)

    @_no_autograph
    def similar_item_scores(self, item_idx: tf.Tensor) -> tf.Tensor:
        """sim(i, j) for j among i's stored neighbours, -inf elsewhere: float32[B, n_items + 1]."""
        return self.neighbour_table.dense_rows(item_idx)


class UserKNN(_NeighbourModel):
    """User-based k-nearest neighbours: ranks by neighbours' interactions, predicts ratings.

    score_candidates: ``score(u, c) = sum_{v in N(u), v interacted with c} sim(u, v)``;
    unknown users with a history are folded in by binary cosine against every known user;
    ``score``: Surprise's user-based KNNBasic / KNNWithMeans / KNNBaseline (``rating_form``).
    Formulas and parameter meaning: ``tfrec.models.knn``.

    Parameters (``PARAMS``):
        neighbours: nearest users kept per user (the table width; capped at n_users - 1).
        rating_neighbours: the most similar neighbours (among the users who rated i) per rating.
        min_rating_neighbours: fewer usable neighbours than this drops the neighbourhood term.
        rating_form: "basic", "means" or "baseline" (Surprise's KNNBasic / KNNWithMeans / KNNBaseline).
        similarity: "cosine", "pearson", "adjusted_cosine", "msd", "pearson_baseline".
        feedback: "implicit" binarises interactions (cosine over all interactions; needs
            similarity="cosine"), "explicit" uses the ratings.
        shrinkage: support shrinkage (None: 100 for pearson_baseline, else 10).
        min_support: pairs with fewer co-ratings have similarity 0.
        baseline_reg_u, baseline_reg_i, baseline_epochs: Surprise's baseline ALS.

    Presets: R (rating folds) is Surprise's KNNBaseline (``make_model("user_knn",
    preset="R")``; see the module docstring); T and S: the defaults.
    """

    registry_name = "user_knn"
    PARAMS: ClassVar[dict[str, Param]] = SPECS["user_knn"].params
    user_based = True

    def __init__(
        self,
        neighbours: int = 50,
        rating_neighbours: int = 40,
        min_rating_neighbours: int = 1,
        rating_form: str = "baseline",
        similarity: str = "cosine",
        feedback: str = "implicit",
        shrinkage: float | None = None,
        min_support: int = 1,
        baseline_reg_u: float = 15.0,
        baseline_reg_i: float = 10.0,
        baseline_epochs: int = 10,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self._store(
            neighbours=neighbours,
            rating_neighbours=rating_neighbours,
            min_rating_neighbours=min_rating_neighbours,
            rating_form=rating_form,
            similarity=similarity,
            feedback=feedback,
            shrinkage=shrinkage,
            min_support=min_support,
            baseline_reg_u=baseline_reg_u,
            baseline_reg_i=baseline_reg_i,
            baseline_epochs=baseline_epochs,
        )
        self.item_users = SparseRatings(name="item_users")  # items x users, for fold-in

    def _finalize_extra(self, user_idx: np.ndarray, item_idx: np.ndarray, rating: np.ndarray) -> None:
        order = np.lexsort((user_idx, item_idx))
        self.item_users.set_matrix(item_idx[order], user_idx[order], rating[order], self.items.size, self.users.size)

    @_no_autograph
    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        neighbours, weights = self.neighbour_table.rows(user_idx)
        scores = self._sum_neighbour_items(neighbours, weights)
        fold = (user_idx == 0) & tf.reduce_any(history_idx > 0, axis=1)
        fold_rows = tf.where(fold)[:, 0]
        fold_neighbours, fold_weights = self.fold_in(tf.gather(history_idx, fold_rows))
        return tf.tensor_scatter_nd_update(scores, fold_rows[:, tf.newaxis], self._sum_neighbour_items(fold_neighbours, fold_weights))

    @_no_autograph
    def _sum_neighbour_items(self, neighbours: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        """out[b, c] = sum of weights[b, m] over neighbours[b, m] who interacted with c.

        Two ways, the cheaper one per call (the rule of ``NeighbourTable.sum_over_owners``):
        (a) gather the neighbours' own rows of the user x item matrix and segment-sum
        them, work = their histories' total length (single requests); (b) one sparse
        product of the [B, n_users + 1] weight matrix with the whole binary user x item
        matrix, work = its nnz plus building it (large batches). Both add a row's terms
        one by one in ascending neighbour index, so the result is bitwise the same on
        either path and does not depend on the rest of the batch.
        """
        batch = tf.shape(neighbours, out_type=tf.int64)[0]
        n_users = tf.shape(self.ratings.row_splits, out_type=tf.int64)[0] - 1
        n_items = tf.shape(self.items.ids, out_type=tf.int64)[0]
        rows = tf.repeat(tf.range(batch), tf.shape(neighbours, out_type=tf.int64)[1])
        flat, values = tf.reshape(neighbours, [-1]), tf.reshape(weights, [-1])
        keep = (flat > 0) & (values > 0)
        keys = tf.boolean_mask(rows * n_users + flat, keep)
        order = tf.argsort(keys)  # (row, neighbour) ascending; neighbours are unique within a row
        keys, values = tf.gather(keys, order), tf.gather(tf.boolean_mask(values, keep), order)
        users = keys % n_users

        def gathered() -> tf.Tensor:
            items = self.ratings.rows(users)  # ragged [pairs, None]: each neighbour's items
            owner = items.value_rowids()
            slots = tf.gather(keys // n_users, owner) * n_items + items.flat_values
            sums = tf.math.unsorted_segment_sum(tf.gather(values, owner), slots, batch * n_items)
            return tf.reshape(sums, tf.stack([batch, n_items]))

        def product() -> tf.Tensor:
            left = tf.raw_ops.SparseTensorToCSRSparseMatrix(
                indices=tf.stack([keys // n_users, users], axis=1), values=values, dense_shape=tf.stack([batch, n_users])
            )
            owners = tf.repeat(tf.range(n_users), self.ratings.row_splits[1:] - self.ratings.row_splits[:-1])
            right = tf.raw_ops.SparseTensorToCSRSparseMatrix(
                indices=tf.stack([owners, self.ratings.cols], axis=1),
                values=tf.ones_like(self.ratings.values),
                dense_shape=tf.stack([n_users, n_items]),
            )
            result = tf.raw_ops.SparseMatrixSparseMatMul(a=left, b=right, type=tf.float32)
            return tf.raw_ops.CSRSparseMatrixToDense(sparse_input=result, type=tf.float32)

        hits = tf.reduce_sum(tf.gather(self.ratings.row_splits, users + 1) - tf.gather(self.ratings.row_splits, users))
        nnz = tf.shape(self.ratings.cols, out_type=tf.int64)[0]
        use_gather = hits * NeighbourTable.GATHER_COST <= nnz * (NeighbourTable.CSR_BUILD_COST + batch)
        return tf.cond(use_gather, gathered, product)

    @_no_autograph
    def fold_in(self, history_idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Nearest known users of each history: (users int64[B, n], similarities float32[B, n]),
        n = the neighbour table's width (``neighbours``, capped).

        ``sim(h, v) = |h & I_v| / sqrt(|h| |I_v|) * |h & I_v| / (|h & I_v| + shrinkage)``,
        0 below ``min_support``; the n most similar with positive similarity (padding 0 / 0).
        """
        query = self._query_sets(tf.zeros(tf.shape(history_idx)[:1], tf.int64), history_idx, with_known=False)
        batch = query.nrows(out_type=tf.int64)
        n_users = tf.shape(self.users.ids, out_type=tf.int64)[0]
        users = self.item_users.rows(query.flat_values)
        rows = tf.gather(query.value_rowids(), users.value_rowids())
        overlap = tf.math.unsorted_segment_sum(
            tf.ones_like(users.flat_values, tf.float32), rows * n_users + users.flat_values, batch * n_users
        )
        overlap = tf.reshape(overlap, tf.stack([batch, n_users]))
        sizes = tf.cast(self.ratings.row_splits[1:] - self.ratings.row_splits[:-1], tf.float32)
        history_sizes = tf.cast(query.row_lengths(), tf.float32)[:, tf.newaxis]
        denominator = tf.sqrt(history_sizes * sizes[tf.newaxis, :])
        sims = tf.math.divide_no_nan(overlap, denominator)
        shrinkage = self.shrinkage_value
        if shrinkage:
            sims = sims * tf.math.divide_no_nan(overlap, overlap + shrinkage)
        sims = tf.where(overlap >= max(self.min_support, 1), sims, tf.zeros_like(sims))
        width = tf.minimum(tf.shape(self.neighbour_table.index)[1], tf.cast(n_users, tf.int32))
        top = tf.math.top_k(sims, k=width)
        positive = top.values > 0
        return tf.where(positive, tf.cast(top.indices, tf.int64), tf.zeros_like(top.indices, tf.int64)), tf.where(positive, top.values, 0.0)

    @_no_autograph
    def score_pairs(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        neighbours, weights = self.neighbour_table.rows(user_idx)
        items = tf.broadcast_to(item_idx[:, tf.newaxis], tf.shape(neighbours, out_type=tf.int64))
        ratings, found = self.ratings.lookup(neighbours, items)
        return self._predict(user_idx, item_idx, neighbours, weights, ratings, found)
