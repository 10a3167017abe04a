"""Fit time, serving time and peak memory of ``tfidf`` and ``covisit`` next to their peers.

    python scripts/bench_content_covisit.py                          # ML-100K and synthetic 5M
    python scripts/bench_content_covisit.py --data ml-100k --data synthetic:1M
    python scripts/bench_content_covisit.py --json bench_content_covisit.json

Rows, one fresh child process each (so peak memory is the row's own), side by side in
one run on the same machine:

- ``tfidf``: ``tfrec.fit(TfidfRecommender(), data)``.
- ``sklearn tfidf`` (its peer): the same model with scikit-learn and scipy: id
  factorisation, the user x item rating matrix (CSR), ``TfidfVectorizer().fit_transform``
  of the item texts, user profiles ``normalize(R @ X)``; then, as serving, cosine
  ``profiles @ X.T``, training items masked, top-10 by ``argpartition``.
- ``covisit``: ``tfrec.fit(CoVisitation(), data)`` (window 5, symmetric, top 100 neighbours,
  the last 5 items weighted 1/2^age).
- ``numpy covisit`` (its peer): a straightforward numpy counter with the same settings:
  id factorisation, sessions (``data.sessions``, else each user's time-ordered items),
  pair keys ``(a, b)`` and ``(b, a)`` for every offset 1..4 in the same session,
  ``np.unique(keys, return_counts=True)``, top 100 per item by ``np.lexsort``; serving:
  neighbours of the last 5 items, ``np.bincount``, training items masked, top-10.

Columns: ``fit s`` = the whole fit (tfrec: ``tfrec.fit`` with everything it does:
vocabularies, each user's items, the shared tf.data adapt pass that counts popularity,
and the model's own work); for tfrec rows ``prepare s`` / ``adapt pass s`` /
``finalize s`` split it up, so ``prepare + finalize`` is the model-specific part plus
the base vocabularies; ``fit CPU s`` is the process CPU time of the fit (all threads),
steadier than wall time on a shared machine. ``top-10 s``: top-10 for the same users (all users, at most
5,000, in batches of 1,024; tfrec through the in-memory serving function after one
untimed warm-up call). ``peak MiB``: the peak resident memory during fit and serving
minus the resident memory before the fit (data and imports already loaded; Linux
VmHWM, reset through /proc/self/clear_refs). ``fit / peer``: fit time over the peer's.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
ENTRIES = ("tfidf", "sklearn tfidf", "covisit", "numpy covisit")
PEER_OF = {"tfidf": "sklearn tfidf", "covisit": "numpy covisit"}

CHILD = r'''
import json, sys, time
from collections import defaultdict

import numpy as np
import pandas as pd

import tfrec  # TensorFlow is loaded in every row, so that base memory is comparable
from tfrec._keras import tf

job = json.loads(sys.argv[1])
MAX_USERS, BATCH, K, TOP_N, WINDOW, HISTORY, DECAY = 5000, 1024, 10, 100, 5, 5, 0.5


def memory(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def load(spec):
    from tfrec.data import load_data
    return load_data(spec)


def top_k(scores, k):
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -values), axis=1)
    return np.take_along_axis(part, order, axis=1)


def factorize(data):
    frame = data.interactions
    users, user_ids = pd.factorize(frame["user_id"], sort=True)
    items, item_ids = pd.factorize(frame["item_id"], sort=True)
    return frame, users, np.asarray(user_ids), items, np.asarray(item_ids)


# --------------------------------------------------------------- tfrec rows
def run_tfrec(name, data, users):
    from tfrec.models import make_model
    from tfrec.serving import ServedModel
    from tfrec.training import fit

    model = make_model(name)
    timers = defaultdict(float)

    def timed(key, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = function(*args, **kwargs)
            timers[key] += time.perf_counter() - start
            return out
        return wrapper

    for key in ("prepare", "finalize_state"):
        object.__setattr__(model, key, timed(key, getattr(model, key)))
    start, cpu = time.perf_counter(), time.process_time()
    fit(model, data, verbose=0)
    fit_s, cpu = time.perf_counter() - start, time.process_time() - cpu
    served = ServedModel.from_model(model)
    served.recommend(users[:1], k=K)  # tracing, untimed
    start = time.perf_counter()
    for b in range(0, len(users), BATCH):
        served.recommend(users[b : b + BATCH], k=K)
    serve_s = time.perf_counter() - start
    extra = {"fit_cpu_s": cpu, "prepare_s": timers["prepare"], "finalize_s": timers["finalize_state"]}
    extra["adapt_s"] = fit_s - extra["prepare_s"] - extra["finalize_s"]
    return fit_s, serve_s, extra


# ---------------------------------------------------------------- peers
def run_sklearn_tfidf(data, users):
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    start, cpu = time.perf_counter(), time.process_time()
    frame, u, user_ids, i, item_ids = factorize(data)
    ratings = sparse.csr_matrix((frame["rating"].to_numpy(np.float64), (u, i)), shape=(len(user_ids), len(item_ids)))
    catalog = data.items.drop_duplicates("item_id").set_index("item_id")["text"]
    texts = catalog.reindex(item_ids).fillna("").astype(str).tolist()
    matrix = TfidfVectorizer().fit_transform(texts)
    profiles = normalize(ratings @ matrix)
    fit_s, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = pd.Index(user_ids).get_indexer(users)
    start = time.perf_counter()
    for b in range(0, len(rows), BATCH):
        block = rows[b : b + BATCH]
        scores = (profiles[block] @ matrix.T).toarray()
        seen = ratings[block].tocoo()
        scores[seen.row, seen.col] = -np.inf
        top_k(scores, K)
    return fit_s, time.perf_counter() - start, {"fit_cpu_s": cpu}


def run_numpy_covisit(data, users):
    start, cpu = time.perf_counter(), time.process_time()
    frame, u, user_ids, i, item_ids = factorize(data)
    n = len(item_ids)
    popularity = np.bincount(i, minlength=n).astype(np.float64)
    by_user = np.lexsort((i, frame["timestamp"].to_numpy(), u))  # user, time, item id
    history, history_user = i[by_user], u[by_user]
    if data.sessions is not None:
        sessions = data.sessions
        order = np.lexsort((sessions["position"].to_numpy(), sessions["session_id"].to_numpy()))
        sequence = pd.Index(item_ids).get_indexer(sessions["item_id"])[order]
        session = sessions["session_id"].to_numpy()[order]
    else:
        sequence, session = history, history_user
    keys = []
    for d in range(1, WINDOW):
        a, b = sequence[:-d], sequence[d:]
        same = (session[:-d] == session[d:]) & (a != b) & (a >= 0) & (b >= 0)
        a, b = a[same].astype(np.int64), b[same].astype(np.int64)
        keys += [a * n + b, b * n + a]
    pairs, counts = np.unique(np.concatenate(keys), return_counts=True)
    row, col = pairs // n, pairs % n
    order = np.lexsort((col, -counts, row))
    row, col, counts = row[order], col[order], counts[order]
    first = np.searchsorted(row, np.arange(n))
    rank = np.arange(len(row)) - first[row]
    keep = rank < TOP_N
    neighbours = np.full((n, TOP_N), -1, np.int64)
    weights = np.zeros((n, TOP_N))
    neighbours[row[keep], rank[keep]] = col[keep]
    weights[row[keep], rank[keep]] = counts[keep]
    starts = np.searchsorted(history_user, np.arange(len(user_ids) + 1))
    fit_s, cpu = time.perf_counter() - start, time.process_time() - cpu

    rows = pd.Index(user_ids).get_indexer(users)
    prior = 0.01 * popularity / (popularity.max() + 1)
    start = time.perf_counter()
    for b in range(0, len(rows), BATCH):
        block = rows[b : b + BATCH]
        scores = np.tile(prior, (len(block), 1))
        q, it, w = [], [], []
        for slot, user in enumerate(block):  # the last HISTORY items of each user
            recent = history[max(starts[user], starts[user + 1] - HISTORY) : starts[user + 1]][::-1]
            q.append(np.full(len(recent), slot))
            it.append(recent)
            w.append(DECAY ** np.arange(len(recent)))
        q, it, w = np.concatenate(q), np.concatenate(it), np.concatenate(w)
        nb = neighbours[it]
        ok = nb >= 0
        flat = (q[:, None] * n + nb)[ok]
        scores += np.bincount(flat, weights=(w[:, None] * weights[it])[ok], minlength=len(block) * n).reshape(len(block), n)
        seen_q = np.concatenate([np.full(starts[x + 1] - starts[x], s) for s, x in enumerate(block)])
        seen_i = np.concatenate([history[starts[x] : starts[x + 1]] for x in block])
        scores[seen_q, seen_i] = -np.inf
        top_k(scores, K)
    return fit_s, time.perf_counter() - start, {"fit_cpu_s": cpu}


data = load(job["data"])
all_users = np.asarray(sorted(data.interactions["user_id"].unique(), key=lambda x: (len(x), x)), dtype=object)
users = all_users[:MAX_USERS].astype(str)
base = memory("VmRSS")
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak (VmHWM) to the current RSS
entry = job["entry"]
if entry in ("tfidf", "covisit"):
    fit_s, serve_s, extra = run_tfrec(entry, data, users)
elif entry == "sklearn tfidf":
    fit_s, serve_s, extra = run_sklearn_tfidf(data, users)
else:
    fit_s, serve_s, extra = run_numpy_covisit(data, users)
print(json.dumps({
    "fit_s": fit_s, "serve_s": serve_s, "users": len(users), "peak_mb": memory("VmHWM") - base, "base_mb": base,
    "interactions": len(data.interactions), "items": int(data.interactions["item_id"].nunique()), **extra,
}))
'''


def run(data: str, entry: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps({"data": data, "entry": entry})], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", help="ml-100k, synthetic:5M (both by default), a MovieLens folder, ...")
    parser.add_argument("--entries", default=",".join(ENTRIES), help=f"comma-separated subset of: {', '.join(ENTRIES)}")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    specs = args.data or ["ml-100k", "synthetic:5M"]
    entries = [e.strip() for e in args.entries.split(",") if e.strip()]
    unknown = sorted(set(entries) - set(ENTRIES))
    if unknown:
        parser.error(f"unknown entries {unknown}; choose from {', '.join(ENTRIES)}")
    rows = []
    for spec in specs:
        source = str(ML100K) if spec == "ml-100k" else spec
        for entry in entries:
            print(f"running {entry} on {spec} ...", file=sys.stderr, flush=True)
            rows.append({"data": spec, "model": entry, **run(source, entry)})
    header = [
        "data", "model", "fit s", "prepare s", "adapt pass s", "finalize s", "fit CPU s", "top-10 s (users)", "peak MiB",
        "fit / peer", "fit CPU / peer",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['data']} | {row['model']} | failed: {row['error']} |" + " |" * (len(header) - 3))
            continue
        peer = next((r for r in rows if r["data"] == row["data"] and r["model"] == PEER_OF.get(row["model"]) and "fit_s" in r), None)
        ratio = f"{row['fit_s'] / peer['fit_s']:.2f}" if peer else ""
        cpu_ratio = f"{row['fit_cpu_s'] / peer['fit_cpu_s']:.2f}" if peer else ""
        split = [f"{row[k]:.2f}" if k in row else "" for k in ("prepare_s", "adapt_s", "finalize_s", "fit_cpu_s")]
        lines.append(
            f"| {row['data']} | {row['model']} | {row['fit_s']:.2f} | {' | '.join(split)} | "
            f"{row['serve_s']:.2f} ({row['users']:,}) | {row['peak_mb']:,.0f} | {ratio} | {cpu_ratio} |"
        )
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
