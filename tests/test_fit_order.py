"""The (user, time, item) row order every model's fit starts from."""
from __future__ import annotations

import numpy as np
import pytest

from tfrec.models.base import user_time_order


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
    np.testing.assert_array_equal(user_time_order(user, time, item), np.lexsort((item, time, user)))
    assert len(user_time_order(user[:0], time[:0], item[:0])) == 0
