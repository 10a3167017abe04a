"""The versions piling up in a SavedModels folder: list them, prune the old ones.

Every ``tfrec train`` adds a version folder ``<savedmodels>/<model>/<N>/``. ``list_versions``
says, per model, each version's number, date, the data it was trained on (its
``training.json`` record, ``tfrec.export.provenance``), its size on disk and which one is
served: the newest complete version (``tfrec.export.layout.incomplete_reason``), the one
``tfrec serve``, ``ServedModel.load`` and TF Serving pick. ``prune_versions`` deletes the
complete versions older than the newest ``keep`` of each model. It never deletes the newest
complete version, an incomplete numbered entry (left for a person to look at) or a staging
folder ``.tmp-*`` (an export in progress): only integer-named complete versions are candidates.
``list_runs`` / ``prune_runs`` do the same for the TensorBoard run folders ``tfrec.fit``
writes (``<logdir>/<model>-<data>-...``). Nothing here imports TensorFlow.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tfrec.export.layout import incomplete_reason, numbered_entries
from tfrec.export.provenance import TrainingRecord, read_training_record

#: Versions ``prune_versions`` keeps per model unless told otherwise.
DEFAULT_KEEP = 3


@dataclass(frozen=True)
class VersionInfo:
    """One numbered entry of a model folder.

    model: the model folder's name; version: its integer name; path: the entry.
    problem: why it is not a complete SavedModel (None when it is).
    served: it is the newest complete version of its model.
    exported_at: UTC time, ISO 8601: the training record's, else the folder's modification time.
    size_bytes: the bytes of its files (links not followed below the entry itself).
    trained_on: its training record, None when it has none (older exports).
    """

    model: str
    version: int
    path: Path
    problem: str | None
    served: bool
    exported_at: str
    size_bytes: int
    trained_on: TrainingRecord | None

    @property
    def complete(self) -> bool:
        return self.problem is None

    def trained_on_text(self) -> str:
        """The data it was trained on, e.g. ``ml-100k, split temporal`` (``?`` when not recorded)."""
        record = self.trained_on
        if record is None or record.data is None:
            return "?"
        return record.data + (f", split {record.split}" if record.split else "")


def _size(path: Path) -> int:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(folder) / name).lstat().st_size
            except OSError:
                continue
    return total


def _modified(path: Path) -> str:
    try:
        stamp = path.stat().st_mtime
    except OSError:
        return "?"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def model_dirs(savedmodels_dir: str | Path, model: str | None = None) -> list[Path]:
    """The model folders under ``savedmodels_dir`` (by name; hidden ones left out), or only
    ``model``'s. ``ValueError`` (one line) when the folder or the model folder is missing."""
    root = Path(savedmodels_dir)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (expected model folders such as {root}/popularity/1)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if model is None:
        return folders
    chosen = [p for p in folders if p.name == model]
    if not chosen:
        found = ", ".join(p.name for p in folders) or "none"
        raise ValueError(f"{root}: no model folder {model!r} (model folders there: {found})")
    return chosen


def list_versions(savedmodels_dir: str | Path, model: str | None = None) -> list[VersionInfo]:
    """Every numbered entry of every model folder (or only ``model``'s), by model, newest first."""
    found = []
    for model_dir in model_dirs(savedmodels_dir, model):
        served_seen = False
        for entry in numbered_entries(model_dir):
            problem = incomplete_reason(entry)
            served = problem is None and not served_seen
            served_seen = served_seen or served
            record = read_training_record(entry / "assets") if problem is None else None
            exported_at = record.trained_at if record is not None and record.trained_at else _modified(entry)
            size = _size(entry) if entry.is_dir() else 0
            found.append(VersionInfo(model_dir.name, int(entry.name), entry, problem, served, exported_at, size, record))
    return found


def prune_versions(savedmodels_dir: str | Path, keep: int = DEFAULT_KEEP, model: str | None = None, dry_run: bool = False) -> list[VersionInfo]:
    """Delete, per model, the complete versions older than its newest ``keep`` complete ones.

    ``keep`` must be at least 1 (the served version is never deleted). Incomplete numbered
    entries and staging folders are left alone. A version that is a link is unlinked (its
    target is kept). ``dry_run``: delete nothing. Returns the versions deleted (or that
    would be), by model, newest first.
    """
    _check_keep(keep)
    doomed = []
    for model_dir in model_dirs(savedmodels_dir, model):
        complete = [info for info in list_versions(model_dir.parent, model_dir.name) if info.complete]
        doomed += complete[keep:]
    if not dry_run:
        for info in doomed:
            if info.path.is_symlink():
                info.path.unlink()
            else:
                shutil.rmtree(info.path)
    return doomed


@dataclass(frozen=True)
class RunInfo:
    """One TensorBoard run folder: ``model`` (its name up to the first ``-``), ``path``,
    ``written_at`` (UTC, ISO 8601: its newest event file's time) and ``size_bytes``."""

    model: str
    path: Path
    written_at: str
    size_bytes: int


def list_runs(logdir: str | Path, model: str | None = None) -> list[RunInfo]:
    """The run folders under ``logdir`` (or only ``model``'s), by model, newest first.

    A run folder is a folder ``<model>-...`` (model names have no ``-``) holding a
    TensorBoard event file (``events.out.tfevents.*``, at any depth); anything else in
    ``logdir`` is not a run. ``ValueError`` when ``logdir`` is not a folder.
    """
    root = Path(logdir)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (expected TensorBoard run folders such as {root}/popularity-demo-...)")
    found = []
    for path in root.iterdir():
        name = path.name.split("-", 1)[0]
        if "-" not in path.name or path.is_symlink() or not path.is_dir() or (model is not None and name != model):
            continue
        events = [event.stat().st_mtime for event in path.rglob("events.out.tfevents.*") if event.is_file()]
        if events:
            written = datetime.fromtimestamp(max(events), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            found.append(RunInfo(name, path, written, _size(path)))
    newest_first = sorted(found, key=lambda run: (run.written_at, run.path.name), reverse=True)
    return sorted(newest_first, key=lambda run: run.model)  # stable: newest first within each model


def prune_runs(logdir: str | Path, keep: int = DEFAULT_KEEP, model: str | None = None, dry_run: bool = False) -> list[RunInfo]:
    """Delete, per model, the run folders older than its newest ``keep`` (``list_runs``);
    ``dry_run``: delete nothing. Returns the runs deleted (or that would be)."""
    _check_keep(keep)
    runs = list_runs(logdir, model)
    doomed = [run for index, run in enumerate(runs) if sum(other.model == run.model for other in runs[:index]) >= keep]
    if not dry_run:
        for run in doomed:
            shutil.rmtree(run.path)
    return doomed


def _check_keep(keep: int) -> None:
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"--keep must be a whole number of at least 1 (the served version is always kept), got {keep!r}")


def format_size(size_bytes: int) -> str:
    """``1.5 MB``-style size (powers of 1000)."""
    if size_bytes < 1000:
        return f"{size_bytes} B"
    size = size_bytes / 1000
    for unit in ("kB", "MB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
