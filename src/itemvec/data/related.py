"""The relation lists of 2014-format metadata lines, read from the lines' bytes without making Python objects.

A Books-size line names about 30-70 partner ids. Parsing the whole line (pyjson5) makes a Python string and a
list entry for each, and ``normalise`` and the id map then walk them again: that was most of ``read_amazon``'s
time. Here one kernel call scans a batch of lines: where a line's top-level ``'related'`` value is in the plain
form the 2014 files are written in (``{'also_bought': ['0001', '0002'], 'also_viewed': [...]}``), its ids
become (start, end) byte spans and its lists (relation, count) groups, and the caller parses only the rest of
the line, with ``'related': {}`` in the value's place. ``assemble`` then lays each kept line's asin and
partner ids out back to back for the id table (``Interner.add_bytes``), in the order the per-record path
used: the line's asin, then its partners relation by relation.

The plain form is strict, and a line outside it is left to the full parser (``parse_line``), so the result is
the same either way: single-quoted relation names among the four 2014 types, each once; single-quoted ids of
printable ASCII without quotes, backslashes or spaces (nothing to strip, unescape or drop); spaces and tabs
between tokens; no trailing commas. The scan of the rest of the line only has to find the top-level
``'related'`` key: it follows strings (quotes, backslash escapes) and bracket depth, and gives up on what
could hide a key from it or fake one: triple quotes, comments, parentheses, a backslash outside a string, a
key after a prefix or another string (``u'..'``, ``'rel' 'ated'``) or with an escape, a second ``'related'``
(or a double-quoted or unquoted one), an unterminated string, anything after the record's closing brace.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# The 2014 relation names, in the order of itemvec.data.amazon.RELATION_TYPES (their relation codes).
NAMES = (b"bought_together", b"also_bought", b"also_viewed", b"buy_after_viewing")
_NAME_BYTES = np.zeros((len(NAMES), max(len(n) for n in NAMES)), dtype=np.uint8)
_NAME_LENGTHS = np.array([len(n) for n in NAMES], dtype=np.int64)
for _k, _name in enumerate(NAMES):
    _NAME_BYTES[_k, :len(_name)] = np.frombuffer(_name, dtype=np.uint8)
_RELATED = np.frombuffer(b"related", dtype=np.uint8).copy()

QUOTE, DQUOTE, BACKSLASH = 39, 34, 92
SPACE, TAB = 32, 9


@njit(cache=True, inline="always")
def _skip(buf, k, end):
    while k < end and (buf[k] == SPACE or buf[k] == TAB):
        k += 1
    return k


@njit(cache=True, inline="always")
def _is(buf, at, end, word, length):
    """Whether ``buf[at:at + length]`` (within ``end``) are the bytes ``word[:length]``."""
    if at + length > end:
        return False
    for b in range(length):
        if buf[at + b] != word[b]:
            return False
    return True


@njit(cache=True)
def _related_value(buf, k, end, spans, n_spans, groups, n_groups):
    """Read a plain ``{'name': ['id', ...], ...}`` starting at ``buf[k] == '{'``: appends the ids' spans and
    the non-empty lists' (code, count) groups. Returns (the end of the value, spans, groups) or (-1, ...)
    where the value is not in the plain form (the caller then forgets what was appended)."""
    seen = 0
    k = _skip(buf, k + 1, end)
    if k < end and buf[k] == 125:  # '}': no lists
        return k + 1, n_spans, n_groups
    while True:
        if k >= end or buf[k] != QUOTE:
            return -1, n_spans, n_groups
        j = k + 1
        while j < end and buf[j] != QUOTE:
            j += 1
        if j >= end:
            return -1, n_spans, n_groups
        code = -1
        for c in range(len(_NAME_LENGTHS)):
            if _NAME_LENGTHS[c] == j - k - 1 and _is(buf, k + 1, j, _NAME_BYTES[c], j - k - 1):
                code = c
                break
        if code < 0 or seen & (1 << code):  # another name (or one escaped), or a name twice
            return -1, n_spans, n_groups
        seen |= 1 << code
        k = _skip(buf, j + 1, end)
        if k >= end or buf[k] != 58:  # ':'
            return -1, n_spans, n_groups
        k = _skip(buf, k + 1, end)
        if k >= end or buf[k] != 91:  # '['
            return -1, n_spans, n_groups
        k = _skip(buf, k + 1, end)
        count = 0
        if k < end and buf[k] == 93:  # ']'
            k += 1
        else:
            while True:
                if k >= end or buf[k] != QUOTE:
                    return -1, n_spans, n_groups
                j = k + 1
                while j < end and buf[j] != QUOTE:
                    b = buf[j]
                    if b < 33 or b > 126 or b == BACKSLASH:  # spaces, controls, escapes, non-ASCII
                        return -1, n_spans, n_groups
                    j += 1
                if j >= end or j == k + 1:  # unterminated, or an empty id (the full parser drops and counts it)
                    return -1, n_spans, n_groups
                spans[n_spans, 0] = k + 1
                spans[n_spans, 1] = j
                n_spans += 1
                count += 1
                k = _skip(buf, j + 1, end)
                if k < end and buf[k] == 44:  # ','
                    k = _skip(buf, k + 1, end)
                    continue
                if k < end and buf[k] == 93:
                    k += 1
                    break
                return -1, n_spans, n_groups
        if count:
            groups[n_groups, 0] = code
            groups[n_groups, 1] = count
            n_groups += 1
        k = _skip(buf, k, end)
        if k < end and buf[k] == 44:
            k = _skip(buf, k + 1, end)
            continue
        if k < end and buf[k] == 125:
            return k + 1, n_spans, n_groups
        return -1, n_spans, n_groups


@njit(cache=True)
def scan(buf, starts, ends, cut, spans, line_spans, groups, line_groups):
    """For each line ``buf[starts[i]:ends[i]]``: ``cut[i]`` = the (start, end) of its top-level ``'related'``
    value when that is in the plain form, else (-1, -1); the ids of line i are ``spans[line_spans[i]:
    line_spans[i + 1]]`` and its lists ``groups[line_groups[i]:line_groups[i + 1]]`` (none for an uncut line).
    ``spans`` needs a row per 4 bytes of ``buf``, ``groups`` one per 8."""
    n_spans = 0
    n_groups = 0
    for i in range(len(starts)):
        line_spans[i] = n_spans
        line_groups[i] = n_groups
        cut[i, 0] = -1
        cut[i, 1] = -1
        end = ends[i]
        k = _skip(buf, starts[i], end)
        if k >= end or buf[k] != 123:  # not a dict
            continue
        depth = 0
        last = 0  # the last byte outside strings that is not a space (a closing quote for a string)
        found_start = -1
        found_end = -1
        line_n_spans, line_n_groups = n_spans, n_groups
        ok = True
        while k < end:
            c = buf[k]
            if c == QUOTE or c == DQUOTE:
                if k + 2 < end and buf[k + 1] == c and buf[k + 2] == c:  # a triple-quoted string
                    ok = False
                    break
                escaped = False
                j = k + 1
                while j < end and buf[j] != c:
                    if buf[j] == BACKSLASH:
                        escaped = True
                        j += 2
                    else:
                        j += 1
                if j >= end:
                    ok = False
                    break
                before = last
                last = c
                start = k
                k = j + 1
                if depth != 1:
                    continue
                colon = _skip(buf, k, end)
                if colon >= end or buf[colon] != 58:  # a value, not a key
                    continue
                # A key of the top-level dict. One the parsers could read differently from its bytes: after a
                # prefix or another string (u'..', 'rel' 'ated'), or with escapes ('\x72elated'), gives up.
                if (before != 123 and before != 44) or escaped:
                    ok = False
                    break
                if j - start - 1 != len(_RELATED) or not _is(buf, start + 1, j, _RELATED, len(_RELATED)):
                    continue
                value = _skip(buf, colon + 1, end)
                if c == DQUOTE or found_start >= 0 or value >= end or buf[value] != 123:  # "related", twice,
                    ok = False  # or not a dict
                    break
                stop, n_spans, n_groups = _related_value(buf, value, end, spans, n_spans, groups, n_groups)
                if stop < 0:
                    ok = False
                    break
                found_start, found_end = value, stop
                k = stop
                last = 125
                continue
            if c == SPACE or c == TAB:
                k += 1
                continue
            if c == 123 or c == 91:  # { [
                depth += 1
            elif c == 125 or c == 93:
                depth -= 1
                if depth == 0:  # the record ends: only white space may follow
                    k += 1
                    while k < end and (buf[k] == 10 or buf[k] == 13 or buf[k] == SPACE or buf[k] == TAB):
                        k += 1
                    if k < end:
                        ok = False
                    break
            elif c == 40 or c == 41 or c == 35 or c == 47 or c == BACKSLASH:  # ( ) parenthesised keys, # and /
                ok = False  # comments, a line continuation or an escaped identifier
                break
            elif depth == 1 and _is(buf, k, end, _RELATED, len(_RELATED)):  # an unquoted key (JSON5)
                ok = False
                break
            last = c
            k += 1
        if depth != 0:
            ok = False
        if ok and found_start >= 0:
            cut[i, 0] = found_start
            cut[i, 1] = found_end
        else:
            n_spans, n_groups = line_n_spans, line_n_groups
    line_spans[len(starts)] = n_spans
    line_groups[len(starts)] = n_groups
    return n_spans, n_groups


@njit(cache=True)
def assemble(py_data, py_offsets, fast, buf, spans, line_spans, groups, line_groups,
             slow_tokens, slow_groups, slow_codes, slow_counts, out_data, out_offsets, out_codes, out_counts,
             out_partners):
    """Each kept line's tokens back to back (``out_data``/``out_offsets``): its asin (``py`` string r), then
    its partners: for a line scanned in the plain form (``fast[r]`` = its index in the batch) its spans of
    ``buf``, else its ``slow_tokens[r]:slow_tokens[r + 1]`` strings of ``py`` (after the asins). Also each kept
    line's (code, count) groups in order and its number of partners. Returns (tokens, groups)."""
    n_lines = len(fast)
    t = 0
    g = 0
    pos = 0
    out_offsets[0] = 0
    for r in range(n_lines):
        for b in range(py_offsets[r], py_offsets[r + 1]):
            out_data[pos] = py_data[b]
            pos += 1
        t += 1
        out_offsets[t] = pos
        line = fast[r]
        if line >= 0:
            for s in range(line_spans[line], line_spans[line + 1]):
                for b in range(spans[s, 0], spans[s, 1]):
                    out_data[pos] = buf[b]
                    pos += 1
                t += 1
                out_offsets[t] = pos
            for q in range(line_groups[line], line_groups[line + 1]):
                out_codes[g] = groups[q, 0]
                out_counts[g] = groups[q, 1]
                g += 1
            out_partners[r] = line_spans[line + 1] - line_spans[line]
        else:
            for s in range(slow_tokens[r], slow_tokens[r + 1]):
                for b in range(py_offsets[n_lines + s], py_offsets[n_lines + s + 1]):
                    out_data[pos] = py_data[b]
                    pos += 1
                t += 1
                out_offsets[t] = pos
            for q in range(slow_groups[r], slow_groups[r + 1]):
                out_codes[g] = slow_codes[q]
                out_counts[g] = slow_counts[q]
                g += 1
            out_partners[r] = slow_tokens[r + 1] - slow_tokens[r]
    return t, g
