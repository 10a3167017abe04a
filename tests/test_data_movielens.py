"""Loaders: MovieLens 100K (real files), the MovieLens CSV layout, a user's CSV, specs, errors."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tfrec.data import DataError, load_data, load_movielens, load_ratings_csv
from tfrec.data.movielens import parse_count

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


@pytest.fixture(scope="module")
def ml100k():
    if not (ML100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not found at {ML100K}; put the GroupLens files in ../shared/data/ml-100k")
    return load_movielens(ML100K)


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def mini100k(tmp_path) -> Path:
    """A three-movie directory in the 100K layout (u.item in latin-1, like the real one)."""
    d = tmp_path / "ml-mini"
    d.mkdir()
    _write(d / "u.data", "1\t10\t5\t900\n2\t10\t3\t800\n1\t2\t4\t950\n2\t3\t1\t700\n")
    flags = lambda on: "|".join("1" if k in on else "0" for k in range(19))
    _write(
        d / "u.item",
        f"2|GoldenEye (1995)|01-Jan-1995||http://x|{flags({1, 2, 16})}\n"
        f"3|Café Society (1995)|01-Jan-1995||http://x|{flags({8})}\n"
        f"10|Richard III (1995)|22-Jan-1996||http://x|{flags({8, 17})}\n",
        encoding="latin-1",
    )
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
              "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
              "War", "Western"]
    _write(d / "u.genre", "".join(f"{g}|{k}\n" for k, g in enumerate(genres)) + "\n")
    return d


@pytest.fixture
def csv_layout(tmp_path) -> Path:
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    _write(d / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,0.5,964982224\n")
    _write(
        d / "movies.csv",
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n'
        '3,"American President, The (1995)",Comedy|Drama|Romance\n4,Nothing (2000),(no genres listed)\n',
    )
    return d


def _raises(match_parts, fn, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    for part in match_parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


# ----------------------------------------------------------------------------- MovieLens 100K


def test_ml100k_counts_and_dtypes(ml100k):
    inter = ml100k.interactions
    assert len(inter) == 100_000 and ml100k.n_users == 943 and ml100k.n_items == 1682
    assert len(ml100k.items) == 1682
    assert inter["rating"].dtype == np.float32 and inter["timestamp"].dtype == np.int64
    assert pd.api.types.is_string_dtype(inter["user_id"]) and pd.api.types.is_string_dtype(inter["item_id"])
    assert sorted(inter["rating"].unique().tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    # u.data's first line: 196 242 3 881250949
    assert tuple(inter.iloc[0]) == ("196", "242", 3.0, 881250949)
    assert ml100k.name == "ml-100k" and ml100k.source_dir == ML100K and ml100k.sessions is None


def test_ml100k_items(ml100k):
    items = ml100k.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "text"] == "Toy Story (1995) Animation Children's Comedy"
    assert items.loc["1", "category"] == "Animation|Children's|Comedy"
    assert items.loc["2", "category"] == "Action|Adventure|Thriller"
    assert ml100k.items["item_id"].tolist() == [str(i) for i in range(1, 1683)]
    # latin-1 titles decode (e.g. item 1633 "Á köldum klaka (Cold Fever) (1994)")
    assert any("á" in t.lower() or "é" in t.lower() for t in ml100k.items["title"])


def test_mini_100k_layout(mini100k):
    data = load_movielens(mini100k)
    assert data.name == "ml-mini" and len(data.interactions) == 4
    items = data.items.set_index("item_id")
    assert data.items["item_id"].tolist() == ["2", "3", "10"]
    assert items.loc["3", "title"] == "Café Society (1995)"
    assert items.loc["10", "text"] == "Richard III (1995) Drama War"
    assert items.loc["2", "category"] == "Action|Adventure|Thriller"


# ----------------------------------------------------------------------------- CSV layout


def test_csv_layout(csv_layout):
    data = load_movielens(csv_layout)
    assert data.name == "ml-latest-small" and data.source_dir == csv_layout
    inter = data.interactions
    assert inter["user_id"].tolist() == ["1", "1", "2"] and inter["item_id"].tolist() == ["1", "3", "1"]
    np.testing.assert_array_equal(inter["rating"], np.array([4.0, 4.5, 0.5], np.float32))
    np.testing.assert_array_equal(inter["timestamp"], [964982703, 964981247, 964982224])
    items = data.items.set_index("item_id")
    assert items.loc["3", "title"] == "American President, The (1995)"
    assert items.loc["3", "text"] == "American President, The (1995) Comedy Drama Romance"
    assert items.loc["1", "category"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert items.loc["4", "text"] == "Nothing (2000)"  # "(no genres listed)" is not text
    assert len(data.items) == 3


# ----------------------------------------------------------------------------- generic CSV


def test_ratings_csv_mapping_and_defaults(tmp_path):
    f = _write(tmp_path / "events.csv", "who,what,stars\nann,x1,5\nbob,x2,3\nann,x2,4\n")
    data = load_ratings_csv(f, user_col="who", item_col="what", rating_col="stars")
    inter = data.interactions
    assert inter["user_id"].tolist() == ["ann", "bob", "ann"]
    np.testing.assert_array_equal(inter["timestamp"], [0, 1, 2])  # row order
    assert inter["rating"].tolist() == [5.0, 3.0, 4.0]
    assert data.items["item_id"].tolist() == ["x1", "x2"] and data.items["title"].tolist() == ["x1", "x2"]
    assert data.name == "events"


def test_ratings_csv_implicit_timestamps_and_items(tmp_path):
    f = _write(tmp_path / "clicks.tsv", "user_id\titem_id\tts\nu1\t7\t2024-01-01T00:00:10Z\nu2\t8\t2024-01-01\n")
    items = _write(tmp_path / "items.tsv", "item_id\ttitle\tgenre\n7\tSeven\tA|B\n9\tNine\tC\n")
    data = load_ratings_csv(f, rating_col=None, timestamp_col="ts", sep="\t", items_path=items, category_col="genre")
    assert data.interactions["rating"].tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(data.interactions["timestamp"], [1704067210, 1704067200])
    cat = data.items.set_index("item_id")
    assert data.items["item_id"].tolist() == ["7", "8", "9"]  # 8 was rated but not in the items file
    assert cat.loc["7", "text"] == "Seven A B" and cat.loc["7", "category"] == "A|B"
    assert cat.loc["8", "title"] == "8"


def test_ratings_csv_ids_are_text_and_float_times(tmp_path):
    f = _write(tmp_path / "na.csv", "user_id,item_id,rating,t\nNA,null,3,964982703.0\nnan,007,4,5\n")
    data = load_ratings_csv(f, timestamp_col="t")
    assert data.interactions["user_id"].tolist() == ["NA", "nan"]
    assert data.interactions["item_id"].tolist() == ["null", "007"]
    np.testing.assert_array_equal(data.interactions["timestamp"], [964982703, 5])


def test_ratings_csv_other_encoding(tmp_path):
    f = _write(tmp_path / "latin.csv", "user_id,item_id,rating\nzoë,café,4\n", encoding="latin-1")
    _raises(["latin.csv", "line 2", "not UTF-8", "encoding="], load_ratings_csv, f)
    data = load_ratings_csv(f, encoding="latin-1")
    assert data.interactions["item_id"].tolist() == ["café"]


# ----------------------------------------------------------------------------- load_data


def test_load_data_specs(tmp_path, mini100k, csv_layout):
    assert load_data("demo").name == "demo"
    synthetic = load_data("synthetic:2k")
    assert len(synthetic.interactions) == 2000
    assert load_data(str(mini100k)).name == "ml-mini"
    assert len(load_data(csv_layout / "ratings.csv").interactions) == 3  # MovieLens columns recognised
    f = _write(tmp_path / "plain.csv", "user_id,item_id\na,b\n")
    assert load_data(f).interactions["rating"].tolist() == [1.0]
    _raises(["nope", "demo", "synthetic:N"], load_data, "nope")
    assert [parse_count(s) for s in ("100k", "5M", "20000000", "1.5M", "20_000_000")] == [
        100_000, 5_000_000, 20_000_000, 1_500_000, 20_000_000]
    _raises(["lots"], parse_count, "lots")


# ----------------------------------------------------------------------------- errors


def test_missing_paths(tmp_path):
    _raises([str(tmp_path / "absent"), "does not exist"], load_movielens, tmp_path / "absent")
    _raises(["absent.csv", "does not exist"], load_ratings_csv, tmp_path / "absent.csv")
    _raises(["absent.csv", "does not exist"], load_data, str(tmp_path / "absent.csv"))


def test_directory_without_a_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    message = _raises([str(tmp_path), "u.data", "ratings.csv", "movies.csv", "notes.txt"], load_movielens, tmp_path)
    assert "expected" in message


def test_missing_companion_file(csv_layout):
    (csv_layout / "movies.csv").unlink()
    _raises(["movies.csv", "does not exist"], load_movielens, csv_layout)


def test_missing_columns(tmp_path, csv_layout):
    _write(csv_layout / "ratings.csv", "userId,itemId,rating,timestamp\n1,1,4,5\n")
    _raises(["ratings.csv", "'movieId'", "'userId', 'itemId', 'rating', 'timestamp'"], load_movielens, csv_layout)
    f = _write(tmp_path / "r.csv", "user,item,rating\n1,2,3\n")
    _raises(["r.csv", "'user_id'", "'item_id'", "columns are: 'user', 'item', 'rating'", "user_col="],
            load_ratings_csv, f)
    g = _write(tmp_path / "implicit.csv", "user_id,item_id\n1,2\n")
    _raises(["implicit.csv", "'rating'", "rating_col="], load_ratings_csv, g)  # rating needs rating_col=None


def test_bad_values_give_file_line_and_value(tmp_path, mini100k):
    f = _write(tmp_path / "r.csv", "user_id,item_id,rating\na,b,4\n\nc,d,four\n")
    _raises(["r.csv", "line 4", "rating", "'four'"], load_ratings_csv, f)
    g = _write(tmp_path / "e.csv", "user_id,item_id,rating\na,b,4\n,d,3\n")
    _raises(["e.csv", "line 3", "user_id is empty"], load_ratings_csv, g)
    h = _write(tmp_path / "t.csv", "user_id,item_id,when\na,b,12\nc,d,yesterday\n")
    _raises(["t.csv", "line 3", "'yesterday'"], load_ratings_csv, h, rating_col=None, timestamp_col="when")
    _write(mini100k / "u.data", "1\t10\t5\t900\n2\tx10\t3\t800\n")
    _raises(["u.data", "line 2", "item_id", "'x10'"], load_movielens, mini100k)
    _write(mini100k / "u.data", "1\t10\t5\t900\n2\t10\t3\t800\n1\t2\t4.5.1\t950\n")
    _raises(["u.data", "line 3", "rating", "'4.5.1'"], load_movielens, mini100k)


def test_bad_values_in_csv_layout(csv_layout):
    _write(csv_layout / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,3,4.5,2\n2,one,3,3\n")
    _raises(["ratings.csv", "line 4", "movieId", "'one'"], load_movielens, csv_layout)


def test_empty_files(tmp_path, csv_layout):
    f = _write(tmp_path / "empty.csv", "")
    _raises(["empty.csv", "is empty"], load_ratings_csv, f)
    g = _write(tmp_path / "header.csv", "user_id,item_id,rating\n")
    _raises(["header.csv", "no data rows"], load_ratings_csv, g)
    _write(csv_layout / "ratings.csv", "")
    _raises(["ratings.csv", "is empty"], load_movielens, csv_layout)


def test_undecodable_movies_csv(csv_layout):
    _write(csv_layout / "movies.csv", "movieId,title,genres\n1,Toy Story,Comedy\n3,Amélie,Drama\n", encoding="latin-1")
    message = _raises(["movies.csv", "line 3", "not UTF-8", "re-save", "encoding="], load_movielens, csv_layout)
    assert re.search(r"0x[0-9a-f]{2}", message)
    assert load_movielens(csv_layout, encoding="latin-1").items.set_index("item_id").loc["3", "title"] == "Amélie"


def test_ragged_line(tmp_path):
    f = _write(tmp_path / "ragged.csv", "user_id,item_id,rating\na,b,4\nc,d,4,9\n")
    _raises(["ragged.csv", "line 3"], load_ratings_csv, f)
