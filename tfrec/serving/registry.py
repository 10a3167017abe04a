"""The models a REST server serves, one version each, kept current by polling the folder.

``ModelRegistry(base_dir, models=None)`` serves every model folder under ``base_dir``
(``<base_dir>/<name>/<version>/``, ``tfrec.export.layout``) under its folder name, or only
the names in ``models``. It follows TF Serving's default version policy:

- the newest *complete* integer version (``incomplete_reason`` is None) that loads is
  served; staging folders (``.tmp-*``) and other non-integer names are never looked at;
- ``poll()`` rescans the folder (the server calls it every ``--poll-seconds``, in a worker
  thread): a newer complete version is loaded *before* the old one is dropped, and the swap
  is one assignment, so a request in flight keeps the version it started with and no
  request fails during a roll-out;
- a version that fails to load is logged once and the previous version keeps serving; it
  is tried again only when its folder changes (new ``saved_model.pb`` or variables);
- a served version whose folder disappears is replaced by the newest older version that
  loads, or the model is dropped when none does; so is a model whose folder disappears.

``get(name, version=None)`` returns the ``LoadedVersion`` serving ``name`` (``version``:
only when that exact version is the one loaded), else raises ``ServableNotFound``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfrec.export.layout import incomplete_reason, numbered_entries

log = logging.getLogger("tfrec.serve")


class ServableNotFound(LookupError):
    """No such model, or the requested version is not the one loaded (HTTP 404)."""


@dataclass
class LoadedVersion:
    """One loaded SavedModel version: its signatures (name -> concrete function), their
    input specs (name -> {input name -> tf.TensorSpec}) and the SignatureDef protos as
    TF Serving's metadata JSON (``signature_defs``)."""

    name: str
    version: int
    path: Path
    functions: dict[str, Any]
    input_specs: dict[str, dict[str, Any]]
    signature_defs: dict[str, Any]
    loaded: Any = field(default=None, repr=False)  # the tf.saved_model.load object: keeps resources alive


def _folder_stamp(version_dir: Path) -> tuple:
    """What changes when a version folder is rewritten: (mtime_ns, size) of its graph and index."""
    stamp = []
    for part in (version_dir / "saved_model.pb", version_dir / "variables" / "variables.index"):
        try:
            stat = part.stat()
            stamp.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


def _tensor_info_json(info) -> dict[str, Any]:
    """A TensorInfo proto as TF Serving's JSON writes it (proto3 JSON: int64 as strings)."""
    from tensorflow.core.framework import types_pb2

    shape = info.tensor_shape
    return {
        "dtype": types_pb2.DataType.Name(info.dtype),
        "tensor_shape": {"dim": [{"size": str(dim.size), "name": dim.name} for dim in shape.dim], "unknown_rank": bool(shape.unknown_rank)},
        "name": info.name,
    }


def signature_defs_json(version_dir: Path) -> dict[str, Any]:
    """Every SignatureDef of the SavedModel in ``version_dir`` as TF Serving's
    ``GetModelMetadata`` writes it: {key: {"inputs", "outputs", "method_name"}}. Read from
    ``saved_model.pb`` itself, as TF Serving does (so tensor names such as
    ``recommend_user_id:0`` and the ``__saved_model_init_op`` entry are TF Serving's)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    signatures = proto.meta_graphs[0].signature_def
    return {
        key: {
            "inputs": {name: _tensor_info_json(info) for name, info in sorted(signatures[key].inputs.items())},
            "outputs": {name: _tensor_info_json(info) for name, info in sorted(signatures[key].outputs.items())},
            "method_name": signatures[key].method_name,
        }
        for key in sorted(signatures)
    }


def load_version(name: str, version_dir: Path) -> LoadedVersion:
    """Load one version folder (raises whatever TensorFlow raises when it does not load)."""
    from tfrec._keras import tf

    loaded = tf.saved_model.load(str(version_dir))
    functions = dict(loaded.signatures)
    input_specs = {key: dict(fn.structured_input_signature[1]) for key, fn in functions.items()}
    return LoadedVersion(name, int(version_dir.name), version_dir, functions, input_specs, signature_defs_json(version_dir), loaded)


def _one_line(error: BaseException) -> str:
    text = (getattr(error, "message", None) or str(error)).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else 'no message'}"


class ModelRegistry:
    """The served version of each model under ``base_dir`` (see the module docstring)."""

    def __init__(self, base_dir: str | Path, models: list[str] | None = None):
        self.base_dir = Path(base_dir)
        self.models = list(models) if models else None
        self._served: dict[str, LoadedVersion] = {}
        self._failed: dict[tuple[str, int], tuple] = {}  # (model, version) -> folder stamp when it failed
        self._poll_lock = threading.Lock()  # one poll at a time; readers never wait for it

    # ------------------------------------------------------------------ reading
    def names(self) -> list[str]:
        return sorted(self._served)

    def get(self, name: str, version: int | None = None) -> LoadedVersion:
        served = self._served.get(name)
        if served is None:
            raise ServableNotFound(f"Servable not found for request: {'Latest' if version is None else 'Specific'}({name}"
                                   f"{'' if version is None else f', {version}'})")
        if version is not None and served.version != version:
            raise ServableNotFound(f"Servable not found for request: Specific({name}, {version}) (version {served.version} is served)")
        return served

    # ------------------------------------------------------------------ polling
    def _model_dirs(self) -> dict[str, Path]:
        if not self.base_dir.is_dir():
            return {}
        found = {p.name: p for p in self.base_dir.iterdir() if p.is_dir() and not p.name.startswith(".")}
        if self.models is not None:
            found = {name: path for name, path in found.items() if name in self.models}
        return found

    def _try_load(self, name: str, version_dir: Path) -> LoadedVersion | None:
        key, stamp = (name, int(version_dir.name)), _folder_stamp(version_dir)
        if self._failed.get(key) == stamp:
            return None  # failed before and unchanged since
        try:
            loaded = load_version(name, version_dir)
        except Exception as error:  # a corrupt SavedModel fails in many TF/protobuf/OS ways
            self._failed[key] = stamp
            log.error("model %s version %s does not load (%s); %s", name, version_dir.name, _one_line(error),
                      f"still serving version {self._served[name].version}" if name in self._served else "not served")
            return None
        self._failed.pop(key, None)
        return loaded

    def _poll_model(self, name: str, model_dir: Path) -> None:
        current = self._served.get(name)
        complete = [path for path in numbered_entries(model_dir) if incomplete_reason(path) is None]
        current_present = current is not None and any(int(path.name) == current.version for path in complete)
        for version_dir in complete:
            version = int(version_dir.name)
            if current_present and version <= current.version:
                return  # the served version is the newest that loads
            loaded = self._try_load(name, version_dir)
            if loaded is not None:
                self._served = {**self._served, name: loaded}  # one assignment (copy on write): readers see old or new, whole
                log.info("model %s: serving version %d (%s)%s", name, version, version_dir,
                         f", replacing version {current.version}" if current is not None else "")
                return
        if current is not None and not current_present:
            self._drop(name)
            log.warning("model %s: version %d was removed and no other version loads; model unloaded", name, current.version)

    def _drop(self, name: str) -> None:
        self._served = {key: value for key, value in self._served.items() if key != name}

    def poll(self) -> None:
        """Rescan ``base_dir`` once and load / swap / drop versions (blocking: run it off the event loop)."""
        with self._poll_lock:
            model_dirs = self._model_dirs()
            for name in list(self._served):
                if name not in model_dirs:
                    self._drop(name)
                    log.warning("model %s: folder removed; model unloaded", name)
            for name, model_dir in sorted(model_dirs.items()):
                try:
                    self._poll_model(name, model_dir)
                except OSError as error:  # a folder that vanished or became unreadable mid-scan
                    log.error("model %s: cannot scan %s (%s)", name, model_dir, _one_line(error))
