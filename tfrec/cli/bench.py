"""``tfrec bench``: every model against its peers, or the scale runs."""
from __future__ import annotations

import shlex

from tfrec.cli.common import csv_columns


def cmd_bench(args) -> int:
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
    columns = csv_columns(args)
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
