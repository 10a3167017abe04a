"""The catalog asset of a SavedModel: every item id the model can recommend, with its title.

Ids and titles are opaque strings: any character may occur in them (tab, newline, CR,
quotes, commas, emoji, NUL). The asset is therefore JSON Lines, one
``{"item_id": ..., "title": ...}`` object per line, written with ``ensure_ascii`` so that
every control and non-ASCII character is escaped and no string can break a line.
Exports written before this format carry ``catalog.tsv`` (tab-separated, unescaped);
``read_catalog`` still reads those.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

CATALOG_ASSET = "catalog.jsonl"
LEGACY_CATALOG_ASSET = "catalog.tsv"


def write_catalog(path: str | Path, item_ids: Iterable[str], titles: Iterable[str]) -> None:
    """Write ``(item_id, title)`` pairs to ``path`` as JSON Lines (ASCII only)."""
    with Path(path).open("w", encoding="ascii", newline="\n") as handle:
        for item, title in zip(item_ids, titles):
            handle.write(json.dumps({"item_id": item, "title": title}, ensure_ascii=True) + "\n")


def read_catalog(assets_dir: str | Path) -> pd.DataFrame:
    """The catalog in ``assets_dir``: a DataFrame with str columns ``item_id`` and ``title``.

    Reads ``catalog.jsonl``, or the ``catalog.tsv`` of older exports. Raises ``ValueError``
    naming the file and line when the asset is missing or a line is not a catalog entry.
    """
    assets_dir = Path(assets_dir)
    path = assets_dir / CATALOG_ASSET
    if not path.is_file() and (assets_dir / LEGACY_CATALOG_ASSET).is_file():
        return pd.read_csv(assets_dir / LEGACY_CATALOG_ASSET, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    if not path.is_file():
        raise ValueError(f"{path}: catalog asset missing")
    ids, titles = [], []
    with path.open(encoding="utf-8", newline="\n") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                entry = json.loads(line)
                item, title = entry["item_id"], entry["title"]
            except (ValueError, TypeError, KeyError) as error:
                raise ValueError(f"{path}, line {number}: not a catalog entry ({error})") from None
            ids.append(str(item))
            titles.append(str(title))
    return pd.DataFrame({"item_id": ids, "title": titles}, dtype=str)
