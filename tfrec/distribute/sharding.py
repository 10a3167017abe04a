"""Each worker's shard of the data: rows kept by a stable hash of their user (or session) id.

Worker i of N keeps the rows whose ``Fingerprint64(id) mod N == i``
(``tf.strings.to_hash_bucket_fast``: the same on every machine and run, unlike Python's
salted ``hash``). Sharding by user keeps each user's rows together on one worker, which
the fitting passes need: a user's items in time order (the exclusion table, co-visitation
sessions cut from a user's timeline, kNN's one-rating-per-pair rule) are then computed on
one worker exactly as in one process. ``tf.data``'s own auto-sharding (by file or by
element) cannot give that: it splits a user's rows across workers.

An in-memory frame (a ``tfrec.data.Dataset``) is filtered before anything else; a
``tf.data`` pipeline is filtered batch by batch as it streams, so each worker reads the
stream but keeps only its rows (for data that large, give each worker its own
user-partitioned files).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.distribute.cluster import WorkerPlace


def owners(ids, workers: int) -> np.ndarray:
    """The worker (int64) of each id (str-convertible) among ``workers``."""
    from tfrec._keras import tf

    codes, distinct = pd.factorize(pd.Series(ids).astype(str), sort=False)
    if len(distinct) == 0:
        return np.zeros(0, np.int64)
    buckets = tf.strings.to_hash_bucket_fast(tf.constant(np.asarray(distinct, dtype=object).astype(str)), workers).numpy()
    return buckets[codes]


def shard_frame(frame: pd.DataFrame, place: WorkerPlace, key: str) -> pd.DataFrame:
    """The rows of ``frame`` this worker keeps (by ``key``), in their order."""
    if place.count == 1:
        return frame
    return frame[owners(frame[key], place.count) == place.index].reset_index(drop=True)


def shard_batches(batches, place: WorkerPlace, key: str):
    """The batches of a ``tf.data`` pipeline (dicts of rank-1 tensors) with only the rows
    this worker keeps. A stream without ``timestamp`` first gets each row's position in
    the whole stream (its time), so that row order means the same on every worker."""
    if place.count == 1:
        return batches
    from tfrec._keras import tf

    if key == "user_id" and "timestamp" not in batches.element_spec:

        def with_positions(start, batch):
            size = tf.shape(batch[key], out_type=tf.int64)[0]
            return start + size, {**batch, "timestamp": tf.range(start, start + size)}

        batches = batches.scan(tf.constant(0, tf.int64), with_positions)

    def keep(batch):
        ids = batch[key] if batch[key].dtype == tf.string else tf.strings.as_string(batch[key])
        mine = tf.equal(tf.strings.to_hash_bucket_fast(ids, place.count), place.index)
        return {name: tf.boolean_mask(column, mine) for name, column in batch.items()}

    return batches.map(keep)
