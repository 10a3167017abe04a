"""Fit time, serving time and peak memory of ``item_knn`` / ``user_knn`` next to implicit.

    python scripts/bench_knn.py                                   # ML-100K and synthetic 5M
    python scripts/bench_knn.py --data ml-100k --entries item_knn,implicit_cosine,user_knn
    python scripts/bench_knn.py --json bench_knn.json

Rows, one fresh child process each (so peak memory is the row's own), side by side in
one run on the same machine:

- ``item_knn``: ``tfrec.fit(ItemKNN(), data)`` with the defaults (binary cosine, top 300
  neighbours per item, shrinkage 10).
- ``item_knn k=100``: the same with ``k=100``, implicit's neighbour count.
- ``implicit_cosine`` (the peer): ``implicit.nearest_neighbours.CosineRecommender(K=100)``
  (benchmark only; never tfrec's implementation): id factorisation, the binary user x
  item CSR matrix, ``fit``; serving: ``recommend(users, user_items[users], N=10)``.
- ``user_knn``: ``tfrec.fit(UserKNN(), data)`` (binary cosine, top 50 users per user).

With ``--repeat N`` every row runs N times, interleaved, and the table keeps each row's
run with the fastest fit (the machine is shared; fastest-of-N is the steadier figure).

Columns: ``fit s`` = the whole fit (tfrec: ``tfrec.fit`` with everything it does:
vocabularies, each user's items, the shared tf.data adapt pass, and the model's own
work), split for tfrec into ``prepare s`` / ``adapt pass s`` / ``finalize s``;
``finalize s`` is the kNN work (deduplication, baselines, the blocked neighbour table,
the serving functions' first trace) and ``table s`` the neighbour table alone. For the
peer, ``fit s`` includes the id factorisation and CSR build and ``finalize s`` is
``CosineRecommender.fit`` alone. ``fit CPU s``: process CPU time of the fit (all threads).
``top-10 s``: top-10 for the same users (all users, at most 5,000, batches of 1,024;
tfrec through the in-memory serving function after one untimed warm-up call).
``peak MiB``: peak resident memory during fit and serving minus the resident memory
before the fit (Linux VmHWM, reset through /proc/self/clear_refs). ``fit / peer`` and
``finalize / peer``: ratios to the peer's ``fit s`` and ``finalize s`` (the model's own
fitting work against ``CosineRecommender.fit``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
ENTRIES = ("item_knn", "item_knn k=100", "implicit_cosine", "user_knn")
DEFAULT_ENTRIES = {"ml-100k": ENTRIES, "synthetic:5M": ("item_knn", "item_knn k=100", "implicit_cosine")}
PEER = "implicit_cosine"

CHILD = r'''
import json, sys, time
from collections import defaultdict

import numpy as np
import pandas as pd

import tfrec  # TensorFlow is loaded in every row, so that base memory is comparable
from tfrec._keras import tf

job = json.loads(sys.argv[1])
MAX_USERS, BATCH, K = 5000, 1024, 10


def memory(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def run_tfrec(entry, data, users):
    import tfrec.models.knn as knn
    from tfrec.models import make_model
    from tfrec.serving import ServedModel
    from tfrec.training import fit

    name, *params = entry.split()
    model = make_model(name, **{key: int(value) for key, value in (p.split("=") for p in params)})
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
    knn.neighbour_table = timed("table", knn.neighbour_table)
    start, cpu = time.perf_counter(), time.process_time()
    fit(model, data, verbose=0)
    fit_s, cpu = time.perf_counter() - start, time.process_time() - cpu
    served = ServedModel.from_model(model)
    served.recommend(users[:1], k=K)  # tracing, untimed
    start = time.perf_counter()
    for b in range(0, len(users), BATCH):
        served.recommend(users[b : b + BATCH], k=K)
    serve_s = time.perf_counter() - start
    extra = {"fit_cpu_s": cpu, "prepare_s": timers["prepare"], "finalize_s": timers["finalize_state"], "table_s": timers["table"]}
    extra["adapt_s"] = fit_s - extra["prepare_s"] - extra["finalize_s"]
    return fit_s, serve_s, extra


def run_implicit(data, users):
    from scipy import sparse
    from implicit.nearest_neighbours import CosineRecommender

    start, cpu = time.perf_counter(), time.process_time()
    frame = data.interactions
    u, user_ids = pd.factorize(frame["user_id"], sort=True)
    i, item_ids = pd.factorize(frame["item_id"], sort=True)
    matrix = sparse.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(len(user_ids), len(item_ids)))
    matrix.data[:] = 1.0  # repeated pairs count once
    model = CosineRecommender(K=100)
    model_start = time.perf_counter()
    model.fit(matrix, show_progress=False)
    model_s = time.perf_counter() - model_start
    fit_s, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = pd.Index(user_ids).get_indexer(users)
    start = time.perf_counter()
    for b in range(0, len(rows), BATCH):
        block = rows[b : b + BATCH]
        model.recommend(block, matrix[block], N=K)
    return fit_s, time.perf_counter() - start, {"fit_cpu_s": cpu, "finalize_s": model_s}


from tfrec.data import load_data

data = load_data(job["data"])
all_users = np.asarray(sorted(data.interactions["user_id"].unique(), key=lambda x: (len(x), x)), dtype=object)
users = all_users[:MAX_USERS].astype(str)
base = memory("VmRSS")
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak (VmHWM) to the current RSS
entry = job["entry"]
if entry == "implicit_cosine":
    fit_s, serve_s, extra = run_implicit(data, users)
else:
    fit_s, serve_s, extra = run_tfrec(entry, data, users)
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
    parser.add_argument("--entries", help=f"comma-separated subset of: {', '.join(ENTRIES)} (default: all; user_knn on ml-100k only)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--repeat", type=int, default=1, help="run every row this many times, interleaved; keep each row's fastest fit")
    args = parser.parse_args(argv)
    specs = args.data or ["ml-100k", "synthetic:5M"]
    chosen = [e.strip() for e in args.entries.split(",") if e.strip()] if args.entries else None
    unknown = sorted(set(chosen or ()) - set(ENTRIES))
    if unknown:
        parser.error(f"unknown entries {unknown}; choose from {', '.join(ENTRIES)}")
    rows = []
    for spec in specs:
        source = str(ML100K) if spec == "ml-100k" else spec
        entries = chosen or DEFAULT_ENTRIES.get(spec, ENTRIES)
        best: dict[str, dict] = {}
        for attempt in range(max(1, args.repeat)):
            for entry in entries:
                print(f"running {entry} on {spec} ({attempt + 1}/{args.repeat}) ...", file=sys.stderr, flush=True)
                result = {"data": spec, "model": entry, **run(source, entry)}
                if entry not in best or result.get("fit_s", float("inf")) < best[entry].get("fit_s", float("inf")):
                    best[entry] = result
        rows += [best[entry] for entry in entries]
    header = [
        "data", "model", "fit s", "prepare s", "adapt pass s", "finalize s", "table s", "fit CPU s", "top-10 s (users)",
        "peak MiB", "fit / peer", "finalize / peer",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['data']} | {row['model']} | failed: {row['error']} |" + " |" * (len(header) - 3))
            continue
        peer = next((r for r in rows if r["data"] == row["data"] and r["model"] == PEER and "fit_s" in r), None)
        ratios = [f"{row[key] / peer[key]:.2f}" if peer and row is not peer else "" for key in ("fit_s", "finalize_s")]
        split = [f"{row[k]:.2f}" if k in row else "" for k in ("prepare_s", "adapt_s", "finalize_s", "table_s", "fit_cpu_s")]
        lines.append(
            f"| {row['data']} | {row['model']} | {row['fit_s']:.2f} | {' | '.join(split)} | "
            f"{row['serve_s']:.2f} ({row['users']:,}) | {row['peak_mb']:,.0f} | {' | '.join(ratios)} |"
        )
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
