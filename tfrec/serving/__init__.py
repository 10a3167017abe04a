"""Serving: the exported signatures behind one Python interface (imported on first use)."""
from __future__ import annotations

from tfrec._lazy import lazy_exports

_EXPORTS = dict.fromkeys(("ServedModel", "resolve_version_dir"), "tfrec.serving.served_model")

__all__ = ["ServedModel", "resolve_version_dir"]

__getattr__ = lazy_exports(__name__, _EXPORTS)
