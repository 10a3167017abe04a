"""Popularity baseline: counts against pandas, serving, protocol T against PROTOCOLS.md."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrec.models import Popularity
from tfrec.training import fit


def _counts(model) -> pd.Series:
    ids = [i.decode() for i in model.items.ids.numpy()[1:]]
    return pd.Series(model.fallback.counts.numpy()[1:], index=ids)


def _check_counts(data, **params):
    model = fit(Popularity(**params), data, verbose=0, batch_size=1000).model
    frame = data.interactions
    if params.get("time_half_life"):
        age = frame["timestamp"].max() - frame["timestamp"]
        weight = 0.5 ** (age / params["time_half_life"])
    else:
        weight = pd.Series(1.0, index=frame.index)
    if params.get("rating_weighted"):
        weight = weight * frame["rating"].astype(np.float64)
    expected = weight.groupby(frame["item_id"]).sum()
    got = _counts(model)
    assert set(got.index) == set(expected.index)
    np.testing.assert_allclose(got[expected.index].to_numpy(), expected.to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("params", [{}, {"rating_weighted": True}, {"time_half_life": 50.0}, {"rating_weighted": True, "time_half_life": 7.0}])
def test_counts_equal_pandas_groupby_on_demo(demo, params):
    _check_counts(demo, **params)


@pytest.mark.parametrize("params", [{}, {"rating_weighted": True, "time_half_life": 30 * 86400.0}])
def test_counts_equal_pandas_groupby_on_ml100k(ml100k, params):
    _check_counts(ml100k, **params)


def test_recommend_is_most_popular_unseen_with_ties_by_lower_id(fitted):
    memory, _, _ = fitted.exported("popularity")
    train = fitted.split.train.interactions
    counts = train.groupby("item_id").size()
    user = train["user_id"].iloc[0]
    seen = set(train.loc[train["user_id"] == user, "item_id"])
    ranking = (
        counts.drop(index=list(seen)).rename("n").reset_index()
        .assign(key=lambda f: f["item_id"].astype(int))
        .sort_values(["n", "key"], ascending=[False, True])
    )
    ids, scores = memory.recommend([user], k=10)
    assert list(ids[0]) == list(ranking["item_id"][:10])
    np.testing.assert_array_equal(scores[0], ranking["n"][:10].to_numpy(np.float32))


def test_score_is_the_count(fitted):
    _, loaded, _ = fitted.exported("popularity")
    counts = fitted.split.train.interactions.groupby("item_id").size()
    items = list(counts.index[:5])
    np.testing.assert_array_equal(loaded.score(["0"] * 5, items), counts[items].to_numpy(np.float32))
    assert loaded.score(["0"], ["not-an-item"])[0] == 0.0


def test_k_larger_than_remaining_candidates_pads_with_empty_slots(fitted):
    memory, _, _ = fitted.exported("popularity")
    train = fitted.split.train.interactions
    user = train["user_id"].iloc[0]
    n_seen = train.loc[train["user_id"] == user, "item_id"].nunique()
    ids, scores = memory.recommend([user], k=memory.n_items)
    assert (ids[0] == "").sum() == n_seen
    assert np.isneginf(scores[0][ids[0] == ""]).all()


def test_protocol_t_on_ml100k_matches_mostpop_row(ml100k):
    """PROTOCOLS.md MostPop row: R@10 0.0601, R@20 0.0973, NDCG@10 0.1162, HR@10 0.5376,
    MAP@10 0.0537, Cov@10 0.0447 -- measured through the serving function."""
    from tfrec.data import make_split
    from tfrec.evaluation import evaluate
    from tfrec.serving import ServedModel

    split = make_split(ml100k, "temporal")
    model = fit(Popularity(), split.train, verbose=0).model
    metrics = evaluate(ServedModel.from_model(model), split)
    expected = {"recall@10": 0.0601, "recall@20": 0.0973, "ndcg@10": 0.1162, "hr@10": 0.5376, "map@10": 0.0537, "coverage@10": 0.0447}
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=5e-4), key
