"""One benchmark job in a fresh process: ``python -m tfrec.bench.worker JOB.json RESULT.json``.

The job (see ``tfrec.bench.runner``) is read from JOB.json; the result row, with this
process's own peak memory, is written to RESULT.json. A failure writes
``{"status": "failed", "error": ...}`` and exits with code 1.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m tfrec.bench.worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text())
    result_path = Path(argv[1])
    from tfrec.bench.runner import execute_job

    try:
        result = execute_job(job, verbose=int(job.get("verbose", 1)))
    except Exception as error:
        traceback.print_exc()
        result_path.write_text(json.dumps({"status": "failed", "error": f"{type(error).__name__}: {error}"}))
        return 1
    result_path.write_text(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
