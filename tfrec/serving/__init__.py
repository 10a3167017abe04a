"""Serving: the exported signatures behind one Python interface."""
from tfrec.serving.served_model import ServedModel, resolve_version_dir

__all__ = ["ServedModel", "resolve_version_dir"]
