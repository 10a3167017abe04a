"""Checks of user-given output locations, run before any work that would write there."""
from __future__ import annotations

import os
from pathlib import Path


def check_model_name(name: str) -> str:
    """``name`` if it is a valid model folder name, else ``ValueError``.

    Accepted: one non-empty path component without separators ("/", "\\"), NUL or a
    leading "." (so not ".", ".." and not hidden, which TF Serving and the staging folders use).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    bad = [c for c in ("/", "\\", "\0", os.sep, os.altsep) if c and c in name]
    if bad or name.startswith("."):
        raise ValueError(f"model name {name!r} must be one folder name: no '/', '\\', NUL or leading '.'")
    return name


def check_output_dir(path: str | Path, what: str) -> Path:
    """``path`` as a ``Path`` if a folder can be used or created there, else one-line ``ValueError``.

    Accepted: an existing writable folder, or a missing one whose nearest existing parent
    is a writable folder (nothing is created here). Rejected: a file (or a file among its
    parents), a dangling link, a folder this process cannot write.
    """
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise ValueError(f"{what} {path}: {existing} is a dangling link")
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        kind = "a file" if existing.is_file() else "not a folder"
        raise ValueError(f"{what} {path} is {kind}" if existing == path else f"{what} {path}: {existing} is {kind}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{what} {path}: {existing} is not writable")
    return path


def check_output_file(path: str | Path, what: str) -> Path:
    """``path`` as a ``Path`` if a file can be written there (its folder as in
    ``check_output_dir``; ``path`` itself not a folder), else one-line ``ValueError``."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder, not a file")
    check_output_dir(path.parent, what)
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{what} {path} is not writable")
    return path
