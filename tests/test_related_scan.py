"""The 2014 reader's byte scan of relation lists (itemvec.data.related) against the whole-line parse.

``read_amazon`` reads a plain ``'related'`` value from a line's bytes and parses only the rest; every other
line is parsed whole. The oracle is the same reader with the scan switched off (every line parsed whole, as
all lines once were): ids, mentions, metadata, counts and reject examples must be identical, on hand-made
lines that try to fool the scan (strings holding ``'related'``, comments, escapes, prefixes, concatenated
keys, duplicate keys, top-level lists, bad bytes in the rest) and on random soups of such pieces.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from itemvec.data import related
from itemvec.data.amazon import RELATION_TYPES
from itemvec.data.prepare import read_amazon

PLAIN = "'related': {'also_bought': ['B1', 'B2'], 'also_viewed': ['B3']}"


def _whole(monkeypatch):
    """Switch the scan off: every line is left to the full parser."""
    real = related.scan

    def no_cut(buf, starts, ends, cut, spans, line_spans, groups, line_groups):
        real(buf, starts, ends, cut, spans, line_spans, groups, line_groups)
        cut[:] = -1
        line_spans[:] = 0
        line_groups[:] = 0
        return 0, 0

    monkeypatch.setattr(related, "scan", no_cut)


def _read(path: Path):
    ids, mentions, meta, report = read_amazon([path], progress=False, log=lambda m: None)
    source, target, relation = mentions.arrays()
    keys = ids.keys()
    return {
        "keys": list(keys),
        "mentions": (source.tolist(), target.tolist(), relation.tolist()),
        "relations": list(mentions.relation_names),
        "meta": meta.table(keys).to_pylist(),
        "report": (report.records_read, report.records_parsed, dict(report.rejected),
                   {k: list(v) for k, v in report.rejected_examples.items()}, dict(report.fields_nulled),
                   dict(report.ids_rejected), report.duplicate_records),
    }


def both(path: Path, monkeypatch) -> tuple[dict, dict]:
    fast = _read(path)
    with monkeypatch.context() as m:
        _whole(m)
        whole = _read(path)
    return fast, whole


def write(path: Path, lines: list[bytes | str]) -> Path:
    data = b"\n".join(x.encode("utf-8") if isinstance(x, str) else x for x in lines) + b"\n"
    path.write_bytes(gzip.compress(data))
    return path


def scan_one(line: bytes):
    buf = np.frombuffer(line, dtype=np.uint8)
    starts, ends = np.array([0], np.int64), np.array([len(line)], np.int64)
    cut = np.empty((1, 2), np.int64)
    spans = np.empty((len(line) // 4 + 1, 2), np.int64)
    line_spans = np.empty(2, np.int64)
    groups = np.empty((len(line) // 8 + 1, 2), np.int64)
    line_groups = np.empty(2, np.int64)
    related.scan(buf, starts, ends, cut, spans, line_spans, groups, line_groups)
    if cut[0, 0] < 0:
        return None
    ids = [line[a:b].decode() for a, b in spans[line_spans[0]:line_spans[1]].tolist()]
    return line[cut[0, 0]:cut[0, 1]].decode(), ids, groups[line_groups[0]:line_groups[1]].tolist()


def test_names_are_the_relation_codes():
    assert tuple(n.decode() for n in related.NAMES) == RELATION_TYPES


def test_scan_reads_a_plain_value():
    line = ("{'asin': 'A1', 'title': 'x', " + PLAIN + ", 'salesRank': {'Books': 3}}").encode()
    value, ids, groups = scan_one(line)
    assert value == PLAIN.split(": ", 1)[1]
    assert ids == ["B1", "B2", "B3"]
    assert groups == [[1, 2], [2, 1]]  # also_bought (code 1) twice, also_viewed (code 2) once
    assert scan_one(b"{'asin': 'A1', 'related': {}}") == ("{}", [], [])
    assert scan_one(b"{'asin': 'A1', 'related': {'also_bought': [], 'bought_together': ['Q']}}")[2] == [[0, 1]]


@pytest.mark.parametrize("line", [
    "{'asin': 'A1', 'related': {'also_bought': ['B1',]}}",  # trailing comma
    "{'asin': 'A1', 'related': {'also_bought': ['B 1']}}",  # a space in an id
    "{'asin': 'A1', 'related': {'also_bought': ['']}}",  # an empty id
    "{'asin': 'A1', 'related': {'also_bought': ['B\\x31']}}",  # an escape
    "{'asin': 'A1', 'related': {'also_buy': ['B1']}}",  # another name
    "{'asin': 'A1', 'related': {'also_bought': ['B1'], 'also_bought': ['B2']}}",  # a name twice
    "{'asin': 'A1', 'related': {\"also_bought\": ['B1']}}",  # double quotes
    "{'asin': 'A1', 'related': None}",
    "{'asin': 'A1', 'related': {'also_bought': ['B1']}, 'related': {}}",  # twice
    "{'asin': 'A1', 'related': {'also_bought': ['B1']}, \"related\": {}}",
    "{'asin': 'A1', 'related': {'also_bought': ['B1']}, related: {}}",  # JSON5 unquoted key
    "{'asin': 'A1', 'related': {'also_bought': ['B1']}, 'rel\\x61ted': {}}",  # an escaped key
    "{'asin': 'A1', 'x' 'related': {'also_bought': ['B1']}}",  # concatenated: the key is 'xrelated'
    "{'asin': 'A1', b'related': {'also_bought': ['B1']}}",  # a bytes key
    "{'asin': 'A1', ('related'): {'also_bought': ['B1']}, 'related': {}}",  # parenthesised
    "{'asin': 'A1', 'related': {'also_bought': ['B1']}} # a comment",
    "{'asin': 'A1', 'related': {'also_bought': ['B1']}} {'asin': 'A2'}",  # something after the record
    "{'asin': 'A1', 'title': '''x''', 'related': {'also_bought': ['B1']}}",
    "{'asin': 'A1', 'related': {'also_bought': ['B1']}",  # unbalanced
    "{'asin': 'A1', 'title': 'unterminated, 'related': {'also_bought': ['B1']}}",
])
def test_scan_leaves_what_is_not_plain_to_the_parser(line):
    assert scan_one(line.encode()) is None


def test_scan_ignores_related_that_is_not_a_top_level_key():
    line = ("{'asin': 'A1', 'title': \"'related': {'also_bought': ['X']}\", 'd': {'related': {}}, "
            + PLAIN + "}").encode()
    assert scan_one(line)[1] == ["B1", "B2", "B3"]
    assert scan_one(b"{'asin': 'A1', 'title': 'related'}") is None  # a value, not a key: nothing to cut


TRICKY = [
    "{'asin': 'A1', 'title': 'One', " + PLAIN + "}",
    "{'asin': 'A2', 'related': {'also_bought': ['A1', 'A1', 'B9'], 'bought_together': ['A3']}, 'price': 3.5}",
    "{'asin': 'A3', 'related': {'also_bought': [' B1 ', '', 'B4']}}",  # stripped and dropped by the parser
    "{'asin': 'A4', 'related': {'also_viewed': ['B5']}, 'also_bought': ['B6']}",  # top-level list too
    "{'asin': 'A5', 'related': {'also_viewed': ['B5']}, 'also_bought': []}",
    "{'asin': 'A6', 'related': {'also_bought': ['B1']}, 'related': {'also_viewed': ['B7']}}",
    "{'asin': 'A7', 'related': {'also_bought': ['B1']}, \"related\": None}",
    "{'asin': 'A8', 'x' 'related': {'also_bought': ['B1']}}",
    "{'asin': 'A9', 'related': {'also_bought': ['B1']}, 'title': 'caf\\xe9 \\ud800'}",  # lone surrogate
    "{'asin': 'A10', 'related': {'buy_after_viewing': ['B8']}, 'salesRank': {'Books': -4}}",
    "{'asin': 'A11', 'related': {'also_bought': ['B1']}, 'salesRank': {'Books': 1e999}}",
    "{'related': {'also_bought': ['B1']}}",  # no asin: rejected
    "{'asin': 'A12', 'related': {'also_bought': ['B1']}, 'title': 'bad \xff byte'}",
    "{'asin': 'A13', 'related': {'also_bought': ['B1']}, 'other': {'also_bought': ['ZZ']}}",
    "{'asin': 'A14', 'related': {'also_bought': ['B1']}, 'kind_0': ['Q1']}",
    "{'asin': 'A15', 'related': {'also_bought': ['B1']}, 'related2': {'also_bought': ['Q2']}}",
    "{'asin': 'A16', 'related': {'also_bought': ['B1']}, 'asin': 'A16b'}",  # the later asin wins
    "{'asin': 'A1', 'related': {'also_viewed': ['B2']}}",  # a duplicate record
    "{'asin': 'A17', 'related': {'also_bought': ['B1']}, 'description': ['line', 'two']}",
    "{'asin': 'A18', 'related': {'also_bought': ['B1']}, 'title': None, 'brand': 7}",
    "{'asin': 'A19', \t'related' :\t{ 'also_bought' : [ 'B1' ,'B2' ] , 'also_viewed':['B3'] } }",
    "{'asin': u'A20', 'related': {'also_bought': ['B1']}, 'title': r'a\\'b'}",
    "{'asin': 'A21', 'related': {'also_bought': ['B1']}, 'title': True}",
    "['not', 'a', 'record']",
]


def test_tricky_lines_read_as_the_whole_line_parse_reads_them(tmp_path, monkeypatch):
    lines = [t.encode("utf-8", "surrogateescape") if "\xff" not in t else t.encode("latin-1") for t in TRICKY]
    assert sum(scan_one(line) is not None for line in lines) >= 12  # most take the scanned path
    path = write(tmp_path / "meta.json.gz", lines)
    fast, whole = both(path, monkeypatch)
    assert fast == whole
    assert fast["report"][2]  # some lines were rejected, the same way on both paths


PIECES = ["'asin': 'A1'", "'asin': 'A2'", PLAIN, "'related': {}", "'related': None", "related: {}",
          "\"related\": {'also_viewed': ['C1']}", "'also_bought': ['C2']", "'title': 'related'",
          "'title': \"it's 'related': {}\"", "'x' 'related': {'also_bought': ['C3']}", "'rel\\x61ted': {}",
          "'related': {'also_bought': ['C4', 'C5'], 'buy_after_viewing': ['C6']}", "'price': '$3'",
          "'related': {'also_bought': [' C7']}", "'d': {'related': {'also_bought': ['C8']}}", "# c", "'t': '''x'''",
          "'title': 'a\\\\'", "'s': ('related')"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.lists(st.sampled_from(PIECES), min_size=1, max_size=5), min_size=1, max_size=8),
       sep=st.sampled_from([", ", ",", " , "]))
def test_random_records_read_as_the_whole_line_parse_reads_them(records, sep, monkeypatch):
    lines = ["{" + sep.join(pieces) + "}" for pieces in records]
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d) / "meta.json.gz", lines)
        fast, whole = both(path, monkeypatch)
    assert fast == whole
