"""Export a fitted model as a SavedModel in TF Serving's layout, checked, then atomically."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from tfrec._keras import tf
from tfrec.data.splits import Split
from tfrec.export.catalog import CATALOG_ASSET, write_catalog
from tfrec.export.layout import next_version, remove_stale_staging, staging_dir, versions
from tfrec.export.paths import check_model_name, check_output_dir
from tfrec.export.provenance import TRAINING_ASSET, training_record, write_training_record
from tfrec.export.verify import check_saved_model, check_weights
from tfrec.models.base import Recommender

METADATA_ASSET = "tfrec.json"
#: Attempts at taking a version number before giving up (each is lost only to a concurrent export).
_RENAME_ATTEMPTS = 100

__all__ = ["CATALOG_ASSET", "METADATA_ASSET", "TRAINING_ASSET", "export_model", "metadata", "versions"]


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


def _write_assets(model: Recommender, folder: Path, split: Split | None) -> tuple[Path, Path, Path]:
    catalog = folder / CATALOG_ASSET
    ids = [item.decode() for item in model.items.ids.numpy()[1:]]
    titles = [title.decode() for title in model.item_titles.numpy()[1:]]
    write_catalog(catalog, ids, titles)
    meta = folder / METADATA_ASSET
    meta.write_text(json.dumps(metadata(model), indent=2, default=str), encoding="utf-8")
    training = folder / TRAINING_ASSET
    write_training_record(training, training_record(model, split))
    return catalog, meta, training


def _publish(staging: Path, model_dir: Path) -> Path:
    """Rename ``staging`` to the next free version number (atomic; retried when a concurrent
    export takes the number first) and return the version folder."""
    for _ in range(_RENAME_ATTEMPTS):
        target = model_dir / str(next_version(model_dir))
        try:
            os.rename(staging, target)  # fails if another export took the number
            return target
        except OSError:
            if not (target.exists() or target.is_symlink()):
                raise
    raise ValueError(f"{model_dir}: no free version number after {_RENAME_ATTEMPTS} attempts (is another process exporting in a loop?)")


def export_model(model: Recommender, export_dir: str | Path = "savedmodels", name: str | None = None, *, split: Split | None = None) -> Path:
    """Write ``model`` to ``<export_dir>/<name>/<version>/`` and return that folder.

    ``name`` defaults to the model's registry name; ``version`` is one more than the
    largest integer version already there (1 for the first). The SavedModel is written
    to a hidden temporary folder beside the versions and renamed into place, so a crash
    leaves earlier versions intact and no half-written version visible (TF Serving
    ignores folders whose names are not integers). Before the rename the model is checked
    (``tfrec.export.verify``): finite weights, and the staged folder loads and answers a
    probe request on every signature; a failed check raises ``ValueError`` and leaves no
    new version. Staging folders left by killed exports are removed first
    (``tfrec.export.layout.remove_stale_staging``). A version number is never reused:
    the new one is above every integer-named entry, folder or not.

    ``name`` must be one folder name (no separators, NUL or leading "."); ``export_dir``
    must be, or be creatable as, a writable folder; ``ValueError`` otherwise.

    Signatures: ``recommend``, ``score`` and, where the model has them,
    ``similar_items`` (see ``tfrec.models.base``). Assets: ``catalog.jsonl`` (item id and
    title of every item the model can recommend; ``tfrec.export.catalog``) and
    ``tfrec.json`` (model name, parameters, capabilities) and ``training.json``: what the
    model was trained on (``tfrec.export.provenance.TrainingRecord``). Pass ``split``, the
    ``tfrec.data.Split`` whose ``train`` part the model was fitted on, to record the data's
    fingerprint, the split and its protocol; without it the record holds what the model
    knows (the data name it was fitted on, its numbers of users, items and interactions).
    """
    if not bool(model.is_fitted.numpy()):
        raise ValueError(f"{model.registry_name}: fit the model before exporting it (model.fit(dataset) or tfrec.fit(model, data))")
    name = check_model_name(model.registry_name if name is None else name)
    model_dir = check_output_dir(Path(export_dir) / name, "export folder")
    try:
        check_weights(model)
    except ValueError as error:
        raise ValueError(f"{name}: not exported: {error}") from None
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(model_dir)
    staging = staging_dir(model_dir)
    with tempfile.TemporaryDirectory() as asset_dir:
        catalog, meta, training = _write_assets(model, Path(asset_dir), split)
        root = tf.Module()
        root.model = model
        root.catalog = tf.saved_model.Asset(str(catalog))
        root.metadata = tf.saved_model.Asset(str(meta))
        root.training = tf.saved_model.Asset(str(training))
        signatures = {key: fn.get_concrete_function() for key, fn in model.serving_functions().items()}
        try:
            tf.saved_model.save(root, str(staging), signatures=signatures)
            try:
                check_saved_model(staging, model)
            except ValueError as error:
                raise ValueError(f"{name}: not exported: {error}") from None
            return _publish(staging, model_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
