"""Splits follow shared/PROTOCOLS.md; the ML-100K counts are pinned to the protocol text."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfrec.data import SPLIT_NAMES, DataError, Dataset, load_demo, load_movielens, make_split, make_synthetic
from tfrec.data.dataset import id_sort_key

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


@pytest.fixture(scope="module")
def ml100k():
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {ML100K}; put the GroupLens files in ../shared/data/ml-100k")
    return load_movielens(ML100K)


def _tiny(rows) -> Dataset:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    frame = frame.astype({"user_id": str, "item_id": str, "rating": np.float32, "timestamp": np.int64})
    ids = sorted(frame["item_id"].unique(), key=int)
    items = pd.DataFrame({"item_id": ids, "title": ids, "text": ids, "category": ""})
    return Dataset(interactions=frame, items=items, name="tiny")


def test_split_names():
    assert SPLIT_NAMES == ("u1", "u2", "u3", "u4", "u5", "ua", "ub", "temporal", "leave-last")


def test_temporal_ml100k_counts(ml100k):
    split = make_split(ml100k, "temporal")
    assert split.protocol == "T" and split.name == "temporal"
    train, test = split.train.interactions, split.test
    assert (len(train), len(test)) == (79_619, 20_381)
    assert train["user_id"].nunique() == 943 and test["user_id"].nunique() == 943
    assert train["item_id"].nunique() == 1_611
    assert (~test["item_id"].isin(set(train["item_id"]))).sum() == 88
    assert len(split.train.items) == 1_682  # the full catalog stays
    assert list(test.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert test["rating"].dtype == np.float32 and test["timestamp"].dtype == np.int64


def test_temporal_test_rows_are_each_users_last(ml100k):
    split = make_split(ml100k, "temporal")

    def keyed(frame):
        return frame.assign(item_key=id_sort_key(frame["item_id"]).to_numpy())

    train, test = keyed(split.train.interactions), keyed(split.test)
    last_train = train.sort_values(["timestamp", "item_key"]).groupby("user_id").tail(1).set_index("user_id")
    first_test = test.sort_values(["timestamp", "item_key"]).groupby("user_id").head(1).set_index("user_id")
    both = first_test.join(last_train, suffixes=("_test", "_train"))
    later = (both["timestamp_test"] > both["timestamp_train"]) | (
        (both["timestamp_test"] == both["timestamp_train"]) & (both["item_key_test"] > both["item_key_train"])
    )
    assert later.all()
    n = ml100k.interactions.groupby("user_id").size()
    expected = np.maximum(1, np.ceil(n / 5)).astype(int)
    pd.testing.assert_series_equal(test.groupby("user_id").size().sort_index(), expected.sort_index(), check_names=False)
    # train + test is the data, nothing lost or duplicated
    assert len(pd.concat([split.train.interactions, split.test]).drop_duplicates()) == 100_000


def test_leave_last_ml100k(ml100k):
    split = make_split(ml100k, "leave-last")
    assert split.protocol == "S"
    assert len(split.test) == 943 and split.test["user_id"].is_unique
    assert split.train.interactions["item_id"].nunique() == 1_679
    assert len(split.train.interactions) == 100_000 - 943


def test_official_u1_equals_files(ml100k):
    split = make_split(ml100k, "u1")
    assert split.protocol == "R" and (len(split.train.interactions), len(split.test)) == (80_000, 20_000)
    for frame, file in ((split.train.interactions, "u1.base"), (split.test, "u1.test")):
        raw = pd.read_csv(ML100K / file, sep="\t", header=None, names=["u", "i", "r", "t"])
        assert frame["user_id"].tolist() == raw["u"].astype(str).tolist()
        assert frame["item_id"].tolist() == raw["i"].astype(str).tolist()
        np.testing.assert_array_equal(frame["rating"], raw["r"].to_numpy(np.float32))
        np.testing.assert_array_equal(frame["timestamp"], raw["t"].to_numpy(np.int64))
    assert len(split.train.items) == 1_682
    ua = make_split(ml100k, "ua")
    assert (len(ua.train.interactions), len(ua.test)) == (90_570, 9_430)


def test_tie_break_by_numeric_item_id():
    # user 1: three items at the same time; numeric order puts "10" last, text order would put "9" last
    data = _tiny([(1, 9, 3, 5), (1, 10, 3, 5), (1, 2, 3, 5), (1, 1, 4, 1), (1, 3, 4, 2)])
    assert make_split(data, "leave-last").test["item_id"].tolist() == ["10"]
    assert make_split(data, "temporal").test["item_id"].tolist() == ["10"]  # ceil(5/5) = 1


def test_small_users():
    data = _tiny([(1, 1, 3, 1), (2, 1, 3, 1), (2, 2, 3, 2), (3, 1, 5, 1), (3, 2, 4, 2), (3, 3, 2, 3),
                  (3, 4, 1, 4), (3, 5, 1, 5), (3, 6, 1, 6)])
    leave_last = make_split(data, "leave-last")
    assert leave_last.test["user_id"].tolist() == ["2", "3"]  # user 1 (one interaction) stays in train
    assert "1" in set(leave_last.train.interactions["user_id"])
    temporal = make_split(data, "temporal")
    # user 1: ceil(1/5) = 1 (its only row); user 2: 1; user 3: ceil(6/5) = 2
    assert sorted(zip(temporal.test["user_id"], temporal.test["item_id"])) == [
        ("1", "1"), ("2", "2"), ("3", "5"), ("3", "6")]


def test_demo_splits_and_sessions():
    demo = load_demo()
    split = make_split(demo, "temporal")
    assert len(split.train.interactions) + len(split.test) == 358
    pd.testing.assert_frame_equal(split.train.sessions, demo.sessions)  # view sequences kept whole
    assert split.train.items.equals(demo.items)
    with pytest.raises(DataError) as caught:
        make_split(demo, "u1")
    message = str(caught.value)
    assert "u1" in message and "temporal" in message and "leave-last" in message


def test_synthetic_sessions_lose_test_rows():
    data = make_synthetic(20_000, seed=3)
    split = make_split(data, "leave-last")
    sessions = split.train.sessions
    assert len(sessions) == len(data.sessions) - len(split.test)
    key = ["user_id", "item_id", "timestamp"]
    assert sessions.merge(split.test[key], on=key).empty
    # synthetic sessions are the interactions in session order: the same rows remain
    assert sorted(map(tuple, sessions[key].to_numpy().tolist())) == sorted(
        map(tuple, split.train.interactions[key].to_numpy().tolist()))


def test_unknown_split():
    with pytest.raises(DataError) as caught:
        make_split(load_demo(), "random")
    message = str(caught.value)
    assert "random" in message and all(name in message for name in SPLIT_NAMES)
