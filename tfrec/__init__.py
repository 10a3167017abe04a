"""tfrec: classic recommenders as Keras models, trained on tf.data, served as SavedModels.

Importing tfrec selects Keras 2 (tf-keras) for TensorFlow; see ``tfrec._keras``. The
short names ``tfrec.fit``, ``tfrec.make_model``, ``tfrec.load_data``,
``tfrec.export_model`` and ``tfrec.ServedModel`` are loaded on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

from tfrec import _keras  # noqa: F401  (must run before anything touches tf.keras)

_SHORT_NAMES = {
    "fit": "tfrec.training",
    "FitResult": "tfrec.training",
    "make_model": "tfrec.models",
    "load_data": "tfrec.data",
    "make_split": "tfrec.data",
    "export_model": "tfrec.export",
    "ServedModel": "tfrec.serving",
    "evaluate": "tfrec.evaluation",
}

__all__ = ["__version__", *_SHORT_NAMES]


def __getattr__(name: str):
    if name in _SHORT_NAMES:
        import importlib

        return getattr(importlib.import_module(_SHORT_NAMES[name]), name)
    raise AttributeError(f"module 'tfrec' has no attribute {name!r}")
