"""Combining numpy state across the workers of a multi-worker strategy.

The fixed-weight models count their shard of the data, then exchange their partial state
with the strategy's own collectives (``all_reduce`` and ``all_gather`` in a replica
context over gRPC), so that every worker ends with the state a one-process fit computes.
TensorFlow's collectives take float16/32/64 and int32/64 tensors only and reduce by SUM
or MEAN only (no MAX), so:

- ``sum``: elementwise sum of a dense int64 / float64 array (``all_reduce``); exact for
  integers and for integer-valued floats below 2**53 (counts, rating sums in 0.5 steps);
- ``gather``: every worker's rows, concatenated in worker order (``all_gather`` of the
  sizes, then of the rows padded to the largest size); int64 and float64 columns;
- ``gather_strings``: every worker's strings (UTF-8 bytes packed 8 to an int64);
- ``sum_by_key``: sparse partial sums (key, value) added by key, keys sorted.

With one worker (``WorkerPlace.count == 1``) each is the identity, so one code path
serves both. Memory and network per worker: ``gather`` receives every worker's rows
(the sum of their sizes, padded to N x the largest); ``sum`` receives the array size.
Workers may hold several replicas (GPUs): the first replica of each worker contributes,
the others contribute nothing.
"""
from __future__ import annotations

import time

import numpy as np

from tfrec.distribute.cluster import worker_place

_WORD = 8  # bytes per int64


class Collectives:
    """Cross-worker combines of numpy arrays over ``strategy`` (see the module docstring)."""

    def __init__(self, strategy=None):
        self.strategy = strategy
        self.place = worker_place(strategy)
        #: What the combines cost this worker so far: bytes received and seconds spent.
        self.bytes_received = 0
        self.seconds = 0.0

    @property
    def distributed(self) -> bool:
        return self.place.count > 1

    # ------------------------------------------------------------ primitives
    def _per_replica(self, array: np.ndarray):
        """``array`` on each worker's first replica, zeros of its shape on the others."""
        from tfrec._keras import tf

        per_worker = self.strategy.num_replicas_in_sync // self.place.count

        def value(context):
            if context.replica_id_in_sync_group % per_worker == 0:
                return tf.constant(array)
            return tf.zeros_like(tf.constant(array))

        return self.strategy.experimental_distribute_values_from_function(value)

    def _all_reduce(self, array: np.ndarray) -> np.ndarray:
        from tfrec._keras import tf

        return self._run(lambda context, value: context.all_reduce(tf.distribute.ReduceOp.SUM, value), array)

    def _all_gather(self, array: np.ndarray) -> np.ndarray:
        return self._run(lambda context, value: context.all_gather(value, axis=0), array)

    def _run(self, collective, array: np.ndarray) -> np.ndarray:
        """``collective(replica_context, value)`` on every replica (``_per_replica``
        values), this worker's result as numpy; counted in ``seconds`` and ``bytes_received``."""
        from tfrec._keras import tf

        start = time.perf_counter()
        result = self.strategy.run(lambda value: collective(tf.distribute.get_replica_context(), value), args=(self._per_replica(array),))
        local = self.strategy.experimental_local_results(result)[0].numpy()
        self.seconds += time.perf_counter() - start
        self.bytes_received += local.nbytes
        return local

    # --------------------------------------------------------------- combines
    def sum(self, array: np.ndarray) -> np.ndarray:
        """Elementwise sum over the workers of an int64 or float64 array (same shape on each)."""
        array = np.ascontiguousarray(array)
        if array.dtype not in (np.int64, np.float64):
            raise TypeError(f"sum takes int64 or float64 arrays, got {array.dtype}")
        if not self.distributed:
            return array
        return self._all_reduce(array).astype(array.dtype, copy=False)

    def max(self, value: int) -> int:
        """The largest of the workers' integers (collectives have no MAX: a gather of one each)."""
        if not self.distributed:
            return int(value)
        return int(self._all_gather(np.array([value], np.int64)).max())

    def gather(self, array: np.ndarray) -> np.ndarray:
        """Every worker's rows of ``array`` (int64 or float64, [n, ...], n may differ),
        concatenated in worker order."""
        array = np.ascontiguousarray(array)
        if array.dtype not in (np.int64, np.float64):
            raise TypeError(f"gather takes int64 or float64 arrays, got {array.dtype}")
        if not self.distributed:
            return array
        sizes = self._all_gather(np.array([len(array)], np.int64))
        largest = int(sizes.max())
        padded = np.zeros((max(largest, 1), *array.shape[1:]), array.dtype)
        padded[: len(array)] = array
        rows = self._all_gather(padded).reshape(len(sizes), len(padded), *array.shape[1:])
        return np.concatenate([rows[replica, :size] for replica, size in enumerate(sizes)])

    def gather_strings(self, values) -> np.ndarray:
        """Every worker's strings, concatenated in worker order: object array of str."""
        values = np.asarray(values, dtype=object)
        if not self.distributed:
            return values
        encoded = [str(value).encode("utf-8") for value in values]
        lengths = np.array([len(b) for b in encoded], np.int64)
        width = self.max(-(-int(lengths.max(initial=0)) // _WORD) * _WORD) or _WORD
        packed = np.zeros((len(encoded), width), np.uint8)
        for row, data in enumerate(encoded):
            packed[row, : len(data)] = np.frombuffer(data, np.uint8)
        rows = self.gather(packed.view(np.int64)).view(np.uint8)
        all_lengths = self.gather(lengths)
        return np.array([bytes(row[:length]).decode("utf-8") for row, length in zip(rows, all_lengths)], dtype=object)

    def sum_by_key(self, keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sorted distinct keys, the sum of their values over every worker) of sparse
        partial sums: int64 keys, float64 values. With one worker and distinct keys the
        values are returned exactly (sorted by key)."""
        keys = np.asarray(keys, np.int64)
        values = np.asarray(values, np.float64)
        if self.distributed:
            keys, values = self.gather(keys), self.gather(values)
        distinct, position = np.unique(keys, return_inverse=True)
        sums = np.zeros(len(distinct), np.float64)
        np.add.at(sums, position.reshape(-1), values)
        return distinct, sums
