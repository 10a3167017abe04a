"""Benchmarks: every tfrec model against its peers on protocols R, T and S, side by side.

``run_bench`` (also ``tfrec bench`` and ``scripts/bench.py``) runs each (model or peer,
protocol) job in a fresh process and writes a markdown table, JSON, a PNG chart and
TensorBoard HParams runs; ``run_scale`` fits every model on synthetic data of growing
size. See ``tfrec.bench.runner`` for what is measured and how.
"""
from tfrec.bench.peers import PEERS, REFERENCE_PEER, Peer, make_peer, top_k_indices
from tfrec.bench.runner import PROTOCOLS, execute_job, parse_size, run_bench, run_scale

__all__ = ["PEERS", "PROTOCOLS", "REFERENCE_PEER", "Peer", "execute_job", "make_peer", "parse_size", "run_bench", "run_scale", "top_k_indices"]
