"""``tfrec serve`` in a child process on a free 127.0.0.1 port: for tests and benchmarks that
talk HTTP to it, and for a user's own client tests."""
from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running_server(savedmodels: str | Path, *options: str, ready_path: str = "/tfrec/v1/models", timeout: float = 90.0) -> Iterator[str]:
    """Start ``tfrec serve savedmodels --port <free port> *options``, wait until ``ready_path``
    answers 200, yield its base URL (``http://127.0.0.1:PORT``); the server is stopped on exit,
    whatever happens. ``RuntimeError`` (with the end of the server's output) when it exits
    before answering or does not answer within ``timeout`` seconds. Its output goes to a
    temporary file, never to a pipe that a long run could fill."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen([sys.executable, "-m", "tfrec", "serve", str(savedmodels), "--port", str(port), *options],
                                   stdout=output, stderr=subprocess.STDOUT)

        def failure(what: str) -> RuntimeError:
            output.seek(0)
            return RuntimeError(f"tfrec serve {what}; its output ends with:\n{output.read().decode(errors='replace')[-2000:]}")

        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise failure(f"exited with code {process.returncode}")
                try:
                    with urllib.request.urlopen(url + ready_path, timeout=5) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError):
                    pass
                if time.monotonic() > deadline:
                    raise failure(f"did not answer {ready_path} within {timeout:.0f} s")
                time.sleep(0.5)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
