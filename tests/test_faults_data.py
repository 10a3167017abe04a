"""Issue 12, data loading: bad values, ambiguous ids and malformed layouts are refused with
one message naming the file and the line, never loaded silently or reported from deep inside pandas."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tfrec.data import DataError, load_data, load_movielens, load_ratings_csv
from tfrec.data.dataset import RATING_LIMIT

HEADER = "user_id,item_id,rating,timestamp\n"
GOOD = "u1,i1,4,100\nu2,i2,3,200\n"  # lines 2 and 3


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _error(fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def _u_data_dir(tmp_path: Path, u_data: str) -> Path:
    """A MovieLens 100K directory with this u.data and a one-line catalog."""
    directory = tmp_path / "ml-bad"
    directory.mkdir()
    _write(directory / "u.data", u_data)
    _write(directory / "u.item", "10|Ten (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 19) + "\n")
    return directory


# --------------------------------------------------------------------------- item 1: ratings


@pytest.mark.parametrize("rating", ["inf", "-inf", "Infinity", "nan", "1e39", "1e30", "-1000001"])
def test_non_finite_or_absurd_ratings_are_refused_with_file_and_line(tmp_path, rating):
    bad = _write(tmp_path / "bad.csv", HEADER + GOOD + f"u1,i9,{rating},300\n")
    message = _error(load_data, bad)
    assert str(bad) in message and "line 4" in message and f"rating is {rating!r}" in message


@pytest.mark.parametrize("layout", ["u.data", "ratings.csv"])
def test_every_loader_checks_the_rating_range(tmp_path, layout):
    if layout == "u.data":
        directory = _u_data_dir(tmp_path, "1\t10\t5\t900\n2\t10\tinf\t800\n")
    else:
        directory = tmp_path / "ml-csv"
        directory.mkdir()
        _write(directory / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,5,900\n2,10,1e30,800\n")
        _write(directory / "movies.csv", "movieId,title,genres\n10,Ten (1995),Drama\n")
    message = _error(load_movielens, directory)
    assert layout in message and ("line 2" if layout == "u.data" else "line 3") in message


def test_ratings_up_to_the_documented_limit_load_exactly(tmp_path):
    assert RATING_LIMIT == 1e6
    ok = _write(tmp_path / "ok.csv", HEADER + "u1,i1,1000000,1\nu2,i2,-1e6,2\nu3,i3,0.5,3\n")
    np.testing.assert_array_equal(load_data(ok).interactions["rating"], np.array([1e6, -1e6, 0.5], np.float32))


def test_cli_train_on_an_infinite_rating_exits_2_and_exports_nothing(tmp_path, capsys):
    from tfrec.cli import main

    bad = _write(tmp_path / "bad.csv", HEADER + GOOD + "u1,i9,inf,0\n")
    code = main(["train", "popularity", "--data", str(bad), "--export-dir", str(tmp_path / "sm"), "--logdir", str(tmp_path / "runs"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("tfrec: error:") and str(bad) in err and "line 4" in err and "\n" not in err
    assert not (tmp_path / "sm").exists() and not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- item 3: timestamps


@pytest.mark.parametrize("timestamp", ["12345678901234567890", "9223372036854775808", "-9223372036854775809", "inf", "nan", "1e20"])
def test_timestamps_beyond_int64_are_refused_with_file_and_line(tmp_path, timestamp):
    bad = _write(tmp_path / "t.csv", HEADER + GOOD + f"u1,i9,4,{timestamp}\n")
    message = _error(load_data, bad)
    assert str(bad) in message and "line 4" in message and f"timestamp is {timestamp!r}" in message


@pytest.mark.parametrize("timestamp", ["12345678901234567890", "-9999999999999999999", "inf"])
def test_u_data_timestamps_beyond_int64_are_refused(tmp_path, timestamp):
    directory = _u_data_dir(tmp_path, f"1\t10\t5\t900\n2\t10\t3\t800\n1\t10\t4\t{timestamp}\n")
    message = _error(load_movielens, directory)
    assert "u.data" in message and "line 3" in message and repr(timestamp) in message


def test_int64_extremes_load_without_wrapping(tmp_path):
    ok = _write(tmp_path / "ok.csv", HEADER + "u1,i1,4,9223372036854775807\nu2,i2,3,-9223372036854775808\nu3,i3,3,1234567890123456789\n")
    stamps = load_data(ok).interactions["timestamp"].tolist()
    assert stamps == [9223372036854775807, -9223372036854775808, 1234567890123456789]


# --------------------------------------------------------------------------- item 5: ids and layouts


def test_surrounding_whitespace_is_stripped_from_ids_and_reported(tmp_path, caplog):
    ratings = _write(tmp_path / "r.csv", "user_id,item_id,rating\nu1,i1,4\n u1 ,i2,3\nu2,\ti1\t,5\n")
    items = _write(tmp_path / "items.csv", "item_id,title\n i1,One\ni2 ,Two\n")
    with caplog.at_level(logging.WARNING, logger="tfrec.data"):
        data = load_ratings_csv(ratings, items_path=items)
    assert data.interactions["user_id"].tolist() == ["u1", "u1", "u2"] and data.n_users == 2
    assert data.interactions["item_id"].tolist() == ["i1", "i2", "i1"] and data.n_items == 2
    assert data.items["item_id"].tolist() == ["i1", "i2"] and data.items["title"].tolist() == ["One", "Two"]
    notes = [r.getMessage() for r in caplog.records]
    assert any("r.csv (user_id)" in n and "stripped surrounding whitespace from 1 id value (" in n for n in notes)
    assert any("r.csv (item_id)" in n and "from 1 id value" in n for n in notes)
    assert any("items.csv (item_id)" in n and "from 2 id values" in n for n in notes)


def test_clean_ids_log_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="tfrec.data"):
        load_data(_write(tmp_path / "ok.csv", HEADER + GOOD))
    assert not caplog.records


@pytest.mark.parametrize("blank_id", ["   ", "\t"])
def test_whitespace_only_ids_are_refused_with_file_and_line(tmp_path, blank_id):
    bad = _write(tmp_path / "w.csv", "user_id,item_id,rating\nu1,i1,4\nu2,i2,4\n" + f'u3,"{blank_id}",4\n')
    message = _error(load_data, bad)
    assert str(bad) in message and "line 4" in message and "item_id is only whitespace" in message


def test_movielens_ids_are_whole_numbers_so_whitespace_never_splits_a_user(tmp_path):
    directory = _u_data_dir(tmp_path, "1\t10\t5\t900\n 1 \t10\t3\t800\n")
    assert load_movielens(directory).n_users == 1
    (directory / "u.data").write_text("1\t10\t5\t900\n \t10\t3\t800\n")
    message = _error(load_movielens, directory)
    assert "u.data" in message and "line 2" in message and "user_id" in message


def test_a_directory_with_both_movielens_layouts_is_refused(tmp_path):
    directory = _u_data_dir(tmp_path, "1\t10\t5\t900\n")
    _write(directory / "ratings.csv", "userId,movieId,rating,timestamp\n1,10,5,900\n")
    _write(directory / "movies.csv", "movieId,title,genres\n10,Ten (1995),Drama\n")
    message = _error(load_data, str(directory))
    assert str(directory) in message and "u.data" in message and "ratings.csv" in message and "move one" in message


# --------------------------------------------------------------------------- item 6: malformed layouts


@pytest.mark.parametrize(
    "u_data, line, expected",
    [
        ("1 10 5 900\n2 10 3 800\n", "line 1", ["1 field, expected 4 separated by tabs", "separated by spaces"]),
        ("1\t10\t5\t900\n2\t10\t3\t800\n1 10 4 950\n", "line 3", ["1 field, expected 4", "separated by spaces"]),
        ("1,10,5,900\n", "line 1", ["1 field, expected 4", "separated by commas"]),
        ("1\t10\t5\t900\t\n2\t10\t3\t800\t\n", "line 1", ["5 fields, expected 4"]),  # pandas used to shift the columns
        ("1\t10\t5\t900\n2\t10\t3\n", "line 2", ["3 fields, expected 4"]),
        ("1\t10\t5\t900\n2\t10\t3\t800\t7\n", "line 2", ["5 fields, expected 4"]),
    ],
    ids=["spaces", "one-spaced-line", "commas", "trailing-tab-everywhere", "short-line", "long-line"],
)
def test_malformed_u_data_names_file_line_and_separator(tmp_path, u_data, line, expected):
    message = _error(load_movielens, _u_data_dir(tmp_path, u_data))
    assert "u.data" in message and line in message and "\n" not in message
    for part in expected:
        assert part in message


def test_a_trailing_comma_on_every_line_is_refused_not_shifted(tmp_path):
    bad = _write(tmp_path / "trail.csv", "user_id,item_id,rating\nu1,i1,4,\nu2,i2,5,\n")
    message = _error(load_data, bad)
    assert str(bad) in message and "line 2: 4 fields, expected 3" in message
