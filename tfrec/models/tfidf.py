"""Content-based recommender: TF-IDF item vectors, user profiles, cosine similarity."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.layers.tfidf import TfidfVectorizer
from tfrec.models.base import Recommender, SimilarItems
from tfrec.models.fit_inputs import FitInputs
from tfrec.models.params import Param
from tfrec.models.specs import SPECS


class TfidfRecommender(SimilarItems, Recommender):
    """Content-based TF-IDF: rank items by the cosine of their text vector to the user's profile.

    Item vectors: ``x_i`` = TF-IDF of the catalogue's ``text`` (``fit(..., catalog=items)``) over the corpus of the N items
    in the model's item vocabulary (the items in the training interactions; an item
    missing from the catalogue has the empty text), computed by ``TfidfVectorizer``
    (``tfrec.layers.tfidf``). Defaults equal scikit-learn's ``TfidfVectorizer()``:
    lower-case, tokens ``(?u)\\b\\w\\w+\\b``, raw counts, idf = ln((1 + n) / (1 + df)) + 1,
    rows l2-normalised; ``lowercase``, ``min_df``, ``max_features``, ``idf``
    ("smooth" | "plain" | "keras" | "none"), ``sublinear_tf`` and ``norm``
    ("l2" | "l1" | "none") change that (formulas in ``TfidfVectorizer``).

    User profile: ``p_u = sum_j w_j x_{i_j} / sum_j |w_j|`` over the user's training
    interactions (u, i_j, r_j), with ``w_j = r_j`` when ``rating_weighted`` (default), 1
    otherwise, and ``w_j = r_j - mean_u(r)`` when ``centered`` (disliked items then push
    the profile away). Items given in ``history`` (no rating) weigh the training mean
    rating when ``rating_weighted`` and not ``centered``, else 1; for a known user they
    are added to the training items, an unknown user's profile is built from them alone
    (``uses_history``); with no known history item it gets the base class's fallback:
    training popularity, scored as each item's share of the training interactions
    (count / total, in [0, 1]).

    Scores: ``score(u, i) = cos(p_u, x_i) = p_u . x_i / (||p_u|| ||x_i||)`` (0 when either
    is the zero vector); ``similar_items(q)``: ``cos(x_q, x_i)``, which equals
    ``sklearn.metrics.pairwise.cosine_similarity`` on scikit-learn's TF-IDF matrix.

    Storage is sparse: the item vectors are a CSR matrix (``item_row_splits``
    int64[N + 2], ``item_terms`` int64[nnz], ``item_values`` float32[nnz]; row 0 is the
    out-of-vocabulary item), so memory grows with the number of (item, term) pairs, never
    with items x vocabulary. Scoring a batch of B queries builds a dense float32[B, V]
    profile matrix and multiplies the sparse item matrix with it (``O(nnz * B)``): a 1,024
    query batch over a 100,000-term vocabulary needs 400 MB, so lower the batch size (or
    set ``max_features``) for very large vocabularies.

    New items: ``vectorize(texts)`` turns any text into its TF-IDF vector with the fitted
    vocabulary and idf (no refit), ``text_similarity(texts)`` gives its cosine to every
    catalog item, and ``score_texts(user_ids, texts)`` the cosine to a user's profile.
    """

    registry_name = "tfidf"
    PARAMS: ClassVar[dict[str, Param]] = SPECS["tfidf"].params

    @property
    def uses_history(self) -> bool:
        return True

    def __init__(
        self,
        lowercase: bool = True,
        min_df: int = 1,
        max_features: int | None = None,
        idf: str = "smooth",
        sublinear_tf: bool = False,
        norm: str = "l2",
        rating_weighted: bool = True,
        centered: bool = False,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.lowercase = lowercase
        self.min_df = min_df
        self.max_features = max_features
        self.idf = idf
        self.sublinear_tf = sublinear_tf
        self.norm = norm
        self.rating_weighted = rating_weighted
        self.centered = centered
        self.vectorizer = TfidfVectorizer(
            lowercase=lowercase, min_df=min_df, max_features=max_features, idf=idf, sublinear_tf=sublinear_tf, norm=norm, name="tfidf"
        )
        self.item_row_splits = tf.Variable([0, 0], shape=tf.TensorShape([None]), dtype=tf.int64, trainable=False, name="item_row_splits")
        self.item_terms = tf.Variable(tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="item_terms")
        self.item_values = tf.Variable(tf.zeros([0], tf.float32), shape=tf.TensorShape([None]), trainable=False, name="item_values")
        self.item_norms = tf.Variable(tf.zeros([1], tf.float32), shape=tf.TensorShape([None]), trainable=False, name="item_norms")
        self.profile_weights = tf.Variable(tf.zeros([0], tf.float32), shape=tf.TensorShape([None]), trainable=False, name="profile_weights")
        self.history_weight = tf.Variable(1.0, trainable=False, name="history_weight")

    # ---------------------------------------------------------------- fitting
    def prepare(self, indexed: pd.DataFrame, inputs: FitInputs) -> None:
        """Base vocabularies, then the item TF-IDF matrix and the profile weights."""
        super().prepare(indexed, inputs)
        if not inputs.has_catalog:
            raise ValueError("tfidf reads the items' text: pass the item catalogue to fit (model.fit(dataset, catalog=items))")
        item_ids = self.items.ids.numpy()[1:].astype(str)
        catalog = inputs.items.drop_duplicates("item_id").set_index("item_id")["text"]
        catalog.index = catalog.index.astype(str)
        texts = catalog.reindex(item_ids).fillna("").astype(str).to_numpy(dtype=object)
        self.vectorizer.adapt_texts(texts)
        vectors = self.vectorizer.vectorize(tf.constant(np.concatenate([[""], texts]).astype(object), tf.string))
        rows = vectors.indices[:, 0].numpy()
        counts = np.bincount(rows, minlength=len(texts) + 1)
        values = vectors.values.numpy()
        self.item_row_splits.assign(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.item_terms.assign(vectors.indices[:, 1].numpy())
        self.item_values.assign(values)
        norms = np.sqrt(np.bincount(rows, weights=values.astype(np.float64) ** 2, minlength=len(texts) + 1))
        self.item_norms.assign(norms.astype(np.float32))
        # Profile weights, aligned with self.user_items (both in the indexed frame's order).
        ratings = indexed["rating"].to_numpy(np.float64)
        if self.centered:
            user_mean = indexed.groupby("user_idx", sort=False)["rating"].transform("mean").to_numpy(np.float64)
            weights = ratings - user_mean
        elif self.rating_weighted:
            weights = ratings
        else:
            weights = np.ones_like(ratings)
        self.profile_weights.assign(weights.astype(np.float32))
        history = ratings.mean() if self.rating_weighted and not self.centered else 1.0
        self.history_weight.assign(history)

    # ---------------------------------------------------------------- scoring
    def _item_matrix(self) -> tf.SparseTensor:
        terms = tf.RaggedTensor.from_row_splits(self.item_terms, self.item_row_splits, validate=False)
        n_rows = tf.shape(self.item_row_splits, out_type=tf.int64)[0] - 1
        n_terms = tf.shape(self.vectorizer.idf, out_type=tf.int64)[0]
        return tf.SparseTensor(tf.stack([terms.value_rowids(), self.item_terms], axis=1), self.item_values, tf.stack([n_rows, n_terms]))

    def profiles(self, items: tf.RaggedTensor, weights: tf.RaggedTensor) -> tf.Tensor:
        """Weighted average item vectors: ragged item_idx[B, None], weights[B, None] -> float32[B, V]."""
        batch = items.nrows(out_type=tf.int64)
        n_terms = tf.shape(self.vectorizer.idf, out_type=tf.int64)[0]
        terms = tf.gather(tf.RaggedTensor.from_row_splits(self.item_terms, self.item_row_splits, validate=False), items.flat_values)
        values = tf.gather(tf.RaggedTensor.from_row_splits(self.item_values, self.item_row_splits, validate=False), items.flat_values)
        entry = terms.value_rowids()  # which (query, item) entry each term comes from
        owner = tf.gather(items.value_rowids(), entry)
        contribution = values.flat_values * tf.gather(weights.flat_values, entry)
        profile = tf.math.unsorted_segment_sum(contribution, owner * n_terms + terms.flat_values, batch * n_terms)
        profile = tf.reshape(profile, tf.stack([batch, n_terms]))
        total = tf.math.unsorted_segment_sum(tf.abs(weights.flat_values), items.value_rowids(), batch)
        return tf.math.divide_no_nan(profile, total[:, tf.newaxis])

    def cosine_to_items(self, vectors: tf.Tensor) -> tf.Tensor:
        """Dense float32[B, V] -> cosine to every item, float32[B, n_items + 1]."""
        dots = tf.transpose(tf.sparse.sparse_dense_matmul(self._item_matrix(), vectors, adjoint_b=True))
        norms = tf.norm(vectors, axis=1)
        return tf.math.divide_no_nan(dots, norms[:, tf.newaxis] * self.item_norms[tf.newaxis, :])

    def _user_items(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tuple[tf.RaggedTensor, tf.RaggedTensor]:
        rows = self.user_items.rows(user_idx)
        weights = tf.gather(tf.RaggedTensor.from_row_splits(self.profile_weights, self.user_items.row_splits, validate=False), user_idx)
        history = tf.ragged.boolean_mask(history_idx, history_idx > 0)
        history_weights = tf.ones_like(history, tf.float32) * self.history_weight
        return tf.concat([rows, history], axis=1), tf.concat([weights, history_weights], axis=1)

    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        items, weights = self._user_items(user_idx, history_idx)
        return self.cosine_to_items(self.profiles(items, weights))

    def similar_item_scores(self, item_idx: tf.Tensor) -> tf.Tensor:
        items = tf.RaggedTensor.from_tensor(item_idx[:, tf.newaxis])
        return self.cosine_to_items(self.profiles(items, tf.ones_like(items, tf.float32)))

    # -------------------------------------------------------------- new items
    def vectorize(self, texts) -> tf.SparseTensor:
        """TF-IDF vectors of any texts with the fitted vocabulary and idf: SparseTensor float32[B, V]."""
        return self.vectorizer.vectorize(tf.constant(np.asarray(texts, dtype=object).astype(str).astype(object), tf.string))

    def text_similarity(self, texts) -> np.ndarray:
        """Cosine of each text to every catalog item: float32[B, n_items + 1] (column 0 = OOV)."""
        return self.cosine_to_items(tf.sparse.to_dense(self.vectorize(texts))).numpy()

    def score_texts(self, user_ids, texts, history=None) -> np.ndarray:
        """Cosine of each user's profile to the text of a (possibly new) item: float32[B].

        ``history``: optional item ids per user, used like ``recommend``'s history.
        """
        user_ids = np.asarray(user_ids, dtype=object).astype(str)
        width = max((len(h) for h in history), default=0) if history is not None else 0
        padded = np.full((len(user_ids), width), "", dtype=object)
        for row, items in enumerate(history or []):
            padded[row, : len(items)] = [str(i) for i in items]
        user_idx = self.users.lookup(tf.constant(user_ids.astype(object), tf.string))
        history_idx = self.items.lookup(tf.constant(padded, tf.string, shape=padded.shape))
        items, weights = self._user_items(user_idx, history_idx)
        profile = self.profiles(items, weights)
        vectors = tf.sparse.to_dense(self.vectorize(texts))
        dots = tf.reduce_sum(profile * vectors, axis=1)
        return tf.math.divide_no_nan(dots, tf.norm(profile, axis=1) * tf.norm(vectors, axis=1)).numpy()

    # ----------------------------------------------------------- TensorBoard
    def write_summaries(self, top_n: int = 10) -> None:
        super().write_summaries(top_n)
        v = self.vectorizer
        tf.summary.scalar("tfidf/vocabulary_size", v.vocabulary_size, step=0)
        tf.summary.scalar("tfidf/documents", v.n_documents, step=0)
        tf.summary.scalar("tfidf/nonzeros", tf.shape(self.item_values)[0], step=0)
        tf.summary.histogram("tfidf/idf", v.idf, step=0)
        tf.summary.histogram("tfidf/document_frequency", v.document_frequency, step=0)
        tf.summary.histogram("tfidf/terms_per_item", self.item_row_splits[2:] - self.item_row_splits[1:-1], step=0)
        df = v.document_frequency.numpy()
        top = np.argsort(-df, kind="stable")[:top_n]
        words = v.vocabulary.numpy()
        rows = [f"| {words[t].decode()} | {df[t]} | {v.idf.numpy()[t]:.4f} |" for t in top]
        tf.summary.text("tfidf/most_frequent_terms", "| term | df | idf |\n|---|---|---|\n" + "\n".join(rows), step=0)
        query = int(np.argmax(self.fallback.counts.numpy()[1:])) + 1
        out = self._similar_items(self.items.ids[query : query + 1], tf.constant(min(top_n, self.items.size - 1), tf.int32))
        titles = dict(zip(self.items.ids.numpy(), self.item_titles.numpy()))
        query_id = self.items.ids.numpy()[query]
        lines = [
            f"| {rank} | {i.decode()} | {titles.get(i, b'').decode()} | {s:.4f} |"
            for rank, (i, s) in enumerate(zip(out["item_ids"].numpy()[0], out["scores"].numpy()[0]), start=1)
            if i
        ]
        header = f"Items most similar to {query_id.decode()} ({titles[query_id].decode()}), the most popular item\n\n"
        tf.summary.text("tfidf/similar_items_example", header + "| rank | item | title | cosine |\n|---|---|---|---|\n" + "\n".join(lines), step=0)
