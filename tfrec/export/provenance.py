"""What an exported model was trained on: the ``training.json`` asset of a SavedModel.

``export_model`` writes a `TrainingRecord` next to the catalog: the data's name, a
fingerprint of the training interactions (``tfrec.data.dataset.interactions_fingerprint``),
the split and its protocol, the numbers of users, items and interactions, when and by
which tfrec version. ``ServedModel.trained_on`` reads it back (None for exports made
before the record existed). ``mismatch`` says when data evaluated on is not the data a
version was trained on. Nothing here imports TensorFlow.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tfrec.data.splits import Split
    from tfrec.models.base import Recommender

TRAINING_ASSET = "training.json"


@dataclass(frozen=True)
class TrainingRecord:
    """What one exported model was fitted on.

    data: the data's name ("demo", "ml-100k", a file name, "tf.data" for a plain
        ``tf.data.Dataset``), or None when unknown.
    fingerprint: ``"sha256:<hex>"`` of the training interactions, None when the export
        did not see them (``export_model`` without ``split=``).
    split, protocol: the split's name ("temporal", "u1", ...) and protocol letter ("R",
        "T", "S"), None when the model was not fitted on a split.
    n_users, n_items, n_interactions: what the model was fitted on.
    trained_at: UTC time of the export, ISO 8601 ("2026-12-03T18:04:05Z").
    tfrec_version: the tfrec that exported it.
    """

    data: str | None
    fingerprint: str | None
    split: str | None
    protocol: str | None
    n_users: int
    n_items: int
    n_interactions: int | None
    trained_at: str
    tfrec_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainingRecord:
        """The record in ``values``; keys this version does not know are ignored, missing ones are None."""
        return cls(**{f.name: values.get(f.name) for f in fields(cls)})

    def describe(self) -> str:
        """One line, e.g. ``demo, split temporal (protocol T): 30 users, 60 items, 280 interactions; 2026-12-03T18:04:05Z``."""
        where = self.data or "unknown data"
        if self.split:
            where += f", split {self.split}" + (f" (protocol {self.protocol})" if self.protocol else "")
        counts = f"{self.n_users:,} users, {self.n_items:,} items"
        if self.n_interactions is not None:
            counts += f", {self.n_interactions:,} interactions"
        return f"{where}: {counts}; {self.trained_at}"


def training_record(model: Recommender, split: Split | None = None) -> TrainingRecord:
    """The record of a fitted ``model``; with ``split`` (a ``tfrec.data.Split``, the one
    the model was fitted on: its ``train`` part) the data name, fingerprint, split and
    protocol come from it, else from what the model knows (the data name it was fitted on)."""
    from tfrec import __version__
    from tfrec.data.dataset import interactions_fingerprint

    train = None if split is None else split.train
    return TrainingRecord(
        data=train.name if train is not None else getattr(model, "fit_data_name", None),
        fingerprint=None if train is None else interactions_fingerprint(train.interactions),
        split=None if split is None else split.name,
        protocol=None if split is None else split.protocol,
        n_users=int(model.users.size - 1),
        n_items=int(model.items.size - 1),
        n_interactions=len(train.interactions) if train is not None else int(model.user_items.row_splits[-1].numpy()),
        trained_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        tfrec_version=__version__,
    )


def write_training_record(path: str | Path, record: TrainingRecord) -> None:
    Path(path).write_text(json.dumps(record.to_dict(), indent=2), encoding="utf-8")


def read_training_record(assets_dir: str | Path) -> TrainingRecord | None:
    """The record in ``assets_dir/training.json``; None when there is none (an older
    export) or it is not a record (then the model is served as if it had none)."""
    path = Path(assets_dir) / TRAINING_ASSET
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        return TrainingRecord.from_dict(values) if isinstance(values, dict) else None
    except (OSError, ValueError, TypeError):
        return None


def mismatch(record: TrainingRecord | None, data_name: str, split_name: str, fingerprint: str) -> str | None:
    """Why evaluating on ``data_name`` split ``split_name`` (train part ``fingerprint``)
    is not evaluating the data the model was trained on; None when it is (or nothing is recorded)."""
    if record is None or record.data is None:
        return None
    if record.data != data_name:
        return f"evaluated on {data_name} but trained on {record.data}"
    if record.split is not None and record.split != split_name:
        return (f"evaluated on split {split_name} but trained on split {record.split} of {data_name}: "
                f"test interactions of {split_name} may be in the training part of {record.split}, so the metrics may be optimistic")
    if record.fingerprint is not None and record.fingerprint != fingerprint:
        return f"the training part of {data_name} split {split_name} is not the data the model was trained on (the data changed since)"
    return None


def versions_trained_on(model_dir: str | Path, data_name: str, fingerprint: str) -> list[Path]:
    """The integer version folders under ``model_dir`` whose record says they were trained
    on exactly this data (``fingerprint``), newest first."""
    from tfrec.export.layout import numbered_entries

    found = []
    for version_dir in numbered_entries(model_dir):
        record = read_training_record(version_dir / "assets")
        if record is not None and record.data == data_name and record.fingerprint == fingerprint:
            found.append(version_dir)
    return found
