"""The demo generator must reproduce the seed notebook's output exactly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrec.data import Dataset, load_demo, make_demo_data

# ratings_df.head(10) and items_df.head(10) as printed in shared/seed/recommender_notebook.txt
NOTEBOOK_RATINGS_HEAD = [
    (0, 39, 4.0), (0, 33, 4.8), (0, 16, 2.9), (0, 6, 3.0), (0, 57, 3.4),
    (0, 32, 2.2), (0, 38, 4.9), (0, 10, 5.0), (0, 34, 2.6), (0, 19, 4.3),
]
NOTEBOOK_ITEMS_HEAD = [
    (0, "Item_00_Category_03", 3), (1, "Item_01_Category_04", 4), (2, "Item_02_Category_02", 2),
    (3, "Item_03_Category_04", 4), (4, "Item_04_Category_04", 4), (5, "Item_05_Category_01", 1),
    (6, "Item_06_Category_02", 2), (7, "Item_07_Category_02", 2), (8, "Item_08_Category_02", 2),
    (9, "Item_09_Category_04", 4),
]


@pytest.fixture(scope="module")
def notebook():
    return make_demo_data()


def test_matches_notebook_output(notebook):
    ratings_df, sessions, items_df, item_text = notebook
    assert len(ratings_df) == 358
    assert list(ratings_df.columns) == ["user_id", "item_id", "rating"]
    head = [(int(u), int(i), float(r)) for u, i, r in ratings_df.head(10).itertuples(index=False)]
    assert head == NOTEBOOK_RATINGS_HEAD
    assert list(items_df.columns) == ["item_id", "title", "category"]
    items_head = [(int(i), t, int(c)) for i, t, c in items_df.head(10).itertuples(index=False)]
    assert items_head == NOTEBOOK_ITEMS_HEAD
    assert len(items_df) == 60 and len(item_text) == 60
    assert len(sessions) == 30 and all(len(s) == 8 for s in sessions)


def test_structure_follows_the_notebook(notebook):
    ratings_df, sessions, items_df, item_text = notebook
    category = items_df.set_index("item_id")["category"]
    words = {0: "action", 1: "romance", 2: "scifi", 3: "comedy", 4: "horror", 5: "documentary"}
    for text in item_text.values():
        assert len(text.split()) == 10
    assert any(words[category[i]] in item_text[i] for i in range(60))
    # 12 ratings a user unless the preferred category is small; one decimal, in [1, 5]
    assert ratings_df.groupby("user_id").size().max() == 12
    assert ratings_df["rating"].between(1.0, 5.0).all()
    assert np.allclose(ratings_df["rating"], ratings_df["rating"].round(1))
    assert not ratings_df.duplicated(["user_id", "item_id"]).any()
    # each session stays inside one category (the user's preferred one)
    assert all(category[list(s)].nunique() == 1 for s in sessions)


def test_deterministic_and_seeded():
    a = make_demo_data()[0]
    pd.testing.assert_frame_equal(a, make_demo_data()[0])
    assert not a.equals(make_demo_data(seed=7)[0])


def test_load_demo_dtypes_and_values(notebook):
    ratings_df, sessions, items_df, item_text = notebook
    data = load_demo()
    assert isinstance(data, Dataset) and data.name == "demo"
    inter = data.interactions
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert pd.api.types.is_string_dtype(inter["user_id"]) and pd.api.types.is_string_dtype(inter["item_id"])
    assert inter["rating"].dtype == np.float32 and inter["timestamp"].dtype == np.int64
    assert inter["user_id"].tolist() == ratings_df["user_id"].astype(str).tolist()
    assert inter["item_id"].tolist() == ratings_df["item_id"].astype(str).tolist()
    np.testing.assert_array_equal(inter["rating"], ratings_df["rating"].to_numpy(np.float32))
    np.testing.assert_array_equal(inter["timestamp"], np.arange(358))

    items = data.items
    assert items["item_id"].tolist() == [str(i) for i in range(60)]
    assert items["title"].tolist() == items_df["title"].tolist()
    assert items["text"].tolist() == [item_text[i] for i in range(60)]
    assert items["category"].tolist() == items_df["category"].astype(str).tolist()

    s = data.sessions
    assert len(s) == 240 and s["session_id"].dtype == np.int64 and s["position"].dtype == np.int32
    assert s["timestamp"].dtype == np.int64
    np.testing.assert_array_equal(s["session_id"], np.repeat(np.arange(30), 8))
    np.testing.assert_array_equal(s["position"], np.tile(np.arange(8), 30))
    np.testing.assert_array_equal(s["timestamp"], s["position"])
    assert s["user_id"].tolist() == [str(u) for u in np.repeat(np.arange(30), 8)]
    assert s["item_id"].tolist() == [str(i) for seq in sessions for i in seq]
    assert (data.n_users, data.n_items) == (30, 60)


def test_load_demo_passes_arguments():
    data = load_demo(n_users=5, ratings_per_user=4, seed=1)
    assert data.n_users == 5 and len(data.interactions) == 20
