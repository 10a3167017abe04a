"""tfrec.distribute.launcher: local multi-worker launch, TF_CONFIG per worker, fail-fast and cleanup.

The workers here are tiny ``python -c`` stubs (no TensorFlow) that read TF_CONFIG, write what they saw or their pid
to files in tmp_path, and then succeed, fail, sleep or kill themselves.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tfrec.distribute import launcher
from tfrec.distribute.launcher import free_ports, run_local_workers, tf_config, worker_command

# Every stub starts with this: its index from TF_CONFIG, and a helper that waits for a file to appear.
PRELUDE = (
    "import json, os, signal, sys, time\n"
    "cfg = json.loads(os.environ['TF_CONFIG'])\n"
    "i = cfg['task']['index']\n"
    "def wait_for(path, limit=10.0):\n"
    "    end = time.monotonic() + limit\n"
    "    while not os.path.exists(path) and time.monotonic() < end:\n"
    "        time.sleep(0.02)\n"
    "def write_pid(path):\n"
    "    with open(path + '.tmp', 'w') as f:\n"
    "        f.write(str(os.getpid()))\n"
    "    os.replace(path + '.tmp', path)\n"
)


def stub(body: str) -> list[str]:
    """A worker command: the prelude plus ``body`` (which sees ``i``, ``cfg``, ``wait_for``, ``write_pid``)."""
    return [sys.executable, "-c", PRELUDE + body]


def read_pid(path: Path) -> int:
    return int(path.read_text())


def assert_gone(pid: int) -> None:
    """The process ``pid`` no longer exists (our children are reaped, so not even as a zombie)."""
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def kill_quietly(*pids: int) -> None:
    """Clean up after a broken launcher so that a failing test leaves no sleeper behind."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def sleepers(tmp_path: Path) -> tuple[list[Path], str]:
    """(pid files, stub body) of two workers that write their pid, then sleep 60 s."""
    body = f"write_pid(os.path.join({str(tmp_path)!r}, f'pid{{i}}'))\ntime.sleep(60)\n"
    return [tmp_path / f"pid{i}" for i in range(2)], body


def wait_until_started(pids: list[Path], limit: float) -> None:
    """Until every pid file exists (at most ``limit`` seconds)."""
    end = time.monotonic() + limit
    while not all(p.exists() for p in pids) and time.monotonic() < end:
        time.sleep(0.02)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("tfrec:")]


def test_tf_config_format():
    cfg = json.loads(tf_config(["127.0.0.1:1", "127.0.0.1:2"], 1))
    assert cfg == {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}, "task": {"type": "worker", "index": 1}}
    with pytest.raises(ValueError):
        tf_config(["127.0.0.1:1"], 1)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "mf", "--local-workers", "2", "--epochs", "3"],
        ["train", "mf", "--local-workers=2", "--epochs", "3"],
        ["train", "--strategy", "mirrored", "mf", "--local-workers", "2", "--epochs", "3"],
        ["train", "--strategy=one-device", "mf", "--epochs", "3", "--local-workers=4"],
        ["--local-workers", "3", "train", "mf", "--strategy", "default", "--epochs", "3"],
    ],
)
def test_worker_command_strips_local_workers_and_strategy(argv):
    assert worker_command(argv) == [sys.executable, "-m", "tfrec", "train", "mf", "--epochs", "3", "--strategy", "multi-worker"]


def test_worker_command_keeps_arguments_after_separator():
    cmd = worker_command(["train", "mf", "--local-workers", "2", "--", "--strategy", "x"])
    assert cmd == [sys.executable, "-m", "tfrec", "train", "mf", "--strategy", "multi-worker", "--", "--strategy", "x"]


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(4)
    assert len(ports) == 4
    assert len(set(ports)) == 4
    assert all(1024 <= port <= 65535 for port in ports)
    sockets = []
    try:
        for port in ports:  # all at once: they must not clash with each other
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", port))
    finally:
        for sock in sockets:
            sock.close()
    assert free_ports(0) == []


@pytest.mark.slow
def test_all_workers_succeed_with_distinct_tf_configs(tmp_path, capfd):
    out = tmp_path / "out"
    out.mkdir()
    logs = tmp_path / "logs"
    body = (
        f"open(os.path.join({str(out)!r}, f'worker-{{i}}.json'), 'w').write(json.dumps("
        "{'tf_config': os.environ['TF_CONFIG'], 'log': os.environ['TFREC_WORKER_LOG'], 'extra': os.environ.get('EXTRA')}))\n"
        "print(f'hello from worker {i}', flush=True)\n"
    )
    env = {**os.environ, "EXTRA": "yes"}
    assert run_local_workers(stub(body), 3, logs, env=env, poll_seconds=0.05) == 0

    seen = [json.loads((out / f"worker-{i}.json").read_text()) for i in range(3)]
    configs = [json.loads(s["tf_config"]) for s in seen]
    assert [c["task"] for c in configs] == [{"type": "worker", "index": i} for i in range(3)]
    cluster = configs[0]["cluster"]
    assert all(c["cluster"] == cluster for c in configs)
    workers = cluster["worker"]
    assert len(workers) == 3
    hosts = {address.rsplit(":", 1)[0] for address in workers}
    ports = [int(address.rsplit(":", 1)[1]) for address in workers]
    assert hosts == {"127.0.0.1"}
    assert len(set(ports)) == 3
    assert all(s["extra"] == "yes" for s in seen)
    assert [s["log"] for s in seen] == ["", str(logs / "worker-1.log"), str(logs / "worker-2.log")]

    # Worker 0's output is the launcher's own; the others' goes to their logs.
    captured = capfd.readouterr()
    assert "hello from worker 0" in captured.out
    assert "hello from worker 1" not in captured.out
    assert (logs / "worker-1.log").read_text() == "hello from worker 1\n"
    assert (logs / "worker-2.log").read_text() == "hello from worker 2\n"
    assert not (logs / "worker-0.log").exists()
    start = captured.out.splitlines()[0]
    assert start == f"tfrec: starting 3 local workers on 127.0.0.1 ports {','.join(map(str, ports))}; logs of workers 1..2 in {logs}"
    assert error_lines(captured.err) == []


@pytest.mark.slow
def test_failing_worker_stops_the_others(tmp_path, capfd):
    pid0 = tmp_path / "pid0"
    body = (
        "if i == 0:\n"
        f"    write_pid({str(pid0)!r})\n"
        "    time.sleep(60)\n"
        "else:\n"
        f"    wait_for({str(pid0)!r})\n"
        "    print('starting up', flush=True)\n"
        "    print('boom: something broke', file=sys.stderr, flush=True)\n"
        "    print('   ', flush=True)\n"
        "    sys.exit(9)\n"
    )
    t0 = time.monotonic()
    try:
        code = run_local_workers(stub(body), 2, tmp_path / "logs", poll_seconds=0.05)
        elapsed = time.monotonic() - t0
        assert code == 2
        assert elapsed < 10
        assert_gone(read_pid(pid0))
    finally:
        if pid0.exists():
            kill_quietly(read_pid(pid0))
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1
    line = lines[0]
    log = tmp_path / "logs" / "worker-1.log"
    assert line.startswith("tfrec: error: worker 1 (pid ")
    assert "exited with code 9; all 2 workers stopped" in line
    assert line.endswith(f"; its log: {log} -- boom: something broke")


@pytest.mark.slow
def test_worker_killed_by_signal_is_reported(tmp_path, capfd):
    pid1 = tmp_path / "pid1"
    body = (
        "if i == 1:\n"
        f"    write_pid({str(pid1)!r})\n"
        "    time.sleep(60)\n"
        "else:\n"
        f"    wait_for({str(pid1)!r})\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    try:
        t0 = time.monotonic()
        assert run_local_workers(stub(body), 2, tmp_path / "logs", poll_seconds=0.05) == 2
        assert time.monotonic() - t0 < 10  # not by waiting for the sleeper to finish
        assert_gone(read_pid(pid1))
    finally:
        if pid1.exists():
            kill_quietly(read_pid(pid1))
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith("tfrec: error: worker 0 (pid ")
    assert lines[0].endswith(") killed by SIGKILL; all 2 workers stopped")  # worker 0 has no log to point at


@pytest.mark.slow
def test_worker_ignoring_sigterm_is_killed_after_grace(tmp_path, capfd):
    pid0 = tmp_path / "pid0"
    body = (
        "if i == 0:\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"    write_pid({str(pid0)!r})\n"
        "    time.sleep(60)\n"
        "else:\n"
        f"    wait_for({str(pid0)!r})\n"
        "    sys.exit(3)\n"
    )
    t0 = time.monotonic()
    try:
        assert run_local_workers(stub(body), 2, tmp_path / "logs", poll_seconds=0.05, stop_grace_seconds=0.5) == 2
        elapsed = time.monotonic() - t0
        assert_gone(read_pid(pid0))
        assert 0.5 <= elapsed < 8
    finally:
        if pid0.exists():
            kill_quietly(read_pid(pid0))
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1
    assert "worker 1" in lines[0]
    assert "exited with code 3" in lines[0]


@pytest.mark.slow
def test_grandchildren_are_stopped_with_their_worker(tmp_path):
    """SIGTERM goes to the worker's process group, so what a worker started is stopped too."""
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc to tell a zombie from a live process")
    grand = tmp_path / "grand"
    body = (
        "import subprocess\n"
        "if i == 0:\n"
        "    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"    open({str(grand)!r} + '.tmp', 'w').write(str(child.pid))\n"
        f"    os.replace({str(grand)!r} + '.tmp', {str(grand)!r})\n"
        "    time.sleep(60)\n"
        "else:\n"
        f"    wait_for({str(grand)!r})\n"
        "    sys.exit(1)\n"
    )
    try:
        t0 = time.monotonic()
        assert run_local_workers(stub(body), 2, tmp_path / "logs", poll_seconds=0.05, stop_grace_seconds=2) == 2
        assert time.monotonic() - t0 < 10
        pid = read_pid(grand)
        # The grandchild is not ours to reap: it may linger briefly as a zombie of init.
        end = time.monotonic() + 5
        state = "?"
        while time.monotonic() < end:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                state = "gone"
                break
            state = next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))
            if state in ("Z", "X"):
                break
            time.sleep(0.05)
        assert state in ("gone", "Z", "X")
    finally:
        if grand.exists():
            kill_quietly(read_pid(grand))


@pytest.mark.slow
def test_deadline_stops_all_workers(tmp_path, capfd):
    pids, body = sleepers(tmp_path)
    t0 = time.monotonic()
    try:
        assert run_local_workers(stub(body), 2, tmp_path / "logs", poll_seconds=0.05, deadline_seconds=1.0) == 2
        elapsed = time.monotonic() - t0
        assert 1.0 <= elapsed < 8
        for path in pids:
            assert_gone(read_pid(path))
    finally:
        kill_quietly(*(read_pid(p) for p in pids if p.exists()))
    assert error_lines(capfd.readouterr().err) == ["tfrec: error: local workers still running after 1 s; all 2 workers stopped"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_launcher_terminated_stops_all_workers(tmp_path, sig):
    """A launcher stopped by its own parent (a scheduler's SIGTERM, a closed terminal's SIGHUP) stops its workers."""
    pids, body = sleepers(tmp_path)
    script = (f"import sys; from pathlib import Path; from tfrec.distribute.launcher import run_local_workers; "
              f"sys.exit(run_local_workers({stub(body)!r}, 2, Path({str(tmp_path / 'logs')!r}), poll_seconds=0.05))")
    launcher_process = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        wait_until_started(pids, 20)
        launcher_process.send_signal(sig)
        _, err = launcher_process.communicate(timeout=15)
        assert launcher_process.returncode == 130
        assert error_lines(err) == ["tfrec: interrupted; all 2 workers stopped"]
        for path in pids:
            assert_gone(read_pid(path))  # reaped by the launcher
    finally:
        launcher_process.kill()
        kill_quietly(*(read_pid(p) for p in pids if p.exists()))


@pytest.mark.slow
def test_keyboard_interrupt_stops_all_workers(tmp_path, capfd):
    pids, body = sleepers(tmp_path)

    def interrupt_when_started() -> None:
        wait_until_started(pids, 10)
        os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt in the main thread, as Ctrl-C would

    thread = threading.Thread(target=interrupt_when_started, daemon=True)
    thread.start()
    try:
        t0 = time.monotonic()
        assert run_local_workers(stub(body), 2, tmp_path / "logs", poll_seconds=0.05, deadline_seconds=20) == 130
        assert time.monotonic() - t0 < 10
        thread.join(5)
        for path in pids:
            assert_gone(read_pid(path))
    finally:
        kill_quietly(*(read_pid(p) for p in pids if p.exists()))
    assert error_lines(capfd.readouterr().err) == ["tfrec: interrupted; all 2 workers stopped"]


@pytest.mark.slow
def test_unstartable_command_raises(tmp_path):
    missing = str(tmp_path / "no-such-program")
    with pytest.raises(RuntimeError, match="could not start local worker 0") as info:
        run_local_workers([missing], 2, tmp_path / "logs", poll_seconds=0.05)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_start_failure_stops_workers_already_started(tmp_path, monkeypatch):
    real_popen = launcher.subprocess.Popen
    started = []

    def popen(*args, **kwargs):
        if started:
            raise OSError(24, "Too many open files")
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(launcher.subprocess, "Popen", popen)
    try:
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match="could not start local worker 1.*Too many open files"):
            run_local_workers(stub("time.sleep(60)\n"), 2, tmp_path / "logs", poll_seconds=0.05, stop_grace_seconds=1)
        assert time.monotonic() - t0 < 10
        assert len(started) == 1
        assert started[0].poll() is not None
        assert_gone(started[0].pid)
    finally:
        kill_quietly(*(p.pid for p in started if p.poll() is None))
