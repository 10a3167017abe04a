"""``tfrec versions``: list each model's SavedModel versions, prune the old ones safely."""
from __future__ import annotations

import shutil

import pytest

from tfrec.cli import main


@pytest.fixture(scope="session")
def popularity_version(fitted, demo_split, tmp_path_factory):
    """One real export of the session's popularity model (trained on demo, split temporal)."""
    from tfrec.export import export_model

    return export_model(fitted.model("popularity"), tmp_path_factory.mktemp("one_export"), split=demo_split)


@pytest.fixture
def savedmodels(popularity_version, tmp_path):
    """popularity/1..4 (copies of a real export), 5 incomplete, a staging folder; mf/1 and mf/2."""
    root = tmp_path / "savedmodels"
    for model, numbers in (("popularity", (1, 2, 3, 4)), ("mf", (1, 2))):
        for number in numbers:
            shutil.copytree(popularity_version, root / model / str(number))
    (root / "popularity" / "5").mkdir()  # a broken version: no saved_model.pb
    (root / "popularity" / ".tmp-host-123-0123456789abcdef0123456789abcdef").mkdir()  # an export in progress
    return root


def _rows(out: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]


def test_versions_lists_each_version_and_the_served_one(savedmodels, capsys):
    assert main(["versions", str(savedmodels)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("mf", "2", "served"), ("mf", "1", ""),
        ("popularity", "5", "incomplete"), ("popularity", "4", "served"), ("popularity", "3", ""),
        ("popularity", "2", ""), ("popularity", "1", ""),
    ]
    complete = [row for row in rows if row[2] != "incomplete"]
    assert all(row[4] == "demo, split temporal" for row in complete)
    assert all(row[5].endswith("kB") or row[5].endswith("MB") for row in complete)
    assert all(row[3].startswith("20") and row[3].endswith("Z") for row in rows)
    assert "no saved_model.pb" in rows[2][6]


def test_versions_of_one_model(savedmodels, capsys):
    assert main(["versions", str(savedmodels), "--model", "mf"]) == 0
    assert {row[0] for row in _rows(capsys.readouterr().out)} == {"mf"}


def test_prune_keeps_the_newest_complete_versions_and_what_is_not_a_complete_version(savedmodels, capsys):
    assert main(["versions", str(savedmodels), "--prune", "--keep", "2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete 2 versions" in out and (savedmodels / "popularity" / "1").is_dir()

    assert main(["versions", str(savedmodels), "--prune", "--keep", "2"]) == 0
    out = capsys.readouterr().out
    assert f"deleted {savedmodels / 'popularity' / '2'} (" in out
    assert f"deleted {savedmodels / 'popularity' / '1'} (" in out
    assert "deleted 2 versions" in out
    remaining = sorted(p.name for p in (savedmodels / "popularity").iterdir())
    assert remaining == [".tmp-host-123-0123456789abcdef0123456789abcdef", "3", "4", "5"]
    assert sorted(p.name for p in (savedmodels / "mf").iterdir()) == ["1", "2"]


def test_prune_default_keeps_three(savedmodels, capsys):
    assert main(["versions", str(savedmodels), "--prune"]) == 0
    assert sorted(p.name for p in (savedmodels / "popularity").iterdir() if not p.name.startswith(".")) == ["2", "3", "4", "5"]


def test_prune_unlinks_a_linked_version_and_keeps_its_target(savedmodels, tmp_path):
    from tfrec.export.retention import prune_versions

    target = tmp_path / "elsewhere"
    shutil.move(savedmodels / "popularity" / "1", target)
    (savedmodels / "popularity" / "1").symlink_to(target)
    deleted = prune_versions(savedmodels, keep=3, model="popularity")
    assert [info.version for info in deleted] == [1]
    assert not (savedmodels / "popularity" / "1").exists() and (target / "saved_model.pb").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--prune", "--keep", "0"], "--keep must be a whole number of at least 1"),
        (["--model", "two_tower"], "no model folder 'two_tower' (model folders there: mf, popularity)"),
        (["--keep", "2"], "--keep and --dry-run apply to --prune"),
    ],
)
def test_versions_mistakes_are_one_line(savedmodels, capsys, argv, message):
    assert main(["versions", str(savedmodels), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfrec: error: ") and message in err and err.count("\n") == 1
    assert (savedmodels / "popularity" / "1").is_dir()


def test_versions_of_a_missing_folder(tmp_path, capsys):
    assert main(["versions", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def _fake_run(logdir, name: str, stamp: float):
    import os

    event = logdir / name / "train" / f"events.out.tfevents.{int(stamp)}.host.1.v2"
    event.parent.mkdir(parents=True)
    event.write_bytes(b"x" * 10)
    os.utime(event, (stamp, stamp))


def test_prune_tensorboard_runs_per_model(savedmodels, tmp_path, capsys):
    logdir = tmp_path / "runs"
    for n in range(4):
        _fake_run(logdir, f"popularity-demo-temporal-2026120{n}-000000", 1_800_000_000 + n)
    _fake_run(logdir, "mf-demo-temporal-20261201-000000", 1_800_000_000)
    (logdir / "notes-2026").mkdir()  # no event file: not a run
    (logdir / "events.out.tfevents.1.host.experiment").write_bytes(b"x")  # the experiment's own file

    assert main(["versions", str(savedmodels), "--logdir", str(logdir)]) == 0
    out = capsys.readouterr().out
    assert "| popularity | 4 | 2027-01-15T08:00:03Z | 40 B |" in out and "| mf | 1 |" in out

    assert main(["versions", str(savedmodels), "--logdir", str(logdir), "--prune", "--keep", "2"]) == 0
    out = capsys.readouterr().out
    assert "deleted 2 versions and 2 TensorBoard runs" in out
    assert sorted(p.name for p in logdir.iterdir()) == [
        "events.out.tfevents.1.host.experiment", "mf-demo-temporal-20261201-000000", "notes-2026",
        "popularity-demo-temporal-20261202-000000", "popularity-demo-temporal-20261203-000000",
    ]
