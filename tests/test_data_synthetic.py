"""The synthetic generator: shape, determinism and the statistical properties it promises."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrec.data import DataError, make_synthetic
from tfrec.data.synthetic import default_sizes


@pytest.fixture(scope="module")
def data():
    return make_synthetic(200_000, seed=0)


def test_shape_and_dtypes(data):
    inter = data.interactions
    n_users, n_items = default_sizes(200_000)
    assert len(inter) == 200_000  # the requested count, after removing repeated pairs
    assert data.n_users == n_users and len(data.items) == n_items
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert pd.api.types.is_string_dtype(inter["user_id"]) and pd.api.types.is_string_dtype(inter["item_id"])
    assert inter["rating"].dtype == np.float32 and inter["timestamp"].dtype == np.int64
    assert set(inter["item_id"]) <= set(data.items["item_id"])
    assert set(inter["user_id"]) <= {str(u) for u in range(1, n_users + 1)}
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert data.name == "synthetic-200000"


def test_default_sizes():
    assert default_sizes(20_000_000) == (137_931, 27_027)  # MovieLens-20M-like ratios
    users, items = default_sizes(1_000)
    assert users == 10 and items >= 10 and 0.05 * users * items >= 1_000


def test_deterministic_per_seed():
    a, b, c = make_synthetic(5_000, seed=1), make_synthetic(5_000, seed=1), make_synthetic(5_000, seed=2)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.sessions, b.sessions)
    assert not a.interactions.equals(c.interactions)


def test_item_popularity_is_power_law(data):
    counts = np.sort(data.interactions["item_id"].value_counts().to_numpy())[::-1]
    n_items = len(counts)
    share = counts.cumsum() / counts.sum()
    # MovieLens 100K: top 1% of items 7.3% of ratings, top 10% 43%; uniform: 1% and 10%
    assert 0.03 < share[n_items // 100 - 1] < 0.15
    assert 0.25 < share[n_items // 10 - 1] < 0.6
    ranks = np.arange(1, n_items + 1)
    tail = slice(n_items // 10, n_items)  # past the flattened head: a straight line in log-log
    slope = np.polyfit(np.log(ranks[tail]), np.log(counts[tail]), 1)[0]
    assert -1.6 < slope < -0.7


def test_user_activity_is_skewed(data):
    per_user = data.interactions.groupby("user_id").size()
    assert per_user.max() > 5 * per_user.median()
    assert per_user.min() >= 5
    assert per_user.max() <= len(data.items) // 4


def test_tastes_follow_categories_and_ratings(data):
    inter = data.interactions.merge(data.items[["item_id", "category"]], on="item_id")
    per_user = inter.groupby("user_id").size()
    share = inter.groupby(["user_id", "category"]).size().groupby("user_id").max() / per_user
    assert share[per_user >= 50].mean() > 0.3  # about 0.1 without tastes (the largest of 20 shares)
    top = inter.groupby(["user_id", "category"]).size().reset_index(name="n").sort_values("n").groupby("user_id").tail(1)
    favourite = inter.merge(top[["user_id", "category"]], on=["user_id", "category"], how="left", indicator=True)
    liked = favourite["_merge"] == "both"
    assert favourite.loc[liked, "rating"].mean() > favourite.loc[~liked, "rating"].mean() + 0.5
    ratings = data.interactions["rating"]
    assert set(ratings.unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}


def test_time_and_sessions(data):
    inter, sessions = data.interactions, data.sessions
    user = inter["user_id"].to_numpy()
    ts = inter["timestamp"].to_numpy()
    same_user = user[1:] == user[:-1]
    assert (np.diff(ts)[same_user] > 0).all()  # strictly increasing within a user
    assert (ts >= 1_577_836_800).all()
    # sessions are the interactions in the same order, cut at gaps over 30 minutes
    assert sessions["user_id"].equals(inter["user_id"]) and sessions["item_id"].equals(inter["item_id"])
    assert sessions["timestamp"].equals(inter["timestamp"])
    sid, pos = sessions["session_id"].to_numpy(), sessions["position"].to_numpy()
    new = np.concatenate(([True], ~same_user | (np.diff(ts) > 1800)))
    np.testing.assert_array_equal(sid, np.cumsum(new) - 1)
    assert (pos[new] == 0).all() and (np.diff(pos)[~new[1:]] == 1).all()
    assert sessions["position"].dtype == np.int32 and sessions["session_id"].dtype == np.int64
    lengths = sessions.groupby("session_id").size()
    assert 4 < lengths.mean() < 12


def test_catalog_text(data):
    items = data.items
    assert items["item_id"].tolist() == [str(i) for i in range(1, len(items) + 1)]
    assert items["category"].nunique() == 20
    row = items.iloc[0]
    assert len(row["text"].split()) == 10 and row["item_id"] in row["title"]
    assert (items["text"] != "").all()


def test_small_and_invalid_requests():
    tiny = make_synthetic(3)
    assert len(tiny.interactions) == 3
    custom = make_synthetic(500, n_users=20, n_items=100, n_categories=3, seed=5)
    assert len(custom.interactions) == 500 and custom.items["category"].nunique() == 3
    with pytest.raises(DataError, match="do not fit"):
        make_synthetic(1_000, n_users=10, n_items=100)
    with pytest.raises(DataError, match="positive"):
        make_synthetic(0)


def test_alias_table_samples_the_weights():
    from tfrec.data.synthetic import _alias_table

    weight = np.array([5.0, 1.0, 0.0, 2.0, 0.5, 1.5])
    keep, alias = _alias_table(weight)
    rng = np.random.default_rng(0)
    slot = rng.integers(0, len(weight), 400_000)
    sample = np.where(rng.random(len(slot)) < keep[slot], slot, alias[slot])
    freq = np.bincount(sample, minlength=len(weight)) / len(sample)
    np.testing.assert_allclose(freq, weight / weight.sum(), atol=0.003)
