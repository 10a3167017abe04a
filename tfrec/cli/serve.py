"""``tfrec serve``: TF Serving's REST API and the comparison page over a SavedModels folder."""
from __future__ import annotations

from pathlib import Path


def cmd_serve(args) -> int:
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
