"""Content TF-IDF: tokens, vectors and cosines against scikit-learn; profiles against numpy."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer as SkTfidf
from sklearn.metrics.pairwise import cosine_similarity

from tfrec._keras import tf
from tfrec.layers.tfidf import TfidfVectorizer
from tfrec.models import make_model
from tfrec.models.tfidf import TfidfRecommender
from tfrec.training import fit

TRICKY = [
    "Café naïve ÉCOLE x_y a1 __ 1 ab-cd straße İstanbul ΣΑΣ 中文字 ١٢٣ x²y Ⅻ",
    "",
    "a b c",
    "Don't stop-me now!!! 1995 (1995) O'Brien's",
]


def _item_texts(model, data) -> list[str]:
    ids = model.items.ids.numpy()[1:].astype(str)
    catalog = data.items.drop_duplicates("item_id").set_index("item_id")["text"]
    return catalog.reindex(ids).fillna("").astype(str).tolist()


def _dense(sparse: tf.SparseTensor) -> np.ndarray:
    return tf.sparse.to_dense(sparse).numpy()


def _similarities(model) -> np.ndarray:
    n = model.items.size - 1
    blocks = [model.similar_item_scores(tf.range(start, min(start + 512, n + 1), dtype=tf.int64)).numpy() for start in range(1, n + 1, 512)]
    return np.concatenate(blocks)[:, 1:]


@pytest.fixture(scope="module")
def demo_model(demo):
    return fit(TfidfRecommender(), demo, verbose=0).model


@pytest.fixture(scope="module")
def ml100k_model(ml100k):
    return fit(TfidfRecommender(), ml100k, verbose=0).model


# ------------------------------------------------------------------ vectoriser
def test_tokens_equal_sklearn_default_analyzer(ml100k):
    texts = ml100k.items["text"].astype(str).tolist() + TRICKY
    layer = TfidfVectorizer()
    analyzer = SkTfidf().build_analyzer()
    ours = [[t.decode() for t in row] for row in layer.tokenize(tf.constant(texts)).to_list()]
    assert ours == [analyzer(t) for t in texts]


@pytest.mark.parametrize(
    "ours, theirs",
    [
        ({}, {}),
        ({"idf": "plain"}, {"smooth_idf": False}),
        ({"idf": "none"}, {"use_idf": False}),
        ({"sublinear_tf": True}, {"sublinear_tf": True}),
        ({"norm": "l1"}, {"norm": "l1"}),
        ({"norm": "none"}, {"norm": None}),
        ({"lowercase": False}, {"lowercase": False}),
        ({"min_df": 2}, {"min_df": 2}),
    ],
)
def test_vectors_equal_sklearn(demo, ours, theirs):
    texts = demo.items["text"].astype(str).tolist() + ["Action ACTION hero zzz", "nothing known here", "love love love scary"]
    layer = TfidfVectorizer(**ours)
    layer.adapt_texts(texts)
    sk = SkTfidf(**theirs).fit(texts)
    assert [w.decode() for w in layer.vocabulary.numpy()] == sk.get_feature_names_out().tolist()
    np.testing.assert_allclose(layer.idf.numpy(), sk.idf_ if sk.use_idf else np.ones(len(sk.vocabulary_)), rtol=1e-6)
    new = ["hero hero space unknownword", "", "LOVE drama"]
    np.testing.assert_allclose(_dense(layer.vectorize(tf.constant(texts + new))), sk.transform(texts + new).toarray(), atol=1e-6)


def test_keras_idf_and_max_features():
    texts = ["a1 b2 b2", "b2 c3", "c3 d4 d4 d4", "e5"]
    layer = TfidfVectorizer(idf="keras")
    layer.adapt_texts(texts)
    df = np.array([1, 2, 2, 1, 1])
    np.testing.assert_allclose(layer.idf.numpy(), np.log(1 + 4 / (1 + df)), rtol=1e-6)
    top = TfidfVectorizer(max_features=2)
    top.adapt_texts(texts)  # corpus counts: a1 1, b2 3, c3 2, d4 3, e5 1 -> b2, d4 (alphabetical order kept)
    assert [w.decode() for w in top.vocabulary.numpy()] == ["b2", "d4"]


def test_empty_corpus_and_bad_parameters_are_clear_errors(demo):
    with pytest.raises(ValueError, match="no token"):
        TfidfVectorizer().adapt_texts(["a", "", "! ?"])
    for params, word in [
        ({"idf": "bm25"}, "idf"),
        ({"norm": "l3"}, "norm"),
        ({"min_df": 0}, "min_df"),
        ({"max_features": 0}, "max_features"),
        ({"sublinear_tf": "yes"}, "sublinear_tf"),
        ({"centered": 1}, "centered"),
    ]:
        with pytest.raises(ValueError, match=f"tfidf: {word} must be"):
            make_model("tfidf", **params)
        with pytest.raises(ValueError, match=f"tfidf: {word} must be"):
            fit(TfidfRecommender(**params), demo, verbose=0)  # the constructor only stores: fit checks first
        if word != "centered":  # the layer alone checks its parameters before fitting
            with pytest.raises(ValueError, match=word):
                TfidfVectorizer(**params).adapt_texts(["ab cd"])


# ------------------------------------------------------------- item vectors
@pytest.mark.parametrize("which", ["demo", "ml100k"])
def test_item_cosines_equal_sklearn(which, request):
    model = request.getfixturevalue(f"{which}_model")
    data = request.getfixturevalue("demo" if which == "demo" else "ml100k")
    texts = _item_texts(model, data)
    sk = SkTfidf().fit(texts)
    assert model.vectorizer.vocabulary_size == len(sk.vocabulary_)
    expected = cosine_similarity(sk.transform(texts))
    np.testing.assert_allclose(_similarities(model), expected, atol=1e-5)
    ours = _dense(model._item_matrix())
    np.testing.assert_allclose(ours[1:], sk.transform(texts).toarray(), atol=1e-6)
    assert not ours[0].any(), "the out-of-vocabulary row must be empty"


def test_item_vectors_are_stored_sparse(ml100k_model):
    nnz = int(tf.shape(ml100k_model.item_values)[0])
    n_items, vocabulary = ml100k_model.items.size - 1, ml100k_model.vectorizer.vocabulary_size
    assert 1500 < vocabulary < 5000  # ML-100K titles + genres: a few thousand words
    assert nnz < 0.01 * n_items * vocabulary
    for weight in ml100k_model.weights:
        assert tuple(weight.shape) != (n_items + 1, vocabulary), f"{weight.name} is a dense items x vocabulary matrix"


def test_similar_items_never_return_the_query(demo_model):
    from tfrec.serving import ServedModel

    served = ServedModel.from_model(demo_model)
    items = list(served.catalog["item_id"])
    ids, scores = served.similar_items(items, k=5)
    for item, row in zip(items, ids):
        assert item not in row
    assert np.all(np.diff(scores, axis=1) <= 0)


# ------------------------------------------------------------------ profiles
def _numpy_scores(model, data, user_items, weights) -> np.ndarray:
    """cos(sum_j w_j x_j / sum |w_j|, x_c) with scikit-learn's matrix."""
    texts = _item_texts(model, data)
    matrix = SkTfidf().fit_transform(texts).toarray()
    index = {item: row for row, item in enumerate(model.items.ids.numpy()[1:].astype(str))}
    profile = sum(w * matrix[index[i]] for i, w in zip(user_items, weights)) / np.abs(weights).sum()
    return cosine_similarity(profile[None, :], matrix)[0]


@pytest.mark.parametrize("params", [{}, {"centered": True}, {"rating_weighted": False}])
def test_known_user_scores_are_the_profile_cosine(demo, params):
    model = fit(TfidfRecommender(**params), demo, verbose=0).model
    frame = demo.interactions
    for user in ["0", "7"]:
        rows = frame[frame["user_id"] == user]
        ratings = rows["rating"].to_numpy(np.float64)
        if params.get("centered"):
            weights = ratings - ratings.mean()
        elif params.get("rating_weighted") is False:
            weights = np.ones_like(ratings)
        else:
            weights = ratings
        expected = _numpy_scores(model, demo, rows["item_id"].tolist(), weights)
        user_idx = model.users.lookup(tf.constant([user]))
        got = model.score_candidates(user_idx, tf.zeros([1, 0], tf.int64)).numpy()[0, 1:]
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_unknown_user_history_profile_and_exclusion(demo_model, demo):
    from tfrec.serving import ServedModel

    history = ["3", "4", "17"]
    expected = _numpy_scores(demo_model, demo, history, np.ones(3))
    served = ServedModel.from_model(demo_model)
    ids, scores = served.recommend(["never-seen"], history=[history], k=5)
    assert not set(ids[0]) & set(history)
    index = {item: row for row, item in enumerate(demo_model.items.ids.numpy()[1:].astype(str))}
    np.testing.assert_allclose(scores[0], [expected[index[i]] for i in ids[0]], atol=1e-5)
    masked = expected.copy()
    masked[[index[h] for h in history]] = -np.inf
    assert scores[0][0] == pytest.approx(masked.max(), abs=1e-5)


def test_new_item_text_is_scored_without_refit(demo_model, demo):
    texts = _item_texts(demo_model, demo)
    sk = SkTfidf().fit(texts)
    new = ["hero adventure fast brandnewword", "ghost dark love"]
    np.testing.assert_allclose(_dense(demo_model.vectorize(new)), sk.transform(new).toarray(), atol=1e-6)
    np.testing.assert_allclose(demo_model.text_similarity(new)[:, 1:], cosine_similarity(sk.transform(new), sk.transform(texts)), atol=1e-5)
    rows = demo.interactions[demo.interactions["user_id"] == "0"]
    ratings = rows["rating"].to_numpy(np.float64)
    matrix = sk.transform(texts).toarray()
    index = {item: row for row, item in enumerate(demo_model.items.ids.numpy()[1:].astype(str))}
    profile = sum(r * matrix[index[i]] for i, r in zip(rows["item_id"], ratings))
    expected = cosine_similarity(profile[None, :], sk.transform(new))[0]
    np.testing.assert_allclose(demo_model.score_texts(["0", "0"], new), expected, atol=1e-5)


def test_summaries_name_what_was_computed(demo, tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    run = fit(TfidfRecommender(), demo, verbose=0, logdir=tmp_path).run_dir
    events = event_accumulator.EventAccumulator(str(run), size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"tfidf/vocabulary_size", "tfidf/idf", "tfidf/document_frequency", "tfidf/similar_items_example"} <= tags


# -------------------------------------------------------------- ML-100K quality
def test_protocol_t_on_ml100k_equals_numpy_reference(ml100k):
    """Served top-20 under protocol T equals a scikit-learn/numpy implementation."""
    from tfrec.data import make_split
    from tfrec.evaluation import evaluate
    from tfrec.evaluation.metrics import ranking_metrics
    from tfrec.serving import ServedModel

    split = make_split(ml100k, "temporal")
    model = fit(TfidfRecommender(), split.train, verbose=0).model
    ours = evaluate(ServedModel.from_model(model), split)

    train = split.train.interactions
    ids = model.items.ids.numpy()[1:].astype(str)
    matrix = SkTfidf().fit_transform(_item_texts(model, split.train))
    column = pd.Index(ids).get_indexer(train["item_id"])
    users = np.array(sorted(split.test["user_id"].unique(), key=int), dtype=object)
    row = pd.Index(users).get_indexer(train["user_id"])
    ratings = np.zeros((len(users), len(ids)))
    np.add.at(ratings, (row[row >= 0], column[row >= 0]), train["rating"].to_numpy(np.float64)[row >= 0])
    profiles = (ratings @ matrix) / ratings.sum(axis=1, keepdims=True)
    scores = cosine_similarity(profiles, matrix)
    scores[ratings > 0] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :20]  # ties: lower index = lower id
    theirs = ranking_metrics(users, ids[order], split.test[["user_id", "item_id"]], n_catalog=len(ids))
    for key in ("recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "coverage@10"):
        assert ours[key] == pytest.approx(theirs[key], abs=2e-3), key
    assert ours["hr@10"] == pytest.approx(0.4210, abs=2e-3)  # the figure reported for tfidf
