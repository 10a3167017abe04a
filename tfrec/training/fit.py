"""``tfrec.fit``: ``model.fit`` on a ``tfrec.data.Dataset``, with a TensorBoard run folder."""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfrec._keras import keras
from tfrec.data.dataset import Dataset
from tfrec.models import tensorboard
from tfrec.models.base import Recommender


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
    split: str | None = None,
    verbose: int = 1,
    **fit_kwargs: Any,
) -> FitResult:
    """Fit ``model`` on ``data``: ``model.fit(data)`` (the data's interactions, catalogue
    and sessions), plus a TensorBoard run when ``logdir`` is given.

    It is the same path as a Keras user's ``model.fit(dataset, catalog=..., callbacks=...)``
    (see ``Recommender.fit``; an in-memory ``Dataset`` skips streaming its ids through
    ``tf.data`` as strings, with the same result); ``fit_kwargs`` (``epochs``, ``checkpoint_dir``,
    ``callbacks``, ``batch_size``) are passed on. With ``logdir``: a new run folder
    ``<logdir>/<model>-<data>[-<split>]-<time>`` with a ``keras.callbacks.TensorBoard``
    callback (training curves; what the model computed), hparams (model, data, ``split``:
    the name of the split ``data`` is the train part of, e.g. ``split.name``, and the
    parameters; the log folder's HParams experiment, see ``tfrec.models.tensorboard``),
    the fit time as a scalar (a metric column of the HParams table), a text table of the
    fit (data, split, users, items, interactions, seconds) and the serving graph.
    """
    if not isinstance(model, Recommender):
        raise TypeError(f"fit expects a tfrec model (tfrec.models.make_model(name)), got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(
            f"fit expects a tfrec.data.Dataset, got {type(data).__name__}; load one with tfrec.data.load_data, "
            "or call model.fit(tf_dataset) for a tf.data.Dataset"
        )
    if split is not None and not isinstance(split, str):
        raise TypeError(f"fit: split is the split's name (split.name, e.g. 'temporal'), got {type(split).__name__}")
    run_dir = tensorboard.new_run_dir(logdir, model.registry_name or model.name, data.name, split) if logdir else None
    callbacks = list(fit_kwargs.pop("callbacks", None) or [])
    if run_dir is not None:
        # weight histograms only for trained networks (a fixed-weight model holds string tables)
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(run_dir), histogram_freq=1 if model.trained else 0, write_graph=False))
    start = time.perf_counter()
    history = model.fit(data, callbacks=callbacks, verbose=verbose, **fit_kwargs)
    seconds = time.perf_counter() - start
    if run_dir is not None:
        defaults = {name: p.default for name, p in inspect.signature(type(model)).parameters.items() if p.default is not inspect.Parameter.empty}
        tensorboard.write_hparams(
            run_dir, model.registry_name or model.name, model.get_config(), data.name, split=split, params=model.PARAMS, defaults=defaults
        )
        tensorboard.write_fit(run_dir, data.name, split, model.users.size - 1, model.items.size - 1, len(data.interactions), seconds)
        tensorboard.write_serving_graph(run_dir, model.serve_recommend)
    return FitResult(model=model, run_dir=run_dir, fit_seconds=seconds, history=dict(history.history))
