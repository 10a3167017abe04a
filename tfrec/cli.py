"""The ``tfrec`` command line: train, evaluate, recommend, models, bench, serve.

Every command walks the one path: load data -> split -> fit -> export -> load the
SavedModel -> evaluate through its signatures. User mistakes (unknown model, bad
parameter, bad path, bad file) print one line and exit with code 2.

Arguments are parsed, and model and split names checked, before TensorFlow is imported:
``--help``, ``--version`` and such mistakes answer at once. TensorFlow's own log lines are
hidden unless ``--verbose`` or ``TFREC_VERBOSE=1`` (see ``tfrec._keras.quiet_tensorflow``).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

DEFAULT_SPLIT = "temporal"


def _parser() -> argparse.ArgumentParser:
    from tfrec import __version__
    from tfrec.data.split_names import SPLIT_NAMES

    parser = argparse.ArgumentParser(prog="tfrec", description="Classic recommenders as Keras models, served as SavedModels.")
    parser.add_argument("--version", action="version", version=f"tfrec {__version__}")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's log lines too (also: environment TFREC_VERBOSE=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data_help = "demo (default), a MovieLens folder, a ratings CSV, or synthetic:N"
    columns_help = ("with a CSV --data: the columns holding user, item, rating, time, e.g. user=uid,item=movie,rating=stars,time=ts "
                    "(rating=none: implicit; default: the headers user_id or userId, item_id or movieId, rating, timestamp)")
    split_help = f"one of {', '.join(SPLIT_NAMES)} (default {DEFAULT_SPLIT})"

    train = commands.add_parser("train", help="fit, export, evaluate one model (or 'all')")
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

    evaluate = commands.add_parser("evaluate", help="evaluate an exported SavedModel on a split")
    evaluate.add_argument("savedmodel", help="a SavedModel folder, or a model folder holding versions")
    evaluate.add_argument("--data", default="demo", help=data_help)
    evaluate.add_argument("--columns", metavar="KEY=COLUMN,...", help=columns_help)
    evaluate.add_argument("--split", default=DEFAULT_SPLIT, help=split_help)
    evaluate.add_argument("--json", type=Path, help="write the metrics to this JSON file")

    recommend = commands.add_parser("recommend", help="top-k items for a user from a SavedModel")
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
    serve.add_argument("--access-log", action="store_true", help="log one line per request (off by default, as in TF Serving: it costs latency)")

    bench = commands.add_parser("bench", help="every model against its peers on protocols R, T, S: quality, speed, memory")
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
    from tfrec.models.tensorboard import write_evaluation
    from tfrec.serving import ServedModel
    from tfrec.training import fit

    verbose = 0 if args.quiet else 1
    model = make_model(name, **params)
    result = fit(model, split.train, logdir=args.logdir, split=split.name, verbose=verbose, checkpoint_dir=_checkpoint_dir(args, model))
    path = export_model(model, args.export_dir, split=split)
    metrics = evaluate(ServedModel.load(path), split, verbose=verbose)
    if result.run_dir is not None:  # --logdir "": no TensorBoard run (else the events land in ./None)
        write_evaluation(result.run_dir, split.name, metrics, split.protocol)
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


def _print_preset(name: str, preset: str | None, overrides: dict[str, Any]) -> None:
    """One line naming the preset values model ``name`` gets (those ``--param`` does not
    override): ``mf: preset T (feedback=implicit); ...``; nothing when there are none."""
    from tfrec.models.registry import preset_params

    applied = {key: value for key, value in preset_params(name, preset).items() if key not in overrides}
    if applied:
        settings = " ".join(f"{key}={_cli_value(value)}" for key, value in applied.items())
        print(f"{name}: preset {preset.upper()} ({settings}); override with --param KEY=VALUE, or --preset none for the constructor defaults")


def _cli_value(value: Any) -> str:
    """A parameter value as ``--param`` takes it: none, true / false, numbers and strings as written."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _model_header(index: int, total: int, name: str) -> str:
    """The line before each model of ``train all``: ``[3/7] covisit``."""
    return f"[{index}/{total}] {name}"


def _cmd_train(args) -> int:
    from tfrec.data import load_data, make_split
    from tfrec.data.split_names import SPLIT_PROTOCOLS
    from tfrec.models import MODELS, make_model, model_class, parse_param
    from tfrec.models.registry import params_for

    names = list(MODELS) if args.model == "all" else [args.model]
    if args.model != "all":
        model_class(args.model)  # unknown names fail before any data is read
    if args.param and len(names) > 1:
        raise ValueError("--param applies to one model; name the model instead of 'all'")
    params = dict(parse_param(names[0], text) for text in args.param)
    preset = SPLIT_PROTOCOLS.get(args.split) if args.preset == "auto" else args.preset
    model_params = {name: params_for(name, preset, **params) for name in names}  # the preset for the task, then --param
    if args.model != "all":
        make_model(args.model, **model_params[args.model])  # so do bad parameter values and combinations
    _check_train_outputs(args, names)  # and path mistakes, before any data is read or model fitted
    split = make_split(load_data(args.data, columns=_columns(args)), args.split)
    print(f"data {split.train.name}, split {split.name} (protocol {split.protocol}): "
          f"{len(split.train.interactions):,} train / {len(split.test):,} test interactions")
    rows = []
    for index, name in enumerate(names, start=1):
        if len(names) > 1:
            print(f"\n{_model_header(index, len(names), name)}", flush=True)
        _print_preset(name, preset, params)
        rows.append(_train_one(name, model_params[name], split, args))
    columns = ["model"] + [c for c in rows[0] if c != "model"]
    print()
    print(_format_table(rows, columns))
    if args.json:
        args.json.write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    return 0


def _columns(args) -> dict[str, str | None] | None:
    """``--columns`` as ``load_data``'s ``columns`` (None when not given); one-line ``ValueError``
    for a malformed value or a ``--data`` that is not a CSV file."""
    from tfrec.data.csv_columns import parse_columns

    if args.columns is None:
        return None
    if not args.data.lower().endswith(".csv"):
        raise ValueError(f"--columns applies to a ratings CSV file (--data FILE.csv), not to --data {args.data}")
    return parse_columns(args.columns)


def _cmd_evaluate(args) -> int:
    from tfrec.data import load_data, make_split
    from tfrec.evaluation.evaluate import evaluate
    from tfrec.export.paths import check_output_file
    from tfrec.serving import ServedModel

    if args.json:
        check_output_file(args.json, "--json")
    columns = _columns(args)
    served = ServedModel.load(args.savedmodel)
    print(served.describe())
    split = make_split(load_data(args.data, columns=columns), args.split)
    warning = _training_mismatch(served, split, args)
    if warning:
        print(f"tfrec: warning: {warning}", file=sys.stderr)
    metrics = evaluate(served, split, verbose=1)
    print(_format_table([{"model": served.name, **metrics}], ["model", *metrics]))
    if args.json:
        args.json.write_text(json.dumps(metrics, indent=2))
    return 0


def _training_mismatch(served, split, args) -> str | None:
    """One line when ``split`` is not what ``served`` was trained on (other data, another
    split, changed data), naming the versions beside it that were, if any."""
    from tfrec.data.dataset import interactions_fingerprint
    from tfrec.export.provenance import mismatch, versions_trained_on

    fingerprint = interactions_fingerprint(split.train.interactions)
    reason = mismatch(served.trained_on, split.train.name, split.name, fingerprint)
    if reason is None:
        return None
    line = f"{served.name} version {served.version}: {reason}"
    if served.version is None:
        return line
    matching = [v for v in versions_trained_on(served.path.parent, split.train.name, fingerprint) if v != served.path]
    if matching:
        command = shlex.join(["tfrec", "evaluate", str(matching[0]), "--data", args.data, "--split", args.split])
        return f"{line}; {served.path.parent} holds versions trained on other data: to evaluate the one trained on this, run: {command}"
    command = shlex.join(["tfrec", "train", served.name, "--data", args.data, "--split", args.split])
    return f"{line}; no version in {served.path.parent} was trained on it: {command}"


def _recommend_notes(served, user: str, history: list[str]) -> list[str]:
    """The lines ``tfrec recommend`` prints before its table: the history with titles, the
    fallback and unknown history items (as warnings), the number of seen items excluded."""
    explained = served.explain([user], [history])
    data = served.trained_on.data if served.trained_on is not None and served.trained_on.data else "the model's"
    lines = []
    if history:
        lines.append("history: " + "; ".join(f"{item} {served.title(item)!r}" if served.title(item) else f"{item} (unknown)" for item in history))
    if not explained.known_user[0]:
        then = f"showing the model's fallback: {served.fallback_description}" if explained.fallback[0] else "recommending from the history alone"
        lines.append(f"tfrec: warning: user {user} is not in the training data ({data}): {then}")
    unknown = explained.unknown_history[0]
    if unknown:
        lines.append(f"tfrec: warning: {len(unknown)} of {len(history)} history items are unknown to the model and were ignored: {', '.join(unknown)}")
    lines.append(f"excluded {explained.excluded[0]} already-seen item{'s' if explained.excluded[0] != 1 else ''}")
    return lines


def _cmd_recommend(args) -> int:
    from tfrec.serving import ServedModel

    served = ServedModel.load(args.savedmodel)
    history = [h.strip() for h in args.history.split(",") if h.strip()]
    item_ids, scores = served.recommend([args.user], history=[history], k=args.k)
    rows = [
        {"rank": rank, "item_id": item, "title": served.title(item), "score": float(score)}
        for rank, (item, score) in enumerate(zip(item_ids[0], scores[0]), start=1)
        if item
    ]
    print(served.describe())
    for line in _recommend_notes(served, args.user, history):
        print(line, file=sys.stderr if line.startswith("tfrec: warning:") else sys.stdout)
    print(f"top {args.k} for user {args.user}:")
    print(_format_table(rows, ["rank", "item_id", "title", "score"]))
    return 0


def _cmd_models(args) -> int:
    from tfrec.models.registry import describe_models  # the specs only: no model module, no TensorFlow

    print("\n\n".join(_model_table(name, spec) for name, spec in describe_models().items()))
    return 0


def _model_table(name: str, spec) -> str:
    """One model of ``tfrec models``: its description, then one row per parameter (default,
    allowed values, unit, meaning) and its presets (``tfrec.models.specs.ModelSpec``)."""
    from dataclasses import replace

    from tfrec.models.specs import PRESET_PROTOCOLS

    rows = [("parameter", "default", "allowed values", "unit", "meaning")]
    rows += [(key, _cli_value(spec.defaults[key]), replace(rule, unit="").rule(), rule.unit, rule.doc) for key, rule in spec.params.items()]
    if not any(row[3] for row in rows[1:]):
        rows = [row[:3] + row[4:] for row in rows]  # no parameter has a unit: no unit column
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = [f"{name}: {spec.description}"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    if not spec.presets:
        lines.append("  presets: none (the defaults for every protocol)")
        return "\n".join(lines)
    lines.append("  presets (tfrec train --preset, by default the split's protocol; other protocols: the defaults):")
    lines += [
        f"    {protocol} ({PRESET_PROTOCOLS[protocol]}): " + " ".join(f"{key}={_cli_value(value)}" for key, value in preset.items())
        for protocol, preset in spec.presets.items()
    ]
    return "\n".join(lines)


def _cmd_versions(args) -> int:
    from tfrec.export.retention import DEFAULT_KEEP, format_size, list_runs, list_versions, prune_runs, prune_versions

    if not args.prune and (args.dry_run or args.keep is not None):
        raise ValueError("--keep and --dry-run apply to --prune")
    if args.prune:
        keep = DEFAULT_KEEP if args.keep is None else args.keep
        doomed = prune_versions(args.savedmodels, keep=keep, model=args.model, dry_run=args.dry_run)
        runs = prune_runs(args.logdir, keep=keep, model=args.model, dry_run=args.dry_run) if args.logdir else []
        verb = "would delete" if args.dry_run else "deleted"
        for info in doomed:
            print(f"{verb} {info.path} ({info.exported_at}, {info.trained_on_text()}, {format_size(info.size_bytes)})")
        for run in runs:
            print(f"{verb} {run.path} ({run.written_at}, {format_size(run.size_bytes)})")
        freed = format_size(sum(info.size_bytes for info in doomed) + sum(run.size_bytes for run in runs))
        what = f"{len(doomed)} version{'s' if len(doomed) != 1 else ''}"
        if args.logdir:
            what += f" and {len(runs)} TensorBoard run{'s' if len(runs) != 1 else ''}"
        print(f"{verb} {what} ({freed}); kept the newest {keep} of each model")
        return 0
    rows = [
        {"model": info.model, "version": info.version, "served": "served" if info.served else ("" if info.complete else "incomplete"),
         "exported": info.exported_at, "trained on": info.trained_on_text(), "size": format_size(info.size_bytes), "problem": info.problem or ""}
        for info in list_versions(args.savedmodels, args.model)
    ]
    columns = ["model", "version", "served", "exported", "trained on", "size"] + (["problem"] if any(row["problem"] for row in rows) else [])
    print(_format_table(rows, columns) if rows else f"{args.savedmodels}: no model versions")
    if args.logdir:
        runs = list_runs(args.logdir, args.model)
        per_model = {run.model: [r for r in runs if r.model == run.model] for run in runs}
        print(f"\nTensorBoard runs in {args.logdir}:")
        print(_format_table([{"model": model, "runs": len(group), "newest": group[0].written_at, "size": format_size(sum(r.size_bytes for r in group))}
                             for model, group in per_model.items()], ["model", "runs", "newest", "size"]))
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
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=args.access_log)
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
    columns = _columns(args)
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
              max_memory_gb=args.max_memory_gb, isolate=not args.in_process, verbose=verbose, command=command, params=params, columns=columns)
    return 0


def _check_names(args) -> None:
    """Unknown model and split names fail here, before pandas or TensorFlow load (bench protocols fail in run_bench, as early)."""
    from tfrec.data.split_names import SPLIT_NAMES
    from tfrec.models.registry import MODELS, model_class

    if args.command == "train" and args.model != "all" and args.model not in MODELS:  # the check imports no model
        model_class(args.model)  # raises UnknownModelError naming the models
    if args.command == "bench" and args.protocol.strip().lower() != "all":
        from tfrec.models.specs import PRESET_PROTOCOLS  # the protocol letters; imports no TensorFlow

        unknown = [name.strip() for name in args.protocol.split(",") if name.strip().upper() not in PRESET_PROTOCOLS]
        if unknown:
            raise ValueError(f"unknown protocol '{unknown[0]}'; protocols are R, T, S or all")
    split = getattr(args, "split", None)
    if split is not None and split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPLIT_NAMES)}")


#: The commands that run TensorFlow (the others answer without importing it).
_TENSORFLOW_COMMANDS = ("train", "evaluate", "recommend", "bench", "serve")


def _verbose(args) -> bool:
    return args.verbose or os.environ.get("TFREC_VERBOSE", "").strip() not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not _verbose(args):
        from tfrec._keras import quiet_tensorflow

        quiet_tensorflow()

    handlers = {"train": _cmd_train, "evaluate": _cmd_evaluate, "recommend": _cmd_recommend, "models": _cmd_models, "bench": _cmd_bench,
                "serve": _cmd_serve, "versions": _cmd_versions}
    try:
        _check_names(args)
        if args.command in _TENSORFLOW_COMMANDS:
            from tfrec._keras import import_tensorflow

            import_tensorflow()  # here, quietly: not first through a library that imports it itself
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as error:  # DataError and UnknownModelError are ValueErrors
        print(f"tfrec: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
