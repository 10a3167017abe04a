"""Start N ``tfrec train`` workers on this machine for ``--local-workers N`` and fail fast if one dies.

Each worker is the same ``tfrec train`` command run with ``--strategy multi-worker`` and its own ``TF_CONFIG``
(TensorFlow's documented format) naming a cluster of free loopback ports. Worker 0 is the chief: its output is
the launcher's own, so the user sees its progress and results table live; workers 1..N-1 write to log files.

Under ``tf.distribute.MultiWorkerMirroredStrategy`` a worker that dies before the cluster is up leaves the others
blocked forever with no error, so fail-fast lives here: the launcher polls every child and, as soon as one exits
non-zero, stops all the others (SIGTERM to each child's process group, SIGKILL after a grace period) and reports
which worker failed and where its log is. No child is left running when :func:`run_local_workers` returns.

Standard library only: this module never imports TensorFlow.
"""
from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

__all__ = ["free_ports", "run_local_workers", "tf_config", "worker_command"]

HOST = "127.0.0.1"
_LAST_LINE_CHARS = 300
_LOG_TAIL_BYTES = 64 * 1024


def free_ports(n: int, host: str = HOST) -> list[int]:
    """Return ``n`` distinct TCP ports on ``host`` that were free a moment ago.

    All ``n`` sockets are bound to ``(host, 0)`` at the same time (so the kernel hands out distinct ports), their
    ports are read, and then they are closed. There is a small race: another process may take a port between this
    call and the moment a worker binds it; the worker then fails with "address already in use", and the caller
    may simply retry once with fresh ports.
    """
    if n < 0:
        raise ValueError(f"free_ports: n must be >= 0, got {n}")
    sockets: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tf_config(addresses: list[str], index: int) -> str:
    """Return the ``TF_CONFIG`` JSON for worker ``index`` of a cluster of workers at ``addresses`` ("host:port").

    For example ``{"cluster": {"worker": ["127.0.0.1:41235", "127.0.0.1:41236"]}, "task": {"type": "worker",
    "index": 0}}``; worker 0 is the chief.
    """
    if not 0 <= index < len(addresses):
        raise ValueError(f"tf_config: index {index} is outside the cluster of {len(addresses)} workers")
    return json.dumps({"cluster": {"worker": list(addresses)}, "task": {"type": "worker", "index": index}})


def worker_command(argv: list[str]) -> list[str]:
    """Return the command a local worker runs: ``[python, "-m", "tfrec", *argv, "--strategy", "multi-worker"]``.

    ``argv`` is the launcher's own command line (without the program name); ``--local-workers N`` /
    ``--local-workers=N`` and any ``--strategy X`` / ``--strategy=X`` are removed from it. Arguments after a
    ``--`` separator are kept as they are, and ``--strategy multi-worker`` goes before the separator.
    """
    kept: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest = argv[i:]
            break
        if arg in ("--local-workers", "--strategy"):
            i += 2
            continue
        if arg.startswith(("--local-workers=", "--strategy=")):
            i += 1
            continue
        kept.append(arg)
        i += 1
    return [sys.executable, "-m", "tfrec", *kept, "--strategy", "multi-worker", *rest]


@dataclass
class _Worker:
    """One started child: its index, process, log path (None for worker 0) and open log file."""

    index: int
    process: subprocess.Popen
    log_path: pathlib.Path | None
    log_file: IO[bytes] | None = None
    group_gone: bool = field(default=False)


def _signal_group(worker: _Worker, sig: int) -> bool:
    """Send ``sig`` to the worker's process group; return False once the group no longer exists.

    Each child was started with ``start_new_session=True``, so its pid is its process-group id, and signalling
    the group also reaches anything the worker started. A group found empty is remembered and never signalled
    again (its id could otherwise be reused by an unrelated process).
    """
    if worker.group_gone:
        return False
    try:
        os.killpg(worker.process.pid, sig)
    except ProcessLookupError:
        if worker.process.poll() is not None:
            worker.group_gone = True
        return False
    except PermissionError:
        # A zombie group leader on some systems; the group is on its way out.
        return worker.process.poll() is None
    return True


def _stop_all(workers: list[_Worker], grace_seconds: float, poll_seconds: float) -> None:
    """Stop every worker: SIGTERM to each process group, wait up to ``grace_seconds``, then SIGKILL what is left.

    The grace period waits for the workers themselves; whatever is still in a worker's process group after it
    (a worker that ignored SIGTERM, or something it started) is then SIGKILLed. Every child process is reaped
    before this returns. Safe to call more than once.
    """
    for worker in workers:
        _signal_group(worker, signal.SIGTERM)
    end = time.monotonic() + max(grace_seconds, 0.0)
    while any(worker.process.poll() is None for worker in workers) and time.monotonic() < end:
        time.sleep(min(poll_seconds, 0.05))
    for worker in workers:
        _signal_group(worker, signal.SIGKILL)
    for worker in workers:
        worker.process.wait()


def _describe_exit(returncode: int) -> str:
    """``exited with code C``, or ``killed by SIGNAME`` for a negative (signal) return code."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}"


def _last_line(path: pathlib.Path) -> str:
    """The last non-empty line of the log at ``path`` (at most 300 characters), or "" if none."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - _LOG_TAIL_BYTES, 0))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    for line in reversed(tail.splitlines()):
        if line.strip():
            return line.strip()[:_LAST_LINE_CHARS]
    return ""


def _failure_message(worker: _Worker, returncode: int, n: int) -> str:
    """The one-line error for the first worker that failed."""
    message = f"tfrec: error: worker {worker.index} (pid {worker.process.pid}) {_describe_exit(returncode)}; all {n} workers stopped"
    if worker.log_path is not None:
        message += f"; its log: {worker.log_path}"
        last = _last_line(worker.log_path)
        if last:
            message += f" -- {last}"
    return message


def _start(command: list[str], index: int, child_env: dict[str, str], log_path: pathlib.Path | None) -> _Worker:
    """Start worker ``index`` in its own session; workers other than 0 write stdout and stderr to ``log_path``."""
    if log_path is None:
        return _Worker(index, subprocess.Popen(command, env=child_env, start_new_session=True), None)
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(
            command, env=child_env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    except BaseException:
        log_file.close()
        raise
    return _Worker(index, process, log_path, log_file)


def run_local_workers(
    command: list[str],
    n: int,
    log_dir: pathlib.Path,
    *,
    env: Mapping[str, str] | None = None,
    poll_seconds: float = 0.2,
    stop_grace_seconds: float = 5.0,
    deadline_seconds: float | None = None,
) -> int:
    """Run ``command`` as ``n`` local workers of one multi-worker cluster; return 0 if all succeed, else 2 (130 on Ctrl-C).

    Each worker ``i`` gets ``env`` (default: ``os.environ``) plus ``TF_CONFIG`` (:func:`tf_config` for a cluster
    of :func:`free_ports` on 127.0.0.1) and ``TFREC_WORKER_LOG`` (the path of its log file; empty for worker 0,
    whose stdout and stderr are the launcher's own). Workers 1..n-1 write stdout and stderr to
    ``log_dir/worker-<i>.log`` (``log_dir`` is created). Every child runs in its own session (process group).

    The children are polled every ``poll_seconds``. The first one that exits non-zero or dies by a signal makes
    the launcher stop all the others (SIGTERM to each process group, SIGKILL after ``stop_grace_seconds``), print
    one line to stderr naming the worker, its exit code or signal, its log and the log's last line, and return 2.
    If ``deadline_seconds`` passes with workers still running, they are all stopped and 2 is returned. A
    KeyboardInterrupt stops them all and returns 130. No child is left running when this returns. If a child
    cannot be started (OSError), those already started are stopped and a one-line RuntimeError is raised.
    """
    if n < 1:
        raise ValueError(f"run_local_workers: n must be >= 1, got {n}")
    log_dir = pathlib.Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = free_ports(n, HOST)
    addresses = [f"{HOST}:{port}" for port in ports]
    base_env = dict(os.environ if env is None else env)
    logs = {1: "", 2: f"; the log of worker 1 in {log_dir}"}.get(n, f"; logs of workers 1..{n - 1} in {log_dir}")
    print(f"tfrec: starting {n} local worker{'s' if n > 1 else ''} on {HOST} ports {','.join(map(str, ports))}{logs}", flush=True)
    workers: list[_Worker] = []
    previous = _interrupt_on_termination()
    try:
        try:
            for i in range(n):
                log_path = log_dir / f"worker-{i}.log" if i > 0 else None
                child_env = {**base_env, "TF_CONFIG": tf_config(addresses, i), "TFREC_WORKER_LOG": str(log_path or "")}
                try:
                    workers.append(_start(command, i, child_env, log_path))
                except OSError as exc:
                    _stop_all(workers, stop_grace_seconds, poll_seconds)
                    raise RuntimeError(f"could not start local worker {i} ({command[0] if command else '?'}): {exc}") from exc
            return _supervise(workers, n, poll_seconds, stop_grace_seconds, deadline_seconds)
        except KeyboardInterrupt:
            _stop_all(workers, stop_grace_seconds, poll_seconds)
            print(f"tfrec: interrupted; all {n} workers stopped", file=sys.stderr, flush=True)
            return 130
    finally:
        _stop_all(workers, stop_grace_seconds, poll_seconds)
        for worker in workers:
            if worker.log_file is not None:
                worker.log_file.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _interrupt_on_termination() -> dict:
    """SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt in the launcher (main thread
    only), so that Ctrl-C, or a launcher stopped by its own parent (a job scheduler, a
    closed terminal), stops its workers too, whatever SIGINT handler the process had;
    returns the previous handlers."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    return {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}


def _supervise(workers: list[_Worker], n: int, poll_seconds: float, stop_grace_seconds: float, deadline_seconds: float | None) -> int:
    """Poll the workers until all succeed (0), one fails (2) or the deadline passes (2); stop all on failure."""
    start = time.monotonic()
    while True:
        codes = [worker.process.poll() for worker in workers]
        for worker, code in zip(workers, codes):
            if code is not None and code != 0:
                _stop_all(workers, stop_grace_seconds, poll_seconds)
                if worker.log_file is not None:
                    worker.log_file.close()
                print(_failure_message(worker, code, n), file=sys.stderr, flush=True)
                return 2
        if all(code == 0 for code in codes):
            return 0
        if deadline_seconds is not None and time.monotonic() - start > deadline_seconds:
            _stop_all(workers, stop_grace_seconds, poll_seconds)
            print(f"tfrec: error: local workers still running after {deadline_seconds:g} s; all {n} workers stopped", file=sys.stderr, flush=True)
            return 2
        time.sleep(poll_seconds)
