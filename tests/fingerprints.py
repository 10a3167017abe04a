"""Fingerprints of fitted models: every weight and every known user's top 10.

``python tests/fingerprints.py`` writes ``tests/data/fit_fingerprints.json``: for each
model, fitted on the demo temporal split and on the ML-100K temporal split (``CASES``),
per-weight statistics and a hash of the recommendations. The file was first written by
the fit path before ``model.fit(tf.data)`` existed (``tfrec.training.fit`` over a pandas
``Dataset``), so ``tests/test_keras_fit.py`` checks that the Keras-native path gives the
same weights and outputs as that one.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FILE = HERE / "data" / "fit_fingerprints.json"
ML100K = HERE.parents[1] / "shared" / "data" / "ml-100k"

# (data, model, params): trained models with few epochs so that the test stays short.
CASES = [
    *[("demo", name, {}) for name in ("popularity", "tfidf", "covisit", "user_knn", "item_knn", "two_tower")],
    ("demo", "mf", {"solver": "adam"}),  # the reference predates solver="als" (now the default)
    *[("ml-100k", name, {}) for name in ("popularity", "tfidf", "covisit", "user_knn", "item_knn")],
    ("ml-100k", "mf", {"feedback": "implicit", "epochs": 2, "solver": "adam"}),
    ("ml-100k", "two_tower", {"epochs": 1}),
]


def case_key(data: str, name: str, params: dict) -> str:
    return f"{data}/{name}" + "".join(f",{k}={v}" for k, v in sorted(params.items()))


def weight_fingerprint(value: np.ndarray) -> dict:
    if value.dtype == object or value.dtype.kind in "SU":
        digest = hashlib.sha256(b"\x00".join(bytes(v) if isinstance(v, bytes) else str(v).encode() for v in value.reshape(-1)))
        return {"shape": list(value.shape), "sha256": digest.hexdigest()}
    flat = value.reshape(-1).astype(np.float64)
    pattern = np.cos(np.arange(flat.size, dtype=np.float64))
    finite = np.where(np.isfinite(flat), flat, 0.0)
    return {
        "shape": list(value.shape),
        "sum": float(finite.sum()),
        "abs_sum": float(np.abs(finite).sum()),
        "pattern": float(finite @ pattern),
        "non_finite": int((~np.isfinite(flat)).sum()),
    }


def model_fingerprint(model) -> dict:
    from tfrec.serving import ServedModel

    weights = {f"{i}:{w.name}": weight_fingerprint(w.numpy()) for i, w in enumerate(model.weights)}
    served = ServedModel.from_model(model)
    users = [u.decode() for u in model.users.ids.numpy()[1:]]
    ids, scores = served.recommend(users, k=10)
    return {
        "weights": weights,
        "recommend_ids_sha256": hashlib.sha256("\n".join("\t".join(row) for row in ids).encode()).hexdigest(),
        "recommend_scores_sum": float(np.where(np.isfinite(scores), scores, 0).astype(np.float64).sum()),
    }


def load_case_data(data: str):
    from tfrec.data import load_demo, load_movielens, make_split

    return make_split(load_demo() if data == "demo" else load_movielens(ML100K), "temporal").train


def main() -> None:
    import tfrec  # noqa: F401
    from tfrec.models import make_model
    from tfrec.training import fit

    results = {}
    cache = {}
    for data, name, params in CASES:
        if data not in cache:
            cache[data] = load_case_data(data)
        model = make_model(name, **params)
        fit(model, cache[data], verbose=0)
        results[case_key(data, name, params)] = model_fingerprint(model)
        print(case_key(data, name, params), "done", file=sys.stderr)
    FILE.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
