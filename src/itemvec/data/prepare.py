"""`itemvec prepare`: raw files → DATA_DIR (products, weighted pairs, seeded split with negatives, manifest).

Memory held while streaming: the id map (one dict entry per product), the metadata columns of products that
have a line, and 9 bytes per relation mention; the raw input is never held (it is read in 1 MB chunks).

The other prepares (itemvec.data.sessions, itemvec.data.ratings) end with ``write_data_dir`` or
``finish_data_dir`` too; the reading that every prepare shares (``read_lines``, ``ReadReport``) is in
itemvec.data.readers.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import time
import traceback
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

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
from itemvec.errors import ConfigError, InputError, ItemvecError
from itemvec.outputs import OutputFolder, check_output

T = TypeVar("T")
FLOAT32_MAX = float(np.finfo(np.float32).max)  # weights and ratings are stored as float32
MAX_RELATION_TYPES = 16  # bits of the pairs' relations bitmask (_Codes.code)


META_TYPES = {"title": pa.string(), "brand": pa.string(), "categories": pa.list_(pa.list_(pa.string())),
              "price": pa.float64(), "sales_rank": pa.int64(), "sales_rank_category": pa.string(),
              "description": pa.string()}
META_SCHEMA = pa.schema(list(META_TYPES.items()))


class _MetadataColumns:
    """Columns of the products that have a metadata line, merged across duplicate lines (first wins per field).

    Each batch of lines adds an Arrow batch with a row per kept line (``batches``) and the lines' dense item
    ids (``row_item``); duplicate lines are merged at the end (``merge``), which leaves one Arrow array per
    field in ``columns``, a row per item in ``item``."""

    NAMES = tuple(META_TYPES)

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.row_item: list[np.ndarray] = []
        self.item: np.ndarray = np.zeros(0, np.int64)  # the items with a line, in order of their first line
        self.columns: dict[str, pa.Array] = {}

    def merge(self) -> int:
        """One row per item (its first line's, null fields filled from its later lines in order); returns the
        number of duplicate lines merged. Only the rows of items with several lines go through Python."""
        row_item = np.concatenate(self.row_item) if self.row_item else np.zeros(0, np.int32)
        table = pa.Table.from_batches(self.batches, META_SCHEMA)
        self.batches, self.row_item = [], []
        items, first = np.unique(row_item, return_index=True)
        order = np.sort(first)  # rows of first lines, in line order
        if len(order) < len(row_item):
            repeated = np.ones(len(row_item), dtype=bool)
            repeated[order] = False
            shared = np.isin(row_item, np.unique(row_item[repeated]))  # every line of an item with several
            lines = np.flatnonzero(shared)
            values = dict(zip(lines.tolist(), table.take(pa.array(lines)).to_pylist()))
            first_of = dict(zip(items.tolist(), first.tolist()))
            for r in np.flatnonzero(repeated).tolist():  # later lines of an item, in line order
                kept, later = values[first_of[int(row_item[r])]], values[r]
                for name, value in kept.items():
                    if value is None:
                        kept[name] = later[name]
            merged = np.flatnonzero(shared & ~repeated)  # first lines whose row changed
            take = np.arange(len(row_item), dtype=np.int64)
            take[merged] = len(row_item) + np.arange(len(merged))
            extra = pa.Table.from_pylist([values[r] for r in merged.tolist()], META_SCHEMA)
            table = pa.concat_tables([table, extra]).take(pa.array(take[order]))
        self.columns = {name: table.column(name).combine_chunks() for name in self.NAMES}
        self.item = row_item[order].astype(np.int64)
        return len(row_item) - len(order)

    def row(self, item: int) -> int:
        """The row of ``item`` in ``columns`` (after ``merge``); KeyError for an item without a line."""
        rows = np.flatnonzero(self.item == item)
        if len(rows) == 0:
            raise KeyError(item)
        return int(rows[0])

    def table(self, asins: list[str] | pa.Array) -> pa.Table:
        n = len(asins)
        rows = np.full(n, -1, dtype=np.int64)
        rows[self.item] = np.arange(len(self.item))
        take = pa.array(rows, mask=rows < 0)
        data = {
            "id": pa.array(np.arange(n, dtype=np.int32)),
            "asin": id_column(asins),
            "has_metadata": pa.array(rows >= 0),
        }
        for name, kind in META_TYPES.items():
            data[name] = self.columns[name].take(take) if n else pa.array([], kind)
        return pa.table(data)


LINE_BATCH_BYTES = 4 << 20  # lines scanned (itemvec.data.related) and parsed per batch, one task of a worker
PARALLEL_MIN_BYTES = 24 << 20  # inputs smaller than this are read in this process alone
MAX_READ_WORKERS = 4


class _Batch:
    """A batch of lines (``where``, bytes, format) and what itemvec.data.related read of their relation lists
    (``scan``; empty arrays before)."""

    def __init__(self, lines: list[tuple[str, bytes, str]]) -> None:
        self.lines = lines
        self.buf = np.zeros(0, np.uint8)
        self.starts = np.zeros(0, np.int64)
        self.cut = np.zeros((0, 2), np.int64)
        self.spans = np.zeros((0, 2), np.int64)
        self.line_spans = np.zeros(1, np.int64)
        self.groups = np.zeros((0, 2), np.int64)
        self.line_groups = np.zeros(1, np.int64)

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


class _NewRelation(Exception):
    """A worker met a relation name outside the standard ones: its batch is read again in the main process,
    whose table gives the name its code (codes follow first use across the whole input)."""


class _Codes:
    """Relation names → codes (bits of a pair's relations), in order of first use, the standard types first
    (related.NAMES' codes). ``frozen``: a worker's table, the standard types only (a new name raises
    ``_NewRelation``)."""

    def __init__(self, frozen: bool = False) -> None:
        self.names: list[str] = []
        self._code: dict[str, int] = {}
        self.frozen = False
        for name in RELATION_TYPES:
            self.code(name)
        self.frozen = frozen

    def code(self, name: str) -> int:
        code = self._code.get(name)
        if code is None:
            if self.frozen:
                raise _NewRelation(name)
            if len(self.names) >= MAX_RELATION_TYPES:
                raise ConfigError(f"too many relation types (over {MAX_RELATION_TYPES}): {self.names + [name]}")
            code = self._code[name] = len(self.names)
            self.names.append(name)
        return code


@dataclass
class _Parsed:
    """A batch of lines read, before its ids are mapped: what ``_parse_batch`` gives (in this process or in a
    worker) and ``_Reader.apply`` adds to the whole, in line order.

    ``events``: the ReadReport calls its lines make, in order (rejects; what a kept record nulled or left
    out). Per kept line: a row of ``meta`` and, back to back in ``data``/``offsets``, its asin then its
    partners (``partners`` of them), whose relations are the (``codes``, ``counts``) groups in order."""

    events: list[tuple]
    parsed: int
    meta: pa.RecordBatch
    data: np.ndarray
    offsets: np.ndarray
    codes: np.ndarray
    counts: np.ndarray
    partners: np.ndarray


def _parse_batch(lines: list[tuple[str, bytes, str]], codes: _Codes) -> _Parsed:
    """Parse a batch of lines (``where``, bytes, format): a 2014 line whose relation lists are in the plain
    form has them read from its bytes (itemvec.data.related) and only its rest parsed; any other line is
    parsed whole. Rejects and notes become events, replayed into the report in order."""
    from itemvec.data.intern import Interner
    from itemvec.data.related import assemble

    batch = _Batch(lines)
    if any(fmt == "2014" for _, _, fmt in lines):
        batch.scan()
    cuts = batch.cut.tolist()
    starts = batch.starts.tolist()
    known = codes.names
    events: list[tuple] = []
    rows: list[tuple] = []
    asins: list[str] = []
    fast = array("q")  # per kept line: its index in the batch if its lists were scanned, else -1
    slow_tokens: list[str] = []  # the partners of the parsed lines, relation by relation
    slow_ends = array("q", [0])  # per kept line: the end of its partners in slow_tokens
    slow_codes = array("q")  # per (parsed line, relation with partners): its code
    slow_counts = array("q")  # ... and how many partners
    slow_group_ends = array("q", [0])
    for i, (where, line, fmt) in enumerate(lines):
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
                events.append(("reject", exc.reason, where, str(exc)))
                continue
            new = [r for r, partners in product.related.items() if partners and r not in known]
            if new and codes.frozen:
                raise _NewRelation(new[0])
            if new and len(set(new)) + len(known) > MAX_RELATION_TYPES:
                events.append(("reject", "bad_related", where, f"relation type(s) {sorted(set(new))[:3]} beyond "
                                                               f"the {MAX_RELATION_TYPES} a pair's bitmask holds "
                                                               f"({known})"))
                continue
        if product.nulled or product.dropped_ids:
            events.append(("note_product", product, where))
        rows.append((product.title, product.brand, product.categories, product.price, product.sales_rank,
                     product.sales_rank_category, product.description))
        asins.append(product.asin)
        if scanned:
            fast.append(i)
        else:
            fast.append(-1)
            for relation, partners in product.related.items():
                if partners:
                    slow_codes.append(codes.code(relation))
                    slow_counts.append(len(partners))
                    slow_tokens.extend(partners)
        slow_ends.append(len(slow_tokens))
        slow_group_ends.append(len(slow_codes))
    n = len(asins)
    py_data, py_offsets = Interner._bytes(asins + slow_tokens)
    fast_lines = np.frombuffer(fast, dtype=np.int64)
    scanned_lines = fast_lines[fast_lines >= 0]
    line_spans = batch.line_spans
    n_scanned_ids = int((line_spans[scanned_lines + 1] - line_spans[scanned_lines]).sum())
    scanned_bytes = int((batch.spans[:line_spans[-1], 1] - batch.spans[:line_spans[-1], 0]).sum())
    data = np.empty(len(py_data) + scanned_bytes, np.uint8)
    offsets = np.empty(n + len(slow_tokens) + n_scanned_ids + 1, np.int64)
    n_groups = len(slow_codes) + int(batch.line_groups[-1])
    out_codes = np.empty(n_groups, np.int64)
    counts = np.empty(n_groups, np.int64)
    line_partners = np.empty(n, np.int64)
    _, g = assemble(py_data, py_offsets, fast_lines, batch.buf, batch.spans, line_spans, batch.groups,
                    batch.line_groups, np.frombuffer(slow_ends, dtype=np.int64),
                    np.frombuffer(slow_group_ends, dtype=np.int64), np.frombuffer(slow_codes, dtype=np.int64),
                    np.frombuffer(slow_counts, dtype=np.int64), data, offsets, out_codes, counts, line_partners)
    columns = list(zip(*rows)) if rows else [() for _ in META_TYPES]
    meta = pa.RecordBatch.from_arrays([pa.array(column, kind) for column, kind in zip(columns, META_TYPES.values())],
                                      schema=META_SCHEMA)
    return _Parsed(events, n, meta, data, offsets, out_codes[:g].astype(np.uint8), counts[:g], line_partners)


def _parse_in_worker(lines: list[tuple[str, bytes, str]]) -> _Parsed | None:
    """``_parse_batch`` in a worker process, with the standard relation types only; None: a line names
    another, and the main process reads the batch again."""
    try:
        return _parse_batch(lines, _Codes(frozen=True))
    except _NewRelation:
        return None


def _load_kernels() -> None:
    """Load numba and the read's kernels (from numba's cache) in this process, by parsing one line: the read
    workers, forked after it, then share them instead of each loading them again (about 0.6 s of CPU a
    process, on cores the read keeps busy)."""
    _parse_batch([("", b"{'asin': 'a', 'related': {'also_bought': ['b']}}", "2014")], _Codes(frozen=True))


def read_workers(paths: Sequence[Path]) -> int:
    """Worker processes for reading ``paths``: none (read here) for inputs under PARALLEL_MIN_BYTES or on a
    single core; else one per core, at most MAX_READ_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    size = sum(p.stat().st_size for p in paths if p.is_file())
    if cores < 2 or size < PARALLEL_MIN_BYTES:
        return 0
    return min(cores, MAX_READ_WORKERS)


def _serve(conn: Any, others: list[Any]) -> None:
    """A read worker's life: parse each batch ``conn`` brings and send back ``("ok", _parse_in_worker(...))``
    (or ``("error", traceback)``) until the main process closes its end or is gone. SIGINT and SIGTERM are
    the main process's to act on (it unwinds and ends the workers); the kernel ends a worker whose main
    process dies (PR_SET_PDEATHSIG). Its objects form no cycles: no cycle collector."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # blocked for the fork
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the closed connection ends it instead
        pass
    if os.getppid() != parent:  # the main process died before prctl
        return
    for other in others:  # the main process's ends of its own and the earlier workers' connections
        other.close()
    gc.disable()
    try:
        while True:
            lines = conn.recv()
            try:
                answer: tuple[str, Any] = ("ok", _parse_in_worker(lines))
            except Exception:  # noqa: BLE001 - a bug: its traceback goes to the main process, which raises it
                answer = ("error", traceback.format_exc())
            conn.send(answer)
    except (EOFError, OSError):  # the main process is done with the workers, or gone
        return


class _Workers:
    """Forked processes that parse batches of lines (``_serve``), each with its own connection and one batch
    at a time; the answers are taken in the order the batches went out (round robin). Forked before anything
    is read, while this process is small, with SIGINT and SIGTERM blocked, so that a signal in between is
    neither lost here nor met by a worker before it ignores it. ``close`` ends them (an interrupted read too:
    they write nothing, so nothing is left half done)."""

    def __init__(self, n: int) -> None:
        context = multiprocessing.get_context("fork")
        self.connections: list[Any] = []
        self.processes: list[Any] = []
        self.out: deque[int] = deque()  # the workers with a batch, oldest first
        self.turn = 0
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for _ in range(n):
                here, there = context.Pipe()
                process = context.Process(target=_serve, args=(there, [*self.connections, here]), daemon=True,
                                          name="itemvec-read")
                process.start()
                there.close()
                self.connections.append(here)
                self.processes.append(process)
        except BaseException:
            self.close()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a signal that came meanwhile is raised here

    @property
    def idle(self) -> bool:
        return len(self.out) < len(self.connections)

    def send(self, lines: list[tuple[str, bytes, str]]) -> None:
        """Give the next worker a batch (one must be idle)."""
        k = self.turn
        self.connections[k].send(lines)
        self.out.append(k)
        self.turn = (k + 1) % len(self.connections)

    def answer(self) -> _Parsed | None:
        """The oldest batch's answer, waiting for it."""
        k = self.out.popleft()
        try:
            kind, value = self.connections[k].recv()
        except (EOFError, OSError):
            self.processes[k].join(1.0)
            code = self.processes[k].exitcode
            how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit status {code}"
            raise ItemvecError(f"a read worker process ended unexpectedly ({how}; out of memory?); run again, "
                               "or with --workers 0 to read in one process") from None
        if kind == "error":
            raise RuntimeError(f"a read worker failed:\n{value}")
        return value

    def close(self) -> None:
        for connection in self.connections:
            connection.close()  # an idle worker's recv ends; a busy one's send fails, and it returns
        for process in self.processes:
            process.join(2.0)
            if process.exitcode is None:
                process.kill()
                process.join()


@contextmanager
def _read_pool(workers: int) -> Iterator[_Workers | None]:
    """``workers`` read workers for the block (None for none), ended when it is left, by an error or an
    interrupt too."""
    if workers <= 0:
        yield None
        return
    pool = _Workers(workers)
    try:
        yield pool
    finally:
        pool.close()


class _Reader:
    """The whole read: the id table, relation codes, directed mentions and metadata rows, and the report;
    batches of lines are parsed here or by a pool and added in line order (``apply``)."""

    def __init__(self) -> None:
        from itemvec.data.intern import Interner

        self.ids = Interner()
        self.codes = _Codes()
        self.meta = _MetadataColumns()
        self.report = ReadReport()
        self.workers = 0  # worker processes that parsed the batches
        self.sources: list[np.ndarray] = []
        self.targets: list[np.ndarray] = []
        self.relations: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []

    @property
    def relation_names(self) -> list[str]:
        return self.codes.names

    def apply(self, parsed: _Parsed) -> None:
        """Add a parsed batch: its events to the report, its rows to the metadata, its ids to the id table."""
        report = self.report
        for event in parsed.events:
            if event[0] == "reject":
                report.reject(*event[1:])
            else:
                report.note_product(*event[1:])
        report.records_parsed += parsed.parsed
        n = len(parsed.partners)
        if n == 0:
            return
        dense = self.ids.add_bytes(parsed.data, parsed.offsets)
        starts = np.zeros(n, dtype=np.int64)
        np.cumsum(parsed.partners[:-1] + 1, out=starts[1:])
        item = dense[starts]
        is_partner = np.ones(len(dense), dtype=bool)
        is_partner[starts] = False
        self.sources.append(np.repeat(item, parsed.partners))
        self.targets.append(dense[is_partner])
        self.relations.append(parsed.codes)
        self.counts.append(parsed.counts)
        self.meta.batches.append(parsed.meta)
        self.meta.row_item.append(item)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The directed mentions (line's item → partner, relation code), in line order."""
        empty = np.zeros(0, np.int32)
        source = np.concatenate(self.sources).astype(np.int32, copy=False) if self.sources else empty
        target = np.concatenate(self.targets).astype(np.int32, copy=False) if self.targets else empty
        relation = (np.repeat(np.concatenate(self.relations), np.concatenate(self.counts)) if self.relations
                    else np.zeros(0, np.uint8))
        self.sources, self.targets, self.relations, self.counts = [], [], [], []
        return source, target, relation


def read_amazon(paths: Sequence[str | Path], *, progress: bool = True, log: Callable[[str], None] = log_stderr,
                workers: int | None = None, batch_bytes: int | None = None):
    """Stream Amazon metadata files into (ids, mentions, metadata columns, ReadReport); ids is an ``Interner``
    (``len``, ``keys`` and ``lookup`` as ``IdMap``'s), mentions gives ``arrays()`` and ``relation_names``.

    Lines go in batches of about ``batch_bytes`` (default LINE_BATCH_BYTES; ``_parse_batch``). With
    ``workers`` (None: ``read_workers``; 0 where there is no ``fork``) the batches are parsed by that many
    forked processes while this one reads the lines, maps the ids and keeps the rows, in line order: the same
    outputs as reading here alone, byte for byte. A batch with a relation name outside the standard ones is
    parsed here again (its code depends on the lines before). ``mentions.workers`` says how many ran."""
    batch_bytes = batch_bytes or LINE_BATCH_BYTES
    files = [Path(p) for p in paths]
    reader = _Reader()
    report = reader.report
    formats: dict[str, str] = {}  # per file, from its first record
    n_workers = read_workers(files) if workers is None else workers
    if n_workers > 0 and "fork" not in multiprocessing.get_all_start_methods():
        n_workers = 0
    reader.workers = n_workers
    if n_workers > 0:
        _load_kernels()
    with _read_pool(n_workers) as pool:
        pending: deque[list] = deque()  # the batches out with the workers, oldest first

        def add(lines: list[tuple[str, bytes, str]]) -> None:
            if pool is None:
                reader.apply(_parse_batch(lines, reader.codes))
                return
            if not pool.idle:
                collect()
            pool.send(lines)
            pending.append(lines)

        def collect() -> None:
            assert pool is not None
            lines, parsed = pending.popleft(), pool.answer()
            reader.apply(parsed if parsed is not None else _parse_batch(lines, reader.codes))

        lines: list[tuple[str, bytes, str]] = []
        size = 0
        for file, where, line in read_lines(files, report, progress, log):
            fmt = formats.get(str(file.path))
            if fmt is None:
                fmt = formats[str(file.path)] = detect_format(line)
            lines.append((where, line, fmt))
            size += len(line)
            if size >= batch_bytes:
                add(lines)
                lines, size = [], 0
        if lines:
            add(lines)
        while pending:
            collect()
    report.duplicate_records += reader.meta.merge()
    for info in report.files:
        info["format"] = formats.get(info["path"])
    return reader.ids, reader, reader.meta, report


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


def _split_and_negatives(pairs: Pairs, n_items: int, fractions, seed: int,
                         emit: Callable[[str, Any], object] | None = None) -> dict:
    """Split the pairs and draw validation/test negatives; returns the parts as arrays. ``emit(name, value)``
    is called with each part (``Pairs``) and each set of negatives (``(item_a, item_b)``) as soon as it is
    made, so that it can be written while the rest is drawn."""
    emit = emit or (lambda name, value: None)
    rng = np.random.default_rng(seed + 1)  # the split uses `seed`; negatives a stream of their own
    from itemvec.data.keyset import PairSet

    # Every part's pairs (never a negative): the pairs' own rows (sorted by key), no copy of them.
    known = PairSet(pairs.item_a, pairs.item_b, n_items)
    train_idx, val_idx, test_idx = split_indices(len(pairs), fractions, seed)
    empty = [name for name, part in zip(("train", "validation", "test"), (train_idx, val_idx, test_idx))
             if len(part) == 0]
    if empty:
        raise InputError(f"{len(pairs)} pairs are too few to split by {[round(f, 3) for f in fractions]}: "
                         f"the {' and '.join(empty)} part would be empty")
    endpoints = np.concatenate([pairs.item_a, pairs.item_b])
    linked = np.zeros(n_items, dtype=bool)
    linked[pairs.item_a] = True
    linked[pairs.item_b] = True
    nodes = np.flatnonzero(linked)  # the items with a pair (no bincount: its int64 copy of the endpoints)
    del linked
    parts = {"train": pairs.take(train_idx), "validation": pairs.take(val_idx), "test": pairs.take(test_idx)}
    for name, part in parts.items():
        emit(name, part)
    negatives = {}

    def made(name: str, a: np.ndarray, b: np.ndarray) -> None:
        negatives[name] = (a, b)
        emit(name, (a, b))

    uniform_a, uniform_b = uniform_negatives(len(val_idx) + len(test_idx), nodes, known, n_items, rng)
    made("validation_negatives", uniform_a[:len(val_idx)], uniform_b[:len(val_idx)])
    made("test_negatives", uniform_a[len(val_idx):], uniform_b[len(val_idx):])
    val = parts["validation"]
    # nodes: the distinct endpoints, each degree-matched draw's uniform fallback
    da, db = degree_matched_negatives(val.item_a, val.item_b, endpoints, known, n_items, rng, nodes=nodes)
    made("validation_negatives_degree", da, db)
    test = parts["test"]
    ta, tb = degree_matched_negatives(test.item_a, test.item_b, endpoints, known, n_items, rng,
                                      exclude=pair_keys(da, db, n_items), nodes=nodes)
    made("test_negatives_degree", ta, tb)
    return {"parts": parts, "negatives": negatives, "nodes": len(nodes)}


def finish_data_dir(tmp: Path, manifest: dict, kind: str) -> None:
    """The last step of every prepare: the manifest, with the data's kind and a fingerprint of every file
    written beside it (runs, checkpoints and reused results are matched to the data by it)."""
    files = [str(p.relative_to(tmp)) for p in sorted(tmp.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    manifest.update({"kind": kind, "fingerprint": fingerprint_files(tmp, files)})
    write_json(tmp / "manifest.json", manifest)


@contextmanager
def _threads(n: int) -> Iterator[Callable[..., Future]]:
    """Run jobs on ``n`` threads while the block runs (work that releases the GIL, or beside work that does);
    yields ``submit(job, *args)``. Leaving the block by an error or an interrupt cancels the jobs not started
    and waits for the running ones, so nothing writes into a folder that is being removed; leaving it
    normally waits for every job and raises the first one's error."""
    pool = ThreadPoolExecutor(n, thread_name_prefix="itemvec-prepare")
    futures: list[Future] = []

    def submit(job: Callable[..., Any], *args: Any) -> Future:
        future = pool.submit(job, *args)
        futures.append(future)
        return future

    try:
        yield submit
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    for future in futures:
        future.result()


def id_column(asins: list[str] | pa.Array) -> pa.Array:
    """The original ids as an Arrow string column: from a list, or from an Arrow array of them as it is (the
    ``Interner``'s ids: 2 million of them at Books size need not become Python strings and back)."""
    return asins.cast(pa.string()) if isinstance(asins, pa.Array) else pa.array(asins, pa.string())


def _write_tables(tmp: Path, products: pa.Table, asins: list[str] | pa.Array, pairs: Pairs) -> None:
    pq.write_table(products, tmp / "products.parquet")
    pq.write_table(pa.table({"id": pa.array(np.arange(len(asins), dtype=np.int32)),
                             "asin": id_column(asins)}), tmp / "id_map.parquet")
    write_pairs(tmp / "pairs.parquet", pairs)


def write_data_dir(out: Path, *, products: pa.Table, asins: list[str] | pa.Array, pairs: Pairs, fractions, seed: int,
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
        # Every table is written by a thread as soon as it is made (Arrow's writer releases the GIL): the
        # products, ids and pairs while the split runs, each part and set of negatives while the next ones are
        # drawn; about 11 s of Parquet writing at Books size. A failed or interrupted split waits for the
        # running writes, then leaves as before (the temporary folder removed).
        with _threads(2) as submit:
            submit(_write_tables, tmp, products, asins, pairs)

            def emit(name: str, value: Any) -> None:
                path = tmp / "split" / f"{name}.parquet"
                if isinstance(value, Pairs):
                    submit(write_pairs, path, value)
                else:
                    submit(write_negatives, path, *value)

            split = _split_and_negatives(pairs, len(asins), fractions, seed, emit)
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
                   log: Callable[[str], None] = log_stderr, workers: int | None = None) -> dict:
    """Prepare Amazon 2014/2018 metadata files into ``out``; returns the manifest. ``workers``: processes that
    parse the lines beside this one (None: one per core for inputs of PARALLEL_MIN_BYTES or more; see
    ``read_amazon``); the outputs are the same either way."""
    started = time.perf_counter()
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    paths = [Path(p) for p in paths]
    check_output(out, "data", inputs=paths)  # before the long read: never after it
    with cyclic_gc_paused():
        ids, mentions, meta, report = read_amazon(paths, progress=progress, log=log, workers=workers)
    report.check(max_bad_fraction)
    asins = ids.key_array()
    n_ids, with_metadata = len(ids), len(meta.item)
    # The products table (Python objects to Arrow, which holds the GIL) is made by a thread while the pairs are
    # built (numpy's sort and numba kernels, which do not): about 3.5 s at Books size.
    with _threads(1) as submit:
        table = submit(meta.table, asins)
        source, target, relation = mentions.arrays()
        relation_names, read_workers_used = mentions.relation_names, mentions.workers
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
        "read_workers": read_workers_used,
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
