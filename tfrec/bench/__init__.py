"""Benchmarks: every tfrec model against its peers on protocols R, T and S, side by side.

``run_bench`` (also ``tfrec bench``) runs each (model or peer, protocol) job in a fresh
process (``python -m tfrec.bench.worker``) and writes a markdown table, JSON, a PNG chart
and TensorBoard HParams runs; ``run_scale`` (``tfrec bench --scale SIZES``) fits every
model on synthetic data of growing size, each next to its fit-time peer with
``--peers paired``. See ``tfrec.bench.runner`` for what is measured and how.
"""
from __future__ import annotations

from tfrec._lazy import lazy_exports

# Imported on first use: the CLI checks its arguments before pandas, scipy or TensorFlow load.
_EXPORTS = {
    **dict.fromkeys(("FIT_PEER", "PEERS", "REFERENCE_PEER", "Peer", "make_peer", "top_k_indices"), "tfrec.bench.peers"),
    **dict.fromkeys(("PROTOCOLS", "execute_job", "parse_size", "run_bench", "run_scale"), "tfrec.bench.runner"),
}

__all__ = [
    "FIT_PEER", "PEERS", "PROTOCOLS", "REFERENCE_PEER", "Peer", "execute_job", "make_peer", "parse_size", "run_bench", "run_scale",
    "top_k_indices",
]

__getattr__ = lazy_exports(__name__, _EXPORTS)
