"""Two-tower retrieval trained with Keras ``model.fit`` on a shuffled ``tf.data`` pipeline.

    python scripts/train_two_tower.py                # the demo data, seconds
    python scripts/train_two_tower.py ../shared/data/ml-100k

A trained model (TensorFlow Recommenders towers, logQ-corrected in-batch softmax):
``fit`` builds the vocabularies in a first pass over the batches, then runs Keras epochs
with early stopping on a held-out slice (``EarlyStopping`` of your own is welcome too).
The steps are those of ``scripts/train_item_knn.py``. TensorBoard: ``tensorboard
--logdir runs`` (curves, histograms, hparams, item embeddings in the projector).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import tfrec  # noqa: F401  (first: selects Keras 2 for TensorFlow)
from tfrec._keras import keras
from tfrec.data import interactions_dataset, load_data, make_split
from tfrec.evaluation import evaluate
from tfrec.export import export_model
from tfrec.models import make_model
from tfrec.serving import ServedModel

# ## 1. Data: the training interactions as a shuffled tf.data pipeline of string ids
split = make_split(load_data(sys.argv[1] if len(sys.argv) > 1 else "demo"), "temporal")
train = interactions_dataset(split.train, batch_size=8192, shuffle=True, seed=0)

# ## 2. Fit: vocabularies, then Keras epochs of the two towers
model = make_model("two_tower")
run_dir = Path("runs") / f"two_tower-{time.strftime('%Y%m%d-%H%M%S')}"
stop_on_loss = keras.callbacks.EarlyStopping(monitor="loss", patience=5)
model.fit(train, catalog=split.train.items, callbacks=[keras.callbacks.TensorBoard(log_dir=str(run_dir)), stop_on_loss])

# ## 3. Evaluate through the serving functions, export, reload and serve
print(evaluate(ServedModel.from_model(model), split, verbose=1))
path = export_model(model, "savedmodels")
served = ServedModel.load(path)
titles = served.catalog.set_index("item_id")["title"]
user = split.test["user_id"].iloc[0]
print(f"SavedModel {path}; TensorBoard run {run_dir}; top 5 for user {user}:", [titles.get(i, i) for i in served.recommend([user], k=5)[0][0]])
