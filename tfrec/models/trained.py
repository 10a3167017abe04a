"""The base of the models whose weights are learned by Keras ``fit`` (``mf``, ``two_tower``).

``TrainedRecommender.train`` strings the Keras training utilities together
(deterministic, resumable epochs of ``tf.data`` batches from ``tfrec.data.pipelines``; the
checkpoint callback of ``tfrec.models.callbacks``; the TensorBoard projector); it is the
step ``model.fit`` (``Recommender.fit``) takes after the adapt pass.
"""
from __future__ import annotations

import contextlib
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.pipelines import epoch_batches, ordered_batches, split_validation
from tfrec.distribute.cluster import worker_place
from tfrec.distribute.replicas import replicas_in_sync
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
        return self.shown_logs(synchronised_losses(super().train_step(inputs)), training=True)

    def test_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.shown_logs(synchronised_losses(super().test_step(inputs)), training=False)

    def shown_logs(self, logs: dict[str, tf.Tensor], training: bool) -> dict[str, tf.Tensor]:
        """``logs`` without the figures that say nothing (see the class docstring)."""
        hidden = set() if self.losses else {"regularization_loss", "total_loss"}
        return {
            name: value for name, value in logs.items()
            if name not in hidden and not (training and name.startswith(self.VALIDATION_METRICS))
        }


def synchronised_losses(logs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """``logs`` of one replica's step with the losses of the whole global batch.

    Under a strategy with N > 1 replicas, tf-keras sums every log over the replicas
    (``reduce_per_replica``), metrics included, which are already synchronised: TFRS
    metrics then read N x their value. The networks therefore set
    ``distribute_reduction_method = "first"`` (replica 0's logs), and each replica's
    ``loss`` (its share of the global batch's loss: per-example losses divided by the
    global batch, or in-batch sums) is summed over the replicas here, so the logged loss
    is that of one process at the same global batch. A regularization loss is the same on
    every replica: its mean is logged (tfrec's networks have none; one would also need
    dividing by N before TFRS adds it to each replica's loss, whose gradients are summed).
    """
    if replicas_in_sync() == 1:
        return logs
    context = tf.distribute.get_replica_context()
    logs = dict(logs)
    if "loss" in logs:
        logs["loss"] = context.all_reduce(tf.distribute.ReduceOp.SUM, logs["loss"])
    if "regularization_loss" in logs:
        logs["regularization_loss"] = context.all_reduce(tf.distribute.ReduceOp.MEAN, logs["regularization_loss"])
        if "total_loss" in logs:
            logs["total_loss"] = logs["loss"] + logs["regularization_loss"]
    return logs


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

    @property
    def data_parallel_training(self) -> bool:
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
        strategy=None,
    ) -> tuple[keras.Model, dict, int]:
        """Steps 3-5: build, compile, (restore,) fit. Returns (network, history, best epoch count).

        ``strategy``: the network is built and compiled in its ``scope()``; with more than
        one replica, its logs are replica 0's (``synchronised_losses``), and each global
        batch is split among the replicas (``AutoShardPolicy.DATA``: every worker builds
        the same batches and takes its part of each), so a step's summed gradient is that
        of one process on the same global batch."""
        replicated = strategy is not None and strategy.num_replicas_in_sync > 1
        # Replicated, one step per call: the optimizer's all-reduce of sparse (embedding)
        # gradients inside Keras' multi-step loop mismatches the replicas' collectives
        # ("Shape mismatch in the collective instance", checked on TF 2.21).
        steps_per_execution = 1 if replicated else self.steps_per_execution
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            network = self.build_network(train_columns)
            network.compile(optimizer=self.make_optimizer(), steps_per_execution=steps_per_execution)
        if replicated:
            network.distribute_reduction_method = "first"
        early_stopping = None
        if val_columns is not None:
            early_stopping = keras.callbacks.EarlyStopping(
                monitor=self.monitor, mode=self.monitor_mode, patience=int(self.patience), restore_best_weights=True
            )
        checkpoint = None
        if checkpoint_dir is not None:
            folder = Path(checkpoint_dir) / phase
            place = worker_place(strategy)
            writes_to = folder if place.is_chief else folder / f".worker-{place.index}"  # others save aside, resume from the chief's
            checkpoint = ResumableCheckpoint(writes_to, early_stopping, self.fingerprint(train_columns, phase), read_directory=folder)
        initial_epoch = checkpoint.restore(network) if checkpoint else 0
        if verbose and initial_epoch:
            print(f"{self.registry_name}: {phase} resumes after epoch {initial_epoch} from {checkpoint.read_directory}")
        batches, steps = self.epoch_data(train_columns, initial_epoch, epochs)
        validation = ordered_batches(val_columns, 8192) if val_columns is not None else None
        if replicated:
            batches, validation = (_split_by_data(data) for data in (batches, validation))
        history: dict[str, list[float]] = dict(checkpoint.history) if checkpoint else {}
        if initial_epoch < epochs and not (checkpoint and checkpoint.stopped_early):
            result = network.fit(
                batches,
                validation_data=validation,
                epochs=epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps,
                callbacks=[*callbacks, *(c for c in (early_stopping, checkpoint) if c is not None)],
                verbose=verbose,
            )
            history = dict(checkpoint.history) if checkpoint else {k: [float(x) for x in v] for k, v in result.history.items()}
        elif early_stopping is not None and early_stopping.best_weights is not None:
            network.set_weights(early_stopping.best_weights)  # a finished fit: its best weights
        if checkpoint is not None and checkpoint.directory != checkpoint.read_directory:
            shutil.rmtree(checkpoint.directory, ignore_errors=True)  # a worker's own copies: resumes read the chief's
        best = epochs if early_stopping is None or early_stopping.best_weights is None else early_stopping.best_epoch + 1
        return network, history, int(best)

    def train(
        self, indexed: pd.DataFrame, inputs: FitInputs, *, callbacks: list, verbose: int, epochs: int | None = None,
        checkpoint_dir: str | Path | None = None, strategy=None,
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
        network, history, best = self.fit_network(train_columns, val_columns, max_epochs, callbacks, verbose, checkpoint_dir, "search", strategy)
        if val_columns is not None:
            history["best_epoch"] = [float(best)]
            if self.refit if self.refit is not None else len(indexed) < self.REFIT_BELOW:
                keras.utils.set_random_seed(int(self.seed))
                all_columns, _ = self.training_columns(indexed, inputs, holdout=False)
                run_dir = tensorboard_run_dir(callbacks)
                refit_callbacks = [keras.callbacks.TensorBoard(log_dir=str(run_dir / "refit"))] if run_dir else []
                if verbose:
                    print(f"{self.registry_name}: refit on all training data for the best epoch count ({best} epoch{'s' if best != 1 else ''})")
                network, refit_history, _ = self.fit_network(all_columns, None, best, refit_callbacks, verbose, checkpoint_dir, "refit", strategy)
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


def _split_by_data(dataset: tf.data.Dataset | None) -> tf.data.Dataset | None:
    """``dataset`` with ``AutoShardPolicy.DATA``: each worker takes its part of every batch
    (its in-memory source has no files to shard by)."""
    if dataset is None:
        return None
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def shape_free_variable(initial: Any, dtype: tf.DType, name: str, rank: int) -> tf.Variable:
    """A non-trainable variable of any shape of the given rank (refitting on other data resizes it)."""
    return tf.Variable(initial, shape=tf.TensorShape([None] * rank), dtype=dtype, trainable=False, name=name)
