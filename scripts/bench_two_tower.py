"""Training throughput: tfrec ``two_tower`` against the TFRS tutorial, side by side, with FLOPs.

    python scripts/bench_two_tower.py                       # ML-100K temporal split
    python scripts/bench_two_tower.py synthetic:1M 3        # data (folder or synthetic:N), rounds

Pure training steps, metrics off: the TFRS basic-retrieval tutorial (``tfrs_tutorial_model``
of ``tfrec.bench.peers``: ``StringLookup`` + 32-dim ``Embedding`` towers on string ids,
``tfrs.tasks.Retrieval()``, Adagrad 0.1, batch 8192) on its own cached batches, and tfrec's
``two_tower`` with its defaults (id + history + title + category towers, logQ-corrected
in-batch softmax, batch 1024), fitted by ``tfrec.fit`` with no validation slice. Each
configuration runs ``WARMUP`` steps (tracing, caches; fewer on small data), then the timer
covers the next steps up to about ``EXAMPLES`` examples, and stops the fit. Rounds alternate (tutorial,
tfrec, ...) so that the load of a shared machine hits both alike; examples per second is
the median over rounds.

FLOPs per training example (multiply-adds count 2; backward = 2x forward, so a step is
3x its forward FLOPs), written out in ``training_flops``: the in-batch logits ``B x B x d``
dominate, ``2 B d`` per example forward; tfrec's dense layers add ``2 (2 d_e) d`` (query)
and ``2 (3 d_e) d`` (candidate) per example. The machine's float32 matmul throughput is
measured in the same run on the logits' shape ``[B, d] x [d, B]`` and on a large square
matmul: FLOPs/example x examples/s over those is how close training comes to the matmul bound.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import tfrec  # noqa: F401  (first: selects Keras 2 for TensorFlow)
from tfrec._keras import keras, tf
from tfrec.bench.peers import tfrs_tutorial_batches, tfrs_tutorial_model
from tfrec.data import load_data, make_split
from tfrec.models import make_model
from tfrec.training import fit

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
WARMUP = 10
EXAMPLES = 400_000
TUTORIAL = {"batch": 8192, "embedding_dim": 32}


class StepTimer(keras.callbacks.Callback):
    """Times the steps after about ``warmup`` up to about ``warmup + steps``, then stops the
    fit. Keras reports a batch end every ``steps_per_execution`` steps, so the timer
    starts and stops at the first reported step at or past each mark and counts the
    steps actually timed."""

    def __init__(self, warmup: int, steps: int):
        super().__init__()
        self.warmup, self.steps, self.seconds = warmup, steps, None
        self._start: float | None = None
        self._first = 0

    def on_train_batch_end(self, batch, logs=None):
        if self._start is None and batch >= self.warmup - 1:
            self._start, self._first = time.perf_counter(), batch
        elif self._start is not None and self.seconds is None and batch >= self.warmup + self.steps - 1:
            self.seconds = time.perf_counter() - self._start
            self.steps = batch - self._first
            self.model.stop_training = True


def schedule(batch: int, n: int) -> tuple[int, int]:
    """(warm-up steps, timed steps): WARMUP (fewer on small data), then about EXAMPLES
    examples, all within one pass of full batches."""
    full = max(2, n // batch)
    warmup = min(WARMUP, max(1, full // 4))
    return warmup, max(1, min(EXAMPLES // batch, full - warmup))


def tutorial_rate(train) -> float:
    n, batch = len(train.interactions), TUTORIAL["batch"]
    warmup, steps = schedule(batch, n)
    tf.random.set_seed(42)
    model = tfrs_tutorial_model(sorted(train.interactions["user_id"].astype(str).unique()), sorted(train.interactions["item_id"].astype(str).unique()))
    batches = tfrs_tutorial_batches(train, batch).take(warmup + steps).cache()
    for _ in batches:  # fill the cache: the timed steps read batches from memory
        pass
    timer = StepTimer(warmup, steps)
    model.fit(batches, epochs=1, callbacks=[timer], verbose=0)
    return steps * batch / timer.seconds


def tfrec_rate(train) -> tuple[float, int]:
    model = make_model("two_tower", epochs=1, validation_fraction=0.0, refit=False)
    batch = model.batch_size_
    timer = StepTimer(*schedule(batch, len(train.interactions)))
    fit(model, train, callbacks=[timer], verbose=0)
    return timer.steps * batch / timer.seconds, batch


def matmul_gflops(m: int, k: int, n: int, repeats: int = 20) -> float:
    a, b = tf.random.normal([m, k]), tf.random.normal([k, n])
    product = tf.function(lambda: tf.linalg.matmul(a, b))
    product().numpy()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        product().numpy()
        seconds.append(time.perf_counter() - start)
    return 2 * m * k * n / float(np.median(seconds)) / 1e9


def training_flops(batch: int, dim: int, dense: int = 0) -> float:
    """FLOPs per example of one training step: 3 x (in-batch logits 2 B d + dense layers)."""
    return 3 * (2 * batch * dim + dense)


def main() -> None:
    source = sys.argv[1] if len(sys.argv) > 1 else str(DEFAULT_DATA)
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    train = make_split(load_data(source), "temporal").train
    rates: dict[str, list[float]] = {"tutorial": [], "tfrec": []}
    batch = 0
    for round_ in range(rounds):
        rates["tutorial"].append(tutorial_rate(train))
        rate, batch = tfrec_rate(train)
        rates["tfrec"].append(rate)
        print(f"round {round_ + 1}: tutorial {rates['tutorial'][-1]:,.0f} examples/s, tfrec {rates['tfrec'][-1]:,.0f} examples/s", flush=True)
    defaults = make_model("two_tower")
    d_e, d = int(defaults.embedding_dim), int(defaults.output_dim)
    flops = {
        "tutorial": training_flops(TUTORIAL["batch"], TUTORIAL["embedding_dim"]),
        "tfrec": training_flops(batch, d, 2 * (2 * d_e) * d + 2 * (3 * d_e) * d),
    }
    logits_peak = {"tutorial": matmul_gflops(TUTORIAL["batch"], TUTORIAL["embedding_dim"], TUTORIAL["batch"]), "tfrec": matmul_gflops(batch, d, batch)}
    square = matmul_gflops(2048, 2048, 2048)
    median = {key: float(np.median(values)) for key, values in rates.items()}
    print(f"\nTraining throughput on {source} (temporal train, {len(train.interactions):,} interactions), median of {rounds} rounds")
    print("| configuration | batch | examples/s | FLOPs/example | achieved GFLOP/s | logits-shape matmul GFLOP/s | share |")
    print("|---|---|---|---|---|---|---|")
    rows = {
        "tutorial": ("TFRS tutorial (32-dim ids, Adagrad 0.1, no metrics)", TUTORIAL["batch"]),
        "tfrec": ("tfrec two_tower (defaults, no validation)", batch),
    }
    for key, (label, size) in rows.items():
        achieved = median[key] * flops[key] / 1e9
        share = achieved / logits_peak[key]
        print(f"| {label} | {size} | {median[key]:,.0f} | {flops[key] / 1e3:,.0f}k | {achieved:.1f} | {logits_peak[key]:.1f} | {share:.0%} |")
    print(f"\nfloat32 matmul 2048^3: {square:.1f} GFLOP/s. tfrec / tutorial throughput: {median['tfrec'] / median['tutorial']:.2f}x")


if __name__ == "__main__":
    main()
