"""The ``tfrec`` command line: train, evaluate, recommend, models, bench, serve.

Every command walks the one path: load data -> split -> fit -> export -> load the
SavedModel -> evaluate through its signatures. User mistakes (unknown model, bad
parameter, bad path, bad file) print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

DEFAULT_SPLIT = "temporal"


def _parser() -> argparse.ArgumentParser:
    from tfrec.data.splits import SPLIT_NAMES

    parser = argparse.ArgumentParser(prog="tfrec", description="Classic recommenders as Keras models, served as SavedModels.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data_help = "demo (default), a MovieLens folder, a ratings CSV, or synthetic:N"
    split_help = f"one of {', '.join(SPLIT_NAMES)} (default {DEFAULT_SPLIT})"

    train = commands.add_parser("train", help="fit, export, evaluate one model (or 'all')")
    train.add_argument("model", help="a model name (see 'tfrec models') or 'all'")
    train.add_argument("--data", default="demo", help=data_help)
    train.add_argument("--split", default=DEFAULT_SPLIT, help=split_help)
    train.add_argument("--export-dir", default="savedmodels", help="where SavedModels go (default savedmodels)")
    train.add_argument("--logdir", default="runs", help="TensorBoard log folder (default runs)")
    train.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                       help="trained models (mf, two_tower): checkpoint every epoch under DIR/<model> and, when a fit there was "
                            "interrupted, resume it (same weights as an uninterrupted fit); default: no checkpoints")
    train.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="model parameter, repeatable")
    train.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    train.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    evaluate = commands.add_parser("evaluate", help="evaluate an exported SavedModel on a split")
    evaluate.add_argument("savedmodel", help="a SavedModel folder, or a model folder holding versions")
    evaluate.add_argument("--data", default="demo", help=data_help)
    evaluate.add_argument("--split", default=DEFAULT_SPLIT, help=split_help)
    evaluate.add_argument("--json", type=Path, help="write the metrics to this JSON file")

    recommend = commands.add_parser("recommend", help="top-k items for a user from a SavedModel")
    recommend.add_argument("savedmodel", help="a SavedModel folder, or a model folder holding versions")
    recommend.add_argument("--user", required=True, help="user id (unknown users get the model's fallback)")
    recommend.add_argument("--history", default="", help="comma-separated item ids the user interacted with")
    recommend.add_argument("-k", type=int, default=10, help="number of items (default 10)")

    commands.add_parser("models", help="list the models and their parameters")

    serve = commands.add_parser("serve", help="serve every model folder over HTTP with TF Serving's REST API")
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

    bench = commands.add_parser("bench", help="every model against its peers on protocols R, T, S: quality, speed, memory")
    bench.add_argument("--data", default="demo", help=data_help)
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


def _format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _train_one(name: str, params: dict[str, Any], split, args) -> dict[str, Any]:
    from tfrec.evaluation.evaluate import evaluate
    from tfrec.export import export_model
    from tfrec.models import make_model
    from tfrec.models.tensorboard import write_scalars
    from tfrec.serving import ServedModel
    from tfrec.training import fit

    verbose = 0 if args.quiet else 1
    model = make_model(name, **params)
    result = fit(model, split.train, logdir=args.logdir, verbose=verbose, checkpoint_dir=_checkpoint_dir(args, model))
    path = export_model(model, args.export_dir)
    metrics = evaluate(ServedModel.load(path), split, verbose=verbose)
    write_scalars(result.run_dir, metrics, prefix=f"eval_{split.name}/")
    print(f"{name}: fitted in {result.fit_seconds:.2f}s | SavedModel {path} | TensorBoard run {result.run_dir}")
    return {"model": name, **metrics, "fit_s": result.fit_seconds}


def _checkpoint_dir(args, model) -> Path | None:
    """``--checkpoint-dir DIR``: DIR/<model> for a trained model; with 'all' the fixed-weight models have none."""
    if args.checkpoint_dir is None or (args.model == "all" and not model.trained):
        return None
    if not model.trained:
        raise ValueError(f"--checkpoint-dir applies to trained models (mf, two_tower); {model.registry_name} computes its weights in one pass")
    return args.checkpoint_dir / model.registry_name


def _check_train_outputs(args, names: list[str]) -> None:
    """One-line ``ValueError`` when ``--export-dir``, ``--logdir`` or ``--json`` cannot be written."""
    from tfrec.export.paths import check_output_dir, check_output_file

    check_output_dir(args.export_dir, "--export-dir")
    for name in names:
        check_output_dir(Path(args.export_dir) / name, "--export-dir")
    if args.logdir:
        check_output_dir(args.logdir, "--logdir")
    if args.json:
        check_output_file(args.json, "--json")


def _cmd_train(args) -> int:
    from tfrec.data import load_data, make_split
    from tfrec.models import MODELS, make_model, model_class, parse_param

    names = list(MODELS) if args.model == "all" else [args.model]
    if args.model != "all":
        model_class(args.model)  # unknown names fail before any data is read
    if args.param and len(names) > 1:
        raise ValueError("--param applies to one model; name the model instead of 'all'")
    params = dict(parse_param(names[0], text) for text in args.param)
    if args.model != "all":
        make_model(args.model, **params)  # so do bad parameter values and combinations
    _check_train_outputs(args, names)  # and path mistakes, before any data is read or model fitted
    split = make_split(load_data(args.data), args.split)
    print(f"data {split.train.name}, split {split.name} (protocol {split.protocol}): "
          f"{len(split.train.interactions):,} train / {len(split.test):,} test interactions")
    rows = [_train_one(name, params, split, args) for name in names]
    columns = ["model"] + [c for c in rows[0] if c != "model"]
    print()
    print(_format_table(rows, columns))
    if args.json:
        args.json.write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    return 0


def _cmd_evaluate(args) -> int:
    from tfrec.data import load_data, make_split
    from tfrec.evaluation.evaluate import evaluate
    from tfrec.export.paths import check_output_file
    from tfrec.serving import ServedModel

    if args.json:
        check_output_file(args.json, "--json")
    served = ServedModel.load(args.savedmodel)
    print(f"{served.name} version {served.version} ({served.path})")
    split = make_split(load_data(args.data), args.split)
    metrics = evaluate(served, split, verbose=1)
    print(_format_table([{"model": served.name, **metrics}], ["model", *metrics]))
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=2))
    return 0


def _cmd_recommend(args) -> int:
    from tfrec.serving import ServedModel

    served = ServedModel.load(args.savedmodel)
    history = [[h.strip() for h in args.history.split(",") if h.strip()]]
    item_ids, scores = served.recommend([args.user], history=history, k=args.k)
    rows = [
        {"rank": rank, "item_id": item, "title": served.title(item), "score": float(score)}
        for rank, (item, score) in enumerate(zip(item_ids[0], scores[0]), start=1)
        if item
    ]
    print(f"{served.name} version {served.version} ({served.path}) for user {args.user}:")
    print(_format_table(rows, ["rank", "item_id", "title", "score"]))
    return 0


def _cmd_models(args) -> int:
    from tfrec.models import describe_models

    for name, description, params in describe_models():
        settings = ", ".join(f"{k}={v!r}" for k, v in params.items()) or "no parameters"
        print(f"{name:12s} {description}\n{'':12s} {settings}")
    return 0


def _cmd_serve(args) -> int:
    import logging

    import uvicorn

    from tfrec.serving.registry import ModelRegistry
    from tfrec.serving.rest import Limits, create_app

    for option, value in (("--max-batch", args.max_batch), ("--max-history", args.max_history), ("--max-k", args.max_k)):
        if value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    if not args.max_body_mb > 0:
        raise ValueError(f"--max-body-mb must be positive, got {args.max_body_mb}")
    if args.poll_seconds < 0:
        raise ValueError(f"--poll-seconds must be 0 (never) or positive, got {args.poll_seconds}")
    if not Path(args.savedmodels).is_dir():
        raise ValueError(f"{args.savedmodels}: not a folder (expected model folders such as {args.savedmodels}/popularity/1)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    models = [name.strip() for name in args.models.split(",") if name.strip()] or None
    registry = ModelRegistry(args.savedmodels, models)
    limits = Limits(max_batch=args.max_batch, max_history=args.max_history, max_k=args.max_k,
                    max_body_bytes=int(args.max_body_mb * 1024 * 1024))
    app = create_app(registry, limits, poll_seconds=args.poll_seconds or None)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _cmd_bench(args) -> int:
    from tfrec.bench import parse_size, run_bench, run_scale
    from tfrec.models import parse_param

    command = "tfrec " + shlex.join(args.argv)
    verbose = 0 if args.quiet else 1
    params: dict[str, dict] = {}
    for text in args.param:
        model, _, setting = text.partition(".")
        if not setting:
            raise ValueError(f"--param '{text}' is not of the form MODEL.KEY=VALUE (e.g. mf.epochs=3)")
        key, value = parse_param(model, setting)
        params.setdefault(model, {})[key] = value
    if args.scale is not None:
        if args.scale == "data":
            if not args.data.startswith("synthetic:"):
                raise ValueError("--scale without sizes needs --data synthetic:N (or give sizes: --scale 1M,5M,20M)")
            sizes = [parse_size(args.data.split(":", 1)[1])]
        else:
            sizes = [parse_size(size) for size in args.scale.split(",") if size.strip()]
        run_scale(sizes, args.models, "none" if args.peers == "default" else args.peers, out_dir=args.out / "scale", json_path=args.json,
                  max_seconds=args.max_seconds, max_memory_gb=args.max_memory_gb, repeat=args.repeat, isolate=not args.in_process, verbose=verbose,
                  command=command, params=params, holdout=args.holdout)
        return 0
    if args.holdout:
        raise ValueError("--holdout applies to --scale runs (the protocol runs always hold out)")
    if args.repeat != 1:
        raise ValueError("--repeat applies to --scale runs")
    run_bench(args.data, args.protocol, args.models, args.peers, out_dir=args.out, json_path=args.json, max_seconds=args.max_seconds,
              max_memory_gb=args.max_memory_gb, isolate=not args.in_process, verbose=verbose, command=command, params=params)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    from tfrec.data.dataset import DataError
    from tfrec.models import UnknownModelError

    handlers = {"train": _cmd_train, "evaluate": _cmd_evaluate, "recommend": _cmd_recommend, "models": _cmd_models, "bench": _cmd_bench,
                "serve": _cmd_serve}
    try:
        return handlers[args.command](args)
    except (DataError, UnknownModelError, ValueError, FileNotFoundError) as error:
        print(f"tfrec: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
