"""``tfrec evaluate``: a SavedModel on a split, warning when it was trained on other data."""
from __future__ import annotations

import json
import shlex
import sys

from tfrec.cli.common import csv_columns, format_table


def cmd_evaluate(args) -> int:
    from tfrec.data import load_data, make_split
    from tfrec.evaluation.evaluate import evaluate
    from tfrec.export.paths import check_output_file
    from tfrec.serving import ServedModel

    if args.json:
        check_output_file(args.json, "--json")
    columns = csv_columns(args)
    served = ServedModel.load(args.savedmodel)
    print(served.describe())
    split = make_split(load_data(args.data, columns=columns), args.split)
    warning = _training_mismatch(served, split, args)
    if warning:
        print(f"tfrec: warning: {warning}", file=sys.stderr)
    metrics = evaluate(served, split, verbose=1)
    print(format_table([{"model": served.name, **metrics}], ["model", *metrics]))
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
