"""A Keras callback that checkpoints every epoch and resumes an interrupted fit exactly."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tfrec._keras import keras, tf


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
