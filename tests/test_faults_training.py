"""Interrupted and damaged training: resume after ``kill -9`` through the CLI, and fall
back past a garbage ``state.json``, a truncated or missing newest checkpoint."""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfrec.models.mf import MatrixFactorization
from tfrec.training import fit

EPOCHS = 4


@pytest.fixture(scope="module")
def straight_weights(demo_split) -> list[np.ndarray]:
    """The weights of an uninterrupted EPOCHS-epoch fit (no checkpoints)."""
    return [w.numpy() for w in fit(MatrixFactorization(epochs=EPOCHS), demo_split.train, verbose=0).model.weights]


@pytest.fixture(scope="module")
def three_epochs(demo_split, tmp_path_factory) -> Path:
    """A checkpoint folder of a fit "interrupted" after 3 of EPOCHS epochs (copy it before damaging it)."""
    folder = tmp_path_factory.mktemp("three_epochs")
    fit(MatrixFactorization(epochs=3), demo_split.train, verbose=0, checkpoint_dir=folder)
    return folder


@pytest.fixture
def restored_epochs(monkeypatch) -> list[int]:
    """The epoch counts ``ResumableCheckpoint.restore`` returns during the test."""
    from tfrec.models.callbacks import ResumableCheckpoint

    epochs: list[int] = []
    restore = ResumableCheckpoint.restore
    monkeypatch.setattr(ResumableCheckpoint, "restore", lambda self, net: epochs.append(restore(self, net)) or epochs[-1])
    return epochs


def _damaged(three_epochs: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "checkpoints"
    shutil.copytree(three_epochs, folder)
    return folder


def _resume_and_compare(folder: Path, demo_split, straight_weights) -> None:
    resumed = fit(MatrixFactorization(epochs=EPOCHS), demo_split.train, verbose=0, checkpoint_dir=folder).model
    for got, want in zip(resumed.weights, straight_weights):
        np.testing.assert_array_equal(got.numpy(), want, err_msg=got.name)
    assert json.loads((folder / "search" / "state.json").read_text())["epoch"] == EPOCHS


def test_garbage_state_json_resumes_from_the_epochs_own_state(three_epochs, tmp_path, demo_split, straight_weights, restored_epochs):
    folder = _damaged(three_epochs, tmp_path)
    (folder / "search" / "state.json").write_text('{"epoch": 3, "checkp')
    _resume_and_compare(folder, demo_split, straight_weights)
    assert restored_epochs == [3]


def test_garbage_newest_state_falls_back_to_the_one_before(three_epochs, tmp_path, demo_split, straight_weights, restored_epochs, caplog):
    folder = _damaged(three_epochs, tmp_path)
    for name in ("state.json", "state-3.json"):
        (folder / "search" / name).write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.WARNING, logger="tfrec.models.callbacks"):
        _resume_and_compare(folder, demo_split, straight_weights)
    assert restored_epochs == [2]
    assert "resuming from epoch 2" in caplog.text and "state-3.json" in caplog.text


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda search: _truncate(next(search.glob("ckpt-3.data-*"))), id="truncated"),
        pytest.param(lambda search: [path.unlink() for path in search.glob("ckpt-3.*")], id="missing"),
    ],
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(damage, three_epochs, tmp_path, demo_split, straight_weights, restored_epochs, caplog):
    folder = _damaged(three_epochs, tmp_path)
    damage(folder / "search")
    with caplog.at_level(logging.WARNING, logger="tfrec.models.callbacks"):
        _resume_and_compare(folder, demo_split, straight_weights)
    assert restored_epochs == [2]
    assert "resuming from epoch 2" in caplog.text and "ckpt-3" in caplog.text


def test_no_intact_checkpoint_is_one_line_naming_the_folder_to_delete(three_epochs, tmp_path, demo_split):
    folder = _damaged(three_epochs, tmp_path)
    for path in (folder / "search").glob("state*.json"):
        path.write_text("garbage")
    with pytest.raises(ValueError, match=r"holds no intact checkpoint .*delete the folder .*search to start the fit afresh") as error:
        fit(MatrixFactorization(epochs=EPOCHS), demo_split.train, verbose=0, checkpoint_dir=folder)
    assert "\n" not in str(error.value)


def test_checkpoint_dir_is_refused_for_a_fixed_weight_model_in_one_line(tmp_path, capsys):
    from tfrec.cli import main

    assert main(["train", "popularity", "--checkpoint-dir", str(tmp_path / "c"), "--export-dir", str(tmp_path / "e"),
                 "--logdir", str(tmp_path / "l"), "-q"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "tfrec: error: --checkpoint-dir applies to trained models (mf, two_tower); popularity computes its weights in one pass"
    ]


CLI_EPOCHS = 40
CLI_PARAMS = ["--param", "solver=adam", "--param", f"epochs={CLI_EPOCHS}", "--param", "validation_fraction=0"]


def _cli_args(root: Path) -> list[str]:
    return ["train", "mf", *CLI_PARAMS, "--checkpoint-dir", str(root / "checkpoints"), "--export-dir", str(root / "savedmodels"),
            "--logdir", str(root / "runs"), "-q"]


def _served_outputs(root: Path):
    from tfrec.serving import ServedModel

    served = ServedModel.load(root / "savedmodels" / "mf")
    users = [f"{u}" for u in range(40)]
    ids, scores = served.recommend(users, history=[["1", "2"]] * len(users), k=10)
    return ids, scores


@pytest.mark.slow
def test_cli_train_killed_mid_fit_resumes_to_the_same_model(tmp_path, capsys, restored_epochs):
    from tfrec.cli import main

    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    state = interrupted / "checkpoints" / "mf" / "search" / "state.json"
    process = subprocess.Popen([sys.executable, "-m", "tfrec", *_cli_args(interrupted)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        _, stderr = process.communicate(timeout=30)
    assert state.is_file(), f"the fit never wrote a checkpoint: {stderr.decode()[-2000:]}"
    epochs_before = json.loads(state.read_text())["epoch"]
    assert epochs_before < CLI_EPOCHS, "the fit ended before the kill: nothing was interrupted"
    assert not (interrupted / "savedmodels").exists(), "killed before the export"

    assert main(_cli_args(interrupted)) == 0  # the rerun resumes ...
    assert restored_epochs == [epochs_before]
    assert len(json.loads(state.read_text())["history"]["loss"]) == CLI_EPOCHS
    assert main(_cli_args(straight)) == 0  # ... to the model of an uninterrupted fit
    assert restored_epochs == [epochs_before, 0]
    capsys.readouterr()
    resumed_ids, resumed_scores = _served_outputs(interrupted)
    straight_ids, straight_scores = _served_outputs(straight)
    np.testing.assert_array_equal(resumed_ids, straight_ids)
    np.testing.assert_array_equal(resumed_scores, straight_scores)
