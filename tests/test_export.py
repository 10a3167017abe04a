"""Export: TF Serving layout, versions counting up, atomic writes, saved_model_cli."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfrec.export import CATALOG_ASSET, export_model, versions
from tfrec.export.catalog import read_catalog


def test_versions_count_up_and_assets_are_carried(fitted, tmp_path):
    model = fitted.model("popularity")
    first = export_model(model, tmp_path)
    second = export_model(model, tmp_path)
    assert (first.name, second.name) == ("1", "2")
    assert versions(tmp_path / "popularity") == [1, 2]
    meta = json.loads((second / "assets" / "tfrec.json").read_text())
    assert meta["model"] == "popularity" and meta["n_items"] == model.items.size - 1
    catalog = read_catalog(second / "assets")
    assert (second / "assets" / CATALOG_ASSET).is_file() and list(catalog.columns) == ["item_id", "title"]
    assert list(catalog["item_id"]) == [i.decode() for i in model.items.ids.numpy()[1:]]


def test_a_crash_mid_export_leaves_no_version_behind(fitted, tmp_path, monkeypatch):
    from tfrec._keras import tf

    model = fitted.model("popularity")
    export_model(model, tmp_path)

    def crash(*args, **kwargs):
        Path(args[1]).mkdir(parents=True)
        (Path(args[1]) / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        export_model(model, tmp_path)
    assert sorted(os.listdir(tmp_path / "popularity")) == ["1"]


@pytest.mark.slow
def test_saved_model_cli_lists_and_runs_recommend(fitted):
    _, _, path = fitted.exported("popularity")
    cli = Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed next to this Python")
    shown = subprocess.run([str(cli), "show", "--dir", str(path), "--all"], capture_output=True, text=True, check=True).stdout
    assert "signature_def['recommend']" in shown and "signature_def['score']" in shown
    ran = subprocess.run(
        [str(cli), "run", "--dir", str(path), "--tag_set", "serve", "--signature_def", "recommend",
         "--input_exprs", "user_id=['0'];history=[['']];k=3"],
        capture_output=True, text=True,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "item_ids" in ran.stdout and "scores" in ran.stdout
