"""`read_amazon` with worker processes against the same read in one process.

The workers parse batches of lines while the main process maps the ids and keeps the rows in line order;
the oracle is the read with no workers: ids, mentions, relation codes, metadata and every count and example
of the report must be identical, whatever the batch size, on catalogues with rejects, nulled fields,
duplicate records, blank lines, several files and relation names outside the standard ones (whose codes
follow first use, so a worker cannot give them). ``prepare amazon`` then writes the same files byte for byte.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
from pathlib import Path

import pytest
from test_related_scan import TRICKY  # lines meant to fool the byte scan

import itemvec.data.prepare as prepare
from itemvec.data.prepare import prepare_amazon, read_amazon
from itemvec.data.synthetic import write_amazon_2014
from itemvec.errors import ItemvecError


def _read(paths: list[Path], workers: int, batch_bytes: int | None = None) -> dict:
    ids, mentions, meta, report = read_amazon(paths, progress=False, log=lambda m: None, workers=workers,
                                              batch_bytes=batch_bytes)
    assert mentions.workers == workers
    source, target, relation = mentions.arrays()
    keys = ids.keys()
    return {"keys": keys, "mentions": (source.tolist(), target.tolist(), relation.tolist()),
            "relations": list(mentions.relation_names), "meta": meta.table(keys).to_pylist(),
            "items": meta.item.tolist(), "report": report.as_dict()}


def _lines(n: int, offset: int = 0) -> list[str]:
    """Ordinary 2014 lines, some 2018 lines, and the odd ones every reader meets."""
    lines = []
    for i in range(offset, offset + n):
        partners = [f"P{(i * 7 + k) % 97:04d}" for k in range(1, 1 + i % 5)]
        lines.append(repr({"asin": f"P{i % 97:04d}", "title": f"Product {i}" if i % 3 else None,
                           "price": float(i) if i % 4 else "$1,299.00", "salesRank": {"Books": i},
                           "related": {"also_bought": partners, "also_viewed": partners[:1]}}))
        if i % 11 == 0:
            lines.append(json.dumps({"asin": f"J{i}", "also_buy": partners, "brand": "B", "price": "$3"}))
        if i % 13 == 0:
            lines.append("{'asin': 'BAD" + str(i) + "', 'related': ")  # a reject
        if i % 17 == 0:
            lines.append(repr({"asin": f"N{i}", "price": float("nan"), "related": {"also_bought": ["", " X1 "]}}))
        if i % 19 == 0:
            lines.append("")
    return lines


@pytest.fixture()
def catalogue(tmp_path):
    """Two files: a gzip one whose middle lines name relation types of their own (codes 4 and 5 in order of
    first use, met in different batches), and a plain one; products repeat across and within them."""
    first = tmp_path / "a.json.gz"
    odd = [repr({"asin": "S1", "related": {"similar": ["P0001", "P0002"]}}),
           json.dumps({"asin": "S2", "also_buy": ["P0003"], "related": {"compared_with": ["P0004"]}})]
    lines = _lines(120) + TRICKY + odd[:1] + _lines(60, 500) + odd[1:] + _lines(80, 900)
    first.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    second = tmp_path / "b.json"
    second.write_text("\n".join(_lines(50, 3000) + TRICKY[:5]) + "\n")
    return [first, second]


@pytest.mark.parametrize("batch_bytes", [200, 3000, None])
def test_workers_read_what_one_process_reads(catalogue, batch_bytes):
    alone = _read(catalogue, 0)
    assert set(alone["relations"]) >= {"similar", "compared_with"}
    assert alone["report"]["records_rejected"] > 0 and alone["report"]["fields_nulled"]
    assert alone["report"]["duplicate_records_merged"] > 0
    assert _read(catalogue, 2, batch_bytes) == alone
    assert not multiprocessing.active_children()  # the workers ended with the read
    assert _read(catalogue, 0, batch_bytes) == alone


def test_a_batch_with_a_new_relation_name_is_read_again_here(catalogue, monkeypatch):
    """The workers' answer for a batch with a non-standard name is None; the main process parses it with its
    own codes (a worker's table holds only the standard ones)."""
    reread = []  # the calls in this process (a forked worker appends to its own copy)
    parse = prepare._parse_batch

    def counted(lines, codes):
        reread.append(codes.frozen)
        return parse(lines, codes)

    monkeypatch.setattr(prepare, "_parse_batch", counted)
    result = _read(catalogue, 2, 200)
    assert reread.count(False) == 2  # the two batches with the names of their own, and no other
    assert result == _read(catalogue, 0)


def test_prepare_with_workers_writes_the_same_files(tmp_path, monkeypatch):
    raw = tmp_path / "catalogue.json.gz"
    write_amazon_2014(raw, 3000, seed=3, progress=False)
    doubled = tmp_path / "doubled.json.gz"
    doubled.write_bytes(raw.read_bytes() * 2)  # two gzip members: every record twice (merged duplicates)
    monkeypatch.setattr(prepare, "LINE_BATCH_BYTES", 20_000)
    outputs = {}
    for workers in (0, 2):
        out = tmp_path / f"data-{workers}"
        manifest = prepare_amazon([doubled], out, seed=4, progress=False, log=lambda m: None, workers=workers)
        assert manifest["read_workers"] == workers and manifest["duplicate_records_merged"] > 0
        outputs[workers] = out
    files = sorted(p.relative_to(outputs[0]) for p in outputs[0].rglob("*.parquet"))
    assert len(files) >= 7
    for name in files:
        assert (outputs[0] / name).read_bytes() == (outputs[2] / name).read_bytes(), name
    manifests = [json.loads((outputs[w] / "manifest.json").read_text()) for w in (0, 2)]
    for m in manifests:
        for key in ("seconds", "peak_rss_mb", "read_workers"):
            m.pop(key)
    assert manifests[0] == manifests[1]


def test_small_inputs_are_read_in_one_process(tmp_path, monkeypatch):
    raw = tmp_path / "small.json"
    raw.write_text("\n".join(_lines(30)) + "\n")
    assert prepare.read_workers([raw]) == 0
    monkeypatch.setattr(prepare, "PARALLEL_MIN_BYTES", 10)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    assert prepare.read_workers([raw]) == prepare.MAX_READ_WORKERS
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert prepare.read_workers([raw]) == 0


def _die(lines):
    os._exit(9)  # as the kernel's out-of-memory killer would end it


def test_a_worker_that_dies_is_one_clear_error(catalogue, monkeypatch):
    monkeypatch.setattr(prepare, "_parse_in_worker", _die)
    with pytest.raises(ItemvecError, match=r"read worker process ended unexpectedly \(exit status 9; .*--workers 0"):
        read_amazon(catalogue, progress=False, log=lambda m: None, workers=2, batch_bytes=200)
