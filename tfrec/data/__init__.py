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

from tfrec.data.dataset import DataError, Dataset
from tfrec.data.demo import load_demo, make_demo_data
from tfrec.data.movielens import load_data, load_movielens, load_ratings_csv
from tfrec.data.splits import SPLIT_NAMES, Split, make_split
from tfrec.data.synthetic import make_synthetic

_PIPELINES = ("interactions_dataset", "sessions_dataset")

__all__ = [
    "Dataset",
    "DataError",
    "load_demo",
    "make_demo_data",
    "make_synthetic",
    "load_movielens",
    "load_ratings_csv",
    "load_data",
    "make_split",
    "Split",
    "SPLIT_NAMES",
    *_PIPELINES,
]


def __getattr__(name: str):
    if name in _PIPELINES:
        from tfrec.data import pipelines

        return getattr(pipelines, name)
    raise AttributeError(f"module 'tfrec.data' has no attribute {name!r}")
