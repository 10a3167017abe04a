"""The one fitting entry point for every model, fixed-weight or trained."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from tfrec._keras import keras, tf
from tfrec.data.dataset import Dataset
from tfrec.models.base import Recommender
from tfrec.training import tensorboard
from tfrec.training.batches import indexed_batches


@dataclass
class FitResult:
    """What ``fit`` did: the fitted model, its TensorBoard run folder and timings."""

    model: Recommender
    run_dir: Path | None
    fit_seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)


def fit(
    model: Recommender,
    data: Dataset,
    *,
    logdir: str | Path | None = None,
    batch_size: int = 65536,
    verbose: int = 1,
    **train_kwargs: Any,
) -> FitResult:
    """Fit ``model`` on ``data``: the same call for every tfrec model.

    1. ``model.prepare(data)``: vocabularies, each user's training items, titles.
    2. One ``tf.data`` pass in the Keras adapt pattern (``reset_state``, ``update_state``
       per batch with a Keras progress bar, ``finalize_state``): fixed weights such as
       counts, IDF or similarities, and every model's fallback popularity.
    3. Trained models then learn their weights with ``model.fit`` (``model.train``),
       with ``train_kwargs`` (epochs, ...) passed on.
    4. TensorBoard (when ``logdir`` is given): a new run folder with hparams, what the
       model computed (``model.write_summaries``), training curves and the serving graph.
    """
    if not isinstance(model, Recommender):
        raise TypeError(f"fit expects a tfrec Recommender, got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(f"fit expects a tfrec.data.Dataset, got {type(data).__name__}; load one with tfrec.data.load_data")
    run_dir = tensorboard.new_run_dir(logdir, model.registry_name or model.name) if logdir else None
    start = time.perf_counter()
    indexed = model.prepare(data)
    batches = indexed_batches(indexed, batch_size)
    progress = keras.utils.Progbar(math.ceil(len(indexed) / batch_size), verbose=verbose, unit_name="batch")
    if verbose:
        print(f"fitting {model.registry_name} on {data.name}: {len(indexed):,} interactions")
    model.reset_state()
    for step, batch in enumerate(batches, start=1):
        model.update_state(batch)
        progress.update(step)
    model.finalize_state()
    history: dict[str, list[float]] = {}
    if model.trained:
        callbacks = [keras.callbacks.TensorBoard(log_dir=str(run_dir), histogram_freq=1)] if run_dir else []
        history = model.train(indexed, data, callbacks=callbacks, verbose=verbose, **train_kwargs)
    elif train_kwargs:
        raise TypeError(f"{model.registry_name} is a fixed-weight model; it takes no training options {sorted(train_kwargs)}")
    seconds = time.perf_counter() - start
    if run_dir:
        tensorboard.write_hparams(run_dir, model.registry_name, model.get_config(), data.name)
        tensorboard.write_scalars(
            run_dir,
            {"fit_seconds": seconds, "users": model.users.size - 1, "items": model.items.size - 1, "interactions": len(indexed)},
            prefix="fit/",
        )
        with tf.summary.create_file_writer(str(run_dir)).as_default():
            model.write_summaries()
        tensorboard.write_serving_graph(run_dir, model.serve_recommend)
    return FitResult(model=model, run_dir=run_dir, fit_seconds=seconds, history=history)
