"""One field of a raw rating row → a value, or a ``Reject`` that names the reason (the checks every format shares).

A rejected row is counted by ``Reject.reason`` in the ReadReport (itemvec.data.readers) with its message as an
example; the row itself is skipped.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import UTC, datetime

import numpy as np

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the ratings' column type
YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-\u2013]\d{0,4})?\)\s*$")
RELEASE_DATE = re.compile(r"^\s*\d{1,2}-[A-Za-z]{3}-(\d{4})\s*$")


class Reject(Exception):
    """A row that is not read: ``reason`` is the ReadReport's counter, the message its example."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def short_repr(value, limit: int = 20) -> str:
    """``repr`` of a rejected value, cut to ``limit`` characters (never raises, not even for a huge int)."""
    try:
        text = value if isinstance(value, str) else str(value)
    except (ValueError, RecursionError):  # an integer of over 4,300 digits
        text = f"<{type(value).__name__}>"
    return repr(text[:limit])


def parse_rating(text, scale: tuple[float, float] | None) -> float:
    """A rating: a number that float32 holds, within ``scale`` (min, max) unless that is None."""
    if isinstance(text, bool):
        raise Reject("bad_rating", f"rating {text!r} is not a number")
    try:
        value = float(text)
    except (TypeError, ValueError, OverflowError):
        raise Reject("bad_rating", f"rating {short_repr(text)} is not a number") from None
    if not math.isfinite(value) or abs(value) > FLOAT32_MAX:  # ratings are stored as float32
        raise Reject("bad_rating", f"rating {short_repr(text)} is not a finite number that float32 holds")
    if scale is not None and not scale[0] <= value <= scale[1]:
        raise Reject("rating_out_of_range", f"rating {value:g} is outside the scale {scale[0]:g}-{scale[1]:g}")
    return value


def _seconds(value: int, text) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise Reject("bad_timestamp", f"timestamp {short_repr(text, 30)} is beyond the int64 range of Unix seconds")
    return value


def parse_timestamp(text) -> int:
    """Unix seconds (whole or fractional, truncated) or an ISO 8601 time; empty or None is 0 (unknown).

    A time beyond int64 seconds (a 20-digit number, 1e300) is rejected as ``bad_timestamp``."""
    if text is None or text == "":
        return 0
    if isinstance(text, bool):
        raise Reject("bad_timestamp", f"timestamp {text!r} is not a time")
    if isinstance(text, int):
        return _seconds(text, text)
    if isinstance(text, str):
        digits = text.strip().lstrip("+-").lstrip("0")
        if len(digits) > 19 and digits.isdecimal():  # beyond int64 (and int() of 4,300 digits would raise)
            raise Reject("bad_timestamp", f"timestamp {short_repr(text, 30)} is beyond the int64 range of Unix "
                                          "seconds")
    try:
        return _seconds(int(text), text)
    except (TypeError, ValueError):
        pass
    try:
        value = float(text)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(str(text))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return int(moment.timestamp())
        except (ValueError, OverflowError):  # not ISO 8601, or a year beyond the datetime range once in UTC
            raise Reject("bad_timestamp", f"timestamp {short_repr(text, 30)} is neither Unix seconds nor an ISO "
                                          "8601 time") from None
    if not math.isfinite(value):
        raise Reject("bad_timestamp", f"timestamp {short_repr(text, 30)} is not a finite number")
    return _seconds(int(value), text)


def split_csv(text: str, delimiter: str) -> list[str]:
    """The fields of one CSV line (quotes as the csv module reads them); a malformed row is a ``Reject``."""
    if '"' in text:
        try:
            return next(csv.reader([text], delimiter=delimiter), [])
        except csv.Error as exc:  # a carriage return inside a quoted field, ...
            raise Reject("parse_error", f"not a CSV row ({exc})") from None
    return text.split(delimiter)


def csv_fields(line: bytes, delimiter: str) -> list[str]:
    """The fields of a CSV data line; not UTF-8 or not a CSV row is a ``Reject``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Reject("bad_encoding", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return split_csv(text, delimiter)


def header_text(line: bytes) -> str:
    """A header line: a header names columns (it is not data), so a stray non-UTF-8 byte in it is replaced
    rather than making the next data line the header."""
    return line.decode("utf-8", errors="replace")


def title_year(title: str | None, release_date: str | None = None) -> int | None:
    """The year of a title ending in "(1995)" (or "(2006-2007)"), else of a release date such as 01-Jan-1995."""
    for text, pattern in ((title, YEAR_IN_TITLE), (release_date, RELEASE_DATE)):
        match = pattern.search(text) if text else None
        if match:
            return int(match.group(1))
    return None
