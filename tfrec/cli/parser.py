"""The ``tfrec`` argument parser: every command and option (imports neither TensorFlow nor pandas)."""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_SPLIT = "temporal"


def build_parser() -> argparse.ArgumentParser:
    from tfrec import __version__
    from tfrec.data.split_names import SPLIT_NAMES
    from tfrec.distribute.cluster import STRATEGIES

    parser = argparse.ArgumentParser(prog="tfrec", description="Classic recommenders as Keras models, served as SavedModels.")
    parser.add_argument("--version", action="version", version=f"tfrec {__version__}")
    verbose_help = "show TensorFlow's log lines too (also: environment TFREC_VERBOSE=1)"
    parser.add_argument("--verbose", action="store_true", help=verbose_help)
    # ... also after the command (tfrec train mf --verbose); SUPPRESS keeps a command without it from resetting the top-level flag
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data_help = "demo (default), a MovieLens folder, a ratings CSV, or synthetic:N"
    columns_help = ("with a CSV --data: the columns holding user, item, rating, time, e.g. user=uid,item=movie,rating=stars,time=ts "
                    "(rating=none: implicit; default: the headers user_id or userId, item_id or movieId, rating, timestamp)")
    split_help = f"one of {', '.join(SPLIT_NAMES)} (default {DEFAULT_SPLIT})"

    # no abbreviated options: --local-workers re-runs the arguments as given, minus its own options
    train = commands.add_parser("train", parents=[verbose], allow_abbrev=False, help="fit, export, evaluate one model (or 'all')")
    train.add_argument("model", help="a model name (see 'tfrec models') or 'all'")
    train.add_argument("--data", default="demo", help=data_help)
    train.add_argument("--columns", metavar="KEY=COLUMN,...", help=columns_help)
    train.add_argument("--split", default=DEFAULT_SPLIT, help=split_help)
    train.add_argument("--export-dir", default="savedmodels", help="where SavedModels go (default savedmodels)")
    train.add_argument("--logdir", default="runs", help="TensorBoard log folder (default runs)")
    train.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                       help="trained models (mf, two_tower): checkpoint every epoch under DIR/<model> and, when a fit there was "
                            "interrupted, resume it (same weights as an uninterrupted fit); default: no checkpoints")
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="model parameter, repeatable; overrides the preset's value")
    train.add_argument("--preset", default="auto", metavar="PRESET",
                       help="the model's setting for a task: auto (default: the split's protocol), R (rating prediction), T (top-N), "
                            "S (next item), or none (the constructor defaults); see 'tfrec models'")
    train.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    train.add_argument("--strategy", default="default", choices=STRATEGIES,
                       help="tf.distribute strategy: default (one device), mirrored (every local GPU), multi-worker "
                            "(one process per worker, the cluster from TF_CONFIG; worker 0 exports)")
    train.add_argument("--local-workers", type=int, metavar="N",
                       help="run the fit as N multi-worker processes on this machine (127.0.0.1, free ports), stopping all if one fails")

    evaluate = commands.add_parser("evaluate", parents=[verbose], help="evaluate an exported SavedModel on a split")
    evaluate.add_argument("savedmodel", help="a SavedModel folder, or a model folder holding versions")
    evaluate.add_argument("--data", default="demo", help=data_help)
    evaluate.add_argument("--columns", metavar="KEY=COLUMN,...", help=columns_help)
    evaluate.add_argument("--split", default=DEFAULT_SPLIT, help=split_help)
    evaluate.add_argument("--json", type=Path, help="write the metrics to this JSON file")

    recommend = commands.add_parser("recommend", parents=[verbose], help="top-k items for a user from a SavedModel")
    recommend.add_argument("savedmodel", help="a SavedModel folder, or a model folder holding versions")
    recommend.add_argument("--user", required=True, help="user id (unknown users get the model's fallback)")
    recommend.add_argument("--history", default="", help="comma-separated item ids the user interacted with")
    recommend.add_argument("-k", type=int, default=10, help="number of items (default 10)")

    commands.add_parser("models", help="list the models and their parameters")

    versions = commands.add_parser("versions", help="list the SavedModel versions of each model; --prune deletes old ones")
    versions.add_argument("savedmodels", nargs="?", default="savedmodels", metavar="SAVEDMODELS_DIR",
                          help="folder of model folders (<name>/<version>/) (default savedmodels)")
    versions.add_argument("--model", metavar="NAME", help="only this model folder (default: all)")
    versions.add_argument("--prune", action="store_true",
                          help="delete each model's complete versions older than its newest --keep (never the served one, "
                               "never an incomplete version or an export in progress)")
    versions.add_argument("--keep", type=int, metavar="N", help="with --prune: complete versions kept per model (default 3)")
    versions.add_argument("--dry-run", action="store_true", help="with --prune: only say what would be deleted")
    versions.add_argument("--logdir", metavar="DIR",
                          help="also list (and with --prune, prune to the newest --keep per model) the TensorBoard runs in DIR, e.g. runs")

    serve = commands.add_parser("serve", parents=[verbose], help="serve every model folder over HTTP with TF Serving's REST API")
    serve.add_argument("savedmodels", nargs="?", default="savedmodels", metavar="SAVEDMODELS_DIR",
                       help="folder of model folders (<name>/<version>/), each served under its folder name (default savedmodels)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8501, help="port (default 8501, TF Serving's REST port)")
    serve.add_argument("--models", default="", help="comma-separated model folder names to serve (default: all)")
    serve.add_argument("--poll-seconds", type=float, default=1.0, help="how often to look for new versions (default 1; 0: never)")
    serve.add_argument("--max-batch", type=int, default=1024, help="most rows per request (default 1024)")
    serve.add_argument("--max-history", type=int, default=1000, help="most history items per row (default 1000)")
    serve.add_argument("--max-k", type=int, default=1000, help="largest k (default 1000)")
    serve.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body in MiB (default 64)")
    serve.add_argument("--access-log", action="store_true", help="log one line per request (off by default, as in TF Serving: it costs latency)")

    bench = commands.add_parser("bench", parents=[verbose], help="every model against its peers on protocols R, T, S: quality, speed, memory")
    bench.add_argument("--data", default="demo", help=data_help)
    bench.add_argument("--columns", metavar="KEY=COLUMN,...", help=columns_help)
    bench.add_argument("--protocol", default="all", help="R, T, S, a comma list of them, or all (default)")
    bench.add_argument("--models", default="all",
                       help="comma-separated tfrec models or variants (item_knn:neighbours=100), 'all' (default) or 'none'")
    bench.add_argument("--peers", default="default",
                       help="comma-separated peers, 'default' (all but slow and opt-in ones; with --scale: none), 'paired' "
                            "(each model's fit-time peer: tfidf-sklearn_tfidf, covisit-numpy_covisit, item_knn-implicit_cosine), "
                            "'all' or 'none'")
    bench.add_argument("--param", action="append", default=[], metavar="MODEL.KEY=VALUE",
                       help="a parameter of one tfrec model, e.g. mf.epochs=3 (repeatable)")
    bench.add_argument("--json", type=Path, help="also write the results JSON here")
    bench.add_argument("--out", type=Path, default=Path("bench-results"), help="output folder (default bench-results)")
    bench.add_argument("--max-seconds", type=float, default=1800.0, help="time limit per model and protocol (default 1800)")
    bench.add_argument("--max-memory-gb", type=float, default=20.0, help="resident memory limit per model and protocol (default 20)")
    bench.add_argument("--scale", nargs="?", const="data", metavar="SIZES",
                       help="scale run instead: fit + export on synthetic data of these sizes (e.g. 1M,5M,20M; "
                            "without a value: the size of --data synthetic:N); with --peers, each model next to its peer")
    bench.add_argument("--repeat", type=int, default=1, metavar="N",
                       help="with --scale: run every entry N times per size, interleaved, and keep each one's median fit (default 1)")
    bench.add_argument("--holdout", action="store_true",
                       help="with --scale: fit on each user's first 80%% of interactions and report NDCG@10 / Recall@10 on the rest "
                            "(at most 10,000 test users, a seeded sample)")
    bench.add_argument("--in-process", action="store_true", help="run every job in this process (faster start; memory is cumulative)")
    bench.add_argument("-q", "--quiet", action="store_true", help="only the final tables")
    return parser
