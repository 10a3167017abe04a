"""What every model's fit starts from: id vocabularies and the (user, time, item) row order."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrec.data.dataset import encode_ids
from tfrec.layers.interaction_log import user_time_order


@pytest.mark.parametrize(
    "max_user, max_time, max_item",
    [(50, 10, 30), (50, 10**9, 30), (50, 2**60, 30), (2**40, 2**60, 2**20)],
    ids=["packed timestamps", "packed wide timestamps", "packed time ranks", "lexsort"],
)
def test_user_time_order_equals_a_stable_lexsort(max_user, max_time, max_item):
    rng = np.random.default_rng(1)
    n = 20_000
    user, time, item = rng.integers(1, max_user, n), rng.integers(-5, max_time, n), rng.integers(1, max_item, n)
    # duplicates of whole keys keep their input order (stable)
    user[:100], time[:100], item[:100] = user[0], time[0], item[0]
    expected = np.lexsort((item, time, user))
    np.testing.assert_array_equal(user_time_order(user, time, item), expected)
    # rows already in order: None (no reordering needed)
    assert user_time_order(user[expected], time[expected], item[expected]) is None
    assert user_time_order(user[:0], time[:0], item[:0]) is None


@pytest.mark.parametrize(
    "ids, vocabulary",
    [(["10", "2", "10", "1", "2"], ["1", "2", "10"]), (["b", "a", "10", "b"], ["10", "a", "b"]), ([], [])],
    ids=["integer ids: numeric order", "text ids: text order", "empty"],
)
def test_encode_ids_gives_the_sorted_vocabulary_and_each_ids_position(ids, vocabulary):
    found, codes = encode_ids(pd.Series(ids, dtype="string"))
    assert list(found) == vocabulary
    assert [found[c] for c in codes] == list(ids)
