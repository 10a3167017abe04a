"""Export: fitted models to SavedModels in TF Serving's layout.

The names below are imported on first use (``tfrec.export.paths`` and ``layout`` need no TensorFlow).
"""
from __future__ import annotations

from tfrec._lazy import lazy_exports

_EXPORTS = dict.fromkeys(("CATALOG_ASSET", "METADATA_ASSET", "export_model", "versions"), "tfrec.export.savedmodel")

__all__ = ["CATALOG_ASSET", "METADATA_ASSET", "export_model", "versions"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
