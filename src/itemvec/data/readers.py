"""Reading raw input files, for every `itemvec prepare`: the stream of records over the files (``read_lines``)
and what reading found (``ReadReport``: counts, rejected records by reason with examples, truncated files).

A prepare rejects bad records one by one and fails only when more than ``--max-bad-fraction`` of them are bad
(``ReadReport.check``). The bytes themselves come from ``itemvec.data.io.LineReader`` (plain or gzip).
"""

from __future__ import annotations

import gc
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from itemvec.data.io import LineReader
from itemvec.errors import InputError
from itemvec.progress import progress_bar

EXAMPLES_PER_REASON = 5
DEFAULT_MAX_BAD_FRACTION = 0.01


def log_stderr(message: str) -> None:
    """The default ``log`` of the readers and prepares: one line on stderr."""
    print(message, file=sys.stderr)


@dataclass
class ReadReport:
    """What reading the inputs did; becomes part of manifest.json. records_read = parsed + rejected.

    A record that is kept with a field set to null (a NaN price, a sales rank beyond int64) is counted in
    ``fields_nulled`` by reason; ids left out of a kept record's relation lists (empty or whitespace ids) in
    ``ids_rejected`` by reason; both with ``file:line`` examples, so nothing changes silently."""

    files: list[dict] = field(default_factory=list)
    lines_read: int = 0
    blank_lines: int = 0
    records_read: int = 0
    records_parsed: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejected_examples: dict[str, list[str]] = field(default_factory=dict)
    duplicate_records: int = 0
    truncated_files: list[dict] = field(default_factory=list)
    fields_nulled: Counter = field(default_factory=Counter)
    fields_nulled_examples: dict[str, list[str]] = field(default_factory=dict)
    ids_rejected: Counter = field(default_factory=Counter)
    ids_rejected_examples: dict[str, list[str]] = field(default_factory=dict)

    def reject(self, reason: str, where: str, detail: str) -> None:
        self.rejected[reason] += 1
        examples = self.rejected_examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(f"{where}: {detail}")

    def null_field(self, reason: str, where: str, detail: str) -> None:
        """A parsed record kept with one field set to null."""
        self.fields_nulled[reason] += 1
        examples = self.fields_nulled_examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(f"{where}: {detail}")

    def reject_ids(self, reason: str, where: str, detail: str, count: int = 1) -> None:
        """``count`` ids left out of a parsed record (the record itself is kept)."""
        self.ids_rejected[reason] += count
        examples = self.ids_rejected_examples.setdefault(reason, [])
        if len(examples) < EXAMPLES_PER_REASON:
            examples.append(f"{where}: {detail}")

    def note_product(self, product, where: str) -> None:
        """Count what normalising a kept product nulled or left out (see :class:`itemvec.data.amazon.Product`)."""
        for reason, detail in product.nulled:
            self.null_field(reason, where, detail)
        for reason, detail, count in product.dropped_ids:
            self.reject_ids(reason, where, detail, count)

    @property
    def records_rejected(self) -> int:
        return sum(self.rejected.values())

    def check(self, max_bad_fraction: float) -> None:
        if self.records_read == 0:
            names = ", ".join(f["path"] for f in self.files)
            if self.truncated_files:
                reasons = "; ".join(f"{t['path']}: {t['reason']}" for t in self.truncated_files)
                raise InputError(f"{names}: no complete records ({reasons})")
            raise InputError(f"{names}: no records found (only blank lines)")
        bad = self.records_rejected
        # Counts, not floats: 29 bad of 100 is within --max-bad-fraction 0.29 (0.29 * 100 is 28.999999999999996).
        limit = float(max_bad_fraction)
        if bad > (Fraction(repr(limit)) * self.records_read if math.isfinite(limit) else limit):
            reason, _ = self.rejected.most_common(1)[0]
            first = self.rejected_examples[reason][0]
            raise InputError(
                f"{bad} of {self.records_read} records rejected ({bad / self.records_read:.1%}, over "
                f"--max-bad-fraction {max_bad_fraction:.1%}); most common: {reason}, first at {first}")

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "lines_read": self.lines_read,
            "blank_lines": self.blank_lines,
            "records_read": self.records_read,
            "records_parsed": self.records_parsed,
            "records_rejected": self.records_rejected,
            "rejected_by_reason": dict(self.rejected),
            "rejected_examples": self.rejected_examples,
            "duplicate_records_merged": self.duplicate_records,
            "truncated_files": self.truncated_files,
            "fields_nulled": dict(self.fields_nulled),
            "fields_nulled_examples": self.fields_nulled_examples,
            "ids_rejected": dict(self.ids_rejected),
            "ids_rejected_examples": self.ids_rejected_examples,
        }


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector off for the block (and back as it was after): a streaming read makes millions
    of small dicts, lists and strings without cycles (reference counting frees them), and the collector's
    passes over them cost about 10% of `prepare amazon` (Electronics size: 11.6 s against 10.4 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read_lines(paths: Sequence[str | Path], report: ReadReport, progress: bool, log: Callable[[str], None],
               ) -> Iterator[tuple[LineReader, str, bytes]]:
    """Yield ``(reader, where, line)`` over all files; records truncation and per-file counts in ``report``.

    A UTF-8 byte order mark at the start of a file is not part of its first line (``LineReader`` strips it;
    the file's entry says ``"bom": true``). A truncated or corrupt gzip keeps every line decoded before the
    break; the cut line is counted as a rejected record (``truncated_line``)."""
    readers = [LineReader(Path(p)) for p in paths]
    total = sum(r.size_bytes for r in readers)
    with progress_bar(total=total, unit="B", unit_scale=True, desc="reading", enabled=progress) as bar:
        for reader in readers:
            reader.on_bytes = bar.update
            before = report.records_read
            for number, line in reader:
                report.lines_read += 1
                if not line.strip():
                    report.blank_lines += 1
                    continue
                report.records_read += 1
                yield reader, f"{reader.path}:{number}", line
            info: dict[str, Any] = {"path": str(reader.path), "gzip": reader.compressed, "lines": reader.lines_read,
                    "records": report.records_read - before}
            if reader.bom:
                info["bom"] = True
            if reader.truncated:
                where = f"{reader.path}:{reader.truncated_after_line + 1}"
                message = (f"warning: {reader.path}: {reader.truncation_reason}; kept the "
                           f"{reader.truncated_after_line} complete lines before line {reader.truncated_after_line + 1}")
                log(message)
                info["truncated"] = reader.truncation_reason
                report.truncated_files.append({"path": str(reader.path), "reason": reader.truncation_reason,
                                               "complete_lines": reader.truncated_after_line})
                if reader.partial_last_line.strip():
                    # The cut line is a record we saw but could not read: count it, never drop it silently.
                    report.lines_read += 1
                    report.records_read += 1
                    info["records"] += 1
                    report.reject("truncated_line", where, "line cut off by the end of the compressed stream "
                                                           "or by corrupt compressed data")
            report.files.append(info)
