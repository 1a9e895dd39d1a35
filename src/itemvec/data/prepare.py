"""`itemvec prepare`: raw files → DATA_DIR (products, weighted pairs, seeded split with negatives, manifest).

Memory held while streaming: the id map (one dict entry per product), the metadata columns of products that
have a line, and 9 bytes per relation mention; the raw input is never held (it is read in 1 MB chunks).

The other prepares (itemvec.data.sessions, itemvec.data.ratings) end with ``write_data_dir`` or
``finish_data_dir`` too; the reading that every prepare shares (``read_lines``, ``ReadReport``) is in
itemvec.data.readers.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from itemvec.costs import max_rss_mb
from itemvec.data.amazon import RELATION_TYPES, RecordError, detect_format, parse_line
from itemvec.data.pairs import (
    DEFAULT_SPLIT,
    DEFAULT_WEIGHTS,
    IdMap,
    Pairs,
    build_pairs,
    pair_keys,
    split_indices,
)
from itemvec.data.readers import (
    DEFAULT_MAX_BAD_FRACTION,
    ReadReport,
    cyclic_gc_paused,
    log_stderr,
    read_lines,
)
from itemvec.data.sampling import degree_matched_negatives, uniform_negatives
from itemvec.data.store import fingerprint_files, write_json, write_negatives, write_pairs
from itemvec.errors import ConfigError, InputError
from itemvec.outputs import OutputFolder, check_output

T = TypeVar("T")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # weights and ratings are stored as float32
MAX_RELATION_TYPES = 16  # bits of the pairs' relations bitmask (_Mentions.code)


class _MetadataColumns:
    """Columns of the products that have a metadata line, merged across duplicate lines (first wins per field).

    A row per kept line is appended as it is read (``rows``), with the line's dense item id once its batch of
    ids is mapped (``row_item``); duplicate lines are merged at the end."""

    NAMES = ("title", "brand", "categories", "price", "sales_rank", "sales_rank_category", "description")

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.row_item: list[np.ndarray] = []
        self.item: np.ndarray = np.zeros(0, np.int64)  # the items with a line, in order of their first line
        self.columns: dict[str, list] = {}

    def append(self, product) -> None:
        self.rows.append((product.title, product.brand, product.categories, product.price, product.sales_rank,
                          product.sales_rank_category, product.description))

    def merge(self) -> int:
        """One row per item (its first line's, None fields filled from its later lines in order); returns the
        number of duplicate lines merged."""
        row_item = np.concatenate(self.row_item) if self.row_item else np.zeros(0, np.int32)
        items, first = np.unique(row_item, return_index=True)
        order = np.sort(first)  # rows of first lines, in line order
        rows = self.rows
        if len(order) < len(rows):
            repeated = np.ones(len(rows), dtype=bool)
            repeated[order] = False
            first_of = dict(zip(items.tolist(), first.tolist()))
            for r in np.flatnonzero(repeated).tolist():  # later lines of an item, in line order
                k = first_of[int(row_item[r])]
                kept, later = rows[k], rows[r]
                rows[k] = tuple(later[f] if kept[f] is None else kept[f] for f in range(len(kept)))
        kept_rows = [rows[r] for r in order.tolist()] if len(order) < len(rows) else rows
        columns = list(zip(*kept_rows)) if kept_rows else [() for _ in self.NAMES]
        self.columns = {name: list(col) for name, col in zip(self.NAMES, columns)}
        self.item = row_item[order].astype(np.int64)
        self.rows, self.row_item = [], []
        return len(rows) - len(order)

    def row(self, item: int) -> int:
        """The row of ``item`` in ``columns`` (after ``merge``); KeyError for an item without a line."""
        rows = np.flatnonzero(self.item == item)
        if len(rows) == 0:
            raise KeyError(item)
        return int(rows[0])

    def table(self, asins: list[str]) -> pa.Table:
        n = len(asins)
        rows = np.full(n, -1, dtype=np.int64)
        rows[self.item] = np.arange(len(self.item))
        take = pa.array(rows, mask=rows < 0)
        types = {"title": pa.string(), "brand": pa.string(), "categories": pa.list_(pa.list_(pa.string())),
                 "price": pa.float64(), "sales_rank": pa.int64(), "sales_rank_category": pa.string(),
                 "description": pa.string()}
        data = {
            "id": pa.array(np.arange(n, dtype=np.int32)),
            "asin": pa.array(asins, pa.string()),
            "has_metadata": pa.array(rows >= 0),
        }
        for name in self.NAMES:
            data[name] = pa.array(self.columns[name], types[name]).take(take) if n else pa.array([], types[name])
        return pa.table(data)


LINE_BATCH_BYTES = 4 << 20  # lines scanned (itemvec.data.related) and their ids mapped per batch


class _Batch:
    """A batch of lines (``where``, bytes, format) and, once ``scan`` has run, what itemvec.data.related read
    of their relation lists (empty arrays before)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, bytes, str]] = []
        self.size = 0
        self.buf = np.zeros(0, np.uint8)
        self.starts = np.zeros(0, np.int64)
        self.cut = np.zeros((0, 2), np.int64)
        self.spans = np.zeros((0, 2), np.int64)
        self.line_spans = np.zeros(1, np.int64)
        self.groups = np.zeros((0, 2), np.int64)
        self.line_groups = np.zeros(1, np.int64)

    def add(self, where: str, line: bytes, fmt: str) -> None:
        self.lines.append((where, line, fmt))
        self.size += len(line)

    def scan(self) -> None:
        from itemvec.data.related import scan

        lines = [line for _, line, _ in self.lines]
        joined = b"".join(lines)
        self.buf = np.frombuffer(joined, dtype=np.uint8)
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        ends = np.cumsum(lengths)
        self.starts = ends - lengths
        n = len(lines)
        self.cut = np.empty((n, 2), np.int64)
        self.spans = np.empty((len(joined) // 4 + 1, 2), np.int64)
        self.line_spans = np.empty(n + 1, np.int64)
        self.groups = np.empty((len(joined) // 8 + 1, 2), np.int64)
        self.line_groups = np.empty(n + 1, np.int64)
        scan(self.buf, self.starts, ends, self.cut, self.spans, self.line_spans, self.groups, self.line_groups)


class _Mentions:
    """Each kept line's asin and relation lists, as ids in line order: mapped a batch of lines at a time
    (``Interner``) into the directed mentions (line's item → partner, relation) that ``build_pairs`` merges. A
    line's lists come either from its parsed record (``add``) or from the batch's scan of its bytes
    (``add_scanned``; itemvec.data.related). Relation names get codes (bits of a pair's relations) in order of
    first use, the standard types first."""

    def __init__(self, ids, meta: _MetadataColumns) -> None:
        self.ids, self.meta = ids, meta
        self.relation_names: list[str] = []
        self._code: dict[str, int] = {}
        for name in RELATION_TYPES:  # fixed bit order for the standard types (related.NAMES' codes)
            self.code(name)
        self.sources: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.relations: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self._clear()

    def _clear(self) -> None:
        self.asins: list[str] = []  # per kept line of the batch
        self.fast = array("q")  # ... its index in the batch if its lists were scanned, else -1
        self.slow_tokens: list[str] = []  # the partners of the parsed lines, relation by relation
        self.slow_ends = array("q", [0])  # per kept line: the end of its partners in slow_tokens
        self.slow_codes = array("q")  # per (parsed line, relation with partners): its code
        self.slow_counts = array("q")  # ... and how many partners
        self.slow_group_ends = array("q", [0])

    def code(self, name: str) -> int:
        code = self._code.get(name)
        if code is None:
            if len(self.relation_names) >= MAX_RELATION_TYPES:
                raise ConfigError(f"too many relation types (over {MAX_RELATION_TYPES}): "
                                  f"{self.relation_names + [name]}")
            code = self._code[name] = len(self.relation_names)
            self.relation_names.append(name)
        return code

    def add(self, product) -> None:
        self.asins.append(product.asin)
        self.fast.append(-1)
        for relation, partners in product.related.items():
            if partners:
                self.slow_codes.append(self.code(relation))
                self.slow_counts.append(len(partners))
                self.slow_tokens.extend(partners)
        self.slow_ends.append(len(self.slow_tokens))
        self.slow_group_ends.append(len(self.slow_codes))

    def add_scanned(self, asin: str, line: int) -> None:
        self.asins.append(asin)
        self.fast.append(line)
        self.slow_ends.append(self.slow_ends[-1])
        self.slow_group_ends.append(self.slow_group_ends[-1])

    def flush(self, batch: _Batch) -> None:
        """Map the batch's kept lines' ids; ``batch`` is the one their scanned lines index."""
        from itemvec.data.intern import Interner
        from itemvec.data.related import assemble

        n = len(self.asins)
        if n == 0:
            self._clear()
            return
        py_data, py_offsets = Interner._bytes(self.asins + self.slow_tokens)
        fast = np.frombuffer(self.fast, dtype=np.int64)
        scanned = fast[fast >= 0]
        line_spans = batch.line_spans
        n_scanned_ids = int((line_spans[scanned + 1] - line_spans[scanned]).sum())
        scanned_bytes = int((batch.spans[:line_spans[-1], 1] - batch.spans[:line_spans[-1], 0]).sum())
        n_tokens = n + len(self.slow_tokens) + n_scanned_ids
        data = np.empty(len(py_data) + scanned_bytes, np.uint8)
        offsets = np.empty(n_tokens + 1, np.int64)
        n_groups = len(self.slow_codes) + int(batch.line_groups[-1])
        codes = np.empty(n_groups, np.int64)
        counts = np.empty(n_groups, np.int64)
        partners = np.empty(n, np.int64)
        _, g = assemble(py_data, py_offsets, fast, batch.buf, batch.spans, line_spans, batch.groups,
                        batch.line_groups, np.frombuffer(self.slow_ends, dtype=np.int64),
                        np.frombuffer(self.slow_group_ends, dtype=np.int64),
                        np.frombuffer(self.slow_codes, dtype=np.int64), np.frombuffer(self.slow_counts, dtype=np.int64),
                        data, offsets, codes, counts, partners)
        dense = self.ids.add_bytes(data, offsets)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(partners[:-1] + 1, out=starts[1:])
        item = dense[starts]
        is_partner = np.ones(len(dense), dtype=bool)
        is_partner[starts] = False
        self.sources.append(np.repeat(item, partners))
        self.targets.append(dense[is_partner])
        self.relations.append(codes[:g].astype(np.uint8))
        self.counts.append(counts[:g])
        self.meta.row_item.append(item)
        self._clear()

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        empty = np.zeros(0, np.int32)
        source = np.concatenate(self.sources).astype(np.int32, copy=False) if self.sources else empty
        target = np.concatenate(self.targets).astype(np.int32, copy=False) if self.targets else empty
        relation = (np.repeat(np.concatenate(self.relations), np.concatenate(self.counts)) if self.relations
                    else np.zeros(0, np.uint8))
        self.sources, self.targets, self.relations, self.counts = [], [], [], []
        return source, target, relation


def read_amazon(paths: Sequence[str | Path], *, progress: bool = True, log: Callable[[str], None] = log_stderr):
    """Stream Amazon metadata files into (ids, mentions, metadata columns, ReadReport); ids is an ``Interner``
    (``len``, ``keys`` and ``lookup`` as ``IdMap``'s), mentions gives ``arrays()`` and ``relation_names``.

    Lines go in batches of about 4 MB: one kernel call reads the relation lists of every 2014-format line
    whose lists are in the plain form (itemvec.data.related), and only the rest of such a line is parsed; a
    line outside that form, or whose rest does not parse alone, is parsed whole, as every line once was."""
    from itemvec.data.intern import Interner

    ids = Interner()
    meta = _MetadataColumns()
    mentions = _Mentions(ids, meta)
    report = ReadReport()
    formats: dict[str, str] = {}  # per file, from its first record
    batch = _Batch()
    for reader, where, line in read_lines(paths, report, progress, log):
        fmt = formats.get(str(reader.path))
        if fmt is None:
            fmt = formats[str(reader.path)] = detect_format(line)
        batch.add(where, line, fmt)
        if batch.size >= LINE_BATCH_BYTES:
            _read_batch(batch, mentions, meta, report)
            batch = _Batch()
    _read_batch(batch, mentions, meta, report)
    report.duplicate_records += meta.merge()
    for info in report.files:
        info["format"] = formats.get(info["path"])
    return ids, mentions, meta, report


def _read_batch(batch: _Batch, mentions: _Mentions, meta: _MetadataColumns, report: ReadReport) -> None:
    if any(fmt == "2014" for _, _, fmt in batch.lines):
        batch.scan()
    cuts = batch.cut.tolist()
    starts = batch.starts.tolist()
    known = mentions.relation_names
    for i, (where, line, fmt) in enumerate(batch.lines):
        product = None
        if fmt == "2014" and cuts and cuts[i][0] >= 0:
            # The lists were read from the bytes: parse the rest, the value replaced by an empty dict.
            start, end = cuts[i][0] - starts[i], cuts[i][1] - starts[i]
            try:
                product = parse_line(line[:start] + b"{}" + line[end:], fmt)
            except RecordError:
                product = None  # parsed whole below, for the reject's own detail
            if product is not None and product.related:  # top-level lists too: the full parser merges them
                product = None
        scanned = product is not None
        if product is None:
            try:
                product = parse_line(line, fmt)
            except RecordError as exc:
                report.reject(exc.reason, where, str(exc))
                continue
            new = [r for r, partners in product.related.items() if partners and r not in known]
            if new and len(set(new)) + len(known) > MAX_RELATION_TYPES:
                report.reject("bad_related", where, f"relation type(s) {sorted(set(new))[:3]} beyond the "
                                                    f"{MAX_RELATION_TYPES} a pair's bitmask holds ({known})")
                continue
        report.records_parsed += 1
        if product.nulled or product.dropped_ids:
            report.note_product(product, where)
        meta.append(product)
        if scanned:
            mentions.add_scanned(product.asin, i)
        else:
            mentions.add(product)
    mentions.flush(batch)


def read_edges(paths: Sequence[str | Path], *, progress: bool = True, log: Callable[[str], None] = log_stderr):
    """Stream plain edge lists (``a b [weight]`` per line, ``#`` comments, as the SNAP graphs).

    A weight must be a positive number that float32 (the pairs' weight column) holds: 1e300, 1e-300, nan, inf
    and 0 are rejected as ``bad_weight``; ids must be UTF-8 (else ``bad_encoding``)."""
    ids = IdMap()
    source: list[int] = []
    target: list[int] = []
    weight: list[float] = []
    report = ReadReport()
    for _reader, where, line in read_lines(paths, report, progress, log):
        if line.lstrip().startswith(b"#"):
            report.records_read -= 1
            report.blank_lines += 1  # comments count as non-records, like blank lines
            continue
        fields = line.split()
        if len(fields) not in (2, 3):
            report.reject("bad_fields", where, f"expected 2 or 3 fields (a b [weight]), found {len(fields)}")
            continue
        w = 1.0
        if len(fields) == 3:
            try:
                w = float(fields[2])
            except ValueError:
                report.reject("bad_weight", where, f"weight {fields[2][:20]!r} is not a number")
                continue
            if not 0 < w <= FLOAT32_MAX or np.float32(w) == 0:
                report.reject("bad_weight", where, f"weight {w:g} must be a positive number that float32 holds "
                                                   f"(up to {FLOAT32_MAX:.4g})")
                continue
        try:
            a, b = fields[0].decode("utf-8"), fields[1].decode("utf-8")
        except UnicodeDecodeError:
            report.reject("bad_encoding", where, "ids are not UTF-8")
            continue
        report.records_parsed += 1
        source.append(ids.add(a))
        target.append(ids.add(b))
        weight.append(w)
    return ids, np.asarray(source, np.int32), np.asarray(target, np.int32), np.asarray(weight), report


def _split_and_negatives(pairs: Pairs, n_items: int, fractions, seed: int) -> dict:
    """Split the pairs and draw validation/test negatives; returns the parts as arrays."""
    rng = np.random.default_rng(seed + 1)  # the split uses `seed`; negatives a stream of their own
    train_idx, val_idx, test_idx = split_indices(len(pairs), fractions, seed)
    empty = [name for name, part in zip(("train", "validation", "test"), (train_idx, val_idx, test_idx))
             if len(part) == 0]
    if empty:
        raise InputError(f"{len(pairs)} pairs are too few to split by {[round(f, 3) for f in fractions]}: the "
                         f"{' and '.join(empty)} part would be empty")
    from itemvec.data.keyset import KeySet

    known = KeySet(pair_keys(pairs.item_a, pairs.item_b, n_items))  # every part's pairs: never a negative
    endpoints = np.concatenate([pairs.item_a, pairs.item_b])
    linked = np.zeros(n_items, dtype=bool)
    linked[pairs.item_a] = True
    linked[pairs.item_b] = True
    nodes = np.flatnonzero(linked)  # the items with a pair (no bincount: its int64 copy of the endpoints)
    del linked
    parts = {"train": pairs.take(train_idx), "validation": pairs.take(val_idx), "test": pairs.take(test_idx)}
    negatives = {}
    uniform_a, uniform_b = uniform_negatives(len(val_idx) + len(test_idx), nodes, known, n_items, rng)
    negatives["validation_negatives"] = (uniform_a[:len(val_idx)], uniform_b[:len(val_idx)])
    negatives["test_negatives"] = (uniform_a[len(val_idx):], uniform_b[len(val_idx):])
    val = parts["validation"]
    # nodes: the distinct endpoints, each degree-matched draw's uniform fallback
    da, db = degree_matched_negatives(val.item_a, val.item_b, endpoints, known, n_items, rng, nodes=nodes)
    negatives["validation_negatives_degree"] = (da, db)
    test = parts["test"]
    ta, tb = degree_matched_negatives(test.item_a, test.item_b, endpoints, known, n_items, rng,
                                      exclude=pair_keys(da, db, n_items), nodes=nodes)
    negatives["test_negatives_degree"] = (ta, tb)
    return {"parts": parts, "negatives": negatives, "nodes": len(nodes)}


def finish_data_dir(tmp: Path, manifest: dict, kind: str) -> None:
    """The last step of every prepare: the manifest, with the data's kind and a fingerprint of every file
    written beside it (runs, checkpoints and reused results are matched to the data by it)."""
    files = [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    manifest.update({"kind": kind, "fingerprint": fingerprint_files(tmp, files)})
    write_json(tmp / "manifest.json", manifest)


@contextmanager
def _beside(job: Callable[..., T], *args) -> Iterator[Future[T]]:
    """Run ``job(*args)`` in a thread while the block runs (for work that releases the GIL, or beside work
    that does); yields its future. Leaving the block, by an error or an interrupt too, waits for the thread,
    so nothing writes into a folder that is being removed."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="itemvec-prepare")
    try:
        yield pool.submit(job, *args)
    finally:
        pool.shutdown(wait=True)


def _write_tables(tmp: Path, products: pa.Table, asins: list[str], pairs: Pairs) -> None:
    pq.write_table(products, tmp / "products.parquet")
    pq.write_table(pa.table({"id": pa.array(np.arange(len(asins), dtype=np.int32)),
                             "asin": pa.array(asins, pa.string())}), tmp / "id_map.parquet")
    write_pairs(tmp / "pairs.parquet", pairs)


def write_data_dir(out: Path, *, products: pa.Table, asins: list[str], pairs: Pairs, fractions, seed: int,
                   manifest: dict, started: float, progress: bool, inputs: Sequence[str | Path | None] = (),
                   extra_files: dict[str, Callable[[Path, dict[str, Pairs]], dict | None]] | None = None) -> dict:
    """Split ``pairs``, draw negatives and write the DATA_DIR layout into ``out``: built in a temporary folder
    beside it and exchanged with it in one step (itemvec.outputs), so ``out`` is never half written.

    ``extra_files`` maps a file name inside the DATA_DIR to a writer ``(path, parts) -> dict | None`` that is
    called inside the temporary directory with the split parts (train / validation / test ``Pairs``); a dict it
    returns is merged into the manifest.
    """
    with OutputFolder(out, "data", inputs=inputs) as folder, folder.build() as tmp:
        (tmp / "split").mkdir()
        # The tables made before the split are written by a thread while the split runs (Arrow's writer
        # releases the GIL): about 3 s of 47 at Books size. A failed or interrupted split waits for the thread,
        # then leaves as before (the temporary folder removed).
        with _beside(_write_tables, tmp, products, asins, pairs) as written:
            split = _split_and_negatives(pairs, len(asins), fractions, seed)
            written.result()
        for name, part in split["parts"].items():
            write_pairs(tmp / "split" / f"{name}.parquet", part)
        for name, (a, b) in split["negatives"].items():
            write_negatives(tmp / "split" / f"{name}.parquet", a, b)
        for name, writer in (extra_files or {}).items():
            manifest.update(writer(tmp / name, split["parts"]) or {})
        manifest.update({
            "n_items": len(asins),
            "graph_nodes": split["nodes"],
            "unique_pairs": len(pairs),
            "pairs_per_part": {name: len(part) for name, part in split["parts"].items()},
            "negatives": {name: len(a) for name, (a, _) in split["negatives"].items()},
            "split_fractions": list(fractions),
            "seed": seed,
            "relation_bits": {name: 1 << k for k, name in enumerate(pairs.relation_names)},
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb": round(max_rss_mb(), 1),
        })
        finish_data_dir(tmp, manifest, "pairs")
    return manifest


def prepare_amazon(paths: Sequence[str | Path], out: str | Path, *, weights: dict[str, float] | None = None,
                   split: tuple[float, float, float] = DEFAULT_SPLIT, seed: int = 0,
                   max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION, progress: bool = True,
                   log: Callable[[str], None] = log_stderr) -> dict:
    """Prepare Amazon 2014/2018 metadata files into ``out``; returns the manifest."""
    started = time.perf_counter()
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    paths = [Path(p) for p in paths]
    check_output(out, "data", inputs=paths)  # before the long read: never after it
    with cyclic_gc_paused():
        ids, mentions, meta, report = read_amazon(paths, progress=progress, log=log)
    report.check(max_bad_fraction)
    asins = ids.keys()
    n_ids, with_metadata = len(ids), len(meta.item)
    # The products table (Python objects to Arrow, which holds the GIL) is made by a thread while the pairs are
    # built (numpy's sort and numba kernels, which do not): about 3.5 s at Books size.
    with _beside(meta.table, asins) as table:
        source, target, relation = mentions.arrays()
        relation_names = mentions.relation_names
        del ids, mentions  # the id table (about 130 MB at Books size) is not needed for the split
        pairs, stats = build_pairs(source, target, relation, relation_names, n_ids, weights)
        del source, target, relation
        products = table.result()  # Arrow's columns take a fraction of the Python objects' memory
    del meta
    if len(pairs) == 0:
        raise InputError(f"{', '.join(map(str, paths))}: no weighted product pairs found "
                         f"(relation mentions: {stats.mentions_per_relation}; weights: {weights})")
    manifest = {
        "source": "amazon",
        **report.as_dict(),
        "products_with_metadata": with_metadata,
        "products_referenced": n_ids,
        "products_referenced_only": n_ids - with_metadata,
        "weights": weights,
        "relation_mentions": stats.mentions_per_relation,
        "relation_unique_pairs": stats.unique_pairs_per_relation,
        "pairs_per_relation": stats.pairs_per_relation,
        "self_pairs_dropped": stats.self_pairs_dropped,
        "unweighted_relations": sorted(n for n in relation_names if weights.get(n, 0) <= 0),
    }
    return write_data_dir(Path(out), products=products, asins=asins, pairs=pairs, fractions=split,
                          seed=seed, manifest=manifest, started=started, progress=progress, inputs=paths)


def prepare_edges(paths: Sequence[str | Path], out: str | Path, *,
                  split: tuple[float, float, float] = DEFAULT_SPLIT, seed: int = 0,
                  max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION, progress: bool = True,
                  log: Callable[[str], None] = log_stderr) -> dict:
    """Prepare plain edge lists into ``out``. Directed edges become undirected pairs; a pair listed more
    than once keeps its largest weight."""
    started = time.perf_counter()
    paths = [Path(p) for p in paths]
    check_output(out, "data", inputs=paths)
    ids, source, target, weight, report = read_edges(paths, progress=progress, log=log)
    report.check(max_bad_fraction)
    relation = np.zeros(len(source), np.uint8)
    pairs, stats = build_pairs(source, target, relation, ["edge"], len(ids), {"edge": 1.0}, pair_weight=weight)
    if len(pairs) == 0:
        raise InputError(f"{', '.join(map(str, paths))}: no pairs (only self loops?)")
    asins = ids.keys()
    products = pa.table({"id": pa.array(np.arange(len(asins), dtype=np.int32)),
                         "asin": pa.array(asins, pa.string()),
                         "has_metadata": pa.array(np.zeros(len(asins), bool))})
    manifest = {
        "source": "edges",
        **report.as_dict(),
        "products_with_metadata": 0,
        "products_referenced": len(ids),
        "weights": {"edge": "from the file (1.0 when absent); the largest of duplicate mentions"},
        "relation_mentions": stats.mentions_per_relation,
        "pairs_per_relation": stats.pairs_per_relation,
        "self_pairs_dropped": stats.self_pairs_dropped,
    }
    return write_data_dir(Path(out), products=products, asins=asins, pairs=pairs, fractions=split, seed=seed,
                          manifest=manifest, started=started, progress=progress, inputs=paths)


def summary_lines(manifest: dict) -> list[str]:
    """A short human summary of a manifest, for the CLI."""
    parts = manifest["pairs_per_part"]
    lines = [
        f"records read {manifest['records_read']:,} = parsed {manifest['records_parsed']:,} "
        f"+ rejected {manifest['records_rejected']:,}"
        + (f" {manifest['rejected_by_reason']}" if manifest["records_rejected"] else ""),
        f"products {manifest['n_items']:,} ({manifest['products_with_metadata']:,} with metadata), "
        f"graph nodes {manifest['graph_nodes']:,}",
        f"unique pairs {manifest['unique_pairs']:,}: train {parts['train']:,}, validation "
        f"{parts['validation']:,}, test {parts['test']:,}",
        f"pairs per relation {manifest['pairs_per_relation']}",
        f"{manifest['seconds']:.1f} s, peak memory {manifest['peak_rss_mb']:.0f} MB",
    ]
    if manifest.get("truncated_files"):
        lines.append(f"truncated inputs: {manifest['truncated_files']}")
    return lines
