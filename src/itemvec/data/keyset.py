"""A set of non-negative int64 keys as an open-addressing hash table (numba), for the negatives' draws.

Telling whether a drawn key was seen before in the draws was a ``searchsorted`` into sorted keys: at Books size
(6 million draws in a round) about 25 cache misses per draw. A hash table costs one or two. Whether a drawn pair
is a known positive is a binary search in one item's sorted row (``PairSet``). The table is a flat int64 array
of a power-of-two size, kept at most 60% full; -1 marks a free slot. The kernels prefetch the slots of the keys
ahead of the one they probe (itemvec.lookup).
numba is loaded only by a prepare (this module is imported where the negatives are drawn).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from itemvec.lookup import AHEAD, find_sorted, prefetch

EMPTY = np.int64(-1)


@njit(cache=True, inline="always")
def _slot(key, mask):
    x = np.uint64(key)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    return np.int64(x & np.uint64(mask))


@njit(cache=True, inline="always")
def _prefetch_key(table, keys, j, mask):
    if j < len(keys):
        prefetch(table, _slot(keys[j], mask))


@njit(cache=True, nogil=True)
def _insert_all(table, keys):
    """Insert ``keys``; returns how many were new."""
    mask = len(table) - 1
    added = 0
    for j in range(AHEAD):
        _prefetch_key(table, keys, j, mask)
    for j in range(len(keys)):
        _prefetch_key(table, keys, j + AHEAD, mask)
        key = keys[j]
        s = _slot(key, mask)
        while True:
            held = table[s]
            if held == key:
                break
            if held == -1:
                table[s] = key
                added += 1
                break
            s = (s + 1) & mask
    return added


@njit(cache=True, nogil=True)
def _contains(table, keys, out):
    mask = len(table) - 1
    for j in range(AHEAD):
        _prefetch_key(table, keys, j, mask)
    for j in range(len(keys)):
        _prefetch_key(table, keys, j + AHEAD, mask)
        key = keys[j]
        s = _slot(key, mask)
        found = False
        while True:
            held = table[s]
            if held == key:
                found = True
                break
            if held == -1:
                break
            s = (s + 1) & mask
        out[j] = found


@njit(cache=True, inline="always")
def _ends(a, b):
    return (a, b) if a < b else (b, a)


@njit(cache=True, inline="always")
def _prefetch_row(indptr, cols, lo):
    start, end = indptr[lo], indptr[lo + 1]
    if end > start:
        prefetch(cols, (start + end) >> 1)


@njit(cache=True, nogil=True)
def _accept(ca, cb, n_items, indptr, cols, seen, slots, lo_out, hi_out, left):
    """One round of draws for the slots ``slots``: the pair (ca[j], cb[j]) is accepted where it is not a self
    pair, not a known pair (the sorted rows ``indptr``/``cols``, ``PairSet``) and its key is not in ``seen``
    (keys accepted or refused before, and the excluded ones); every key is then added to ``seen``, so a key
    repeated within the round is accepted at most once (its first draw). An accepted pair's ends go to
    ``lo_out``/``hi_out`` at its slot (smaller first); the slots not filled go to ``left``, in order. Returns
    (keys new to ``seen``, slots left).

    Prefetched ahead: a draw's row start ``2 * AHEAD`` draws early, then (that start read) the middle of its
    row and its ``seen`` slot ``AHEAD`` draws early."""
    seen_mask = len(seen) - 1
    added = 0
    n_left = 0
    n = len(ca)
    for j in range(min(2 * AHEAD, n)):
        prefetch(indptr, _ends(ca[j], cb[j])[0])
    for j in range(min(AHEAD, n)):
        lo, hi = _ends(ca[j], cb[j])
        prefetch(seen, _slot(lo * n_items + hi, seen_mask))
        _prefetch_row(indptr, cols, lo)
    for j in range(n):
        if j + 2 * AHEAD < n:
            prefetch(indptr, _ends(ca[j + 2 * AHEAD], cb[j + 2 * AHEAD])[0])
        if j + AHEAD < n:
            lo, hi = _ends(ca[j + AHEAD], cb[j + AHEAD])
            prefetch(seen, _slot(lo * n_items + hi, seen_mask))
            _prefetch_row(indptr, cols, lo)
        a, b = ca[j], cb[j]
        lo, hi = _ends(a, b)
        key = lo * n_items + hi
        s = _slot(key, seen_mask)
        new = True
        while True:
            held = seen[s]
            if held == key:
                new = False
                break
            if held == -1:
                seen[s] = key
                added += 1
                break
            s = (s + 1) & seen_mask
        if not new or a == b or find_sorted(cols, indptr[lo], indptr[lo + 1], hi) >= 0:
            left[n_left] = slots[j]
            n_left += 1
        else:
            lo_out[slots[j]] = lo
            hi_out[slots[j]] = hi
    return added, n_left


@njit(cache=True)
def _rows_sorted(a, b):
    """Whether every pair has a < b and the pairs are in ascending (a, b) order."""
    for j in range(len(a)):
        if a[j] >= b[j]:
            return False
        if j and (a[j] < a[j - 1] or (a[j] == a[j - 1] and b[j] < b[j - 1])):
            return False
    return True


class PairSet:
    """A set of unordered item pairs as sorted rows: the pairs (lo, hi), lo < hi, in ascending order, ``cols``
    their ``hi`` and ``indptr`` where each ``lo``'s row starts (a CSR matrix's structure). A prepare's pairs
    are already in this order (sorted by key), so the set is their ``item_b`` column and one offset per item:
    about 16 MB at Books size where a hash table of their keys took 750 MB to build (537 MB of table) and 3.5 s.
    A lookup is a binary search in one row (most rows are a cache line or two)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, n_items: int) -> None:
        lo, hi = np.asarray(lo), np.asarray(hi)
        if not _rows_sorted(lo, hi):
            lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
            order = np.lexsort((hi, lo))
            lo, hi = lo[order], hi[order]
        self.cols = np.ascontiguousarray(hi)
        self.indptr = np.zeros(n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(lo, minlength=n_items), out=self.indptr[1:])
        self.n_items = n_items

    @classmethod
    def from_keys(cls, keys: np.ndarray, n_items: int) -> PairSet:
        """The pairs of ``pair_keys`` keys (``lo * n_items + hi``)."""
        keys = np.asarray(keys, dtype=np.int64)
        return cls(keys // n_items, keys % n_items, n_items)

    def __len__(self) -> int:
        return len(self.cols)


MAX_LOAD = 0.6  # linear probing stays at one or two probes a lookup up to about this


def _size_for(n: int) -> int:
    """The power of two that holds ``n`` keys at most ``MAX_LOAD`` full."""
    return 1 << max(4, int(np.ceil(max(n, 1) / MAX_LOAD) - 1).bit_length())


class KeySet:
    """Non-negative int64 keys; ``add`` grows the table so that it stays at most ``MAX_LOAD`` full."""

    def __init__(self, keys: np.ndarray | None = None, capacity: int = 0) -> None:
        keys = np.zeros(0, np.int64) if keys is None else np.ascontiguousarray(keys, dtype=np.int64)
        self.table = np.full(_size_for(max(len(keys), capacity)), EMPTY, dtype=np.int64)
        self.size = 0
        self.add(keys)

    def reserve(self, more: int) -> None:
        """Room for ``more`` new keys without passing ``MAX_LOAD``."""
        if self.size + more > MAX_LOAD * len(self.table):
            old = self.table[self.table != EMPTY]
            self.table = np.full(_size_for(self.size + more), EMPTY, dtype=np.int64)
            _insert_all(self.table, old)

    def add(self, keys: np.ndarray) -> None:
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        self.reserve(len(keys))
        self.size += int(_insert_all(self.table, keys))

    def __contains__(self, key: int) -> bool:
        return bool(self.contains(np.array([key], np.int64))[0])

    def contains(self, keys: np.ndarray) -> np.ndarray:
        out = np.empty(len(keys), dtype=bool)
        _contains(self.table, np.ascontiguousarray(keys, dtype=np.int64), out)
        return out

    def __len__(self) -> int:
        return self.size

    def accept(self, ca: np.ndarray, cb: np.ndarray, n_items: int, known: PairSet, slots: np.ndarray,
               lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """One round of draws for ``slots`` (see ``_accept``): the new pairs' ends are written to ``lo`` and
        ``hi`` at their slots, all the draws' keys join this set; returns the slots still to fill."""
        self.reserve(len(ca))
        left = np.empty(len(ca), dtype=np.int64)
        added, n_left = _accept(np.ascontiguousarray(ca, dtype=np.int64), np.ascontiguousarray(cb, dtype=np.int64),
                                np.int64(n_items), known.indptr, known.cols, self.table,
                                np.ascontiguousarray(slots, np.int64), lo, hi, left)
        self.size += int(added)
        return left[:n_left]
