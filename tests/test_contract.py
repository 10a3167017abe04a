"""The contract every tfrec model passes (after implicit's shared test mixin).

Fit on the demo data, recommend, exclusion of seen items, unknown ids, k per request,
export, reload, identical outputs after reload, get_config round trip, deterministic
refit, clear errors for bad input.
"""
from __future__ import annotations

import numpy as np
import pytest

from tfrec._keras import tf
from tfrec.models import MODELS, make_model, model_class
from tfrec.training import fit

NAMES = sorted(MODELS)


def _known_users(fitted, n=8):
    return [u.decode() for u in fitted.model(NAMES[0]).users.ids.numpy()[1 : n + 1]]


def _train_items(split, user):
    frame = split.train.interactions
    return set(frame.loc[frame["user_id"] == user, "item_id"])


@pytest.mark.parametrize("name", NAMES)
def test_recommend_shapes_order_and_exclusion(fitted, name):
    memory, _, _ = fitted.exported(name)
    users = _known_users(fitted)
    ids, scores = memory.recommend(users, k=10)
    assert ids.shape == (len(users), 10) and scores.shape == (len(users), 10)
    assert np.all(np.diff(scores, axis=1) <= 0), "scores must not increase down the list"
    for user, row in zip(users, ids):
        row = [i for i in row if i]
        assert len(row) == len(set(row)), "an item recommended twice"
        assert not set(row) & _train_items(fitted.split, user), "a training item was recommended"
        assert set(row) <= set(memory.catalog["item_id"])


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_single_and_k_is_per_request(fitted, name):
    memory, _, _ = fitted.exported(name)
    users = _known_users(fitted, 5)
    batch_ids, batch_scores = memory.recommend(users, k=7)
    for row, user in enumerate(users):
        ids, scores = memory.recommend([user], k=7)
        np.testing.assert_array_equal(ids[0], batch_ids[row])
        np.testing.assert_allclose(scores[0], batch_scores[row], rtol=1e-6)
    short_ids, _ = memory.recommend(users, k=3)
    np.testing.assert_array_equal(short_ids, batch_ids[:, :3])


@pytest.mark.parametrize("name", NAMES)
def test_unknown_user_gets_fallback_and_history_is_excluded(fitted, name):
    memory, _, _ = fitted.exported(name)
    ids, scores = memory.recommend(["no-such-user"], k=5)
    assert all(ids[0]) and np.all(np.isfinite(scores[0]))
    history = list(ids[0][:2])
    ids_h, _ = memory.recommend(["no-such-user"], history=[history], k=5)
    assert not set(ids_h[0]) & set(history)
    ids_x, _ = memory.recommend(["no-such-user"], history=[["no-such-item"]], k=5)
    assert all(ids_x[0])


@pytest.mark.parametrize("name", NAMES)
def test_export_reload_gives_identical_outputs(fitted, name):
    memory, loaded, path = fitted.exported(name)
    assert path.name.isdigit() and (path / "saved_model.pb").is_file()
    users = _known_users(fitted) + ["no-such-user"]
    for k in (1, 10):
        a_ids, a_scores = memory.recommend(users, k=k)
        b_ids, b_scores = loaded.recommend(users, k=k)
        np.testing.assert_array_equal(a_ids, b_ids)
        np.testing.assert_array_equal(a_scores, b_scores)
    items = list(memory.catalog["item_id"][: len(users)])
    np.testing.assert_array_equal(memory.score(users, items), loaded.score(users, items))
    assert loaded.signatures == memory.signatures
    if "similar_items" in memory.signatures:
        a_ids, a_scores = memory.similar_items(items, k=5)
        b_ids, b_scores = loaded.similar_items(items, k=5)
        np.testing.assert_array_equal(a_ids, b_ids)
        np.testing.assert_array_equal(a_scores, b_scores)
        for item, row in zip(items, a_ids):
            assert item not in row, "similar_items returned the query item"


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip_and_deterministic_refit(fitted, name):
    model = fitted.model(name)
    config = model.get_config()
    clone = model_class(name).from_config(config)
    assert clone.get_config() == config
    fit(clone, fitted.split.train, verbose=0)
    assert len(clone.weights) == len(model.weights)
    for mine, theirs in zip(model.weights, clone.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=mine.name)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_gives_clear_errors(fitted, name):
    memory, loaded, _ = fitted.exported(name)
    user = _known_users(fitted, 1)
    with pytest.raises(ValueError, match="at least 1"):
        memory.recommend(user, k=0)
    with pytest.raises(ValueError, match="larger than"):
        loaded.recommend(user, k=memory.n_items + 1)
    with pytest.raises(ValueError, match="non-empty"):
        loaded.recommend([""], k=3)
    with pytest.raises(ValueError, match="string ids"):
        loaded.recommend([7], k=3)
    with pytest.raises(ValueError, match="integer"):
        loaded.recommend(user, k=2.5)
    # The exported signature checks too, for callers that bypass the Python wrapper.
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be at least 1"):
        loaded._functions["recommend"](user_id=tf.constant(user), history=tf.zeros([1, 0], tf.string), k=tf.constant(0))


def test_unfitted_model_is_refused(tmp_path):
    from tfrec.export import export_model
    from tfrec.serving import ServedModel

    model = make_model(NAMES[0])
    with pytest.raises(ValueError, match="fit"):
        export_model(model, tmp_path)
    with pytest.raises(ValueError, match="not fitted"):
        ServedModel.from_model(model)
