"""Record-level bad input: every bad record is a rejected record (counted by reason, with a ``file:line``
example), or a kept record with a field nulled or an id left out (counted as well), never a traceback and
never a silent change; records read = parsed + rejected; the valid lines around a bad one are kept exactly.

Each case is a tiny fixture made in code. Most call the readers directly (fast); a few run a whole prepare to
show that the values that used to crash the Parquet writers (a sales rank beyond int64, an age beyond int16,
a lone surrogate) no longer reach them.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from itemvec.data import ratings as R
from itemvec.data.io import CHUNK_BYTES, LineReader
from itemvec.data.prepare import prepare_amazon, prepare_edges, read_amazon, read_edges
from itemvec.data.readers import ReadReport
from itemvec.data.readers import read_lines as _read_lines
from itemvec.data.sessions import read_attributes, read_sessions
from itemvec.errors import InputError

BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------- helpers


def write_lines(path: Path, lines: list[bytes | str], *, bom: bool = False, gz: bool = False) -> Path:
    data = b"\n".join(x.encode("utf-8") if isinstance(x, str) else x for x in lines) + b"\n"
    if bom:
        data = BOM + data
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def lit(**record) -> str:
    """A 2014 line: the Python literal of a dict, as the 2014 dumps are written."""
    return repr(record)


def j(**record) -> str:
    """A 2018 line: one JSON object."""
    return json.dumps(record)


def consistent(report: ReadReport) -> None:
    assert report.records_read == report.records_parsed + report.records_rejected
    for reason, count in report.rejected.items():
        assert len(report.rejected_examples[reason]) == min(count, 5)
    for reason in report.fields_nulled:
        assert report.fields_nulled_examples[reason]
    for reason in report.ids_rejected:
        assert report.ids_rejected_examples[reason]


def only_rejects(report: ReadReport, expected: dict[str, list[int]], path: Path) -> None:
    """``expected``: reason -> the line numbers rejected for it (in order). Nothing else is rejected."""
    consistent(report)
    assert dict(report.rejected) == {reason: len(lines) for reason, lines in expected.items()}
    for reason, lines in expected.items():
        got = [e.split(": ", 1)[0] for e in report.rejected_examples[reason]]
        assert got == [f"{path}:{n}" for n in lines[:5]], (reason, report.rejected_examples[reason])


def amazon(path: Path):
    ids, mentions, meta, report = read_amazon([path], progress=False, log=lambda m: None)
    consistent(report)
    return ids, mentions, meta, report


def field_of(ids, meta, asin: str, name: str):
    return meta.columns[name][meta.row(ids.id_of(asin))].as_py()


def partners(ids, mentions, asin: str) -> set[str]:
    keys = ids.keys()
    source, target, _ = mentions.arrays()
    code = ids.id_of(asin)
    return {keys[t] for s, t in zip(source.tolist(), target.tolist()) if s == code}


def read_ratings(path: Path, fmt: str, columns: dict | None = None, delimiter: str = ","):
    """The rating readers as prepare_ratings calls them, without the splits and the writing."""
    cat, report = R._Catalogue(), ReadReport()
    lines = _read_lines([path], report, False, lambda m: None)
    R.read_rating_lines(lines, fmt, cat, report, {str(path): 0}, columns=columns, delimiter=delimiter)
    consistent(report)
    return cat, report


def rating_rows(cat) -> list[tuple[str, str, float, int]]:
    users, items, rows = cat.users.keys(), cat.items.keys(), cat.rows.arrays()
    return [(users[u], items[i], float(r), int(t)) for u, i, r, t in
            zip(rows["user"].tolist(), rows["item"].tolist(), rows["rating"].tolist(), rows["timestamp"].tolist())]


def read_side(path: Path, reader):
    cat, report = R._Catalogue(), ReadReport()
    reader(_read_lines([path], report, False, lambda m: None), cat, report)
    consistent(report)
    return cat, report


# ---------------------------------------------------------------- Amazon metadata: numbers


@pytest.mark.parametrize("rank_text", ["1e400", "-1e400", str(2**70), str(2**63), "1.5", "-3", "NaN", "Infinity",
                                       "0x" + "f" * 40, "9" * 30])
def test_2014_sales_rank_that_is_no_int64_is_nulled_and_counted(tmp_path, rank_text):
    path = write_lines(tmp_path / "m.json", [
        lit(asin="A1", salesRank={"Toys": 7}, related={"also_bought": ["A2"]}),
        "{'asin': 'A2', 'salesRank': {'Toys': " + rank_text + "}, 'title': 'kept', 'related': {'also_bought': ['A3']}}",
        lit(asin="A3", salesRank={"Toys": 2**63 - 1}),
    ])
    ids, mentions, meta, report = amazon(path)
    assert report.records_parsed == 3 and report.records_rejected == 0
    assert dict(report.fields_nulled) == {"bad_sales_rank": 1}
    assert report.fields_nulled_examples["bad_sales_rank"][0].startswith(f"{path}:2: sales rank ")
    assert field_of(ids, meta, "A2", "sales_rank") is None and field_of(ids, meta, "A2", "title") == "kept"
    assert field_of(ids, meta, "A1", "sales_rank") == 7 and field_of(ids, meta, "A3", "sales_rank") == 2**63 - 1
    assert partners(ids, mentions, "A2") == {"A3"}
    meta.table(ids.keys())  # the int64 column takes every value left


@pytest.mark.parametrize("rank", ["9" * 5000 + " in Books (", "99,999,999,999,999,999,999 in Books", ["9" * 400]])
def test_2018_rank_text_with_a_huge_number_is_nulled_and_counted(tmp_path, rank):
    path = write_lines(tmp_path / "m.json", [
        j(asin="B1", rank="1,234 in Books (", also_buy=["B2"]),
        j(asin="B2", rank=rank, title="kept"),
        j(asin="B3", rank=["12 in Toys"]),
    ])
    ids, _, meta, report = amazon(path)
    assert report.records_parsed == 3 and dict(report.fields_nulled) == {"bad_sales_rank": 1}
    assert report.fields_nulled_examples["bad_sales_rank"][0].startswith(f"{path}:2:")
    assert field_of(ids, meta, "B2", "sales_rank") is None and field_of(ids, meta, "B2", "title") == "kept"
    assert field_of(ids, meta, "B1", "sales_rank") == 1234 and field_of(ids, meta, "B1", "sales_rank_category") == "Books"
    assert field_of(ids, meta, "B3", "sales_rank") == 12


@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity", "-5", "1e400", "'$-3.00'", str(10**400)])
def test_price_that_is_nan_inf_or_negative_is_nulled_and_counted(tmp_path, price):
    path = write_lines(tmp_path / "m.json", [
        lit(asin="A1", price=2.5),
        "{'asin': 'A2', 'price': " + price + ", 'title': 'kept'}",
        lit(asin="A3", price=0.0),
    ])
    ids, _, meta, report = amazon(path)
    assert report.records_parsed == 3 and report.records_rejected == 0
    assert dict(report.fields_nulled) == {"bad_price": 1}
    assert report.fields_nulled_examples["bad_price"][0].startswith(f"{path}:2: price ")
    prices = [field_of(ids, meta, a, "price") for a in ("A1", "A2", "A3")]
    assert prices == [2.5, None, 0.0]


def test_2018_price_text_negative_is_nulled(tmp_path):
    path = write_lines(tmp_path / "m.json", [j(asin="B1", price="$12.99"), j(asin="B2", price="$-4.00 off"),
                                             j(asin="B3", price="<span>not a price</span>")])
    ids, _, meta, report = amazon(path)
    assert [field_of(ids, meta, a, "price") for a in ("B1", "B2", "B3")] == [12.99, None, None]
    assert dict(report.fields_nulled) == {"bad_price": 1}  # text without a number is no price, not a bad one


# ---------------------------------------------------------------- Amazon metadata: encoding, ids


def test_invalid_utf8_in_a_2014_line_is_bad_encoding_not_mis_decoded(tmp_path):
    path = write_lines(tmp_path / "m.json", [
        lit(asin="A1", title="Café ok", related={"also_bought": ["A2"]}),
        b"{'asin': 'A2', 'title': 'Caf\xe9 Sound', 'related': {'also_bought': ['A3']}}",  # latin-1 bytes
        lit(asin="A3", title="naïve"),
    ])
    ids, mentions, meta, report = amazon(path)
    only_rejects(report, {"bad_encoding": [2]}, path)
    assert "not UTF-8" in report.rejected_examples["bad_encoding"][0]
    assert field_of(ids, meta, "A1", "title") == "Café ok" and field_of(ids, meta, "A3", "title") == "naïve"
    assert ids.id_of("A2") not in meta.item
    assert partners(ids, mentions, "A1") == {"A2"}  # A2 stays a referenced product, without metadata


def test_invalid_utf8_in_a_2018_line_is_bad_encoding(tmp_path):
    path = write_lines(tmp_path / "m.json", [j(asin="B1", title="x", also_buy=["B2"]),
                                             b'{"asin": "B2", "title": "Caf\xe9 S\xe9", "also_buy": ["B1"]}',
                                             j(asin="B3")])
    ids, _, meta, report = amazon(path)
    only_rejects(report, {"bad_encoding": [2]}, path)
    assert ids.id_of("B2") not in meta.item and report.records_parsed == 2


@pytest.mark.parametrize("as_2018", [False, True])
def test_empty_and_whitespace_ids_in_relation_lists_are_stripped_and_counted(tmp_path, as_2018):
    related = ["A2", "", " SP ACE", "A3 ", "   "]
    line = (j(asin="A1", also_buy=related) if as_2018 else lit(asin="A1", related={"also_bought": related}))
    path = write_lines(tmp_path / "m.json", [line, lit(asin="A2", related={"also_bought": ["A3"]})])
    ids, mentions, _, report = amazon(path)
    assert report.records_parsed == 2 and report.records_rejected == 0
    assert dict(report.ids_rejected) == {"empty_id": 2}
    assert report.ids_rejected_examples["empty_id"][0].startswith(f"{path}:1: 2 empty")
    assert partners(ids, mentions, "A1") == {"A2", "SP ACE", "A3"}
    assert "" not in ids and " SP ACE" not in ids and "A3 " not in ids


@pytest.mark.parametrize("asin", [["A9"], 42, {"x": 1}, 1.5, True])
def test_asin_that_is_not_a_string_is_bad_id(tmp_path, asin):
    path = write_lines(tmp_path / "m.json", [j(asin="B1"), json.dumps({"asin": asin, "also_buy": ["B1"]}),
                                             j(asin="B3")])
    ids, _, _, report = amazon(path)
    only_rejects(report, {"bad_id": [2]}, path)
    assert sorted(ids.keys()) == ["B1", "B3"]


def test_lone_surrogate_escapes_are_nulled_dropped_or_rejected_and_the_files_are_written(tmp_path):
    path = write_lines(tmp_path / "m.json", [
        "{'asin': 'A1', 'title': 'bad \\ud800 title', 'related': {'also_bought': ['A2', 'X\\udfff']}}",
        "{'asin': 'A\\ud800', 'related': {'also_bought': ['A1']}}",
        lit(asin="A2", title="emoji \U0001F600", related={"also_bought": ["A1"]}),
        "{'asin': 'A3', 'title': 'escaped \\u00e9 fine', 'related': {'also_bought': ['A2']}}",
    ])
    ids, mentions, meta, report = amazon(path)
    only_rejects(report, {"bad_encoding": [2]}, path)
    assert dict(report.fields_nulled) == {"bad_title": 1} and dict(report.ids_rejected) == {"bad_encoding": 1}
    assert field_of(ids, meta, "A1", "title") is None
    assert field_of(ids, meta, "A2", "title") == "emoji \U0001F600"
    assert field_of(ids, meta, "A3", "title") == "escaped \u00e9 fine"
    assert partners(ids, mentions, "A1") == {"A2"}
    ring = [lit(asin=f"R{i}", related={"also_bought": [f"R{(i + k) % 40}" for k in (1, 2, 3)]}) for i in range(40)]
    write_lines(tmp_path / "ring.json", ring)
    manifest = prepare_amazon([path, tmp_path / "ring.json"], tmp_path / "d", progress=False, max_bad_fraction=0.05)
    assert manifest["fields_nulled"] == {"bad_title": 1} and manifest["ids_rejected"] == {"bad_encoding": 1}
    titles = pq.read_table(tmp_path / "d" / "products.parquet").column("title").to_pylist()
    assert "emoji \U0001F600" in titles


def test_utf8_bom_is_stripped_from_2014_and_2018_files(tmp_path):
    f14 = write_lines(tmp_path / "a.json", [lit(asin="A1", related={"also_bought": ["A2"]}), lit(asin="A2")], bom=True)
    f18 = write_lines(tmp_path / "b.json.gz", [j(asin="B1", also_buy=["B2"]), j(asin="B2")], bom=True, gz=True)
    for path, first in ((f14, "A1"), (f18, "B1")):
        ids, _, meta, report = amazon(path)
        only_rejects(report, {}, path)
        assert ids.keys()[0] == first and report.records_parsed == 2
        assert report.files[0]["bom"] is True


def test_too_many_relation_types_rejects_the_record_not_the_read(tmp_path):
    extra = {f"kind_{k}": ["A1"] for k in range(13)}  # 4 standard + 13 > the 16 bits of the bitmask
    path = write_lines(tmp_path / "m.json", [lit(asin="A1", related={"also_bought": ["A2"]}),
                                             lit(asin="A2", related=extra),
                                             lit(asin="A3", related={"kind_0": ["A1"]})])
    ids, mentions, _, report = amazon(path)
    only_rejects(report, {"bad_related": [2]}, path)
    assert "kind_0" in mentions.relation_names and partners(ids, mentions, "A3") == {"A1"}


def test_prepare_amazon_writes_what_used_to_crash_the_parquet_writer(tmp_path):
    lines = [lit(asin=f"P{i}", related={"also_bought": [f"P{(i + 1) % 30}", f"P{(i + 2) % 30}"]},
                 salesRank={"Toys": i + 1}, price=float(i)) for i in range(30)]
    lines[3] = "{'asin': 'P3', 'salesRank': {'Toys': " + str(2**70) + "}, 'related': {'also_bought': ['P4']}}"
    lines[4] = "{'asin': 'P4', 'price': NaN, 'related': {'also_bought': ['P5', '', ' P6 ']}}"
    path = write_lines(tmp_path / "m.json", lines)
    manifest = prepare_amazon([path], tmp_path / "d", progress=False)
    assert manifest["records_rejected"] == 0 and manifest["records_parsed"] == 30
    assert manifest["fields_nulled"] == {"bad_sales_rank": 1, "bad_price": 1}
    assert manifest["ids_rejected"] == {"empty_id": 1}
    assert manifest["fields_nulled_examples"]["bad_sales_rank"][0].startswith(f"{path}:4:")
    products = pq.read_table(tmp_path / "d" / "products.parquet").to_pydict()
    row = {a: k for k, a in enumerate(products["asin"])}
    assert products["sales_rank"][row["P3"]] is None and products["sales_rank"][row["P2"]] == 3
    assert products["price"][row["P4"]] is None and products["price"][row["P5"]] == 5.0
    assert "" not in row and " P6 " not in row


# ---------------------------------------------------------------- edge lists


def test_edges_bom_is_not_part_of_the_first_id(tmp_path):
    path = write_lines(tmp_path / "e.txt", ["1\t2", "2\t3", "3\t1"], bom=True)
    ids, source, _, _, report = read_edges([path], progress=False)
    only_rejects(report, {}, path)
    assert ids.keys() == ["1", "2", "3"] and report.records_parsed == 3


@pytest.mark.parametrize("weight", ["1e300", "-1e300", "1e-300", "3.5e38", "nan", "inf", "-1", "0"])
def test_edge_weight_that_float32_cannot_hold_is_bad_weight(tmp_path, weight):
    path = write_lines(tmp_path / "e.txt", ["a b 2.5", f"b c {weight}", "c d 3.0e38"])
    ids, source, target, w, report = read_edges([path], progress=False)
    only_rejects(report, {"bad_weight": [2]}, path)
    assert w.tolist() == [2.5, 3.0e38] and np.isfinite(w.astype(np.float32)).all()
    assert [ids.keys()[s] for s in source] == ["a", "c"]


def test_edges_invalid_utf8_id_is_bad_encoding(tmp_path):
    path = write_lines(tmp_path / "e.txt", [b"a b", b"caf\xe9 d", b"c d"])
    ids, *_, report = read_edges([path], progress=False)
    only_rejects(report, {"bad_encoding": [2]}, path)
    assert ids.keys() == ["a", "b", "c", "d"]


# ---------------------------------------------------------------- corrupt gzip


def stored_gzip(data: bytes) -> tuple[bytes, list[tuple[int, int]]]:
    """gzip of ``data`` in stored deflate blocks; each block's (offset of its header in the gzip, offset of its
    first byte in ``data``). A wrong NLEN in one block is corrupt data that zlib detects right there."""
    c = zlib.compressobj(0, zlib.DEFLATED, 31)
    gz = c.compress(data) + c.flush()
    blocks, pos, out = [], 10, 0
    while True:
        header, length = gz[pos], int.from_bytes(gz[pos + 1:pos + 3], "little")
        assert header & 0b110 == 0 and int.from_bytes(gz[pos + 3:pos + 5], "little") == length ^ 0xFFFF
        blocks.append((pos, out))
        pos, out = pos + 5 + length, out + length
        if header & 1:
            break
    assert out == len(data)
    return gz, blocks


def test_corrupt_gzip_keeps_every_line_decoded_before_the_error(tmp_path):
    lines = [f"{i} {i * 7 % 1000} {1 + i % 9}" for i in range(150_000)]
    data = ("\n".join(lines) + "\n").encode()
    gz, blocks = stored_gzip(data)
    assert len(gz) > 1.5 * CHUNK_BYTES
    pos, before = next((p, o) for p, o in blocks if p > CHUNK_BYTES + 200_000)  # mid second 1 MB chunk
    bad = bytearray(gz)
    bad[pos + 3] ^= 0xFF  # NLEN no longer matches LEN: "invalid stored block lengths"
    path = tmp_path / "e.txt.gz"
    path.write_bytes(bytes(bad))
    kept = data[:before].split(b"\n")
    complete, cut = kept[:-1], kept[-1]
    assert cut  # the block boundary falls inside a line
    messages = []
    ids, source, target, weight, report = read_edges([path], progress=False, log=messages.append)
    only_rejects(report, {"truncated_line": [len(complete) + 1]}, path)
    assert report.records_parsed == len(complete) == len(source)  # every line before the error, no more
    keys = ids.keys()
    assert [f"{keys[a]} {keys[b]} {w:g}" for a, b, w in zip(source[-3:], target[-3:], weight[-3:])] == \
        [line.decode() for line in complete[-3:]]
    (info,) = report.truncated_files
    assert info["complete_lines"] == len(complete) and "corrupt gzip data at compressed byte" in info["reason"]
    offset = int(info["reason"].split("compressed byte ")[1].split(" ")[0].replace(",", ""))
    assert pos <= offset < pos + 5
    assert "truncated" in report.files[0] and "line" in messages[0]


def test_corrupt_compressed_gzip_keeps_the_lines_before_the_damage(tmp_path):
    rng = np.random.default_rng(0)
    lines = [f"{i} {rng.integers(1 << 40):x} {rng.integers(1 << 40):x}".encode() for i in range(120_000)]
    data = b"\n".join(lines) + b"\n"
    gz = bytearray(gzip.compress(data, 6))
    pos = CHUNK_BYTES + 300_000
    assert len(gz) > pos + 100_000
    gz[pos:pos + 64] = os.urandom(64)
    path = tmp_path / "c.txt.gz"
    path.write_bytes(bytes(gz))
    # What the intact prefix decompresses to: those lines must all come back, identical.
    intact = zlib.decompressobj(wbits=31).decompress(bytes(gz[:pos]))
    n_intact = intact.count(b"\n")
    reader = LineReader(path)
    got = list(reader)
    assert reader.truncated and "corrupt" in reader.truncation_reason
    assert len(got) >= n_intact > 0
    assert [line for _, line in got[:n_intact]] == lines[:n_intact]


@pytest.mark.parametrize("damage", ["none", "random bytes", "cut", "trailing garbage", "second member cut"])
def test_zlib_ng_reads_what_zlib_reads(tmp_path, monkeypatch, damage):
    """The reader inflates with zlib-ng; the standard library's zlib (its fallback) gives the same lines, the
    same verdict and the same offset of the damage, on intact and on damaged files of two members."""
    from itemvec.data import io

    if io.inflate is zlib:
        pytest.skip("zlib-ng is not installed")
    rng = np.random.default_rng(1)
    lines = [f"{i} {rng.integers(1 << 40):x}".encode() for i in range(150_000)]
    half = len(lines) // 2
    gz = bytearray(gzip.compress(b"\n".join(lines[:half]) + b"\n", 6) +
                   gzip.compress(b"\n".join(lines[half:]) + b"\n", 6))
    if damage == "random bytes":
        gz[CHUNK_BYTES + 1000:CHUNK_BYTES + 1040] = rng.integers(0, 256, 40, dtype=np.uint8).tobytes()
    elif damage == "cut":
        del gz[CHUNK_BYTES // 2:]
    elif damage == "trailing garbage":
        gz += b"not gzip"
    elif damage == "second member cut":
        del gz[len(gz) - 5000:]
    path = tmp_path / "l.txt.gz"
    path.write_bytes(bytes(gz))

    def read():
        reader = LineReader(path)
        return list(reader), reader.truncated, reader.truncation_reason, reader.partial_last_line

    ng = read()
    monkeypatch.setattr(io, "inflate", zlib)
    assert read() == ng
    assert ng[1] == (damage != "none") and len(ng[0]) > 10_000
    path = tmp_path / "e.txt.gz"
    path.write_bytes(gzip.compress(b"a b\nb c\n") + b"garbage after the member")
    ids, source, *_, report = read_edges([path], progress=False, log=lambda m: None)
    only_rejects(report, {}, path)
    assert report.records_parsed == 2 and report.truncated_files and "corrupt" in report.truncated_files[0]["reason"]


def test_gzip_zero_padding_across_a_chunk_boundary_is_not_corruption(tmp_path):
    path = tmp_path / "e.txt.gz"
    member = gzip.compress(b"a b\nb c\n")
    path.write_bytes(member + b"\x00" * (CHUNK_BYTES + 10 - len(member)))
    reader = LineReader(path)
    assert [line for _, line in reader] == [b"a b", b"b c"] and not reader.truncated


def test_a_file_that_is_all_corrupt_gzip_is_one_clean_error(tmp_path):
    path = tmp_path / "e.txt.gz"
    path.write_bytes(b"\x1f\x8b" + b"\xff" * 100)
    with pytest.raises(InputError, match="corrupt gzip"):
        prepare_edges([path], tmp_path / "d", progress=False)


# ---------------------------------------------------------------- sessions


def test_diginetica_bom_header_is_a_header_not_a_rejected_record(tmp_path):
    path = write_lines(tmp_path / "d.csv", ["sessionId;userId;itemId;timeframe;eventdate",
                                            "1;;10;100;2016-05-09", "1;;11;200;2016-05-09"], bom=True)
    ids, sessions, report, state = read_sessions([path], "diginetica", progress=False)
    only_rejects(report, {}, path)
    assert state["header_lines"] == 1 and ids.keys() == ["10", "11"] and report.records_parsed == 2


def test_diginetica_header_with_a_bad_byte_is_still_a_header(tmp_path):
    path = write_lines(tmp_path / "d.csv", [b"itemId;sessionId;timeframe;eventdate;caf\xe9",
                                            b"10;1;100;2016-05-09;x", b"11;1;200;2016-05-09;y"])
    ids, _, report, state = read_sessions([path], "diginetica", progress=False)
    only_rejects(report, {}, path)
    assert state["header_lines"] == 1 and ids.keys() == ["10", "11"]


@pytest.mark.parametrize("frame", [str(2**63), "9" * 5000])
def test_diginetica_timeframe_beyond_int64_is_bad_time(tmp_path, frame):
    path = write_lines(tmp_path / "d.csv", ["session_id;user_id;item_id;timeframe;eventdate",
                                            "1;;10;100;2016-05-09", f"1;;12;{frame};2016-05-09",
                                            "1;;11;200;2016-05-09"])
    ids, sessions, report, _ = read_sessions([path], "diginetica", progress=False)
    only_rejects(report, {"bad_time": [3]}, path)
    assert [ids.keys()[i] for i in sessions.items] == ["10", "11"]


@pytest.mark.parametrize("fmt, lines", [("s3rec", ["1 10 11", "2 11 12"]), ("sasrec", ["1 10", "1 11"]),
                                        ("yoochoose", ["1\t10\t5", "1\t11\t6"])])
def test_sequence_formats_strip_the_bom(tmp_path, fmt, lines):
    path = write_lines(tmp_path / "s.txt", lines, bom=True)
    ids, sessions, report, _ = read_sessions([path], fmt, progress=False)
    only_rejects(report, {}, path)
    assert sessions.names[0] == "1" and ids.keys()[0] == "10"


@pytest.mark.parametrize("time", ["1e400", "nan", "99999-01-01"])
def test_yoochoose_bad_time_is_rejected(tmp_path, time):
    path = write_lines(tmp_path / "y.txt", ["1\t10\t5", f"1\t12\t{time}", "1\t11\t6"])
    ids, sessions, report, _ = read_sessions([path], "yoochoose", progress=False)
    only_rejects(report, {"bad_time": [2]}, path)
    assert [ids.keys()[i] for i in sessions.items] == ["10", "11"]


def test_sessions_invalid_utf8_is_bad_encoding(tmp_path):
    path = write_lines(tmp_path / "s.txt", [b"1 10", b"1 1\xe90", b"1 11"])
    ids, _, report, _ = read_sessions([path], "sasrec", progress=False)
    only_rejects(report, {"bad_encoding": [2]}, path)
    assert ids.keys() == ["10", "11"]


def test_attributes_bom_int64_range_and_broken_gzip(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(BOM + json.dumps({"1": [1, 2], "2": [2**64 - 1], "3": [3]}).encode())
    attributes, info = read_attributes(path, max_bad_fraction=0.5)
    assert attributes == {"1": [1, 2], "3": [3]} and info["entries_rejected"] == 1
    assert "'2'" in info["rejected_examples"][0]
    broken = tmp_path / "b.json.gz"
    good = gzip.compress(b'{"1": [1]}')
    broken.write_bytes(good[:12] + b"\xff" * 20 + good[32:])
    with pytest.raises(InputError, match="broken gzip"):
        read_attributes(broken)


# ---------------------------------------------------------------- ratings


@pytest.mark.parametrize("stamp", ["9" * 20, "-" + "9" * 25, "9" * 5000, "1e300", "1e400", "nan"])
def test_movielens_csv_timestamp_beyond_int64_is_bad_timestamp(tmp_path, stamp):
    path = write_lines(tmp_path / "ratings.csv", ["userId,movieId,rating,timestamp", "1,10,4.0,100",
                                                  f"1,11,3.5,{stamp}", "2,10,5.0,200"])
    cat, report = read_ratings(path, "movielens-csv")
    only_rejects(report, {"bad_timestamp": [3]}, path)
    assert rating_rows(cat) == [("1", "10", 4.0, 100), ("2", "10", 5.0, 200)]


@pytest.mark.parametrize("record, reason", [
    ({"reviewerID": "U2", "asin": "I2", "overall": 4.0, "unixReviewTime": 2**64 - 1}, "bad_timestamp"),
    ({"reviewerID": "U2", "asin": "I2", "overall": 4.0, "unixReviewTime": 1e300}, "bad_timestamp"),
    ({"reviewerID": ["U2"], "asin": "I2", "overall": 4.0}, "bad_id"),
    ({"reviewerID": 7, "asin": "I2", "overall": 4.0}, "bad_id"),
    ({"reviewerID": "U2", "asin": {"id": 1}, "overall": 4.0}, "bad_id"),
    ({"reviewerID": "   ", "asin": "I2", "overall": 4.0}, "missing_field"),
    ({"reviewerID": "U2", "asin": "I2", "overall": 1e308}, "bad_rating"),
    ({"reviewerID": "U2", "asin": "I2", "overall": 6}, "rating_out_of_range"),
    ({"reviewerID": "U2", "asin": "I2", "overall": True}, "bad_rating"),
    ({"reviewerID": "U2", "asin": "I2", "overall": [4]}, "bad_rating"),
])
def test_amazon_reviews_bad_fields_are_rejected(tmp_path, record, reason):
    path = write_lines(tmp_path / "r.json", [j(reviewerID="U1", asin="I1", overall=5.0, unixReviewTime=10),
                                             json.dumps(record),
                                             j(reviewerID="U3", asin="I1", overall=1.0, unixReviewTime=20)])
    cat, report = read_ratings(path, "amazon-reviews")
    only_rejects(report, {reason: [2]}, path)
    assert rating_rows(cat) == [("U1", "I1", 5.0, 10), ("U3", "I1", 1.0, 20)]


def test_amazon_reviews_invalid_utf8_and_bom(tmp_path):
    path = write_lines(tmp_path / "r.json", [j(reviewerID="U1", asin="I1", overall=5.0),
                                             b'{"reviewerID": "U\xe9", "asin": "I2", "overall": 4.0}',
                                             j(reviewerID="U3", asin="I1", overall=1.0)], bom=True)
    cat, report = read_ratings(path, "amazon-reviews")
    only_rejects(report, {"bad_encoding": [2]}, path)
    assert [r[0] for r in rating_rows(cat)] == ["U1", "U3"]


@pytest.mark.parametrize("rating", ["1e308", "-1e308", "3.5e38", "1e39", "inf", "nan"])
def test_csv_rating_that_float32_cannot_hold_is_bad_rating(tmp_path, rating):
    path = write_lines(tmp_path / "r.csv", ["user,item,rating", "a,x,3.0e38", f"b,x,{rating}", "c,y,-2"])
    cat, report = read_ratings(path, "csv")
    only_rejects(report, {"bad_rating": [3]}, path)
    assert rating_rows(cat) == [("a", "x", 3.0e38, 0), ("c", "y", -2.0, 0)]
    assert np.isfinite(np.asarray([r[2] for r in rating_rows(cat)], np.float32)).all()


def test_csv_row_that_the_csv_module_refuses_is_a_parse_error(tmp_path):
    path = write_lines(tmp_path / "r.csv", [b"user,item,rating", b'a,"x",4', b'b,y\rz,"3"', b"c,y,2"], bom=True)
    cat, report = read_ratings(path, "csv")
    only_rejects(report, {"parse_error": [3]}, path)
    assert [r[:2] for r in rating_rows(cat)] == [("a", "x"), ("c", "y")]


def test_csv_header_with_a_bad_byte_still_names_the_columns(tmp_path):
    path = write_lines(tmp_path / "r.csv", [b"user,item,rating,caf\xe9", b"a,x,4,1", b"b,x\xe9,3,1", b"c,y,2,1"])
    cat, report = read_ratings(path, "csv")
    only_rejects(report, {"bad_encoding": [3]}, path)
    assert cat.header_lines == 1 and [r[0] for r in rating_rows(cat)] == ["a", "c"]


@pytest.mark.parametrize("age", ["9" * 30, "9" * 5000, "151", "40000"])
def test_u_user_age_out_of_range_is_bad_age(tmp_path, age):
    path = write_lines(tmp_path / "u.user", ["1|24|M|technician|85711", f"2|{age}|F|other|94043",
                                             "3|023|M|writer|32067"])
    cat, report = read_side(path, R._read_u_user)
    only_rejects(report, {"bad_age": [2]}, path)
    assert [cat.user_side[cat.users.index[u]]["age"] for u in ("1", "3")] == [24, 23]
    assert "2" not in cat.users.index


def test_movies_csv_bom_and_bad_rows(tmp_path):
    path = write_lines(tmp_path / "movies.csv", [b"movieId,title,genres", b"1,Toy Story (1995),Comedy",
                                                 b'2,Bad\rRow (1995),"Drama"', b"3,Caf\xe9 (1995),Drama",
                                                 b"4,Heat (1995),Action"], bom=True)
    cat, report = read_side(path, R._read_movies_csv)
    only_rejects(report, {"parse_error": [3], "bad_encoding": [4]}, path)
    assert cat.header_lines == 1 and sorted(cat.items.keys()) == ["1", "4"]


def test_prepare_ratings_with_an_absurd_age_writes_users(tmp_path):
    folder = tmp_path / "ml"
    folder.mkdir()
    write_lines(folder / "u.data", [f"{u}\t{i}\t{1 + (u + i) % 5}\t{1000 + u * 10 + i}"
                                    for u in range(1, 6) for i in range(1, 8)])
    write_lines(folder / "u.user", [f"{u}|{'9' * 30 if u == 2 else 20 + u}|M|other|0000{u}" for u in range(1, 6)])
    manifest = R.prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", progress=False,
                                 max_bad_fraction=0.25)
    assert manifest["metadata"]["rejected"] == {"bad_age": 1}
    users = pq.read_table(tmp_path / "d" / "users.parquet").to_pydict()
    assert sorted(a for a in users["age"] if a is not None) == [21, 23, 24, 25]


# ---------------------------------------------------------------- --max-bad-fraction


@pytest.mark.parametrize("fraction, records, bad, fails", [
    (0.29, 100, 29, False), (0.29, 100, 30, True), (0.01, 100, 1, False), (0.01, 100, 2, True),
    (0.1, 30, 3, False), (0.07, 100, 7, False), (0.57, 100, 57, False), (0.0, 10, 0, False), (0.0, 10, 1, True),
])
def test_max_bad_fraction_compares_counts_not_floats(fraction, records, bad, fails):
    report = ReadReport(records_read=records, records_parsed=records - bad)
    for k in range(bad):
        report.reject("bad_fields", f"f:{k + 1}", "x")
    assert (bad > Fraction(repr(fraction)) * records) == fails
    if fails:
        with pytest.raises(InputError, match="over --max-bad-fraction"):
            report.check(fraction)
    else:
        report.check(fraction)


def test_prepare_edges_with_29_bad_of_100_passes_at_029(tmp_path):
    lines = [f"{i} {i + 1}" if i >= 29 else f"{i} {i + 1} notaweight" for i in range(100)]
    path = write_lines(tmp_path / "e.txt", lines)
    manifest = prepare_edges([path], tmp_path / "d", progress=False, max_bad_fraction=0.29)
    assert manifest["records_rejected"] == 29 and manifest["records_read"] == 100
    assert math.isclose(manifest["records_parsed"], 71)
