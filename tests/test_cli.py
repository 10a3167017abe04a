"""The tfrec command line, in process (one TF start-up for all of it)."""
from __future__ import annotations

import json

import pytest

from tfrec.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    code = main(["train", "popularity", "--export-dir", str(root / "sm"), "--logdir", str(root / "runs"), "--json", str(root / "m.json"), "-q"])
    assert code == 0
    return root


def test_train_exports_logs_and_writes_flat_json(trained):
    metrics = json.loads((trained / "m.json").read_text())
    for key in ("recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "mrr@10", "coverage@10"):
        assert 0.0 <= metrics[key] <= 1.0
    assert (trained / "sm" / "popularity" / "1" / "saved_model.pb").is_file()
    runs = [p for p in (trained / "runs").iterdir() if p.is_dir()]  # next to the folder's HParams experiment file
    assert len(runs) == 1 and any(p.name.startswith("events.out.tfevents") for p in runs[0].iterdir())


def test_evaluate_reproduces_train_metrics(trained, tmp_path):
    out = tmp_path / "e.json"
    assert main(["evaluate", str(trained / "sm" / "popularity"), "--json", str(out)]) == 0
    trained_metrics = json.loads((trained / "m.json").read_text())
    assert json.loads(out.read_text()) == pytest.approx({k: v for k, v in trained_metrics.items() if k not in ("fit_s", "model")})


def test_recommend_prints_titles_from_the_savedmodel(trained, capsys):
    assert main(["recommend", str(trained / "sm" / "popularity"), "--user", "0", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "Item_" in out and out.count("\n| ") >= 3


def test_models_lists_every_model(capsys):
    from tfrec.models import MODELS

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in MODELS)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nope"], "unknown model 'nope'"),
        (["train", "popularity", "--param", "time_half_life=abc"], "not a valid"),
        (["train", "popularity", "--param", "colour=red"], "no parameter 'colour'"),
        (["train", "popularity", "--data", "/no/such/dir"], "/no/such/dir"),
        (["train", "popularity", "--split", "u1"], "u1"),
        (["train", "popularity", "--split", "random"], "random"),
        (["recommend", "/no/such/model", "--user", "1"], "/no/such/model"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfrec: error:") and message in err and "\n" not in err
