"""Loading ratings from disk: MovieLens directories, a user's CSV, and `load_data` specs.

Every loader returns a `Dataset` with string ids and raises `DataError` with one message
that names the file, the line (1-based, counting a header line) where there is one, and
the fix. Files are read with pandas' C parser and explicit dtypes; only when that fails
is the file read again as text to find the first bad line.

What is accepted: ids are text (whole numbers in MovieLens files); surrounding whitespace
is not part of an id (it is stripped, and a warning says how many values changed); an
empty or whitespace-only id is an error. Ratings are finite numbers with |rating| <=
`RATING_LIMIT` (1e6). Timestamps are whole numbers that fit int64, other finite numbers
(floored), or ISO 8601 dates. A directory holding both MovieLens layouts is refused.
"""
from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from tfrec.data.csv_columns import COLUMN_KEYS
from tfrec.data.dataset import RATING_LIMIT, DataError, Dataset, id_sort_key

logger = logging.getLogger(__name__)

# ML-100K genre names in u.genre order, used only when u.genre is absent.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
NO_GENRES = "(no genres listed)"  # MovieLens CSV placeholder, left out of item text

_KIND_DTYPE = {"int": "int64", "float": "float32", "id": "category", "text": "str", "time": "str"}
_NEED = {
    "id": "an id",
    "int": "a whole number within int64",
    "float": f"a finite number within ±{RATING_LIMIT:,.0f}",
    "time": "a number within int64 (e.g. Unix seconds) or an ISO 8601 date",
}
_SEPARATOR_NAMES = {"\t": "tabs", ",": "commas", ";": "semicolons", "|": "'|'", " ": "spaces"}


# --------------------------------------------------------------------------- reading


def _read_table(
    path: Path,
    columns: dict[str, str],
    *,
    sep: str = ",",
    names: list[str] | None = None,
    encoding: str = "utf-8",
    fix: str = "",
) -> pd.DataFrame:
    """Read ``columns`` ({column: "int" | "float" | "id" | "text" | "time"}) from a file.

    ``names`` means the file has no header and gives its column names; otherwise the first
    line is the header and must hold every column. Numbers must parse, ids and numbers must
    not be empty; the first offending line is reported. Ids lose surrounding whitespace
    (logged as a warning) and must not be whitespace only; "float" values must be finite
    with |value| <= `RATING_LIMIT`; "int" values must fit int64. A "time" column (whole
    numbers, other numbers, or ISO dates) comes back as int64 Unix seconds.
    """
    header = names is None
    # only an empty field is missing: ids like "NA" or "null" stay ids
    options = dict(  # noqa: C408  (keyword form: these are read_csv's keyword arguments)
        sep=sep, encoding=encoding, header=0 if header else None, names=names, keep_default_na=False, na_values=[""]
    )
    try:
        found = list(pd.read_csv(path, nrows=0, **options).columns) if header else list(names)
        missing = [c for c in columns if c not in found]
        if missing:
            raise DataError(
                f"{path} has no column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
                f"columns are: {', '.join(map(repr, found))}. {fix or 'Rename the columns or pass the column names.'}"
            )
        # usecols would silently drop extra fields; without it a ragged line is an error
        usecols = list(columns) if set(found) - set(columns) else None
        with np.errstate(over="ignore", invalid="ignore"):  # e.g. 1e39 is inf in float32: the checks below report it
            frame = pd.read_csv(path, usecols=usecols, dtype={c: _KIND_DTYPE[k] for c, k in columns.items()}, **options)
    except DataError:
        raise
    except UnicodeDecodeError:
        raise _decode_error(path, encoding) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty; it should hold {_describe(columns, names)}") from None
    except pd.errors.ParserError as error:
        ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if not ragged:
            raise _locate_bad_line(path, options) or DataError(f"{path}: {_clean(error)}") from None
        raise DataError(
            f"{path}, line {ragged[2]}: {ragged[3]} fields, expected {ragged[1]}. "
            f"Fix that line (a stray separator {sep!r}? quote fields that contain it)"
        ) from None
    except (ValueError, TypeError, OverflowError) as error:
        raise _locate_bad_value(path, columns, options) or DataError(f"{path}: {_clean(error)}") from None
    if len(frame) == 0:
        raise DataError(f"{path} has no data rows; it should hold {_describe(columns, names)}")
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took the first field as an index: one field too many
        raise _locate_bad_line(path, options) or DataError(f"{path}: every line has more fields than {_describe(columns, names)}")
    checked = [c for c, k in columns.items() if k != "text"]
    if frame[checked].isna().to_numpy().any():
        raise _locate_bad_value(path, columns, options) or DataError(f"{path}: empty values in {checked}")
    for column in [c for c, k in columns.items() if k == "id"]:
        if (frame[column].cat.categories.astype(str).str.strip() == "").any():
            raise _locate_bad_value(path, columns, options) or DataError(f"{path}: whitespace-only {column} values")
        frame[column] = _strip_ids(frame[column], f"{path} ({column})")
    for column in [c for c, k in columns.items() if k == "float"]:
        if not _in_range(frame[column].to_numpy()).all():
            raise _locate_bad_value(path, columns, options) or DataError(f"{path}: {column} must be {_NEED['float']}")
    for column in [c for c, k in columns.items() if k == "time"]:
        seconds, bad = _parse_time(frame[column])
        if bad.any():
            raise _locate_bad_value(path, columns, options) or DataError(f"{path}: bad {column} values")
        frame[column] = seconds
    return frame


def _in_range(values: np.ndarray) -> np.ndarray:
    """Mask of "float" values that are finite with |value| <= RATING_LIMIT."""
    return np.isfinite(values) & (np.abs(values) <= RATING_LIMIT)


def _whole_numbers(text: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values, mask of entries that are whole numbers within int64) for stripped text."""
    whole = text.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
    fits = whole & (text.str.len().to_numpy() <= 18)  # up to 18 characters always fit
    longer = np.flatnonzero(whole & ~fits)
    if len(longer):
        digits = text.iloc[longer].str.lstrip("+-").str.lstrip("0").to_numpy(dtype=str)
        negative = text.iloc[longer].str.startswith("-").to_numpy(dtype=bool)
        limit = np.where(negative, str(-np.iinfo(np.int64).min), str(np.iinfo(np.int64).max))
        length = np.char.str_len(digits)
        fits[longer] = (length < 19) | ((length == 19) & (digits <= limit))  # equal lengths: text order is numeric order
    values = np.zeros(len(text), dtype=np.int64)
    values[fits] = text[fits].astype(np.int64).to_numpy()
    return values, fits


def _parse_time(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(Unix seconds as int64, mask of unparseable rows) for numbers or ISO dates.

    Whole numbers must fit int64 and are taken as they are; other finite numbers within
    int64 are floored; anything else must be an ISO 8601 date or date-time (UTC unless it
    says otherwise). ``inf``, ``nan`` and numbers beyond int64 are unparseable.
    """
    text = values.fillna("").astype(str).str.strip()
    seconds, fits = _whole_numbers(text)
    if fits.all():
        return seconds, ~fits
    whole = text.str.fullmatch(r"[+-]?\d+").to_numpy(dtype=bool)
    number = pd.to_numeric(text.where(~whole, "0"), errors="coerce").to_numpy(dtype=np.float64)
    numeric = ~whole & ~np.isnan(number)
    floored = numeric & (number >= -(2.0**63)) & (number < 2.0**63)  # inf and beyond would wrap to INT64_MIN
    seconds[floored] = np.floor(number[floored]).astype(np.int64)  # e.g. 964982703.0
    rest = ~whole & ~numeric
    dates = pd.to_datetime(text[rest], errors="coerce", utc=True, format="ISO8601")
    ok = dates.notna().to_numpy()
    seconds[np.flatnonzero(rest)[ok]] = ((dates[ok] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy()
    bad = (whole & ~fits) | (numeric & ~floored)
    bad[np.flatnonzero(rest)[~ok]] = True
    return seconds, bad


def _strip_ids(values: pd.Series, where: str) -> pd.Series:
    """A categorical id column without surrounding whitespace; warns how many values changed."""
    categories = values.cat.categories.astype(str)
    stripped = categories.str.strip()
    changed = np.asarray(categories != stripped)
    if not changed.any():
        return values
    codes = values.cat.codes.to_numpy()
    new_codes, uniques = pd.factorize(stripped)
    example, count = categories[changed][0], int(changed[codes].sum())
    logger.warning(
        "%s: stripped surrounding whitespace from %d id value%s (e.g. %r -> %r); ids never include it",
        where, count, "" if count == 1 else "s", example, example.strip(),
    )
    return pd.Series(pd.Categorical.from_codes(new_codes[codes], uniques), index=values.index, name=values.name)


def _locate_bad_value(path: Path, columns: dict[str, str], options: dict) -> DataError | None:
    """The first line whose id is empty or whitespace, or whose number does not parse or is
    out of range, as a DataError; a line with the wrong number of fields is named instead."""
    try:
        text = pd.read_csv(path, dtype=str, skip_blank_lines=False, **options).fillna("")
    except (ValueError, OverflowError):
        return _locate_bad_line(path, options)
    if any(c not in text.columns for c in columns):
        return None
    blank = (text == "").all(axis=1).to_numpy()
    first_line = 2 if options["header"] == 0 else 1
    worst: tuple[int, str, str, str] | None = None
    for column, kind in columns.items():
        if kind == "text":
            continue
        values = text[column]
        if kind == "id":
            bad = (values.str.strip() == "").to_numpy(dtype=bool)
        elif kind == "int":
            bad = ~_whole_numbers(values.str.strip())[1]
        elif kind == "time":
            bad = _parse_time(values)[1]
        else:
            bad = ~_in_range(pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64))
        rows = np.flatnonzero(bad & ~blank)
        if len(rows) and (worst is None or rows[0] < worst[0]):
            worst = (int(rows[0]), column, values.iloc[rows[0]], _NEED[kind])
    if worst is None:
        return None
    row, column, value, need = worst
    shape = _locate_bad_line(path, options, stop=row + first_line)
    if shape is not None:
        return shape
    what = "is empty" if value == "" else "is only whitespace" if value.strip() == "" else f"is {value!r}"
    return DataError(
        f"{path}, line {row + first_line}: {column} {what}, not {need}. Fix or delete that line."
    )


def _locate_bad_line(path: Path, options: dict, stop: int | None = None) -> DataError | None:
    """The first line (up to line ``stop``) whose number of fields differs from the header's
    or from ``names``, as a DataError naming the separator; None when there is none."""
    sep = options["sep"]
    if len(sep) != 1:
        return None
    expected = None if options["header"] == 0 else len(options["names"])
    try:
        with open(path, encoding=options["encoding"], newline="") as handle:
            reader = csv.reader(handle, delimiter=sep)
            for record in reader:
                if stop is not None and reader.line_num > stop:
                    break
                if not record:
                    continue
                if expected is None:
                    expected = len(record)
                elif len(record) != expected:
                    return DataError(
                        f"{path}, line {reader.line_num}: {len(record)} field{'s' if len(record) != 1 else ''}, expected {expected} "
                        f"separated by {_SEPARATOR_NAMES.get(sep, repr(sep))}{_separator_hint(sep.join(record), sep, expected)}. "
                        "Fix that line, or the separator"
                    )
    except (csv.Error, UnicodeDecodeError, OSError):
        return None
    return None


def _separator_hint(line: str, sep: str, expected: int) -> str:
    """' (it looks separated by spaces)' when another separator splits ``line`` into ``expected`` fields."""
    for other, name in _SEPARATOR_NAMES.items():
        if other != sep and len(line.split(None if other == " " else other)) == expected:
            return f" (it looks separated by {name})"
    return ""


def _decode_error(path: Path, encoding: str) -> DataError:
    """Where the file stops being ``encoding``, and how to fix it."""
    name = "UTF-8" if encoding.lower().replace("-", "").replace("_", "") == "utf8" else encoding
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as error:
                bad = raw[error.start : error.start + 1].hex()
                return DataError(
                    f"{path}, line {number}: not {name} "
                    f"(byte 0x{bad}); re-save the file as UTF-8 or pass encoding=... (e.g. encoding='latin-1')"
                )
    return DataError(f"{path}: not {name}; re-save the file as UTF-8 or pass encoding=...")


def _describe(columns: dict[str, str], names: list[str] | None) -> str:
    if names is not None:
        return f"lines of {', '.join(names)} (no header)"
    return f"a header line with {', '.join(columns)} and one row per line"


def _clean(error: Exception) -> str:
    return " ".join(str(error).split()).rstrip(".")


def _check_file(path: Path, what: str = "file") -> None:
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path ({what})")
    if path.is_dir():
        raise DataError(f"{path} is a directory, expected a {what}")


def _str_ids(values: pd.Series) -> pd.Series:
    """Ids as a str column; equal ids share one string object (cheap for millions of rows)."""
    codes, uniques = pd.factorize(values)
    vocabulary = pd.Index(np.asarray(uniques).astype(str).astype(object), dtype="str")
    return pd.Series(vocabulary.take(codes), copy=False)


def parse_count(text: str) -> int:
    """'5M' -> 5_000_000, '100k' -> 100_000, '20000000' or '20_000_000' -> 20_000_000."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMbB]?)\s*", str(text).replace("_", "").replace(",", ""))
    if not match:
        raise DataError(f"cannot read {text!r} as a count; write e.g. 100k, 5M or 20000000")
    scale = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9}[match.group(2).lower()]
    return int(round(float(match.group(1)) * scale))


# --------------------------------------------------------------------------- building


def _dataset(
    users: pd.Series,
    items: pd.Series,
    rating: np.ndarray,
    timestamp: np.ndarray,
    catalog: pd.DataFrame,
    name: str,
    source_dir: Path | None,
) -> Dataset:
    """Assemble a Dataset; items rated but absent from ``catalog`` join it with title = id."""
    interactions = pd.DataFrame(
        {
            "user_id": _str_ids(users),
            "item_id": _str_ids(items),
            "rating": np.asarray(rating, dtype=np.float32),
            "timestamp": np.asarray(timestamp, dtype=np.int64),
        },
        copy=False,
    )
    known = set(catalog["item_id"])
    extra = [i for i in pd.unique(interactions["item_id"]) if i not in known]
    if extra:
        extra_frame = pd.DataFrame({"item_id": extra, "title": extra, "text": extra, "category": ""})
        catalog = pd.concat([catalog, extra_frame], ignore_index=True)
    order = np.argsort(id_sort_key(catalog["item_id"]).to_numpy(), kind="stable")
    catalog = catalog.iloc[order].reset_index(drop=True)
    return Dataset(interactions=interactions, items=catalog, name=name, source_dir=source_dir)


def _catalog(item_id, title, genres: list[list[str]]) -> pd.DataFrame:
    """item_id, title, text = title + genre names, category = genres joined by '|'."""
    titles = pd.Series(title, dtype=str).fillna("").to_numpy(dtype=object)
    text = [" ".join([t, *(g for g in gs if g != NO_GENRES)]) for t, gs in zip(titles, genres)]
    return pd.DataFrame(
        {
            "item_id": pd.Series(item_id).astype(str).to_numpy(dtype=object),
            "title": titles,
            "text": np.array(text, dtype=object),
            "category": np.array(["|".join(gs) for gs in genres], dtype=object),
        }
    )


# --------------------------------------------------------------------------- MovieLens


def load_movielens(path: str | Path, encoding: str = "utf-8") -> Dataset:
    """A MovieLens directory in either layout.

    - 100K: ``u.data`` (tab separated user, item, rating, timestamp, no header), ``u.item``
      (pipe separated, latin-1: id, title, dates, URL, 19 genre flags) and ``u.genre``
      (genre names; the standard 19 are used when it is missing).
    - CSV (ml-latest, ml-25m, ...): ``ratings.csv`` (userId, movieId, rating, timestamp)
      and ``movies.csv`` (movieId, title, genres separated by '|'), read with ``encoding``.

    Items: ``text`` = title and genre names separated by spaces (what content models
    read, e.g. "Toy Story (1995) Animation Children's Comedy"), ``category`` = genres
    joined by '|'. The name is the directory name; ``source_dir`` is the directory, so the
    official splits (u1..u5, ua, ub) can find their files. A directory holding both
    ``u.data`` and ``ratings.csv`` is refused (DataError), never guessed.
    """
    directory = Path(path)
    if not directory.exists():
        raise DataError(f"{directory} does not exist; pass a MovieLens directory (e.g. .../ml-100k)")
    if not directory.is_dir():
        raise DataError(
            f"{directory} is a file; load_movielens wants the MovieLens directory holding it "
            "(use load_ratings_csv for a single ratings file)"
        )
    if (directory / "u.data").exists() and (directory / "ratings.csv").exists():
        raise DataError(
            f"{directory} holds both u.data (MovieLens 100K) and ratings.csv (MovieLens CSV); "
            "it is not clear which to load: move one layout's files to a directory of their own"
        )
    if (directory / "u.data").exists():
        return _load_100k(directory)
    if (directory / "ratings.csv").exists():
        return _load_csv_layout(directory, encoding)
    present = sorted(p.name for p in directory.iterdir())[:20]
    raise DataError(
        f"{directory} is not a MovieLens directory: expected u.data + u.item (+ u.genre) "
        f"(MovieLens 100K) or ratings.csv + movies.csv (MovieLens CSV releases); "
        f"found {', '.join(present) if present else 'nothing'}"
    )


def _require(directory: Path, name: str, layout: str) -> Path:
    file = directory / name
    if not file.exists():
        raise DataError(f"{file} does not exist; the {layout} layout needs it next to the ratings file")
    return file


def _load_100k(directory: Path) -> Dataset:
    names = ["user_id", "item_id", "rating", "timestamp"]
    ratings = _read_table(
        directory / "u.data",
        {"user_id": "int", "item_id": "int", "rating": "float", "timestamp": "int"},
        sep="\t",
        names=names,
    )
    genres = list(ML100K_GENRES)
    genre_file = directory / "u.genre"
    if genre_file.exists():
        pairs = [line.rsplit("|", 1) for line in genre_file.read_text(encoding="latin-1").splitlines() if line.strip()]
        try:
            genres = [name for name, _ in sorted(pairs, key=lambda pair: int(pair[1]))]
        except (ValueError, IndexError):
            raise DataError(f"{genre_file}: expected lines 'genre name|index'") from None
    item_file = _require(directory, "u.item", "MovieLens 100K")
    flag_names = [f"genre{k}" for k in range(len(genres))]
    item_names = ["item_id", "title", "release_date", "video_release_date", "url", *flag_names]
    columns = {"item_id": "int", "title": "text", **dict.fromkeys(flag_names, "int")}
    items = _read_table(item_file, columns, sep="|", names=item_names, encoding="latin-1")
    flags = items[flag_names].to_numpy() != 0
    genre_lists = [[genres[k] for k in np.flatnonzero(row)] for row in flags]
    catalog = _catalog(items["item_id"], items["title"], genre_lists)
    return _dataset(
        ratings["user_id"], ratings["item_id"], ratings["rating"].to_numpy(), ratings["timestamp"].to_numpy(),
        catalog, directory.resolve().name, directory,
    )


def _load_csv_layout(directory: Path, encoding: str) -> Dataset:
    ratings = _read_table(
        directory / "ratings.csv",
        {"userId": "int", "movieId": "int", "rating": "float", "timestamp": "int"},
        encoding=encoding,
        fix="A MovieLens ratings.csv has the header userId,movieId,rating,timestamp.",
    )
    movies = _read_table(
        _require(directory, "movies.csv", "MovieLens CSV"),
        {"movieId": "int", "title": "text", "genres": "text"},
        encoding=encoding,
        fix="A MovieLens movies.csv has the header movieId,title,genres.",
    )
    genre_lists = [g.split("|") if g else [] for g in movies["genres"].fillna("").to_numpy()]
    catalog = _catalog(movies["movieId"], movies["title"], genre_lists)
    return _dataset(
        ratings["userId"], ratings["movieId"], ratings["rating"].to_numpy(), ratings["timestamp"].to_numpy(),
        catalog, directory.resolve().name, directory,
    )


# --------------------------------------------------------------------------- generic CSV


def load_ratings_csv(
    path: str | Path,
    user_col: str = "user_id",
    item_col: str = "item_id",
    rating_col: str | None = "rating",
    timestamp_col: str | None = None,
    sep: str = ",",
    items_path: str | Path | None = None,
    title_col: str = "title",
    text_col: str | None = None,
    category_col: str | None = None,
    encoding: str = "utf-8",
    name: str | None = None,
) -> Dataset:
    """Interactions from a CSV with a header line, with the columns named by the arguments.

    - ids are kept as text (any string) without surrounding whitespace (stripped, with a
      warning); an empty or whitespace-only id is an error.
    - ``rating_col=None``: implicit feedback, every rating 1.0. A named rating column must
      exist and hold finite numbers with |rating| <= `RATING_LIMIT` (1e6).
    - ``timestamp_col=None``: the row order is the time (0, 1, ...). A named timestamp
      column holds numbers within int64 (e.g. Unix seconds; fractions are floored) or ISO
      8601 dates (turned into Unix seconds, UTC unless they say otherwise).
    - ``items_path``: a CSV (same ``sep`` and ``encoding``) with ``item_col``, and
      optionally ``title_col``, ``text_col``, ``category_col``; text defaults to the title
      plus the category words. Without it the catalog is the rated items, title = id.
    """
    file = Path(path)
    _check_file(file, "ratings CSV")
    columns = {user_col: "id", item_col: "id"}
    if rating_col is not None:
        columns[rating_col] = "float"
    if timestamp_col is not None:
        columns[timestamp_col] = "time"
    fix = ("Pass user_col=, item_col=, rating_col= (None for implicit data) or timestamp_col= to map yours "
           "(on the command line: --columns user=COL,item=COL,rating=COL,time=COL).")
    frame = _read_table(file, columns, sep=sep, encoding=encoding, fix=fix)
    n = len(frame)
    rating = np.ones(n, np.float32) if rating_col is None else frame[rating_col].to_numpy(np.float32)
    timestamp = np.arange(n, dtype=np.int64) if timestamp_col is None else frame[timestamp_col].to_numpy()
    if items_path is None:
        ids = pd.unique(frame[item_col].astype(str))
        catalog = pd.DataFrame({"item_id": ids, "title": ids, "text": ids, "category": ""})
    else:
        catalog = _read_items(Path(items_path), item_col, title_col, text_col, category_col, sep, encoding)
    return _dataset(frame[user_col], frame[item_col], rating, timestamp, catalog, name or file.stem, file.parent)


def _read_items(
    file: Path, item_col: str, title_col: str, text_col: str | None, category_col: str | None, sep: str, encoding: str
) -> pd.DataFrame:
    _check_file(file, "items CSV")
    try:
        found = set(pd.read_csv(file, nrows=0, sep=sep, encoding=encoding).columns)
    except UnicodeDecodeError:
        raise _decode_error(file, encoding) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{file} is empty; it should hold a header with {item_col!r} and one item per line") from None
    columns = {item_col: "id"}
    for col in (title_col, text_col, category_col):  # title is optional, the others must exist when named
        if col is not None and (col in found or col != title_col):
            columns[col] = "text"
    frame = _read_table(file, columns, sep=sep, encoding=encoding, fix="Pass title_col=, text_col=, category_col=.")
    ids = frame[item_col].astype(str).to_numpy(dtype=object)
    title = frame[title_col].fillna("").astype(str).to_numpy(dtype=object) if title_col in columns else ids
    no_category = np.full(len(ids), "", dtype=object)
    category = frame[category_col].fillna("").astype(str).to_numpy(dtype=object) if category_col else no_category
    if text_col:
        text = frame[text_col].fillna("").astype(str).to_numpy(dtype=object)
    else:
        text = np.array([" ".join([t, *c.replace("|", " ").split()]) for t, c in zip(title, category)], dtype=object)
    return pd.DataFrame({"item_id": ids, "title": title, "text": text, "category": category}).drop_duplicates(
        "item_id", ignore_index=True
    )


# --------------------------------------------------------------------------- specs


def load_data(spec: str | Path, columns: dict[str, str | None] | None = None) -> Dataset:
    """A Dataset from a short spec.

    - ``"demo"``: the notebook's toy data (`load_demo`);
    - ``"synthetic:N"`` with N like 100k, 5M, 20000000: `make_synthetic(N)`;
    - a directory: `load_movielens`;
    - a ``.csv`` file: `load_ratings_csv` with columns user_id, item_id (or MovieLens'
      userId, movieId), ``rating`` (implicit 1.0 when the file has no rating column) and
      ``timestamp`` when present (else the row order). ``columns`` names other columns:
      a dict with keys ``user``, ``item``, ``rating``, ``time`` (any subset; ``rating`` or
      ``time`` None: implicit feedback, row order; see ``tfrec.data.csv_columns``); it
      applies to a CSV file only (``DataError`` otherwise).
    """
    text = str(spec)
    if columns is not None and not text.lower().endswith(".csv"):
        raise DataError(f"columns (--columns) apply to a ratings .csv file, not to {text!r}")
    unknown = sorted(set(columns or {}) - set(COLUMN_KEYS))
    if unknown:
        raise DataError(f"columns: unknown key(s) {', '.join(map(repr, unknown))}; keys are {', '.join(COLUMN_KEYS)}")
    if text == "demo":
        from tfrec.data.demo import load_demo

        return load_demo()
    if text.startswith("synthetic:"):
        from tfrec.data.synthetic import make_synthetic

        return make_synthetic(parse_count(text.split(":", 1)[1]))
    path = Path(text)
    if path.is_dir():
        return load_movielens(path)
    if path.suffix.lower() == ".csv":
        _check_file(path, "ratings CSV")
        try:
            found = set(pd.read_csv(path, nrows=0).columns)
        except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError):
            found = set()  # load_ratings_csv reports it
        movielens = {"userId", "movieId"} <= found and not {"user_id", "item_id"} & found
        user_col, item_col = ("userId", "movieId") if movielens else ("user_id", "item_id")
        rating_col = None if found and "rating" not in found else "rating"
        timestamp_col = "timestamp" if "timestamp" in found else None
        if columns:
            user_col, item_col = columns.get("user", user_col), columns.get("item", item_col)
            rating_col, timestamp_col = columns.get("rating", rating_col), columns.get("time", timestamp_col)
        return load_ratings_csv(
            path, user_col=user_col, item_col=item_col, rating_col=rating_col, timestamp_col=timestamp_col
        )
    if not path.exists():
        raise DataError(
            f"{text!r} is not a data spec and no such path exists; use 'demo', 'synthetic:N' (e.g. synthetic:5M), "
            "a MovieLens directory or a ratings .csv file"
        )
    raise DataError(f"{path}: unsupported file type {path.suffix!r}; pass a MovieLens directory or a .csv file")
