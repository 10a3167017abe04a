"""``tfrec versions``: list and prune SavedModel versions and TensorBoard runs."""
from __future__ import annotations

from tfrec.cli.common import format_table


def cmd_versions(args) -> int:
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
    print(format_table(rows, columns) if rows else f"{args.savedmodels}: no model versions")
    if args.logdir:
        runs = list_runs(args.logdir, args.model)
        per_model = {run.model: [r for r in runs if r.model == run.model] for run in runs}
        print(f"\nTensorBoard runs in {args.logdir}:")
        print(format_table([{"model": model, "runs": len(group), "newest": group[0].written_at, "size": format_size(sum(r.size_bytes for r in group))}
                             for model, group in per_model.items()], ["model", "runs", "newest", "size"]))
    return 0
