"""Evaluate a model through its serving functions: what is measured is what is served."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from tfrec._keras import keras
from tfrec.data.dataset import sorted_ids
from tfrec.data.splits import Split
from tfrec.evaluation.metrics import ranking_metrics, rating_metrics
from tfrec.models.progress import progress_verbosity


class Servable(Protocol):
    """What evaluation calls: ``tfrec.serving.ServedModel`` (in memory or reloaded)."""

    n_items: int
    metadata: dict[str, Any]

    def recommend(self, user_ids, history=None, k: int = 10) -> tuple[np.ndarray, np.ndarray]: ...

    def score(self, user_ids, item_ids) -> np.ndarray: ...


#: The metrics tfrec reports (flat, lower-case keys), in table order.
REPORTED_METRICS = ("recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "mrr@10", "coverage@10", "rmse", "mae")


def evaluate(served: Servable, split: Split, *, batch_size: int = 1024, verbose: int = 0) -> dict[str, float]:
    """Metrics of ``served`` on ``split.test`` (formulas: ``tfrec.evaluation.metrics``).

    Top-N: every test user gets ``recommend(user, k=20)`` (no history: known users'
    training items are excluded by the model, as served), ranked against that user's
    test items. Ratings (models that predict ratings): ``score(user, item)`` for every
    test pair, RMSE and MAE. Returns the keys of ``REPORTED_METRICS`` that apply.
    ``verbose``: 0 (silent), 1 (a labelled progress bar; one line when standard output is
    not a terminal), 2 (one line).
    """
    test = split.test
    ks: Sequence[int] = (10, 20)
    users = sorted_ids(test["user_id"])
    k = min(max(ks), served.n_items)
    verbose = progress_verbosity(verbose)
    if verbose:
        print(f"evaluating {len(users):,} users (top {k} each)")
    progress = keras.utils.Progbar(len(users), verbose=1 if verbose == 1 else 0, unit_name="user")
    started = time.perf_counter()
    pages = []
    for start in range(0, len(users), batch_size):
        item_ids, _ = served.recommend(users[start : start + batch_size], k=k)
        pages.append(item_ids.astype(object))
        progress.add(len(pages[-1]))
    if verbose == 2:  # one line (Keras' own would count the pass as an "epoch")
        print(f"{len(users):,} users in {time.perf_counter() - started:.1f}s")
    recommended = np.concatenate(pages)
    if recommended.shape[1] < max(ks):
        recommended = np.pad(recommended, ((0, 0), (0, max(ks) - recommended.shape[1])), constant_values="")
    all_metrics = ranking_metrics(users, recommended, test[["user_id", "item_id"]], n_catalog=served.n_items, ks=ks)
    if served.metadata.get("predicts_ratings"):
        if verbose:
            print(f"scoring {len(test):,} test ratings")
        predictions = np.concatenate(
            [
                served.score(test["user_id"].iloc[i : i + 8192], test["item_id"].iloc[i : i + 8192])
                for i in range(0, len(test), 8192)
            ]
        )
        all_metrics.update(rating_metrics(predictions, test["rating"].to_numpy()))
    return {key: float(all_metrics[key]) for key in REPORTED_METRICS if key in all_metrics}
