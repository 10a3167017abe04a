"""The command line starts without TensorFlow and shows tfrec's output only.

``--help``, ``--version`` and argument mistakes must answer before TensorFlow (or pandas)
is imported; a TensorFlow command must not show TensorFlow's start-up log lines unless
``--verbose``/``TFREC_VERBOSE=1``. Each check runs in a fresh interpreter, since this test
session has long imported TensorFlow.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import tfrec
from tfrec import _keras

# Substrings of the lines TensorFlow, absl, oneDNN and CUDA print on their own.
TF_LOG_MARKERS = ("absl", "oneDNN", "cuda", "cuInit", "WARNING:tensorflow", "I0000", "W0000", "E0000", "tensorflow/")


def _env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TFREC_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    return {**env, **overrides}


def _tfrec(*argv: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tfrec", *argv], capture_output=True, text=True, env=env or _env(), timeout=timeout)


def test_version_prints_the_package_version():
    result = _tfrec("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"tfrec {tfrec.__version__}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "nosuchmodel"], "tfrec: error: unknown model 'nosuchmodel'; models are: popularity, tfidf"),
        (["train", "mf", "--split", "nosuch"], "tfrec: error: unknown split 'nosuch'; valid splits are: u1,"),
        (["evaluate", "savedmodels/mf", "--split", "nosuch"], "tfrec: error: unknown split 'nosuch'"),
        (["bench", "--protocol", "X"], "tfrec: error: unknown protocol 'X'"),
    ],
)
def test_a_bad_name_is_one_line_and_exit_code_2(argv, message):
    result = _tfrec(*argv)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


CHECK_IMPORTS = textwrap.dedent(
    """
    import contextlib, io, json, os, sys
    import tfrec, tfrec.cli
    answers = {}
    for argv in (["--help"], ["--version"], ["train", "--help"], ["train", "nosuchmodel"], ["train", "mf", "--split", "nosuch"],
                 ["evaluate", "x", "--split", "nosuch"], ["bench", "--protocol", "X"], ["--verbose", "train", "nosuchmodel"]):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            try:
                code = tfrec.cli.main(argv)
            except SystemExit as exit:
                code = exit.code
        answers[" ".join(argv)] = code
    print(json.dumps({"codes": answers, "loaded": sorted(m for m in ("tensorflow", "tf_keras", "pandas", "scipy") if m in sys.modules),
                      "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS")}))
    """
)


def test_help_version_and_name_mistakes_import_no_tensorflow():
    result = subprocess.run([sys.executable, "-c", CHECK_IMPORTS], capture_output=True, text=True, env=_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers["loaded"] == []
    assert answers["legacy_keras"] == "1"  # import tfrec selects Keras 2 before anything can touch tf.keras
    assert answers["codes"] == {
        "--help": 0, "--version": 0, "train --help": 0, "train nosuchmodel": 2, "train mf --split nosuch": 2,
        "evaluate x --split nosuch": 2, "bench --protocol X": 2, "--verbose train nosuchmodel": 2,
    }


QUIET_SETTING = "import os, sys, tfrec.cli; tfrec.cli.main(sys.argv[1:]); print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"


@pytest.mark.parametrize(
    ("argv", "env", "level"),
    [
        (["train", "nosuchmodel"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, "3"),  # quiet by default, whatever the environment says
        (["--verbose", "train", "nosuchmodel"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, "0"),  # --verbose: the user's setting stands
        (["train", "nosuchmodel", "--verbose"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, "0"),  # --verbose after the command too
        (["train", "nosuchmodel"], {"TFREC_VERBOSE": "1"}, "2"),  # TFREC_VERBOSE=1: tfrec's library default
    ],
)
def test_the_cli_quiets_tensorflow_unless_verbose(argv, env, level):
    result = subprocess.run([sys.executable, "-c", QUIET_SETTING, *argv], capture_output=True, text=True, env=_env(**env), timeout=60)
    assert result.stdout.strip() == level, result.stderr


def test_train_shows_no_tensorflow_log_line(tmp_path):
    # mf: its module imports TensorFlow Recommenders, which imports tensorflow by itself
    result = _tfrec("train", "mf", "--data", "demo", "--export-dir", str(tmp_path / "sm"), "--logdir", str(tmp_path / "runs"), "-q",
                    env=_env(TF_CPP_MIN_LOG_LEVEL="0"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert "mf: fitted" in result.stdout
    noise = [line for line in result.stderr.splitlines() if any(marker in line for marker in TF_LOG_MARKERS)]
    assert not noise, "\n".join(noise)


def test_hidden_start_up_output_is_replayed_when_the_import_fails(capfd):
    with _keras._stderr_hidden_unless_failing():
        os.write(2, b"start-up chatter\n")
    with pytest.raises(ImportError), _keras._stderr_hidden_unless_failing():
        os.write(2, b"the real reason\n")
        raise ImportError("no tensorflow")
    assert capfd.readouterr().err == "the real reason\n"


def test_fitting_model_after_model_logs_no_retracing_warning(demo_split, caplog):
    """``train all`` fits one model after another; fit must not call the serving functions
    (one tf.function per model, all of one Python function: 5 first calls in a row made
    TensorFlow warn "5 out of the last 5 calls ... triggered tf.function retracing")."""
    import logging

    from tfrec.models import make_model
    from tfrec.training import fit

    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        models = [fit(make_model(name), demo_split.train, verbose=0).model for name in ("popularity", "covisit", "user_knn", "item_knn", "popularity")]
    assert [model.serve_recommend.experimental_get_tracing_count() for model in models] == [0] * len(models)
    assert not [r.getMessage() for r in caplog.records if "retracing" in r.getMessage()]
