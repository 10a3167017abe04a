"""The one place where tfrec chooses its Keras.

TensorFlow Recommenders 0.7.7 needs Keras 2, which TensorFlow 2.16+ ships as the
separate ``tf-keras`` package and enables with ``TF_USE_LEGACY_KERAS=1``.  This
module sets that variable before TensorFlow is imported and exposes the Keras
module every other tfrec module uses (``from tfrec._keras import keras, tf``).
A later move to Keras 3 is a change to this file only.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf


def _check_legacy_keras() -> None:
    module = getattr(tf.keras, "__name__", "")
    if not module.startswith("tf_keras"):
        raise ImportError(
            "tfrec needs Keras 2 (the 'tf-keras' package), but tf.keras is already bound to "
            f"'{module}' (Keras 3). tf.keras was first used before tfrec was imported, without "
            "TF_USE_LEGACY_KERAS=1. Fix: import tfrec before tensorflow, or set the "
            "environment variable TF_USE_LEGACY_KERAS=1 before starting Python."
        )


_check_legacy_keras()

keras = tf.keras

__all__ = ["keras", "tf"]
