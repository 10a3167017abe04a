"""The one place where tfrec chooses its Keras and imports TensorFlow.

TensorFlow Recommenders 0.7.7 needs Keras 2, which TensorFlow 2.16+ ships as the
separate ``tf-keras`` package and enables with ``TF_USE_LEGACY_KERAS=1``.  This
module sets that variable when it is imported (``import tfrec`` imports it first) and
exposes the Keras module every other tfrec module uses (``from tfrec._keras import
keras, tf``). TensorFlow itself is imported on the first access of ``tf`` or ``keras``
(a module ``__getattr__``, PEP 562), so ``import tfrec``, ``import tfrec.cli``, the
CLI's argument parsing and its argument errors never wait for TensorFlow. A later move
to Keras 3 is a change to this file only.

Logging: used as a library, tfrec leaves TensorFlow's logging as the user set it up; it
only defaults ``TF_CPP_MIN_LOG_LEVEL`` to 2 (C++ warnings and errors). The command line
calls `quiet_tensorflow` before TensorFlow is imported, unless ``--verbose`` or
``TFREC_VERBOSE=1``: then ``TF_CPP_MIN_LOG_LEVEL=3``, the Python loggers ``tensorflow``
and ``absl`` log errors only, and file descriptor 2 is silenced while ``import
tensorflow`` runs, because the lines TensorFlow's C++ code writes there before absl
logging is initialised (the absl ``InitializeLog`` notice, the oneDNN notice, "Could
not find cuda drivers") obey no setting. If that import fails, what it wrote is
replayed to stderr before the error is raised. Nothing else is hidden: the oneDNN
setting (``TF_ENABLE_ONEDNN_OPTS``, numerics) and the visible devices are untouched.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

os.environ["TF_USE_LEGACY_KERAS"] = "1"

if TYPE_CHECKING:
    import tensorflow as tf

    keras = tf.keras

_LAZY_NAMES = ("keras", "tf")
_load_lock = threading.RLock()
_quiet = False


def quiet_tensorflow() -> None:
    """Show the user tfrec's output only: TensorFlow logs errors only and its start-up
    lines are not shown (see the module docstring). Takes full effect when called before
    the first use of ``tf``/``keras``; the command line calls it, a library user need not."""
    global _quiet
    _quiet = True
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


def import_tensorflow():
    """Import TensorFlow now (hidden start-up lines after `quiet_tensorflow`) and return it.
    The command line calls it before a command that needs TensorFlow, so that no module
    that imports ``tensorflow`` itself (TensorFlow Recommenders, TensorBoard) does it first."""
    _load()
    return globals()["tf"]


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _load() -> None:
    """Import TensorFlow (once), check that tf.keras is Keras 2, bind ``tf`` and ``keras``."""
    with _load_lock:
        if "keras" in globals():
            return
        if _quiet:
            with _stderr_hidden_unless_failing():
                tensorflow = importlib.import_module("tensorflow")
        else:
            tensorflow = importlib.import_module("tensorflow")
        _check_legacy_keras(tensorflow)
        globals().update(tf=tensorflow, keras=tensorflow.keras)


@contextlib.contextmanager
def _stderr_hidden_unless_failing() -> Iterator[None]:
    """Send file descriptor 2 to a temporary file for the block; replay the file to
    stderr if the block raises. Without a usable descriptor 2, hide nothing."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as captured:
        failed = True
        _flush_stderr()
        os.dup2(captured.fileno(), 2)
        try:
            yield
            failed = False
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                captured.seek(0)
                os.write(2, captured.read())


def _flush_stderr() -> None:
    if sys.stderr is not None:
        sys.stderr.flush()


def _check_legacy_keras(tensorflow) -> None:
    module = getattr(tensorflow.keras, "__name__", "")
    if not module.startswith("tf_keras"):
        raise ImportError(
            "tfrec needs Keras 2 (the 'tf-keras' package), but tf.keras is already bound to "
            f"'{module}' (Keras 3). tf.keras was first used before tfrec was imported, without "
            "TF_USE_LEGACY_KERAS=1. Fix: import tfrec before tensorflow, or set the "
            "environment variable TF_USE_LEGACY_KERAS=1 before starting Python."
        )


if "tensorflow" in sys.modules:  # already imported by the user: check its Keras now, as before
    _load()

__all__ = ["import_tensorflow", "keras", "quiet_tensorflow", "tf"]
