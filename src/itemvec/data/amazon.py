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

Bad input, per line: bytes that are not UTF-8 are ``bad_encoding`` (checked before pyjson5, whose own decoder
would turn an invalid byte and the bytes after it into other characters); an ``asin`` that is not a string is
``bad_id``. Unusable fields of a kept record become None and are listed in ``Product.nulled``: a price that is
NaN, infinite or negative; a sales rank that is not a whole number in 0 .. 2**63 - 1 (1e400, 2**70, 1.5, -3, a
5,000-digit rank text); text with a lone surrogate escape (``\\ud800``, which no output file can store). Relation
ids are stripped; empty ones (and ones with a lone surrogate) are left out and listed in ``Product.dropped_ids``.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
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
TOP_LEVEL_ORDER = ("also_buy", "also_view", "also_bought", "also_viewed", "bought_together", "buy_after_viewing")
TOP_LEVEL_RELATIONS = frozenset(TOP_LEVEL_ORDER)  # relation lists outside ``related`` (2018's, or any line's)
PRICE_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
RANK_NUMBER = re.compile(r"\d[\d,]*")
INT64_MAX = 2**63 - 1
ESCAPE = re.compile(rb"\\[uU]")  # a \\u or \\U escape, the only way to write a lone surrogate
WHITESPACE = re.compile(r"\s")  # the characters str.strip removes


class RecordError(ValueError):
    """A line that is not a usable product record; ``reason`` is the manifest's key for it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(slots=True)
class Product:
    """One product line, normalised across formats. Missing fields are None.

    ``nulled`` lists the fields that the line had but that were unusable and became None, as
    ``(reason, detail)`` (a NaN or negative price, a sales rank that is not a whole number in int64, text
    with a lone surrogate escape); ``dropped_ids`` the relation ids left out, as ``(reason, detail, count)``
    (empty or whitespace ids, ids with a lone surrogate). The reader counts both in the manifest.
    """

    asin: str
    title: str | None = None
    brand: str | None = None
    categories: list[list[str]] | None = None
    price: float | None = None
    sales_rank: int | None = None
    sales_rank_category: str | None = None
    description: str | None = None
    related: dict[str, list[str]] = field(default_factory=dict)
    nulled: list[tuple[str, str]] = field(default_factory=list)
    dropped_ids: list[tuple[str, str, int]] = field(default_factory=list)


def _decode(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("bad_encoding", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None


def parse_python_literal(line: bytes) -> object:
    """Parse one 2014-format line (a Python literal) safely: pyjson5 first, ``ast.literal_eval`` second.

    The bytes must be UTF-8 (else ``bad_encoding``): pyjson5's own byte decoder is lenient and would turn an
    invalid byte and the bytes after it into other characters."""
    text = _decode(line)
    try:
        return pyjson5.decode(text)
    except Exception:  # noqa: BLE001 - pyjson5 raises several types; the fallback decides
        pass
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and the like: one per odd line, on stderr
            warnings.simplefilter("ignore")
            return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        raise RecordError("parse_error", f"not a Python literal or JSON object ({type(exc).__name__})") from None


def parse_json(line: bytes) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        _decode(line)  # invalid UTF-8 is bad_encoding, not parse_error
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
            raw = orjson.loads(line)  # orjson rejects invalid UTF-8 and lone surrogates itself
        except orjson.JSONDecodeError:
            pass
        else:
            return normalise(raw)
    raw = parse_python_literal(line)
    # Only a \u or \U escape can make a lone surrogate (the bytes themselves are valid UTF-8), which no
    # output file can store: such strings are checked.
    return normalise(raw, escapes=ESCAPE.search(line) is not None)


def _show(value: object, limit: int = 30) -> str:
    """A short printable form of any parsed value, for reject details (never raises)."""
    try:
        text = repr(value) if isinstance(value, str) else str(value)
    except (ValueError, RecursionError):  # an integer too long to print, or a too deeply nested list
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


def _unicode(text: str) -> bool:
    """False for a string with a lone surrogate (from a \\ud800 escape): not valid Unicode, not storable."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _str(value: object) -> str | None:
    """``str(value)``, or None where that raises (an integer of over 4,300 digits, a too deep list)."""
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except (ValueError, RecursionError):
        return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [v for v in value if isinstance(v, str) and v]
        return "\n".join(parts) if parts else None
    return _str(value)


def _price(value: object, nulled: list) -> float | None:
    """Numbers pass; text such as "$12.99" or "$1,299.00" gives its first number; a range gives its low end.

    A price that is NaN, infinite, negative or not a number at all becomes None and is noted in ``nulled``;
    text without a number (2018 has HTML fragments in ``price`` for some rows) is no price."""
    if value is None:
        return None
    price = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            price = float(value)
        except OverflowError:  # an integer beyond the float range
            price = math.inf
    elif isinstance(value, str):
        match = PRICE_NUMBER.search(value)
        if not match or len(value) >= 40:
            return None
        price = float(match.group().replace(",", ""))
    if price is None or not math.isfinite(price) or price < 0:
        nulled.append(("bad_price", f"price {_show(value)} is not a finite number >= 0"))
        return None
    return price


def _whole_rank(value: object) -> int | None:
    """A sales rank: a whole number in 0 .. 2**63 - 1 (the int64 column), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= INT64_MAX else None
    if isinstance(value, float):
        return int(value) if math.isfinite(value) and value.is_integer() and 0 <= value <= INT64_MAX else None
    if isinstance(value, str):  # digits, with thousands commas
        digits = value.replace(",", "").strip().lstrip("0") or "0"
        if not digits.isdecimal() or len(digits) > 19:  # over int64 (and int() of 4,300 digits would raise)
            return None
        number = int(digits)
        return number if number <= INT64_MAX else None
    return None


def _rank(value: object, nulled: list) -> tuple[int | None, str | None]:
    """(sales rank, its category) from 2014's ``{"Category": 123}`` or 2018's "1,234 in Books (". A rank that
    is not a whole number in int64 (1e400, 2**70, 1.5, -3, "999...9") becomes None and is noted in ``nulled``."""
    if value is None:
        return None, None
    original = value
    rank, category = None, None
    if isinstance(value, dict):
        if not value:
            return None, None
        category, rank = next(iter(value.items()))
        category = _str(category)
    else:
        if isinstance(value, list):
            if not value:
                return None, None
            value = value[0]
        if isinstance(value, str):
            match = RANK_NUMBER.search(value)
            if not match:
                return None, None  # text without a number: no rank
            rest = value[match.end():].strip()
            category = rest[3:].split("(")[0].strip() if rest.startswith("in ") else None
            rank = match.group()
        else:
            rank = value
    number = _whole_rank(rank)
    if number is None:
        nulled.append(("bad_sales_rank", f"sales rank {_show(original)} is not a whole number in 0..2**63-1"))
        return None, None
    return number, category or None


def _categories(record: dict) -> list[list[str]] | None:
    value = record.get("categories")
    if value is None:
        value = record.get("category")
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return [list(value)]
    if isinstance(value, list):
        paths = []
        for path in value:
            if not isinstance(path, list):
                continue
            try:
                "".join(path)  # every category a string (the usual case), checked at C speed: the list as it is
            except TypeError:
                path = [c if isinstance(c, str) else _str(c) or "" for c in path]
            paths.append(path)
        return paths or None
    return None


def _related_list(name: str, value: object, dropped: list, escapes: bool) -> list[str]:
    """The ids of one relation list, stripped; empty ids (and, with ``escapes``, ids with a lone surrogate)
    are left out and noted in ``dropped``."""
    if not isinstance(value, list):
        raise RecordError("bad_related", f"'{name}' is not a list of product ids")
    try:
        joined = "".join(value)  # a TypeError names a non-string id, at C speed
    except TypeError:
        raise RecordError("bad_related", f"'{name}' is not a list of product ids") from None
    ids = value
    if "" in value or WHITESPACE.search(joined):  # the common case, clean ids, needs no copy
        ids = [v.strip() for v in value]
        if "" in ids:
            n = ids.count("")
            ids = [v for v in ids if v]
            dropped.append(("empty_id", f"{n} empty or whitespace id(s) in '{name}'", n))
    if escapes and not _unicode(joined):
        n = sum(not _unicode(v) for v in ids)
        ids = [v for v in ids if _unicode(v)]
        dropped.append(("bad_encoding", f"{n} id(s) in '{name}' with a lone surrogate escape", n))
    return ids


def normalise(raw: object, escapes: bool = False) -> Product:
    """Turn a parsed 2014 or 2018 record into a :class:`Product`, or raise :class:`RecordError`.

    ``escapes``: the line had ``\\u`` / ``\\U`` escapes, so strings may hold lone surrogates; they are checked
    (an asin with one is rejected, a relation id dropped, a text field nulled; all counted)."""
    if not isinstance(raw, dict):
        raise RecordError("not_a_record", f"expected a dict/object, found {type(raw).__name__}")
    asin = raw.get("asin")
    if asin is None or (isinstance(asin, str) and not asin.strip()):
        raise RecordError("missing_asin", "no 'asin' string")
    if not isinstance(asin, str):
        raise RecordError("bad_id", f"'asin' is a {type(asin).__name__} ({_show(asin)}), not a string")
    if escapes and not _unicode(asin):
        raise RecordError("bad_encoding", "'asin' has a lone surrogate escape (not valid Unicode)")
    related: dict[str, list[str]] = {}
    dropped: list[tuple[str, str, int]] = []
    nested = raw.get("related")
    if nested is not None:
        if not isinstance(nested, dict):
            raise RecordError("bad_related", "'related' is not a dict")
        for name, value in nested.items():
            if not isinstance(name, str) or not name.strip() or (escapes and not _unicode(name)):
                raise RecordError("bad_related", f"relation name {_show(name)} is not a usable name")
            related[RELATION_ALIASES.get(name, name)] = _related_list(name, value, dropped, escapes)
    for name in () if TOP_LEVEL_RELATIONS.isdisjoint(raw) else TOP_LEVEL_ORDER:  # 2014 lines have none
        if name in raw:
            value = raw[name]
            if value is None or (isinstance(value, str | list) and not value):
                continue
            canonical = RELATION_ALIASES[name]
            related[canonical] = related.get(canonical, []) + _related_list(name, value, dropped, escapes)
    nulled: list[tuple[str, str]] = []
    rank, rank_category = _rank(raw.get("salesRank", raw.get("rank")), nulled)
    brand, title = raw.get("brand"), raw.get("title")
    if brand is not None and not isinstance(brand, str):
        nulled.append(("bad_brand", f"brand {_show(brand)} is not text"))
    if title is not None and not isinstance(title, str):
        nulled.append(("bad_title", f"title {_show(title)} is not text"))
    # positional, in the fields' order (a third of the keyword call's time, once per line of a catalogue)
    product = Product(
        asin.strip(),  # asin
        title if isinstance(title, str) and title else None,  # title
        brand.strip() if isinstance(brand, str) and brand.strip() else None,  # brand
        _categories(raw),  # categories
        _price(raw.get("price"), nulled),  # price
        rank,  # sales_rank
        rank_category,  # sales_rank_category
        _text(raw.get("description")),  # description
        related,
        nulled,
        dropped,  # dropped_ids
    )
    if escapes:
        _null_lone_surrogates(product)
    return product


def _null_lone_surrogates(product: Product) -> None:
    """Null (and note) the text fields that hold a lone surrogate, which no output file can store."""
    for name in ("title", "brand", "sales_rank_category", "description"):
        value = getattr(product, name)
        if value is not None and not _unicode(value):
            setattr(product, name, None)
            product.nulled.append((f"bad_{name}", f"{name} has a lone surrogate escape (not valid Unicode)"))
    if product.categories is not None and not all(_unicode(c) for path in product.categories for c in path):
        product.categories = None
        product.nulled.append(("bad_categories", "categories have a lone surrogate escape (not valid Unicode)"))
