"""The Keras fit scripts run as a user runs them, and an interrupted mf fit resumes on rerun."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
pytestmark = pytest.mark.slow


def _run(script: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPTS / script)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("script", ["train_item_knn.py", "train_two_tower.py"])
def test_fit_script_runs_on_demo_data(tmp_path, script):
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ndcg@10" in done.stdout and "SavedModel savedmodels/" in done.stdout
    assert any((tmp_path / "savedmodels").glob("*/1/saved_model.pb"))


def _top10(export_dir: Path) -> list:
    from tfrec.serving import ServedModel

    served = ServedModel.load(next(export_dir.glob("mf/*")))
    users = [str(u) for u in range(30)]
    ids, scores = served.recommend(users, k=10)
    return [ids.tolist(), np.round(scores, 6).tolist()]


def test_mf_script_killed_mid_fit_resumes_on_rerun_to_the_same_model(tmp_path):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    straight.mkdir(), interrupted.mkdir()
    done = _run("train_mf.py", straight)
    assert done.returncode == 0, done.stderr[-2000:]

    state = interrupted / "runs" / "train_mf-demo" / "checkpoints" / "search" / "state.json"
    process = subprocess.Popen([sys.executable, str(SCRIPTS / "train_mf.py")], cwd=interrupted, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert state.is_file(), "the fit never wrote a checkpoint"
    epochs_before = json.loads(state.read_text())["epoch"]
    assert not (interrupted / "savedmodels").exists(), "killed before the export"

    rerun = _run("train_mf.py", interrupted)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    first_epoch = next(line for line in rerun.stdout.splitlines() if line.startswith("Epoch "))
    assert first_epoch.startswith(f"Epoch {epochs_before + 1}/"), f"the rerun started at {first_epoch!r}, not after epoch {epochs_before}"
    assert _top10(interrupted / "savedmodels") == _top10(straight / "savedmodels")
