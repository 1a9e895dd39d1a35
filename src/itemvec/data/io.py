"""Streaming line input (plain or gzip, detected per file) and atomic output.

Input is read in fixed-size chunks, so memory does not grow with the file. A gzip stream that ends early
(a truncated download) keeps every complete line: the reader records where the stream broke instead of
raising, and the caller decides what to report.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from itemvec.errors import InputError

CHUNK_BYTES = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class LineReader:
    """Iterate over ``(line_number, line_bytes)`` of one file, plain or gzip (by magic bytes, not by name).

    Line numbers start at 1; the trailing newline (and a ``\\r`` before it) is removed. After iteration,
    ``truncated`` says whether a gzip stream ended before its end marker (or was corrupt), and
    ``truncated_after_line`` is the last complete line kept. A partial last line of a truncated stream is
    not yielded: it is kept in ``partial_last_line`` so the caller can count and report it.
    ``on_bytes`` is called with the number of raw (compressed) bytes consumed, for progress bars.
    """

    path: Path
    on_bytes: object = None
    compressed: bool = False
    truncated: bool = False
    truncation_reason: str = ""
    truncated_after_line: int = 0
    partial_last_line: bytes = b""
    lines_read: int = 0
    _size: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: is a directory, expected a file")
        self._size = self.path.stat().st_size
        if self._size == 0:
            raise InputError(f"{self.path}: file is empty")
        with open(self.path, "rb") as handle:
            self.compressed = handle.read(2) == GZIP_MAGIC

    @property
    def size_bytes(self) -> int:
        return self._size

    def _chunks(self) -> Iterator[bytes]:
        """Decompressed chunks; marks truncation instead of raising on a broken gzip stream."""
        with open(self.path, "rb") as handle:
            if not self.compressed:
                while chunk := handle.read(CHUNK_BYTES):
                    self._progress(len(chunk))
                    yield chunk
                return
            # wbits=31: gzip framing. A file may hold several gzip members (as `cat a.gz b.gz` makes).
            decompressor = zlib.decompressobj(wbits=31)
            in_member = False  # bytes of an unfinished member have been fed
            while raw := handle.read(CHUNK_BYTES):
                self._progress(len(raw))
                while raw:
                    try:
                        out = decompressor.decompress(raw)
                    except zlib.error as exc:
                        self.truncated = True
                        self.truncation_reason = f"corrupt gzip data ({exc})"
                        return
                    in_member = True
                    if out:
                        yield out
                    if decompressor.eof:
                        raw = decompressor.unused_data
                        decompressor = zlib.decompressobj(wbits=31)
                        in_member = False
                        if not raw.strip(b"\x00"):  # zero padding after the last member is allowed
                            raw = b""
                    else:
                        raw = b""
            if in_member:
                tail = decompressor.flush()
                if tail:
                    yield tail
                self.truncated = True
                self.truncation_reason = "gzip stream ends before its end marker (truncated file)"

    def _progress(self, n: int) -> None:
        if self.on_bytes is not None:
            self.on_bytes(n)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        pending = b""
        number = 0
        for chunk in self._chunks():
            data = pending + chunk if pending else chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            for line in lines:
                number += 1
                if line.endswith(b"\r"):
                    line = line[:-1]
                yield number, line
        self.lines_read = number
        if pending:
            if self.truncated:
                # The last line was cut by the truncation: not a complete record.
                self.partial_last_line = pending
            else:
                number += 1
                self.lines_read = number
                yield number, pending.rstrip(b"\r")
        self.truncated_after_line = number


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; on success it replaces ``final`` in one rename.

    An interrupted or failed run removes the temporary directory and leaves ``final`` as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(final: Path, mode: str = "wb"):
    """Open a temporary file beside ``final`` and rename it into place when the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.tmp-", dir=final.parent)
    os.close(fd)
    try:
        with open(tmp, mode) as handle:
            yield handle
        os.replace(tmp, final)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
