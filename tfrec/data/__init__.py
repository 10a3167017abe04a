"""Data sources, splits and tf.data pipelines.

Every source returns one `Dataset` (string ids, float32 ratings, int64 timestamps, an item
catalog with text, optional sessions):

- `load_demo` / `make_demo_data`: the seed notebook's toy data;
- `make_synthetic`: MovieLens-like data of any size;
- `load_movielens`, `load_ratings_csv`, and `load_data("demo" | "synthetic:5M" | dir | file.csv)`;
- `make_split(data, name)` for the protocols of ``shared/PROTOCOLS.md``;
- `interactions_dataset`, `sessions_dataset`: tf.data pipelines (TensorFlow is imported
  only when these are first used).
"""
from __future__ import annotations

from tfrec._lazy import lazy_exports

# Imported on first use: ``tfrec.data.split_names`` (for the CLI) loads neither pandas nor TensorFlow.
_EXPORTS = {
    **dict.fromkeys(("DataError", "Dataset"), "tfrec.data.dataset"),
    **dict.fromkeys(("load_demo", "make_demo_data"), "tfrec.data.demo"),
    **dict.fromkeys(("load_data", "load_movielens", "load_ratings_csv"), "tfrec.data.movielens"),
    **dict.fromkeys(("Split", "make_split"), "tfrec.data.splits"),
    "SPLIT_NAMES": "tfrec.data.split_names",
    "make_synthetic": "tfrec.data.synthetic",
    **dict.fromkeys(("interactions_dataset", "sessions_dataset"), "tfrec.data.pipelines"),
}

__all__ = [
    "SPLIT_NAMES",
    "DataError",
    "Dataset",
    "Split",
    "interactions_dataset",
    "load_data",
    "load_demo",
    "load_movielens",
    "load_ratings_csv",
    "make_demo_data",
    "make_split",
    "make_synthetic",
    "sessions_dataset",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
