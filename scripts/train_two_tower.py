"""Two-tower retrieval with TensorFlow Recommenders and Keras (tfrec ``two_tower``).

    python scripts/train_two_tower.py                        # the demo data, seconds
    python scripts/train_two_tower.py ../shared/data/ml-100k   # MovieLens 100K, a few minutes

The walk-through trains one model step by step, the way ``tfrec.training.fit`` does it
(``TwoTower.train``): load data -> vocabularies and item features -> tf.data (each
interaction with the user's previous items) -> build the towers and the
``tfrs.tasks.Retrieval`` task (logQ-corrected in-batch softmax) -> compile -> fit with
TensorBoard, early stopping on ``tfrs.metrics.FactorizedTopK`` and checkpoint callbacks
-> refit on all the data -> precompute candidate embeddings -> evaluate -> export a
SavedModel (query tower + brute-force top-k inside) -> reload it and serve.

On MovieLens it then measures the figures of the report through ``tfrec.training.fit``:
protocol T (``temporal`` split) next to the peer rows of ``shared/PROTOCOLS.md``, with
and without the logQ correction, epoch time and examples per second, export size, and
``recommend`` latency of the reloaded SavedModel for one user and for 1,000 users.
Throughput against the TFRS tutorial configuration: ``scripts/bench_two_tower.py``.

TensorBoard: ``tensorboard --logdir runs`` (curves, histograms, hparams, projector).
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tfrec._keras import keras  # first: selects Keras 2 for TensorFlow Recommenders
from tfrec.data import load_demo, load_movielens, make_split
from tfrec.evaluation import evaluate
from tfrec.export import export_model
from tfrec.models.two_tower import TwoTower
from tfrec.serving import ServedModel
from tfrec.training import fit
from tfrec.training.batches import epoch_batches, indexed_batches, ordered_batches
from tfrec.training.checkpoint import ResumableCheckpoint
from tfrec.training.tensorboard import write_projector

OUT = Path("runs") / f"train_two_tower-{time.strftime('%Y%m%d-%H%M%S')}"


class EpochTimer(keras.callbacks.Callback):
    """Seconds of each training epoch (validation excluded)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._end = time.perf_counter(), None

    def on_test_begin(self, logs=None):
        self._end = self._end or time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append((self._end or time.perf_counter()) - self._start)


def cold_start_metrics(served: ServedModel, split) -> dict[str, float]:
    """Protocol T with every test user served as a stranger: unknown user id, their
    training items (time order) as ``history``. Measures fold-in / the history tower."""
    from tfrec.data.dataset import sorted_ids
    from tfrec.evaluation.metrics import ranking_metrics

    train = split.train.interactions.sort_values(["user_id", "timestamp"], kind="stable")
    histories = train.groupby("user_id", sort=False)["item_id"].apply(list)
    users = sorted_ids(split.test["user_id"])
    pages = []
    for start in range(0, len(users), 256):
        chunk = users[start : start + 256]
        ids, _ = served.recommend([f"stranger-{u}" for u in chunk], history=[histories.get(u, []) for u in chunk], k=20)
        pages.append(ids.astype(object))
    metrics = ranking_metrics(users, np.concatenate(pages), split.test[["user_id", "item_id"]], n_catalog=served.n_items, ks=(10, 20))
    return {key: float(metrics[key]) for key in ("recall@10", "ndcg@10")}


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def latency_ms(served: ServedModel, users: list[str], repeats: int) -> float:
    served.recommend(users, k=10)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        served.recommend(users, k=10)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


# ## 1. Load the data
movielens = len(sys.argv) > 1
data = load_movielens(sys.argv[1]) if movielens else load_demo()
split = make_split(data, "temporal")
print(f"{data}\nsplit {split.name}: train {len(split.train.interactions):,}, test {len(split.test):,}")

# ## 2. The model and its vocabularies (the adapt pass of tfrec.fit)
model = TwoTower()
indexed = model.prepare(split.train)  # ids -> indices, each user's items in time order
model.reset_state()
for batch in indexed_batches(indexed, 65536):
    model.update_state(batch)  # fallback popularity for unknown users without history
model.finalize_state()

# ## 3. tf.data: every interaction with the user's previous `history_length` items and the
# item's sampling probability (for the logQ correction); a random validation slice
keras.utils.set_random_seed(model.seed)
train_columns, val_columns = model.training_columns(indexed, split.train)
n_train = len(train_columns["item_idx"])
batch_size = min(model.batch_size_, max(1, math.ceil(n_train / model.MIN_STEPS_PER_EPOCH)))
steps = math.ceil(n_train / batch_size)
features = model.item_features_
print(f"title tokens {features.n_tokens - 1:,}, categories {features.n_categories - 1}, history length {model.history_length}")

# ## 4. Build and compile: query tower, candidate tower, tfrs.tasks.Retrieval with
# FactorizedTopK over all items (computed on validation data only)
network = model.build_network(train_columns)
network.compile(optimizer=keras.optimizers.Adam(learning_rate=model.learning_rate))

# ## 5. Fit: TensorBoard, early stopping on validation top-10 accuracy, checkpoints
callbacks = [keras.callbacks.TensorBoard(log_dir=str(OUT), histogram_freq=1)]
timer = EpochTimer()
early_stopping = None
if val_columns is not None:
    early_stopping = keras.callbacks.EarlyStopping(monitor=model.monitor, mode="max", patience=model.patience, restore_best_weights=True)
    callbacks.append(early_stopping)
checkpoint = ResumableCheckpoint(OUT / "checkpoints", early_stopping, model.fingerprint(train_columns, "search"))
initial_epoch = checkpoint.restore(network)
network.fit(
    epoch_batches(train_columns, batch_size, model.seed, initial_epoch, model.epochs),
    validation_data=ordered_batches(val_columns, 8192) if val_columns is not None else None,
    epochs=model.epochs,
    initial_epoch=initial_epoch,
    steps_per_epoch=steps,
    callbacks=[*callbacks, checkpoint, timer],
    verbose=2,
)

# ## 6. Refit on all interactions for the best number of epochs
if val_columns is not None and model.refit:
    best = early_stopping.best_epoch + 1
    print(f"best epoch {best} (validation top-10 accuracy {early_stopping.best:.4f}); refitting on all {len(indexed):,} interactions")
    keras.utils.set_random_seed(model.seed)
    all_columns, _ = model.training_columns(indexed, split.train, holdout=False)
    network = model.build_network(all_columns)
    network.compile(optimizer=keras.optimizers.Adam(learning_rate=model.learning_rate))
    network.fit(
        epoch_batches(all_columns, batch_size, model.seed, 0, best),
        epochs=best,
        steps_per_epoch=math.ceil(len(indexed) / batch_size),
        callbacks=[keras.callbacks.TensorBoard(log_dir=str(OUT / "refit"))],
        verbose=0,
    )

# ## 7. Into the serving model: query tower weights, every item's candidate embedding
model.finish_training(network, split.train)
write_projector(OUT, model.item_embeddings(), [t.decode() for t in model.item_titles.numpy()[1:]])

# ## 8. Evaluate, export, reload, serve
in_memory = evaluate(ServedModel.from_model(model), split)
path = export_model(model, OUT / "savedmodels")
served = ServedModel.load(path)
reloaded = evaluate(served, split)
assert in_memory == reloaded, "the reloaded SavedModel must score exactly like the model in memory"
some_user = model.users.ids.numpy()[1].decode()
ids, scores = served.recommend([some_user], k=5)
print(f"\n{split.name}: " + ", ".join(f"{k} {v:.4f}" for k, v in reloaded.items()) + f"  (reloaded SavedModel {path})")
print(f"top 5 for user {some_user}:", [(str(i), served.title(i), round(float(s), 3)) for i, s in zip(ids[0], scores[0])])
history = [str(i) for i in ids[0][:3]]
print(f"a new user with history {history}:", [served.title(i) for i in served.recommend(["new-user"], history=[history], k=3)[0][0]])
epoch_s = float(np.median(timer.seconds[1:] or timer.seconds))  # the first epoch includes tracing
print(f"epoch time {epoch_s:.2f} s, {n_train / epoch_s:,.0f} examples/s; export size {directory_size(path) / 1e6:.1f} MB")
print(f"TensorBoard: tensorboard --logdir {OUT}")
if not movielens:
    sys.exit(0)

# ## 9. Report figures (MovieLens): protocol T through tfrec.fit, next to the peers
PEERS_T = {
    "EASE (lambda 250)": (0.1150, 0.1969, 0.1976, 0.7211, 0.1032, 0.2595),
    "UserKNN (cosine, k=50)": (0.1053, 0.1832, 0.1867, 0.6691, 0.0989, 0.1862),
    "ItemKNN (implicit cosine, K=100)": (0.1087, 0.1790, 0.1853, 0.6797, 0.0959, 0.1210),
    "implicit ALS (64 factors)": (0.1125, 0.1844, 0.1782, 0.7137, 0.0851, 0.3656),
    "MostPop": (0.0601, 0.0973, 0.1162, 0.5376, 0.0537, 0.0447),
    "TFRS tutorial two-tower": (0.0571, 0.1028, 0.0939, 0.4793, 0.0407, 0.6282),
}
print("\nProtocol T (temporal)\n| model | R@10 | R@20 | NDCG@10 | HR@10 | MAP@10 | Cov@10 | fit s |\n|---|---|---|---|---|---|---|---|")
for label, params in (("tfrec two_tower", {}), ("tfrec two_tower, no logQ correction", {"logq_correction": False})):
    result = fit(TwoTower(**params), split.train, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        exported = export_model(result.model, folder)
        served_t = ServedModel.load(exported)
        m = evaluate(served_t, split)
        if not params:
            cold = cold_start_metrics(served_t, split)
            size = directory_size(exported)
            users = [u.decode() for u in result.model.users.ids.numpy()[1:]]
            one = latency_ms(served_t, users[:1], 50)
            thousand = latency_ms(served_t, (users * 2)[:1000], 10)
    print(
        f"| {label} | {m['recall@10']:.4f} | {m['recall@20']:.4f} | {m['ndcg@10']:.4f} | {m['hr@10']:.4f} | {m['map@10']:.4f} "
        f"| {m['coverage@10']:.4f} | {result.fit_seconds:.1f} |"
    )
for name, values in PEERS_T.items():
    print(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " | |")
print(f"\nunseen users served from their history (user id unknown): R@10 {cold['recall@10']:.4f}, NDCG@10 {cold['ndcg@10']:.4f}")
print(f"SavedModel {size / 1e6:.2f} MB; recommend latency (reloaded, k=10): 1 user {one:.1f} ms, 1,000 users {thousand:.1f} ms")
