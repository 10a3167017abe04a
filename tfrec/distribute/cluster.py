"""The strategies tfrec fits under, and which worker of a cluster this process is.

``--strategy``:

- ``default``: one process, TensorFlow's default strategy (one device);
- ``mirrored``: ``tf.distribute.MirroredStrategy``, one process, every local GPU (or CPU);
- ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy``, one process per worker,
  the cluster read from the ``TF_CONFIG`` environment variable as TensorFlow documents it:
  ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}``.
  Worker 0 (or the task of type ``chief``) is the chief: it exports and writes TensorBoard.

TensorFlow requires the multi-worker strategy to be created before any other TensorFlow
operation of the process (collective ops are configured at start-up), so the command line
creates it first.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

STRATEGIES = ("default", "mirrored", "multi-worker")


@dataclass(frozen=True)
class WorkerPlace:
    """This process's place among the workers: ``index`` of ``count``; the chief writes."""

    index: int = 0
    count: int = 1

    @property
    def is_chief(self) -> bool:
        return self.index == 0


def check_tf_config(text: str | None) -> dict:
    """The parsed ``TF_CONFIG``; ``ValueError`` (one line naming the fix) when it is missing or malformed."""
    example = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    if not text:
        raise ValueError(f"--strategy multi-worker reads the cluster from the TF_CONFIG environment variable, which is not set; e.g. TF_CONFIG='{example}' "
                         "(or use --local-workers N to start N workers on this machine)")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}); expected e.g. {example}") from None
    cluster, task = (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError(f"TF_CONFIG needs 'cluster' (task type -> list of host:port) and 'task' ({{'type': ..., 'index': ...}}); expected e.g. {example}")
    tasks = cluster.get(task["type"])
    if not isinstance(tasks, list) or not 0 <= int(task["index"]) < len(tasks):
        raise ValueError(f"TF_CONFIG's task {task} is not in its cluster {cluster}")
    return config


def worker_place(strategy) -> WorkerPlace:
    """Where this process is among the workers of ``strategy`` (index 0 of 1 unless
    multi-worker, and for ``None``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(strategy.extended, "_in_multi_worker_mode", lambda: False)():
        return WorkerPlace()
    spec = resolver.cluster_spec().as_dict()
    workers = len(spec.get("chief", [])) + len(spec.get("worker", []))
    index = 0 if resolver.task_type == "chief" else int(resolver.task_id) + len(spec.get("chief", []))
    return WorkerPlace(index=index, count=workers)


def make_strategy(kind: str):
    """The ``tf.distribute.Strategy`` of ``--strategy kind`` (see the module docstring)."""
    if kind not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {kind!r}")
    if kind == "multi-worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
    from tfrec._keras import tf

    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()
