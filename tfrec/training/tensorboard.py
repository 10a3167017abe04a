"""TensorBoard logging shared by every model: one run folder per fit."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tensorboard.plugins.hparams import api as hparams_api

from tfrec._keras import tf


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
