"""tfrec: classic recommenders as Keras models, trained on tf.data, served as SavedModels.

Importing tfrec selects Keras 2 (tf-keras) for TensorFlow but does not import TensorFlow
(that happens on first use; see ``tfrec._keras``). The
short names ``tfrec.fit``, ``tfrec.make_model``, ``tfrec.load_data``,
``tfrec.export_model`` and ``tfrec.ServedModel`` are loaded on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"

from tfrec import _keras  # noqa: F401  (must run before anything touches tf.keras)
from tfrec._lazy import lazy_exports

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

__getattr__ = lazy_exports(__name__, _SHORT_NAMES)
