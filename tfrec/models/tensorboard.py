"""TensorBoard logging shared by every model: one run folder per fit."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import api as hparams_api

from tfrec._keras import keras, tf


def new_run_dir(logdir: str | Path, model_name: str) -> Path:
    """``<logdir>/<model>-<YYYYmmdd-HHMMSS>[-n]``, a folder that did not exist before."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(logdir) / f"{model_name}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    return run_dir


def _hparam_value(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def write_hparams(run_dir: Path, model_name: str, config: dict[str, Any], data_name: str) -> None:
    params = {"model": model_name, "data": data_name, **{k: _hparam_value(v) for k, v in config.items()}}
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        hparams_api.hparams(params)


def write_scalars(run_dir: Path, values: dict[str, float], step: int = 0, prefix: str = "") -> None:
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        for key, value in values.items():
            if value is not None:
                tf.summary.scalar(f"{prefix}{key}", float(value), step=step)


def write_serving_graph(run_dir: Path, function) -> None:
    """The traced serving graph of ``function`` (a tf.function with an input signature)."""
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        tf.summary.graph(function.get_concrete_function().graph)


def tensorboard_run_dir(callbacks: list) -> Path | None:
    """The run folder of the TensorBoard callback among ``callbacks`` (None without one)."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.TensorBoard):
            return Path(callback.log_dir)
    return None


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

