"""The base of the models whose weights are learned by Keras ``fit`` (``mf``, ``two_tower``).

``TrainedRecommender.train`` strings the Keras training utilities together
(deterministic, resumable epochs of ``tf.data`` batches from ``tfrec.data.pipelines``; the
checkpoint callback of ``tfrec.models.callbacks``; the TensorBoard projector); it is the
step ``model.fit`` (``Recommender.fit``) takes after the adapt pass.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.pipelines import epoch_batches, ordered_batches, split_validation
from tfrec.models.base import Recommender
from tfrec.models.callbacks import ResumableCheckpoint
from tfrec.models.fit_inputs import FitInputs
from tfrec.models.tensorboard import tensorboard_run_dir, write_projector


class TrainingLogs:
    """Mixin of the ``tfrs.Model`` networks (listed first among the bases): what their
    ``train_step`` / ``test_step`` report (Keras' progress bar, ``History``, TensorBoard)
    holds only figures that say something.

    Left out: ``regularization_loss`` and ``total_loss`` while the network has no
    regularization losses (they are then 0 and ``loss``), and, from training steps, the
    metrics whose names start with one of ``VALIDATION_METRICS``: computed on validation
    data only, they read 0 during training (their ``val_`` figures stay).
    """

    VALIDATION_METRICS: tuple[str, ...] = ()

    def train_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.shown_logs(super().train_step(inputs), training=True)

    def test_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.shown_logs(super().test_step(inputs), training=False)

    def shown_logs(self, logs: dict[str, tf.Tensor], training: bool) -> dict[str, tf.Tensor]:
        """``logs`` without the figures that say nothing (see the class docstring)."""
        hidden = set() if self.losses else {"regularization_loss", "total_loss"}
        return {
            name: value for name, value in logs.items()
            if name not in hidden and not (training and name.startswith(self.VALIDATION_METRICS))
        }


class TrainedRecommender(Recommender):
    """A model whose weights are learned by ``fit`` of a Keras network (``tfrs.Model``).

    ``train`` runs these steps:

    1. ``keras.utils.set_random_seed(seed)``;
    2. ``training_columns(indexed, inputs, holdout=True)``: numpy columns of the training
       examples and of a random validation slice (``validation_fraction`` of them, at
       most ``MAX_VALIDATION``; none when that is under ``MIN_VALIDATION`` examples, as
       on tiny data);
    3. ``build_network(columns)``: the Keras network, built, and ``compile``d with
       ``make_optimizer()`` and ``STEPS_PER_EXECUTION``;
    4. optional ``ResumableCheckpoint.restore`` (``checkpoint_dir``);
    5. ``network.fit`` on ``epoch_data(...)``, by default ``epoch_batches`` (batches of
       ``batch_size``, smaller on tiny data so that an epoch has at least
       ``MIN_STEPS_PER_EPOCH`` steps; ``mf`` with ``solver="als"``: one step) with the
       callbacks given to ``model.fit``, ``EarlyStopping`` on the validation slice (best
       weights kept) and the checkpoint callback;
    6. with ``refit`` (and a validation slice): a fresh network fitted on all training
       examples for the best number of epochs found in step 5, so that no data is held
       out of the final model. ``refit=None``: only under ``REFIT_BELOW`` examples; on
       larger data the slice is a negligible share and step 5's best weights are kept,
       which saves the second fit;
    7. ``finish_training(network, inputs)``: copy the learned weights into this model's
       serving variables (shape-free, so refitting on other data works) and precompute
       what serving needs; the network itself is not part of the exported model;
    8. item embeddings with titles and categories to TensorBoard's projector.

    Subclasses set ``monitor`` (the validation metric early stopping watches) and
    implement ``training_columns``, ``build_network``, ``reset_weights``,
    ``finish_training`` and ``item_embeddings``. Hyperparameters they must have:
    ``epochs``, ``batch_size``, ``learning_rate``, ``validation_fraction``, ``patience``,
    ``refit``, ``seed`` (their ``PARAMS`` take the shared rules from ``tfrec.models.specs.TRAINING_PARAMS``).
    """

    monitor = "val_loss"
    monitor_mode = "min"
    MIN_VALIDATION = 100
    MIN_STEPS_PER_EPOCH = 10
    #: The validation slice holds at most this many examples (early stopping on large data
    #: costs one bounded evaluation per epoch).
    MAX_VALIDATION = 10_000
    #: An epoch (of batched training) is one pass over the examples or this many, whichever
    #: is fewer, so that large data is validated, checkpointed and early-stopped within a pass.
    MAX_EPOCH_EXAMPLES = 2_000_000
    #: ``refit=None`` refits only under this many training examples; above, the validation
    #: slice (at most MAX_VALIDATION examples) is a negligible share and the best weights are kept.
    REFIT_BELOW = 1_000_000
    #: Training steps per call of Keras' compiled train function (``compile``'s
    #: ``steps_per_execution``): a loop of steps in one graph call, so small batches do not
    #: pay Python and callback overhead per step. Batch-level callbacks see every 16th step.
    STEPS_PER_EXECUTION = 16

    def training_columns(self, indexed: pd.DataFrame, inputs: FitInputs, holdout: bool = True) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
        """(training columns, validation columns or None); ``holdout=False``: all rows train."""
        raise NotImplementedError

    def build_network(self, train_columns: dict[str, np.ndarray]) -> keras.Model:
        raise NotImplementedError

    def reset_weights(self) -> None:
        """Give the serving variables their sizes for this data (zeros until training)."""
        raise NotImplementedError

    def finish_training(self, network: keras.Model, inputs: FitInputs) -> None:
        raise NotImplementedError

    def item_embeddings(self) -> np.ndarray:
        """float32[n_items, d] embeddings of the items (index 1..n) for the projector."""
        raise NotImplementedError

    @property
    def trained(self) -> bool:
        return True

    def make_optimizer(self) -> keras.optimizers.Optimizer:
        return keras.optimizers.Adam(learning_rate=float(self.learning_rate))

    @property
    def batch_size_(self) -> int:
        """The batch size in effect."""
        return int(self.batch_size)

    @property
    def steps_per_execution(self) -> int:
        """``compile``'s ``steps_per_execution`` (``STEPS_PER_EXECUTION``; networks whose
        epoch is a single step override it with 1)."""
        return self.STEPS_PER_EXECUTION

    @property
    def epochs_(self) -> int:
        """The maximum number of epochs in effect."""
        return int(self.epochs)

    @property
    def validation_fraction_(self) -> float:
        """The validation share in effect."""
        return float(self.validation_fraction)

    def prepare(self, indexed: pd.DataFrame, inputs: FitInputs) -> None:
        super().prepare(indexed, inputs)
        self.reset_weights()

    def holdout_rows(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(training rows, validation rows) of ``n`` examples (no validation under MIN_VALIDATION)."""
        train_rows, val_rows = split_validation(n, self.validation_fraction_, int(self.seed), self.MAX_VALIDATION)
        if len(val_rows) < self.MIN_VALIDATION:
            return np.arange(n), np.zeros(0, dtype=np.int64)
        return train_rows, val_rows

    def fingerprint(self, train_columns: dict[str, np.ndarray], phase: str) -> dict:
        """What a checkpoint must match to be resumed: model, configuration (but epochs), data."""
        config = {k: v for k, v in self.get_config().items() if k not in ("epochs", "patience")}
        digest = {key: [len(v), float(np.asarray(v, np.float64).sum())] for key, v in sorted(train_columns.items())}
        return {"model": self.registry_name, "phase": phase, "config": config, "users": self.users.size, "items": self.items.size, "columns": digest}

    def epoch_data(self, train_columns: dict[str, np.ndarray], initial_epoch: int, epochs: int) -> tuple[tf.data.Dataset, int]:
        """(the training batches of epochs ``initial_epoch .. epochs - 1``, steps per epoch):
        ``epoch_batches`` of ``batch_size`` (smaller on tiny data, at least
        ``MIN_STEPS_PER_EPOCH`` steps), an epoch being one pass or ``MAX_EPOCH_EXAMPLES``;
        override for networks that do not step on batches."""
        n_examples = len(next(iter(train_columns.values())))
        batch_size = min(self.batch_size_, max(1, math.ceil(n_examples / self.MIN_STEPS_PER_EPOCH)))
        steps = min(math.ceil(n_examples / batch_size), math.ceil(self.MAX_EPOCH_EXAMPLES / batch_size))
        return epoch_batches(train_columns, batch_size, int(self.seed), initial_epoch, epochs, steps), steps

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
        network.compile(optimizer=self.make_optimizer(), steps_per_execution=self.steps_per_execution)
        early_stopping = None
        if val_columns is not None:
            early_stopping = keras.callbacks.EarlyStopping(
                monitor=self.monitor, mode=self.monitor_mode, patience=int(self.patience), restore_best_weights=True
            )
        checkpoint = None
        if checkpoint_dir is not None:
            checkpoint = ResumableCheckpoint(Path(checkpoint_dir) / phase, early_stopping, self.fingerprint(train_columns, phase))
        initial_epoch = checkpoint.restore(network) if checkpoint else 0
        batches, steps = self.epoch_data(train_columns, initial_epoch, epochs)
        history: dict[str, list[float]] = dict(checkpoint.history) if checkpoint else {}
        if initial_epoch < epochs and not (checkpoint and checkpoint.stopped_early):
            result = network.fit(
                batches,
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

    def train(
        self, indexed: pd.DataFrame, inputs: FitInputs, *, callbacks: list, verbose: int, epochs: int | None = None, checkpoint_dir: str | Path | None = None
    ) -> dict:
        """Learn the weights with ``model.fit`` (see the class docstring for the steps).

        ``checkpoint_dir``: save a checkpoint after every epoch there (one subfolder per
        phase, ``search`` and ``refit``) and, when it already holds one of the same model
        and data, continue from it. Returns the Keras history of the search phase (per
        epoch losses and metrics), plus ``best_epoch`` and the ``refit_*`` losses.
        """
        keras.utils.set_random_seed(int(self.seed))
        train_columns, val_columns = self.training_columns(indexed, inputs, holdout=True)
        max_epochs = self.epochs_ if epochs is None else int(epochs)
        if verbose:
            stopping = f", early stopping on {len(next(iter(val_columns.values()))):,} held-out examples" if val_columns is not None else ""
            print(f"{self.registry_name}: training the network, {max_epochs} epochs at most{stopping}")
        network, history, best = self.fit_network(train_columns, val_columns, max_epochs, callbacks, verbose, checkpoint_dir, "search")
        if val_columns is not None:
            history["best_epoch"] = [float(best)]
            if self.refit if self.refit is not None else len(indexed) < self.REFIT_BELOW:
                keras.utils.set_random_seed(int(self.seed))
                all_columns, _ = self.training_columns(indexed, inputs, holdout=False)
                run_dir = tensorboard_run_dir(callbacks)
                refit_callbacks = [keras.callbacks.TensorBoard(log_dir=str(run_dir / "refit"))] if run_dir else []
                if verbose:
                    print(f"{self.registry_name}: refit on all training data for the best epoch count ({best} epoch{'s' if best != 1 else ''})")
                network, refit_history, _ = self.fit_network(all_columns, None, best, refit_callbacks, verbose, checkpoint_dir, "refit")
                history.update({f"refit_{key}": value for key, value in refit_history.items()})
        self.finish_training(network, inputs)
        run_dir = tensorboard_run_dir(callbacks)
        if run_dir is not None:
            titles = [t.decode() for t in self.item_titles.numpy()[1:]]
            write_projector(run_dir, self.item_embeddings(), titles, self.item_categories(inputs))
        return history

    def item_categories(self, inputs: FitInputs) -> list[str]:
        """The catalogue's ``category`` of the items (index 1..n), "" where it has none (projector labels)."""
        ids = [i.decode("utf-8") for i in self.items.ids.numpy()[1:]]
        categories = inputs.items.drop_duplicates("item_id").set_index("item_id")["category"]
        return categories.reindex(ids).fillna("").astype(str).tolist()


def shape_free_variable(initial: Any, dtype: tf.DType, name: str, rank: int) -> tf.Variable:
    """A non-trainable variable of any shape of the given rank (refitting on other data resizes it)."""
    return tf.Variable(initial, shape=tf.TensorShape([None] * rank), dtype=dtype, trainable=False, name=name)
