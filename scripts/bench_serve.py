"""Load benchmark of ``tfrec serve`` on 127.0.0.1: concurrent clients, requests/s, latency.

    tfrec train all --data path/to/ml-100k --export-dir /tmp/sm-ml100k      # or the demo models
    python scripts/bench_serve.py /tmp/sm-ml100k --data path/to/ml-100k
    python scripts/bench_serve.py                                        # savedmodels/, demo data

Starts ``tfrec serve SAVEDMODELS_DIR`` as a child process on a free loopback port (no
polling), waits until it answers, then for each model in ``--models`` (default
popularity, item_knn, mf, two_tower): ``--clients`` threads (default 32), each with one
keep-alive HTTP connection, send single-user ``recommend`` requests (columnar
``inputs``, k=10, users drawn with a fixed seed from the data's training users) for
``--seconds`` (default 20); the same with one client for a quarter of that time, to show
how throughput scales with concurrency. Reported per model: requests/s, p50 and p99
latency, failed requests (any status but 200, or a connection error: must be 0), and
the p50 of the same request through an in-process ``ServedModel`` (measured in this
process, with the server idle). Everything runs on this machine, so client threads and
the server share its cores. The server is stopped at the end, whatever happens.
"""
from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

DEFAULT_MODELS = "popularity,item_knn,mf,two_tower"


def request_body(user: str) -> bytes:
    return json.dumps({"signature_name": "recommend", "inputs": {"user_id": [user], "history": [[""]], "k": 10}}).encode()


def load(port: int, model: str, users: list[str], clients: int, seconds: float, seed: int = 0) -> dict:
    """``clients`` threads sending requests for ``seconds``: requests/s, p50/p99 ms, failures."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures = [0] * clients
    stop = time.monotonic() + seconds
    path = f"/v1/models/{model}:predict"

    def client(index: int) -> None:
        rng = np.random.default_rng(seed + index)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            body = request_body(users[int(rng.integers(len(users)))])
            start = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            latencies[index].append(time.perf_counter() - start)
            failures[index] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    flat = np.array([x for per_client in latencies for x in per_client]) * 1000.0
    return {
        "requests": len(flat),
        "requests_per_s": len(flat) / elapsed,
        "p50_ms": float(np.percentile(flat, 50)),
        "p99_ms": float(np.percentile(flat, 99)),
        "failed": int(sum(failures)),
    }


def in_process_p50(path: Path, users: list[str], requests: int = 300, seed: int = 0) -> float:
    from tfrec.serving import ServedModel

    served = ServedModel.load(path)
    rng = np.random.default_rng(seed)
    served.recommend([users[0]], k=10)
    times = []
    for _ in range(requests):
        user = users[int(rng.integers(len(users)))]
        start = time.perf_counter()
        served.recommend([user], k=10)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("savedmodels", nargs="?", default="savedmodels")
    parser.add_argument("--data", default="demo", help="the data the models were trained on (its training users are the requests' users)")
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()

    from tfrec.data import load_data, make_split
    from tfrec.serving.child_process import running_server

    users = sorted(make_split(load_data(args.data), "temporal").train.interactions["user_id"].astype(str).unique())
    models = [m for m in args.models.split(",") if m]
    rows = []
    options = ("--poll-seconds", "0", "--models", ",".join(models))
    with running_server(args.savedmodels, *options, ready_path=f"/v1/models/{models[0]}", timeout=120.0) as url:
        port = urlsplit(url).port
        for model in models:
            load(port, model, users, 4, 2.0)  # warm-up: traces, caches, connections
            many = load(port, model, users, args.clients, args.seconds)
            one = load(port, model, users, 1, args.seconds / 4)
            rows.append((model, many, one))
            print(f"{model}: {many['requests_per_s']:,.0f} requests/s with {args.clients} clients, {one['requests_per_s']:,.0f} with 1", flush=True)
    from tfrec.serving import resolve_version_dir

    print(f"\n`tfrec serve` on 127.0.0.1, single-user recommend (k=10), {args.clients} clients x {args.seconds:.0f} s per model; "
          f"{args.savedmodels}, users of {args.data}")
    print(f"| model | requests/s ({args.clients} clients) | requests/s (1 client) | p50 ms | p99 ms | failed | in-process p50 ms "
          "| HTTP p50 (1 client) - in-process |")
    print("|---|---|---|---|---|---|---|---|")
    for model, many, one in rows:
        local = in_process_p50(resolve_version_dir(Path(args.savedmodels) / model), users)
        print(f"| {model} | {many['requests_per_s']:,.0f} | {one['requests_per_s']:,.0f} | {many['p50_ms']:.2f} | {many['p99_ms']:.2f} | "
              f"{many['failed'] + one['failed']} | {local:.2f} | {one['p50_ms'] - local:+.2f} ms |")


if __name__ == "__main__":
    main()
