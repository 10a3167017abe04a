"""Which columns of a ratings CSV hold the user, the item, the rating and the time.

``load_data(path.csv)`` recognises the header names in ``AUTOMATIC_COLUMNS``; other
names are given as ``columns={"user": ..., "item": ..., "rating": ..., "time": ...}``, on
the command line ``--columns user=COL,item=COL,rating=COL,time=COL`` (``parse_columns``).
This module imports nothing heavy, so the command line checks ``--columns`` at once.
"""
from __future__ import annotations

#: The keys of ``columns``, in the order the loader reads them.
COLUMN_KEYS = ("user", "item", "rating", "time")
#: The header names ``load_data`` finds without ``columns`` (first match wins; MovieLens'
#: ``userId``/``movieId`` only when the file has neither ``user_id`` nor ``item_id``).
AUTOMATIC_COLUMNS = {"user": ("user_id", "userId"), "item": ("item_id", "movieId"), "rating": ("rating",), "time": ("timestamp",)}
_EXAMPLE = "--columns user=uid,item=movie,rating=stars,time=ts"


def parse_columns(text: str) -> dict[str, str | None]:
    """``"user=uid,item=mid,rating=stars"`` -> ``{"user": "uid", "item": "mid", "rating": "stars"}``.

    Comma-separated ``KEY=COLUMN`` pairs, keys among ``COLUMN_KEYS``, each at most once,
    spaces around names ignored. ``rating=none``: implicit feedback (every rating 1.0);
    ``time=none``: the row order is the time. Keys not given keep the automatic header
    names. A column name cannot hold ``,`` or ``=``. One-line ``ValueError`` otherwise.
    """
    columns: dict[str, str | None] = {}
    for part in text.split(","):
        key, sep, column = (piece.strip() for piece in part.partition("="))
        if not sep or not key or not column:
            raise ValueError(f"--columns {text!r}: {part.strip()!r} is not KEY=COLUMN (e.g. {_EXAMPLE})")
        if key not in COLUMN_KEYS:
            raise ValueError(f"--columns {text!r}: unknown key {key!r}; keys are {', '.join(COLUMN_KEYS)} (e.g. {_EXAMPLE})")
        if key in columns:
            raise ValueError(f"--columns {text!r}: {key} is given twice")
        if column.lower() == "none":
            if key in ("user", "item"):
                raise ValueError(f"--columns {text!r}: {key} must name a column (only rating and time may be none)")
            columns[key] = None
        else:
            columns[key] = column
    return columns
