"""Export, version and loading faults (issue 12): nothing broken becomes visible, nothing good gets hidden."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfrec.cli import main
from tfrec.export import export_model, versions
from tfrec.export.layout import STALE_AFTER_S, remove_stale_staging, staging_dir
from tfrec.serving import ServedModel, resolve_version_dir


def _fresh_popularity(demo):
    """A cheap model of this test's own (the shared ``fitted`` models must stay intact)."""
    from tfrec.models import make_model
    from tfrec.training import fit

    return fit(make_model("popularity"), demo, verbose=0).model


@pytest.fixture(scope="module")
def good_version(fitted) -> Path:
    """One good exported popularity version folder (copied, never modified)."""
    return fitted.exported("popularity")[2]


def _entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# ----------------------------------------------------------------- item 2: check before publishing
def test_a_model_with_nan_weights_is_not_exported(demo, tmp_path):
    from tfrec._keras import tf

    model = _fresh_popularity(demo)
    export_model(model, tmp_path)
    counts = model.fallback.counts
    counts.assign(tf.fill(tf.shape(counts), tf.constant(np.nan, counts.dtype)))
    with pytest.raises(ValueError, match=r"^popularity: not exported: weight .*counts.* NaN") as caught:
        export_model(model, tmp_path)
    assert "\n" not in str(caught.value)
    assert _entries(tmp_path / "popularity") == ["1"]


def test_a_signature_answering_nan_is_not_exported(demo, tmp_path, monkeypatch):
    """The probe requests catch what the weight check cannot (here: with the weight check off)."""
    from tfrec._keras import tf
    from tfrec.export import savedmodel

    model = _fresh_popularity(demo)
    counts = model.fallback.counts
    counts.assign(tf.fill(tf.shape(counts), tf.constant(np.nan, counts.dtype)))
    monkeypatch.setattr(savedmodel, "check_weights", lambda model: None)
    with pytest.raises(ValueError, match=r"^popularity: not exported: signature \w+ answered a probe request with NaN"):
        export_model(model, tmp_path)
    assert _entries(tmp_path / "popularity") == []


def test_a_staged_folder_that_does_not_load_is_not_exported(fitted, tmp_path, monkeypatch):
    from tfrec._keras import tf

    def broken_load(*args, **kwargs):
        raise OSError("truncated")

    model = fitted.model("popularity")
    export_model(model, tmp_path)
    monkeypatch.setattr(tf.saved_model, "load", broken_load)
    with pytest.raises(ValueError, match=r"^popularity: not exported: the SavedModel does not load \(OSError: truncated\)"):
        export_model(model, tmp_path)
    assert _entries(tmp_path / "popularity") == ["1"]


# ----------------------------------------------------------------- item 4: any id round-trips
ODD_ITEMS = ["tab\there", "new\nline", "cr\rhere", 'quo"te', "it's", "com,ma", "emoji \U0001f3ac", "nul\x00byte", "plain", "back\\slash"]
ODD_USERS = ["user\t1", "user\n2", "user,3", "user\x004"]


@pytest.fixture(scope="module")
def odd_export(tmp_path_factory):
    from tfrec.data.dataset import Dataset
    from tfrec.models import make_model
    from tfrec.training import fit

    rows = [(user, item) for u, user in enumerate(ODD_USERS) for i, item in enumerate(ODD_ITEMS) if (u + i) % 3]
    interactions = pd.DataFrame(rows, columns=["user_id", "item_id"])
    interactions["rating"] = np.float32(1.0)
    interactions["timestamp"] = np.arange(len(rows), dtype=np.int64)
    titles = [f"Title of {item}, \"quoted\"\ttabbed\n" for item in ODD_ITEMS]
    items = pd.DataFrame({"item_id": ODD_ITEMS, "title": titles, "text": "", "category": ""})
    model = fit(make_model("popularity"), Dataset(interactions=interactions, items=items, name="odd-ids"), verbose=0).model
    return export_model(model, tmp_path_factory.mktemp("odd")), dict(zip(ODD_ITEMS, titles))


def test_ids_with_tabs_newlines_quotes_emoji_and_nul_round_trip_through_the_catalog(odd_export):
    path, titles = odd_export
    served = ServedModel.load(path)
    assert sorted(served.catalog["item_id"]) == sorted(ODD_ITEMS)
    assert all(served.title(item) == title for item, title in titles.items())


def test_ids_with_tabs_newlines_quotes_emoji_and_nul_round_trip_through_recommend(odd_export):
    path, titles = odd_export
    served = ServedModel.load(path)
    recommended, scores = served.recommend(ODD_USERS + ["someone new"], k=len(ODD_ITEMS))
    assert {item for row in recommended for item in row if item} == set(ODD_ITEMS)
    assert served.title(recommended[-1][0]) == titles[recommended[-1][0]] and np.isfinite(scores[-1]).all()


# ----------------------------------------------------------------- item 7: odd entries named like versions
def test_a_file_or_dangling_link_named_like_the_next_version_is_skipped(fitted, tmp_path):
    model = fitted.model("popularity")
    folder = tmp_path / "popularity"
    export_model(model, tmp_path)
    (folder / "2").write_text("x")
    os.symlink(tmp_path / "nowhere", folder / "3")

    def hung(signum, frame):
        raise TimeoutError("export_model looped on an entry named like a version")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        path = export_model(model, tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert path == folder / "4"
    assert versions(folder) == [1, 4]
    assert ServedModel.load(folder).version == 4


# ----------------------------------------------------------------- item 8: path mistakes before the fit
@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the CLI reads data or fits a model."""
    import tfrec.data
    import tfrec.training

    def forbidden(*args, **kwargs):
        raise AssertionError("the path check must come before loading data and fitting")

    monkeypatch.setattr(tfrec.training, "fit", forbidden)
    monkeypatch.setattr(tfrec.data, "load_data", forbidden)


def _train_argv(tmp_path: Path, **paths: str) -> list[str]:
    options = {"--export-dir": str(tmp_path / "sm"), "--logdir": str(tmp_path / "runs")} | paths
    return ["train", "popularity", "-q", *[part for pair in options.items() for part in pair]]


@pytest.mark.parametrize(
    "option, target, message",
    [
        ("--export-dir", "file", "/file is a file"),
        ("--export-dir", "file/below", "/file/below: /"),
        ("--logdir", "file", "/file is a file"),
        ("--logdir", "file/runs", "/file/runs: /"),
        ("--json", "folder", "/folder is a folder, not a file"),
        ("--json", "file/m.json", "/file is a file"),
    ],
)
def test_path_mistakes_fail_in_one_line_before_any_fit(tmp_path, no_work, capsys, option, target, message):
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    assert main(_train_argv(tmp_path, **{option: str(tmp_path / target)})) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tfrec: error: {option}") and message in err and "\n" not in err


def test_a_read_only_export_dir_fails_before_any_fit(tmp_path, no_work, capsys, monkeypatch):
    read_only = tmp_path / "sm"
    read_only.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write anywhere, so os.access says yes: answer as for a user
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode: access(path, mode) and Path(path) != read_only)
    assert main(_train_argv(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tfrec: error: --export-dir {read_only}: {read_only} is not writable"


def test_export_model_rejects_an_export_dir_that_is_a_file(fitted, tmp_path):
    (tmp_path / "sm").write_text("x")
    with pytest.raises(ValueError, match="/sm/popularity: .*/sm is a file"):
        export_model(fitted.model("popularity"), tmp_path / "sm")


# ----------------------------------------------------------------- item 9: newest *complete* version
def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


@pytest.fixture
def broken_versions(good_version, tmp_path) -> Path:
    """Version 1 good, 2 empty, 3 truncated variables data, 4 truncated saved_model.pb, 5 a dangling link."""
    folder = tmp_path / "popularity"
    shutil.copytree(good_version, folder / "1")
    (folder / "2").mkdir()
    shutil.copytree(good_version, folder / "3")
    _truncate(folder / "3" / "variables" / "variables.data-00000-of-00001", 50)
    shutil.copytree(good_version, folder / "4")
    _truncate(folder / "4" / "saved_model.pb", 100)
    os.symlink(tmp_path / "gone", folder / "5")
    return folder


def test_the_newest_complete_version_that_loads_is_served(broken_versions, capsys):
    assert resolve_version_dir(broken_versions) == broken_versions / "4"  # complete on disk; loading finds it corrupt
    served = ServedModel.load(broken_versions)
    assert served.version == 1 and served.path == broken_versions / "1"
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tfrec: warning:")]
    assert [line.split("skipped version ")[1][0] for line in warnings] == ["5", "4", "3", "2"]
    assert "dangling link" in warnings[0] and "no saved_model.pb" in warnings[3]


def test_recommend_and_evaluate_say_which_version_they_serve(broken_versions, capsys):
    assert main(["recommend", str(broken_versions), "--user", "0", "-k", "2"]) == 0
    assert "popularity version 1 (" in capsys.readouterr().out
    assert main(["evaluate", str(broken_versions)]) == 0
    assert "popularity version 1 (" in capsys.readouterr().out


@pytest.mark.parametrize("keep", ["2", "3", "4", "5"])
def test_only_broken_versions_give_one_line_and_exit_2(broken_versions, keep, capsys):
    shutil.rmtree(broken_versions / "1")
    for other in {"2", "3", "4", "5"} - {keep}:
        entry = broken_versions / other
        entry.unlink() if entry.is_symlink() else shutil.rmtree(entry)
    with pytest.raises(ValueError, match=rf"no usable SavedModel version \(version {keep}: ") as caught:
        ServedModel.load(broken_versions)
    assert "\n" not in str(caught.value)
    assert main(["evaluate", str(broken_versions)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfrec: error:") and "no usable SavedModel version" in err and "\n" not in err


def test_a_corrupt_savedmodel_folder_named_directly_is_one_line(broken_versions):
    with pytest.raises(ValueError, match=r"/4: the SavedModel does not load"):
        ServedModel.load(broken_versions / "4")


def test_exports_of_the_old_tsv_catalog_still_load(good_version, tmp_path):
    old = shutil.copytree(good_version, tmp_path / "old")
    catalog = ServedModel.load(good_version).catalog
    (old / "assets" / "catalog.jsonl").unlink()
    catalog.to_csv(old / "assets" / "catalog.tsv", sep="\t", index=False)
    assert ServedModel.load(old).catalog.equals(catalog)


# ----------------------------------------------------------------- item 10: stale staging folders
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_staging_folders_are_removed_live_ones_kept(fitted, tmp_path):
    folder = tmp_path / "popularity"
    folder.mkdir()
    prefix, host, _, token = staging_dir(folder).name.split("-")
    dead = folder / f"{prefix}-{host}-{_dead_pid()}-{token}"
    live = staging_dir(folder)
    other_host = folder / f"{prefix}-elsewhere-1-{token}"
    old_format, old_format_stale = folder / f".tmp-{token}", folder / f".tmp-{token[::-1]}"
    for path in (dead, live, other_host, old_format, old_format_stale):
        (path / "variables").mkdir(parents=True)
    day_ago = time.time() - STALE_AFTER_S - 60
    os.utime(old_format_stale, (day_ago, day_ago))
    export_model(fitted.model("popularity"), tmp_path)
    assert _entries(folder) == sorted(["1", live.name, other_host.name, old_format.name])


# ----------------------------------------------------------------- item 11: names stay inside the export dir
@pytest.mark.parametrize("name", ["../../escaped", "a/b", "a\\b", "..", ".", ".hidden", "nul\x00", "", "/abs"])
def test_export_model_rejects_names_that_are_not_one_folder(fitted, tmp_path, name):
    base = tmp_path / "base" / "sm"
    with pytest.raises(ValueError, match="model name"):
        export_model(fitted.model("popularity"), base, name=name)
    assert not (tmp_path / "base").exists() and not (tmp_path / "escaped").exists()


# ----------------------------------------------------------------- kill -9 mid-export
_EXPORT_LOOP = """
import sys
import tfrec
from tfrec.data import load_demo
from tfrec.export import export_model
from tfrec.models import make_model
from tfrec.training import fit

model = fit(make_model("popularity"), load_demo(), verbose=0).model
while True:
    print(export_model(model, sys.argv[1]), flush=True)
"""


@pytest.mark.slow
def test_kill_9_mid_export_leaves_earlier_versions_loadable_and_nothing_half_written(tmp_path):
    folder = tmp_path / "popularity"
    child = subprocess.Popen([sys.executable, "-c", _EXPORT_LOOP, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        published = [child.stdout.readline().strip() for _ in range(2)]
        deadline = time.monotonic() + 30
        while not any(p.name.startswith(".tmp-") for p in folder.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert published == [str(folder / "1"), str(folder / "2")]
    numbered = [p for p in folder.iterdir() if p.name.isdigit()]
    assert {"1", "2"} <= {p.name for p in numbered}
    for version in numbered:
        assert ServedModel.load(version).n_items > 0
    left = sorted(p for p in folder.iterdir() if p.name.startswith(".tmp-"))
    assert sorted(remove_stale_staging(folder)) == left
    assert all(p.name.isdigit() for p in folder.iterdir())
