"""Package names imported on first use, so that ``import tfrec`` and the command line's
argument checks load neither TensorFlow nor pandas (PEP 562 module ``__getattr__``)."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: name -> the attribute of the same name of
    module ``exports[name]``, imported on first access and then kept in the package."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
