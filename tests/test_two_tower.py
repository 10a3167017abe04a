"""Two-tower retrieval (``two_tower``): features, history, towers against numpy, logQ, resume.

ML-100K quality (protocol T) and throughput against the TFRS tutorial take minutes: see
``scripts/train_two_tower.py`` and ``scripts/bench_two_tower.py``.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tfrec._keras import tf
from tfrec.models.two_tower import TwoTower, item_features, previous_items, title_tokens
from tfrec.serving import ServedModel
from tfrec.training import fit


def test_title_tokens():
    assert title_tokens("Toy Story (1995)") == ["toy", "story", "1995"]
    assert title_tokens("Item_07_Category_02") == ["item", "07", "category", "02"]
    assert title_tokens("") == []


def test_previous_items_equals_a_python_loop():
    rng = np.random.default_rng(1)
    users = np.sort(rng.integers(1, 6, size=40))
    items = rng.integers(1, 30, size=40)
    got = previous_items(users, items, 4)
    for row in range(40):
        earlier = [items[r] for r in range(row) if users[r] == users[row]][::-1][:4]
        np.testing.assert_array_equal(got[row], earlier + [0] * (4 - len(earlier)))


def test_item_features_split_categories_and_keep_shared_tokens(demo):
    frame = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "title": ["Big Red Dog", "Red Planet", "Dog Day"], "text": "", "category": ["x|y", "y", ""]}
    )
    data = demo.__class__(interactions=demo.interactions, items=frame, name="tiny")
    features = item_features(data, np.array(["a", "b", "c"]), min_count=2)
    assert features.n_tokens == 3 and features.n_categories == 3  # {dog, red} + padding; {x, y} + padding
    assert (features.title_tokens[0] == 0).all() and (features.categories[0] == 0).all()
    assert sorted(features.categories[1][features.categories[1] > 0]) == [1, 2]
    assert (features.categories[3] == 0).all()
    assert np.count_nonzero(features.title_tokens[2]) == 1  # "planet" is in one title only


@pytest.fixture(scope="module")
def model(demo_split):
    return fit(TwoTower(epochs=5), demo_split.train, verbose=0).model


def test_stored_user_embeddings_serve_what_the_query_tower_computes(model):
    """Requests without history use the stored embeddings; a batch with one history runs
    the tower for every row: the users without history must get the same answer."""
    users = [u.decode() for u in model.users.ids.numpy()[1:6]]
    served = ServedModel.from_model(model)
    alone_ids, alone_scores = served.recommend(users, k=10)
    mixed_ids, mixed_scores = served.recommend(users + ["new-user"], history=[[]] * len(users) + [["5", "9"]], k=10)
    np.testing.assert_array_equal(mixed_ids[:-1], alone_ids)
    np.testing.assert_allclose(mixed_scores[:-1], alone_scores, rtol=1e-5, atol=1e-6)
    tower = model.tower_query_embeddings(tf.range(model.users.size, dtype=tf.int64), tf.zeros([model.users.size, 0], tf.int64))
    np.testing.assert_allclose(model.user_query_embeddings.numpy(), tower.numpy(), rtol=1e-6, atol=1e-7)


def test_query_history_is_training_items_then_given_history(model, demo_split):
    user = model.users.ids.numpy()[1].decode()
    train_items = model.user_items.rows(tf.constant([1], tf.int64)).numpy()[0].tolist()
    given = model.items.lookup(tf.constant([["5", "9"]])).numpy()
    got = model.query_history(tf.constant([1], tf.int64), tf.constant(given)).numpy()[0]
    expected = (train_items + given[0].tolist())[-model.history_length :]
    np.testing.assert_array_equal(got[got > 0], expected)
    unknown = model.query_history(tf.constant([0], tf.int64), tf.constant(given)).numpy()[0]
    np.testing.assert_array_equal(unknown[unknown > 0], given[0])
    assert user  # a known user id exists


def test_unknown_user_is_served_from_history_by_the_query_tower(model):
    weights = {key: v.numpy() for key, v in model.query_weights.items()}
    history_ids = ["3", "17", "42"]
    history = model.items.lookup(tf.constant([history_ids])).numpy()[0]
    x = np.concatenate([weights["user_embedding"][0], weights["history_embedding"][history].mean(axis=0)])
    for layer in range(model.depth):
        x = x @ weights[f"kernel_{layer}"] + weights[f"bias_{layer}"]
        if layer < model.depth - 1:
            x = np.maximum(x, 0)
    expected = model.candidate_embeddings.numpy() @ x
    served = ServedModel.from_model(model)
    ids, scores = served.recommend(["someone-new"], history=[history_ids], k=5)
    ranked = [i for i in np.argsort(-expected[1:], kind="stable") + 1 if i not in set(history)][:5]
    np.testing.assert_array_equal(ids[0], model.items.ids_of(tf.constant(ranked)).numpy().astype(str))
    np.testing.assert_allclose(scores[0], expected[ranked], rtol=1e-4, atol=1e-5)
    fallback, _ = served.recommend(["someone-new"], k=5)
    assert list(fallback[0]) != list(ids[0])  # not the popularity fallback


@pytest.mark.slow
def test_deeper_towers_export_and_reload(demo_split, tmp_path):
    from tfrec.export import export_model

    deep = fit(TwoTower(epochs=2, depth=2, output_dim=16, embedding_dim=8), demo_split.train, verbose=0).model
    assert deep.query_weights["kernel_0"].numpy().shape == (16, 32) and deep.query_weights["kernel_1"].numpy().shape == (32, 16)
    loaded = ServedModel.load(export_model(deep, tmp_path))
    memory = ServedModel.from_model(deep)
    users = [u.decode() for u in deep.users.ids.numpy()[1:4]] + ["new"]
    history = [[], ["1"], [], ["2", "3"]]
    np.testing.assert_array_equal(memory.recommend(users, history, k=4)[0], loaded.recommend(users, history, k=4)[0])


def _mean_popularity_of_recommendations(model, split):
    counts = split.train.interactions["item_id"].value_counts()
    users = sorted(split.test["user_id"].unique())
    ids, _ = ServedModel.from_model(model).recommend(users, k=10)
    return float(np.mean([counts.get(i, 0) for i in ids.ravel() if i]))


@pytest.mark.slow
def test_logq_correction_removes_the_bias_towards_unpopular_items():
    from tfrec.data import make_split, make_synthetic

    split = make_split(make_synthetic(20000, seed=5), "temporal")
    popularity = {}
    for logq in (True, False):
        model = fit(TwoTower(epochs=3, logq_correction=logq, validation_fraction=0.0), split.train, verbose=0).model
        popularity[logq] = _mean_popularity_of_recommendations(model, split)
    assert popularity[True] > 1.5 * popularity[False]


@pytest.mark.slow
def test_interrupted_fit_resumes_from_its_checkpoint(demo_split, tmp_path):
    folder = tmp_path / "checkpoints"
    fit(TwoTower(epochs=2), demo_split.train, verbose=0, checkpoint_dir=folder)
    assert json.loads((folder / "search" / "state.json").read_text())["epoch"] == 2
    resumed = fit(TwoTower(epochs=4), demo_split.train, verbose=0, checkpoint_dir=folder).model
    straight = fit(TwoTower(epochs=4), demo_split.train, verbose=0).model
    for a, b in zip(resumed.weights, straight.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"depth": 0}, "depth"),
        ({"temperature": 0.0}, "temperature"),
        ({"user_dropout": 1.0}, "user_dropout"),
        ({"logq_correction": "yes"}, "logq_correction"),
        ({"history_length": 0}, "history_length"),
    ],
)
def test_bad_parameters_are_refused_at_fit(demo_split, params, match):
    with pytest.raises(ValueError, match=match):
        fit(TwoTower(**params), demo_split.train, verbose=0)


@pytest.mark.parametrize("d, n", [(64, 1612), (66, 3000), (32, 500)])
def test_batch_invariant_matmul_rows_do_not_depend_on_the_batch(d, n):
    from tfrec.layers.towers import batch_invariant_matmul

    rng = np.random.default_rng(d)
    queries = tf.constant(rng.normal(size=(300, d)).astype(np.float32))
    candidates = tf.constant(rng.normal(size=(n, d)).astype(np.float32))
    full = batch_invariant_matmul(queries, candidates, transpose_b=True).numpy()
    np.testing.assert_allclose(full, queries.numpy() @ candidates.numpy().T, rtol=1e-5, atol=1e-4)
    for rows in [*range(1, 41), 299]:
        part = batch_invariant_matmul(queries[:rows], candidates, transpose_b=True).numpy()
        np.testing.assert_array_equal(part, full[:rows], err_msg=f"{rows} rows")
        single = batch_invariant_matmul(queries[rows - 1 : rows], candidates, transpose_b=True).numpy()
        np.testing.assert_array_equal(single[0], full[rows - 1], err_msg=f"row {rows - 1} alone")
