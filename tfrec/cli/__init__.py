"""The ``tfrec`` command line: train, evaluate, recommend, models, versions, serve, bench.

One module per command (``tfrec.cli.train``, ``evaluate``, ...), the parser in
``tfrec.cli.parser`` and what they share in ``tfrec.cli.common``; ``main`` here dispatches.
Every command walks the one path: load data -> split -> fit -> export -> load the
SavedModel -> evaluate through its signatures. User mistakes (unknown model, bad
parameter, bad path, bad file) print one line and exit with code 2.

Arguments are parsed, and model, split and protocol names checked, before TensorFlow is
imported: ``--help``, ``--version``, ``models``, ``versions`` and such mistakes answer at
once. A command that runs TensorFlow imports it once, first thing, with its start-up lines
hidden unless ``--verbose`` or ``TFREC_VERBOSE=1`` (see ``tfrec._keras.quiet_tensorflow``).
"""
from __future__ import annotations

import os
import sys

from tfrec.cli.bench import cmd_bench
from tfrec.cli.evaluate import cmd_evaluate
from tfrec.cli.models import cmd_models
from tfrec.cli.parser import build_parser
from tfrec.cli.recommend import cmd_recommend
from tfrec.cli.serve import cmd_serve
from tfrec.cli.train import cmd_train
from tfrec.cli.versions import cmd_versions

__all__ = ["main"]


#: Each command's function: ``args`` (the parsed namespace) -> exit code.
COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "recommend": cmd_recommend, "models": cmd_models, "versions": cmd_versions,
            "serve": cmd_serve, "bench": cmd_bench}


#: The commands that run TensorFlow (the others answer without importing it).
_TENSORFLOW_COMMANDS = ("train", "evaluate", "recommend", "bench", "serve")


def _check_names(args) -> None:
    """Unknown model, split and bench protocol names fail here, before pandas or TensorFlow load."""
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


def _verbose(args) -> bool:
    return args.verbose or os.environ.get("TFREC_VERBOSE", "").strip() not in ("", "0")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not _verbose(args):
        from tfrec._keras import quiet_tensorflow

        quiet_tensorflow()

    try:
        _check_names(args)
        if args.command in _TENSORFLOW_COMMANDS:
            from tfrec._keras import import_tensorflow

            import_tensorflow()  # here, quietly: not first through a library that imports it itself
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:  # DataError and UnknownModelError are ValueErrors
        print(f"tfrec: error: {error}", file=sys.stderr)
        return 2
