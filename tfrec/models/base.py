"""The contract every tfrec model follows: fitting hooks and the serving functions.

A ``Recommender`` is a ``tf.keras.Model`` whose fitted state is non-trainable weights
(vocabularies, each user's training items, fallback popularity) plus whatever the
algorithm adds. Subclasses implement the scoring core; this class turns it into the
serving contract shared by every model:

- ``recommend(user_id string[B], history string[B, H], k int32[]) ->
  {item_ids string[B, k], scores float32[B, k]}``, best first. A known user's training
  items and every history item are excluded; the out-of-vocabulary slot never comes
  out. Ties break by lower item id. Slots with nothing left to recommend hold item id
  "" and score -inf. Unknown users with an empty history get the fallback: training
  popularity (interaction counts). Models with ``uses_history`` score unknown users
  from their history instead.
- ``score(user_id string[B], item_id string[B]) -> {score float32[B]}``: a predicted
  rating clipped to the training rating range for rating models (``predicts_ratings``;
  when the user or item is unknown, ``rating_fallback``: the training mean, or the
  model's baseline ``mu + b_u + b_i`` of the known side), otherwise the ranking score.
- ``similar_items(item_id string[B], k int32[]) -> {item_ids, scores}`` for models that
  also derive from ``SimilarItems``; the query item itself is never returned; unknown
  items get no results ("" / -inf).

Fitting follows the Keras ``adapt`` pattern: ``reset_state()``, ``update_state(batch)``
for each batch of a ``tf.data`` pass over the training interactions, ``finalize_state()``.
Batches carry indices: ``user_idx`` int64[B], ``item_idx`` int64[B], ``rating``
float32[B], ``timestamp`` int64[B]. Trained models are then fitted with ``model.fit``
(see ``tfrec.training.fit``).
"""
from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.dataset import Dataset, encode_ids
from tfrec.layers.interaction_table import UserItemTable, mask_ragged
from tfrec.layers.popularity import PopularityCounts
from tfrec.layers.vocabulary import IdVocabulary

_RECOMMEND_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="user_id"),
    tf.TensorSpec([None, None], tf.string, name="history"),
    tf.TensorSpec([], tf.int32, name="k"),
)
_SCORE_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="user_id"),
    tf.TensorSpec([None], tf.string, name="item_id"),
)
_SIMILAR_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="item_id"),
    tf.TensorSpec([], tf.int32, name="k"),
)


def user_time_order(user_idx: np.ndarray, timestamp: np.ndarray, item_idx: np.ndarray) -> np.ndarray | None:
    """The stable row order by (user, timestamp, item) of int64[n] columns: int64[n], or
    None when the rows are in that order already.

    One stable argsort of the packed key ``(user * T + t) * I + item`` (t: the timestamp
    minus the smallest, or its rank when that range is too wide to pack; ``np.lexsort``
    when even ranks overflow): 3.5x faster than ``np.lexsort`` at 5M rows. The key is
    built in place and checked for order first (sorted input costs one pass).
    """
    if len(user_idx) == 0:
        return None
    n_users, n_items = int(user_idx.max()) + 1, int(item_idx.max()) + 1
    t_min, t_span = int(timestamp.min()), int(timestamp.max()) - int(timestamp.min()) + 1
    if n_users * t_span * n_items >= 2**62:
        timestamp = np.unique(timestamp, return_inverse=True)[1].reshape(-1).astype(np.int64)
        t_min, t_span = 0, int(timestamp.max()) + 1
        if n_users * t_span * n_items >= 2**62:
            order = np.lexsort((item_idx, timestamp, user_idx))
            return None if np.array_equal(order, np.arange(len(order))) else order
    key = np.multiply(user_idx, t_span, dtype=np.int64)
    key += timestamp
    key -= t_min
    key *= n_items
    key += item_idx
    if np.all(key[1:] >= key[:-1]):
        return None
    return np.argsort(key, kind="stable")


class NotFittedError(RuntimeError):
    """The model was used before ``tfrec.fit``."""


class Recommender(keras.Model):
    """Base class of every tfrec model (see the module docstring for the contract)."""

    registry_name: ClassVar[str] = ""
    trained: ClassVar[bool] = False
    uses_history: ClassVar[bool] = False
    predicts_ratings: ClassVar[bool] = False

    def __init__(self, name: str | None = None):
        super().__init__(name=name or self.registry_name or None)
        self.users = IdVocabulary(name="users")
        self.items = IdVocabulary(name="items")
        self.user_items = UserItemTable(name="user_items")
        self.fallback = PopularityCounts(name="fallback_popularity")
        self.item_titles = tf.Variable([""], shape=tf.TensorShape([None]), dtype=tf.string, trainable=False, name="item_titles")
        self.rating_range = tf.Variable([0.0, 0.0, 0.0], trainable=False, name="rating_min_mean_max")
        self.is_fitted = tf.Variable(False, trainable=False, name="is_fitted")

    # ----------------------------------------------------------------- config
    @classmethod
    def hyperparameters(cls) -> dict[str, inspect.Parameter]:
        """The constructor's keyword arguments (without ``name``), in order."""
        params = inspect.signature(cls.__init__).parameters
        return {k: p for k, p in params.items() if k not in ("self", "name", "args", "kwargs")}

    def get_config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.hyperparameters()}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> "Recommender":
        return cls(**config)

    # ---------------------------------------------------------------- fitting
    def prepare(self, data: Dataset) -> pd.DataFrame:
        """Vocabularies, each user's training items (time order), titles, rating range.

        Returns the interactions sorted by (user, timestamp, item id) with integer
        ``user_idx`` / ``item_idx`` columns, for subclasses that need them.
        """
        frame = data.interactions
        if len(frame) == 0:
            raise ValueError(f"{data.name}: no interactions to fit on")
        user_ids, user_idx = encode_ids(frame["user_id"])
        item_ids, item_idx = encode_ids(frame["item_id"])
        self.users.set_ids(user_ids)
        self.items.set_ids(item_ids)
        columns = {
            "user_idx": user_idx + 1,  # index 0 is the out-of-vocabulary slot
            "item_idx": item_idx + 1,
            "rating": frame["rating"].to_numpy(np.float32),
            "timestamp": frame["timestamp"].to_numpy(np.int64),
        }
        order = user_time_order(columns["user_idx"], columns["timestamp"], columns["item_idx"])
        if order is not None:
            columns = {key: value[order] for key, value in columns.items()}
        indexed = pd.DataFrame(columns, copy=False)  # copy=False: no block copy
        self.user_items.set_rows(indexed["user_idx"].to_numpy(), indexed["item_idx"].to_numpy(), self.users.size)
        titles = data.items.drop_duplicates("item_id").set_index("item_id")["title"]
        aligned = titles.reindex(item_ids).fillna(pd.Series(item_ids, index=item_ids)).astype(str)
        self.item_titles.assign(np.concatenate([[""], aligned.to_numpy(dtype=object)]).astype(object))
        ratings = indexed["rating"].to_numpy(np.float64)
        self.rating_range.assign([ratings.min(), ratings.mean(), ratings.max()])
        return indexed

    def reset_state(self) -> None:
        self.fallback.reset_state(self.items.size)

    def update_state(self, batch: dict[str, tf.Tensor]) -> None:
        self.fallback.update_state(batch["item_idx"], batch["rating"], batch["timestamp"])

    def finalize_state(self) -> None:
        self.fallback.finalize_state()
        self.is_fitted.assign(True)
        # One Keras call records the input signature, which Keras needs to save the model.
        first_user = self.users.ids[1:2]
        self({"user_id": first_user, "history": tf.zeros([1, 0], tf.string), "k": tf.constant(1, tf.int32)})

    def train(self, indexed: pd.DataFrame, data: Dataset, *, callbacks: list, verbose: int, **kwargs: Any) -> dict:
        """Learn trainable weights with ``model.fit`` (trained models only)."""
        raise NotImplementedError(f"{self.registry_name} is not a trained model")

    def write_summaries(self, top_n: int = 10) -> None:
        """Log what fitting computed to the default TensorBoard writer (step 0)."""
        counts = self.fallback.counts[1:]
        tf.summary.histogram("popularity/interactions_per_item", counts, step=0)
        top = tf.math.top_k(counts, k=tf.minimum(top_n, tf.shape(counts)[0]))
        rows = [
            f"| {rank} | {item.decode()} | {title.decode()} | {count:g} |"
            for rank, (item, title, count) in enumerate(
                zip(self.items.ids_of(top.indices + 1).numpy(), tf.gather(self.item_titles, top.indices + 1).numpy(), top.values.numpy()),
                start=1,
            )
        ]
        table = "| rank | item | title | count |\n|---|---|---|---|\n" + "\n".join(rows)
        tf.summary.text("popularity/top_items", table, step=0)

    # --------------------------------------------------- scoring core (override)
    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """Scores of every item for each query: float32[B, n_items + 1] (column 0 ignored).

        ``user_idx`` int64[B] (0 = unknown user), ``history_idx`` int64[B, H] (0 = padding
        or unknown item). Must be implemented by subclasses.
        """
        raise NotImplementedError

    def score_pairs(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """Score of one item per query: float32[B]. Default: gathered from the full scores."""
        empty_history = tf.zeros([tf.shape(user_idx)[0], 0], tf.int64)
        scores = self.score_candidates(user_idx, empty_history)
        return tf.gather(scores, item_idx, batch_dims=1)

    def similar_item_scores(self, item_idx: tf.Tensor) -> tf.Tensor:
        """Similarity of every item to each query item: float32[B, n_items + 1]."""
        raise NotImplementedError(f"{self.registry_name} has no similar_items")

    def rating_fallback(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """Predicted rating float32[B] for pairs whose user or item is unknown (index 0).

        Default: the training mean rating. Models with rating biases override it with the
        baseline ``mu + b_u + b_i`` of whichever of the two is known (Surprise's rule).
        """
        return tf.fill(tf.shape(user_idx), self.rating_range[1])

    def fallback_scores(self, batch_size: tf.Tensor) -> tf.Tensor:
        counts = tf.cast(self.fallback.counts, tf.float32)
        return tf.tile(counts[tf.newaxis, :], [batch_size, 1])

    # ------------------------------------------------------- serving functions
    @tf.function(input_signature=_RECOMMEND_SIGNATURE, autograph=False)
    def serve_recommend(self, user_id: tf.Tensor, history: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        self._check_ids(user_id, "user_id")
        k = self._check_k(k)
        user_idx = self.users.lookup(user_id)
        history_idx = self.items.lookup(history)
        batch = tf.shape(user_idx)[0]
        known = user_idx > 0
        has_history = tf.reduce_any(history_idx > 0, axis=1)
        use_model = tf.logical_or(known, has_history) if self.uses_history else known
        model_scores = self.score_candidates(user_idx, history_idx)
        scores = tf.cond(  # the [B, n_items + 1] fallback only when some row needs it
            tf.reduce_all(use_model),
            lambda: model_scores,
            lambda: tf.where(use_model[:, tf.newaxis], model_scores, self.fallback_scores(batch)),
        )
        # one scatter of -inf: training items, the given history, and column 0 (OOV/padding)
        oov_column = tf.zeros([batch, 1], tf.int64)
        excluded = tf.concat([self.user_items.rows(user_idx), tf.RaggedTensor.from_tensor(tf.concat([history_idx, oov_column], 1))], axis=1)
        return self._top_k(mask_ragged(scores, excluded), k)

    @tf.function(input_signature=_SCORE_SIGNATURE, autograph=False)
    def serve_score(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        self._check_ids(user_id, "user_id")
        self._check_ids(item_id, "item_id")
        tf.debugging.assert_equal(tf.shape(user_id), tf.shape(item_id), message="user_id and item_id must have the same length")
        user_idx = self.users.lookup(user_id)
        item_idx = self.items.lookup(item_id)
        scores = self.score_pairs(user_idx, item_idx)
        if self.predicts_ratings:
            known = tf.logical_and(user_idx > 0, item_idx > 0)
            scores = tf.where(known, scores, self.rating_fallback(user_idx, item_idx))
            scores = tf.clip_by_value(scores, self.rating_range[0], self.rating_range[2])
        else:
            scores = tf.where(item_idx > 0, scores, tf.zeros_like(scores))
        return {"score": scores}

    def _similar_items(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        self._check_ids(item_id, "item_id")
        k = self._check_k(k)
        item_idx = self.items.lookup(item_id)
        scores = self.similar_item_scores(item_idx)
        scores = mask_ragged(scores, tf.RaggedTensor.from_tensor(tf.stack([item_idx, tf.zeros_like(item_idx)], axis=1)))  # itself, OOV
        unknown = item_idx == 0
        scores = tf.where(unknown[:, tf.newaxis], tf.constant(-np.inf, scores.dtype), scores)
        return self._top_k(scores, k)

    def serving_functions(self) -> dict[str, Any]:
        """Signature name -> tf.function, as exported (and as evaluation calls them)."""
        functions = {"recommend": self.serve_recommend, "score": self.serve_score}
        if isinstance(self, SimilarItems):
            functions["similar_items"] = self.serve_similar_items
        return functions

    def call(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Keras entry point: ``recommend`` on {"user_id", "history", "k"}."""
        return self.serve_recommend(inputs["user_id"], inputs["history"], inputs["k"])

    # ----------------------------------------------------------------- helpers
    def _check_ids(self, ids: tf.Tensor, what: str) -> None:
        tf.debugging.assert_equal(self.is_fitted, True, message="the model is not fitted; call tfrec.fit(model, data) first")
        tf.debugging.assert_greater(
            tf.reduce_min(tf.concat([tf.strings.length(ids), [1]], 0)), 0, message=f"{what} must be non-empty strings"
        )

    def _check_k(self, k: tf.Tensor) -> tf.Tensor:
        n_items = tf.shape(self.items.ids)[0] - 1
        tf.debugging.assert_greater(k, 0, message="k must be at least 1")
        tf.debugging.assert_less_equal(k, n_items, message="k is larger than the number of items in the catalog")
        return k

    def _top_k(self, scores: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Best ``k`` of ``scores`` [B, n_items + 1], whose column 0 (OOV) the caller set to -inf;
        -inf entries come back as "" with score -inf."""
        top = tf.math.top_k(tf.cast(scores, tf.float32), k=k, sorted=True)
        empty = tf.math.is_inf(top.values)
        item_ids = tf.where(empty, tf.constant(""), self.items.ids_of(top.indices))
        return {"item_ids": item_ids, "scores": top.values}



class SimilarItems:
    """Mixin for models with an item-to-item similarity: adds the ``similar_items`` signature.

    The model implements ``similar_item_scores(item_idx[B]) -> float32[B, n_items + 1]``.
    """

    @tf.function(input_signature=_SIMILAR_SIGNATURE, autograph=False)
    def serve_similar_items(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._similar_items(item_id, k)
