"""tf.data pipelines: batch shapes, dtypes, values, seeded shuffling, session order."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from tfrec._keras import tf
from tfrec.data import interactions_dataset, load_demo, make_synthetic, sessions_dataset


@pytest.fixture(scope="module")
def demo():
    return load_demo()


def _collect(ds) -> dict[str, np.ndarray]:
    batches = list(ds.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_interactions_batches_and_dtypes(demo):
    ds = interactions_dataset(demo, batch_size=100)
    spec = ds.element_spec
    assert set(spec) == {"user_id", "item_id", "rating", "timestamp"}
    assert spec["user_id"].dtype == tf.string and spec["item_id"].dtype == tf.string
    assert spec["rating"].dtype == tf.float32 and spec["timestamp"].dtype == tf.int64
    assert all(s.shape.rank == 1 for s in spec.values())
    sizes = [int(b["rating"].shape[0]) for b in ds]
    assert sizes == [100, 100, 100, 58]


def test_interactions_values_in_order(demo):
    got = _collect(interactions_dataset(demo, batch_size=64))
    inter = demo.interactions
    assert [u.decode() for u in got["user_id"]] == inter["user_id"].tolist()
    assert [i.decode() for i in got["item_id"]] == inter["item_id"].tolist()
    np.testing.assert_array_equal(got["rating"], inter["rating"].to_numpy())
    np.testing.assert_array_equal(got["timestamp"], inter["timestamp"].to_numpy())


def test_shuffle_is_seeded_and_a_permutation(demo):
    def rows(ds):
        got = _collect(ds)
        return list(zip(got["user_id"].tolist(), got["item_id"].tolist(), got["timestamp"].tolist()))

    a = interactions_dataset(demo, batch_size=50, shuffle=True, seed=3)
    first = rows(a)
    assert rows(a) == first  # the same order on every pass
    assert rows(interactions_dataset(demo, batch_size=50, shuffle=True, seed=3)) == first
    assert rows(interactions_dataset(demo, batch_size=50, shuffle=True, seed=4)) != first
    plain = rows(interactions_dataset(demo, batch_size=50))
    assert first != plain and sorted(first) == sorted(plain)
    assert rows(interactions_dataset(demo, batch_size=50, shuffle=True, seed=3, cache=False)) == first


def test_sessions_in_session_order(demo):
    ds = sessions_dataset(demo, batch_size=64)
    spec = ds.element_spec
    assert set(spec) == {"session_id", "item_id", "position", "timestamp"}
    assert spec["item_id"].dtype == tf.string and spec["session_id"].dtype == tf.int64
    got = _collect(ds)
    s = demo.sessions
    np.testing.assert_array_equal(got["session_id"], s["session_id"].to_numpy())
    np.testing.assert_array_equal(got["position"], s["position"].to_numpy())
    assert [i.decode() for i in got["item_id"]] == s["item_id"].tolist()


def test_sessions_sorted_when_rows_are_not(demo):
    shuffled = demo.sessions.sample(frac=1.0, random_state=0).reset_index(drop=True)
    data = demo.with_interactions(demo.interactions, sessions=shuffled)
    got = _collect(sessions_dataset(data, batch_size=1000))
    np.testing.assert_array_equal(got["session_id"], np.repeat(np.arange(30), 8))
    np.testing.assert_array_equal(got["position"], np.tile(np.arange(8), 30))
    assert [i.decode() for i in got["item_id"]] == demo.sessions["item_id"].tolist()


def test_sessions_derived_from_interactions():
    frame = pd.DataFrame(
        {"user_id": ["10", "2", "2", "10"], "item_id": ["5", "7", "6", "1"],
         "rating": np.ones(4, np.float32), "timestamp": np.array([3, 9, 9, 1], np.int64)}
    )
    data = load_demo().with_interactions(frame, sessions=None)
    got = _collect(sessions_dataset(data, batch_size=3))
    # user "2" before "10" (numeric id order); ties in time by item id
    np.testing.assert_array_equal(got["session_id"], [0, 0, 1, 1])
    assert [i.decode() for i in got["item_id"]] == ["6", "7", "1", "5"]
    np.testing.assert_array_equal(got["position"], [0, 1, 0, 1])


def test_larger_data_round_trips():
    data = make_synthetic(50_000, seed=2)
    got = _collect(interactions_dataset(data, batch_size=4096, shuffle=True, seed=0))
    assert len(got["rating"]) == 50_000
    assert np.isclose(got["rating"].sum(), data.interactions["rating"].sum())
    assert sorted(got["timestamp"].tolist()) == sorted(data.interactions["timestamp"].tolist())


def _epoch_rows(batches, steps: int) -> list[list[int]]:
    """The rows of each epoch of ``steps`` batches."""
    rows = [b["row"].tolist() for b in batches.as_numpy_iterator()]
    return [list(itertools.chain.from_iterable(rows[e * steps : (e + 1) * steps])) for e in range(len(rows) // steps)]


def test_epoch_batches_one_pass_per_epoch_by_default_and_resume_exactly():
    from tfrec.data.pipelines import epoch_batches

    columns = {"row": np.arange(23)}
    epochs = _epoch_rows(epoch_batches(columns, 5, seed=3, first_epoch=0, epochs=3), steps=5)
    assert len(epochs) == 3 and all(sorted(e) == list(range(23)) for e in epochs)
    assert epochs[0] != epochs[1]  # a new order every pass
    assert _epoch_rows(epoch_batches(columns, 5, seed=3, first_epoch=1, epochs=3), steps=5) == epochs[1:]


def test_epoch_batches_shorter_epochs_are_slices_of_the_same_passes():
    from tfrec.data.pipelines import epoch_batches

    columns = {"row": np.arange(23)}
    passes = list(itertools.chain.from_iterable(_epoch_rows(epoch_batches(columns, 5, seed=3, first_epoch=0, epochs=3), steps=5)))
    short = _epoch_rows(epoch_batches(columns, 5, seed=3, first_epoch=0, epochs=7, steps_per_epoch=2), steps=2)
    assert len(short) == 7
    # 2 batches per epoch; a pass is 5 batches (the last one of 3 rows), so the stream is the passes' batches in order
    stream = [b["row"].tolist() for b in epoch_batches(columns, 5, seed=3, first_epoch=0, epochs=3).as_numpy_iterator()]
    assert short == [stream[2 * e] + stream[2 * e + 1] for e in range(7)]
    assert list(itertools.chain.from_iterable(short)) == passes[: sum(len(e) for e in short)]
    resumed = _epoch_rows(epoch_batches(columns, 5, seed=3, first_epoch=4, epochs=7, steps_per_epoch=2), steps=2)
    assert resumed == short[4:]


def test_validation_slice_is_bounded():
    from tfrec.data.pipelines import split_validation

    train, val = split_validation(1000, 0.1, seed=0)
    assert len(val) == 100 and len(train) == 900
    train_capped, val_capped = split_validation(1000, 0.1, seed=0, max_rows=30)
    assert len(val_capped) == 30 and set(val_capped) <= set(val)  # the first rows of the same draw
    assert sorted([*train_capped, *val_capped]) == list(range(1000))
