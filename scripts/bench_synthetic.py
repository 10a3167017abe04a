"""Time and memory of the synthetic data generator.

    python scripts/bench_synthetic.py                 # 1M, 5M, 20M
    python scripts/bench_synthetic.py --sizes 5M 20M

Each size runs in a fresh child process, so its peak resident memory (``ru_maxrss``) is
its own. Columns: wall seconds and CPU seconds (user + system; the fairer number on a
busy machine) for ``make_synthetic(n)``; "peak MB" = peak RSS minus the RSS
after imports (importing tfrec loads TensorFlow, which is not counted); "kept MB" = RSS
growth still held by the returned Dataset; the actual interaction and session counts.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import gc, json, resource, sys, time

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")

from tfrec.data.movielens import parse_count
from tfrec.data.synthetic import make_synthetic
n = parse_count(sys.argv[1])
gc.collect()
base = rss_mb()
start, cpu = time.perf_counter(), time.process_time()
data = make_synthetic(n)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
gc.collect()
print(json.dumps({
    "seconds": seconds,
    "cpu": cpu,
    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base,
    "kept_mb": rss_mb() - base,
    "interactions": len(data.interactions),
    "users": int(data.interactions["user_id"].nunique()),
    "items": len(data.items),
    "sessions": int(data.sessions["session_id"].iloc[-1]) + 1,
}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1M", "5M", "20M"], help="e.g. 1M 5M 20M 500k")
    args = parser.parse_args(argv)
    print(f"{'interactions':>12} {'seconds':>8} {'cpu s':>6} {'peak MB':>8} {'kept MB':>8} {'users':>8} {'items':>7} {'sessions':>9}")
    for size in args.sizes:
        out = subprocess.run([sys.executable, "-c", CHILD, size], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"size {size}: the child process failed:\n{out.stderr[-2000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{row['interactions']:>12,} {row['seconds']:>8.1f} {row['cpu']:>6.1f} {row['peak_mb']:>8,.0f} {row['kept_mb']:>8,.0f} "
            f"{row['users']:>8,} {row['items']:>7,} {row['sessions']:>9,}"
        )


if __name__ == "__main__":
    main()
