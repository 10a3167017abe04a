"""Two-tower retrieval on TensorFlow Recommenders, trained with Keras ``fit``, served with top-k."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import tensorflow_recommenders as tfrs

from tfrec._keras import tf  # first: selects Keras 2 before TensorFlow Recommenders loads
from tfrec.distribute.replicas import global_batch_uniform
from tfrec.layers.retrieval import InBatchRetrieval
from tfrec.layers.towers import (
    QUERY_EMBEDDINGS,
    CandidateTower,
    QueryTower,
    batch_invariant_matmul,
    query_forward,
    tower_weight_names,
)
from tfrec.models.fit_inputs import FitInputs
from tfrec.models.optimizers import LazyAdam
from tfrec.models.params import Param
from tfrec.models.specs import SPECS
from tfrec.models.trained import TrainedRecommender, TrainingLogs

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def title_tokens(title: str) -> list[str]:
    """Lower-cased alphanumeric runs of a title: "Toy Story (1995)" -> ["toy", "story", "1995"]."""
    return _TOKEN.findall(str(title).lower())


def previous_items(user_idx: np.ndarray, item_idx: np.ndarray, length: int) -> np.ndarray:
    """int32[N, length]: for each row, the same user's ``length`` preceding items (0 = none).

    Rows must be sorted by (user, time). Column j holds the item j + 1 rows back. int32
    (item indices stay far below 2^31): the largest training column, half the memory.
    """
    n = len(user_idx)
    history = np.zeros((n, length), dtype=np.int32)
    for back in range(1, min(length, n) + 1):
        same_user = user_idx[back:] == user_idx[:-back]
        history[back:, back - 1] = np.where(same_user, item_idx[:-back], 0)
    return history


@dataclass
class ItemFeatures:
    """Candidate-tower inputs per item index (row 0 = unknown item): padded token and category indices."""

    title_tokens: np.ndarray  # int64[n_items + 1, T]
    categories: np.ndarray  # int64[n_items + 1, G]
    n_tokens: int  # vocabulary size including 0
    n_categories: int


def item_features(inputs: FitInputs, item_ids: np.ndarray, min_count: int, max_tokens: int = 8, max_categories: int = 8) -> ItemFeatures:
    """Title tokens (those in at least ``min_count`` titles, most frequent first, ties by
    text) and categories (``category`` split on "|") of the items ``item_ids`` (index 1..n)."""
    catalog = inputs.items.drop_duplicates("item_id").set_index("item_id")
    titles = catalog["title"].reindex(item_ids).fillna("").astype(str).to_numpy()
    categories = catalog["category"].reindex(item_ids).fillna("").astype(str).to_numpy()
    tokens = [title_tokens(t)[:max_tokens] for t in titles]
    counts = Counter(token for row in tokens for token in set(row))
    vocabulary = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    token_index = {t: k for k, t in enumerate(vocabulary, start=1)}
    cats = [[c for c in row.split("|") if c][:max_categories] for row in categories]
    category_index = {c: k for k, c in enumerate(sorted({c for row in cats for c in row}), start=1)}

    def padded(rows: list[list[int]], width: int) -> np.ndarray:
        table = np.zeros((len(rows) + 1, max(1, width)), dtype=np.int64)
        for r, row in enumerate(rows, start=1):
            table[r, : len(row)] = row
        return table

    token_rows = [[token_index[t] for t in row if t in token_index] for row in tokens]
    category_rows = [[category_index[c] for c in row] for row in cats]
    return ItemFeatures(
        title_tokens=padded(token_rows, max((len(r) for r in token_rows), default=1)),
        categories=padded(category_rows, max((len(r) for r in category_rows), default=1)),
        n_tokens=len(token_index) + 1,
        n_categories=len(category_index) + 1,
    )


class AllItemsTopK(tfrs.layers.factorized_top_k.TopK):
    """Exact top-k over every item, embedded by the current candidate tower at each call
    (for ``tfrs.metrics.FactorizedTopK`` on validation data while the towers train)."""

    def __init__(self, candidate_tower: CandidateTower, n_items: int, k: int):
        super().__init__(k=k)
        self.candidate_tower = candidate_tower
        self.item_range = tf.range(1, n_items, dtype=tf.int64)

    def index(self, candidates, identifiers=None):
        raise NotImplementedError("AllItemsTopK embeds the whole catalog itself")

    def is_exact(self) -> bool:
        return True

    def call(self, queries: tf.Tensor, k: int | None = None):
        scores = tf.linalg.matmul(queries, self.candidate_tower(self.item_range), transpose_b=True)
        top = tf.math.top_k(scores, k=k or self._k)
        return top.values, tf.gather(self.item_range, top.indices)


class TwoTowerNetwork(TrainingLogs, tfrs.Model):
    """The Keras network ``two_tower`` fits (``tfrs.Model``): towers + ``tfrs.tasks.Retrieval``.

    Inputs per batch: ``user_idx`` int64[B], ``item_idx`` int64[B] (the positive),
    ``history_idx`` int64[B, H] (the user's items before this one), ``sampling_probability`` float32[B] (the positive's share of training
    interactions). Loss: in-batch sampled softmax over the batch's positives,
    ``logits = q . c / temperature - log p(c)`` (logQ correction, when enabled), accidental
    hits (the same item elsewhere in the batch) removed. During training the user id is
    replaced by the unknown-user index with probability ``user_dropout`` (deterministic:
    drawn from (seed, step)), so the query tower also learns to serve users from their
    history alone. Validation: ``tfrs.metrics.FactorizedTopK`` over all items.
    """

    VALIDATION_METRICS = ("factorized_top_k/",)

    def __init__(
        self,
        query_tower: QueryTower,
        candidate_tower: CandidateTower,
        n_items: int,
        temperature: float,
        logq_correction: bool,
        user_dropout: float,
        seed: int,
        metric_ks: tuple[int, ...],
    ):
        super().__init__(name="two_tower_network")
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.logq_correction = logq_correction
        self.user_dropout = float(user_dropout)
        self.seed = int(seed)
        metrics = tfrs.metrics.FactorizedTopK(candidates=AllItemsTopK(candidate_tower, n_items, k=max(metric_ks)), ks=metric_ks)
        self.task = InBatchRetrieval(metrics=metrics, temperature=temperature)

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        users = features["user_idx"]
        if training and self.user_dropout > 0:
            step = tf.cast(self.optimizer.iterations, tf.int64)
            draw = global_batch_uniform(tf.shape(users)[0], seed=tf.stack([tf.constant(self.seed, tf.int64), step]))
            users = tf.where(draw < self.user_dropout, tf.zeros_like(users), users)
        queries = self.query_tower(users, features["history_idx"])
        candidates = self.candidate_tower(features["item_idx"])
        return self.task(
            queries,
            candidates,
            candidate_sampling_probability=features["sampling_probability"] if self.logq_correction else None,
            candidate_ids=features["item_idx"],
            compute_metrics=not training,
        )


class TwoTower(TrainedRecommender):
    """Two-tower retrieval (TFRS) with logQ-corrected in-batch softmax, served with top-k.

    Query tower: user id + recent history; candidate tower: item id + title tokens +
    categories; in-batch softmax with logQ correction.

    ``score(u, i) = query(u, history(u)) . candidate(i)`` (``tfrec.layers.towers`` has the
    tower formulas). ``history(u)``: the user's last ``history_length`` training items
    followed by any ``history`` passed to ``recommend``, most recent kept; a user outside
    the training data is the unknown-user id plus that history (the towers were trained
    for this case by user-id dropout), so the model serves new users from their history
    without refitting (with no known history item: the base class's fallback, training
    popularity scored as each item's share of the interactions, count / total in [0, 1]). All candidate embeddings are computed once at the end of training
    into a non-trainable variable; serving runs the query tower and a brute-force top-k
    (the base class excludes seen items and breaks ties).

    Training examples: every training interaction (user u, item i), with the user's
    ``history_length`` items before i (time order) as history. Loss: in-batch sampled
    softmax (``tfrs.tasks.Retrieval``), logits divided by ``temperature``; with
    ``logq_correction`` the log of each candidate's sampling probability (its share of
    training interactions) is subtracted from its logit (Yi et al. 2019), which removes
    the in-batch softmax's bias towards unpopular items. Adam; early stopping on the
    validation slice's ``FactorizedTopK`` top-10 accuracy (at most 10,000 examples), then
    (``refit``, by default under 1M examples) a refit on all training interactions for the
    best number of epochs, or (larger data) the best epoch's weights.

    Parameters:
        embedding_dim: size of every id / token / category embedding.
        output_dim: size of the query and candidate embeddings.
        depth: dense layers per tower (1 = one linear projection; hidden width 2 * output_dim).
        temperature: softmax temperature of the retrieval loss.
        learning_rate: Adam's learning rate.
        epochs, batch_size: training length and examples per step; an epoch is one pass
            over the training examples or 2,000,000 of them, whichever is fewer.
        history_length: how many recent items the query tower pools.
        logq_correction: subtract log sampling probability from in-batch logits.
        user_dropout: share of training examples whose user id is hidden.
        min_token_count: title tokens used by fewer items are dropped.
        validation_fraction, patience: early stopping (0, or under 100 validation
            examples: no validation, all epochs).
        refit: after early stopping, refit on all examples for the best number of epochs;
            None = only under 1,000,000 examples (above, the best weights are kept).
        seed: seeds initialisation, validation slice, data order and user-id dropout.
    """

    registry_name = "two_tower"
    monitor_mode = "max"
    PARAMS: ClassVar[dict[str, Param]] = SPECS["two_tower"].params

    def __init__(
        self,
        embedding_dim: int = 64,
        output_dim: int = 64,
        depth: int = 1,
        temperature: float = 0.1,
        learning_rate: float = 0.003,
        epochs: int = 20,
        batch_size: int = 1024,
        history_length: int = 20,
        logq_correction: bool = True,
        user_dropout: float = 0.1,
        min_token_count: int = 2,
        validation_fraction: float = 0.05,
        patience: int = 3,
        refit: bool | None = None,
        seed: int = 0,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.embedding_dim = embedding_dim
        self.output_dim = output_dim
        self.depth = depth
        self.temperature = temperature
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.history_length = history_length
        self.logq_correction = logq_correction
        self.user_dropout = user_dropout
        self.min_token_count = min_token_count
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.refit = refit
        self.seed = seed
        # Serving state: the query tower's weights (shape-free copies) and all candidate embeddings
        # (a bad depth is reported by check_params, before fitting).
        self.query_weights = {
            key: tf.Variable(tf.zeros([1] * self._rank(key)), shape=tf.TensorShape([None] * self._rank(key)), trainable=False, name=key)
            for key in tower_weight_names(QUERY_EMBEDDINGS, max(1, int(depth)) if isinstance(depth, (int, np.integer)) else 1)
        }
        self.candidate_embeddings = tf.Variable(tf.zeros([1, 1]), shape=tf.TensorShape([None, None]), trainable=False, name="candidate_embeddings")
        # Every user's query embedding from the training items alone (row 0: unknown user).
        self.user_query_embeddings = tf.Variable(tf.zeros([1, 1]), shape=tf.TensorShape([None, None]), trainable=False, name="user_query_embeddings")

    def make_optimizer(self) -> LazyAdam:
        """Adam that updates only the embedding rows in each batch (``LazyAdam``)."""
        return LazyAdam(learning_rate=float(self.learning_rate))

    @staticmethod
    def _rank(key: str) -> int:
        return 1 if key.startswith("bias_") else 2

    @property
    def monitor(self) -> str:  # type: ignore[override]
        return "val_factorized_top_k/top_10_categorical_accuracy"

    @property
    def uses_history(self) -> bool:
        return True

    # ---------------------------------------------------------------- training
    def reset_weights(self) -> None:
        emb, out, depth = int(self.embedding_dim), int(self.output_dim), int(self.depth)
        shapes = {"user_embedding": [self.users.size, emb], "history_embedding": [self.items.size, emb]}
        width = 2 * emb
        for layer in range(depth):
            size = out if layer == depth - 1 else 2 * out
            shapes[f"kernel_{layer}"], shapes[f"bias_{layer}"] = [width, size], [size]
            width = size
        for key, variable in self.query_weights.items():
            variable.assign(tf.zeros(shapes[key]))
        self.candidate_embeddings.assign(tf.zeros([self.items.size, out]))
        self.user_query_embeddings.assign(tf.zeros([self.users.size, out]))

    def training_columns(self, indexed: pd.DataFrame, inputs: FitInputs, holdout: bool = True):
        users = indexed["user_idx"].to_numpy(np.int64)
        items = indexed["item_idx"].to_numpy(np.int64)
        self.item_features_ = item_features(inputs, self.items.ids.numpy()[1:].astype(str), int(self.min_token_count))
        columns = {"user_idx": users, "item_idx": items, "history_idx": previous_items(users, items, int(self.history_length))}
        train_rows, val_rows = self.holdout_rows(len(indexed)) if holdout else (np.arange(len(indexed)), np.zeros(0, np.int64))
        counts = np.bincount(items[train_rows], minlength=self.items.size).astype(np.float64)
        columns["sampling_probability"] = (np.maximum(counts, 1.0) / max(1, len(train_rows)))[items].astype(np.float32)
        train = {key: value[train_rows] for key, value in columns.items()}
        val = {key: value[val_rows] for key, value in columns.items()} if len(val_rows) else None
        return train, val

    def build_network(self, train_columns: dict[str, np.ndarray]) -> TwoTowerNetwork:
        features = self.item_features_
        seed, depth = int(self.seed), int(self.depth)
        query_tower = QueryTower(self.users.size, self.items.size, int(self.embedding_dim), int(self.output_dim), depth, seed, name="query_tower")
        candidate_tower = CandidateTower(
            self.items.size,
            features.n_tokens,
            features.n_categories,
            features.title_tokens,
            features.categories,
            int(self.embedding_dim),
            int(self.output_dim),
            depth,
            seed,
            name="candidate_tower",
        )
        n_items = self.items.size - 1
        ks = tuple(k for k in (10, 50) if k < n_items) or (1,)
        return TwoTowerNetwork(
            query_tower, candidate_tower, self.items.size, float(self.temperature), bool(self.logq_correction), float(self.user_dropout), seed, ks
        )

    def finish_training(self, network: TwoTowerNetwork, inputs: FitInputs) -> None:
        """Copy the query tower's weights; embed every item once with the candidate tower."""
        for key, variable in self.query_weights.items():
            variable.assign(network.query_tower.tower_weights[key])
        all_items = network.candidate_tower(tf.range(self.items.size, dtype=tf.int64))
        self.candidate_embeddings.assign(tf.concat([tf.zeros_like(all_items[:1]), all_items[1:]], axis=0))
        users = tf.range(self.users.size, dtype=tf.int64)
        self.user_query_embeddings.assign(self.tower_query_embeddings(users, tf.zeros([self.users.size, 0], tf.int64)))

    def item_embeddings(self) -> np.ndarray:
        return self.candidate_embeddings.numpy()[1:]

    def embedding_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(users float32[n_users + 1, d], items float32[n_items + 1, d]): a known user's
        scores without history are ``users[u] @ items.T``."""
        return self.user_query_embeddings.numpy(), self.candidate_embeddings.numpy()

    # ----------------------------------------------------------------- scoring
    def query_history(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """int64[B, <= history_length]: training items then given history, the most recent kept."""
        given = tf.ragged.boolean_mask(history_idx, history_idx > 0)
        combined = tf.concat([self.user_items.rows(user_idx), given], axis=1)
        length = tf.cast(combined.row_lengths(), tf.int64)
        start = tf.maximum(length - int(self.history_length), 0)
        keep = tf.ragged.range(start, length)
        recent = tf.gather(combined, keep, batch_dims=1)
        return recent.to_tensor(default_value=0, shape=[None, int(self.history_length)])

    def tower_query_embeddings(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """float32[B, output_dim] from the query tower (``tfrec.layers.towers.query_forward``)."""
        return query_forward(self.query_weights, user_idx, self.query_history(user_idx, history_idx), int(self.depth), serving=True)

    def query_embeddings(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """float32[B, output_dim]: the stored ``user_query_embeddings`` when no row has a
        history (the tower's own output for those users, computed once after training),
        else the query tower on training items plus history."""
        return tf.cond(
            tf.reduce_any(history_idx > 0),
            lambda: self.tower_query_embeddings(user_idx, history_idx),
            lambda: tf.gather(self.user_query_embeddings, user_idx),
        )

    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """float32[B, n_items + 1]: query embedding . candidate embedding of every item."""
        return batch_invariant_matmul(self.query_embeddings(user_idx, history_idx), self.candidate_embeddings, transpose_b=True)

    def score_pairs(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        empty = tf.zeros([tf.shape(user_idx)[0], 0], tf.int64)
        queries = self.query_embeddings(user_idx, empty)
        return tf.reduce_sum(queries * tf.gather(self.candidate_embeddings, item_idx), axis=1)  # row-wise: batch-invariant

    # ------------------------------------------------------------- TensorBoard
    def write_summaries(self, top_n: int = 10) -> None:
        super().write_summaries(top_n)
        tf.summary.histogram("two_tower/candidate_norms", tf.norm(self.candidate_embeddings[1:], axis=1), step=0)
        for key, variable in self.query_weights.items():
            tf.summary.histogram(f"two_tower/query_tower/{key}", variable, step=0)
