"""The split names (see ``tfrec.data.splits``), importable without pandas or TensorFlow,
so that the command line checks ``--split`` before loading either."""
from __future__ import annotations

SPLIT_NAMES = ("u1", "u2", "u3", "u4", "u5", "ua", "ub", "temporal", "leave-last")
#: The official MovieLens 100K folds (protocol R), read from ``<name>.base`` / ``<name>.test``.
OFFICIAL_SPLITS = SPLIT_NAMES[:7]
#: The protocol (``Split.protocol``) of each split, known before any data is read: R (rating
#: prediction) for the official folds, T (top-N) for temporal, S (next item) for leave-last.
SPLIT_PROTOCOLS = {**dict.fromkeys(OFFICIAL_SPLITS, "R"), "temporal": "T", "leave-last": "S"}
