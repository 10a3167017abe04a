"""Train/test splits for the three benchmark protocols of ``shared/PROTOCOLS.md``.

- R (rating prediction): the official MovieLens 100K folds ``u1``..``u5``, ``ua``, ``ub``,
  read from ``<name>.base`` / ``<name>.test`` next to ``u.data``.
- T (top-N ranking), ``"temporal"``: per user, interactions sorted by (timestamp, item id)
  with item ids in `id_sort_key` order (numeric for MovieLens); the last ``ceil(n / 5)``
  (at least 1) go to test, the rest to train. A user with one interaction has it in test.
- S (next item), ``"leave-last"``: the same order; each user's last interaction is the
  test target. Users with a single interaction keep it in train and have no test row
  (a target needs a history).

Train and test keep the data's row order. The train `Dataset` keeps the full item catalog.
Its sessions: for T and S, session rows that are test interactions (same user, item and
timestamp) are dropped, so no test event leaks into training sequences; sessions on their
own clock, like the demo's view sequences (timestamps 0..7, not rating times), match no
test row and are kept whole. Official folds have no sessions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tfrec.data.dataset import INTERACTION_COLUMNS, DataError, Dataset, id_sort_key
from tfrec.data.split_names import OFFICIAL_SPLITS, SPLIT_NAMES, SPLIT_PROTOCOLS


@dataclass(frozen=True)
class Split:
    """One train/test split: the protocol letter, the train Dataset and the test interactions."""

    name: str
    protocol: str  # "R", "T" or "S"
    train: Dataset
    test: pd.DataFrame  # canonical interaction columns


def make_split(data: Dataset, name: str) -> Split:
    """The split called ``name`` (one of `SPLIT_NAMES`) of ``data``."""
    if name in OFFICIAL_SPLITS:
        return _official(data, name)
    if name in ("temporal", "leave-last"):
        return _by_time(data, name, SPLIT_PROTOCOLS[name])
    raise DataError(f"unknown split {name!r}; valid splits are: {', '.join(SPLIT_NAMES)}")


def _official(data: Dataset, name: str) -> Split:
    from tfrec.data.movielens import _read_table, _str_ids

    where = data.source_dir
    files = [where / f"{name}.{part}" for part in ("base", "test")] if where is not None else []
    if not files or not all(f.exists() for f in files):
        reason = "has no source directory" if where is None else f"has no {name}.base/{name}.test in {where}"
        raise DataError(
            f"split {name!r} reads the official MovieLens 100K fold files, but data {data.name!r} {reason}; "
            "use 'temporal' or 'leave-last' for this data (they work for any data)"
        )
    columns = {"user_id": "int", "item_id": "int", "rating": "float", "timestamp": "int"}
    parts = []
    for file in files:
        frame = _read_table(file, columns, sep="\t", names=list(INTERACTION_COLUMNS))
        parts.append(
            pd.DataFrame(
                {
                    "user_id": _str_ids(frame["user_id"]),
                    "item_id": _str_ids(frame["item_id"]),
                    "rating": frame["rating"].to_numpy(np.float32),
                    "timestamp": frame["timestamp"].to_numpy(np.int64),
                },
                copy=False,
            )
        )
    train, test = parts
    return Split(name, SPLIT_PROTOCOLS[name], data.with_interactions(train, sessions=None), test)


def _by_time(data: Dataset, name: str, protocol: str) -> Split:
    frame = data.interactions
    is_test = _last_per_user(frame, leave_last=protocol == "S")
    train = frame[~is_test].reset_index(drop=True)
    test = frame[is_test].reset_index(drop=True)
    sessions = data.sessions
    if sessions is not None and len(test):
        in_test = _rows_in(sessions, test)
        if in_test.any():
            sessions = sessions[~in_test].reset_index(drop=True)
    return Split(name, protocol, data.with_interactions(train, sessions=sessions), test)


def _rows_in(sessions: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Mask of session rows equal to a test row on (user_id, item_id, timestamp)."""
    mask = np.isin(sessions["timestamp"].to_numpy(), test["timestamp"].to_numpy())  # cheap first cut
    rows = np.flatnonzero(mask)
    if len(rows):
        candidates = sessions.iloc[rows]
        columns = ["user_id", "item_id", "timestamp"]
        test_keys = pd.MultiIndex.from_arrays([test[c].to_numpy() for c in columns])
        mask[rows] = pd.MultiIndex.from_arrays([candidates[c].to_numpy() for c in columns]).isin(test_keys)
    return mask


def _last_per_user(frame: pd.DataFrame, leave_last: bool) -> np.ndarray:
    """Mask of test rows: each user's last ceil(n/5) (at least 1), or last 1 when n >= 2."""
    users, user_uniques = pd.factorize(frame["user_id"].to_numpy())
    item_codes, item_uniques = pd.factorize(frame["item_id"].to_numpy())
    item_rank = np.empty(len(item_uniques), dtype=np.int64)
    item_rank[np.argsort(id_sort_key(pd.Series(item_uniques)).to_numpy(), kind="stable")] = np.arange(len(item_uniques))
    item_rank = item_rank[item_codes]
    time = frame["timestamp"].to_numpy(np.int64)
    time = time - time.min() if len(time) else time
    span = int(time.max()) + 1 if len(time) else 1
    if len(user_uniques) * span * max(len(item_uniques), 1) < 2**62:  # one int64 key: much faster than lexsort
        order = np.argsort((users * span + time) * len(item_uniques) + item_rank, kind="stable")
    else:
        order = np.lexsort((item_rank, time, users))
    counts = np.bincount(users)
    sorted_users = users[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    from_end = counts[sorted_users] - 1 - (np.arange(len(order)) - starts[sorted_users])
    if leave_last:
        test_sorted = (from_end == 0) & (counts[sorted_users] >= 2)
    else:
        test_sorted = from_end < np.maximum(1, -(-counts[sorted_users] // 5))
    mask = np.zeros(len(order), dtype=bool)
    mask[order] = test_sorted
    return mask
