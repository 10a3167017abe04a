"""Progress output: labelled, one line per pass when not a terminal, no figures that say nothing."""
from __future__ import annotations

import io
import re

import pytest

from tfrec.models.progress import progress_verbosity


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_verbosity_is_one_line_per_pass_off_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    assert [progress_verbosity(v) for v in (0, 1, 2, "auto")] == [0, 2, 2, 2]
    monkeypatch.setattr("sys.stdout", _Terminal())
    assert [progress_verbosity(v) for v in (0, 1, 2, "auto")] == [0, 1, 2, 1]
    with pytest.raises(ValueError, match="verbose must be"):
        progress_verbosity(3)


def _training_lines(out: str) -> list[str]:
    """The per-epoch lines Keras printed (``10/10 - 0s - loss: ...``)."""
    return [line for line in out.splitlines() if re.match(r"\s*\d+/\d+ - ", line)]


@pytest.mark.parametrize(
    ("name", "params", "validation_metric"),
    [
        ("mf", {"feedback": "implicit"}, "val_hit_rate_at_10"),
        ("mf", {"feedback": "implicit", "solver": "als"}, "val_hit_rate_at_10"),
        ("two_tower", {}, "val_factorized_top_k/top_10_categorical_accuracy"),
    ],
    ids=["mf", "mf-als", "two_tower"],
)
def test_fit_output_is_labelled_plain_lines_without_empty_metrics(demo_split, capsys, name, params, validation_metric):
    from tfrec.models import make_model
    from tfrec.training import fit

    model = make_model(name, epochs=2, validation_fraction=0.4, refit=True, **params)
    result = fit(model, demo_split.train, verbose=1)  # pytest's captured stdout is not a terminal
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out
    assert max(len(line) for line in out.splitlines()) < 300
    assert f"{name}: vocabulary pass over demo" in out
    assert f"{name}: adapt pass, counting" in out
    assert f"{name}: training the network, 2 epochs at most, early stopping on" in out
    assert re.search(rf"{name}: refit on all training data for the best epoch count \(\d epochs?\)", out)
    lines = _training_lines(out)
    assert len(lines) >= 4  # adapt pass + search epochs + refit epochs, one line each
    logged = " ".join(lines)
    assert validation_metric in logged  # validation figures stay
    assert validation_metric in result.history
    for empty in ("regularization_loss", "total_loss"):
        assert empty not in logged and empty not in result.history
    training_only = re.sub(r"val_\S+", "", logged)  # what is left: the training figures
    assert validation_metric.removeprefix("val_") not in training_only
    assert validation_metric.removeprefix("val_") not in result.history


def test_evaluate_labels_its_bar(fitted, demo_split, capsys):
    from tfrec.evaluation.evaluate import evaluate
    from tfrec.serving import ServedModel

    evaluate(ServedModel.from_model(fitted.model("popularity")), demo_split, verbose=1)
    out = capsys.readouterr().out
    users = demo_split.test["user_id"].nunique()
    assert f"evaluating {users:,} users (top 20 each)" in out
    assert "\r" not in out and "\b" not in out
    assert len(out.splitlines()) == 2


def test_train_all_prints_a_header_before_each_model(monkeypatch, capsys, tmp_path):
    from tfrec import cli
    from tfrec.cli import train
    from tfrec.models import MODELS

    trained = []

    def fake_train_one(name, params, split, args, strategy):
        trained.append(name)
        return {"model": name, "ndcg@10": 0.0}

    monkeypatch.setattr(train, "_train_one", fake_train_one)
    assert cli.main(["train", "all", "--export-dir", str(tmp_path / "sm"), "--logdir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    headers = [line for line in out.splitlines() if re.fullmatch(r"\[\d+/\d+\] \w+", line)]
    assert headers == [f"[{i}/{len(MODELS)}] {name}" for i, name in enumerate(MODELS, start=1)]
    assert trained == list(MODELS)
    assert train._model_header(3, 7, "covisit") == "[3/7] covisit"
