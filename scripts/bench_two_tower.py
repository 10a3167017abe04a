"""Training throughput: tfrec ``two_tower`` against the TFRS tutorial configuration, side by side.

    python scripts/bench_two_tower.py                           # ML-100K temporal split
    python scripts/bench_two_tower.py ../shared/data/ml-100k 3   # data dir, rounds

The tutorial configuration is the ``tfrs_two_tower`` peer of ``tfrec.bench.peers`` (the
TensorFlow Recommenders basic retrieval tutorial: ``StringLookup`` + 32-dim ``Embedding``
towers on string ids, ``tfrs.tasks.Retrieval()`` without metrics, Adagrad 0.1, batch
8192, 3 epochs, data shuffled once and cached), which records its epoch times. tfrec's:
``two_tower`` with its defaults (id + history + title + category towers, logQ-corrected
in-batch softmax) but 3 epochs, no validation slice and no refit (pure training steps),
fitted by ``tfrec.fit`` on the same training interactions with an epoch timer callback.

``tfrec bench --protocol T --models two_tower --peers tfrs_two_tower`` compares the two
whole fits (tfrec's with early stopping and the refit); this script compares the
training steps alone. The rounds alternate (tutorial, tfrec, tutorial, ...) so that the
load of a shared machine hits both alike. Examples per second = training examples per
epoch / median epoch time over epochs 2 and 3 of every round (epoch 1 includes
tracing). Printed as a table; the ratio is the figure to quote.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import tfrec  # noqa: F401  (first: selects Keras 2 for TensorFlow)
from tfrec._keras import keras
from tfrec.bench.peers import epoch_timer, make_peer
from tfrec.data import load_data, make_split
from tfrec.models import make_model
from tfrec.training import fit

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
EPOCHS = 3


def tutorial_round(train) -> list[float]:
    """Epoch seconds of one fit of the TFRS tutorial peer."""
    return make_peer("tfrs_two_tower", epochs=EPOCHS).fit(train).epoch_seconds


def tfrec_round(train) -> tuple[list[float], int]:
    """Epoch seconds of the training epochs of one tfrec two_tower fit, and its batch size."""
    model = make_model("two_tower", epochs=EPOCHS, validation_fraction=0.0, refit=False)
    timer = epoch_timer(keras)  # each keras fit call restarts it: it ends with the training epochs
    fit(model, train, callbacks=[timer], verbose=0)
    return timer.seconds[-EPOCHS:], model.batch_size_


def main() -> None:
    folder = sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_DATA)
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    train = make_split(load_data(folder), "temporal").train
    n = len(train.interactions)
    times: dict[str, list[float]] = {"tutorial": [], "tfrec": []}
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
    print(f"| tfrec two_tower (defaults, 3 epochs, no validation) | {batch} | {np.median(times['tfrec']):.2f} | {rate['tfrec']:,.0f} |")
    print(f"\ntfrec / tutorial: {rate['tfrec'] / rate['tutorial']:.2f}x")


if __name__ == "__main__":
    main()
