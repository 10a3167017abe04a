"""Export a fitted model as a SavedModel in TF Serving's layout, atomically."""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

from tfrec._keras import tf
from tfrec.models.base import Recommender

CATALOG_ASSET = "catalog.tsv"
METADATA_ASSET = "tfrec.json"
_VERSION = re.compile(r"^\d+$")


def versions(model_dir: str | Path) -> list[int]:
    """Integer versions already exported under ``model_dir`` (ascending)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and _VERSION.match(p.name))


def metadata(model: Recommender) -> dict:
    """What a server needs to know about an exported model, stored as an asset."""
    from tfrec import __version__

    return {
        "model": model.registry_name,
        "config": model.get_config(),
        "tfrec_version": __version__,
        "predicts_ratings": model.predicts_ratings,
        "uses_history": model.uses_history,
        "signatures": sorted(model.serving_functions()),
        "n_users": model.users.size - 1,
        "n_items": model.items.size - 1,
    }


def _write_assets(model: Recommender, folder: Path) -> tuple[Path, Path]:
    catalog = folder / CATALOG_ASSET
    ids = model.items.ids.numpy()[1:]
    titles = model.item_titles.numpy()[1:]
    with catalog.open("w", encoding="utf-8") as handle:
        handle.write("item_id\ttitle\n")
        for item, title in zip(ids, titles):
            handle.write(f"{item.decode()}\t{title.decode().replace(chr(9), ' ').replace(chr(10), ' ')}\n")
    meta = folder / METADATA_ASSET
    meta.write_text(json.dumps(metadata(model), indent=2, default=str), encoding="utf-8")
    return catalog, meta


def export_model(model: Recommender, export_dir: str | Path = "savedmodels", name: str | None = None) -> Path:
    """Write ``model`` to ``<export_dir>/<name>/<version>/`` and return that folder.

    ``name`` defaults to the model's registry name; ``version`` is one more than the
    largest integer version already there (1 for the first). The SavedModel is written
    to a hidden temporary folder beside the versions and renamed into place, so a crash
    leaves earlier versions intact and no half-written version visible (TF Serving
    ignores folders whose names are not integers).

    Signatures: ``recommend``, ``score`` and, where the model has them,
    ``similar_items`` (see ``tfrec.models.base``). Assets: ``catalog.tsv`` (item id and
    title of every item the model can recommend) and ``tfrec.json`` (model name,
    parameters, capabilities).
    """
    if not bool(model.is_fitted.numpy()):
        raise ValueError(f"{model.registry_name}: fit the model before exporting it (model.fit(dataset) or tfrec.fit(model, data))")
    model_dir = Path(export_dir) / (name or model.registry_name)
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".tmp-{uuid.uuid4().hex}"
    with tempfile.TemporaryDirectory() as asset_dir:
        catalog, meta = _write_assets(model, Path(asset_dir))
        root = tf.Module()
        root.model = model
        root.catalog = tf.saved_model.Asset(str(catalog))
        root.metadata = tf.saved_model.Asset(str(meta))
        signatures = {key: fn.get_concrete_function() for key, fn in model.serving_functions().items()}
        try:
            tf.saved_model.save(root, str(staging), signatures=signatures)
            while True:
                version = (versions(model_dir) or [0])[-1] + 1
                target = model_dir / str(version)
                try:
                    os.rename(staging, target)  # atomic; fails if another export took the number
                    break
                except OSError:
                    if not target.exists():
                        raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target

