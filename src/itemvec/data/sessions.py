"""`itemvec prepare sessions`: click sessions and user sequences → DATA_DIR (an item graph of consecutive items,
the sessions themselves, and training sessions cut at held-out pairs).

Four input formats (see the data README):

- ``s3rec``: one line per user, ``user item item ...`` in time order (S3-Rec's Beauty, Sports, LastFM files).
- ``sasrec``: ``user item`` per line, in time order per user (SASRec's files).
- ``diginetica``: ``;``-separated ``session_id;user_id;item_id;timeframe;eventdate`` with a header line
  (CIKM Cup 2016); a session is ordered by (eventdate, timeframe).
- ``yoochoose``: tab-separated ``SessionId ItemId Time`` with a header line (RecSys Challenge 2015 as the
  session-rec samples store it); ``Time`` in Unix seconds (an ISO 8601 time such as ``2014-04-07T10:51:09.277Z``
  is accepted too); a session is ordered by time.

Events of equal time keep their file order. A header line, when present, names the columns (so a file whose
columns come in another order still reads right); without one the columns are taken in the order above.

The graph follows EGES (Wang et al., KDD 2018, section 2.1): an item is linked to the next ``window`` items of
the same session, and a pair's weight is the number of such co-occurrences over all sessions (summed in both
directions). Repeated clicks (an item followed by itself) make no pair and are counted.

Memory held: one dict entry per item and per session id, 8 bytes per event (int32 session, int32 item) plus
16 bytes per event for the time keys of the session formats; building the pairs sorts one int64 key per
co-occurrence (``window`` × events). The raw input is streamed (1 MB chunks), never held.
"""

from __future__ import annotations

import gzip
import math
import time
import zlib
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from itemvec.arrays import unique_sorted
from itemvec.data.pairs import DEFAULT_SPLIT, IdMap, pair_keys
from itemvec.data.prepare import write_data_dir
from itemvec.data.readers import (
    DEFAULT_MAX_BAD_FRACTION,
    EXAMPLES_PER_REASON,
    ReadReport,
    log_stderr,
    read_lines,
)
from itemvec.data.store import SEQUENCE_FILES, DataDir
from itemvec.data.types import Pairs
from itemvec.errors import ConfigError, InputError
from itemvec.outputs import check_output

FORMATS = ("s3rec", "sasrec", "diginetica", "yoochoose")
INT64_MAX = 2**63 - 1
RELATION = "session"

# Column roles of the session formats, their positions when a file has no header, and the header names
# (lower case, without "_" and spaces) that mean each role.
_LAYOUTS: dict[str, dict[str, Any]] = {
    "diginetica": {"separator": ";", "fields": 5,
                   "columns": {"session": 0, "user": 1, "item": 2, "timeframe": 3, "eventdate": 4},
                   "expected": "session_id;user_id;item_id;timeframe;eventdate"},
    "yoochoose": {"separator": None, "fields": 3, "columns": {"session": 0, "item": 1, "time": 2},
                  "expected": "SessionId<TAB>ItemId<TAB>Time"},
}
_HEADER_NAMES = {"sessionid": "session", "session": "session", "userid": "user", "user": "user",
                 "itemid": "item", "item": "item", "time": "time", "timestamp": "time", "timeframe": "timeframe",
                 "eventdate": "eventdate", "date": "eventdate", "categoryid": "category", "category": "category"}
_REQUIRED = {"diginetica": ("session", "item", "timeframe", "eventdate"), "yoochoose": ("session", "item", "time")}


@dataclass
class Sessions:
    """Sessions as one flat array: session ``s`` is ``items[offsets[s]:offsets[s + 1]]``, in time order.

    ``items`` are dense item ids (int32), ``offsets`` int64 of length ``len(names) + 1``, ``names`` the original
    session (or user) ids.
    """

    names: list[str]
    items: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _is_integer(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _parse_unix_or_iso(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
        except (ValueError, OverflowError):  # not ISO 8601, or beyond the datetime range once in UTC
            raise _Reject("bad_time", f"time {text[:30]!r} is neither Unix seconds nor an ISO 8601 time") from None
    if not math.isfinite(value):
        raise _Reject("bad_time", f"time {text[:30]!r} is not a finite number")
    return value


class _EventLog:
    """Events appended while streaming: session code, item id and (for the session formats) two time keys."""

    def __init__(self) -> None:
        self.session = array("i")
        self.item = array("i")
        self.time = array("d")  # primary order key (Unix seconds, or the day of eventdate)
        self.tiebreak = array("q")  # secondary order key (diginetica's timeframe)

    def sessions(self, names: list[str], timed: bool) -> Sessions:
        session = np.frombuffer(self.session, dtype=np.int32)
        item = np.frombuffer(self.item, dtype=np.int32)
        if timed:
            # lexsort is stable: events with equal keys keep their file order.
            order = np.lexsort((np.frombuffer(self.tiebreak, dtype=np.int64),
                                np.frombuffer(self.time, dtype=np.float64), session))
        else:
            order = np.argsort(session, kind="stable")
        counts = np.bincount(session, minlength=len(names)).astype(np.int64)
        offsets = np.zeros(len(names) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return Sessions(names, item[order].astype(np.int32, copy=False), offsets)


def _read_s3rec(lines, ids: IdMap, users: IdMap, log: _EventLog, report: ReadReport, state: dict) -> None:
    for _reader, where, line in lines:
        try:
            fields = line.decode("utf-8").split()
        except UnicodeDecodeError:
            report.reject("bad_encoding", where, "not UTF-8")
            continue
        if len(fields) < 2:
            report.reject("bad_fields", where, f"expected 'user item item ...', found {len(fields)} field")
            continue
        if not _is_integer("".join(fields)):
            bad = next(f for f in fields if not _is_integer(f))
            report.reject("bad_id", where, f"id {bad[:20]!r} is not an integer (s3rec ids are integers)")
            continue
        report.records_parsed += 1
        before = len(users)
        code = users.add(fields[0])
        if len(users) == before:
            report.duplicate_records += 1  # a user on two lines: the second line's items follow the first's
        items = ids.add_many(fields[1:])
        log.item.extend(items)
        log.session.extend(array("i", [code]) * len(items))


def _read_sasrec(lines, ids: IdMap, users: IdMap, log: _EventLog, report: ReadReport, state: dict) -> None:
    add_item, add_user = ids.add, users.add
    for _reader, where, line in lines:
        try:
            fields = line.decode("utf-8").split()
        except UnicodeDecodeError:
            report.reject("bad_encoding", where, "not UTF-8")
            continue
        if len(fields) != 2:
            report.reject("bad_fields", where, f"expected 2 fields 'user item', found {len(fields)}")
            continue
        user, item = fields
        if not (_is_integer(user) and _is_integer(item)):
            bad = user if not _is_integer(user) else item
            report.reject("bad_id", where, f"id {bad[:20]!r} is not an integer (sasrec ids are integers)")
            continue
        report.records_parsed += 1
        log.session.append(add_user(user))
        log.item.append(add_item(item))


def _header_columns(fields: list[str], fmt: str, where: str) -> dict[str, int] | None:
    """Column positions named by a header line, or None when ``fields`` is not a header."""
    names = [f.strip().lower().replace("_", "").replace(" ", "") for f in fields]
    if not names or names[0] not in _HEADER_NAMES:
        return None
    columns: dict[str, int] = {}
    for position, name in enumerate(names):
        role = _HEADER_NAMES.get(name)
        if role is not None:
            columns.setdefault(role, position)
    missing = [role for role in _REQUIRED[fmt] if role not in columns]
    if missing:
        raise InputError(f"{where}: header {fields} lacks the column(s) {missing}; expected a {fmt} file "
                         f"({_LAYOUTS[fmt]['expected']})")
    return columns


def _read_events(fmt: str):
    layout = _LAYOUTS[fmt]
    separator = layout["separator"]

    def read(lines, ids: IdMap, sessions: IdMap, log: _EventLog, report: ReadReport, state: dict) -> None:
        days: dict[str, int] = {}
        current = None  # the reader of the file being read
        columns, n_fields = layout["columns"], layout["fields"]
        for reader, where, line in lines:
            if reader is not current:  # the first record of a file may be its header
                current = reader
                # A header names columns (it is not data): a stray non-UTF-8 byte in it is replaced, so that
                # the header is still recognised instead of rejected as a record.
                text = line.decode("utf-8", errors="replace")
                fields = text.split(separator) if separator is not None else text.split()
                header = _header_columns(fields, fmt, where)
                if header is not None:
                    columns, n_fields = header, len(fields)
                    report.records_read -= 1  # a header is not a record
                    state["header_lines"] += 1
                    continue
                columns, n_fields = layout["columns"], layout["fields"]
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                report.reject("bad_encoding", where, "not UTF-8")
                continue
            fields = text.split(separator) if separator is not None else text.split()
            if len(fields) != n_fields:
                report.reject("bad_fields", where, f"expected {n_fields} fields ({layout['expected']}), "
                                                   f"found {len(fields)}")
                continue
            session, item = fields[columns["session"]].strip(), fields[columns["item"]].strip()
            if not session or not item:
                report.reject("bad_id", where, "empty session or item id")
                continue
            try:
                if fmt == "diginetica":
                    when = fields[columns["eventdate"]].strip()
                    day = days.get(when)
                    if day is None:
                        try:
                            day = days[when] = date.fromisoformat(when).toordinal()
                        except ValueError:
                            raise _Reject("bad_time", f"eventdate {when[:30]!r} is not a date (YYYY-MM-DD)") from None
                    frame = fields[columns["timeframe"]].strip()
                    if not _is_integer(frame):
                        raise _Reject("bad_time", f"timeframe {frame[:30]!r} is not a whole number")
                    digits = frame.lstrip("0") or "0"
                    # The order key is int64 (and int() of a 4,300-digit text would raise).
                    if len(digits) > 19 or int(digits) > INT64_MAX:
                        raise _Reject("bad_time", f"timeframe {frame[:30]!r} is beyond int64")
                    primary, secondary = float(day), int(digits)
                else:
                    primary, secondary = _parse_unix_or_iso(fields[columns["time"]].strip()), 0
            except _Reject as exc:
                report.reject(exc.reason, where, str(exc))
                continue
            report.records_parsed += 1
            log.session.append(sessions.add(session))
            log.item.append(ids.add(item))
            log.time.append(primary)
            log.tiebreak.append(secondary)

    return read


_READERS = {"s3rec": _read_s3rec, "sasrec": _read_sasrec, "diginetica": _read_events("diginetica"),
            "yoochoose": _read_events("yoochoose")}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def read_sessions(paths: Sequence[str | Path], fmt: str, *, progress: bool = True,
                  log: Callable[[str], None] = log_stderr) -> tuple[IdMap, Sessions, ReadReport, dict]:
    """Stream session files of format ``fmt`` into (item IdMap, Sessions, ReadReport, extra counts).

    Sessions come in order of first appearance; items get dense ids in order of first appearance. Several files
    merge: a session id met again continues the same session.
    """
    _check_format(fmt)
    ids, names = IdMap(), IdMap()
    events = _EventLog()
    report = ReadReport()
    state = {"header_lines": 0}
    _READERS[fmt](read_lines([Path(p) for p in paths], report, progress, log), ids, names, events, report, state)
    sessions = events.sessions(names.keys(), timed=fmt in _LAYOUTS)
    return ids, sessions, report, state


def _positions(sessions: Sessions, distance: int) -> np.ndarray:
    """Flat positions ``i`` whose item has a successor ``distance`` steps later in the same session."""
    n_events = len(sessions.items)
    if n_events <= distance:
        return np.empty(0, dtype=np.int64)
    session_end = np.repeat(sessions.offsets[1:], sessions.lengths)
    start = np.arange(n_events - distance, dtype=np.int64)
    return start[start + distance < session_end[:n_events - distance]]


def session_pairs(sessions: Sessions, n_items: int, window: int = 1) -> tuple[Pairs, dict]:
    """The item graph of ``sessions``: each item linked to the next ``window`` items of its session.

    Returns the unique undirected pairs (``item_a < item_b``) with weight = the number of (session, position,
    distance) co-occurrences of the two items in either order, and counts (co-occurrences, self pairs dropped).
    """
    keys, self_pairs, occurrences = [], 0, 0
    for distance in range(1, window + 1):
        start = _positions(sessions, distance)
        a, b = sessions.items[start], sessions.items[start + distance]
        occurrences += len(start)
        same = a == b
        self_pairs += int(same.sum())
        keys.append(pair_keys(a[~same], b[~same], n_items))
    key, count = np.unique(np.concatenate(keys) if keys else np.empty(0, np.int64), return_counts=True)
    pairs = Pairs(
        item_a=(key // n_items).astype(np.int32),
        item_b=(key % n_items).astype(np.int32),
        weight=count.astype(np.float32),
        relations=np.ones(len(key), dtype=np.uint16),
        relation_names=[RELATION],
    )
    return pairs, {"cooccurrences": occurrences, "self_pairs_dropped": self_pairs}


def cut_at_pairs(sessions: Sessions, held_out_sorted: np.ndarray, n_items: int, window: int = 1,
                 min_length: int = 2) -> tuple[Sessions, dict]:
    """Cut sessions so that no two items of a held-out pair stay within ``window`` steps of each other.

    Every occurrence of a held-out pair at positions ``i < j`` (``j - i <= window``) must have a cut between
    them; the cuts are chosen greedily by the occurrence's end, which uses the fewest cuts (interval stabbing).
    With ``window = 1`` this cuts exactly at every consecutive step whose unordered pair is held out. Pieces
    shorter than ``min_length`` are dropped. Returns the pieces (named after their session) and counts.
    """
    starts, ends = [], []
    if len(held_out_sorted):
        for distance in range(1, window + 1):
            first = _positions(sessions, distance)
            key = pair_keys(sessions.items[first], sessions.items[first + distance], n_items)
            pos = np.minimum(np.searchsorted(held_out_sorted, key), len(held_out_sorted) - 1)
            hit = first[held_out_sorted[pos] == key]
            starts.append(hit)
            ends.append(hit + distance)
    if starts and window > 1:
        start, end = np.concatenate(starts), np.concatenate(ends)
        order = np.lexsort((start, end))
        cuts, last = [], -1
        for i, j in zip(start[order].tolist(), end[order].tolist(), strict=True):
            if last <= i:  # not yet separated by an earlier cut (a cut at c separates c - 1 from c)
                cuts.append(j)
                last = j
        cut = np.asarray(cuts, dtype=np.int64)
    else:
        cut = unique_sorted(np.concatenate(ends)) if ends else np.empty(0, np.int64)
    bounds = np.union1d(sessions.offsets, cut)
    piece_start, piece_end = bounds[:-1], bounds[1:]
    keep = piece_end - piece_start >= min_length
    kept_lengths = (piece_end - piece_start)[keep]
    event_keep = np.repeat(keep, piece_end - piece_start)
    offsets = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
    np.cumsum(kept_lengths, out=offsets[1:])
    session_of = np.searchsorted(sessions.offsets, piece_start[keep], side="right") - 1
    names = [sessions.names[s] for s in session_of.tolist()]
    pieces = Sessions(names, sessions.items[event_keep], offsets)
    counts = {
        "sequences": len(pieces),
        "cuts": len(cut),
        "items_kept": int(len(pieces.items)),
        "items_dropped": int(len(sessions.items) - len(pieces.items)),
        "pieces_too_short": int((~keep).sum()),
        "min_length": min_length,
    }
    return pieces, counts


def sequences_table(sessions: Sessions) -> pa.Table:
    if len(sessions.items) >= 2**31:
        raise InputError(f"{len(sessions.items):,} events: over the 2**31 a parquet list column holds")
    items = pa.ListArray.from_arrays(pa.array(sessions.offsets.astype(np.int32), pa.int32()),
                                     pa.array(sessions.items, pa.int32()))
    return pa.table({"session": pa.array(sessions.names, pa.string()), "items": items})


def load_sequences(data_dir, part: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Sessions of a prepared DATA_DIR (a path or a ``DataDir``), checked: see :meth:`DataDir.sequences`."""
    return (data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)).sequences(part)


def read_attributes(path: str | Path, max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION
                    ) -> tuple[dict[str, list[int]], dict]:
    """An S3-Rec attributes file, ``{"item id": [attribute ids]}`` (plain or gzip), as a dict and counts.

    An entry whose value is not a list of integers is rejected and counted; more than ``max_bad_fraction`` of
    them is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: is not a file")
    raw = path.read_bytes()
    if not raw.strip():
        raise InputError(f"{path}: file is empty")
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: broken gzip data ({exc})") from None
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark is not JSON
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); expected an object {{\"item id\": [attribute ids]}}") \
            from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{\"item id\": [attribute ids]}}, "
                         f"found a {type(data).__name__}")
    attributes: dict[str, list[int]] = {}
    rejected = 0
    examples: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                           and -INT64_MAX - 1 <= v <= INT64_MAX for v in value):
            attributes[key] = value  # (the attributes column is list<int64>)
            continue
        rejected += 1
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(f"{path}: item {key[:30]!r}: expected a list of integer attribute ids (int64), "
                            f"found {str(value)[:40]}")
    if not data:
        raise InputError(f"{path}: no items (an empty object)")
    limit = float(max_bad_fraction)  # counts, not floats: 29 of 100 is within 0.29
    if rejected > (Fraction(repr(limit)) * len(data) if math.isfinite(limit) else limit):
        raise InputError(f"{rejected} of {len(data)} attribute entries rejected (over --max-bad-fraction "
                         f"{max_bad_fraction:.1%}); first: {examples[0]}")
    return attributes, {"path": str(path), "entries": len(data), "entries_rejected": rejected,
                        "rejected_examples": examples}


def products_table(asins: list[str], attributes: dict[str, list[int]] | None) -> pa.Table:
    """id, asin (the original item id), has_metadata, and ``attributes`` (list<int64>, null when none) when an
    attributes file was given."""
    data = {"id": pa.array(np.arange(len(asins), dtype=np.int32)), "asin": pa.array(asins, pa.string())}
    if attributes is None:
        data["has_metadata"] = pa.array(np.zeros(len(asins), dtype=bool))
        return pa.table(data)
    lists = [attributes.get(a) for a in asins]
    data["has_metadata"] = pa.array([v is not None for v in lists], pa.bool_())
    data["attributes"] = pa.array(lists, pa.list_(pa.int64()))
    return pa.table(data)


def prepare_sessions(paths: str | Path | Sequence[str | Path], out: str | Path, *, fmt: str,
                     attributes: str | Path | None = None, window: int = 1,
                     split: tuple[float, float, float] = DEFAULT_SPLIT, seed: int = 0,
                     max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION, progress: bool = True,
                     log: Callable[[str], None] = log_stderr) -> dict:
    """Prepare session or sequence files into ``out``: the item graph of consecutive items (relation "session"),
    split and negatives as for products, plus ``sequences.parquet`` (every session) and
    ``sequences_train.parquet`` (sessions cut at held-out pairs). Returns the manifest."""
    started = time.perf_counter()
    _check_format(fmt)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ConfigError(f"--window: expected a whole number of steps >= 1, got {window!r}")
    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    check_output(out, "data", inputs=[*paths, attributes])
    attribute_map, attribute_info = (None, None)
    if attributes is not None:  # read first: a bad attributes file fails before the long read
        attribute_map, attribute_info = read_attributes(attributes, max_bad_fraction)
    ids, sessions, report, state = read_sessions(paths, fmt, progress=progress, log=log)
    report.check(max_bad_fraction)
    n_items = len(ids)
    pairs, pair_counts = session_pairs(sessions, n_items, window)
    if len(pairs) == 0:
        raise InputError(f"{', '.join(map(str, paths))}: no item pairs: every session has a single distinct item")
    asins = ids.keys()
    lengths = sessions.lengths
    manifest = {
        "source": "sessions",
        "format": fmt,
        "window": window,
        **report.as_dict(),
        "header_lines": state["header_lines"],
        "sessions": len(sessions),
        "events": int(len(sessions.items)),
        "items": n_items,
        "mean_session_length": round(float(lengths.mean()), 4) if len(lengths) else 0.0,
        "max_session_length": int(lengths.max()) if len(lengths) else 0,
        "sessions_single_event": int((lengths == 1).sum()),
        "products_with_metadata": 0,
        "products_referenced": n_items,
        "weights": {RELATION: f"co-occurrences within {window} step(s) in a session, summed over sessions"},
        "cooccurrences": pair_counts["cooccurrences"],
        "relation_mentions": {RELATION: pair_counts["cooccurrences"] - pair_counts["self_pairs_dropped"]},
        "pairs_per_relation": {RELATION: len(pairs)},
        "self_pairs_dropped": pair_counts["self_pairs_dropped"],
    }
    products = products_table(asins, attribute_map)
    if attribute_map is not None:
        assert attribute_info is not None  # read with attribute_map
        with_attributes = int(np.count_nonzero(products["has_metadata"].to_numpy(zero_copy_only=False)))
        attribute_info.update({
            "items_with_attributes": with_attributes,
            "items_without_attributes": n_items - with_attributes,
            "entries_not_in_sessions": len(attribute_map) - with_attributes,
            "distinct_attributes": len({a for v in attribute_map.values() for a in v}),
        })
        manifest["products_with_metadata"] = with_attributes
        manifest["attributes"] = attribute_info

    def write_all(path: Path, parts: dict[str, Pairs]) -> dict:
        pq.write_table(sequences_table(sessions), path)
        return {}

    def write_train(path: Path, parts: dict[str, Pairs]) -> dict:
        held_out = np.sort(np.concatenate([pair_keys(parts[p].item_a, parts[p].item_b, n_items)
                                           for p in ("validation", "test")]))
        pieces, counts = cut_at_pairs(sessions, held_out, n_items, window)
        pq.write_table(sequences_table(pieces), path)
        return {"sequences_train": counts}

    return write_data_dir(Path(out), products=products, asins=asins, pairs=pairs, fractions=split, seed=seed,
                          manifest=manifest, started=started, progress=progress, inputs=[*paths, attributes],
                          extra_files={SEQUENCE_FILES["all"]: write_all, SEQUENCE_FILES["train"]: write_train})


def session_summary_lines(manifest: dict) -> list[str]:
    """Lines about the sessions, for the CLI (beside prepare's summary_lines)."""
    train = manifest.get("sequences_train", {})
    return [
        f"format {manifest['format']}: sessions {manifest['sessions']:,}, events {manifest['events']:,}, "
        f"mean length {manifest['mean_session_length']:.2f}, window {manifest['window']}, "
        f"repeated clicks dropped {manifest['self_pairs_dropped']:,}",
        f"training sequences {train.get('sequences', 0):,} after {train.get('cuts', 0):,} cuts at held-out "
        f"pairs (keep {train.get('items_kept', 0):,} of {manifest['events']:,} events)",
    ]

