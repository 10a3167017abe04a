"""``model.fit(tf.data)``: the one fitting path of every model, from any tf.data source.

The reference is ``tests/data/fit_fingerprints.json``, written by the fit path that came
before ``model.fit`` (``tfrec.training.fit`` over a pandas Dataset, see
``tests/fingerprints.py``): fitting through ``model.fit`` on a dataset the user built,
from tensors, a TFRecord file or a CSV file, gives the same weights and the same top 10.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fingerprints import CASES, FILE, case_key, load_case_data, model_fingerprint

from tfrec._keras import keras, tf
from tfrec.data.pipelines import DatasetSpecError
from tfrec.models import make_model

REFERENCE = json.loads(FILE.read_text(encoding="utf-8"))
DEMO_CASES = [case for case in CASES if case[0] == "demo"]
ML100K_CASES = [case for case in CASES if case[0] == "ml-100k"]


@pytest.fixture(scope="module")
def train_sets(request):
    cache: dict = {}

    def get(data: str):
        if data not in cache:
            if data == "ml-100k":
                request.getfixturevalue("ml100k_dir")  # skips without the data
            cache[data] = load_case_data(data)
        return cache[data]

    return get


def tensor_dataset(frame: pd.DataFrame, batch_size: int) -> tf.data.Dataset:
    """What a Keras user writes: columns to tensors, sliced into batches."""
    columns = {
        "user_id": frame["user_id"].to_numpy(dtype=str),
        "item_id": frame["item_id"].to_numpy(dtype=str),
        "rating": frame["rating"].to_numpy(np.float32),
        "timestamp": frame["timestamp"].to_numpy(np.int64),
    }
    return tf.data.Dataset.from_tensor_slices(columns).batch(batch_size)


def fit_and_compare(case, train, dataset) -> None:
    _, name, params = case
    model = make_model(name, **params)
    history = model.fit(dataset, catalog=train.items, sessions=train.sessions, verbose=0)
    assert isinstance(history, keras.callbacks.History)
    assert model_fingerprint(model) == REFERENCE[case_key(*case)], f"{case_key(*case)}: model.fit differs from the reference fit"


@pytest.mark.parametrize("case", DEMO_CASES, ids=[case_key(*c) for c in DEMO_CASES])
def test_model_fit_on_tf_data_equals_the_reference_on_demo(train_sets, case):
    train = train_sets(case[0])
    fit_and_compare(case, train, tensor_dataset(train.interactions, batch_size=100))


@pytest.mark.slow
@pytest.mark.parametrize("case", ML100K_CASES, ids=[case_key(*c) for c in ML100K_CASES])
def test_model_fit_on_tf_data_equals_the_reference_on_ml100k(train_sets, case):
    train = train_sets(case[0])
    fit_and_compare(case, train, tensor_dataset(train.interactions, batch_size=8192))


def _write_tfrecord(frame: pd.DataFrame, path) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for user, item, rating, stamp in frame[["user_id", "item_id", "rating", "timestamp"]].itertuples(index=False):
            feature = {
                "user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(user).encode()])),
                "item_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(item).encode()])),
                "rating": tf.train.Feature(float_list=tf.train.FloatList(value=[float(rating)])),
                "timestamp": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(stamp)])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


@pytest.mark.parametrize("name", ["popularity", "covisit", "item_knn", "mf"])
def test_model_fit_from_a_tfrecord_file(train_sets, tmp_path, name):
    train = train_sets("demo")
    path = tmp_path / "train.tfrecord"
    _write_tfrecord(train.interactions, path)
    schema = {
        "user_id": tf.io.FixedLenFeature([], tf.string),
        "item_id": tf.io.FixedLenFeature([], tf.string),
        "rating": tf.io.FixedLenFeature([], tf.float32),
        "timestamp": tf.io.FixedLenFeature([], tf.int64),
    }
    dataset = tf.data.TFRecordDataset(str(path)).batch(64).map(lambda rows: tf.io.parse_example(rows, schema))
    fit_and_compare(next(case for case in DEMO_CASES if case[1] == name), train, dataset)


@pytest.mark.parametrize("name", ["popularity", "tfidf", "user_knn", "two_tower"])
def test_model_fit_from_make_csv_dataset(train_sets, tmp_path, name):
    """Numeric ids come out of make_csv_dataset as integers: fit reads them as their text."""
    train = train_sets("demo")
    path = tmp_path / "ratings.csv"
    train.interactions.to_csv(path, index=False)
    dataset = tf.data.experimental.make_csv_dataset(str(path), batch_size=50, num_epochs=1, shuffle=False)
    assert dataset.element_spec["user_id"].dtype.is_integer
    fit_and_compare(("demo", name, {}), train, dataset)


def test_rows_without_rating_or_timestamp_are_read_in_row_order(train_sets):
    """Unbatched rows are batched; no rating means 1.0; no timestamp means row order."""
    train = train_sets("demo")
    frame = train.interactions
    rows = tf.data.Dataset.from_tensor_slices({"user_id": frame["user_id"].to_numpy(str), "item_id": frame["item_id"].to_numpy(str)})
    model = make_model("covisit")
    model.fit(rows, verbose=0)
    reference = make_model("covisit")
    ordered = frame.assign(rating=1.0, timestamp=np.arange(len(frame)))
    reference.fit(tensor_dataset(ordered, batch_size=1000), verbose=0)
    for mine, theirs in zip(model.weights, reference.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.name)


def _rows(**columns) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(columns).batch(2)


@pytest.mark.parametrize(
    "dataset, message",
    [
        (lambda: _rows(user=["a"], item_id=["b"]), "no 'user_id' column"),
        (lambda: _rows(user_id=[1.5], item_id=["b"]), "'user_id' must be string"),
        (lambda: _rows(user_id=["a"], item_id=["b"], timestamp=[1.5]), "'timestamp' must be an integer"),
        (lambda: _rows(user_id=["a"], item_id=["b"], rating=["x"]), "'rating' must be a number"),
        (lambda: tf.data.Dataset.from_tensor_slices((["a"], ["b"])), "dicts of columns"),
        (lambda: _rows(user_id=["a"], item_id=["b"]).repeat(), "repeats forever"),
        (lambda: pd.DataFrame({"user_id": ["a"], "item_id": ["b"]}), "expects a tf.data.Dataset"),
    ],
    ids=["missing-key", "float-ids", "float-timestamp", "string-rating", "tuples", "infinite", "dataframe"],
)
def test_a_dataset_fit_cannot_read_gives_one_clear_error(dataset, message):
    with pytest.raises(DatasetSpecError, match=message):
        make_model("popularity").fit(dataset(), verbose=0)


def test_bad_rows_and_arguments_give_clear_errors():
    model = make_model("popularity")
    with pytest.raises(ValueError, match="empty user_id"):
        model.fit(_rows(user_id=["a", ""], item_id=["b", "c"]), verbose=0)
    with pytest.raises(ValueError, match="not a finite number"):
        model.fit(_rows(user_id=["a", "b"], item_id=["b", "c"], rating=[1.0, np.inf]), verbose=0)
    with pytest.raises(ValueError, match="no interactions"):
        model.fit(_rows(user_id=["a"], item_id=["b"]).take(0), verbose=0)
    with pytest.raises(TypeError, match="no use for y, validation_split"):
        model.fit(_rows(user_id=["a"], item_id=["b"]), [1.0], validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="one pass"):
        model.fit(_rows(user_id=["a"], item_id=["b"]), epochs=3, verbose=0)
    with pytest.raises(ValueError, match="catalog"):
        make_model("tfidf").fit(_rows(user_id=["a"], item_id=["b"]), verbose=0)
    with pytest.raises(ValueError, match="model's parameter"):
        make_model("mf").fit(_rows(user_id=["a"], item_id=["b"]), batch_size=32, verbose=0)


class Recorder(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0
        self.fitted_at_epoch_end = None

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        if hasattr(self.model, "is_fitted"):
            self.fitted_at_epoch_end = bool(self.model.is_fitted.numpy())


def test_callbacks_see_the_adapt_pass_of_a_fixed_weight_model(train_sets, tmp_path):
    train = train_sets("demo")
    recorder = Recorder()
    board = keras.callbacks.TensorBoard(log_dir=str(tmp_path / "run"), write_graph=False)
    model = make_model("item_knn")
    history = model.fit(train, callbacks=[recorder, board], batch_size=100, verbose=0)
    assert recorder.batches == -(-len(train.interactions) // 100)
    assert recorder.fitted_at_epoch_end, "callbacks must see the finalized model at the end of the epoch"
    assert history.history["interactions"] == [len(train.interactions)]
    tags = set()
    for event_file in (tmp_path / "run").rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    assert {"knn/neighbour_similarity", "popularity/top_items"} <= tags, sorted(tags)


def test_a_trained_model_takes_keras_callbacks_and_epochs(train_sets):
    train = train_sets("demo")
    recorder = Recorder()
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=100)
    model = make_model("mf", epochs=40, validation_fraction=0.0)
    history = model.fit(train, epochs=3, callbacks=[recorder, stopper], verbose=0)
    assert len(history.history["loss"]) == 3, "epochs= of fit bounds the training epochs"
    assert recorder.batches >= 3
    assert isinstance(stopper.model, keras.Model) and stopper.model is not model, "callbacks watch the network being trained"
    assert model.get_config()["epochs"] == 40, "fit's epochs= does not change the model's configuration"


def test_covisit_streams_sessions_from_tf_data(train_sets):
    """Sessions as a tf.data pipeline of rows give the model the DataFrame's sessions give."""
    train = train_sets("demo")
    assert train.sessions is not None
    frame = train.sessions.sample(frac=1.0, random_state=0)  # any order: the model sorts by (session, position)
    columns = {
        "session_id": frame["session_id"].to_numpy(np.int64),
        "item_id": frame["item_id"].to_numpy(str),
        "position": frame["position"].to_numpy(np.int32),
        "timestamp": frame["timestamp"].to_numpy(np.int64),
    }
    rows = tf.data.Dataset.from_tensor_slices(columns)
    streamed = make_model("covisit")
    streamed.fit(train, sessions=rows, verbose=0)
    assert model_fingerprint(streamed) == REFERENCE[case_key("demo", "covisit", {})]
    with pytest.raises(DatasetSpecError, match="no column 'position'"):
        make_model("covisit").fit(train, sessions=rows.map(lambda r: {"session_id": r["session_id"], "item_id": r["item_id"]}), verbose=0)


def test_model_checkpoint_saves_the_fitted_weights_of_a_fixed_weight_model(train_sets, tmp_path):
    train = train_sets("demo")
    model = make_model("item_knn")
    model.fit(train, callbacks=[keras.callbacks.ModelCheckpoint(str(tmp_path / "weights"), save_weights_only=True)], verbose=0)
    other = make_model("item_knn")
    other.fit(train.with_interactions(train.interactions.iloc[:40]), verbose=0)  # other data, other sizes
    other.load_weights(str(tmp_path / "weights"))
    for mine, theirs in zip(model.weights, other.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.name)
    users = tf.constant(model.users.ids.numpy()[1:6])
    empty = tf.zeros([5, 0], tf.string)
    a, b = model.serve_recommend(users, empty, tf.constant(5)), other.serve_recommend(users, empty, tf.constant(5))
    np.testing.assert_array_equal(a["item_ids"].numpy(), b["item_ids"].numpy())


def test_backup_and_restore_works_on_a_trained_model(train_sets, tmp_path):
    model = make_model("two_tower", epochs=2)
    history = model.fit(train_sets("demo"), callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))], verbose=0)
    assert history.history["loss"], "the network trained"


def test_the_short_names_the_docs_use_exist():
    import tfrec
    from tfrec.export import export_model
    from tfrec.training import fit

    assert tfrec.fit is fit and tfrec.make_model is make_model and tfrec.export_model is export_model
    with pytest.raises(AttributeError, match="no attribute 'fitt'"):
        tfrec.fitt  # noqa: B018
