"""Distributed fits (issue 15): real worker processes on 127.0.0.1 (``--local-workers``),
each model's SavedModel against a one-process fit, logged losses, and a killed worker.

The cluster fixtures run ``tfrec train all`` once per data set, one process and two
workers, and the tests compare what they exported. The demo data runs everywhere; the
ML-100K tests skip without ``../shared/data/ml-100k``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfrec.distribute.cluster import WorkerPlace
from tfrec.distribute.collectives import Collectives
from tfrec.distribute.sharding import owners, shard_frame

pytestmark = pytest.mark.slow

FIXED_WEIGHT = ("popularity", "tfidf", "covisit", "user_knn", "item_knn")
ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 900


def _tfrec(*args: str, timeout: float = DEADLINE_S, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfrec", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, **kwargs)


def _train_all(tmp: Path, data: str, *extra: str) -> dict:
    """``tfrec train all`` on ``data`` (temporal split): {"dir": export dir, "metrics": {model: row}}."""
    export = tmp / "savedmodels"
    result = _tfrec("train", "all", "--data", data, "--split", "temporal", "--export-dir", str(export), "--logdir", str(tmp / "runs"),
                    "--json", str(tmp / "metrics.json"), "-q", *extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = json.loads((tmp / "metrics.json").read_text())
    return {"dir": export, "metrics": {row["model"]: row for row in rows}, "stdout": result.stdout, "runs": tmp / "runs"}


@pytest.fixture(scope="session")
def demo_fits(tmp_path_factory):
    one = _train_all(tmp_path_factory.mktemp("one-process"), "demo")
    two = _train_all(tmp_path_factory.mktemp("two-workers"), "demo", "--local-workers", "2")
    return one, two


@pytest.fixture(scope="session")
def ml100k_fits(tmp_path_factory, ml100k_dir):
    one = _train_all(tmp_path_factory.mktemp("ml100k-one-process"), str(ml100k_dir))
    two = _train_all(tmp_path_factory.mktemp("ml100k-two-workers"), str(ml100k_dir), "--local-workers", "2")
    return one, two


def _recommendations(export: Path, name: str, users: list[str]):
    from tfrec.serving import ServedModel

    return ServedModel.load(export / name / "1").recommend(users, k=20)


def _assert_same_savedmodels(one: dict, two: dict, split, names) -> None:
    users = sorted(split.test["user_id"].astype(str).unique())
    for name in names:
        ids_one, scores_one = _recommendations(one["dir"], name, users)
        ids_two, scores_two = _recommendations(two["dir"], name, users)
        assert np.array_equal(ids_one, ids_two), f"{name}: item ids differ"
        assert np.array_equal(scores_one, scores_two), f"{name}: scores differ"


# ------------------------------------------------------------------ in one process
def test_one_worker_collectives_are_identities():
    collectives = Collectives()
    assert not collectives.distributed and collectives.place.is_chief
    values = np.array([3, 1, 2], np.int64)
    assert collectives.sum(values) is not None and np.array_equal(collectives.sum(values), values)
    assert np.array_equal(collectives.gather(values.reshape(-1, 1)), values.reshape(-1, 1))
    assert list(collectives.gather_strings(["a", "é"])) == ["a", "é"]
    keys, sums = collectives.sum_by_key(np.array([5, 2, 5]), np.array([1.0, 2.0, 0.5]))
    assert keys.tolist() == [2, 5] and sums.tolist() == [2.0, 1.5]
    with pytest.raises(TypeError):
        collectives.sum(np.array([1, 2], np.int32))


def test_user_shards_partition_the_rows_and_keep_each_user_whole(demo):
    frame = demo.interactions
    shards = [shard_frame(frame, WorkerPlace(index, 3), "user_id") for index in range(3)]
    assert sum(len(shard) for shard in shards) == len(frame)
    users = [set(shard["user_id"]) for shard in shards]
    assert not (users[0] & users[1]) and not (users[0] & users[2]) and not (users[1] & users[2])
    assert all(len(u) for u in users)  # 30 users over 3 workers: none empty
    # stable across calls and processes (a fingerprint, not Python's salted hash)
    assert owners(["u1", "u2", "u3"], 3).tolist() == owners(["u1", "u2", "u3"], 3).tolist()
    script = "from tfrec.distribute.sharding import owners; print(owners(['u1', 'u2', 'u3', 'u4'], 3).tolist())"
    outputs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
               for seed in ("1", "2")}
    assert len(outputs) == 1 and outputs.pop().strip() == str(owners(["u1", "u2", "u3", "u4"], 3).tolist())


def test_tf_data_shards_equal_the_frame_shards(demo):
    from tfrec._keras import tf
    from tfrec.data.pipelines import interaction_batches
    from tfrec.distribute.sharding import shard_batches

    frame = demo.interactions
    columns = {"user_id": frame["user_id"].astype(str).to_numpy(), "item_id": frame["item_id"].astype(str).to_numpy()}
    batches = interaction_batches(tf.data.Dataset.from_tensor_slices(columns).batch(50))  # no timestamp: row positions
    place = WorkerPlace(1, 2)
    rows = list(shard_batches(batches, place, "user_id"))
    users = np.concatenate([b["user_id"].numpy() for b in rows]).astype(str)
    stamps = np.concatenate([b["timestamp"].numpy() for b in rows])
    expected = np.flatnonzero(owners(frame["user_id"], 2) == 1)
    assert users.tolist() == frame["user_id"].astype(str).to_numpy()[expected].tolist()
    assert stamps.tolist() == expected.tolist()  # each row keeps its position in the whole stream


# ------------------------------------------------------------------ two workers
def test_fixed_weight_models_export_what_one_process_exports(demo_fits, demo_split):
    one, two = demo_fits
    _assert_same_savedmodels(one, two, demo_split, FIXED_WEIGHT)
    assert "tfrec: starting 2 local workers" in two["stdout"]


def test_only_the_chief_writes(demo_fits):
    _, two = demo_fits
    for name in FIXED_WEIGHT + ("mf", "two_tower"):
        assert sorted(p.name for p in (two["dir"] / name).iterdir()) == ["1"], name
    runs = sorted(p.name.split("-")[0] for p in two["runs"].iterdir() if p.is_dir())
    assert runs == sorted((*FIXED_WEIGHT, "mf", "two_tower"))  # one TensorBoard run per model, the chief's


def test_fixed_weight_models_on_ml100k_equal_one_process(ml100k_fits, ml100k):
    from tfrec.data import make_split

    one, two = ml100k_fits
    _assert_same_savedmodels(one, two, make_split(ml100k, "temporal"), (*FIXED_WEIGHT, "mf"))  # mf: ALS, solved by the chief


def test_two_tower_on_ml100k_within_3_percent_of_one_process(ml100k_fits):
    one, two = ml100k_fits
    single, distributed = one["metrics"]["two_tower"]["ndcg@10"], two["metrics"]["two_tower"]["ndcg@10"]
    assert abs(distributed - single) <= 0.03 * single, (single, distributed)


def _fit_json(tmp: Path, model: str, params: dict, workers: int) -> dict:
    out = tmp / f"{model}-{workers}.json"
    command = [sys.executable, str(ROOT / "tests" / "distributed_fit.py"), model, json.dumps(params), str(out)]
    if workers == 1:
        result = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S, cwd=ROOT)
        assert result.returncode == 0, result.stderr[-3000:]
    else:
        from tfrec.distribute.launcher import run_local_workers

        assert run_local_workers(command, workers, tmp / "logs", deadline_seconds=DEADLINE_S) == 0
    return json.loads(out.read_text())


@pytest.mark.parametrize("model, params", [
    ("mf", {"solver": "adam", "epochs": 3}),  # explicit: RMSE, which tf-keras would log x2 under two workers
    ("mf", {"solver": "adam", "epochs": 2, "feedback": "implicit"}),
    ("two_tower", {"epochs": 2}),  # in-batch negatives gathered across the workers, user-id dropout drawn globally
])
def test_logged_losses_equal_one_process(tmp_path, model, params):
    one = _fit_json(tmp_path, model, params, 1)
    two = _fit_json(tmp_path, model, params, 2)
    assert len(one["batch_loss"]) == len(two["batch_loss"]) > 0
    np.testing.assert_allclose(two["batch_loss"][0], one["batch_loss"][0], rtol=1e-5)  # the first step: same weights, same batch
    np.testing.assert_allclose(two["batch_loss"], one["batch_loss"], rtol=1e-3)
    assert two["history"].keys() == one["history"].keys()
    for key in one["history"]:
        np.testing.assert_allclose(two["history"][key], one["history"][key], rtol=1e-3, err_msg=key)


def test_killed_worker_stops_the_run_and_the_rerun_resumes(tmp_path):
    export = tmp_path / "savedmodels"
    command = [sys.executable, "-m", "tfrec", "train", "mf", "--param", "solver=adam", "--param", "epochs=30", "--param", "patience=30",
               "--export-dir", str(export), "--logdir", "", "--checkpoint-dir", str(tmp_path / "checkpoints"), "--local-workers", "2"]
    launcher = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        for line in launcher.stdout:  # the chief's output: wait until some epochs are checkpointed
            if "Epoch 4/" in line:
                break
        else:
            pytest.fail("the chief never reached epoch 4: " + launcher.stderr.read()[-2000:])
        worker = _worker_pid(launcher.pid, index=1)
        os.kill(worker, signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 2
    lines = [line for line in stderr.splitlines() if line.startswith("tfrec:")]
    assert len(lines) == 1 and f"worker 1 (pid {worker}) killed by SIGKILL; all 2 workers stopped" in lines[0], stderr[-2000:]
    assert not (export / "mf").exists() or not any((export / "mf").iterdir())  # no version, not even a partial one
    assert _children(launcher.pid) == []

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE_S, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    resumed = [line for line in rerun.stdout.splitlines() if "search resumes after epoch" in line]
    assert resumed and int(resumed[0].split("after epoch ")[1].split()[0]) >= 3, rerun.stdout[-2000:]
    assert sorted(p.name for p in (export / "mf").iterdir()) == ["1"]


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


def _worker_pid(launcher_pid: int, index: int) -> int:
    for child in _children(launcher_pid):
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        config = next((entry[len(b"TF_CONFIG="):] for entry in environ if entry.startswith(b"TF_CONFIG=")), None)
        if config and json.loads(config)["task"]["index"] == index:
            return child
    raise AssertionError(f"no worker {index} under pid {launcher_pid}")


# ------------------------------------------------------------------ command-line mistakes
@pytest.mark.parametrize("args, message", [
    (["--strategy", "multi-worker"], "TF_CONFIG environment variable, which is not set"),
    (["--local-workers", "0"], "--local-workers must be at least 1"),
    (["--local-workers", "2", "--strategy", "mirrored"], "cannot be combined with --strategy mirrored"),
])
def test_distribution_mistakes_are_one_line(tmp_path, args, message):
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    result = _tfrec("train", "popularity", "--export-dir", str(tmp_path / "sm"), "--logdir", "", *args, timeout=120, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("tfrec: error:") and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_models_live_outside_the_strategy_scope():
    from tfrec._keras import tf
    from tfrec.models import make_model

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope(), pytest.raises(ValueError, match=r"model.fit\(data, strategy=strategy\)"):
        make_model("popularity")
    model = make_model("popularity")
    with strategy.scope(), pytest.raises(ValueError, match="outside strategy.scope"):
        model.fit(tf.data.Dataset.from_tensor_slices({"user_id": ["u"], "item_id": ["i"]}))


def test_mirrored_strategy_from_the_command_line(tmp_path):
    result = _tfrec("train", "mf", "--param", "solver=adam", "--param", "epochs=2", "--strategy", "mirrored", "--export-dir", str(tmp_path / "sm"),
                    "--logdir", "", "-q", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "sm" / "mf" / "1" / "saved_model.pb").is_file()
