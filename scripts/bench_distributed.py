"""Fit time and memory of one process against ``--local-workers N``, per model, side by side.

    python scripts/bench_distributed.py ../shared/data/ml-100k 3               # data, rounds
    python scripts/bench_distributed.py synthetic:5M 1 --param epochs=1        # trained models: one epoch

Each configuration is the command a user runs, ``tfrec train MODEL --data D --split
temporal -q --json ...`` (adding ``--local-workers N``), in a fresh process tree, its
peak memory measured as the largest resident set of any one process of it
(``wait4``'s ``ru_maxrss`` of the launcher, which covers its workers: that is the
per-worker peak). Rounds alternate the configurations so that a shared machine's load hits
them alike; the table gives the median over rounds of:

- ``fit s``: ``tfrec.fit`` on the chief (the vocabulary pass, the combines, the adapt pass,
  training, tracing); ``wall s``: the whole command (start-up, data loading, export, evaluation);
- ``collectives s`` / ``MiB``: what the chief's ``combine_state`` steps cost (printed by
  ``model.fit``), the adapt-pass combines only (trained models' gradient all-reduces run
  inside Keras and are part of ``fit s``);
- the headline metric (NDCG@10 on the temporal split) of every configuration.

``--param KEY=VALUE`` is passed to the trained models (mf, two_tower) only. Writes
``scripts/results/distributed-<data>.md``.
"""
from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = ("popularity", "tfidf", "covisit", "user_knn", "item_knn", "mf", "two_tower")
TRAINED = ("mf", "two_tower")
ROOT = Path(__file__).resolve().parents[1]


def run(model: str, data: str, workers: int, params: list[str], folder: Path) -> dict:
    """One ``tfrec train`` of ``model`` with ``workers`` processes (1: no launcher)."""
    out = folder / f"{model}-{workers}.json"
    command = [sys.executable, "-m", "tfrec", "train", model, "--data", data, "--split", "temporal", "--export-dir", str(folder / "sm"),
               "--logdir", "", "--json", str(out)]
    if model in TRAINED:
        command += [arg for param in params for arg in ("--param", param)]
    if workers > 1:
        command += ["--local-workers", str(workers)]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout[-3000:]}")
    metrics = json.loads(out.read_text())
    combined = re.search(r"([\d,.]+) MiB received in ([\d.]+) s of collectives", result.stdout)
    return {
        "fit_s": metrics["fit_s"], "ndcg@10": metrics["ndcg@10"],
        "collective_mib": float(combined.group(1).replace(",", "")) if combined else 0.0,
        "collective_s": float(combined.group(2)) if combined else 0.0,
    }


def timed_run(model: str, data: str, workers: int, params: list[str], folder: Path) -> dict:
    """``run`` with its wall seconds and the peak RSS of the largest process it started
    (``RUSAGE_CHILDREN``: call it in a fresh process, as ``_isolated`` does)."""
    start = time.perf_counter()
    result = run(model, data, workers, params, folder)
    result["wall_s"] = time.perf_counter() - start
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def main(data: str, rounds: int, params: list[str], workers: int = 2) -> None:
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.2f}", flush=True)
    results: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="tfrec-bench-distributed-") as tmp:
        for round_ in range(rounds):
            for model in MODELS:
                for n in (1, workers):
                    result = _isolated(model, data, n, params, Path(tmp))
                    results.setdefault((model, n), []).append(result)
                    print(f"round {round_ + 1} {model} workers={n}: fit {result['fit_s']:.2f} s, wall {result['wall_s']:.1f} s, "
                          f"peak {result['peak_mib']:,.0f} MiB, NDCG@10 {result['ndcg@10']:.4f}", flush=True)
    rows = ["| model | workers | fit s | wall s | collectives s | MiB received | peak MiB per worker | NDCG@10 |", "|---|---|---|---|---|---|---|---|"]
    for model in MODELS:
        for n in (1, workers):
            runs = results[(model, n)]
            median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            rows.append(f"| {model} | {n} | {median['fit_s']:.2f} | {median['wall_s']:.1f} | {median['collective_s']:.2f} | "
                        f"{median['collective_mib']:,.1f} | {median['peak_mib']:,.0f} | {median['ndcg@10']:.4f} |")
    table = "\n".join(rows)
    print(table)
    name = Path(data).name.replace(":", "-")
    command = f"python scripts/bench_distributed.py {data} {rounds}" + "".join(f" --param {p}" for p in params)
    (ROOT / "scripts" / "results" / f"distributed-{name}.md").write_text(
        f"# Fit with 1 and {workers} local workers: {data}\n\n`{command}` (median of {rounds} round(s); load average at start {load:.2f}; "
        f"{os.cpu_count()} cores)\n\n{table}\n"
    )


def _isolated(model: str, data: str, workers: int, params: list[str], folder: Path) -> dict:
    """``timed_run`` in a child Python, so that each run's peak RSS is its own."""
    code = ("import json, sys; sys.path.insert(0, 'scripts'); from bench_distributed import timed_run; from pathlib import Path; "
            f"r = timed_run({model!r}, {data!r}, {workers}, {params!r}, Path({str(folder)!r})); print('RESULT' + json.dumps(r))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return json.loads(output.split("RESULT", 1)[1])


if __name__ == "__main__":
    arguments = sys.argv[1:]
    extra = [arguments[i + 1] for i, a in enumerate(arguments) if a == "--param"]
    positional = [a for i, a in enumerate(arguments) if a != "--param" and (i == 0 or arguments[i - 1] != "--param")]
    main(positional[0] if positional else "demo", int(positional[1]) if len(positional) > 1 else 1, extra)
