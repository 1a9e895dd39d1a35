"""`itemvec prepare ratings`: explicit ratings → a ratings DATA_DIR (users, items, seeded train/validation/test).

Formats (``--format``):

- ``movielens-100k``: the ml-100k folder. ``u.data`` (tab-separated ``user item rating timestamp``), ``u.item``
  (``|``-separated, latin-1: ``id|title|release date|video release date|IMDb URL|`` and 19 genre flags),
  ``u.user`` (``id|age|gender|occupation|zip``). ``ua.base,ua.test`` (also ``ub``, ``u1``..``u5``) are the
  published splits, in the format of ``u.data``. Scale 1–5.
- ``movielens-csv``: a folder with ``ratings.csv`` (``userId,movieId,rating,timestamp``) and an optional
  ``movies.csv`` (``movieId,title,genres`` with genres joined by ``|``). Scale 0.5–5 (half stars).
- ``csv``: one CSV file with a header; ``columns`` maps the roles user / item / rating / timestamp to header
  names (timestamp optional). Scale: the data's min and max.
- ``amazon-reviews``: Amazon review JSON lines (plain or gzip) with ``reviewerID``, ``asin``, ``overall``,
  ``unixReviewTime``; ``metadata`` an Amazon 2014/2018 metadata file joined by asin (title, brand, category).
  Scale 1–5.

The catalogue is every item rated plus every item of the metadata file (``u.item``, ``movies.csv``, the Amazon
metadata), rated or not; users likewise (``u.user``). Dense ids are ``int32`` in the order of the original ids
(numeric order when every id is a whole number, text order otherwise), so they do not depend on row order.

Bad rows (wrong field count, a rating that is not a number or is off the scale, unparsable JSON, a missing
field) are rejected and counted by reason, with the first examples as ``file:line: what``; rows read = parsed +
rejected. Two ratings of one (user, item) keep the latest by timestamp (the later row on a tie) and count as
``duplicates``.

Splits (``split_ratings``): ``random`` (seeded: ``test_fraction`` of all ratings, then ``validation_fraction``
of the rest); ``temporal`` (per user, the latest ``test_fraction`` of the user's ratings, at least one when the
user has two or more, then the latest ``validation_fraction`` of the remainder; ties in time are broken by item
id); ``files`` (train and test exactly as two given files; validation carved from train, seeded, when
``validation_fraction`` > 0).

Memory while reading: the two id maps (one dict entry per user / item) and 29 bytes per rating row (int32 user,
int32 item, float64 rating, int64 timestamp, int8 part, int32 row order once sorted); the raw files are streamed.
"""

from __future__ import annotations

import csv
import math
import re
import time
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from itemvec.data.amazon import RecordError, detect_format, parse_line
from itemvec.data.pairs import IdMap
from itemvec.data.prepare import (
    DEFAULT_MAX_BAD_FRACTION,
    ReadReport,
    _read_lines,
    _stderr,
    finish_data_dir,
    peak_rss_mb,
)
from itemvec.data.store import RatingsDir  # noqa: F401 (re-exported: reading a ratings DATA_DIR)
from itemvec.errors import ConfigError, InputError
from itemvec.outputs import OutputFolder, check_output

FORMATS = ("movielens-100k", "movielens-csv", "csv", "amazon-reviews")
SPLITS = ("random", "temporal", "files")
PARTS = ("train", "validation", "test")
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_VALIDATION_FRACTION = 0.05  # random and temporal; 0 for files
DEFAULT_THRESHOLD = 4.0
# The rating scale per format; None: the data's min and max.
SCALES: dict[str, tuple[float, float] | None] = {
    "movielens-100k": (1.0, 5.0), "movielens-csv": (0.5, 5.0), "amazon-reviews": (1.0, 5.0), "csv": None}
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                 "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
                 "War", "Western")
# "unknown" (u.item) and "(no genres listed)" (movies.csv) mean no genre: they become an empty list.
NO_GENRE = {"unknown", "(no genres listed)"}
COLUMN_ROLES = ("user", "item", "rating", "timestamp")
DEFAULT_COLUMNS = {role: role for role in COLUMN_ROLES}
YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
RELEASE_DATE = re.compile(r"^\s*\d{1,2}-[A-Za-z]{3}-(\d{4})\s*$")


def age_bucket(age: int | None) -> str | None:
    """The MovieLens 1M age groups: "<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"."""
    if age is None:
        return None
    for upper, name in ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55")):
        if age < upper:
            return name
    return "56+"


def title_year(title: str | None, release_date: str | None = None) -> int | None:
    """The year of a title ending in "(1995)" (or "(2006-2007)"), else of a release date such as 01-Jan-1995."""
    for text, pattern in ((title, YEAR_IN_TITLE), (release_date, RELEASE_DATE)):
        match = pattern.search(text) if text else None
        if match:
            return int(match.group(1))
    return None


def parse_columns(text: str | None) -> dict[str, str]:
    """``"user=userId,item=movieId,rating=stars"`` → role → header name (unnamed roles keep their defaults).

    The timestamp column is optional under its default name "timestamp" (timestamps are then 0); a column
    named otherwise must exist."""
    columns = dict(DEFAULT_COLUMNS)
    if text is None or not text.strip():
        return columns
    for part in text.split(","):
        role, sep, name = (s.strip() for s in part.partition("="))
        if not sep or not name or role not in COLUMN_ROLES:
            raise ConfigError(f"--columns: expected ROLE=HEADER with ROLE one of {', '.join(COLUMN_ROLES)}, "
                              f"got {part.strip()!r}")
        columns[role] = name
    return columns


def _delimiter(text: str) -> str:
    text = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(text, text)
    if len(text) != 1:
        raise ConfigError(f"--delimiter: expected one character (or 'tab'), got {text!r}")
    return text


# ---------------------------------------------------------------- reading


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the ratings' column type
MAX_AGE = 150  # older is not an age (u.user's column is int16)


def _short(value, limit: int = 20) -> str:
    """``repr`` of a rejected value, cut to ``limit`` characters (never raises, not even for a huge int)."""
    try:
        text = value if isinstance(value, str) else str(value)
    except (ValueError, RecursionError):  # an integer of over 4,300 digits
        text = f"<{type(value).__name__}>"
    return repr(text[:limit])


def _rating(text, scale: tuple[float, float] | None) -> float:
    if isinstance(text, bool):
        raise _Reject("bad_rating", f"rating {text!r} is not a number")
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise _Reject("bad_rating", f"rating {_short(text)} is not a number") from None
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:  # ratings are stored as float32
        raise _Reject("bad_rating", f"rating {_short(text)} is not a finite number that float32 holds")
    if scale is not None and not scale[0] <= value <= scale[1]:
        raise _Reject("rating_out_of_range", f"rating {value:g} is outside the scale {scale[0]:g}-{scale[1]:g}")
    return value


def _seconds(value: int, text) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Reject("bad_timestamp", f"timestamp {_short(text, 30)} is beyond the int64 range of Unix seconds")
    return value


def _timestamp(text) -> int:
    """Unix seconds (whole or fractional, truncated) or an ISO 8601 time; empty or None is 0 (unknown).

    A time beyond int64 seconds (a 20-digit number, 1e300) is rejected as ``bad_timestamp``."""
    if text is None or text == "":
        return 0
    if isinstance(text, bool):
        raise _Reject("bad_timestamp", f"timestamp {text!r} is not a time")
    if isinstance(text, int):
        return _seconds(text, text)
    if isinstance(text, str):
        digits = text.strip().lstrip("+-").lstrip("0")
        if len(digits) > 19 and digits.isdecimal():  # beyond int64 (and int() of 4,300 digits would raise)
            raise _Reject("bad_timestamp", f"timestamp {_short(text, 30)} is beyond the int64 range of Unix "
                                           "seconds")
    try:
        return _seconds(int(text), text)
    except (TypeError, ValueError):
        pass
    try:
        value = float(text)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(str(text))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp())
        except (ValueError, OverflowError):  # not ISO 8601, or a year beyond the datetime range once in UTC
            raise _Reject("bad_timestamp", f"timestamp {_short(text, 30)} is neither Unix seconds nor an ISO "
                                           "8601 time") from None
    if not math.isfinite(value):
        raise _Reject("bad_timestamp", f"timestamp {_short(text, 30)} is not a finite number")
    return _seconds(int(value), text)


def _split_csv(text: str, delimiter: str) -> list[str]:
    if '"' in text:
        try:
            return next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error as exc:  # a carriage return inside a quoted field, ...
            raise _Reject("parse_error", f"not a CSV row ({exc})") from None
    return text.split(delimiter)


def _header_text(line: bytes) -> str:
    """A header line: a header names columns (it is not data), so a stray non-UTF-8 byte in it is replaced
    rather than making the next data line the header."""
    return line.decode("utf-8", errors="replace")


class _RatingLog:
    """Rating rows appended while streaming (codes of the two id maps, in order of first appearance)."""

    def __init__(self) -> None:
        self.user = array("i")
        self.item = array("i")
        self.rating = array("d")
        self.timestamp = array("q")
        self.part = array("b")

    def adder(self, users: IdMap, items: IdMap) -> Callable[[str, str, float, int, int], None]:
        """``add(user id, item id, rating, timestamp, part)``, with the appends bound once (the hot loop)."""
        add_user, add_item = users.add, items.add
        user, item, rating = self.user.append, self.item.append, self.rating.append
        timestamp, part = self.timestamp.append, self.part.append

        def add(user_id: str, item_id: str, value: float, when: int, code: int) -> None:
            user(add_user(user_id))
            item(add_item(item_id))
            rating(value)
            timestamp(when)
            part(code)

        return add

    def arrays(self) -> dict[str, np.ndarray]:
        return {"user": np.frombuffer(self.user, np.int32), "item": np.frombuffer(self.item, np.int32),
                "rating": np.frombuffer(self.rating, np.float64),
                "timestamp": np.frombuffer(self.timestamp, np.int64), "part": np.frombuffer(self.part, np.int8)}


class _Catalogue:
    """Id maps and side columns keyed by id-map code; ``rows`` holds the ratings."""

    def __init__(self) -> None:
        self.users = IdMap()
        self.items = IdMap()
        self.rows = _RatingLog()
        self.item_side: dict[int, dict] = {}
        self.user_side: dict[int, dict] = {}
        self.header_lines = 0
        self.metadata_duplicates = 0

    def add_item_side(self, item_id: str, fields: dict) -> None:
        code = self.items.add(item_id)
        side = self.item_side.get(code)
        if side is None:
            self.item_side[code] = fields
            return
        self.metadata_duplicates += 1  # fields merge: the first line wins, later lines fill what it lacked
        for name, value in fields.items():
            if side.get(name) in (None, []):
                side[name] = value


def _read_ml100k_ratings(lines, cat: _Catalogue, report: ReadReport, part_of: dict[str, int], scale) -> None:
    add = cat.rows.adder(cat.users, cat.items)
    for reader, where, line in lines:
        try:
            fields = line.decode("utf-8").split("\t")
            if len(fields) != 4:
                raise _Reject("bad_fields", f"expected 4 tab-separated fields (user item rating timestamp), "
                                            f"found {len(fields)}")
            user, item = fields[0].strip(), fields[1].strip()
            if not user or not item:
                raise _Reject("missing_field", "empty user or item id")
            rating = _rating(fields[2].strip(), scale)
            timestamp = _timestamp(fields[3].strip())
        except UnicodeDecodeError:
            report.reject("bad_encoding", where, "not UTF-8")
            continue
        except _Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        report.records_parsed += 1
        add(user, item, rating, timestamp, part_of[str(reader.path)])


def _read_csv_ratings(lines, cat: _Catalogue, report: ReadReport, part_of: dict[str, int], scale,
                      columns: dict[str, str], delimiter: str) -> None:
    """CSV files with a header line each; ``columns`` names the header of each role."""
    add = cat.rows.adder(cat.users, cat.items)
    current = None
    position: dict[str, int] = {}
    n_fields = 0
    for reader, where, line in lines:
        if reader is not current:  # the first record of each file is its header
            current = reader
            try:
                fields = _split_csv(_header_text(line), delimiter)
            except _Reject as exc:
                raise InputError(f"{where}: the header line is {exc}") from None
            header = [f.strip() for f in fields]
            position = {}
            for role in COLUMN_ROLES:
                if columns[role] in header:
                    position[role] = header.index(columns[role])
                elif role != "timestamp" or columns[role] != "timestamp":  # a renamed timestamp must exist
                    raise InputError(f"{where}: header {header} has no column {columns[role]!r} for the {role}; "
                                     "name the columns with --columns user=...,item=...,rating=...[,timestamp=...]"
                                     + (" and --delimiter" if len(header) == 1 else ""))
            n_fields = len(header)
            report.records_read -= 1  # a header is not a record
            cat.header_lines += 1
            continue
        try:
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Reject("bad_encoding", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
            fields = _split_csv(text, delimiter)
            if len(fields) != n_fields:
                raise _Reject("bad_fields", f"expected {n_fields} fields as the header, found {len(fields)}")
            user, item = fields[position["user"]].strip(), fields[position["item"]].strip()
            if not user or not item:
                raise _Reject("missing_field", "empty user or item id")
            rating = _rating(fields[position["rating"]].strip(), scale)
            timestamp = _timestamp(fields[position["timestamp"]].strip()) if "timestamp" in position else 0
        except _Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        report.records_parsed += 1
        add(user, item, rating, timestamp, part_of[str(reader.path)])


def _read_amazon_reviews(lines, cat: _Catalogue, report: ReadReport, part_of: dict[str, int], scale) -> None:
    add = cat.rows.adder(cat.users, cat.items)
    for reader, where, line in lines:
        try:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as bad:
                    raise _Reject("bad_encoding", f"not UTF-8 ({bad.reason} at byte {bad.start})") from None
                raise _Reject("parse_error", f"not JSON ({exc})") from None
            if not isinstance(record, dict):
                raise _Reject("not_a_record", f"expected a JSON object, found {type(record).__name__}")
            missing = [k for k in ("reviewerID", "asin", "overall")
                       if record.get(k) is None or (isinstance(record[k], str) and not record[k].strip())]
            if missing:
                raise _Reject("missing_field", f"no {', '.join(missing)}")
            user, item = record["reviewerID"], record["asin"]
            for name, value in (("reviewerID", user), ("asin", item)):
                if not isinstance(value, str):  # a list or a number would become its str(): another id
                    raise _Reject("bad_id", f"{name} is a {type(value).__name__} ({_short(value)}), not a string")
            user, item = user.strip(), item.strip()
            rating = _rating(record["overall"], scale)
            timestamp = _timestamp(record.get("unixReviewTime"))
        except _Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        report.records_parsed += 1
        add(user, item, rating, timestamp, part_of[str(reader.path)])


def read_rating_lines(lines, fmt: str, cat: _Catalogue, report: ReadReport, part_of: dict[str, int], *,
                      columns: dict[str, str] | None = None, delimiter: str = ",") -> None:
    """Read the rating rows of ``lines`` (from ``_read_lines``) in format ``fmt`` into ``cat``; ``part_of``
    maps each file to its part code (0 train, 2 test). ``columns`` and ``delimiter`` apply to ``csv``."""
    scale = SCALES[fmt]
    if fmt == "movielens-100k":
        _read_ml100k_ratings(lines, cat, report, part_of, scale)
    elif fmt == "amazon-reviews":
        _read_amazon_reviews(lines, cat, report, part_of, scale)
    elif fmt == "movielens-csv":
        movielens = {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"}
        _read_csv_ratings(lines, cat, report, part_of, scale, movielens, ",")
    else:
        _read_csv_ratings(lines, cat, report, part_of, scale, columns or parse_columns(None), delimiter)


def _read_u_item(lines, cat: _Catalogue, report: ReadReport) -> None:
    n_fields = 5 + len(ML100K_GENRES)
    for _reader, where, line in lines:
        fields = line.decode("latin-1").split("|")  # latin-1 decodes every byte: no encoding rejects
        if len(fields) != n_fields:
            report.reject("bad_fields", where, f"expected {n_fields} '|'-separated fields (id|title|release "
                                               f"date|video date|url| 19 genre flags), found {len(fields)}")
            continue
        flags = [f.strip() for f in fields[5:]]
        if any(f not in ("0", "1") for f in flags):
            report.reject("bad_genre_flags", where, "genre flags must be 0 or 1")
            continue
        item = fields[0].strip()
        if not item:
            report.reject("missing_field", where, "empty movie id")
            continue
        report.records_parsed += 1
        title = fields[1].strip() or None
        genres = [g for g, f in zip(ML100K_GENRES, flags) if f == "1" and g not in NO_GENRE]
        cat.add_item_side(item, {"title": title, "genres": genres, "year": title_year(title, fields[2])})


def _read_u_user(lines, cat: _Catalogue, report: ReadReport) -> None:
    for _reader, where, line in lines:
        fields = [f.strip() for f in line.decode("latin-1").split("|")]
        if len(fields) != 5:
            report.reject("bad_fields", where, f"expected 5 '|'-separated fields (id|age|gender|occupation|zip), "
                                               f"found {len(fields)}")
            continue
        if not fields[0]:
            report.reject("missing_field", where, "empty user id")
            continue
        if fields[1] and not (fields[1].isascii() and fields[1].isdigit()):
            report.reject("bad_age", where, f"age {fields[1][:20]!r} is not a whole number")
            continue
        age = None
        if fields[1]:
            digits = fields[1].lstrip("0") or "0"
            if len(digits) > 3 or int(digits) > MAX_AGE:  # int() of 4,300 digits would raise
                report.reject("bad_age", where, f"age {fields[1][:20]!r} is not an age (0-{MAX_AGE})")
                continue
            age = int(digits)
        report.records_parsed += 1
        code = cat.users.add(fields[0])
        if code in cat.user_side:
            cat.metadata_duplicates += 1
            continue
        cat.user_side[code] = {"age": age, "gender": fields[2] or None, "occupation": fields[3] or None,
                               "zip": fields[4] or None}


def _read_movies_csv(lines, cat: _Catalogue, report: ReadReport) -> None:
    header_seen = False
    for _reader, where, line in lines:
        if not header_seen:
            header_seen = True
            if _header_text(line).split(",", 1)[0].strip().strip('"') == "movieId":
                report.records_read -= 1
                cat.header_lines += 1
                continue
        try:
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Reject("bad_encoding", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
            fields = _split_csv(text, ",")
        except _Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        if len(fields) != 3:
            report.reject("bad_fields", where, f"expected 3 fields (movieId,title,genres), found {len(fields)}")
            continue
        item = fields[0].strip()
        if not item:
            report.reject("missing_field", where, "empty movie id")
            continue
        report.records_parsed += 1
        title = fields[1].strip() or None
        genres = [g for g in (s.strip() for s in fields[2].split("|")) if g and g not in NO_GENRE]
        cat.add_item_side(item, {"title": title, "genres": genres, "year": title_year(title)})


def _read_amazon_metadata(lines, cat: _Catalogue, report: ReadReport) -> None:
    fmt = None
    for _reader, where, line in lines:
        if fmt is None:
            fmt = detect_format(line)
        try:
            product = parse_line(line, fmt)
        except RecordError as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        report.records_parsed += 1
        if product.nulled or product.dropped_ids:
            report.note_product(product, where)
        path = product.categories[0] if product.categories else None
        category = " > ".join(c.strip() for c in path if c.strip()) if path else None
        cat.add_item_side(product.asin, {"title": product.title, "genres": [], "year": None,
                                         "brand": product.brand, "category": category or None})


def _resolve(base: Path, name: str) -> Path:
    path = Path(name)
    if path.is_absolute() or path.exists():
        return path
    return base / name


def _input_files(path: Path, fmt: str, split: str, split_files: Sequence[str] | None, metadata):
    """(rating files with their part codes, metadata readers [(path, reader)])."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    folder_formats = ("movielens-100k", "movielens-csv")
    if fmt in folder_formats and not path.is_dir():
        raise InputError(f"{path}: --format {fmt} expects the data set's folder "
                         f"(with {'u.data' if fmt == 'movielens-100k' else 'ratings.csv'}), not a file")
    if fmt not in folder_formats and path.is_dir() and split != "files":
        raise InputError(f"{path}: is a folder; --format {fmt} expects one file")
    if metadata is not None and fmt != "amazon-reviews":
        raise ConfigError("--metadata applies to --format amazon-reviews (MovieLens folders bring their own "
                          "u.item / movies.csv)")
    base = path if path.is_dir() else path.parent
    if split == "files":
        if not split_files or len(split_files) != 2:
            raise ConfigError("--split files needs --split-files TRAIN,TEST (two file names, e.g. ua.base,ua.test)")
        ratings = [(_resolve(base, split_files[0]), 0), (_resolve(base, split_files[1]), 2)]
        for p, _ in ratings:
            if not p.is_file():
                raise InputError(f"{p}: no such file (from --split-files)")
    elif split_files:
        raise ConfigError(f"--split-files applies to --split files, not --split {split}")
    else:
        main = {"movielens-100k": base / "u.data", "movielens-csv": base / "ratings.csv"}.get(fmt, path)
        if not main.is_file():
            raise InputError(f"{main}: no such file; is {path} the right folder for --format {fmt}?")
        ratings = [(main, 0)]
    side = []
    if fmt == "movielens-100k":
        side = [(p, r) for p, r in ((base / "u.item", _read_u_item), (base / "u.user", _read_u_user)) if p.is_file()]
    elif fmt == "movielens-csv" and (base / "movies.csv").is_file():
        side = [(base / "movies.csv", _read_movies_csv)]
    elif metadata is not None:
        if not Path(metadata).is_file():
            raise InputError(f"{metadata}: no such file (--metadata)")
        side = [(Path(metadata), _read_amazon_metadata)]
    return ratings, side


# ---------------------------------------------------------------- ids, duplicates, splits


def _id_order(keys: list[str]) -> np.ndarray:
    """Rank of each key in numeric order (all whole numbers) or text order: ``rank[code] = dense id``."""
    if keys and all(k.isascii() and k.isdigit() for k in keys):
        # Numeric order without int(): a whole number is ordered by its length without leading zeros, then
        # by its digits (int() refuses ids of over 4,300 digits).
        order = sorted(range(len(keys)), key=lambda i: (len(keys[i].lstrip("0")), keys[i].lstrip("0"), keys[i]))
    else:
        order = sorted(range(len(keys)), key=keys.__getitem__)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(keys))
    return rank


def latest_unique(user: np.ndarray, item: np.ndarray, timestamp: np.ndarray, n_items: int) -> np.ndarray:
    """Row indices that keep one rating per (user, item): the latest by timestamp, the later row on a tie.
    Returned sorted by row."""
    key = user.astype(np.int64) * np.int64(max(n_items, 1)) + item.astype(np.int64)
    order = np.lexsort((np.arange(len(key)), timestamp, key))
    sorted_key = key[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_key[1:] != sorted_key[:-1]
    return np.sort(order[last])


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def split_ratings(user: np.ndarray, timestamp: np.ndarray, kind: str, *, test_fraction: float = DEFAULT_TEST_FRACTION,
                  validation_fraction: float = DEFAULT_VALIDATION_FRACTION, seed: int = 0,
                  file_part: np.ndarray | None = None) -> np.ndarray:
    """The part of each rating: (n,) int8, 0 train, 1 validation, 2 test.

    ``random``: a seeded permutation; the first ``round(n * test_fraction)`` go to test, then
    ``round(rest * validation_fraction)`` to validation. ``temporal``: per user, by (timestamp, then position in
    the input, so callers order ties), the latest ``round(n_u * test_fraction)`` ratings go to test (at least one
    when the user has two or more and test_fraction > 0, never all), then the latest
    ``round(rest_u * validation_fraction)`` of the rest to validation (never the last train rating).
    ``files``: ``file_part`` (0 train / 2 test) as given; validation drawn from train, seeded.
    """
    n = len(user)
    part = np.zeros(n, dtype=np.int8)
    rng = np.random.default_rng(seed)
    if kind == "random":
        order = rng.permutation(n)
        n_test = int(_round_half_up(n * test_fraction))
        rest = order[n_test:]
        n_val = int(_round_half_up(len(rest) * validation_fraction))
        part[order[:n_test]] = 2
        part[rest[:n_val]] = 1
    elif kind == "temporal":
        user = np.asarray(user, dtype=np.int64)
        order = np.lexsort((np.arange(n), np.asarray(timestamp), user))
        sorted_user = user[order]
        n_users = int(user.max()) + 1 if n else 0
        counts = np.bincount(user, minlength=n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        from_end = counts[sorted_user] - 1 - (np.arange(n) - starts[sorted_user])
        n_test = _round_half_up(counts * test_fraction)
        if test_fraction > 0:
            n_test = np.where(counts >= 2, np.clip(n_test, 1, np.maximum(counts - 1, 1)), 0)
        rest = counts - n_test
        n_val = np.minimum(_round_half_up(rest * validation_fraction), np.maximum(rest - 1, 0))
        sorted_part = np.where(from_end < n_test[sorted_user], 2,
                               np.where(from_end < (n_test + n_val)[sorted_user], 1, 0)).astype(np.int8)
        part[order] = sorted_part
    elif kind == "files":
        if file_part is None:
            raise ValueError("split 'files' needs file_part")
        part[:] = file_part
        train = np.flatnonzero(part == 0)
        n_val = int(_round_half_up(len(train) * validation_fraction))
        part[train[rng.permutation(len(train))[:n_val]]] = 1
    else:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)}, got {kind!r}")
    return part


# ---------------------------------------------------------------- writing


def _side_column(side: dict[int, dict], rank: np.ndarray, n: int, name: str, default=None) -> list:
    column = [default() if callable(default) else default for _ in range(n)]
    for code, fields in side.items():
        value = fields.get(name)
        if value is not None:
            column[int(rank[code])] = value
    return column


def _tables(cat: _Catalogue, user_rank: np.ndarray, item_rank: np.ndarray) -> tuple[pa.Table, pa.Table]:
    users_sorted = [None] * len(user_rank)
    for code, key in enumerate(cat.users.keys()):
        users_sorted[int(user_rank[code])] = key
    items_sorted = [None] * len(item_rank)
    for code, key in enumerate(cat.items.keys()):
        items_sorted[int(item_rank[code])] = key
    n_users, n_items = len(users_sorted), len(items_sorted)
    ages = _side_column(cat.user_side, user_rank, n_users, "age")
    users = pa.table({
        "user": pa.array(np.arange(n_users, dtype=np.int32)),
        "user_id": pa.array(users_sorted, pa.string()),
        "age": pa.array(ages, pa.int16()),
        "age_bucket": pa.array([age_bucket(a) for a in ages], pa.string()),
        "gender": pa.array(_side_column(cat.user_side, user_rank, n_users, "gender"), pa.string()),
        "occupation": pa.array(_side_column(cat.user_side, user_rank, n_users, "occupation"), pa.string()),
        "zip": pa.array(_side_column(cat.user_side, user_rank, n_users, "zip"), pa.string()),
    })
    items = pa.table({
        "item": pa.array(np.arange(n_items, dtype=np.int32)),
        "item_id": pa.array(items_sorted, pa.string()),
        "title": pa.array(_side_column(cat.item_side, item_rank, n_items, "title"), pa.string()),
        "genres": pa.array(_side_column(cat.item_side, item_rank, n_items, "genres", list), pa.list_(pa.string())),
        "year": pa.array(_side_column(cat.item_side, item_rank, n_items, "year"), pa.int16()),
        "brand": pa.array(_side_column(cat.item_side, item_rank, n_items, "brand"), pa.string()),
        "category": pa.array(_side_column(cat.item_side, item_rank, n_items, "category"), pa.string()),
    })
    return users, items


def ratings_table(user, item, rating, timestamp) -> pa.Table:
    return pa.table({"user": pa.array(np.asarray(user, np.int32)), "item": pa.array(np.asarray(item, np.int32)),
                     "rating": pa.array(np.asarray(rating, np.float32)),
                     "timestamp": pa.array(np.asarray(timestamp, np.int64))})


def prepare_ratings(path: str | Path, out: str | Path, *, fmt: str, split: str | None = None,
                    split_files: Sequence[str] | str | None = None, test_fraction: float = DEFAULT_TEST_FRACTION,
                    validation_fraction: float | None = None, threshold: float = DEFAULT_THRESHOLD, seed: int = 0,
                    metadata: str | Path | None = None, columns: dict[str, str] | str | None = None,
                    delimiter: str = ",", max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
                    progress: bool = True, log: Callable[[str], None] = _stderr) -> dict:
    """Read ratings of format ``fmt`` at ``path`` and write a ratings DATA_DIR at ``out``; returns the manifest.

    ``split`` defaults to "files" when ``split_files`` is given, else "random". ``validation_fraction`` defaults
    to 0.05 for random / temporal and 0 for files.
    """
    started = time.perf_counter()
    path = Path(path)
    if isinstance(split_files, str):
        split_files = [s.strip() for s in split_files.split(",") if s.strip()]
    split = split or ("files" if split_files else "random")
    if split not in SPLITS:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if validation_fraction is None:
        validation_fraction = 0.0 if split == "files" else DEFAULT_VALIDATION_FRACTION
    for name, value in (("--test-fraction", test_fraction), ("--validation-fraction", validation_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}: expected a fraction in [0, 1), got {value}")
    if not isinstance(columns, dict):
        columns = parse_columns(columns)
    delimiter = _delimiter(delimiter)
    rating_files, side_files = _input_files(path, fmt, split, split_files, metadata)
    inputs = [path, *(p for p, _ in rating_files), *(p for p, _ in side_files)]
    check_output(out, "data", inputs=inputs)  # before the long read: never after it
    scale = SCALES[fmt]

    cat = _Catalogue()
    # Metadata first: its items and users join the catalogue even when nobody rated them.
    meta_report = ReadReport()
    for side_path, reader in side_files:
        reader(_read_lines([side_path], meta_report, progress, log), cat, meta_report)
    if side_files:
        meta_report.check(max_bad_fraction)
    report = ReadReport()
    part_of = {str(p): code for p, code in rating_files}
    read_rating_lines(_read_lines([p for p, _ in rating_files], report, progress, log), fmt, cat, report, part_of,
                      columns=columns, delimiter=delimiter)
    report.check(max_bad_fraction)
    if report.records_parsed == 0:
        raise InputError(f"{', '.join(str(p) for p, _ in rating_files)}: no ratings found")

    rows = cat.rows.arrays()
    keep = latest_unique(rows["user"], rows["item"], rows["timestamp"], len(cat.items))
    duplicates = len(rows["user"]) - len(keep)
    user_rank, item_rank = _id_order(cat.users.keys()), _id_order(cat.items.keys())
    user = user_rank[rows["user"][keep]].astype(np.int32)
    item = item_rank[rows["item"][keep]].astype(np.int32)
    rating, timestamp, file_part = rows["rating"][keep], rows["timestamp"][keep], rows["part"][keep]
    del rows, keep
    # One canonical row order (user, time, item): the split and the files do not depend on the input's order.
    order = np.lexsort((item, timestamp, user))
    user, item, rating, timestamp, file_part = (a[order] for a in (user, item, rating, timestamp, file_part))
    part = split_ratings(user, timestamp, split, test_fraction=test_fraction,
                         validation_fraction=validation_fraction, seed=seed, file_part=file_part)
    rating_min, rating_max = scale if scale is not None else (float(rating.min()), float(rating.max()))
    users_table, items_table = _tables(cat, user_rank, item_rank)

    split_info: dict = {"kind": split, "seed": seed, "validation_fraction": validation_fraction}
    if split == "files":
        split_info["files"] = {"train": str(rating_files[0][0]), "test": str(rating_files[1][0])}
    else:
        split_info["test_fraction"] = test_fraction
    examples = [e for reason in sorted(report.rejected_examples) for e in report.rejected_examples[reason]]
    manifest = {
        "kind": "ratings",
        "format": fmt,
        "source": {"ratings": [str(p) for p, _ in rating_files], "metadata": [str(p) for p, _ in side_files]},
        "n_users": users_table.num_rows,
        "n_items": items_table.num_rows,
        "n_ratings": int(len(user)),
        "n_users_rated": int(len(np.unique(user))),
        "n_items_rated": int(len(np.unique(item))),
        "rating_min": rating_min,
        "rating_max": rating_max,
        "threshold": threshold,
        "split": split_info,
        "parts": {name: int(np.count_nonzero(part == code)) for code, name in enumerate(PARTS)},
        "rows_read": report.records_read,
        "rows_parsed": report.records_parsed,
        "rejected": dict(sorted(report.rejected.items())),
        "rejected_examples": examples,
        "duplicates": duplicates,
        "header_lines": cat.header_lines,
        "blank_lines": report.blank_lines,
        "files": report.files,
        "truncated_files": report.truncated_files,
        "metadata": {
            "files": meta_report.files,
            "records_read": meta_report.records_read,
            "records_parsed": meta_report.records_parsed,
            "rejected": dict(sorted(meta_report.rejected.items())),
            "rejected_examples": [e for r in sorted(meta_report.rejected_examples)
                                  for e in meta_report.rejected_examples[r]],
            "fields_nulled": dict(sorted(meta_report.fields_nulled.items())),
            "ids_rejected": dict(sorted(meta_report.ids_rejected.items())),
            "duplicates": cat.metadata_duplicates,
            "items_with_metadata": len(cat.item_side),
            "users_with_metadata": len(cat.user_side),
        },
    }
    with OutputFolder(out, "data", inputs=inputs) as folder, folder.build() as tmp:
        (tmp / "ratings").mkdir()
        pq.write_table(users_table, tmp / "users.parquet")
        pq.write_table(items_table, tmp / "items.parquet")
        for code, name in enumerate(PARTS):
            mask = part == code
            pq.write_table(ratings_table(user[mask], item[mask], rating[mask], timestamp[mask]),
                           tmp / "ratings" / f"{name}.parquet")
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        manifest["peak_rss_mb"] = round(peak_rss_mb(), 1)
        finish_data_dir(tmp, manifest, "ratings")
    return manifest


def ratings_summary_lines(manifest: dict) -> list[str]:
    """A short human summary of a ratings manifest, for the CLI."""
    parts = manifest["parts"]
    rejected = sum(manifest["rejected"].values())
    split = manifest["split"]
    lines = [
        f"rows read {manifest['rows_read']:,} = parsed {manifest['rows_parsed']:,} + rejected {rejected:,}"
        + (f" {manifest['rejected']}" if rejected else ""),
        f"ratings {manifest['n_ratings']:,} (duplicates dropped {manifest['duplicates']:,}), users "
        f"{manifest['n_users']:,}, items {manifest['n_items']:,} ({manifest['n_items_rated']:,} rated), scale "
        f"{manifest['rating_min']:g}-{manifest['rating_max']:g}, threshold {manifest['threshold']:g}",
        f"split {split['kind']} (seed {split['seed']}): train {parts['train']:,}, validation "
        f"{parts['validation']:,}, test {parts['test']:,}",
        f"{manifest['seconds']:.1f} s, peak memory {manifest['peak_rss_mb']:.0f} MB",
    ]
    meta_rejected = sum(manifest["metadata"]["rejected"].values())
    if meta_rejected:
        lines.insert(1, f"metadata records rejected {meta_rejected:,} {manifest['metadata']['rejected']}")
    if manifest.get("truncated_files"):
        lines.append(f"truncated inputs: {manifest['truncated_files']}")
    return lines

