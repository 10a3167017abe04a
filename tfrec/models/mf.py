"""Matrix factorization trained with Keras ``fit`` on ``tf.data``: explicit or implicit feedback.

The first half of this module holds the Keras training utilities that both trained
models (``mf`` and ``two_tower``) use: deterministic, resumable epochs of ``tf.data``
batches, a checkpoint callback that continues an interrupted fit exactly where it
stopped, and the TensorBoard embedding projector. ``TrainedRecommender`` strings them
together into ``train()``, the step ``tfrec.training.fit`` calls after the adapt pass.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf  # first: selects Keras 2 before TensorFlow Recommenders loads

import tensorflow_recommenders as tfrs  # noqa: E402  (after tfrec._keras)
from tensorboard.plugins import projector  # noqa: E402

from tfrec.data.dataset import Dataset
from tfrec.layers.fold_in import ridge_fold_in
from tfrec.layers.towers import batch_invariant_matmul
from tfrec.models.base import Recommender

# --------------------------------------------------------------------------------------
# Keras training utilities shared by the trained models
# --------------------------------------------------------------------------------------


def tensorboard_run_dir(callbacks: list) -> Path | None:
    """The run folder of the TensorBoard callback among ``callbacks`` (None without one)."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.TensorBoard):
            return Path(callback.log_dir)
    return None


def epoch_batches(columns: dict[str, np.ndarray], batch_size: int, seed: int, first_epoch: int, epochs: int) -> tf.data.Dataset:
    """Shuffled batches for epochs ``first_epoch .. epochs - 1``, one dataset for all of them.

    Epoch ``e`` visits the rows in the order ``stateless_shuffle(range(n), seed=[seed, e])``,
    so the order of every epoch is a function of (seed, epoch) alone: a fit resumed at
    epoch ``e`` sees exactly the batches an uninterrupted fit would have seen. Each
    element is a dict of the columns gathered for one batch (the last batch of an epoch
    may be smaller); pass ``steps_per_epoch=ceil(n / batch_size)`` to ``fit``.
    """
    n = len(next(iter(columns.values())))
    tensors = {key: tf.constant(value) for key, value in columns.items()}

    def epoch_order(epoch: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    batches = tf.data.Dataset.range(first_epoch, max(first_epoch, epochs)).flat_map(epoch_order)
    return batches.map(lambda index: {key: tf.gather(t, index) for key, t in tensors.items()}).prefetch(tf.data.AUTOTUNE)


def ordered_batches(columns: dict[str, np.ndarray], batch_size: int) -> tf.data.Dataset:
    """Batches in row order (validation data), cached after the first pass."""
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size).cache().prefetch(tf.data.AUTOTUNE)


def split_validation(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows): a random ``round(n * fraction)`` rows drawn from ``seed``."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * fraction)) if fraction > 0 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class ResumableCheckpoint(keras.callbacks.Callback):
    """Checkpoint after every epoch; ``restore`` continues an interrupted fit exactly.

    What is saved in ``directory``: the network's weights and the optimizer's state
    (``tf.train.CheckpointManager``), and ``state.json`` with the number of finished
    epochs, the history so far, the early-stopping state (its best weights in
    ``best_weights.npz``) and a fingerprint of the model and data. Together with
    ``epoch_batches`` (the data order of an epoch depends only on the seed and the
    epoch) a resumed fit ends with the same weights as an uninterrupted one.

    Usage: build and compile the network, ``initial_epoch = checkpoint.restore(net)``,
    then ``net.fit(..., initial_epoch=initial_epoch, callbacks=[..., early_stopping,
    checkpoint])`` (this callback after the ``EarlyStopping`` it restores).
    """

    def __init__(self, directory: str | Path, early_stopping: keras.callbacks.EarlyStopping | None = None, fingerprint: dict | None = None):
        super().__init__()
        self.directory = Path(directory)
        self.early_stopping = early_stopping
        self.fingerprint = json.loads(json.dumps(fingerprint or {}, default=str))
        self.history: dict[str, list[float]] = {}
        self.stopped_early = False
        self._state: dict | None = None
        self._manager: tf.train.CheckpointManager | None = None
        self._checkpoint: tf.train.Checkpoint | None = None

    @property
    def _state_file(self) -> Path:
        return self.directory / "state.json"

    def restore(self, net: keras.Model) -> int:
        """Load the last checkpoint into ``net`` (built and compiled); return the epochs done."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._checkpoint = tf.train.Checkpoint(model=net, optimizer=net.optimizer)
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(self.directory), max_to_keep=2)
        if not self._state_file.is_file():
            return 0
        state = json.loads(self._state_file.read_text(encoding="utf-8"))
        if state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"checkpoint_dir {self.directory} holds a checkpoint of another model, configuration or data "
                f"({state.get('fingerprint')}); use an empty folder to start a new fit"
            )
        net.optimizer.build(net.trainable_variables)
        self._checkpoint.restore(state["checkpoint"]).assert_existing_objects_matched()
        self._state = state
        self.history = {key: list(values) for key, values in state["history"].items()}
        self.stopped_early = bool(state.get("stopped_early", False))
        self._restore_early_stopping()
        return int(state["epoch"])

    def _restore_early_stopping(self) -> None:
        es, state = self.early_stopping, self._state
        if es is None or state is None or state.get("early_stopping") is None:
            return
        saved = state["early_stopping"]
        es.wait, es.best, es.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
        weights_file = self.directory / "best_weights.npz"
        if weights_file.is_file():
            with np.load(weights_file) as stored:
                es.best_weights = [stored[f"w{i}"] for i in range(len(stored.files))]

    def on_train_begin(self, logs=None) -> None:
        self._restore_early_stopping()  # EarlyStopping.on_train_begin has just reset itself

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        path = self._manager.save(checkpoint_number=epoch + 1)
        es = self.early_stopping
        es_state = None
        if es is not None:
            self.stopped_early = bool(self.model.stop_training)
            es_state = {"wait": int(es.wait), "best": float(es.best), "best_epoch": int(es.best_epoch)}
            if es.best_weights is not None and es.best_epoch == epoch:
                np.savez(self.directory / "best_weights.npz", **{f"w{i}": w for i, w in enumerate(es.best_weights)})
        self._state = {
            "epoch": epoch + 1,
            "checkpoint": path,
            "history": self.history,
            "stopped_early": self.stopped_early,
            "early_stopping": es_state,
            "fingerprint": self.fingerprint,
        }
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._state, indent=1), encoding="utf-8")
        os.replace(temporary, self._state_file)


def write_projector(run_dir: str | Path, embeddings: np.ndarray, labels: list[str], tensor_name: str = "item_embeddings") -> None:
    """Item embeddings for TensorBoard's projector, labelled (``metadata.tsv``, one label per row).

    Writes ``metadata.tsv``, a checkpoint holding ``embeddings`` [n, d] as the variable
    ``tensor_name`` and ``projector_config.pbtxt`` into ``run_dir``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean = [" ".join(str(label).split()) or "(untitled)" for label in labels]
    (run_dir / "metadata.tsv").write_text("".join(f"{label}\n" for label in clean), encoding="utf-8")
    variable = tf.Variable(np.asarray(embeddings, np.float32), trainable=False, name=tensor_name)
    tf.train.Checkpoint(**{tensor_name: variable}).save(str(run_dir / "embeddings.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = f"{tensor_name}/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = "metadata.tsv"
    projector.visualize_embeddings(str(run_dir), config)


class TrainedRecommender(Recommender):
    """A model whose weights are learned by ``fit`` of a Keras network (``tfrs.Model``).

    ``train`` runs these steps, which ``scripts/train_*.py`` spell out one by one:

    1. ``keras.utils.set_random_seed(seed)``;
    2. ``training_columns(indexed, data, holdout=True)``: numpy columns of the training
       examples and of a random validation slice (``validation_fraction`` of them; none
       when that is under ``MIN_VALIDATION`` examples, as on tiny data);
    3. ``build_network(columns)``: the Keras network, built, and ``compile``d with
       ``make_optimizer()``;
    4. optional ``ResumableCheckpoint.restore`` (``checkpoint_dir``);
    5. ``network.fit`` on ``epoch_batches`` (batches of ``batch_size``, smaller on tiny
       data so that an epoch has at least ``MIN_STEPS_PER_EPOCH`` steps) with the
       TensorBoard callback ``tfrec.fit``
       passes, ``EarlyStopping`` on the validation slice (best weights kept) and the
       checkpoint callback;
    6. with ``refit`` (and a validation slice): a fresh network fitted on all training
       examples for the best number of epochs found in step 5, so that no data is held
       out of the final model;
    7. ``finish_training(network, data)``: copy the learned weights into this model's
       serving variables (shape-free, so refitting on other data works) and precompute
       what serving needs; the network itself is not part of the exported model;
    8. item embeddings with titles to TensorBoard's projector.

    Subclasses set ``monitor`` (the validation metric early stopping watches) and
    implement ``training_columns``, ``build_network``, ``reset_weights``,
    ``finish_training`` and ``item_embeddings``. Hyperparameters they must have:
    ``epochs``, ``batch_size``, ``learning_rate``, ``validation_fraction``, ``patience``,
    ``refit``, ``seed``.
    """

    trained = True
    monitor = "val_loss"
    monitor_mode = "min"
    MIN_VALIDATION = 100
    MIN_STEPS_PER_EPOCH = 10

    def training_columns(self, indexed: pd.DataFrame, data: Dataset, holdout: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """(training columns, validation columns or None); ``holdout=False``: all rows train."""
        raise NotImplementedError

    def build_network(self, train_columns: dict[str, np.ndarray]) -> keras.Model:
        raise NotImplementedError

    def reset_weights(self) -> None:
        """Give the serving variables their sizes for this data (zeros until training)."""
        raise NotImplementedError

    def finish_training(self, network: keras.Model, data: Dataset) -> None:
        raise NotImplementedError

    def item_embeddings(self) -> np.ndarray:
        """float32[n_items, d] embeddings of the items (index 1..n) for the projector."""
        raise NotImplementedError

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        return keras.optimizers.Adam(learning_rate=float(self.learning_rate))

    @property
    def batch_size_(self) -> int:
        """The batch size in effect."""
        return int(self.batch_size)

    def check_params(self) -> None:
        """ValueError for a bad hyperparameter, naming it and the allowed values."""
        for key in ("epochs", "patience"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{self.registry_name}: {key} must be a positive integer, got {value!r}")
        if not 0.0 <= float(self.validation_fraction) < 0.5:
            raise ValueError(f"{self.registry_name}: validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise ValueError(f"{self.registry_name}: seed must be an integer, got {self.seed!r}")
        if not isinstance(self.refit, (bool, np.bool_)):
            raise ValueError(f"{self.registry_name}: refit must be True or False, got {self.refit!r}")

    def prepare(self, data: Dataset) -> pd.DataFrame:
        self.check_params()
        indexed = super().prepare(data)
        self.reset_weights()
        return indexed

    def holdout_rows(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, validation rows) of ``n`` examples (no validation under MIN_VALIDATION)."""
        train_rows, val_rows = split_validation(n, float(self.validation_fraction), int(self.seed))
        if len(val_rows) < self.MIN_VALIDATION:
            return np.arange(n), np.zeros(0, dtype=np.int64)
        return train_rows, val_rows

    def fingerprint(self, train_columns: dict[str, np.ndarray], phase: str) -> dict:
        """What a checkpoint must match to be resumed: model, configuration (but epochs), data."""
        config = {k: v for k, v in self.get_config().items() if k not in ("epochs", "patience")}
        digest = {key: [int(len(v)), float(np.asarray(v, np.float64).sum())] for key, v in sorted(train_columns.items())}
        return {"model": self.registry_name, "phase": phase, "config": config, "users": self.users.size, "items": self.items.size, "columns": digest}

    def fit_network(
        self,
        train_columns: dict[str, np.ndarray],
        val_columns: dict[str, np.ndarray] | None,
        epochs: int,
        callbacks: list,
        verbose: int,
        checkpoint_dir: str | Path | None,
        phase: str,
    ) -> tuple[keras.Model, dict, int]:
        """Steps 3-5: build, compile, (restore,) fit. Returns (network, history, best epoch count)."""
        network = self.build_network(train_columns)
        network.compile(optimizer=self.make_optimizer())
        early_stopping = None
        if val_columns is not None:
            early_stopping = keras.callbacks.EarlyStopping(
                monitor=self.monitor, mode=self.monitor_mode, patience=int(self.patience), restore_best_weights=True
            )
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = ResumableCheckpoint(Path(checkpoint_dir) / phase, early_stopping, self.fingerprint(train_columns, phase))
        initial_epoch = checkpoint.restore(network) if checkpoint else 0
        n_examples = len(next(iter(train_columns.values())))
        batch_size = min(self.batch_size_, max(1, math.ceil(n_examples / self.MIN_STEPS_PER_EPOCH)))
        steps = math.ceil(n_examples / batch_size)
        history: dict[str, list[float]] = dict(checkpoint.history) if checkpoint else {}
        if initial_epoch < epochs and not (checkpoint and checkpoint.stopped_early):
            result = network.fit(
                epoch_batches(train_columns, batch_size, int(self.seed), initial_epoch, epochs),
                validation_data=ordered_batches(val_columns, 8192) if val_columns is not None else None,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps,
                callbacks=[*callbacks, *(c for c in (early_stopping, checkpoint) if c is not None)],
                verbose=verbose,
            )
            history = dict(checkpoint.history) if checkpoint else {k: [float(x) for x in v] for k, v in result.history.items()}
        elif early_stopping is not None and early_stopping.best_weights is not None:
            network.set_weights(early_stopping.best_weights)  # a finished fit: its best weights
        best = epochs if early_stopping is None or early_stopping.best_weights is None else early_stopping.best_epoch + 1
        return network, history, int(best)

    def train(self, indexed: pd.DataFrame, data: Dataset, *, callbacks: list, verbose: int, checkpoint_dir: str | Path | None = None, **kwargs: Any) -> dict:
        """Learn the weights with ``model.fit`` (see the class docstring for the steps).

        ``checkpoint_dir``: save a checkpoint after every epoch there (one subfolder per
        phase, ``search`` and ``refit``) and, when it already holds one of the same model
        and data, continue from it. Returns the Keras history of the search phase (per
        epoch losses and metrics), plus ``best_epoch`` and the ``refit_*`` losses.
        """
        if kwargs:
            raise TypeError(f"{self.registry_name}: unknown training options {sorted(kwargs)}; the options are: checkpoint_dir")
        keras.utils.set_random_seed(int(self.seed))
        train_columns, val_columns = self.training_columns(indexed, data, holdout=True)
        network, history, best = self.fit_network(train_columns, val_columns, int(self.epochs), callbacks, verbose, checkpoint_dir, "search")
        if val_columns is not None:
            history["best_epoch"] = [float(best)]
            if self.refit:
                keras.utils.set_random_seed(int(self.seed))
                all_columns, _ = self.training_columns(indexed, data, holdout=False)
                run_dir = tensorboard_run_dir(callbacks)
                refit_callbacks = [keras.callbacks.TensorBoard(log_dir=str(run_dir / "refit"))] if run_dir else []
                network, refit_history, _ = self.fit_network(all_columns, None, best, refit_callbacks, verbose, checkpoint_dir, "refit")
                history.update({f"refit_{key}": value for key, value in refit_history.items()})
        self.finish_training(network, data)
        run_dir = tensorboard_run_dir(callbacks)
        if run_dir is not None:
            titles = [t.decode() for t in self.item_titles.numpy()[1:]]
            write_projector(run_dir, self.item_embeddings(), titles)
        return history


def _shape_free(initial: Any, dtype: tf.DType, name: str, rank: int) -> tf.Variable:
    return tf.Variable(initial, shape=tf.TensorShape([None] * rank), dtype=dtype, trainable=False, name=name)


# --------------------------------------------------------------------------------------
# Matrix factorization
# --------------------------------------------------------------------------------------


class MatrixFactorizationNetwork(tfrs.Model):
    """The Keras network ``mf`` fits: user and item embeddings (+ biases), one loss per mode.

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

    def __init__(
        self,
        n_users: int,
        n_items: int,
        factors: int,
        mode: str,
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
        self.mode = mode
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
        if mode == "explicit":
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
        if self.mode == "explicit":
            score += self.global_mean + self.user_bias(features["user_idx"])[:, 0] + self.item_bias(features["item_idx"])[:, 0]
        return score

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        users, items = features["user_idx"], features["item_idx"]
        p = self.user_factors(users)
        q = self.item_factors(items)
        n_u = tf.gather(self.user_counts, users)
        n_i = tf.gather(self.item_counts, items)
        if self.mode == "explicit":
            b_u = self.user_bias(users)[:, 0]
            b_i = self.item_bias(items)[:, 0]
            prediction = self.global_mean + b_u + b_i + tf.reduce_sum(p * q, axis=1)
            error = features["rating"] - prediction
            penalty = self.l2 * (tf.reduce_sum(p * p, 1) / tf.sqrt(n_u) + tf.reduce_sum(q * q, 1) / tf.sqrt(n_i))
            penalty += self.bias_l2 * (b_u * b_u / n_u + b_i * b_i / n_i)
            self.tracker.update_state(features["rating"], prediction)
            return tf.reduce_mean(error * error + penalty)
        all_items = self.item_factors.embeddings[1:]
        gram = tf.linalg.matmul(all_items, all_items, transpose_a=True)
        error = 1.0 - tf.reduce_sum(p * q, axis=1)
        unobserved = self.unobserved_weight * self.mean_user_count / n_u * tf.reduce_sum(tf.linalg.matmul(p, gram) * p, axis=1)
        penalty = self.l2 * (tf.reduce_sum(p * p, 1) + tf.reduce_sum(q * q, 1))
        loss = tf.reduce_mean(error * error + unobserved + penalty)
        self.tracker.update_state(loss)
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


class MatrixFactorization(TrainedRecommender):
    """Biased matrix factorization (explicit ratings) or iALS-style implicit MF, fitted with Keras.

    Scores (``p_u``, ``q_i``: ``factors``-dim user / item vectors):

    - ``mode="explicit"``: predicted rating ``r(u, i) = mu + b_u + b_i + p_u . q_i``
      (``mu`` the training mean rating); ``score`` returns it clipped to the training
      rating range, ``recommend`` ranks the user's unseen items by it.
    - ``mode="implicit"``: every interaction is a positive; ``s(u, i) = p_u . q_i``, for
      top-N recommendation; ``score`` returns ``s``.

    Training objectives: see ``MatrixFactorizationNetwork`` (explicit: squared error with
    count-scaled L2 as in ALS-WR; implicit: the iALS loss over all user-item pairs via
    the item Gramian). Adam on shuffled mini-batches; early stopping on a random
    ``validation_fraction`` of the training interactions (validation RMSE, or the
    validation objective in implicit mode), then (``refit``) a refit on all of them for
    the best number of epochs.

    Users the model has not seen are folded in from their ``history`` (no refit): the
    ridge solution of the training objective for one user, item factors fixed
    (``tfrec.layers.fold_in``):

    - explicit: ``p = (Q_H^T Q_H + l2 * |H|^0.5 * I)^-1 Q_H^T y`` with
      ``y_h = r_max - mu - b_h`` (history items count as top-rated), ``b_u = 0``;
    - implicit: ``p = (Q_H^T Q_H + w0 * nbar * G + l2 * |H| * I)^-1 Q_H^T 1``.

    Parameters:
        mode: "explicit" (ratings) or "implicit" (interactions as positives).
        factors: dimension d of the user and item vectors.
        epochs: maximum number of epochs (early stopping may end sooner).
        batch_size: examples per gradient step; None = 4096 (explicit) / 2048 (implicit).
        learning_rate: Adam's learning rate.
        l2: factor penalty; None = 1.3 (explicit) / 0.01 (implicit).
        bias_l2: bias penalty (explicit).
        unobserved_weight: w0, weight of the squared scores of all user-item pairs (implicit).
        validation_fraction: share of the training interactions held out for early
            stopping (0, or fewer than 100 examples: no early stopping, all epochs).
        patience: epochs without improvement before stopping.
        refit: after early stopping, refit on all training interactions for the best
            number of epochs (no data held out of the final model).
        seed: seeds initialisation, validation slice and data order.
    """

    registry_name = "mf"
    uses_history = True
    MODES = ("explicit", "implicit")

    def __init__(
        self,
        mode: str = "explicit",
        factors: int = 64,
        epochs: int = 40,
        batch_size: int | None = None,
        learning_rate: float = 0.01,
        l2: float | None = None,
        bias_l2: float = 1.0,
        unobserved_weight: float = 0.02,
        validation_fraction: float = 0.05,
        patience: int = 3,
        refit: bool = True,
        seed: int = 0,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.mode = mode
        self.factors = factors
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.l2 = l2
        self.bias_l2 = bias_l2
        self.unobserved_weight = unobserved_weight
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.refit = refit
        self.seed = seed
        self.user_factors = _shape_free(tf.zeros([1, 1]), tf.float32, "user_factors", 2)
        self.item_factors = _shape_free(tf.zeros([1, 1]), tf.float32, "item_factors", 2)
        self.user_bias = _shape_free(tf.zeros([1]), tf.float32, "user_bias", 1)
        self.item_bias = _shape_free(tf.zeros([1]), tf.float32, "item_bias", 1)
        self.global_mean = tf.Variable(0.0, trainable=False, name="global_mean")
        self.fold_in_gram = _shape_free(tf.zeros([1, 1]), tf.float32, "fold_in_gram", 2)

    # ------------------------------------------------------------------ params
    @property
    def predicts_ratings(self) -> bool:  # type: ignore[override]
        return self.mode == "explicit"

    @property
    def explicit(self) -> bool:
        return self.mode == "explicit"

    @property
    def monitor(self) -> str:  # type: ignore[override]
        return "val_rmse" if self.explicit else "val_hit_rate_at_10"

    @property
    def monitor_mode(self) -> str:  # type: ignore[override]
        return "min" if self.explicit else "max"

    @property
    def l2_(self) -> float:
        return float(self.l2) if self.l2 is not None else (1.3 if self.explicit else 0.01)

    @property
    def batch_size_(self) -> int:
        return int(self.batch_size) if self.batch_size is not None else (4096 if self.explicit else 2048)

    def check_params(self) -> None:
        if self.mode not in self.MODES:
            raise ValueError(f"mf: mode must be one of {', '.join(map(repr, self.MODES))}, got {self.mode!r}")
        if isinstance(self.factors, bool) or not isinstance(self.factors, (int, np.integer)) or self.factors < 1:
            raise ValueError(f"mf: factors must be a positive integer, got {self.factors!r}")
        if self.l2 is not None and not float(self.l2) > 0:
            raise ValueError(f"mf: l2 must be positive (or None for the mode's default), got {self.l2!r}")
        if not float(self.learning_rate) > 0:
            raise ValueError(f"mf: learning_rate must be positive, got {self.learning_rate!r}")
        if self.batch_size is not None and (isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1):
            raise ValueError(f"mf: batch_size must be a positive integer (or None for the mode's default), got {self.batch_size!r}")
        for key in ("bias_l2", "unobserved_weight"):
            if not float(getattr(self, key)) >= 0:
                raise ValueError(f"mf: {key} must be >= 0, got {getattr(self, key)!r}")
        super().check_params()

    # ---------------------------------------------------------------- training
    def reset_weights(self) -> None:
        d = int(self.factors)
        self.user_factors.assign(tf.zeros([self.users.size, d]))
        self.item_factors.assign(tf.zeros([self.items.size, d]))
        self.user_bias.assign(tf.zeros([self.users.size]))
        self.item_bias.assign(tf.zeros([self.items.size]))
        self.global_mean.assign(0.0)
        self.fold_in_gram.assign(tf.zeros([d, d]))

    def training_columns(self, indexed: pd.DataFrame, data: Dataset, holdout: bool = True):
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
        network = MatrixFactorizationNetwork(
            n_users=n_users,
            n_items=n_items,
            factors=int(self.factors),
            mode=self.mode,
            l2=self.l2_,
            bias_l2=float(self.bias_l2),
            unobserved_weight=float(self.unobserved_weight),
            user_counts=np.bincount(train_columns["user_idx"], minlength=n_users),
            item_counts=np.bincount(train_columns["item_idx"], minlength=n_items),
            global_mean=float(self.rating_range[1].numpy()),
            seed=int(self.seed),
            seen=self._seen_items(train_columns, n_users),
        )
        network({key: tf.constant(value[:1]) for key, value in train_columns.items()})  # create the weights
        return network

    def finish_training(self, network: MatrixFactorizationNetwork, data: Dataset) -> None:
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
