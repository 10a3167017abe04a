"""What several commands share: markdown tables, parameter values as typed, ``--columns``."""
from __future__ import annotations

from typing import Any


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def cli_value(value: Any) -> str:
    """A parameter value as ``--param`` takes it: none, true / false, numbers and strings as written."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def csv_columns(args) -> dict[str, str | None] | None:
    """``--columns`` as ``load_data``'s ``columns`` (None when not given); one-line ``ValueError``
    for a malformed value or a ``--data`` that is not a CSV file."""
    from tfrec.data.csv_columns import parse_columns

    if args.columns is None:
        return None
    if not args.data.lower().endswith(".csv"):
        raise ValueError(f"--columns applies to a ratings CSV file (--data FILE.csv), not to --data {args.data}")
    return parse_columns(args.columns)
