"""Streaming reader for Amazon product metadata, 2014 and 2018 formats.

2014 (McAuley et al., SIGIR 2015): one Python dict literal per line (single-quoted strings), with
``related`` = {also_bought, also_viewed, bought_together, buy_after_viewing}, ``salesRank`` a dict and
``categories`` a list of category paths. Parsed with pyjson5 (a compiled JSON5 parser: JSON5 accepts
single-quoted strings and Python's escapes as ``repr`` writes them), about 10 times faster than
``ast.literal_eval``; a line it refuses (``True``/``None``, ``u''`` prefixes, tuples) falls back to
``ast.literal_eval``. Never ``eval``.

2018 (Ni, Li, McAuley, EMNLP 2019): JSON lines with top-level ``also_buy`` / ``also_view``, ``brand``,
``category`` (one path), ``price`` as text such as "$12.99", ``rank`` as text, ``description`` a list.

Both become one normalised :class:`Product` with relation lists under the canonical 2014 names.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import orjson
import pyjson5

# Canonical relation names; 2018 names map onto them.
RELATION_TYPES = ("bought_together", "also_bought", "also_viewed", "buy_after_viewing")
RELATION_ALIASES = {
    "also_buy": "also_bought",
    "also_view": "also_viewed",
    "bought_together": "bought_together",
    "also_bought": "also_bought",
    "also_viewed": "also_viewed",
    "buy_after_viewing": "buy_after_viewing",
}
PRICE_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
RANK_NUMBER = re.compile(r"\d[\d,]*")


class RecordError(ValueError):
    """A line that is not a usable product record; ``reason`` is the manifest's key for it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass
class Product:
    """One product line, normalised across formats. Missing fields are None."""

    asin: str
    title: str | None = None
    brand: str | None = None
    categories: list[list[str]] | None = None
    price: float | None = None
    sales_rank: int | None = None
    sales_rank_category: str | None = None
    description: str | None = None
    related: dict[str, list[str]] = field(default_factory=dict)


def parse_python_literal(line: bytes) -> object:
    """Parse one 2014-format line (a Python literal) safely: pyjson5 first, ``ast.literal_eval`` second."""
    try:
        return pyjson5.decode_utf8(line)
    except Exception:  # noqa: BLE001 - pyjson5 raises several types; the fallback decides
        pass
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("bad_encoding", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        raise RecordError("parse_error", f"not a Python literal or JSON object ({type(exc).__name__})") from None


def parse_json(line: bytes) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RecordError("parse_error", f"not JSON ({exc})") from None


def detect_format(line: bytes) -> str:
    """'2018' if the line is JSON, else '2014' (a Python literal). Used on a file's first record."""
    try:
        orjson.loads(line)
        return "2018"
    except orjson.JSONDecodeError:
        return "2014"


def parse_line(line: bytes, fmt: str) -> Product:
    """Parse and normalise one line. Lines of the other format are still accepted (mixed files)."""
    if fmt == "2018":
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError:
            raw = parse_python_literal(line)
    else:
        raw = parse_python_literal(line)
    return normalise(raw)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [v for v in value if isinstance(v, str) and v]
        return "\n".join(parts) if parts else None
    return str(value)


def _price(value: object) -> float | None:
    """Numbers pass; text such as "$12.99" or "$1,299.00" gives its first number; a range gives its low end."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = PRICE_NUMBER.search(value)
        if match and len(value) < 40:  # 2018 has HTML fragments in `price` for some rows
            return float(match.group().replace(",", ""))
    return None


def _rank(value: object) -> tuple[int | None, str | None]:
    if isinstance(value, dict) and value:
        category, rank = next(iter(value.items()))
        if isinstance(rank, int | float) and not isinstance(rank, bool):
            return int(rank), str(category)
        return None, None
    if isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if isinstance(value, str):
        match = RANK_NUMBER.search(value)
        if match:
            rest = value[match.end():].strip()
            category = rest[3:].split("(")[0].strip() if rest.startswith("in ") else None
            return int(match.group().replace(",", "")), category or None
    return None, None


def _categories(record: dict) -> list[list[str]] | None:
    value = record.get("categories")
    if value is None:
        value = record.get("category")
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return [list(value)]
    if isinstance(value, list):
        paths = [[str(c) for c in path] for path in value if isinstance(path, list)]
        return paths or None
    return None


def _related_list(name: str, value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RecordError("bad_related", f"'{name}' is not a list of product ids")
    return value


def normalise(raw: object) -> Product:
    """Turn a parsed 2014 or 2018 record into a :class:`Product`, or raise :class:`RecordError`."""
    if not isinstance(raw, dict):
        raise RecordError("not_a_record", f"expected a dict/object, found {type(raw).__name__}")
    asin = raw.get("asin")
    if not isinstance(asin, str) or not asin.strip():
        raise RecordError("missing_asin", "no 'asin' string")
    related: dict[str, list[str]] = {}
    nested = raw.get("related")
    if nested is not None:
        if not isinstance(nested, dict):
            raise RecordError("bad_related", "'related' is not a dict")
        for name, value in nested.items():
            related[RELATION_ALIASES.get(name, name)] = _related_list(name, value)
    for name in ("also_buy", "also_view", "also_bought", "also_viewed", "bought_together", "buy_after_viewing"):
        if name in raw and name != "related":
            value = raw[name]
            if value in (None, "", []):
                continue
            canonical = RELATION_ALIASES[name]
            related[canonical] = related.get(canonical, []) + _related_list(name, value)
    rank, rank_category = _rank(raw.get("salesRank", raw.get("rank")))
    brand = raw.get("brand")
    title = raw.get("title")
    return Product(
        asin=asin.strip(),
        title=title if isinstance(title, str) and title else None,
        brand=brand.strip() if isinstance(brand, str) and brand.strip() else None,
        categories=_categories(raw),
        price=_price(raw.get("price")),
        sales_rank=rank,
        sales_rank_category=rank_category,
        description=_text(raw.get("description")),
        related=related,
    )
