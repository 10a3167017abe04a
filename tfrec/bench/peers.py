"""Peer recommenders behind one interface, evaluated with tfrec's own metric code.

Every peer is fitted on the very ``Dataset`` a tfrec model is fitted on (a split's train
part) and answers like a served tfrec model does:

- ``recommend(user_ids str[U], k) -> str[U, k]``: best first, over the train items minus
  the user's own train items; ties break by lower item id (the ``sorted_ids`` order
  tfrec uses); "" where nothing is left. Users absent from train get the training
  popularity (interaction counts), as tfrec's fallback does.
- ``predict(user_ids, item_ids) -> float[B]`` (rating peers, protocol R): the estimate
  clipped to the training rating range; NaN where the peer cannot predict (the runner
  then uses the training mean, as protocol R says).

The peers are the ones ``shared/PROTOCOLS.md`` lists, with its settings:

- protocol R: global mean; scikit-surprise BaselineOnly, SVD (defaults), SVD tuned
  (100 factors, 30 epochs, lr 0.007, reg 0.05), SVD++ (defaults; slow, opt-in),
  KNNBasic (item, cosine), KNNWithMeans (user, msd), KNNBaseline (item,
  pearson_baseline);
- protocol T: MostPop; implicit CosineRecommender (K=100), AlternatingLeastSquares
  (64 factors, reg 0.05, 15 iterations), BayesianPersonalizedRanking (64 factors, 100
  iterations); a numpy UserKNN (cosine, k=50, sum of neighbour similarity); EASE
  (lambda 250, numpy closed form); the TFRS basic-retrieval tutorial two-tower
  (32-dim id embeddings, Adagrad 0.1, batch 8192, 3 epochs);
- protocol S: MostPop; the co-visitation reference (window 5, last 3 history items).

Fit-time peers (``FIT_PEER``): the peer that does the work of one tfrec model's fit, for
``tfrec bench --scale ... --peers paired``, which fits each model and its peer side by
side at every size: ``popularity`` against numpy MostPop, ``tfidf`` against
scikit-learn's ``TfidfVectorizer`` + user profiles (``SklearnTfidf``), ``covisit``
against a numpy co-visitation counter (``NumpyCovisit``), ``item_knn`` against
implicit's ``CosineRecommender`` (``ImplicitCosine``), ``mf`` against implicit's ALS and
``two_tower`` against the TFRS tutorial. ``user_knn`` has none: the numpy UserKNN
computes its similarities when it scores, so its fit does not do the same work. The first two are opt-in (named, or through ``paired``), so the
default peer set of the protocol runs is the PROTOCOLS.md one. scikit-learn and implicit
serve here as peers only; tfrec's models never use them.

implicit's own ``recommend`` and TFRS's ``BruteForce`` break ties in their own ways and
do not exclude train items the same way, so for every peer the scores come from the
peer's fitted state (factors, similarity) and the exclusion and top-k are the ones
below, identical for all peers.
"""
from __future__ import annotations

import importlib.util
import time
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from tfrec.data.dataset import Dataset, sorted_ids

#: Rows of the score matrix computed at once by ``Peer.recommend``.
BATCH_USERS = 1024


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest scores per row, best first; ties by lower column.

    ``scores`` float[B, n] (-inf for excluded columns). ``np.argpartition`` finds k
    candidates; rows whose k-th value is tied with columns outside the candidates
    (frequent with integer scores such as counts) are re-ranked with a stable argsort,
    so the result equals ``np.argsort(-scores, kind="stable")[:, :k]`` exactly.
    """
    n = scores.shape[1]
    k = min(int(k), n)
    if k == n:
        return np.argsort(-scores, axis=1, kind="stable")
    neg = -scores
    part = np.argpartition(neg, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(neg, part, axis=1)
    threshold = vals.max(axis=1)
    ambiguous = np.flatnonzero((neg <= threshold[:, None]).sum(axis=1) > k)
    order = np.lexsort((part, vals), axis=1)
    out = np.take_along_axis(part, order, axis=1)
    if len(ambiguous):
        out[ambiguous] = np.argsort(neg[ambiguous], axis=1, kind="stable")[:, :k]
    return out


class Peer:
    """Common fitting state and the shared exclusion + top-k (see the module docstring).

    After ``fit``: ``user_ids`` / ``item_ids`` (train ids in tfrec's order),
    ``user_codes`` / ``item_codes`` (int64 row and column of every train interaction, in
    the train frame's order), ``matrix`` (csr float64 [n_users, n_items], 1 where the
    user interacted), ``popularity`` (interaction counts per item), ``rating_range``
    (min, mean, max) and, built on first use (only the peers that read it pay for the
    sort), ``sequences`` (indexed train frame sorted by user, time, item).
    """

    key: ClassVar[str] = ""
    label: ClassVar[str] = ""
    protocols: ClassVar[tuple[str, ...]] = ()
    requires: ClassVar[str | None] = None  # an importable module the peer needs
    imports: ClassVar[tuple[str, ...]] = ()  # modules its fit imports (see `preload`)
    predicts_ratings: ClassVar[bool] = False
    slow: ClassVar[bool] = False  # left out unless asked for by name
    opt_in: ClassVar[bool] = False  # also left out unless asked for (fit-time peers of the scale runs)

    def __init__(self, **params: Any):
        self.params = params

    @classmethod
    def available(cls) -> bool:
        return cls.requires is None or importlib.util.find_spec(cls.requires) is not None

    @classmethod
    def preload(cls) -> None:
        """Import the modules the peer's fit needs, so that timing a fit does not time
        imports (a tfrec model's fit does not import TensorFlow either)."""
        for module in cls.imports + ((cls.requires,) if cls.requires else ()):
            importlib.import_module(module)

    # ------------------------------------------------------------------ fitting
    def fit(self, train: Dataset) -> Peer:
        frame = train.interactions
        self.user_ids = sorted_ids(frame["user_id"])
        self.item_ids = sorted_ids(frame["item_id"])
        self._user_index = pd.Index(self.user_ids)
        self._item_index = pd.Index(self.item_ids)
        users = self._user_index.get_indexer(frame["user_id"].astype(str)).astype(np.int64)
        items = self._item_index.get_indexer(frame["item_id"].astype(str)).astype(np.int64)
        self.user_codes, self.item_codes = users, items
        self._frame = frame
        self.__dict__.pop("sequences", None)  # a refit sorts again
        shape = (len(self.user_ids), len(self.item_ids))
        matrix = sparse.csr_matrix((np.ones(len(users)), (users, items)), shape=shape)
        matrix.data[:] = 1.0  # repeated (user, item) pairs count once
        self.matrix = matrix
        self.popularity = np.bincount(items, minlength=shape[1]).astype(np.float64)
        ratings = frame["rating"].to_numpy(np.float64)
        self.rating_range = (float(ratings.min()), float(ratings.mean()), float(ratings.max()))
        start = time.perf_counter()
        self._fit(train)
        self.fit_seconds = time.perf_counter() - start
        return self

    @cached_property
    def sequences(self) -> pd.DataFrame:
        """The train interactions as (user, item, rating, timestamp) indices, sorted by
        user, time, item (stable)."""
        return pd.DataFrame(
            {
                "user": self.user_codes,
                "item": self.item_codes,
                "rating": self._frame["rating"].to_numpy(np.float64),
                "timestamp": self._frame["timestamp"].to_numpy(np.int64),
            }
        ).sort_values(["user", "timestamp", "item"], kind="stable", ignore_index=True)

    def _fit(self, train: Dataset) -> None:
        """The peer's own fitting (the shared state above is ready)."""

    # ------------------------------------------------------------------ scoring
    def scores(self, rows: np.ndarray) -> np.ndarray:
        """float[len(rows), n_items] for known user rows (indices into ``user_ids``)."""
        raise NotImplementedError(f"{self.key} does not rank items")

    def recommend(self, user_ids, k: int = 10) -> np.ndarray:
        """Top-k train item ids per user (str[U, k]); see the module docstring."""
        users = np.asarray(list(user_ids), dtype=object).astype(str)
        rows = self._user_index.get_indexer(users)
        k = min(int(k), len(self.item_ids))
        out = np.full((len(users), k), "", dtype=object)
        for start in range(0, len(users), BATCH_USERS):
            batch = rows[start : start + BATCH_USERS]
            known = batch >= 0
            scores = np.tile(self.popularity, (len(batch), 1))
            if known.any():
                scores[known] = self.scores(batch[known])
                # exclusion: the user's own train items
                sub = self.matrix[batch[known]]
                scores[np.flatnonzero(known)[np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))], sub.indices] = -np.inf
            top = top_k_indices(scores, k)
            chosen = np.take_along_axis(scores, top, axis=1)
            ids = self.item_ids[top]
            ids[np.isneginf(chosen)] = ""
            out[start : start + len(batch)] = ids
        return out

    def predict(self, user_ids, item_ids) -> np.ndarray:
        raise NotImplementedError(f"{self.key} does not predict ratings")

    def info(self) -> dict[str, Any]:
        return {"peer": self.key, "label": self.label, **self.params}


# ---------------------------------------------------------------- protocol T/S
class MostPop(Peer):
    """score(u, i) = number of training interactions with i."""

    key = "mostpop"
    label = "MostPop"
    protocols = ("T", "S")

    def scores(self, rows):
        return np.tile(self.popularity, (len(rows), 1))


class EASE(Peer):
    """EASE (Steck 2019), numpy closed form on the binary user-item matrix X.

    G = X^T X + lambda I, P = G^-1, B = -P / diag(P) (column-wise), diag(B) = 0,
    score(u) = X_u B. float64 throughout; memory 2 dense n_items^2 matrices.
    """

    key = "ease"
    label = "EASE (lambda 250, numpy)"
    protocols = ("T",)

    def __init__(self, lam: float = 250.0):
        super().__init__(lam=lam)

    def _fit(self, train):
        gram = (self.matrix.T @ self.matrix).toarray()
        gram[np.diag_indices_from(gram)] += self.params["lam"]
        inverse = np.linalg.inv(gram)
        weights = inverse / (-np.diag(inverse))
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights

    def scores(self, rows):
        return np.asarray(self.matrix[rows] @ self.weights)


class UserKNNReference(Peer):
    """UserKNN (cosine, k=50, sum of neighbour similarity), numpy.

    sim(u, v) = |I_u & I_v| / sqrt(|I_u| |I_v|) on binary train rows; N(u) = the k users
    v != u with the largest sim (ties by lower user id); score(u, i) = sum over v in N(u)
    with i in I_v of sim(u, v).
    """

    key = "userknn"
    label = "UserKNN (cosine, k=50, numpy)"
    protocols = ("T",)

    def __init__(self, k: int = 50):
        super().__init__(k=k)

    def _fit(self, train):
        norms = np.sqrt(np.asarray(self.matrix.sum(axis=1)).ravel())
        self._normed = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ self.matrix

    def scores(self, rows):
        sim = np.asarray((self._normed[rows] @ self._normed.T).todense())
        sim[np.arange(len(rows)), rows] = -np.inf  # never one's own neighbour
        k = min(self.params["k"], sim.shape[1] - 1)
        neighbours = top_k_indices(sim, k)
        weights = np.take_along_axis(sim, neighbours, axis=1)
        weights[~np.isfinite(weights)] = 0.0
        knn = sparse.csr_matrix(
            (weights.ravel(), (np.repeat(np.arange(len(rows)), k), neighbours.ravel())), shape=(len(rows), sim.shape[1])
        )
        return np.asarray((knn @ self.matrix).todense())


class _ImplicitPeer(Peer):
    requires = "implicit"
    protocols = ("T",)

    def _model(self):
        raise NotImplementedError

    def _fit(self, train):
        import warnings

        self.model = self._model()
        with warnings.catch_warnings():  # CosineRecommender converts its own normalised COO matrix
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model.fit(self.matrix.astype(np.float32).tocsr(), show_progress=False)
        model = self.model
        if hasattr(model, "to_cpu") and not hasattr(model, "user_factors"):
            model = model.to_cpu()
        self._user_factors = getattr(model, "user_factors", None)
        self._item_factors = getattr(model, "item_factors", None)

    def scores(self, rows):
        return np.asarray(self._user_factors[rows], np.float64) @ np.asarray(self._item_factors, np.float64).T


class ImplicitCosine(_ImplicitPeer):
    """implicit.nearest_neighbours.CosineRecommender(K): score(u) = X_u S (S its top-K item cosine)."""

    key = "implicit_cosine"
    label = "ItemKNN (implicit CosineRecommender, K=100)"
    imports = ("implicit.nearest_neighbours",)

    def __init__(self, K: int = 100):
        super().__init__(K=K)

    def _model(self):
        from implicit.nearest_neighbours import CosineRecommender

        return CosineRecommender(K=self.params["K"])

    def scores(self, rows):
        return np.asarray((self.matrix[rows] @ self.model.similarity.astype(np.float64)).todense())


class ImplicitALS(_ImplicitPeer):
    """implicit AlternatingLeastSquares on the binary matrix; score = user_factors . item_factors."""

    key = "implicit_als"
    label = "implicit ALS (64 factors, reg 0.05, 15 it)"
    imports = ("implicit.cpu.als",)

    def __init__(self, factors: int = 64, regularization: float = 0.05, iterations: int = 15, random_state: int = 42):
        super().__init__(factors=factors, regularization=regularization, iterations=iterations, random_state=random_state)

    def _model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        return AlternatingLeastSquares(**self.params)


class ImplicitBPR(_ImplicitPeer):
    """implicit BayesianPersonalizedRanking; item factors carry the item bias column."""

    key = "implicit_bpr"
    label = "implicit BPR (64 factors, 100 it)"
    imports = ("implicit.cpu.bpr",)

    def __init__(self, factors: int = 64, iterations: int = 100, random_state: int = 42):
        super().__init__(factors=factors, iterations=iterations, random_state=random_state)

    def _model(self):
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        return BayesianPersonalizedRanking(**self.params)


def tfrs_tutorial_model(user_ids: list[str], item_ids: list[str], embedding_dim: int = 32, learning_rate: float = 0.1):
    """The TFRS basic-retrieval tutorial's model (``TfrsTwoTower``), compiled: ``StringLookup``
    + ``Embedding`` towers, ``tfrs.tasks.Retrieval()`` without metrics, Adagrad."""
    from tfrec._keras import keras  # noqa: I001  (Keras 2 first)
    import tensorflow_recommenders as tfrs

    def tower(ids: list[str]):
        return keras.Sequential([keras.layers.StringLookup(vocabulary=ids, mask_token=None), keras.layers.Embedding(len(ids) + 1, embedding_dim)])

    class TutorialModel(tfrs.Model):
        def __init__(self):
            super().__init__()
            self.user_model = tower(user_ids)
            self.item_model = tower(item_ids)
            self.task = tfrs.tasks.Retrieval()

        def compute_loss(self, features, training=False):
            return self.task(self.user_model(features["user_id"]), self.item_model(features["item_id"]))

    model = TutorialModel()
    model.compile(optimizer=keras.optimizers.Adagrad(learning_rate=learning_rate))
    return model


def tfrs_tutorial_batches(train, batch_size: int = 8192, seed: int = 42):
    """The tutorial's training batches of ``train`` (a ``Dataset``): string ids shuffled
    once (buffer 100,000), batched, cached."""
    from tfrec._keras import tf

    frame = train.interactions
    ratings = tf.data.Dataset.from_tensor_slices({"user_id": frame["user_id"].astype(str).to_numpy(), "item_id": frame["item_id"].astype(str).to_numpy()})
    return ratings.shuffle(100_000, seed=seed, reshuffle_each_iteration=False).batch(batch_size).cache()


def epoch_timer(keras):
    """A Keras callback whose ``seconds`` list gets each epoch's time, from the start of
    the epoch to the end of its last batch."""

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self._start = self._last = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self._last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self._last - self._start)

    return EpochTimer()


class TFRSTwoTower(Peer):
    """The TFRS basic-retrieval tutorial, as written there, on the train split.

    Towers: ``StringLookup(vocabulary=unique ids, mask_token=None)`` + ``Embedding(n + 1,
    32)`` for users and for items; ``tfrs.tasks.Retrieval`` (in-batch softmax, no
    sampling-probability correction); ``Adagrad(0.1)``; train shuffled once
    (``shuffle(100_000, seed=42, reshuffle_each_iteration=False)``), batch 8192, 3 epochs,
    ``tf.random.set_seed(42)``. The tutorial also computes ``FactorizedTopK`` during
    training; that metric does not change the weights (PROTOCOLS.md), so it is left
    out here (about 5x faster). score(u, i) = user_emb(u) . item_emb(i).

    After ``fit``, ``epoch_seconds`` holds each epoch's time (first batch to last;
    epoch 1 includes tracing), for throughput comparisons (``scripts/bench_two_tower.py``).
    """

    key = "tfrs_two_tower"
    label = "TFRS tutorial two-tower (32-dim, Adagrad 0.1, batch 8192, 3 ep)"
    requires = "tensorflow_recommenders"
    imports = ("tfrec._keras",)
    protocols = ("T",)

    def __init__(self, embedding_dim: int = 32, learning_rate: float = 0.1, batch_size: int = 8192, epochs: int = 3, seed: int = 42):
        super().__init__(embedding_dim=embedding_dim, learning_rate=learning_rate, batch_size=batch_size, epochs=epochs, seed=seed)

    def _fit(self, train):
        from tfrec._keras import keras, tf

        p = self.params
        tf.random.set_seed(p["seed"])
        users, items = list(self.user_ids), list(self.item_ids)
        model = tfrs_tutorial_model(users, items, p["embedding_dim"], p["learning_rate"])
        timer = epoch_timer(keras)
        model.fit(tfrs_tutorial_batches(train, p["batch_size"], p["seed"]), epochs=p["epochs"], callbacks=[timer], verbose=0)
        self.epoch_seconds = list(timer.seconds)
        self._user_factors = model.user_model(tf.constant(users)).numpy().astype(np.float64)
        self._item_factors = model.item_model(tf.constant(items)).numpy().astype(np.float64)

    def scores(self, rows):
        return self._user_factors[rows] @ self._item_factors.T


class CovisitReference(Peer):
    """The protocol-S co-visitation reference.

    C[a, b] = number of position pairs (p, q) in the same user's time-ordered train
    sequence with 1 <= |p - q| <= window - 1 (symmetric); score(c) = sum of C[h, c] over
    the last ``last`` items of the user's sequence; ties by training popularity, then
    lower item id (the score is C-score * (max popularity + 1) + popularity, exact in
    float64).
    """

    key = "covisit_ref"
    label = "co-visitation reference (window 5, last 3)"
    protocols = ("S",)

    def __init__(self, window: int = 5, last: int = 3):
        super().__init__(window=window, last=last)

    def _fit(self, train):
        seq = self.sequences
        user = seq["user"].to_numpy()
        item = seq["item"].to_numpy()
        heads, tails = [], []
        for d in range(1, self.params["window"]):
            same = user[d:] == user[:-d]
            heads += [item[:-d][same], item[d:][same]]
            tails += [item[d:][same], item[:-d][same]]
        n = len(self.item_ids)
        a, b = np.concatenate(heads), np.concatenate(tails)
        self.covisit = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
        counts = np.bincount(user, minlength=len(self.user_ids))
        ends = np.cumsum(counts)
        last = self.params["last"]
        rows, cols = [], []
        for j in range(1, last + 1):
            has = counts >= j
            rows.append(np.flatnonzero(has))
            cols.append(item[ends[has] - j])
        self._recent = sparse.csr_matrix(
            (np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))), shape=(len(self.user_ids), n)
        )

    def scores(self, rows):
        co = np.asarray((self._recent[rows] @ self.covisit).todense())
        return co * (self.popularity.max() + 1.0) + self.popularity


class SklearnTfidf(Peer):
    """``tfidf``'s fit-time peer: scikit-learn's TF-IDF and user profiles.

    Item vectors X = ``sklearn.feature_extraction.text.TfidfVectorizer()`` (defaults)
    ``.fit_transform`` of the train items' ``text`` (the empty text for items missing
    from the catalogue); user profiles ``normalize(R @ X)`` with R the user x item
    rating matrix (csr; repeated pairs add up); score(u) = profile_u . X^T, the cosine.
    """

    key = "sklearn_tfidf"
    label = "scikit-learn TfidfVectorizer + user profiles"
    requires = "sklearn"
    imports = ("sklearn.feature_extraction.text", "sklearn.preprocessing")
    protocols = ("T",)
    opt_in = True

    def _fit(self, train):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize

        ratings = sparse.csr_matrix(
            (self._frame["rating"].to_numpy(np.float64), (self.user_codes, self.item_codes)), shape=self.matrix.shape
        )
        catalog = train.items.drop_duplicates("item_id").set_index("item_id")["text"]
        texts = catalog.reindex(self.item_ids).fillna("").astype(str).tolist()
        self.item_vectors = TfidfVectorizer().fit_transform(texts)
        self.profiles = normalize(ratings @ self.item_vectors)

    def scores(self, rows):
        return (self.profiles[rows] @ self.item_vectors.T).toarray()


class NumpyCovisit(Peer):
    """``covisit``'s fit-time peer: a straightforward numpy co-visitation counter with
    the settings of tfrec's defaults.

    Sequences: ``data.sessions`` ordered by (session_id, position) when the data has
    sessions, else each user's train items in (time, item) order. Counts: for every
    offset d in 1 .. window - 1, the pairs (a, b) and (b, a) of different known items d
    apart in the same sequence, counted with ``np.unique(a * n + b, return_counts=True)``;
    the ``top_n`` largest counts per item kept (ties by lower item). Scores: for the
    user's last ``history_length`` train items h_0 (latest), h_1, ...:
    sum_j history_decay ** j * C[h_j, c] + popularity_tiebreak * pop(c) / (max pop + 1).
    """

    key = "numpy_covisit"
    label = "numpy co-visitation counter (window 5, top 100, last 5)"
    protocols = ("T", "S")
    opt_in = True

    def __init__(self, window: int = 5, top_n: int = 100, history_length: int = 5, history_decay: float = 0.5,
                 popularity_tiebreak: float = 0.01):
        super().__init__(window=window, top_n=top_n, history_length=history_length, history_decay=history_decay,
                         popularity_tiebreak=popularity_tiebreak)

    def _fit(self, train):
        p, n = self.params, len(self.item_ids)
        order = np.lexsort((self.item_codes, self._frame["timestamp"].to_numpy(), self.user_codes))  # user, time, item
        self._history = self.item_codes[order]
        history_user = self.user_codes[order]
        if train.sessions is not None:
            sessions = train.sessions
            by_session = np.lexsort((sessions["position"].to_numpy(), sessions["session_id"].to_numpy()))
            sequence = self._item_index.get_indexer(sessions["item_id"].astype(str))[by_session]
            session = sessions["session_id"].to_numpy()[by_session]
        else:
            sequence, session = self._history, history_user
        keys = []
        for d in range(1, p["window"]):
            a, b = sequence[:-d], sequence[d:]
            same = (session[:-d] == session[d:]) & (a != b) & (a >= 0) & (b >= 0)
            a, b = a[same].astype(np.int64), b[same].astype(np.int64)
            keys += [a * n + b, b * n + a]
        pairs, counts = np.unique(np.concatenate(keys), return_counts=True)
        row, col = pairs // n, pairs % n
        by_count = np.lexsort((col, -counts, row))
        row, col, counts = row[by_count], col[by_count], counts[by_count]
        rank = np.arange(len(row)) - np.searchsorted(row, np.arange(n))[row]
        keep = rank < p["top_n"]
        self.neighbours = np.full((n, p["top_n"]), -1, np.int64)
        self.weights = np.zeros((n, p["top_n"]))
        self.neighbours[row[keep], rank[keep]] = col[keep]
        self.weights[row[keep], rank[keep]] = counts[keep]
        self._starts = np.searchsorted(history_user, np.arange(len(self.user_ids) + 1))

    def scores(self, rows):
        p, n = self.params, len(self.item_ids)
        out = np.tile(p["popularity_tiebreak"] * self.popularity / (self.popularity.max() + 1.0), (len(rows), 1))
        slots, items, weights = [], [], []
        for slot, user in enumerate(rows):
            end = self._starts[user + 1]
            recent = self._history[max(self._starts[user], end - p["history_length"]) : end][::-1]
            slots.append(np.full(len(recent), slot))
            items.append(recent)
            weights.append(p["history_decay"] ** np.arange(len(recent)))
        slots, items, weights = np.concatenate(slots), np.concatenate(items), np.concatenate(weights)
        neighbours = self.neighbours[items]
        ok = neighbours >= 0
        flat = (slots[:, None] * n + neighbours)[ok]
        out += np.bincount(flat, weights=(weights[:, None] * self.weights[items])[ok], minlength=len(rows) * n).reshape(len(rows), n)
        return out


# ------------------------------------------------------------------ protocol R
class GlobalMean(Peer):
    """Predicts the training mean rating for every pair."""

    key = "global_mean"
    label = "global mean"
    protocols = ("R",)
    predicts_ratings = True

    def predict(self, user_ids, item_ids):
        return np.full(len(user_ids), self.rating_range[1])


class _SurprisePeer(Peer):
    """A scikit-surprise algorithm on the train frame (``Reader(rating_scale=(min, max))``).

    ``predict`` is surprise's ``algo.predict(u, i).est``: clipped to the rating scale,
    the training mean when surprise finds the prediction impossible.
    """

    requires = "surprise"
    protocols = ("R",)
    predicts_ratings = True

    def _algorithm(self):
        raise NotImplementedError

    def _fit(self, train):
        import surprise

        frame = train.interactions
        low, _, high = self.rating_range
        reader = surprise.Reader(rating_scale=(low, high))
        data = surprise.Dataset.load_from_df(
            pd.DataFrame({"u": frame["user_id"].astype(str), "i": frame["item_id"].astype(str), "r": frame["rating"].astype(float)}),
            reader,
        )
        self.algo = self._algorithm()
        self.algo.fit(data.build_full_trainset())

    def predict(self, user_ids, item_ids):
        predict = self.algo.predict
        return np.array([predict(str(u), str(i)).est for u, i in zip(user_ids, item_ids)], dtype=np.float64)


def _surprise(key: str, label: str, factory: str, slow: bool = False, **params: Any) -> type[_SurprisePeer]:
    def algorithm(self):
        import surprise

        return getattr(surprise, factory)(**self.params)

    return type(
        factory + "Peer",
        (_SurprisePeer,),
        {"key": key, "label": label, "slow": slow, "_algorithm": algorithm, "__init__": lambda self, **kw: Peer.__init__(self, **{**params, **kw})},
    )


_QUIET = {"verbose": False}
SurpriseBaseline = _surprise("surprise_baseline", "Surprise BaselineOnly", "BaselineOnly", verbose=False)
SurpriseSVD = _surprise("surprise_svd", "Surprise SVD (defaults)", "SVD", random_state=0)
SurpriseSVDTuned = _surprise(
    "surprise_svd_tuned", "Surprise SVD tuned (100 f, 30 ep, lr 0.007, reg 0.05)", "SVD",
    n_factors=100, n_epochs=30, lr_all=0.007, reg_all=0.05, random_state=0,
)
SurpriseSVDpp = _surprise("surprise_svdpp", "Surprise SVD++ (defaults)", "SVDpp", slow=True, random_state=0)
SurpriseKNNBasic = _surprise(
    "surprise_knn_basic", "Surprise KNNBasic, item, cosine", "KNNBasic", sim_options={"name": "cosine", "user_based": False}, **_QUIET
)
SurpriseKNNMeans = _surprise(
    "surprise_knn_means", "Surprise KNNWithMeans, user, msd", "KNNWithMeans", sim_options={"name": "msd", "user_based": True}, **_QUIET
)
SurpriseKNNBaseline = _surprise(
    "surprise_knn_baseline", "Surprise KNNBaseline, item, pearson_baseline", "KNNBaseline",
    sim_options={"name": "pearson_baseline", "user_based": False}, **_QUIET,
)

#: Every peer by key, in table order.
PEERS: dict[str, type[Peer]] = {
    cls.key: cls
    for cls in (
        GlobalMean, SurpriseBaseline, SurpriseSVD, SurpriseSVDTuned, SurpriseSVDpp, SurpriseKNNBasic, SurpriseKNNMeans,
        SurpriseKNNBaseline, MostPop, ImplicitCosine, UserKNNReference, ImplicitALS, ImplicitBPR, EASE, TFRSTwoTower,
        CovisitReference, SklearnTfidf, NumpyCovisit,
    )
}

#: Each tfrec model's fit-time peer: the peer whose fit does the same work, fitted next to
#: the model at every size by ``tfrec bench --scale SIZES --peers paired``.
FIT_PEER = {
    "popularity": "mostpop",
    "tfidf": "sklearn_tfidf",
    "covisit": "numpy_covisit",
    "item_knn": "implicit_cosine",
    "mf": "implicit_als",
    "two_tower": "tfrs_two_tower",
}

#: The peer each protocol's ratios are taken against (PROTOCOLS.md's strongest cheap row).
REFERENCE_PEER = {"R": "surprise_svd", "T": "ease", "S": "covisit_ref"}


def peers_for(protocol: str, names: list[str] | None = None) -> list[str]:
    """Peer keys that apply to ``protocol``: ``names`` (None = every peer that is neither
    slow nor opt-in)."""
    keys = list(PEERS) if names is None else names
    return [k for k in keys if protocol in PEERS[k].protocols and (names is not None or not (PEERS[k].slow or PEERS[k].opt_in))]


def paired_peers(models: list[str]) -> list[str]:
    """The fit-time peers (``FIT_PEER``) of ``models`` (names, or ``name:key=value``
    variants), each once, in model order."""
    return list(dict.fromkeys(FIT_PEER[m.split(":")[0]] for m in models if m.split(":")[0] in FIT_PEER))


def make_peer(key: str, **params: Any) -> Peer:
    try:
        cls = PEERS[key]
    except KeyError:
        raise ValueError(f"unknown peer '{key}'; peers are: {', '.join(PEERS)}") from None
    return cls(**params)
