"""Progress output that suits where it goes: live bars on a terminal, a line per pass elsewhere.

Keras' ``Progbar`` redraws its bar with ``\\r`` and ``\\b`` whenever Python runs on a POSIX
system, also when the output is a file or a pipe, where every redraw stays in the log
(one ``two_tower`` fit wrote a 14,801-character line). ``progress_verbosity`` maps the
``verbose=1`` (live bar) of Keras ``fit`` and of tfrec's own bars to ``verbose=2`` (one
line when a pass ends) when standard output is not a terminal.
"""
from __future__ import annotations

import sys
from typing import TextIO


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stdout``) is an interactive terminal."""
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress_verbosity(verbose: int | str) -> int:
    """Keras verbosity for progress on standard output.

    Accepts 0 (silent), 1 (live bar), 2 (one line per epoch or pass) or ``"auto"`` (1).
    Returns 0 or 2 unchanged, and 1 only when standard output is a terminal (else 2).
    """
    level = 1 if verbose == "auto" else int(verbose)
    if level not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return 2 if level == 1 and not is_terminal() else level
