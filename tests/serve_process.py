"""``tfrec serve`` in a child process on a free 127.0.0.1 port, for tests that talk HTTP to it."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running_server(savedmodels: Path, *options: str, ready_path: str = "/tfrec/v1/models", timeout: float = 90.0) -> Iterator[str]:
    """Start ``tfrec serve savedmodels *options``, wait until ``ready_path`` answers 200, yield
    its base URL (``http://127.0.0.1:PORT``); the server is stopped on exit, whatever happens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tfrec", "serve", str(savedmodels), "--port", str(port), *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, process.stdout.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(url + ready_path, timeout=5) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, "tfrec serve did not come up"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
