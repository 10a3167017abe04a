"""A fit of one model on the demo data, in one process or as one worker of a multi-worker
cluster (when ``TF_CONFIG`` is set), for ``tests/test_distributed.py``.

Usage: ``python tests/distributed_fit.py MODEL PARAMS_JSON OUT_JSON``. The chief (or the
single process) writes ``{"batch_loss": [...], "history": {...}}``: every training
step's logged ``loss`` (one step per call, so that each is logged) and the Keras history.
"""
from __future__ import annotations

import json
import os
import sys

from tfrec._keras import keras, tf


def main(model_name: str, params: dict, out: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy() if os.environ.get("TF_CONFIG") else None  # first, before any other op
    from tfrec.data import load_demo, make_split
    from tfrec.distribute.cluster import worker_place
    from tfrec.models import make_model
    from tfrec.models.trained import TrainedRecommender

    TrainedRecommender.STEPS_PER_EXECUTION = 1  # every step's loss logged, in one process too
    losses: list[float] = []

    class StepLosses(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))

    split = make_split(load_demo(), "temporal")
    model = make_model(model_name, **params)
    history = model.fit(split.train, strategy=strategy, verbose=0, callbacks=[StepLosses()])
    if strategy is None or worker_place(strategy).is_chief:
        with open(out, "w") as file:
            json.dump({"batch_loss": losses, "history": {k: [float(x) for x in v] for k, v in history.history.items()}}, file)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3])
