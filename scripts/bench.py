"""Every tfrec model against its peers, quality and speed, side by side in one run.

    python scripts/bench.py                                      # demo data, protocols R, T, S
    python scripts/bench.py --data ../shared/data/ml-100k        # MovieLens 100K (the README table)
    python scripts/bench.py --data ../shared/data/ml-100k --protocol T --models mf,two_tower --peers ease,implicit_als
    python scripts/bench.py --scale 1M,5M,20M --max-seconds 1800 # scale run on synthetic data

The same as ``tfrec bench`` (see ``tfrec bench --help`` and ``tfrec.bench.runner``).
Peers need the optional extra: ``pip install -e .[bench]``.
"""
from __future__ import annotations

import sys

from tfrec.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
