"""Item-based kNN fitted with Keras ``model.fit`` on a ``tf.data`` CSV pipeline.

    python scripts/train_item_knn.py                      # the demo data, seconds
    python scripts/train_item_knn.py ../shared/data/ml-100k

A fixed-weight model: ``fit`` is one pass over the batches that counts co-occurrences and
keeps each item's top neighbours (no gradient descent). The steps are those of
``scripts/train_mf.py`` and ``scripts/train_two_tower.py``: data as ``tf.data`` ->
``make_model`` -> ``model.fit`` with a TensorBoard callback -> evaluate -> export ->
reload and serve. TensorBoard: ``tensorboard --logdir runs``.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import tfrec  # noqa: F401  (first: selects Keras 2 for TensorFlow)
from tfrec._keras import keras, tf
from tfrec.data import load_data, make_split
from tfrec.evaluation import evaluate
from tfrec.export import export_model
from tfrec.models import make_model
from tfrec.serving import ServedModel

# ## 1. Data: the training interactions in a CSV file, read by tf.data
split = make_split(load_data(sys.argv[1] if len(sys.argv) > 1 else "demo"), "temporal")
csv_path = Path(tempfile.mkdtemp()) / "train.csv"
split.train.interactions.to_csv(csv_path, index=False)  # user_id,item_id,rating,timestamp
train = tf.data.experimental.make_csv_dataset(str(csv_path), batch_size=8192, num_epochs=1, shuffle=False)

# ## 2. Fit: one pass over the batches (the Keras adapt pattern)
model = make_model("item_knn")
run_dir = Path("runs") / f"item_knn-{time.strftime('%Y%m%d-%H%M%S')}"
model.fit(train, catalog=split.train.items, callbacks=[keras.callbacks.TensorBoard(log_dir=str(run_dir), write_graph=False)])

# ## 3. Evaluate through the serving functions, export, reload and serve
print(evaluate(ServedModel.from_model(model), split, verbose=1))
path = export_model(model, "savedmodels")
served = ServedModel.load(path)
user = split.test["user_id"].iloc[0]
print(f"SavedModel {path}; TensorBoard run {run_dir}; top 5 for user {user}:", served.recommend([user], k=5)[0][0])
print("items similar to", split.train.interactions["item_id"].iloc[0], ":", served.similar_items([split.train.interactions["item_id"].iloc[0]], k=5)[0][0])
