"""Matrix factorization trained with Keras ``fit`` on ``tf.data``: explicit or implicit feedback."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import tensorflow_recommenders as tfrs

from tfrec._keras import keras, tf  # first: selects Keras 2 before TensorFlow Recommenders loads
from tfrec.distribute.replicas import global_batch_mean, replicas_in_sync
from tfrec.layers.als import als_interactions, explicit_als_sweep, implicit_als_sweep
from tfrec.layers.fold_in import ridge_fold_in
from tfrec.layers.towers import batch_invariant_matmul
from tfrec.models.fit_inputs import FitInputs
from tfrec.models.params import Param
from tfrec.models.specs import MF_FEEDBACK, MF_SOLVERS, SPECS
from tfrec.models.trained import TrainedRecommender, TrainingLogs, shape_free_variable


class MatrixFactorizationNetwork(TrainingLogs, tfrs.Model):
    """The Keras network ``mf`` fits: user and item embeddings (+ biases), one loss per feedback.

    Inputs per batch: ``user_idx`` int64[B], ``item_idx`` int64[B], ``rating`` float32[B].
    ``n_u``, ``n_i``: training examples of the user / item (at least 1).

    explicit (per example, averaged over the batch; summed over an epoch this is the
    ALS-WR objective with penalties l2 * n^0.5 and bias_l2):

        (r - mu - b_u - b_i - p_u . q_i)^2 + l2 * (|p_u|^2 / n_u^0.5 + |q_i|^2 / n_i^0.5)
            + bias_l2 * (b_u^2 / n_u + b_i^2 / n_i)

    implicit (every interaction is a positive; the squared error on all user-item pairs,
    weighted by w0 = unobserved_weight, through the item Gramian G = sum_j q_j q_j^T):

        (1 - p_u . q_i)^2 + w0 * nbar / n_u * p_u^T G p_u + l2 * (|p_u|^2 + |q_i|^2)

    with nbar the mean number of examples per user; summed over an epoch this is the
    iALS objective sum_obs (1 - p.q)^2 + w0 * nbar * sum_u p_u^T G p_u + l2 * sum n |.|^2
    (Hu, Koren & Volinsky 2008; Rendle et al. 2021), trained by gradient steps.
    Metrics: ``rmse`` (explicit); implicit: ``objective`` (the mean of the loss) and, on
    validation data, ``hit_rate_at_10``: the share of held-out (user, item) pairs whose
    item ranks in the user's top 10 among all items but the user's training items.
    """

    VALIDATION_METRICS = ("hit_rate_at_10",)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int,
        feedback: str,
        l2: float,
        bias_l2: float,
        unobserved_weight: float,
        user_counts: np.ndarray,
        item_counts: np.ndarray,
        global_mean: float,
        seed: int,
        init_std: float = 0.1,
        seen: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        super().__init__(name="mf_network")
        self.feedback = feedback
        self.l2 = float(l2)
        self.bias_l2 = float(bias_l2)
        self.unobserved_weight = float(unobserved_weight)
        self.global_mean = float(global_mean)
        self.user_counts = tf.constant(np.maximum(user_counts, 1), tf.float32)
        self.item_counts = tf.constant(np.maximum(item_counts, 1), tf.float32)
        self.mean_user_count = float(np.sum(user_counts) / max(1, np.count_nonzero(user_counts)))
        normal = keras.initializers.RandomNormal
        self.user_factors = keras.layers.Embedding(n_users, factors, embeddings_initializer=normal(stddev=init_std, seed=seed), name="user_factors")
        self.item_factors = keras.layers.Embedding(n_items, factors, embeddings_initializer=normal(stddev=init_std, seed=seed + 1), name="item_factors")
        if feedback == "explicit":
            self.user_bias = keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias")
            self.item_bias = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")
            self.tracker = keras.metrics.RootMeanSquaredError(name="rmse")
        else:
            self.tracker = keras.metrics.Mean(name="objective")
            self.hit_rate = keras.metrics.Mean(name="hit_rate_at_10")
            # Each user's training items (CSR: row_splits, items), excluded from the ranking.
            splits, values = seen if seen is not None else (np.zeros(n_users + 1, np.int64), np.zeros(0, np.int64))
            self.seen_splits = tf.constant(splits, tf.int64)
            self.seen_items = tf.constant(values, tf.int64)

    def call(self, features: dict[str, tf.Tensor]) -> tf.Tensor:
        """Predicted rating (explicit) or score p_u . q_i (implicit): float32[B]."""
        p = self.user_factors(features["user_idx"])
        q = self.item_factors(features["item_idx"])
        score = tf.reduce_sum(p * q, axis=1)
        if self.feedback == "explicit":
            score += self.global_mean + self.user_bias(features["user_idx"])[:, 0] + self.item_bias(features["item_idx"])[:, 0]
        return score

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        users, items = features["user_idx"], features["item_idx"]
        p = self.user_factors(users)
        q = self.item_factors(items)
        n_u = tf.gather(self.user_counts, users)
        n_i = tf.gather(self.item_counts, items)
        if self.feedback == "explicit":
            b_u = self.user_bias(users)[:, 0]
            b_i = self.item_bias(items)[:, 0]
            prediction = self.global_mean + b_u + b_i + tf.reduce_sum(p * q, axis=1)
            error = features["rating"] - prediction
            penalty = self.l2 * (tf.reduce_sum(p * p, 1) / tf.sqrt(n_u) + tf.reduce_sum(q * q, 1) / tf.sqrt(n_i))
            penalty += self.bias_l2 * (b_u * b_u / n_u + b_i * b_i / n_i)
            self.tracker.update_state(features["rating"], prediction)
            return global_batch_mean(error * error + penalty)
        all_items = self.item_factors.embeddings[1:]
        gram = tf.linalg.matmul(all_items, all_items, transpose_a=True)
        error = 1.0 - tf.reduce_sum(p * q, axis=1)
        unobserved = self.unobserved_weight * self.mean_user_count / n_u * tf.reduce_sum(tf.linalg.matmul(p, gram) * p, axis=1)
        penalty = self.l2 * (tf.reduce_sum(p * p, 1) + tf.reduce_sum(q * q, 1))
        per_example = error * error + unobserved + penalty
        loss = global_batch_mean(per_example)
        if replicas_in_sync() == 1:
            self.tracker.update_state(loss)
        else:  # this replica's mean, weighted by its examples: the synchronised metric is the global mean
            self.tracker.update_state(tf.reduce_mean(per_example), sample_weight=tf.cast(tf.size(per_example), tf.float32))
        if not training:
            self.hit_rate.update_state(self.held_out_hits(users, items, k=10))
        return loss

    def held_out_hits(self, users: tf.Tensor, items: tf.Tensor, k: int) -> tf.Tensor:
        """1.0 where ``items[b]`` is among user b's top k unseen items by p_u . q (float32[B])."""
        scores = tf.linalg.matmul(self.user_factors(users), self.item_factors.embeddings[1:], transpose_b=True)
        positive = tf.gather(scores, items - 1, batch_dims=1)[:, tf.newaxis]
        above = tf.reduce_sum(tf.cast(scores > positive, tf.float32), axis=1)
        table = tf.RaggedTensor.from_row_splits(self.seen_items, self.seen_splits, validate=False)
        seen = tf.gather(table, users)
        seen_scores = tf.gather(scores, seen - 1, batch_dims=1)
        seen_above = tf.reduce_sum(tf.cast(seen_scores > positive, tf.float32), axis=1)
        return tf.cast(above - seen_above < k, tf.float32)


class AlsMatrixFactorizationNetwork(MatrixFactorizationNetwork):
    """The network of ``mf`` with ``solver="als"``: each training step is one sweep of
    alternating least squares with conjugate gradient over all training interactions
    (``tfrec.layers.als``), so one Keras epoch (one step) is one sweep.

    It minimises the same objective as the Adam network, summed over the interactions:

    - implicit (``w0 * nbar`` the Gramian weight, ``G = Q^T Q``)::

        sum_obs (1 - p_u . q_i)^2 + w0 * nbar * sum_u p_u^T G p_u + l2 * (sum_u n_u |p_u|^2 + sum_i n_i |q_i|^2)

      solving, ``cg_steps`` CG steps per row warm-started at the current factors, every
      user's ``(Q_u^T Q_u + w0 * nbar * G + l2 * n_u * I) p_u = Q_u^T 1`` then every item's
      symmetric system (``implicit_als_sweep``);
    - explicit (``mu`` the training mean)::

        sum_obs (r - mu - b_u - b_i - p_u . q_i)^2 + l2 * (sum_u n_u^0.5 |p_u|^2 + sum_i n_i^0.5 |q_i|^2)
            + bias_l2 * (sum_u b_u^2 + sum_i b_i^2)

      solving every ``[p_u, b_u]`` then every ``[q_i, b_i]`` (``explicit_als_sweep``).

    The training ``loss`` is that objective divided by the number of interactions (the
    mean per-example loss the Adam network reports), at the weights the sweep started
    from, as a gradient step reports its batch's loss before the update; ``rmse``
    (explicit) likewise. Validation runs the Adam network's ``compute_loss``.
    """

    def __init__(self, *args, train_columns: dict[str, np.ndarray], cg_steps: int = 3, **kwargs):
        super().__init__(*args, **kwargs)
        n_users, n_items = int(self.user_counts.shape[0]), int(self.item_counts.shape[0])
        self.cg_steps = int(cg_steps)
        self.n_examples = float(len(train_columns["user_idx"]))
        ratings = train_columns["rating"] if self.feedback == "explicit" else None
        self.trainable = False  # solved, not stepped: no gradients, no optimizer slots (checkpoints hold the weights only)
        self.als_data = als_interactions(train_columns["user_idx"], train_columns["item_idx"], n_users, n_items, ratings=ratings)

    def train_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        user_factors, item_factors = self.user_factors.embeddings, self.item_factors.embeddings
        metrics = {metric.name: metric.result() for metric in self.metrics}
        if self.feedback == "explicit":
            user_bias, item_bias = self.user_bias.embeddings, self.item_bias.embeddings
            users, items, new_user_bias, new_item_bias, objective, squared_error = explicit_als_sweep(
                user_factors, item_factors, user_bias[:, 0], item_bias[:, 0], self.global_mean, self.als_data, self.l2, self.bias_l2, self.cg_steps
            )
            user_bias.assign(new_user_bias[:, tf.newaxis])
            item_bias.assign(new_item_bias[:, tf.newaxis])
            metrics["rmse"] = tf.sqrt(squared_error / self.n_examples)
        else:
            gram_weight = self.unobserved_weight * self.mean_user_count
            users, items, objective, _ = implicit_als_sweep(user_factors, item_factors, self.als_data, self.l2, gram_weight, self.cg_steps)
            metrics["objective"] = objective / self.n_examples
        user_factors.assign(users)
        item_factors.assign(items)
        loss = objective / self.n_examples
        metrics["loss"] = loss
        return self.shown_logs(metrics, training=True)


class MatrixFactorization(TrainedRecommender):
    """Biased matrix factorization (explicit ratings) or iALS-style implicit MF, fitted with Keras.

    Scores (``p_u``, ``q_i``: ``factors``-dim user / item vectors):

    - ``feedback="explicit"``: predicted rating ``r(u, i) = mu + b_u + b_i + p_u . q_i``
      (``mu`` the training mean rating); ``score`` returns it clipped to the training
      rating range, ``recommend`` ranks the user's unseen items by it.
    - ``feedback="implicit"``: every interaction is a positive; ``s(u, i) = p_u . q_i``, for
      top-N recommendation; ``score`` returns ``s``.

    Training objectives: see ``MatrixFactorizationNetwork`` (explicit: squared error with
    count-scaled L2 as in ALS-WR; implicit: the iALS loss over all user-item pairs via
    the item Gramian). Solvers:

    - ``solver="als"`` (default): each epoch is one sweep of alternating least squares
      with conjugate gradient (``AlsMatrixFactorizationNetwork``), 8 sweeps, no data held
      out. On ML-100K protocol T NDCG@10 is flat from 4 to 15 sweeps (0.185-0.188 at
      l2 = 0.01; 0.2008 at the default l2 = 0.05), on protocol R RMSE 0.9092-0.9095;
    - ``solver="adam"``: Adam on shuffled mini-batches, up to 40 epochs.

    With a ``validation_fraction`` (default 0.05 with Adam), training stops early on a
    random share of the training interactions (validation RMSE, or the held-out items'
    hit rate at 10 with implicit feedback), then (``refit``) refits on all of them for
    the best number of epochs.

    Users the model has not seen are folded in from their ``history`` (no refit; with no
    known history item they get the base class's fallback: training popularity, scored
    as each item's share of the interactions, count / total in [0, 1]): the
    ridge solution of the training objective for one user, item factors fixed
    (``tfrec.layers.fold_in``):

    - explicit: ``p = (Q_H^T Q_H + l2 * |H|^0.5 * I)^-1 Q_H^T y`` with
      ``y_h = r_max - mu - b_h`` (history items count as top-rated), ``b_u = 0``;
    - implicit: ``p = (Q_H^T Q_H + w0 * nbar * G + l2 * |H| * I)^-1 Q_H^T 1``.

    Presets (``tfrec.models.specs``): protocols T and S (top-N, next item) take
    ``feedback="implicit"``, protocol R the defaults (explicit ratings).
    ``make_model("mf", preset="T")`` (or ``preset=split.protocol``) builds the preset;
    ``tfrec train`` and ``tfrec bench`` apply the split's. The constructor's defaults
    are the explicit-rating model.

    Parameters:
        feedback: "explicit" (ratings) or "implicit" (interactions as positives).
        factors: dimension d of the user and item vectors.
        epochs: maximum number of epochs (early stopping may end sooner); None = 8 sweeps
            (als) / 40 epochs (adam).
        batch_size: examples per gradient step; None = 4096 (explicit) / 2048 (implicit).
        learning_rate: Adam's learning rate.
        l2: factor penalty; None = 1.3 (explicit) / 0.05 (implicit, als) / 0.01 (implicit, adam).
        bias_l2: bias penalty (explicit).
        unobserved_weight: w0, weight of the squared scores of all user-item pairs (implicit).
        solver: "als" (one sweep of alternating least squares with 3 conjugate-gradient
            steps per user and per item each epoch; ``batch_size`` and ``learning_rate``
            are then unused) or "adam" (mini-batch gradient steps).
        validation_fraction: share of the training interactions held out for early
            stopping (0, or fewer than 100 examples: no early stopping, all epochs);
            None = 0 (als) / 0.05 (adam).
        patience: epochs without improvement before stopping.
        refit: after early stopping, refit on all training interactions for the best
            number of epochs (no data held out of the final model); None = only under
            1,000,000 examples (above, the best weights of the search are kept).
        seed: seeds initialisation, validation slice and data order.
    """

    registry_name = "mf"
    FEEDBACK = MF_FEEDBACK
    SOLVERS = MF_SOLVERS
    PARAMS: ClassVar[dict[str, Param]] = SPECS["mf"].params

    def __init__(
        self,
        feedback: str = "explicit",
        factors: int = 64,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float = 0.01,
        l2: float | None = None,
        bias_l2: float = 1.0,
        unobserved_weight: float = 0.02,
        solver: str = "als",
        validation_fraction: float | None = None,
        patience: int = 3,
        refit: bool | None = None,
        seed: int = 0,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.feedback = feedback
        self.factors = factors
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.bias_l2 = bias_l2
        self.unobserved_weight = unobserved_weight
        self.solver = solver
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.refit = refit
        self.seed = seed
        self.user_factors = shape_free_variable(tf.zeros([1, 1]), tf.float32, "user_factors", 2)
        self.item_factors = shape_free_variable(tf.zeros([1, 1]), tf.float32, "item_factors", 2)
        self.user_bias = shape_free_variable(tf.zeros([1]), tf.float32, "user_bias", 1)
        self.item_bias = shape_free_variable(tf.zeros([1]), tf.float32, "item_bias", 1)
        self.global_mean = tf.Variable(0.0, trainable=False, name="global_mean")
        self.fold_in_gram = shape_free_variable(tf.zeros([1, 1]), tf.float32, "fold_in_gram", 2)

    # ------------------------------------------------------------------ params
    @property
    def uses_history(self) -> bool:
        return True

    @property
    def predicts_ratings(self) -> bool:
        return self.feedback == "explicit"

    @property
    def explicit(self) -> bool:
        return self.feedback == "explicit"

    @property
    def monitor(self) -> str:  # type: ignore[override]
        return "val_rmse" if self.explicit else "val_hit_rate_at_10"

    @property
    def monitor_mode(self) -> str:  # type: ignore[override]
        return "min" if self.explicit else "max"

    @property
    def l2_(self) -> float:
        if self.l2 is not None:
            return float(self.l2)
        return 1.3 if self.explicit else (0.05 if self.als else 0.01)

    @property
    def epochs_(self) -> int:
        return int(self.epochs) if self.epochs is not None else (8 if self.als else 40)

    @property
    def validation_fraction_(self) -> float:
        return float(self.validation_fraction) if self.validation_fraction is not None else (0.0 if self.als else 0.05)

    @property
    def batch_size_(self) -> int:
        return int(self.batch_size) if self.batch_size is not None else (4096 if self.explicit else 2048)

    @property
    def als(self) -> bool:
        return self.solver == "als"

    @property
    def data_parallel_training(self) -> bool:
        """Adam trains data-parallel; ALS sweeps are solved by the chief alone from the
        gathered interactions (not data-parallel yet: that needs the item-side normal
        equations summed across workers each sweep)."""
        return not self.als

    @property
    def steps_per_execution(self) -> int:
        """1 with ALS: an epoch is one step (a sweep), and a loop of steps would be traced for nothing."""
        return 1 if self.als else super().steps_per_execution

    # ---------------------------------------------------------------- training
    def reset_weights(self) -> None:
        d = int(self.factors)
        self.user_factors.assign(tf.zeros([self.users.size, d]))
        self.item_factors.assign(tf.zeros([self.items.size, d]))
        self.user_bias.assign(tf.zeros([self.users.size]))
        self.item_bias.assign(tf.zeros([self.items.size]))
        self.global_mean.assign(0.0)
        self.fold_in_gram.assign(tf.zeros([d, d]))

    def training_columns(self, indexed: pd.DataFrame, inputs: FitInputs, holdout: bool = True):
        columns = {
            "user_idx": indexed["user_idx"].to_numpy(np.int64),
            "item_idx": indexed["item_idx"].to_numpy(np.int64),
            "rating": indexed["rating"].to_numpy(np.float32),
        }
        if not holdout:
            return columns, None
        train_rows, val_rows = self.holdout_rows(len(indexed))
        train = {key: value[train_rows] for key, value in columns.items()}
        val = {key: value[val_rows] for key, value in columns.items()} if len(val_rows) else None
        return train, val

    @staticmethod
    def _seen_items(columns: dict[str, np.ndarray], n_users: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(columns["user_idx"], kind="stable")
        counts = np.bincount(columns["user_idx"], minlength=n_users)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), columns["item_idx"][order]

    def build_network(self, train_columns: dict[str, np.ndarray]) -> MatrixFactorizationNetwork:
        n_users, n_items = self.users.size, self.items.size
        network_class, extra = MatrixFactorizationNetwork, {}
        if self.als:
            network_class, extra = AlsMatrixFactorizationNetwork, {"train_columns": train_columns}
        network = network_class(
            n_users=n_users,
            n_items=n_items,
            factors=int(self.factors),
            feedback=self.feedback,
            l2=self.l2_,
            bias_l2=float(self.bias_l2),
            unobserved_weight=float(self.unobserved_weight),
            user_counts=np.bincount(train_columns["user_idx"], minlength=n_users),
            item_counts=np.bincount(train_columns["item_idx"], minlength=n_items),
            global_mean=float(self.rating_range[1].numpy()),
            seed=int(self.seed),
            seen=self._seen_items(train_columns, n_users),
            **extra,
        )
        network({key: tf.constant(value[:1]) for key, value in train_columns.items()})  # create the weights
        if self.als:  # row 0 (the unknown user / item) has no interactions: 0, out of the Gramians
            for table in (network.user_factors.embeddings, network.item_factors.embeddings):
                table.assign(tf.concat([tf.zeros_like(table[:1]), table[1:]], axis=0))
        return network

    def epoch_data(self, train_columns: dict[str, np.ndarray], initial_epoch: int, epochs: int) -> tuple[tf.data.Dataset, int]:
        """ALS: one step per epoch (a sweep over all interactions; the batch is not read)."""
        if not self.als:
            return super().epoch_data(train_columns, initial_epoch, epochs)
        return tf.data.Dataset.from_tensors({key: value[:1] for key, value in train_columns.items()}).repeat(), 1

    def finish_training(self, network: MatrixFactorizationNetwork, inputs: FitInputs) -> None:
        """Copy the learned weights into the serving variables (row 0, the unknown user/item, zeroed)."""

        def without_oov(table: tf.Tensor) -> tf.Tensor:
            return tf.concat([tf.zeros_like(table[:1]), table[1:]], axis=0)

        self.user_factors.assign(without_oov(network.user_factors.embeddings))
        self.item_factors.assign(without_oov(network.item_factors.embeddings))
        if self.explicit:
            self.user_bias.assign(without_oov(network.user_bias.embeddings)[:, 0])
            self.item_bias.assign(without_oov(network.item_bias.embeddings)[:, 0])
            self.global_mean.assign(network.global_mean)
            self.fold_in_gram.assign(tf.zeros([int(self.factors), int(self.factors)]))
        else:
            self.user_bias.assign(tf.zeros([self.users.size]))
            self.item_bias.assign(tf.zeros([self.items.size]))
            self.global_mean.assign(0.0)
            items = self.item_factors[1:]
            gram = tf.linalg.matmul(items, items, transpose_a=True)
            self.fold_in_gram.assign(network.unobserved_weight * network.mean_user_count * gram)

    def item_embeddings(self) -> np.ndarray:
        return self.item_factors.numpy()[1:]

    def embedding_matrices(self) -> tuple[np.ndarray, np.ndarray]:
        """(users float32[n_users + 1, d'], items float32[n_items + 1, d']) with a known
        user's scores ``users[u] @ items.T``; explicit feedback folds the biases in as two
        extra columns: ``[p_u, 1, mu + b_u] . [q_i, b_i, 1]``."""
        users, items = self.user_factors.numpy(), self.item_factors.numpy()
        if self.explicit:
            b_u = self.global_mean.numpy() + self.user_bias.numpy()
            b_i = self.item_bias.numpy()
            users = np.concatenate([users, np.ones_like(b_u)[:, None], b_u[:, None]], axis=1)
            items = np.concatenate([items, b_i[:, None], np.ones_like(b_i)[:, None]], axis=1)
        return users, items

    # ----------------------------------------------------------------- scoring
    def fold_in(self, history_idx: tf.Tensor) -> tf.Tensor:
        """User vectors float32[B, d] of unseen users from their history (class docstring)."""
        if self.explicit:
            targets = self.rating_range[2] - self.global_mean - tf.gather(self.item_bias, history_idx)
            return ridge_fold_in(self.item_factors, history_idx, targets, l2=self.l2_, exponent=0.5)
        targets = tf.ones(tf.shape(history_idx), tf.float32)
        return ridge_fold_in(self.item_factors, history_idx, targets, l2=self.l2_, exponent=1.0, gram=self.fold_in_gram)

    def user_vectors(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """Known users: their trained vectors; unknown users: fold-in of their history."""
        vectors = tf.gather(self.user_factors, user_idx)
        unknown = tf.where(user_idx == 0)
        folded = self.fold_in(tf.gather(history_idx, unknown[:, 0]))
        return tf.tensor_scatter_nd_update(vectors, unknown, folded)

    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """float32[B, n_items + 1]: mu + b_u + b_i + p_u . q_i (implicit: p_u . q_i)."""
        vectors = self.user_vectors(user_idx, history_idx)
        scores = batch_invariant_matmul(vectors, self.item_factors, transpose_b=True)
        if self.explicit:
            scores += (self.global_mean + tf.gather(self.user_bias, user_idx))[:, tf.newaxis] + self.item_bias[tf.newaxis, :]
        return scores

    def score_pairs(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """float32[B]: the predicted rating (explicit; the base clips it) or p_u . q_i."""
        score = tf.reduce_sum(tf.gather(self.user_factors, user_idx) * tf.gather(self.item_factors, item_idx), axis=1)
        if self.explicit:
            score += self.global_mean + tf.gather(self.user_bias, user_idx) + tf.gather(self.item_bias, item_idx)
        return score

    def rating_fallback(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """float32[B]: mu + b_u + b_i, the bias of an unknown user or item being 0."""
        return self.global_mean + tf.gather(self.user_bias, user_idx) + tf.gather(self.item_bias, item_idx)

    # ------------------------------------------------------------- TensorBoard
    def write_summaries(self, top_n: int = 10) -> None:
        super().write_summaries(top_n)
        tf.summary.histogram("mf/user_factor_norms", tf.norm(self.user_factors[1:], axis=1), step=0)
        tf.summary.histogram("mf/item_factor_norms", tf.norm(self.item_factors[1:], axis=1), step=0)
        if self.explicit:
            tf.summary.histogram("mf/user_bias", self.user_bias[1:], step=0)
            tf.summary.histogram("mf/item_bias", self.item_bias[1:], step=0)
            tf.summary.scalar("mf/global_mean", self.global_mean, step=0)
            order = tf.argsort(self.item_bias[1:], direction="DESCENDING", stable=True)[:top_n] + 1
            rows = [
                f"| {rank} | {item.decode()} | {title.decode()} | {bias:.3f} |"
                for rank, (item, title, bias) in enumerate(
                    zip(self.items.ids_of(order).numpy(), tf.gather(self.item_titles, order).numpy(), tf.gather(self.item_bias, order).numpy()),
                    start=1,
                )
            ]
            tf.summary.text("mf/top_item_bias", "| rank | item | title | item bias |\n|---|---|---|---|\n" + "\n".join(rows), step=0)
