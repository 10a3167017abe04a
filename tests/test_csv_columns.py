"""``--columns``: a ratings CSV with other header names loads from the command line."""
from __future__ import annotations

import pytest

from tfrec.cli import main
from tfrec.data.csv_columns import parse_columns


@pytest.fixture(scope="module")
def odd_csv(tmp_path_factory):
    """30 users x 8 ratings under the headers who, what, stars, when."""
    path = tmp_path_factory.mktemp("csv") / "odd.csv"
    lines = ["who,what,stars,when"]
    lines += [f"u{user},m{(user * 3 + k) % 25},{1 + (user + k) % 5},{1_000_000 + 100 * user + k}" for user in range(30) for k in range(8)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_parse_columns():
    assert parse_columns("user=who, item = what,rating=stars,time=when") == {"user": "who", "item": "what", "rating": "stars", "time": "when"}
    assert parse_columns("user=who,item=what,rating=none") == {"user": "who", "item": "what", "rating": None}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user", "'user' is not KEY=COLUMN"),
        ("user=who,", "'' is not KEY=COLUMN"),
        ("person=who", "unknown key 'person'; keys are user, item, rating, time"),
        ("user=a,user=b", "user is given twice"),
        ("item=none", "item must name a column"),
    ],
)
def test_parse_columns_mistakes(text, message):
    with pytest.raises(ValueError, match=message):
        parse_columns(text)


def test_load_data_with_columns(odd_csv):
    from tfrec.data import load_data

    data = load_data(odd_csv, columns={"user": "who", "item": "what", "rating": "stars", "time": "when"})
    assert len(data.interactions) == 240
    first = data.interactions.sort_values("timestamp").iloc[0]
    assert (first["user_id"], first["item_id"], float(first["rating"]), int(first["timestamp"])) == ("u0", "m0", 1.0, 1_000_000)
    implicit = load_data(odd_csv, columns={"user": "who", "item": "what", "rating": None})
    assert set(implicit.interactions["rating"]) == {1.0}


def test_train_with_columns(odd_csv, tmp_path, capsys):
    argv = ["train", "popularity", "--data", str(odd_csv), "--columns", "user=who,item=what,rating=stars,time=when",
            "--export-dir", str(tmp_path / "sm"), "--logdir", str(tmp_path / "runs"), "-q"]
    assert main(argv) == 0
    assert "data odd, split temporal" in capsys.readouterr().out
    assert (tmp_path / "sm" / "popularity" / "1" / "saved_model.pb").is_file()


def test_csv_error_advises_columns(odd_csv, tmp_path, capsys):
    argv = ["train", "popularity", "--data", str(odd_csv), "--export-dir", str(tmp_path / "sm"), "--logdir", str(tmp_path / "runs"), "-q"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "columns are: 'who', 'what', 'stars', 'when'" in err
    assert "--columns user=COL,item=COL,rating=COL,time=COL" in err


@pytest.mark.parametrize(
    ("data", "columns", "message"),
    [
        (None, "user=who,item", "--columns 'user=who,item': 'item' is not KEY=COLUMN"),
        ("demo", "user=who", "--columns applies to a ratings CSV file (--data FILE.csv), not to --data demo"),
    ],
)
def test_bad_columns_are_one_line(odd_csv, tmp_path, capsys, data, columns, message):
    argv = ["evaluate", str(tmp_path / "nowhere"), "--data", data or str(odd_csv), "--columns", columns]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfrec: error: ") and message in err and err.count("\n") == 1


def test_bench_passes_columns_to_every_job(odd_csv, tmp_path, monkeypatch, capsys):
    from tfrec.bench import runner

    columns = {"user": "who", "item": "what", "rating": "stars", "time": "when"}
    seen = []

    def run_jobs(jobs, **kwargs):
        seen.extend(jobs)
        data, _ = runner.load_measured(jobs[0]["data"], jobs[0].get("columns"))  # what a job's process loads
        assert len(data.interactions) == 240
        raise SystemExit(0)  # stop before the reports

    monkeypatch.setattr(runner, "run_jobs", run_jobs)
    with pytest.raises(SystemExit):
        main(["bench", "--data", str(odd_csv), "--columns", "user=who,item=what,rating=stars,time=when", "--protocol", "T",
              "--models", "popularity", "--peers", "mostpop", "--in-process", "--out", str(tmp_path)])
    assert [job["columns"] for job in seen] == [columns, columns]
    capsys.readouterr()
