"""Two-tower retrieval trained with Keras ``model.fit`` on a shuffled ``tf.data`` pipeline.

    python scripts/train_two_tower.py                # the demo data, seconds
    python scripts/train_two_tower.py ../shared/data/ml-100k

A trained model (TensorFlow Recommenders towers, logQ-corrected in-batch softmax):
``fit`` builds the vocabularies in a first pass over the batches, then runs Keras epochs
with early stopping on a held-out slice. Every epoch is checkpointed under
``runs/train_two_tower-<data>/checkpoints`` (one folder per data set, not per run): run
the script again after an interruption (Ctrl-C, ``kill -9``) and the fit resumes where
it stopped, ending with the same weights as an uninterrupted one; delete that folder to
fit afresh. (Callbacks of your own are welcome, but their state, an ``EarlyStopping``'s
patience count say, is not checkpointed.) The steps are those of ``scripts/train_item_knn.py``. TensorBoard: ``tensorboard
--logdir runs`` (curves, histograms, hparams, item embeddings in the projector).
"""
from __future__ import annotations

import sys
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

# ## 2. Fit: vocabularies, then Keras epochs of the two towers (resumable from checkpoint_dir)
model = make_model("two_tower")
work = Path("runs") / f"train_two_tower-{split.train.name}"
run_dir = work / "tensorboard"
model.fit(train, catalog=split.train.items, callbacks=[keras.callbacks.TensorBoard(log_dir=str(run_dir))], checkpoint_dir=str(work / "checkpoints"))

# ## 3. Evaluate through the serving functions, export, reload and serve
print(evaluate(ServedModel.from_model(model), split, verbose=1))
path = export_model(model, "savedmodels")
served = ServedModel.load(path)
titles = served.catalog.set_index("item_id")["title"]
user = split.test["user_id"].iloc[0]
print(f"SavedModel {path}; TensorBoard run {run_dir}; top 5 for user {user}:", [titles.get(i, i) for i in served.recommend([user], k=5)[0][0]])
