"""The model folder in TF Serving's layout: integer version folders and hidden staging folders.

``<model_dir>/<version>/`` holds one SavedModel; a version is *complete* when it has a
readable, non-empty ``saved_model.pb`` and a ``variables/`` folder with
``variables.index`` (what TF Serving requires before it loads a version). Exports write
to ``<model_dir>/.tmp-<host>-<pid>-<token>/`` first; TF Serving ignores names that are
not integers, so a staging folder is never served.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path

_VERSION = re.compile(r"[0-9]+")
_STAGING = re.compile(r"^\.tmp-(?P<host>[A-Za-z0-9._]*)-(?P<pid>\d+)-(?P<token>[0-9a-f]{32})$")
STAGING_PREFIX = ".tmp-"
#: Staging folders of other hosts, or of an unknown format, are removed after this long.
STALE_AFTER_S = 24 * 3600.0


def versions(model_dir: str | Path) -> list[int]:
    """Integer versions exported under ``model_dir`` (ascending): folders (or links to
    folders) whose names are integers. Files and dangling links are not versions."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if _VERSION.fullmatch(p.name) and p.is_dir())


def version_number(path: str | Path) -> int | None:
    """The version a folder name stands for ("7" -> 7), or None when it is not an integer."""
    name = Path(path).name
    return int(name) if _VERSION.fullmatch(name) else None


def numbered_entries(model_dir: str | Path) -> list[Path]:
    """Every entry of ``model_dir`` whose name is an integer (folder, file or link, dangling
    or not), newest (largest) first: the candidates for a version."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted((p for p in model_dir.iterdir() if _VERSION.fullmatch(p.name)), key=lambda p: int(p.name), reverse=True)


def next_version(model_dir: str | Path) -> int:
    """One more than the largest integer name of *any* entry in ``model_dir``, so a new
    version never collides with what is there (a file named "2" makes the next one 3)."""
    entries = numbered_entries(model_dir)
    return int(entries[0].name) + 1 if entries else 1


def incomplete_reason(version_dir: str | Path) -> str | None:
    """Why ``version_dir`` is not a complete SavedModel folder, or None when it is."""
    version_dir = Path(version_dir)
    if version_dir.is_symlink() and not version_dir.exists():
        return f"dangling link to {os.readlink(version_dir)}"
    if not version_dir.is_dir():
        return "not a folder"
    graph = version_dir / "saved_model.pb"
    if not graph.is_file():
        return "no saved_model.pb"
    if graph.stat().st_size == 0 or not os.access(graph, os.R_OK):
        return "saved_model.pb is empty or unreadable"
    if not (version_dir / "variables" / "variables.index").is_file():
        return "no variables/variables.index"
    return None


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def staging_dir(model_dir: str | Path) -> Path:
    """A new staging folder path (not created) in ``model_dir``, naming this host and process."""
    return Path(model_dir) / f"{STAGING_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def is_stale_staging(path: Path, now: float | None = None) -> bool:
    """Whether ``path`` is a staging folder that no live export is writing: one of this host
    whose process is gone, or (other hosts, unknown formats) older than ``STALE_AFTER_S``."""
    if not path.name.startswith(STAGING_PREFIX) or path.is_symlink() or not path.is_dir():
        return False
    match = _STAGING.match(path.name)
    if match and match["host"] == _host():
        return not _pid_alive(int(match["pid"]))
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except OSError:
        return False
    return age > STALE_AFTER_S


def remove_stale_staging(model_dir: str | Path) -> list[Path]:
    """Remove the stale staging folders (``is_stale_staging``) in ``model_dir``; return them."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    removed = []
    for path in model_dir.iterdir():
        if is_stale_staging(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
