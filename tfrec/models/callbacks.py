"""A Keras callback that checkpoints every epoch and resumes an interrupted fit exactly."""
from __future__ import annotations

import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np

from tfrec._keras import keras, tf

logger = logging.getLogger(__name__)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Checkpoint after every epoch; ``restore`` continues an interrupted fit exactly.

    What is saved in ``directory``, for the last two epochs: the network's weights and the
    optimizer's state (``ckpt-N``, ``tf.train.CheckpointManager``), and ``state-N.json``
    with the number of finished epochs, the history so far, the early-stopping state (its
    best weights in ``best_weights-<best epoch>.npz``) and a fingerprint of the model and
    data; ``state.json`` is a copy of the newest state. Every file is complete before the
    state that names it is written, so a fit killed at any moment (``kill -9``) resumes.
    Together with ``epoch_batches`` (the data order of an epoch depends only on the seed
    and the epoch) a resumed fit ends with the same weights as an uninterrupted one.

    Usage: build and compile the network, ``initial_epoch = checkpoint.restore(net)``,
    then ``net.fit(..., initial_epoch=initial_epoch, callbacks=[..., early_stopping,
    checkpoint])`` (this callback after the ``EarlyStopping`` it restores).
    """

    def __init__(
        self, directory: str | Path, early_stopping: keras.callbacks.EarlyStopping | None = None, fingerprint: dict | None = None,
        read_directory: str | Path | None = None,
    ):
        super().__init__()
        self.directory = Path(directory)
        #: Where ``restore`` reads (default ``directory``). In a multi-worker fit every worker
        #: saves (a save may run collectives), the chief in the checkpoint folder and the
        #: others in a scratch folder, and every worker resumes from the chief's folder.
        self.read_directory = Path(read_directory) if read_directory is not None else self.directory
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
        """Load the newest intact checkpoint into ``net`` (built and compiled); return the epochs done.

        Each checkpoint ``ckpt-N`` has its own state file ``state-N.json`` (``state.json``,
        a copy of the newest, is read only without them). An unreadable state file, a truncated or missing
        checkpoint file or a broken ``best_weights-*.npz`` makes it fall back to the
        newest checkpoint that is intact, with a warning; when none is, it raises one
        ``ValueError`` line naming the folder to delete. A checkpoint of another model,
        configuration or data is refused (``ValueError``).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._checkpoint = tf.train.Checkpoint(model=net, optimizer=net.optimizer)
        self._manager = tf.train.CheckpointManager(self._checkpoint, str(self.directory), max_to_keep=2)
        # newest first; state.json (a copy of the newest) last, for folders written before per-epoch states
        source = self.read_directory
        candidates = [*sorted(source.glob("state-*.json"), key=_epoch_of, reverse=True), source / "state.json"]
        candidates = [path for path in candidates if path.is_file()]
        if not candidates:
            return 0
        net.optimizer.build(net.trainable_variables)
        problems = []
        for path in candidates:
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
                epoch, checkpoint_path = int(state["epoch"]), str(source / Path(state["checkpoint"]).name)  # the folder may have moved
            except (OSError, ValueError, KeyError, TypeError) as error:
                problems.append(f"{path.name}: {error}")
                continue
            if state.get("fingerprint") != self.fingerprint:
                raise ValueError(
                    f"checkpoint_dir {self.directory} holds a checkpoint of another model, configuration or data "
                    f"({state.get('fingerprint')}); use an empty folder to start a new fit"
                )
            try:
                self._checkpoint.restore(checkpoint_path).assert_existing_objects_matched()
                self._state = state
                self._restore_early_stopping()
            except (tf.errors.OpError, OSError, ValueError, KeyError, IndexError, AssertionError, EOFError, zipfile.BadZipFile) as error:
                problems.append(f"{Path(checkpoint_path).name}: {type(error).__name__}: {_first_line(error)}")
                self._state = None
                continue
            if problems:
                skipped = "; ".join(problems)
                logger.warning("checkpoint_dir %s: resuming from epoch %d, the newest intact checkpoint (skipped %s)", self.directory, epoch, skipped)
            self.history = {key: list(values) for key, values in state["history"].items()}
            self.stopped_early = bool(state.get("stopped_early", False))
            return epoch
        raise ValueError(
            f"checkpoint_dir {self.directory} holds no intact checkpoint ({'; '.join(problems)}); delete the folder {self.directory} to start the fit afresh"
        )

    def _restore_early_stopping(self) -> None:
        es, state = self.early_stopping, self._state
        if es is None or state is None or state.get("early_stopping") is None:
            return
        saved = state["early_stopping"]
        es.wait, es.best, es.best_epoch = saved["wait"], saved["best"], saved["best_epoch"]
        es.best_weights = None
        best_file = saved.get("best_weights", "best_weights.npz")  # the key is absent in folders of older versions
        if best_file and (saved.get("best_weights") or (self.read_directory / best_file).is_file()):
            with np.load(self.read_directory / best_file) as stored:
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
            best_file = f"best_weights-{int(es.best_epoch) + 1}.npz" if es.best_weights is not None else None
            es_state = {"wait": int(es.wait), "best": float(es.best), "best_epoch": int(es.best_epoch), "best_weights": best_file}
            if best_file is not None and (es.best_epoch == epoch or not (self.directory / best_file).is_file()):
                with open(self.directory / f"{best_file}.tmp", "wb") as out:
                    np.savez(out, **{f"w{i}": w for i, w in enumerate(es.best_weights)})
                os.replace(self.directory / f"{best_file}.tmp", self.directory / best_file)
        self._state = {
            "epoch": epoch + 1,
            "checkpoint": Path(path).name,
            "history": self.history,
            "stopped_early": self.stopped_early,
            "early_stopping": es_state,
            "fingerprint": self.fingerprint,
        }
        text = json.dumps(self._state, indent=1)
        for target in (self.directory / f"state-{epoch + 1}.json", self._state_file):  # the epoch's own state, then the newest
            temporary = target.with_suffix(".tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, target)
        self._forget_old_states()

    def _forget_old_states(self) -> None:
        """Delete the state files of checkpoints the manager no longer keeps, and best weights no kept state needs."""
        kept = {_epoch_of(Path(p)) for p in self._manager.checkpoints}
        needed = set()
        for path in self.directory.glob("state-*.json"):
            if _epoch_of(path) not in kept:
                path.unlink(missing_ok=True)
                continue
            try:
                needed.add((json.loads(path.read_text(encoding="utf-8")).get("early_stopping") or {}).get("best_weights"))
            except ValueError:
                continue
        for path in self.directory.glob("best_weights-*.npz"):
            if path.name not in needed:
                path.unlink(missing_ok=True)


def _epoch_of(path: Path) -> int:
    """N of ``state-N.json`` or of a checkpoint prefix ``ckpt-N`` (-1 when there is none)."""
    digits = path.name.split("-")[-1].split(".")[0]
    return int(digits) if digits.isdigit() else -1


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else ""
