"""Serving inputs: ids pass through unchanged, non-string ids are refused by position,
the signatures' checks run first, large batches are served in bounded chunks, and a
seeded fuzz of the raw signatures of every model."""
from __future__ import annotations

import numpy as np
import pytest

from tfrec._keras import tf
from tfrec.models import MODELS, make_model
from tfrec.serving import ServedModel
from tfrec.training import fit

NAMES = sorted(MODELS)
CASES_PER_MODEL = 40


def test_a_trailing_nul_is_part_of_the_id(fitted):
    model = fitted.model("popularity")
    served = ServedModel.from_model(model)
    k = served.n_items
    raw = model.serving_functions()["recommend"](user_id=tf.constant(["0\x00"]), history=tf.zeros([1, 0], tf.string), k=tf.constant(k))
    ids, scores = served.recommend(["0\x00"], k=k)
    np.testing.assert_array_equal(ids, raw["item_ids"].numpy().astype(str))
    np.testing.assert_array_equal(scores, raw["scores"].numpy())
    user_0, _ = served.recommend(["0"], k=k)
    assert (ids == "").sum() == 0 and (user_0 == "").sum() > 0, "user '0\\x00' must be unknown (nothing excluded), unlike user '0'"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.recommend(["0"], history=[["1", None]], k=3), r"history\[0\]\[1\] must be a string id, got NoneType None"),
        (lambda s: s.recommend(["0", "1"], history=[[], [5]], k=3), r"history\[1\]\[0\] must be a string id, got int 5"),
        (lambda s: s.recommend(["0"], history=[7], k=3), r"history\[0\] must be a list of item ids, not int 7"),
        (lambda s: s.recommend(["0", None], k=3), r"user_ids\[1\] must be a string id, got NoneType None"),
        (lambda s: s.score(["0", "1"], ["1", 2.0]), r"item_ids\[1\] must be a string id, got float 2.0"),
        (lambda s: s.similar_items([np.int64(3)], k=2), r"item_ids\[0\] must be a string id, got int64 3"),
        (lambda s: s.recommend([["0"]], k=3), r"user_ids must be a flat list of string ids; user_ids\[0\] is a list"),
    ],
)
def test_non_string_ids_are_refused_naming_the_position(fitted, call, message):
    with pytest.raises(ValueError, match=message):
        call(ServedModel.from_model(fitted.model("item_knn")))


@pytest.mark.parametrize("name", NAMES)
def test_signature_checks_run_before_the_computation(fitted, name):
    functions = fitted.model(name).serving_functions()
    with pytest.raises(tf.errors.InvalidArgumentError, match="history must have one row per user_id"):
        functions["recommend"](user_id=tf.constant(["0", "1"]), history=tf.constant([["1", "2"]]), k=tf.constant(2))
    with pytest.raises(tf.errors.InvalidArgumentError, match="user_id and item_id must have the same length"):
        functions["score"](user_id=tf.constant(["0", "1"]), item_id=tf.constant(["1", "2", "3"]))
    if "similar_items" in functions:
        for k in (-1, 0):
            with pytest.raises(tf.errors.InvalidArgumentError, match="k must be at least 1"):
                functions["similar_items"](item_id=tf.constant(["1"]), k=tf.constant(k))


def test_a_batch_larger_than_a_chunk_is_served_in_chunks_with_the_same_results(demo_split, monkeypatch):
    model = fit(make_model("mf", feedback="implicit"), demo_split.train, verbose=0).model  # fresh: its signatures are not traced yet
    model.SERVING_CHUNK, model.SERVING_CHUNK_ENTRIES = 3, 4  # recommend with 2-item histories: 2 users per chunk; score: 3 pairs
    score_candidates, score_pairs = model.score_candidates, model.score_pairs

    def bounded(compute, max_rows, max_entries):
        def checked(user_idx, other_idx):
            rows = tf.shape(user_idx)[0]
            entries = rows * tf.maximum(tf.shape(tf.reshape(other_idx, [rows, -1]))[1], 1)
            checks = [tf.debugging.assert_less_equal(rows, max_rows, message="more rows than one chunk at once"),
                      tf.debugging.assert_less_equal(entries, max_entries, message="more history entries than one chunk at once")]
            with tf.control_dependencies(checks):
                return tf.identity(compute(user_idx, other_idx))
        return checked

    monkeypatch.setattr(model, "score_candidates", bounded(score_candidates, 3, 4))
    monkeypatch.setattr(model, "score_pairs", bounded(score_pairs, 3, 3))
    users = tf.constant(["0", "1", "2", "new-a", "3", "4", "new-b", "5"])
    history = tf.constant([["1", "2"], ["", ""], ["3", ""], ["4", "5"], ["", ""], ["6", "7"], ["", ""], ["8", "9"]])
    whole = model.serve_recommend(users, history, tf.constant(6))
    for start in range(0, 8, 2):
        part = model.serve_recommend(users[start : start + 2], history[start : start + 2], tf.constant(6))
        for key in ("item_ids", "scores"):
            np.testing.assert_array_equal(whole[key].numpy()[start : start + 2], part[key].numpy(), err_msg=key)
    users, items = users[:7], tf.constant(["1", "2", "3", "4", "5", "6", "7"])
    scores = model.serve_score(users, items)["score"].numpy()
    parts = [model.serve_score(users[s : s + 3], items[s : s + 3])["score"].numpy() for s in range(0, 7, 3)]
    np.testing.assert_array_equal(scores, np.concatenate(parts))


# ----------------------------------------------------------------------------- fuzz
READABLE = {
    "empty_user": "user_id must be non-empty strings",
    "empty_item": "item_id must be non-empty strings",
    "k_small": "k must be at least 1",
    "k_large": "k is larger than the number of items",
    "rows": "history must have one row per user_id",
    "length": "user_id and item_id must have the same length",
}


class _Fuzz:
    def __init__(self, model, rng: np.random.Generator):
        self.model, self.rng = model, rng
        self.users = [u.decode() for u in model.users.ids.numpy()[1:]]
        self.items = [i.decode() for i in model.items.ids.numpy()[1:]]
        self.n_items = len(self.items)
        splits, indices = model.user_items.row_splits.numpy(), model.user_items.item_indices.numpy()
        item_ids = model.items.ids.numpy()
        self.seen = {u: {item_ids[j].decode() for j in indices[splits[i + 1] : splits[i + 2]]} for i, u in enumerate(self.users)}

    def ids(self, pool: list[str], n: int) -> list[str]:
        odd = ["", "unknown", "é✓", "\x00", f"{pool[0]}\x00", " " + pool[0], "x" * 300]
        return [str(self.rng.choice(odd)) if self.rng.random() < 0.25 else str(self.rng.choice(pool)) for _ in range(n)]

    def k(self) -> int:
        return int(self.rng.choice([0, -1, -(2**31), 1, 2, 5, self.n_items, self.n_items + 1, 2**31 - 1]))


def _expect_readable(error: tf.errors.InvalidArgumentError, expected: list[str]) -> None:
    assert expected, f"a valid call failed: {error.message[-500:]}"
    assert any(READABLE[e] in error.message for e in expected), f"unreadable error for {expected}: {error.message[-500:]}"


def _check_top_k(out: dict, rows: int, k: int, excluded: list[set[str]], known: set[str]) -> None:
    ids = out["item_ids"].numpy().astype(object)
    assert ids.shape == (rows, k) and out["scores"].numpy().shape == (rows, k)
    for row, banned in zip(ids, excluded):
        got = {i.decode() for i in row} - {""}
        assert not got & banned, f"recommended an excluded item: {got & banned}"
        assert got <= known


@pytest.mark.parametrize("name", NAMES)
def test_fuzz_raw_signatures(fitted, name):
    model = fitted.model(name)
    functions = model.serving_functions()
    fuzz = _Fuzz(model, np.random.default_rng(sum(map(ord, name))))
    known_items = set(fuzz.items)
    for case in range(CASES_PER_MODEL):
        batch, width = int(fuzz.rng.integers(0, 6)), int(fuzz.rng.integers(0, 5))
        history_rows = batch if fuzz.rng.random() < 0.85 else int(fuzz.rng.integers(0, 6))
        users, k = fuzz.ids(fuzz.users, batch), fuzz.k()
        history = [fuzz.ids(fuzz.items + [""] * 3, width) for _ in range(history_rows)]
        if case % 10 == 9:  # a wrong dtype: refused when binding the inputs, naming them
            with pytest.raises((TypeError, ValueError), match="user_id"):
                functions["recommend"](user_id=tf.constant(np.arange(batch, dtype=np.int32)), history=tf.zeros([batch, 0], tf.string), k=tf.constant(k))
            continue
        expected = [key for key, bad in [
            ("empty_user", "" in users), ("k_small", k < 1), ("k_large", k > fuzz.n_items), ("rows", history_rows != batch),
        ] if bad]
        try:
            out = functions["recommend"](user_id=tf.constant(users, tf.string, shape=[batch]),
                                         history=tf.constant(history, tf.string, shape=[history_rows, width]), k=tf.constant(k, tf.int32))
        except tf.errors.InvalidArgumentError as error:
            _expect_readable(error, expected)
        else:
            assert not expected, f"the call should have failed with {expected}"
            excluded = [fuzz.seen.get(u, set()) | set(h) for u, h in zip(users, history)]
            _check_top_k(out, batch, k, excluded, known_items)

        items = fuzz.ids(fuzz.items, batch if fuzz.rng.random() < 0.85 else int(fuzz.rng.integers(0, 6)))
        expected = [key for key, bad in [("empty_user", "" in users), ("empty_item", "" in items), ("length", len(items) != batch)] if bad]
        try:
            out = functions["score"](user_id=tf.constant(users, tf.string, shape=[batch]), item_id=tf.constant(items, tf.string, shape=[len(items)]))
        except tf.errors.InvalidArgumentError as error:
            _expect_readable(error, expected)
        else:
            assert not expected and out["score"].numpy().shape == (batch,)
            assert np.isfinite(out["score"].numpy()).all()

        if "similar_items" in functions:
            items = fuzz.ids(fuzz.items, batch)
            expected = [key for key, bad in [("empty_item", "" in items), ("k_small", k < 1), ("k_large", k > fuzz.n_items)] if bad]
            try:
                out = functions["similar_items"](item_id=tf.constant(items, tf.string, shape=[batch]), k=tf.constant(k, tf.int32))
            except tf.errors.InvalidArgumentError as error:
                _expect_readable(error, expected)
            else:
                assert not expected
                _check_top_k(out, batch, k, [{item} for item in items], known_items)
