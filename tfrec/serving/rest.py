"""TF Serving's REST API over tfrec SavedModels: a Starlette app (``create_app``).

Paths (matched case-insensitively, as TF Serving does; ``{v}`` is an integer version):

- ``GET  /v1/models/{name}[/versions/{v}]`` -> ``{"model_version_status": [{"version": "3",
  "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}``.
- ``GET  /v1/models/{name}[/versions/{v}]/metadata`` -> ``{"model_spec": {"name", "signature_name": "",
  "version": "3"}, "metadata": {"signature_def": {"signature_def": {key: {"inputs", "outputs",
  "method_name"}}}}}``, read from ``saved_model.pb`` as TF Serving does (dtypes such as
  ``"DT_STRING"``, ``tensor_shape`` with ``dim`` sizes as strings and ``unknown_rank``, tensor names).
- ``POST /v1/models/{name}[/versions/{v}]:predict`` with ``{"signature_name"?, "inputs": {...}}``
  (columnar; answered ``{"outputs": {...}}``) or ``{"signature_name"?, "instances": [{...}, ...]}``
  (row; answered ``{"predictions": [{...}, ...]}``). As in TF Serving, a signature with a single
  output (``score``) drops the output's name: ``{"outputs": [..]}`` / ``{"predictions": [..]}``.
- ``POST ...:classify`` and ``...:regress``: tfrec models have no classification or regression
  signature, so they answer 400 as TF Serving does for such a model ("Expected classification
  signature method_name to be tensorflow/serving/classify. Was: tensorflow/serving/predict", or
  "No signature was found with the name: X"); an unknown model or version is still a 404.

tfrec decisions:

- ``signature_name`` defaults to ``serving_default``, which means ``recommend`` (tfrec exports
  ``recommend``, ``score`` and sometimes ``similar_items``, and no ``serving_default`` key).
- ``k`` is a scalar input (it sets the output width), so it cannot be batched. The columnar
  format carries it as it is (``"inputs": {..., "k": 10}``): the portable way, the one TF
  Serving accepts. The row format is accepted too when every instance has the same ``k``
  (``"instances": [{"user_id": "3", "history": [""], "k": 10}, ...]``): tfrec gives it to the
  signature once and answers ``predictions``, one object per row; different values are a
  400. TF Serving itself refuses a scalar input in the row format (it stacks every input
  along a batch dimension), so a client meant for both servers uses the columnar format.
- Values: strings are JSON strings, or ``{"b64": "..."}`` (base64 bytes) on input; a string output
  is a JSON string (``{"b64": ...}`` when its tensor name ends in ``_bytes`` or it is not UTF-8).
  Nested lists must be rectangular: pad histories with ``""`` (tfrec's padding id). Non-finite
  floats are written as the bare tokens ``NaN``, ``Infinity``, ``-Infinity`` (an empty slot of a
  top-k list, when fewer than k items are left to recommend, is ``""`` with score ``-Infinity``).
- An unknown ``signature_name`` is a 400 ("Serving signature name: "x" not found in signature
  def"), as TF Serving's predict_util answers (INVALID_ARGUMENT).

Errors are ``{"error": "<one line>"}``: 400 for anything wrong in a request (malformed JSON, both
or neither of inputs/instances, a missing or unknown input, wrong type or shape, k out of range,
over the ``Limits``; the signatures' ``InvalidArgumentError`` is mapped to 400), 404 for an unknown
model or a version that is not loaded, 500 (one line, logged with its traceback) for a server
fault. TensorFlow work runs in the app's worker threads (a ``ThreadPoolExecutor``, the event loop's
``run_in_executor``: a lighter hand-off than anyio's thread pool), never on the event loop.
The served versions come from a ``tfrec.serving.registry.ModelRegistry``, polled every
``poll_seconds`` in a worker thread.

tfrec-only endpoints (under ``/tfrec/v1/``, a path TF Serving does not use; JSON, errors as above):

- ``GET /tfrec/v1/models`` -> ``{"models": [{"name", "version": "3", "model", "n_users", "n_items",
  "config", "signatures", "similar_items": bool, "uses_history", "predicts_ratings", "trained_on"}, ...],
  "limits": {"max_batch", "max_history", "max_k"}}``: every served model (sorted by name) with
  what its ``assets/tfrec.json`` says of it (``null`` fields when the asset is missing or
  unreadable) and, as ``trained_on``, its ``assets/training.json`` record (data, fingerprint,
  split, protocol, counts, trained_at, tfrec_version; ``null`` for exports made before it).
- ``GET /tfrec/v1/models/{name}/catalog?q=toy&limit=20`` -> ``{"name", "version", "query",
  "matches": N, "items": [{"item_id", "title"}, ...]}``: the items of the loaded version's
  ``assets/catalog.jsonl`` whose title or id contains ``q`` (case-insensitive; an empty ``q``
  matches every item), in catalog order, at most ``limit`` (1..1000, default 20); ``matches``
  counts them all. 400 for a bad ``limit``, 404 for an unknown model or a version without a
  catalog asset.
- ``GET /tfrec/v1/models/{name}/titles?id=50&id=181`` -> ``{"name", "version", "items":
  [{"item_id", "title"}, ...]}`` in the order asked (``title`` is ``null`` for an id not in
  the catalog); ``id`` repeated, 1..max(1000, max_k) of them, else 400.

The catalog and ``tfrec.json`` of a version are read once and cached until another version
of the model is served. ``GET /`` is a small page (``tfrec/serving/static``: index.html,
app.js, style.css, served under ``/static/``) that compares models side by side: it is a
plain client of ``/tfrec/v1/models``, the catalog and titles endpoints and ``:predict``, and
takes query parameters that fill in the form and run it on load (``?models=a,b&user=3&k=5``,
``history=50&history=181``).
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import logging
import re
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from tfrec._keras import tf
from tfrec.export.catalog import read_catalog
from tfrec.export.provenance import read_training_record
from tfrec.export.savedmodel import METADATA_ASSET
from tfrec.serving.registry import LoadedVersion, ModelRegistry, ServableNotFound

log = logging.getLogger("tfrec.serve")

SERVING_DEFAULT = "serving_default"
#: What ``serving_default`` (and a request without ``signature_name``) means for a tfrec model.
DEFAULT_SIGNATURE = "recommend"
PREDICT_METHOD = "tensorflow/serving/predict"
_INT64_MAX = 2**63 - 1

_GET_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?(?P<metadata>/metadata)?/?", re.I)
_POST_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?:(?P<method>predict|classify|regress)",
                        re.I)

_TFREC_PATH = re.compile(r"/tfrec/v1/models(?:/(?P<name>[^/:]+)/(?P<what>catalog|titles))?/?", re.I)
#: The page and its files (shipped as package data).
STATIC_DIR = Path(__file__).resolve().with_name("static")
_STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".png": "image/png", ".svg": "image/svg+xml"}
MAX_CATALOG_LIMIT = 1000

# TensorFlow error codes -> HTTP status, as TF Serving's ToHTTPStatusCode
_HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401, "RESOURCE_EXHAUSTED": 429, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504, "CANCELLED": 499,
}


@dataclass(frozen=True)
class Limits:
    """Per-request bounds; past them a request is a 400 naming the limit and its option."""

    max_batch: int = 1024  # rows (users / items / pairs) per request
    max_history: int = 1000  # columns of a rank-2 input (the history)
    max_k: int = 1000
    max_body_bytes: int = 64 * 1024 * 1024


class ApiError(Exception):
    """A request that cannot be answered: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class TFServingJSONResponse(JSONResponse):
    """JSON as TF Serving writes it: UTF-8, non-finite floats as the bare tokens NaN / Infinity / -Infinity."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode("utf-8")


def _error(status: int, message: str) -> TFServingJSONResponse:
    return TFServingJSONResponse({"error": message}, status_code=status)


# ---------------------------------------------------------------------------- TensorFlow errors
_ASSERTION = re.compile(r"assertion failed: (.*)")


def tf_error_message(error: tf.errors.OpError) -> str:
    """A readable line from a TensorFlow error: the failed check of a signature (``k is larger
    than the number of items in the catalog: [50] [20]``) or the first meaningful line."""
    text = error.message or str(error)
    match = _ASSERTION.search(text)
    if match:
        return re.sub(r"\[([^\[\]]*)\]", r"\1", match.group(1).split("\n")[0]).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("Graph execution error")]
    return lines[0] if lines else type(error).__name__


# ---------------------------------------------------------------------------- JSON -> tensors
def _leaf(value: Any, dtype: tf.DType, where: str) -> Any:
    if dtype == tf.string:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, f"{where}: not valid base64 in {{\"b64\": ...}}") from None
        raise ApiError(400, f"{where} is not of expected type: string (got {_json_type(value)}; bytes may be sent as {{\"b64\": \"...\"}})")
    if dtype.is_integer:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(400, f"{where} is not of expected type: {dtype.name} (got {_json_type(value)})")
        if not dtype.min <= value <= dtype.max:
            raise ApiError(400, f"{where} = {value} is out of the range of {dtype.name}")
        return value
    if dtype.is_floating:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ApiError(400, f"{where} is not of expected type: {dtype.name} (got {_json_type(value)})")
        return value
    if dtype == tf.bool:
        if not isinstance(value, bool):
            raise ApiError(400, f"{where} is not of expected type: bool (got {_json_type(value)})")
        return value
    raise ApiError(400, f"{where}: inputs of type {dtype.name} are not supported")


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _limit_for(depth: int, limits: Limits) -> tuple[int, str] | None:
    if depth == 0:
        return limits.max_batch, "--max-batch"
    if depth == 1:
        return limits.max_history, "--max-history"
    return None


def _flatten(value: Any, rank: int, dtype: tf.DType, where: str, limits: Limits, out: list, depth: int = 0) -> tuple[int, ...]:
    """Append the leaves of ``value`` (nested lists ``rank`` deep) to ``out``; return its shape."""
    if rank == 0:
        if isinstance(value, list):
            raise ApiError(400, f"{where} must be a single value (a scalar), got an array")
        out.append(_leaf(value, dtype, where))
        return ()
    if not isinstance(value, list):
        raise ApiError(400, f"{where} must be an array ({rank} more dimension{'s' if rank > 1 else ''} expected), got {_json_type(value)}")
    limit = _limit_for(depth, limits)
    if limit is not None and len(value) > limit[0]:
        raise ApiError(400, f"{where} has {len(value)} entries, over the limit of {limit[0]} ({limit[1]})")
    shape = None
    for position, element in enumerate(value):
        element_shape = _flatten(element, rank - 1, dtype, f"{where}[{position}]", limits, out, depth + 1)
        if shape is not None and element_shape != shape:
            raise ApiError(400, f"{where} is ragged: {where}[{position}] has shape {list(element_shape)}, {where}[0] has {list(shape)} "
                                "(every row must have the same length; pad string ids with \"\")")
        shape = element_shape
    if shape is None:  # an empty list: the inner dimensions are 0
        shape = (0,) * (rank - 1)
    return (len(value), *shape)


def to_tensor(value: Any, spec: tf.TensorSpec, where: str, limits: Limits) -> tf.Tensor:
    """One JSON input value -> a tensor of ``spec``'s dtype; 400 unless its rank and known dimensions match."""
    rank = spec.shape.rank
    flat: list = []
    shape = _flatten(value, rank, spec.dtype, where, limits, flat)
    for axis, (got, expected) in enumerate(zip(shape, spec.shape.as_list())):
        if expected is not None and got != expected:
            raise ApiError(400, f"{where} has {got} entries in dimension {axis}, expected {expected}")
    if spec.dtype == tf.string:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return tf.constant(array.reshape(shape), tf.string, shape=shape)
    return tf.constant(np.array(flat, dtype=spec.dtype.as_numpy_dtype).reshape(shape), spec.dtype)


# ---------------------------------------------------------------------------- tensors -> JSON
def _string_json(value: bytes, as_b64: bool) -> Any:
    if not as_b64:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return {"b64": base64.b64encode(value).decode("ascii")}


def to_json(name: str, array: np.ndarray) -> Any:
    """A tensor's value as nested JSON lists (strings decoded, floats as Python floats)."""
    if array.dtype == object:
        as_b64 = name.endswith("_bytes")
        flat = [_string_json(item, as_b64) for item in array.ravel()]
        if array.ndim == 0:
            return flat[0]
        nested = np.empty(len(flat), dtype=object)
        nested[:] = flat
        return nested.reshape(array.shape).tolist()
    return array.tolist()


# ---------------------------------------------------------------------------- requests
def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise ApiError(400, "JSON Parse error: The document is empty")
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise ApiError(400, f"JSON Parse error: not UTF-8 ({error.reason} at byte {error.start})") from None
    except RecursionError:
        raise ApiError(400, "JSON Parse error: nested too deeply") from None
    except ValueError as error:
        raise ApiError(400, f"JSON Parse error: {error}") from None


def _signature_key(loaded: LoadedVersion, request: dict) -> str:
    name = request.get("signature_name", SERVING_DEFAULT)
    if not isinstance(name, str):
        raise ApiError(400, f"'signature_name' must be a string, got {_json_type(name)}")
    key = DEFAULT_SIGNATURE if name in ("", SERVING_DEFAULT) else name
    if key not in loaded.functions:
        raise ApiError(400, f"Serving signature name: \"{name}\" not found in signature def (model {loaded.name} has: "
                            f"{', '.join(sorted(loaded.functions))}; {SERVING_DEFAULT} means {DEFAULT_SIGNATURE})")
    return key


def _columnar_inputs(key: str, specs: dict, inputs: Any, limits: Limits) -> dict[str, tf.Tensor]:
    if not isinstance(inputs, dict):
        if len(specs) != 1:
            raise ApiError(400, f"'inputs' must be an object with the inputs of signature '{key}': {', '.join(sorted(specs))}")
        inputs = {next(iter(specs)): inputs}
    unknown = sorted(set(inputs) - set(specs))
    if unknown:
        raise ApiError(400, f"unknown input{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for signature '{key}' "
                            f"(its inputs: {', '.join(sorted(specs))})")
    missing = sorted(set(specs) - set(inputs))
    if missing:
        raise ApiError(400, f"missing input{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} for signature '{key}' "
                            f"(its inputs: {', '.join(sorted(specs))})")
    tensors = {name: to_tensor(inputs[name], spec, name, limits) for name, spec in specs.items()}
    _check_k(specs, tensors, limits)
    return tensors


def _check_k(specs: dict, tensors: dict[str, tf.Tensor], limits: Limits) -> None:
    for name, spec in specs.items():
        if spec.shape.rank == 0 and name == "k" and spec.dtype.is_integer and int(tensors[name]) > limits.max_k:
            raise ApiError(400, f"k = {int(tensors[name])} is over the limit of {limits.max_k} (--max-k)")


def _row_inputs(key: str, specs: dict, instances: Any, limits: Limits) -> dict[str, tf.Tensor]:
    if not isinstance(instances, list):
        raise ApiError(400, f"'instances' must be an array of objects, one per row, got {_json_type(instances)}")
    if not instances:
        raise ApiError(400, "'instances' is empty: send at least one row")
    if len(instances) > limits.max_batch:
        raise ApiError(400, f"'instances' has {len(instances)} rows, over the limit of {limits.max_batch} (--max-batch)")
    columns: dict[str, list] = {name: [] for name in specs}
    for row, instance in enumerate(instances):
        if len(specs) == 1 and not (isinstance(instance, dict) and set(instance) == set(specs)):
            instance = {next(iter(specs)): instance}
        if not isinstance(instance, dict):
            raise ApiError(400, f"instances[{row}] must be an object with the inputs of signature '{key}' ({', '.join(sorted(specs))}), "
                                f"got {_json_type(instance)}")
        unknown, missing = sorted(set(instance) - set(specs)), sorted(set(specs) - set(instance))
        if unknown or missing:
            problem = f"missing input {', '.join(map(repr, missing))}" if missing else f"unknown input {', '.join(map(repr, unknown))}"
            raise ApiError(400, f"instances[{row}]: {problem} for signature '{key}' (its inputs: {', '.join(sorted(specs))})")
        for name in specs:
            columns[name].append(instance[name])
    tensors = {name: to_tensor(columns[name], spec, f"instances[*].{name}", limits) for name, spec in specs.items() if spec.shape.rank > 0}
    for name, spec in specs.items():
        if spec.shape.rank == 0:  # a scalar input (k): the same value in every row, given once to the signature
            if any(value != columns[name][0] for value in columns[name]):
                raise ApiError(400, f"instances[*].{name}: the scalar input '{name}' must have the same value in every row (it applies to the "
                                    f"whole request), got {sorted(set(map(str, columns[name])))[:5]}; send rows with different {name} as "
                                    "separate requests, or use the columnar format ('inputs')")
            tensors[name] = to_tensor(columns[name][0], spec, f"instances[0].{name}", limits)
    _check_k(specs, tensors, limits)
    return tensors


def predict(loaded: LoadedVersion, request: Any, limits: Limits) -> dict[str, Any]:
    """Answer one parsed :predict request (blocking: TensorFlow work)."""
    if not isinstance(request, dict):
        raise ApiError(400, f"the request must be a JSON object with 'inputs' or 'instances', got {_json_type(request)}")
    has_inputs, has_instances = "inputs" in request, "instances" in request
    if has_inputs and has_instances:
        raise ApiError(400, "Not both 'inputs' (columnar format) and 'instances' (row format) can be specified in the same request")
    if not has_inputs and not has_instances:
        raise ApiError(400, "Missing 'inputs' (columnar format) or 'instances' (row format) key")
    unknown = sorted(set(request) - {"inputs", "instances", "signature_name"})
    if unknown:
        raise ApiError(400, f"unknown request key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                            "(expected signature_name and inputs or instances)")
    key = _signature_key(loaded, request)
    specs = loaded.input_specs[key]
    if has_inputs:
        tensors = _columnar_inputs(key, specs, request["inputs"], limits)
    else:
        tensors = _row_inputs(key, specs, request["instances"], limits)
    outputs = {name: value.numpy() for name, value in loaded.functions[key](**tensors).items()}
    names = sorted(outputs)
    if has_inputs:
        if len(names) == 1:
            return {"outputs": to_json(names[0], outputs[names[0]])}
        return {"outputs": {name: to_json(name, outputs[name]) for name in names}}
    columns = {name: to_json(name, outputs[name]) for name in names}
    rows = len(columns[names[0]])
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    return {"predictions": [{name: columns[name][row] for name in names} for row in range(rows)]}


def classify_or_regress(loaded: LoadedVersion, method: str, request: Any) -> dict[str, Any]:
    """``:classify`` / ``:regress``: tfrec models have no such signature (400, as TF Serving)."""
    expected = f"tensorflow/serving/{method}"
    name = request.get("signature_name", SERVING_DEFAULT) if isinstance(request, dict) else SERVING_DEFAULT
    key = DEFAULT_SIGNATURE if name in ("", SERVING_DEFAULT) else name
    if not isinstance(key, str) or key not in loaded.signature_defs:
        raise ApiError(400, f"No signature was found with the name: {name} (tfrec models answer :predict only)")
    was = loaded.signature_defs[key]["method_name"]
    kind = "classification" if method == "classify" else "regression"
    raise ApiError(400, f"Expected {kind} signature method_name to be {expected}. Was: {was} (tfrec models answer :predict only)")


def status_json(loaded: LoadedVersion) -> dict[str, Any]:
    return {"model_version_status": [{"version": str(loaded.version), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def metadata_json(loaded: LoadedVersion) -> dict[str, Any]:
    return {"model_spec": {"name": loaded.name, "signature_name": "", "version": str(loaded.version)},
            "metadata": {"signature_def": {"signature_def": loaded.signature_defs}}}


# ---------------------------------------------------------------------------- tfrec-only endpoints
@dataclass(frozen=True)
class Catalog:
    """A version's catalog asset, ready to search: ids, titles and their case-folded forms."""

    ids: list[str]
    titles: list[str]
    folded: list[str]  # "<id>\n<title>", case-folded
    by_id: dict[str, str]

    @classmethod
    def read(cls, loaded: LoadedVersion) -> Catalog:
        try:
            frame = read_catalog(loaded.path / "assets")
        except (ValueError, OSError) as error:
            raise ApiError(404, f"model {loaded.name} version {loaded.version} has no readable catalog asset ({error})") from None
        ids, titles = frame["item_id"].tolist(), frame["title"].tolist()
        return cls(ids, titles, [f"{item}\n{title}".casefold() for item, title in zip(ids, titles)], dict(zip(ids, titles)))

    def search(self, query: str, limit: int) -> tuple[int, list[dict[str, str]]]:
        needle = query.casefold()
        hits = [row for row, text in enumerate(self.folded) if needle in text] if needle else range(len(self.ids))
        return len(hits), [{"item_id": self.ids[row], "title": self.titles[row]} for row in hits[:limit]]


def read_meta(loaded: LoadedVersion) -> dict[str, Any] | None:
    """A version's ``tfrec.json`` asset, or None (logged) when it is missing or not a JSON object."""
    path = loaded.path / "assets" / METADATA_ASSET
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        log.warning("model %s version %d: cannot read %s (%s)", loaded.name, loaded.version, path, error)
        return None
    return meta if isinstance(meta, dict) else None


class AssetCache:
    """What was read from a loaded version's assets, kept while that version is served: an entry
    holds a weak reference to its ``LoadedVersion`` and is replaced when another one is served."""

    def __init__(self):
        self._entries: dict[tuple[str, str], tuple[weakref.ref, Any]] = {}
        self._lock = threading.Lock()

    def get(self, loaded: LoadedVersion, kind: str, read: Callable[[LoadedVersion], Any]) -> Any:
        entry = self._entries.get((loaded.name, kind))
        if entry is not None and entry[0]() is loaded:
            return entry[1]
        value = read(loaded)
        with self._lock:
            self._entries = {key: old for key, old in self._entries.items() if old[0]() is not None}
            self._entries[(loaded.name, kind)] = (weakref.ref(loaded), value)
        return value


def models_json(registry: ModelRegistry, cache: AssetCache, limits: Limits) -> dict[str, Any]:
    models = []
    for name in registry.names():
        try:
            loaded = registry.get(name)
        except ServableNotFound:  # dropped since names() was read
            continue
        meta = cache.get(loaded, "meta", read_meta) or {}
        record = cache.get(loaded, "training", lambda version: read_training_record(version.path / "assets"))
        models.append({
            "name": name, "version": str(loaded.version), "model": meta.get("model"), "n_users": meta.get("n_users"),
            "n_items": meta.get("n_items"), "config": meta.get("config"), "signatures": sorted(loaded.functions),
            "similar_items": "similar_items" in loaded.functions, "uses_history": meta.get("uses_history"),
            "predicts_ratings": meta.get("predicts_ratings"), "trained_on": None if record is None else record.to_dict(),
        })
    return {"models": models, "limits": {"max_batch": limits.max_batch, "max_history": limits.max_history, "max_k": limits.max_k}}


def _single_param(request: Request, key: str, default: str) -> str:
    values = request.query_params.getlist(key)
    if len(values) > 1:
        raise ApiError(400, f"query parameter '{key}' given {len(values)} times; give it once")
    return values[0] if values else default


def catalog_json(loaded: LoadedVersion, catalog: Catalog, request: Request) -> dict[str, Any]:
    query = _single_param(request, "q", "")
    text = _single_param(request, "limit", "20").strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_CATALOG_LIMIT:
        raise ApiError(400, f"limit must be an integer from 1 to {MAX_CATALOG_LIMIT}, got '{text}'")
    matches, items = catalog.search(query, int(text))
    return {"name": loaded.name, "version": str(loaded.version), "query": query, "matches": matches, "items": items}


def titles_json(loaded: LoadedVersion, catalog: Catalog, request: Request, limits: Limits) -> dict[str, Any]:
    ids = request.query_params.getlist("id")
    most = max(MAX_CATALOG_LIMIT, limits.max_k)
    if not ids:
        raise ApiError(400, "give the item ids as repeated query parameters: ?id=50&id=181")
    if len(ids) > most:
        raise ApiError(400, f"{len(ids)} ids asked, over the limit of {most}")
    return {"name": loaded.name, "version": str(loaded.version), "items": [{"item_id": item, "title": catalog.by_id.get(item)} for item in ids]}


def static_response(path: str) -> Response:
    """``/`` (the page) or ``/static/<file>``: only plain files directly in ``STATIC_DIR``."""
    name = "index.html" if path == "/" else path[len("/static/"):]
    file = STATIC_DIR / name
    if "/" in name or name.startswith(".") or file.suffix not in _STATIC_TYPES or not file.is_file():
        raise ApiError(404, f"Not found: GET {path}")
    return FileResponse(file, media_type=_STATIC_TYPES[file.suffix], headers={"Cache-Control": "no-cache"})


# ---------------------------------------------------------------------------- the app
def _version(match: re.Match) -> int | None:
    if match["label"] is not None:
        raise ApiError(400, f"Unrecognized servable version label: {match['label']} (tfrec serve assigns no labels; use /versions/N)")
    text = match["version"]
    if text is None:
        return None
    if not text.isdigit():
        raise ApiError(400, f"Malformed request: version must be an integer, got '{text}'")
    if int(text) > _INT64_MAX:
        raise ApiError(400, f"Failed to convert version: {text} to numeric.")
    return int(text)


async def _read_body(request: Request, limits: Limits) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_body_bytes:
        raise ApiError(400, f"the request body has {int(length)} bytes, over the limit of {limits.max_body_bytes} (--max-body-mb)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise ApiError(400, f"the request body is over the limit of {limits.max_body_bytes} bytes (--max-body-mb)")
        chunks.append(chunk)
    return b"".join(chunks)


def _predict_response(loaded, body: bytes, limits: Limits) -> TFServingJSONResponse:
    """A ``:predict`` answer from the raw body: JSON decoding, the signature call and JSON
    encoding in one worker-thread hop (each hop costs a thread hand-off)."""
    return TFServingJSONResponse(predict(loaded, parse_json(body), limits))


def create_app(registry: ModelRegistry, limits: Limits | None = None, poll_seconds: float | None = 1.0) -> Starlette:
    """The REST app. On start-up it loads every model (``registry.poll()`` in a worker thread)
    and, when ``poll_seconds`` is set, polls the folder that often until shut down."""
    limits = limits or Limits()
    pool: list[ThreadPoolExecutor] = []  # the worker threads of the running app (made on first use, shut down with it)

    async def run_in_threadpool(function: Callable[..., Any], *args: Any) -> Any:
        if not pool:
            pool.append(ThreadPoolExecutor(thread_name_prefix="tfrec-serve"))  # TensorFlow releases the GIL: requests run side by side
        return await asyncio.get_running_loop().run_in_executor(pool[0], functools.partial(function, *args))

    async def handle(request: Request) -> TFServingJSONResponse:
        path = request.url.path
        try:
            if request.method == "GET":
                match = _GET_PATH.fullmatch(path)
                if match is None:
                    raise ApiError(400, "Missing model name in request." if re.fullmatch(r"/v1/models/?", path, re.I)
                                   else f"Malformed request: GET {path}")
                loaded = registry.get(match["name"], _version(match))
                return TFServingJSONResponse(metadata_json(loaded) if match["metadata"] else status_json(loaded))
            match = _POST_PATH.fullmatch(path)
            if match is None:
                raise ApiError(400, f"Malformed request: POST {path}")
            version, method = _version(match), match["method"].lower()
            body = await _read_body(request, limits)
            loaded = registry.get(match["name"], version)
            if method == "predict":
                return await run_in_threadpool(_predict_response, loaded, body, limits)
            parsed = await run_in_threadpool(parse_json, body)
            return TFServingJSONResponse(classify_or_regress(loaded, method, parsed))
        except ApiError as error:
            return _error(error.status, error.message)
        except ServableNotFound as error:
            return _error(404, str(error))
        except tf.errors.OpError as error:
            status = _HTTP_STATUS.get(_code_name(error), 500)
            if status == 500:
                log.exception("%s %s failed", request.method, path)
            return _error(status, tf_error_message(error))
        except Exception as error:  # a server fault: one line to the client, the traceback to the log
            log.exception("%s %s failed", request.method, path)
            return _error(500, f"Internal error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}".rstrip(": "))

    async def not_found(request: Request) -> TFServingJSONResponse:
        return _error(404, f"Not found: {request.method} {request.url.path} (the API is under /v1/models/ and /tfrec/v1/models; the page is /)")

    cache = AssetCache()

    async def handle_tfrec(request: Request) -> Response:
        path = request.url.path
        try:
            match = _TFREC_PATH.fullmatch(path)
            if match is None or request.method != "GET":
                raise ApiError(400, f"Malformed request: {request.method} {path} (tfrec endpoints: GET /tfrec/v1/models, "
                                    "GET /tfrec/v1/models/{name}/catalog?q=&limit=, GET /tfrec/v1/models/{name}/titles?id=)")
            if match["name"] is None:
                return TFServingJSONResponse(await run_in_threadpool(models_json, registry, cache, limits))
            loaded = registry.get(match["name"])
            catalog = await run_in_threadpool(cache.get, loaded, "catalog", Catalog.read)
            if match["what"].lower() == "catalog":
                return TFServingJSONResponse(catalog_json(loaded, catalog, request))
            return TFServingJSONResponse(titles_json(loaded, catalog, request, limits))
        except ApiError as error:
            return _error(error.status, error.message)
        except ServableNotFound as error:
            return _error(404, str(error))
        except Exception as error:  # a server fault: one line to the client, the traceback to the log
            log.exception("%s %s failed", request.method, path)
            return _error(500, f"Internal error: {type(error).__name__}")

    async def poll_forever() -> None:
        while True:
            await asyncio.sleep(poll_seconds)
            try:
                await run_in_threadpool(registry.poll)
            except Exception:  # keep polling whatever one scan hit
                log.exception("polling %s failed", registry.base_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await run_in_threadpool(registry.poll)
        if not registry.names():
            log.warning("no model is being served yet from %s (waiting for versions)", registry.base_dir)
        task = asyncio.create_task(poll_forever()) if poll_seconds else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if pool:
                pool.pop().shutdown(wait=False)

    async def route(request: Request) -> Response:
        path = request.url.path
        if request.method in ("GET", "POST") and path[:4].lower() == "/v1/":
            return await handle(request)
        if path[:7].lower() == "/tfrec/":
            return await handle_tfrec(request)
        if request.method in ("GET", "HEAD") and (path == "/" or path.startswith("/static/")):
            try:
                return static_response(path)
            except ApiError as error:
                return _error(error.status, error.message)
        return await not_found(request)

    routes = [Route("/{path:path}", route, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.registry = registry
    app.state.limits = limits
    return app


def _code_name(error: tf.errors.OpError) -> str:
    """The canonical code name of a TensorFlow error ("INVALID_ARGUMENT")."""
    from tensorflow.core.protobuf import error_codes_pb2

    try:
        return error_codes_pb2.Code.Name(error.error_code)
    except ValueError:
        return "UNKNOWN"
