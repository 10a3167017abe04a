"""``tfrec train``: fit, export, evaluate one model or all, with the split's preset."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tfrec.cli.common import cli_value, csv_columns, format_table


def _train_one(name: str, params: dict[str, Any], split, args, strategy) -> dict[str, Any] | None:
    """Fit, export and evaluate one model; None on a worker other than the chief (it
    contributes its shard to the fit and writes nothing)."""
    from tfrec.distribute.cluster import worker_place
    from tfrec.evaluation.evaluate import evaluate
    from tfrec.export import export_model
    from tfrec.models import make_model
    from tfrec.models.tensorboard import write_evaluation
    from tfrec.serving import ServedModel
    from tfrec.training import fit

    chief = worker_place(strategy).is_chief
    verbose = 0 if args.quiet else 1
    model = make_model(name, **params)
    result = fit(model, split.train, logdir=args.logdir if chief else None, split=split.name, verbose=verbose,
                 checkpoint_dir=_checkpoint_dir(args, model), strategy=strategy)
    if not chief:
        return None
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
        settings = " ".join(f"{key}={cli_value(value)}" for key, value in applied.items())
        print(f"{name}: preset {preset.upper()} ({settings}); override with --param KEY=VALUE, or --preset none for the constructor defaults")


def _model_header(index: int, total: int, name: str) -> str:
    """The line before each model of ``train all``: ``[3/7] covisit``."""
    return f"[{index}/{total}] {name}"


def _run_local_workers(args) -> int:
    """``--local-workers N``: the same command as N ``--strategy multi-worker`` processes."""
    import tempfile

    from tfrec.distribute.launcher import run_local_workers, worker_command

    log_dir = Path(tempfile.mkdtemp(prefix="tfrec-workers-"))
    return run_local_workers(worker_command(args.argv), args.local_workers, log_dir)


def cmd_train(args) -> int:
    strategy = None
    if args.local_workers is None and args.strategy != "default":
        from tfrec.distribute.cluster import make_strategy

        strategy = make_strategy(args.strategy)  # first: TensorFlow sets up collectives before any other operation
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
    if args.local_workers is not None:
        if args.local_workers < 1:
            raise ValueError(f"--local-workers must be at least 1, got {args.local_workers}")
        if args.strategy not in ("default", "multi-worker"):
            raise ValueError(f"--local-workers runs --strategy multi-worker; it cannot be combined with --strategy {args.strategy}")
        return _run_local_workers(args)
    split = make_split(load_data(args.data, columns=csv_columns(args)), args.split)
    print(f"data {split.train.name}, split {split.name} (protocol {split.protocol}): "
          f"{len(split.train.interactions):,} train / {len(split.test):,} test interactions")
    rows = []
    for index, name in enumerate(names, start=1):
        if len(names) > 1:
            print(f"\n{_model_header(index, len(names), name)}", flush=True)
        _print_preset(name, preset, params)
        rows.append(_train_one(name, model_params[name], split, args, strategy))
    if rows[0] is None:
        return 0  # not the chief: the chief prints the results
    columns = ["model"] + [c for c in rows[0] if c != "model"]
    print()
    print(format_table(rows, columns))
    if args.json:
        args.json.write_text(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2))
    return 0
