"""Matrix factorization (``mf``): fold-in against numpy, learning, determinism, resume, errors.

ML-100K quality (protocol R RMSE, protocol T ranking) takes minutes: it is measured by
``scripts/train_mf.py`` and reported there, not here.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfrec._keras import tf
from tfrec.evaluation import evaluate
from tfrec.layers.fold_in import ridge_fold_in
from tfrec.models.mf import MatrixFactorization
from tfrec.serving import ServedModel
from tfrec.training import fit


def numpy_ridge(factors, history, targets, l2, exponent, gram=None):
    """p = (Q_H^T Q_H + G + l2 * max(|H|, 1)^exponent I)^-1 Q_H^T y, one user at a time."""
    rows = []
    for items, y in zip(history, targets):
        valid = items > 0
        q = factors[items[valid]]
        normal = q.T @ q + l2 * max(valid.sum(), 1) ** exponent * np.eye(factors.shape[1])
        if gram is not None:
            normal += gram
        rows.append(np.linalg.solve(normal, q.T @ y[valid]))
    return np.array(rows)


@pytest.mark.parametrize("exponent, with_gram", [(0.5, False), (1.0, True)])
def test_ridge_fold_in_equals_numpy(exponent, with_gram):
    rng = np.random.default_rng(0)
    factors = rng.normal(size=(30, 6))
    factors[0] = 0.0
    history = np.array([[3, 7, 7, 0, 12], [0, 0, 0, 0, 0], [29, 1, 2, 3, 4], [5, 0, 9, 0, 0]])
    targets = rng.normal(size=history.shape)
    gram = 0.3 * factors.T @ factors if with_gram else None
    got = ridge_fold_in(
        tf.constant(factors, tf.float32),
        tf.constant(history, tf.int64),
        tf.constant(targets, tf.float32),
        l2=0.7,
        exponent=exponent,
        gram=None if gram is None else tf.constant(gram, tf.float32),
    ).numpy()
    np.testing.assert_allclose(got, numpy_ridge(factors, history, targets, 0.7, exponent, gram), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(got[1], 0.0)  # no history: the zero vector


@pytest.fixture(scope="module")
def models(demo_split):
    return {feedback: fit(MatrixFactorization(feedback=feedback), demo_split.train, verbose=0).model for feedback in MatrixFactorization.FEEDBACK}


@pytest.mark.parametrize("feedback", MatrixFactorization.FEEDBACK)
def test_unknown_user_is_folded_in_from_history(models, feedback):
    model = models[feedback]
    history_ids = ["3", "17", "42", "not-an-item"]
    history = model.items.lookup(tf.constant([history_ids])).numpy()
    q = model.item_factors.numpy()
    if feedback == "explicit":
        r_max, mu = model.rating_range.numpy()[2], model.global_mean.numpy()
        targets = r_max - mu - model.item_bias.numpy()[history]
        p = numpy_ridge(q, history, targets, model.l2_, 0.5)
        expected = p @ q.T + mu + model.item_bias.numpy()[np.newaxis, :]
    else:
        p = numpy_ridge(q, history, np.ones(history.shape), model.l2_, 1.0, model.fold_in_gram.numpy())
        expected = p @ q.T
    got = model.score_candidates(tf.constant([0], tf.int64), tf.constant(history)).numpy()
    np.testing.assert_allclose(got[:, 1:], expected[:, 1:], rtol=1e-4, atol=1e-4)
    # Served: the top 5 of those scores, history items excluded.
    ids, scores = ServedModel.from_model(model).recommend(["a-new-user"], history=[history_ids], k=5)
    ranked = [i for i in np.argsort(-expected[0, 1:], kind="stable") + 1 if i not in set(history[0])][:5]
    np.testing.assert_array_equal(ids[0], model.items.ids_of(tf.constant(ranked)).numpy().astype(str))
    np.testing.assert_allclose(scores[0], expected[0, ranked], rtol=1e-4, atol=1e-4)


def test_explicit_rating_of_an_unknown_user_or_item_is_the_known_sides_baseline(models):
    model = models["explicit"]
    mu, b_u, b_i = model.global_mean.numpy(), model.user_bias.numpy(), model.item_bias.numpy()
    low, high = model.rating_range.numpy()[[0, 2]]
    user, item = model.users.ids.numpy()[1].decode(), model.items.ids.numpy()[1].decode()
    got = ServedModel.from_model(model).score([user, "new-user", "new-user"], ["new-item", item, "new-item"])
    expected = np.clip([mu + b_u[1], mu + b_i[1], mu], low, high)
    assert abs(b_u[1]) > 1e-4 and abs(b_i[1]) > 1e-4
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.fixture(scope="module")
def small_synthetic():
    from tfrec.data import make_synthetic

    return make_synthetic(4000, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("solver", MatrixFactorization.SOLVERS)
def test_explicit_predicts_ratings_better_than_the_mean(small_synthetic, solver):
    from tfrec.data import make_split

    split = make_split(small_synthetic, "temporal")
    model = fit(MatrixFactorization(solver=solver), split.train, verbose=0).model
    served = ServedModel.from_model(model)
    assert served.metadata["predicts_ratings"]
    baseline = np.sqrt(np.mean((split.test["rating"].to_numpy() - split.train.interactions["rating"].mean()) ** 2))
    assert evaluate(served, split)["rmse"] < 0.97 * baseline
    low, _, high = model.rating_range.numpy()
    predictions = served.score(list(split.test["user_id"]), list(split.test["item_id"]))
    assert predictions.min() >= low and predictions.max() <= high


def test_implicit_ranks_better_than_popularity(models, demo_split):
    from tfrec.models import make_model

    popularity = fit(make_model("popularity"), demo_split.train, verbose=0).model
    implicit = evaluate(ServedModel.from_model(models["implicit"]), demo_split)
    baseline = evaluate(ServedModel.from_model(popularity), demo_split)
    assert not ServedModel.from_model(models["implicit"]).metadata["predicts_ratings"]
    assert implicit["ndcg@10"] > baseline["ndcg@10"]


@pytest.mark.parametrize("feedback", MatrixFactorization.FEEDBACK)
@pytest.mark.slow
def test_early_stopping_and_refit_are_deterministic(small_synthetic, feedback):
    # 4,000 interactions: a 200-example validation slice, so early stopping and refit run.
    runs = [fit(MatrixFactorization(feedback=feedback, solver="adam", epochs=6, patience=2), small_synthetic, verbose=0) for _ in range(2)]
    assert "best_epoch" in runs[0].history and "refit_loss" in runs[0].history
    assert len(runs[0].history["refit_loss"]) == runs[0].history["best_epoch"][0]
    for a, b in zip(runs[0].model.weights, runs[1].model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


def test_als_solver_ranks_better_than_popularity(demo_split):
    from tfrec.models import make_model

    result = fit(MatrixFactorization(feedback="implicit", solver="als", epochs=6), demo_split.train, verbose=0)
    objective = result.history["objective"]
    assert len(objective) == 6 and np.all(np.diff(objective) < 0), objective  # one sweep per epoch, each lowers it
    model = result.model
    items = model.item_factors.numpy()[1:]
    np.testing.assert_allclose(model.fold_in_gram.numpy(), 0.02 * _mean_user_count(model, demo_split) * items.T @ items, rtol=1e-4, atol=1e-6)
    assert np.all(model.user_factors.numpy()[0] == 0) and np.all(model.item_factors.numpy()[0] == 0)
    popularity = fit(make_model("popularity"), demo_split.train, verbose=0).model
    als = evaluate(ServedModel.from_model(model), demo_split)
    assert als["ndcg@10"] > evaluate(ServedModel.from_model(popularity), demo_split)["ndcg@10"]


def _mean_user_count(model, split) -> float:
    counts = split.train.interactions["user_id"].value_counts()
    return float(counts.sum() / len(counts))


@pytest.mark.slow
@pytest.mark.parametrize("feedback", ["explicit", "implicit"])
def test_als_early_stopping_and_refit_are_deterministic(small_synthetic, feedback):
    runs = [
        fit(MatrixFactorization(feedback=feedback, solver="als", epochs=6, patience=2, validation_fraction=0.05), small_synthetic, verbose=0)
        for _ in range(2)
    ]
    history = runs[0].history
    assert ("val_rmse" if feedback == "explicit" else "val_hit_rate_at_10") in history
    assert "best_epoch" in history and "refit_loss" in history
    assert len(history["refit_loss"]) == history["best_epoch"][0]
    assert np.all(np.diff(history["refit_loss"]) < 0)
    for a, b in zip(runs[0].model.weights, runs[1].model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)


@pytest.mark.slow
def test_interrupted_fit_resumes_from_its_checkpoint(demo_split, tmp_path):
    folder = tmp_path / "checkpoints"
    fit(MatrixFactorization(epochs=3), demo_split.train, verbose=0, checkpoint_dir=folder)  # "interrupted" after 3 epochs
    state = json.loads((folder / "search" / "state.json").read_text())
    assert state["epoch"] == 3
    resumed = fit(MatrixFactorization(epochs=7), demo_split.train, verbose=0, checkpoint_dir=folder).model
    assert json.loads((folder / "search" / "state.json").read_text())["epoch"] == 7
    straight = fit(MatrixFactorization(epochs=7), demo_split.train, verbose=0).model
    for a, b in zip(resumed.weights, straight.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.name)
    with pytest.raises(ValueError, match="another model"):
        fit(MatrixFactorization(epochs=7, factors=8), demo_split.train, verbose=0, checkpoint_dir=folder)


def test_tensorboard_run_has_curves_and_projector(demo_split, tmp_path):
    result = fit(MatrixFactorization(epochs=2), demo_split.train, verbose=0, logdir=tmp_path)
    run = result.run_dir
    lines = (run / "metadata.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "title\tcategory" and len(lines) == result.model.items.size and lines[1].startswith("Item_")
    assert "metadata.tsv" in (run / "projector_config.pbtxt").read_text()
    assert list(run.glob("embeddings.ckpt-*.index"))
    assert list((run / "train").glob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"feedback": "ratings"}, "feedback must be one of"),
        ({"factors": 0}, "factors"),
        ({"l2": -1.0}, "l2"),
        ({"validation_fraction": 0.7}, "validation_fraction"),
        ({"epochs": 0}, "epochs"),
        ({"refit": "yes"}, "refit"),
        ({"solver": "sgd"}, "solver must be one of"),
    ],
)
def test_bad_parameters_are_refused_at_fit(demo_split, params, match):
    with pytest.raises(ValueError, match=match):
        fit(MatrixFactorization(**params), demo_split.train, verbose=0)


def test_unknown_training_option_is_refused(demo_split):
    with pytest.raises(TypeError, match="checkpoint_dir"):
        fit(MatrixFactorization(epochs=1), demo_split.train, verbose=0, epochz=3)


def test_large_data_schedule_keeps_the_best_weights_and_validates_within_a_pass(small_synthetic):
    """Above REFIT_BELOW examples there is no refit (the search's best weights are kept);
    epochs are capped at MAX_EPOCH_EXAMPLES examples. Both thresholds lowered to this data."""
    from tfrec._keras import keras

    class Steps(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.count = 0

        def on_train_batch_end(self, batch, logs=None):
            self.count = batch + 1  # Keras reports every steps_per_execution-th step

    small = MatrixFactorization(solver="adam", feedback="implicit", epochs=3, batch_size=256, validation_fraction=0.05)
    large = MatrixFactorization(solver="adam", feedback="implicit", epochs=3, batch_size=256, validation_fraction=0.05)
    large.REFIT_BELOW, large.MAX_EPOCH_EXAMPLES = 1000, 1000
    steps = Steps()
    refitted = fit(small, small_synthetic, verbose=0).history
    kept = fit(large, small_synthetic, verbose=0, callbacks=[steps]).history
    assert "refit_loss" in refitted and "best_epoch" in refitted
    assert "refit_loss" not in kept and "best_epoch" in kept
    assert steps.count == 4  # ceil(1000 / 256) batches per epoch, not a pass over ~3,800 examples
    assert len(kept["loss"]) == 3
