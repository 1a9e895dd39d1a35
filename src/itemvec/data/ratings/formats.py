"""The input formats (``--format``): which files each one reads, and how a line of each becomes a rating row or
an item / user's side fields in the Catalogue.

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

Bad rows (wrong field count, a rating that is not a number or is off the scale, unparsable JSON, a missing
field) are rejected and counted by reason, with the first examples as ``file:line: what``; rows read = parsed +
rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import orjson

from itemvec.data.amazon import RecordError, detect_format, parse_line
from itemvec.data.io import LineReader
from itemvec.data.ratings.catalogue import Catalogue
from itemvec.data.ratings.fields import (
    Reject,
    csv_fields,
    header_text,
    parse_rating,
    parse_timestamp,
    short_repr,
    split_csv,
    title_year,
)
from itemvec.data.readers import ReadReport
from itemvec.errors import ConfigError, InputError

FORMATS = ("movielens-100k", "movielens-csv", "csv", "amazon-reviews")
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
MAX_AGE = 150  # older is not an age (u.user's column is int16)


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


def parse_delimiter(text: str) -> str:
    """``--delimiter``: one character, or "tab" / "\\t"."""
    text = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(text, text)
    if len(text) != 1:
        raise ConfigError(f"--delimiter: expected one character (or 'tab'), got {text!r}")
    return text


# ---------------------------------------------------------------- rating rows


def _read_ml100k_ratings(lines, cat: Catalogue, report: ReadReport, part_of: dict[str, int], scale) -> None:
    add = cat.rows.adder(cat.users, cat.items)
    for reader, where, line in lines:
        try:
            fields = line.decode("utf-8").split("\t")
            if len(fields) != 4:
                raise Reject("bad_fields", f"expected 4 tab-separated fields (user item rating timestamp), "
                                           f"found {len(fields)}")
            user, item = fields[0].strip(), fields[1].strip()
            if not user or not item:
                raise Reject("missing_field", "empty user or item id")
            rating = parse_rating(fields[2].strip(), scale)
            timestamp = parse_timestamp(fields[3].strip())
        except UnicodeDecodeError:
            report.reject("bad_encoding", where, "not UTF-8")
            continue
        except Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        report.records_parsed += 1
        add(user, item, rating, timestamp, part_of[str(reader.path)])


def _read_csv_ratings(lines: Iterable[tuple[LineReader, str, bytes]], cat: Catalogue, report: ReadReport,
                      part_of: dict[str, int], scale, columns: dict[str, str], delimiter: str) -> None:
    """CSV files with a header line each; ``columns`` names the header of each role."""
    add = cat.rows.adder(cat.users, cat.items)
    current: LineReader | None = None
    position: dict[str, int] = {}
    n_fields = 0
    for reader, where, line in lines:
        if reader is not current:  # the first record of each file is its header
            current = reader
            try:
                fields = split_csv(header_text(line), delimiter)
            except Reject as exc:
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
            fields = csv_fields(line, delimiter)
            if len(fields) != n_fields:
                raise Reject("bad_fields", f"expected {n_fields} fields as the header, found {len(fields)}")
            user, item = fields[position["user"]].strip(), fields[position["item"]].strip()
            if not user or not item:
                raise Reject("missing_field", "empty user or item id")
            rating = parse_rating(fields[position["rating"]].strip(), scale)
            timestamp = parse_timestamp(fields[position["timestamp"]].strip()) if "timestamp" in position else 0
        except Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        report.records_parsed += 1
        add(user, item, rating, timestamp, part_of[str(reader.path)])


def _read_amazon_reviews(lines, cat: Catalogue, report: ReadReport, part_of: dict[str, int], scale) -> None:
    add = cat.rows.adder(cat.users, cat.items)
    for reader, where, line in lines:
        try:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as bad:
                    raise Reject("bad_encoding", f"not UTF-8 ({bad.reason} at byte {bad.start})") from None
                raise Reject("parse_error", f"not JSON ({exc})") from None
            if not isinstance(record, dict):
                raise Reject("not_a_record", f"expected a JSON object, found {type(record).__name__}")
            missing = [k for k in ("reviewerID", "asin", "overall")
                       if record.get(k) is None or (isinstance(record[k], str) and not record[k].strip())]
            if missing:
                raise Reject("missing_field", f"no {', '.join(missing)}")
            user, item = record["reviewerID"], record["asin"]
            for name, value in (("reviewerID", user), ("asin", item)):
                if not isinstance(value, str):  # a list or a number would become its str(): another id
                    raise Reject("bad_id", f"{name} is a {type(value).__name__} ({short_repr(value)}), not a string")
            user, item = user.strip(), item.strip()
            rating = parse_rating(record["overall"], scale)
            timestamp = parse_timestamp(record.get("unixReviewTime"))
        except Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        report.records_parsed += 1
        add(user, item, rating, timestamp, part_of[str(reader.path)])


def read_rating_lines(lines, fmt: str, cat: Catalogue, report: ReadReport, part_of: dict[str, int], *,
                      columns: dict[str, str] | None = None, delimiter: str = ",") -> None:
    """Read the rating rows of ``lines`` (from itemvec.data.readers.read_lines) in format ``fmt`` into ``cat``;
    ``part_of`` maps each file to its part code (0 train, 2 test). ``columns`` and ``delimiter`` apply to ``csv``."""
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


# ---------------------------------------------------------------- side files: items and users


def _add_movie(cat: Catalogue, report: ReadReport, where: str, item: str, title: str, genres: list[str],
               release_date: str | None = None) -> None:
    """A movie of u.item or movies.csv into ``cat`` (title, genres but the NO_GENRE names, year), or a
    ``missing_field`` reject when its id is empty."""
    item = item.strip()
    if not item:
        report.reject("missing_field", where, "empty movie id")
        return
    report.records_parsed += 1
    stripped = title.strip() or None
    genres = [g for g in genres if g not in NO_GENRE]
    cat.add_item_side(item, {"title": stripped, "genres": genres, "year": title_year(stripped, release_date)})


def read_u_item(lines, cat: Catalogue, report: ReadReport) -> None:
    """ml-100k ``u.item``: title, genres (from the 19 flags) and year of each movie."""
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
        genres = [g for g, f in zip(ML100K_GENRES, flags) if f == "1"]
        _add_movie(cat, report, where, fields[0], fields[1], genres, release_date=fields[2])


def read_u_user(lines, cat: Catalogue, report: ReadReport) -> None:
    """ml-100k ``u.user``: age, gender, occupation and zip code of each user (a repeated user keeps the first)."""
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


def read_movies_csv(lines, cat: Catalogue, report: ReadReport) -> None:
    """MovieLens ``movies.csv`` (``movieId,title,genres``, header optional): title, genres and year."""
    header_seen = False
    for _reader, where, line in lines:
        if not header_seen:
            header_seen = True
            if header_text(line).split(",", 1)[0].strip().strip('"') == "movieId":
                report.records_read -= 1
                cat.header_lines += 1
                continue
        try:
            fields = csv_fields(line, ",")
        except Reject as exc:
            report.reject(exc.reason, where, str(exc))
            continue
        if len(fields) != 3:
            report.reject("bad_fields", where, f"expected 3 fields (movieId,title,genres), found {len(fields)}")
            continue
        genres = [g for g in (s.strip() for s in fields[2].split("|")) if g]
        _add_movie(cat, report, where, fields[0], fields[1], genres)


def read_amazon_metadata(lines, cat: Catalogue, report: ReadReport) -> None:
    """An Amazon 2014/2018 metadata file: title, brand and first category path of each asin."""
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


# ---------------------------------------------------------------- which files


def _resolve(base: Path, name: str) -> Path:
    path = Path(name)
    if path.is_absolute() or path.exists():
        return path
    return base / name


def input_files(path: Path, fmt: str, split: str, split_files: Sequence[str] | None, metadata):
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
        side = [(p, r) for p, r in ((base / "u.item", read_u_item), (base / "u.user", read_u_user)) if p.is_file()]
    elif fmt == "movielens-csv" and (base / "movies.csv").is_file():
        side = [(base / "movies.csv", read_movies_csv)]
    elif metadata is not None:
        if not Path(metadata).is_file():
            raise InputError(f"{metadata}: no such file (--metadata)")
        side = [(Path(metadata), read_amazon_metadata)]
    return ratings, side
