"""Matrix factorization trained with Keras ``model.fit`` on a ``tf.data`` TFRecord pipeline.

    python scripts/train_mf.py                       # the demo data, seconds
    python scripts/train_mf.py ../shared/data/ml-100k

A trained model: ``fit`` builds the vocabularies in a first pass over the batches, then
runs Keras epochs of its network: here Adam's mini-batch epochs (early stopping on a
held-out slice, a refit on all the data), the long fit checkpoints are for; ``mf``'s
default solver, ALS, needs 8 sweeps (75 s at 20M interactions). Every epoch is
checkpointed under ``runs/train_mf-<data>/checkpoints`` (one folder per data set, not
per run): run the script again after an interruption (Ctrl-C, ``kill -9``) and the fit
resumes where it stopped, ending with the same weights as an uninterrupted one; delete
that folder to fit afresh. The steps are those of ``scripts/train_item_knn.py``.
TensorBoard: ``tensorboard --logdir runs`` (curves, histograms, hparams, projector).
"""
from __future__ import annotations

import sys
from pathlib import Path

import tfrec  # noqa: F401  (first: selects Keras 2 for TensorFlow)
from tfrec._keras import keras, tf
from tfrec.data import load_data, make_split
from tfrec.evaluation import evaluate
from tfrec.export import export_model
from tfrec.models import make_model
from tfrec.serving import ServedModel

# ## 1. Data: the training interactions in a TFRecord file, read by tf.data
split = make_split(load_data(sys.argv[1] if len(sys.argv) > 1 else "demo"), "temporal")
work = Path("runs") / f"train_mf-{split.train.name}"
work.mkdir(parents=True, exist_ok=True)
record_path = work / "train.tfrecord"
if not record_path.is_file():
    with tf.io.TFRecordWriter(str(record_path)) as writer:
        for row in split.train.interactions.itertuples(index=False):
            feature = {
                "user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row.user_id.encode()])),
                "item_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row.item_id.encode()])),
                "rating": tf.train.Feature(float_list=tf.train.FloatList(value=[row.rating])),
                "timestamp": tf.train.Feature(int64_list=tf.train.Int64List(value=[row.timestamp])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
schema = {
    "user_id": tf.io.FixedLenFeature([], tf.string),
    "item_id": tf.io.FixedLenFeature([], tf.string),
    "rating": tf.io.FixedLenFeature([], tf.float32),
    "timestamp": tf.io.FixedLenFeature([], tf.int64),
}
train = tf.data.TFRecordDataset(str(record_path)).batch(8192).map(lambda rows: tf.io.parse_example(rows, schema))

# ## 2. Fit: vocabularies, then Keras epochs (resumable from checkpoint_dir)
model = make_model("mf", feedback="implicit", solver="adam")
history = model.fit(
    train,
    catalog=split.train.items,
    callbacks=[keras.callbacks.TensorBoard(log_dir=str(work / "tensorboard"), histogram_freq=1)],
    checkpoint_dir=str(work / "checkpoints"),
)
print({key: values[-1] for key, values in history.history.items()})

# ## 3. Evaluate through the serving functions, export, reload and serve
print(evaluate(ServedModel.from_model(model), split, verbose=1))
path = export_model(model, "savedmodels")
served = ServedModel.load(path)
history_items = list(split.train.interactions["item_id"].iloc[:3])
print(f"SavedModel {path}; a new user who liked {history_items} gets:", served.recommend(["new-user"], history=[history_items], k=5)[0][0])
