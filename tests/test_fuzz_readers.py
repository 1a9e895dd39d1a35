"""Hypothesis fuzzing of every reader: Amazon 2014 and 2018 metadata, edge lists, the four session formats,
MovieLens 100K (u.data, u.item, u.user), MovieLens CSV (ratings.csv, movies.csv), generic CSV and Amazon
reviews.

Three properties, for every reader:

- random bytes (plain or gzip, after the format's header or not) raise nothing but a clean ``InputError`` for
  a whole-file problem (an empty file, a header without the needed columns);
- a file of valid lines and mutated real-looking lines (bytes inserted, deleted or replaced, a field swapped for
  a nasty token such as ``1e400``, ``9`` * 5000, invalid UTF-8, a lone surrogate escape, a list where an id
  belongs) never raises; records read = parsed + rejected; every valid line is kept exactly, whatever its
  neighbours; what is kept fits the output column types (int64 sales rank, float32 weights and ratings, int16
  ages and years, valid Unicode);
- a damaged gzip of valid lines keeps, identical, every line that decompressed before the damage.

The readers are called directly (a whole prepare would spend its time splitting and writing).
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itemvec.data import io
from itemvec.data import ratings as R
from itemvec.data.io import LineReader
from itemvec.data.prepare import read_amazon, read_edges
from itemvec.data.readers import ReadReport
from itemvec.data.readers import read_lines as _read_lines
from itemvec.data.sessions import read_sessions
from itemvec.errors import InputError

# ITEMVEC_FUZZ_EXAMPLES=5000 for a long hunt; the default keeps both new test files well under 40 s on 2 cores.
FUZZ = settings(max_examples=int(os.environ.get("ITEMVEC_FUZZ_EXAMPLES", "120")), deadline=None,
                suppress_health_check=list(HealthCheck))
BOM = b"\xef\xbb\xbf"
# Tokens a field is swapped for: the classes of bad values the readers must reject (or null and count).
NASTY = [b"", b" ", b"  x  ", b"1e400", b"-1e400", b"1e308", b"-1e308", b"1e39", b"1e-300", b"nan", b"NaN", b"inf",
         b"-Infinity", b"Infinity", b"9" * 30, b"9" * 5000, b"-" + b"9" * 25, str(2**63).encode(), b"0x" + b"f" * 40,
         b"-1", b"0", b"1.5", b"1_000", b"\xe9 S", b"\xff\xfe", b"\xc3", BOM, b"\x00", b"\r", b'"', b"'", b'"a\rb"',
         b"\\ud800", b"'\\ud800'", b'"\\ud800"', b"[]", b"{}", b"[1, 2]", b"null", b"None", b"true", b"True",
         b"\xd9\xa1\xd9\xa2", b"\xe2\x80\xa8", b"2016-13-45", b"9999-12-31T23:59:59-23:59", b"#", b"|", b";", b","]
# JSON / Python values a field of a JSON-lines or literal record is swapped for.
NASTY_VALUES = st.recursive(
    st.one_of(st.integers(-(2**80), 2**80), st.sampled_from([2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30]),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 3.5e38, 5e-324]),
              st.text(max_size=6), st.sampled_from(["", " ", "\ud800", "x\udfff", "\ufeff", " A1 ", "9" * 30,
                                                    "1e400", "$-3", "#5 in X", "9" * 5000 + " in Books"]),
              st.none(), st.booleans()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)
# Raw tokens put where a JSON / literal value goes: numbers no parser maps to a storable value, broken syntax.
RAW_VALUES = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 5000, b"0x" + b"f" * 5000, b"-0x1", b"[" * 2000,
              b"'\xe9 S'", b'"\xe9 S"', b"'\\ud800'", b'"\\ud800"', b"u'x'", b"b'x'", b"(1, 2)", b"{1, 2}", b"1j",
              b"'a' 'b'", b"...", b"__import__('os')"]
SENTINEL = "@@NASTY@@"
SEPARATORS = [b" ", b"\t", b";", b",", b"|", b""]


# ---------------------------------------------------------------- helpers


def consistent(report: ReadReport) -> None:
    assert report.records_read == report.records_parsed + report.records_rejected
    assert report.records_read >= 0 and report.records_parsed >= 0
    for reason, count in report.rejected.items():
        assert count > 0 and len(report.rejected_examples[reason]) == min(count, 5)
        assert all(":" in e for e in report.rejected_examples[reason])


def is_subsequence(needle: list, haystack: list) -> bool:
    it = iter(haystack)
    return all(any(x == y for y in it) for x in needle)


@st.composite
def byte_edits(draw, line: bytes) -> bytes:
    """One to three byte-level edits of ``line``: insert, delete or replace bytes, or cut it short."""
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "cut", "token"]))
        at = draw(st.integers(0, len(line)))
        if kind == "insert":
            line = line[:at] + draw(st.binary(min_size=1, max_size=3)) + line[at:]
        elif kind == "delete":
            line = line[:at] + line[at + draw(st.integers(1, 4)):]
        elif kind == "replace":
            line = line[:at] + draw(st.binary(min_size=1, max_size=2)) + line[at + 1:]
        elif kind == "cut":
            line = line[:at]
        else:
            line = line[:at] + draw(st.sampled_from(NASTY)) + line[at:]
    return line.replace(b"\n", b" ")


@st.composite
def swap_field(draw, fields: list[bytes], sep: bytes) -> bytes:
    """``fields`` joined by ``sep`` with one field swapped for a nasty token (or a field added / removed)."""
    fields = list(fields)
    kind = draw(st.sampled_from(["swap", "swap", "swap", "add", "drop"]))
    at = draw(st.integers(0, len(fields) - 1))
    if kind == "swap":
        fields[at] = draw(st.sampled_from(NASTY))
    elif kind == "add":
        fields.insert(at, draw(st.sampled_from(NASTY)))
    else:
        del fields[at]
    return sep.join(fields).replace(b"\n", b" ")


@st.composite
def swap_value(draw, record: dict, dump: Callable[[dict], str]) -> bytes:
    """``record`` with one value (or a nested one) swapped for a nasty value, or a raw token where a value goes."""
    record = json.loads(json.dumps(record))
    key = draw(st.sampled_from(sorted(record)))
    target, name = record, key
    if isinstance(record[key], dict) and record[key] and draw(st.booleans()):
        target, name = record[key], draw(st.sampled_from(sorted(record[key])))
    if isinstance(target[name], list) and target[name] and draw(st.booleans()):
        items = target[name]
        items[draw(st.integers(0, len(items) - 1))] = draw(NASTY_VALUES)
        return dump(record).encode("utf-8", "surrogatepass").replace(b"\n", b" ")
    if draw(st.booleans()):
        target[name] = draw(NASTY_VALUES)
        return dump(record).encode("utf-8", "surrogatepass").replace(b"\n", b" ")
    target[name] = SENTINEL
    text = dump(record).encode("utf-8", "surrogatepass")
    raw = draw(st.sampled_from(RAW_VALUES))
    return text.replace(f"'{SENTINEL}'".encode(), raw).replace(f'"{SENTINEL}"'.encode(), raw).replace(b"\n", b" ")


def dump_2014(record: dict) -> str:
    return repr(record)


def dump_json(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False)  # NaN and Infinity as JavaScript writes them


def finite_text(max_size: int = 8):
    return st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=max_size)


# ---------------------------------------------------------------- the formats


@dataclass
class Spec:
    """One reader: how to write a valid line (and what reading it must give), a line to mutate, the reader."""

    name: str
    header: bytes | None
    valid: Callable  # (draw, k) -> (line bytes, expected)
    bad: Callable  # (draw, k) -> a mutated line
    read: Callable[[Path], tuple[ReadReport, object]]
    check: Callable[[object, list], None]
    comments: bool = False  # lines starting with "#" are not records (edge lists)


def _amazon_read(path: Path):
    ids, mentions, meta, report = read_amazon([path], progress=False, log=lambda m: None)
    table = meta.table(ids.keys())  # what products.parquet gets: int64 ranks, float64 prices, valid strings
    assert table.num_rows == len(ids)
    source, target, _ = mentions.arrays()
    return report, (ids, meta, source, target)


def _amazon_check(got, expected) -> None:
    ids, meta, source, target = got
    keys = ids.keys()
    for asin, title, price, rank, partners in expected:
        row = meta.row(ids.id_of(asin))
        assert tuple(meta.columns[name][row].as_py() for name in ("title", "price", "sales_rank")) == \
            (title, price, rank)
        code = ids.id_of(asin)
        assert {keys[t] for t in target[source == code]} >= set(partners)
    for rank in meta.columns["sales_rank"].to_pylist():
        assert rank is None or 0 <= rank < 2**63
    for price in meta.columns["price"].to_pylist():
        assert price is None or (np.isfinite(price) and price >= 0)
    assert "" not in ids


def _product(draw, k: int):
    title = draw(finite_text())
    price = draw(st.floats(0, 1e6, allow_nan=False))
    rank = draw(st.integers(0, 2**63 - 1))
    partners = [f"valid{k}p{i}" for i in range(draw(st.integers(0, 3)))]
    return f"valid{k}x", title, price, rank, partners


def _valid_2014(draw, k):
    asin, title, price, rank, partners = _product(draw, k)
    record = {"asin": asin, "title": title, "price": price, "salesRank": {"Toys": rank},
              "related": {"also_bought": partners}}
    return dump_2014(record).encode(), (asin, title, price, rank, partners)


def _valid_2018(draw, k):
    asin, title, price, rank, partners = _product(draw, k)
    price = round(price, 2)
    record = {"asin": asin, "title": title, "price": f"${price:,.2f}", "rank": f"{rank:,} in Toys (",
              "also_buy": partners, "also_view": []}
    return dump_json(record).encode(), (asin, title, float(f"{price:.2f}"), rank, partners)


BAD_PRODUCT = {"asin": "bad", "title": "t", "brand": "b", "price": 2.5, "salesRank": {"Toys": 3},
               "categories": [["A", "B"]], "description": ["d"], "related": {"also_bought": ["bad1", "bad2"]}}
BAD_PRODUCT_2018 = {"asin": "bad", "title": "t", "brand": "b", "price": "$2.50", "rank": "3 in Toys (",
                    "category": ["A", "B"], "also_buy": ["bad1", "bad2"], "also_view": ["bad3"]}


def _bad_record(draw, k, record, dump):
    line = draw(swap_value(dict(record, asin=f"bad{k}"), dump))
    return draw(byte_edits(line)) if draw(st.integers(0, 3)) == 0 else line


def _edges_read(path):
    ids, source, target, weight, report = read_edges([path], progress=False, log=lambda m: None)
    keys = ids.keys()
    assert (weight > 0).all() and np.isfinite(weight.astype(np.float32)).all() and (weight.astype(np.float32) > 0).all()
    return report, [(keys[a], keys[b], w) for a, b, w in zip(source.tolist(), target.tolist(), weight.tolist())]


def _valid_edge(draw, k):
    w = draw(st.floats(1e-30, 1e30))
    return f"v{k}a v{k}b {w!r}".encode(), (f"v{k}a", f"v{k}b", w)


def _rows_check(got, expected) -> None:
    assert is_subsequence(expected, got), (expected, got)


def _sessions_read(fmt):
    def read(path):
        ids, sessions, report, _ = read_sessions([path], fmt, progress=False, log=lambda m: None)
        keys = ids.keys()
        items = {name: [keys[i] for i in sessions.items[a:b]]
                 for name, a, b in zip(sessions.names, sessions.offsets[:-1], sessions.offsets[1:])}
        return report, items
    return read


def _sessions_check(got, expected) -> None:
    for session, items in expected:
        assert is_subsequence(items, got[session]), (session, items, got.get(session))


def _valid_s3rec(draw, k):
    items = [str(draw(st.integers(0, 10**12))) for _ in range(draw(st.integers(1, 4)))]
    user = f"1{k:04d}0"
    return f"{user} {' '.join(items)}".encode(), (user, items)


def _valid_sasrec(draw, k):
    user, item = f"1{k:04d}0", str(draw(st.integers(0, 10**12)))
    return f"{user} {item}".encode(), (user, [item])


def _valid_diginetica(draw, k):
    session, item = f"1{k:04d}0", str(draw(st.integers(0, 10**9)))
    frame, day = draw(st.integers(0, 2**63 - 1)), draw(st.integers(1, 28))
    return f"{session};;{item};{frame};2016-05-{day:02d}".encode(), (session, [item])


def _valid_yoochoose(draw, k):
    session, item = f"1{k:04d}0", str(draw(st.integers(0, 10**9)))
    when = draw(st.one_of(st.integers(0, 2**40).map(str), st.just("2014-04-07T10:51:09.277Z")))
    return f"{session}\t{item}\t{when}".encode(), (session, [item])


def _ratings_read(fmt, columns=None, delimiter=","):
    def read(path):
        cat, report = R._Catalogue(), ReadReport()
        lines = _read_lines([path], report, False, lambda m: None)
        R.read_rating_lines(lines, fmt, cat, report, {str(path): 0}, columns=columns, delimiter=delimiter)
        rows = cat.rows.arrays()
        assert np.isfinite(rows["rating"].astype(np.float32)).all()
        R.ratings_table(rows["user"], rows["item"], rows["rating"], rows["timestamp"])
        users, items = cat.users.keys(), cat.items.keys()
        return report, [(users[u], items[i], r, t) for u, i, r, t in zip(
            rows["user"].tolist(), rows["item"].tolist(), rows["rating"].tolist(), rows["timestamp"].tolist())]
    return read


def _valid_udata(draw, k):
    rating, when = draw(st.integers(1, 5)), draw(st.integers(-(2**63), 2**63 - 1))
    return f"valid{k}u\tvalid{k}i\t{rating}\t{when}".encode(), (f"valid{k}u", f"valid{k}i", float(rating), when)


def _valid_ml_csv(draw, k):
    rating, when = draw(st.integers(1, 10)) / 2, draw(st.integers(0, 2**62))
    return f"valid{k}u,valid{k}i,{rating},{when}".encode(), (f"valid{k}u", f"valid{k}i", rating, when)


def _valid_csv(draw, k):
    rating = draw(st.floats(-1e30, 1e30, allow_nan=False))
    return f"valid{k}u;valid{k}i;{rating!r}".encode(), (f"valid{k}u", f"valid{k}i", rating, 0)


def _valid_review(draw, k):
    rating, when = draw(st.integers(1, 5)), draw(st.integers(0, 2**63 - 1))
    record = {"reviewerID": f"valid{k}u", "asin": f"valid{k}i", "overall": float(rating), "unixReviewTime": when,
              "reviewText": draw(st.text(max_size=10))}
    return dump_json(record).encode("utf-8", "surrogatepass"), (f"valid{k}u", f"valid{k}i", float(rating), when)


BAD_REVIEW = {"reviewerID": "bad", "asin": "badi", "overall": 4.0, "unixReviewTime": 100, "summary": "s"}


def _side_read(reader):
    def read(path):
        cat, report = R._Catalogue(), ReadReport()
        reader(_read_lines([path], report, False, lambda m: None), cat, report)
        n_users, n_items = len(cat.users), len(cat.items)
        R._tables(cat, np.arange(n_users), np.arange(n_items))  # the int16 ages and years, valid strings
        return report, cat
    return read


def _items_check(got, expected) -> None:
    for item, fields in expected:
        assert {k: got.item_side[got.items.index[item]][k] for k in fields} == fields


def _users_check(got, expected) -> None:
    for user, fields in expected:
        assert {k: got.user_side[got.users.index[user]][k] for k in fields} == fields


def _valid_u_item(draw, k):
    year = draw(st.integers(1000, 2030))
    flags = ["0"] * 19
    flags[1 + k % 18] = "1"
    title = f"Movie {k} ({year})"
    line = f"valid{k}x|{title}|01-Jan-{year}||http://x/{k}|" + "|".join(flags)
    return line.encode("latin-1"), (f"valid{k}x", {"title": title, "year": year,
                                                  "genres": [R.ML100K_GENRES[1 + k % 18]]})


def _valid_u_user(draw, k):
    age = draw(st.integers(0, 150))
    return f"valid{k}x|{age}|F|writer|0{k}".encode(), (f"valid{k}x", {"age": age, "gender": "F"})


def _valid_movies_csv(draw, k):
    year = draw(st.integers(1000, 2030))
    title = f"Movie, The {k} ({year})"
    return f'valid{k}x,"{title}",Comedy|Drama'.encode(), (f"valid{k}x", {"title": title, "year": year,
                                                                         "genres": ["Comedy", "Drama"]})


def _fields(sep: bytes, parts: list[str]):
    """A bad line of a delimited format: ``parts`` (with ``{k}``) with a field swapped, then byte edits once
    in four."""

    def bad(draw, k: int) -> bytes:
        line = draw(swap_field([p.format(k=k).encode() for p in parts], sep))
        return draw(byte_edits(line)) if draw(st.integers(0, 3)) == 0 else line

    return bad


SPECS = [
    Spec("amazon-2014", None, _valid_2014, lambda d, k: _bad_record(d, k, BAD_PRODUCT, dump_2014), _amazon_read,
         _amazon_check),
    Spec("amazon-2018", None, _valid_2018, lambda d, k: _bad_record(d, k, BAD_PRODUCT_2018, dump_json),
         _amazon_read, _amazon_check),
    Spec("edges", None, _valid_edge, _fields(b" ", ["bad{k}a", "bad{k}b", "2.5"]), _edges_read, _rows_check,
         comments=True),
    Spec("s3rec", None, _valid_s3rec, _fields(b" ", ["9{k}9", "5", "6", "7"]), _sessions_read("s3rec"),
         _sessions_check),
    Spec("sasrec", None, _valid_sasrec, _fields(b" ", ["9{k}9", "5"]), _sessions_read("sasrec"), _sessions_check),
    Spec("diginetica", b"session_id;user_id;item_id;timeframe;eventdate", _valid_diginetica,
         _fields(b";", ["9{k}9", "", "5", "100", "2016-05-09"]), _sessions_read("diginetica"), _sessions_check),
    Spec("yoochoose", b"SessionId\tItemId\tTime", _valid_yoochoose, _fields(b"\t", ["9{k}9", "5", "1396867869"]),
         _sessions_read("yoochoose"), _sessions_check),
    Spec("movielens-100k u.data", None, _valid_udata, _fields(b"\t", ["bad{k}", "bad{k}i", "3", "881250949"]),
         _ratings_read("movielens-100k"), _rows_check),
    Spec("movielens-100k u.item", None, _valid_u_item,
         _fields(b"|", ["bad{k}", "Bad (1995)", "01-Jan-1995", "", "http://x"] + ["0"] * 18 + ["1"]),
         _side_read(R._read_u_item), _items_check),
    Spec("movielens-100k u.user", None, _valid_u_user, _fields(b"|", ["bad{k}", "24", "M", "technician", "85711"]),
         _side_read(R._read_u_user), _users_check),
    Spec("movielens-csv ratings.csv", b"userId,movieId,rating,timestamp", _valid_ml_csv,
         _fields(b",", ["bad{k}", "bad{k}i", "3.5", "1112486027"]),
         _ratings_read("movielens-csv", {"user": "userId", "item": "movieId", "rating": "rating",
                                         "timestamp": "timestamp"}), _rows_check),
    Spec("movielens-csv movies.csv", b"movieId,title,genres", _valid_movies_csv,
         _fields(b",", ["bad{k}", '"Bad, The (1995)"', "Comedy|Drama"]), _side_read(R._read_movies_csv),
         _items_check),
    Spec("csv", b"user;item;stars", _valid_csv, _fields(b";", ["bad{k}", "bad{k}i", "2.5"]),
         _ratings_read("csv", R.parse_columns("rating=stars"), ";"), _rows_check),
    Spec("amazon-reviews", None, _valid_review, lambda d, k: _bad_record(d, k, BAD_REVIEW, dump_json),
         _ratings_read("amazon-reviews"), _rows_check),
]
IDS = [s.name for s in SPECS]


def write(folder: Path, data: bytes, gz: bool) -> Path:
    path = folder / ("input.gz" if gz else "input")
    path.write_bytes(gzip.compress(data, 1) if gz else data)
    return path


# ---------------------------------------------------------------- the properties


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@FUZZ
@given(data=st.data())
def test_random_bytes_raise_nothing_but_a_clean_input_error(spec, data):
    soup = st.builds(lambda tokens, sep: sep.join(tokens), st.lists(st.sampled_from(NASTY + [b"1", b"a", b"x1"]),
                                                                    max_size=6), st.sampled_from(SEPARATORS))
    lines = data.draw(st.lists(st.binary(max_size=60) | soup, max_size=6), label="lines")
    blob = b"\n".join(lines) + data.draw(st.sampled_from([b"", b"\n", b"\r\n"]))
    if spec.header is not None and data.draw(st.booleans(), label="header"):
        blob = spec.header + b"\n" + blob
    if data.draw(st.booleans(), label="bom"):
        blob = BOM + blob
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), blob, data.draw(st.booleans(), label="gzip"))
        try:
            report, _ = spec.read(path)
        except InputError as exc:
            assert str(exc) and "\n" not in str(exc).strip()
            return
        consistent(report)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@FUZZ
@given(data=st.data())
def test_mutated_lines_are_rejected_or_kept_and_valid_neighbours_are_kept_exactly(spec, data):
    n = data.draw(st.integers(1, 8), label="lines")
    lines, expected = [], []
    for k in range(n):
        if data.draw(st.booleans()):
            line, expect = spec.valid(data.draw, k)
            expected.append(expect)
        else:
            line = spec.bad(data.draw, k)
        lines.append(line)
    blob = b"\n".join(lines) + b"\n"
    if spec.header is not None:
        blob = spec.header + b"\n" + blob
    if data.draw(st.booleans(), label="bom"):
        blob = BOM + blob
    elif spec.header is None and lines[0].startswith(BOM):  # a first line that starts with a BOM's bytes: the
        lines[0] = lines[0][len(BOM):]  # file's byte order mark, which no line holds (an empty rest: a blank line)
    gz = data.draw(st.booleans(), label="gzip")
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), blob, gz)
        report, got = spec.read(path)
    consistent(report)
    if not gz and blob[:2] == b"\x1f\x8b":  # a first line that starts with the gzip magic: taken for gzip
        assert report.truncated_files and "corrupt gzip" in report.truncated_files[0]["reason"]
        return
    records = sum(1 for line in lines if line.strip() and not (spec.comments and line.lstrip().startswith(b"#")))
    assert report.records_read == records  # no line lost: each is parsed or rejected
    assert report.records_parsed >= len(expected)
    spec.check(got, expected)


def decompress_intact(gz: bytes) -> bytes:
    """Everything an intact prefix of a (multi-member) gzip file decompresses to."""
    out, data = [], gz
    while data:
        d = zlib.decompressobj(wbits=31)
        out.append(d.decompress(data))
        if not d.eof:
            break
        data = d.unused_data.lstrip(b"\x00")
    return b"".join(out)


@FUZZ
@given(data=st.data())
def test_damaged_gzip_keeps_every_line_decompressed_before_the_damage(data):
    n = data.draw(st.integers(50, 3000), label="lines")
    lines = [f"{i} {i * 7919 % 10007} {1 + i % 9}".encode() for i in range(n)]
    text = b"\n".join(lines) + b"\n"
    cuts = sorted(data.draw(st.lists(st.integers(1, len(text) - 1), max_size=2), label="member boundaries"))
    level = data.draw(st.sampled_from([0, 1, 6, 9]))
    members = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    gz = bytearray(b"".join(gzip.compress(m, level) for m in members))
    first = data.draw(st.integers(0, len(gz) - 1), label="first damaged byte")
    if data.draw(st.booleans(), label="cut"):
        gz = gz[:max(first, 1)]
    else:
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(first, len(gz) - 1))
            gz[at] = data.draw(st.integers(0, 255))
    first = min(first, len(gz))
    n_intact = decompress_intact(bytes(gz[:first])).count(b"\n")
    chunk = data.draw(st.sampled_from([1, 2, 3, 7, 100, 4096, 1 << 20]), label="chunk bytes")
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(io, "CHUNK_BYTES", chunk):
        path = Path(tmp) / "e.txt.gz"
        path.write_bytes(bytes(gz))
        reader = LineReader(path)
        got = [line for _, line in reader]
        assert got[:n_intact] == lines[:n_intact]
        try:
            *_, report = read_edges([path], progress=False, log=lambda m: None)
        except InputError:
            return
        consistent(report)
        assert report.records_parsed >= n_intact


@FUZZ
@given(data=st.data())
def test_line_reader_gives_the_same_lines_whatever_the_chunk_size(data):
    lines = data.draw(st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=20))
    text = (BOM if data.draw(st.booleans()) else b"") + b"\n".join(lines) + data.draw(st.sampled_from([b"", b"\n"]))
    gz = data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        path.write_bytes(gzip.compress(text) if gz else text)
        if not path.stat().st_size or (not gz and text[:2] == b"\x1f\x8b"):  # empty, or taken for gzip
            return
        with mock.patch.object(io, "CHUNK_BYTES", 1 << 20):
            whole = list(LineReader(path))
        with mock.patch.object(io, "CHUNK_BYTES", data.draw(st.integers(1, 8))):
            pieces = list(LineReader(path))
    assert pieces == whole
    expected = text.removeprefix(BOM).split(b"\n")
    if expected and expected[-1] == b"":
        expected.pop()
    assert [line for _, line in whole] == [e.removesuffix(b"\r") for e in expected]
