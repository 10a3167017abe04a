"""Training throughput: tfrec ``two_tower`` against the TFRS tutorial configuration, side by side.

    python scripts/bench_two_tower.py                           # ML-100K temporal split
    python scripts/bench_two_tower.py ../shared/data/ml-100k 3   # data dir, rounds

The tutorial configuration (the TensorFlow Recommenders basic retrieval tutorial):
``StringLookup`` + 32-dim ``Embedding`` towers on string ids, ``tfrs.tasks.Retrieval()``
without metrics, Adagrad 0.1, batch 8192, 3 epochs, data shuffled once and cached.
tfrec's: ``TwoTower()`` defaults (id + history + title + category towers, logQ-corrected
in-batch softmax), on the same training interactions, through the same
``network.fit`` its ``train`` runs (validation off: pure training steps).

Both train 3 epochs per round; the rounds alternate (tutorial, tfrec, tutorial, ...) so
that the load of a shared machine hits both alike. Examples per second = training
examples per epoch / median epoch time over epochs 2 and 3 of every round (epoch 1
includes tracing). Printed as a table; the ratio is the figure to quote.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from tfrec._keras import keras, tf  # first: selects Keras 2 for TensorFlow Recommenders

import tensorflow_recommenders as tfrs  # noqa: E402

from tfrec.data import load_movielens, make_split  # noqa: E402
from tfrec.models.two_tower import TwoTower  # noqa: E402
from tfrec.training.batches import epoch_batches, indexed_batches  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
EPOCHS = 3


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self._last - self._start)


class TutorialModel(tfrs.Model):
    """The TFRS basic retrieval tutorial's model, no metrics."""

    def __init__(self, user_ids: np.ndarray, item_ids: np.ndarray):
        super().__init__()
        self.user_model = keras.Sequential([keras.layers.StringLookup(vocabulary=user_ids, mask_token=None), keras.layers.Embedding(len(user_ids) + 1, 32)])
        self.item_model = keras.Sequential([keras.layers.StringLookup(vocabulary=item_ids, mask_token=None), keras.layers.Embedding(len(item_ids) + 1, 32)])
        self.task = tfrs.tasks.Retrieval()

    def compute_loss(self, features, training=False):
        return self.task(self.user_model(features["user_id"]), self.item_model(features["item_id"]))


def tutorial_round(train) -> list[float]:
    frame = train.interactions
    keras.utils.set_random_seed(42)
    data = tf.data.Dataset.from_tensor_slices({"user_id": frame["user_id"].to_numpy(str), "item_id": frame["item_id"].to_numpy(str)})
    batches = data.shuffle(100_000, seed=42, reshuffle_each_iteration=False).batch(8192).cache()
    model = TutorialModel(np.unique(frame["user_id"].to_numpy(str)), np.unique(frame["item_id"].to_numpy(str)))
    model.compile(optimizer=keras.optimizers.Adagrad(learning_rate=0.1))
    timer = EpochTimer()
    model.fit(batches, epochs=EPOCHS, callbacks=[timer], verbose=0)
    return timer.seconds


def tfrec_round(train) -> tuple[list[float], int]:
    model = TwoTower()
    indexed = model.prepare(train)
    model.reset_state()
    for batch in indexed_batches(indexed, 65536):
        model.update_state(batch)
    model.finalize_state()
    keras.utils.set_random_seed(model.seed)
    columns, _ = model.training_columns(indexed, train, holdout=False)
    network = model.build_network(columns)
    network.compile(optimizer=model.make_optimizer())
    timer = EpochTimer()
    steps = math.ceil(len(indexed) / model.batch_size_)
    network.fit(epoch_batches(columns, model.batch_size_, model.seed, 0, EPOCHS), epochs=EPOCHS, steps_per_epoch=steps, callbacks=[timer], verbose=0)
    return timer.seconds, model.batch_size_


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    train = make_split(load_movielens(folder), "temporal").train
    n = len(train.interactions)
    times = {"tutorial": [], "tfrec": []}
    batch = None
    for round_ in range(rounds):
        times["tutorial"] += tutorial_round(train)[1:]
        seconds, batch = tfrec_round(train)
        times["tfrec"] += seconds[1:]
        print(f"round {round_ + 1}: tutorial {np.median(times['tutorial']):.2f} s/epoch, tfrec {np.median(times['tfrec']):.2f} s/epoch", flush=True)
    rate = {name: n / float(np.median(values)) for name, values in times.items()}
    print(f"\nTraining throughput on {train.name} temporal train ({n:,} interactions), median of epochs 2-{EPOCHS} over {rounds} rounds")
    print("| configuration | batch | s/epoch | examples/s |\n|---|---|---|---|")
    print(f"| TFRS tutorial (32-dim ids, Adagrad 0.1, no metrics) | 8192 | {np.median(times['tutorial']):.2f} | {rate['tutorial']:,.0f} |")
    print(f"| tfrec two_tower (defaults) | {batch} | {np.median(times['tfrec']):.2f} | {rate['tfrec']:,.0f} |")
    print(f"\ntfrec / tutorial: {rate['tfrec'] / rate['tutorial']:.2f}x")


if __name__ == "__main__":
    main()
