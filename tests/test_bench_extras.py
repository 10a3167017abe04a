"""``tfrec bench`` without the bench extras (matplotlib, implicit, scikit-surprise): skip, say so, write the reports."""
from __future__ import annotations

import json
import sys

from tfrec.cli import main

MISSING_PEER_NOTE = "peer implicit_cosine skipped: module 'implicit' is not installed (pip install -e .[bench])"
NO_CHART_NOTE = "no chart: matplotlib is not installed (pip install -e .[bench])"


def _without_extras(monkeypatch) -> None:
    for module in ("matplotlib", "implicit", "surprise"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails, importlib.util.find_spec returns None


def test_bench_without_extras_skips_the_peer_and_the_chart_and_writes_the_reports(monkeypatch, tmp_path, capsys):
    _without_extras(monkeypatch)
    out_dir = tmp_path / "bench"
    argv = ["bench", "--data", "demo", "--protocol", "T", "--models", "popularity", "--peers", "mostpop,implicit_cosine",
            "--in-process", "--out", str(out_dir)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"note: {MISSING_PEER_NOTE}" in out and f"note: {NO_CHART_NOTE}" in out
    assert out.index(f"note: {NO_CHART_NOTE}") < out.index("popularity")  # said before the first job runs
    document = json.loads((out_dir / "bench.json").read_text())
    assert MISSING_PEER_NOTE in document["notes"] and NO_CHART_NOTE in document["notes"]
    assert sorted(row["model"] for row in document["rows"]) == ["mostpop", "popularity"]
    assert all(row["status"] == "ok" for row in document["rows"])
    markdown = (out_dir / "bench.md").read_text()
    assert f"- {MISSING_PEER_NOTE}" in markdown and f"- {NO_CHART_NOTE}" in markdown
    assert not (out_dir / "bench.png").exists()


def test_scale_without_extras_skips_the_peer_and_notes_the_chart(monkeypatch, tmp_path, capsys):
    _without_extras(monkeypatch)
    from tfrec.bench.runner import available_peers

    assert available_peers(["implicit_cosine", "numpy_covisit"]) == (["numpy_covisit"], [MISSING_PEER_NOTE])
    from tfrec.bench.report import write_scale

    document = {"kind": "scale", "sizes": [1000], "created": "now", "seconds": 1.0, "max_seconds": 1, "max_memory_gb": 1, "rows": [], "notes": []}
    write_scale(document, tmp_path)
    assert f"- {NO_CHART_NOTE}" in (tmp_path / "scale.md").read_text()
    assert NO_CHART_NOTE in json.loads((tmp_path / "scale.json").read_text())["notes"]
    capsys.readouterr()
