"""tfrec: classic recommenders as Keras models, trained on tf.data, served as SavedModels.

Importing tfrec selects Keras 2 (tf-keras) for TensorFlow; see ``tfrec._keras``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from tfrec import _keras  # noqa: F401,E402  (must run before anything touches tf.keras)
