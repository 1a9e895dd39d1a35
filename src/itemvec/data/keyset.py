"""A set of non-negative int64 keys as an open-addressing hash table (numba), for the negatives' draws.

Telling whether a drawn pair is a known positive was a ``searchsorted`` into the sorted keys of every pair:
at Books size (19 million pairs, 6 million draws in a round) about 25 cache misses per draw. A hash table costs
one or two. The table is a flat int64 array of a power-of-two size, kept at most 60% full; -1 marks a free slot.
numba is loaded only by a prepare (this module is imported where the negatives are drawn).
"""

from __future__ import annotations

import numpy as np
from numba import njit

EMPTY = np.int64(-1)


@njit(cache=True, inline="always")
def _slot(key, mask):
    x = np.uint64(key)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    return np.int64(x & np.uint64(mask))


@njit(cache=True, nogil=True)
def _insert_all(table, keys):
    """Insert ``keys``; returns how many were new."""
    mask = len(table) - 1
    added = 0
    for key in keys:
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
    for j in range(len(keys)):
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


@njit(cache=True, nogil=True)
def _accept(ca, cb, n_items, known, seen, ok):
    """One round of draws: ``ok[j]`` where the pair (ca[j], cb[j]) is not a self pair, not in ``known`` and
    its key is not in ``seen`` (keys accepted or refused before, and the excluded ones); every key is then
    added to ``seen``, so a key repeated within the round is accepted at most once (its first draw). Returns
    how many keys were new to ``seen``."""
    known_mask = len(known) - 1
    seen_mask = len(seen) - 1
    added = 0
    for j in range(len(ca)):
        a, b = ca[j], cb[j]
        lo, hi = (a, b) if a < b else (b, a)
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
        if not new or a == b:
            ok[j] = False
            continue
        s = _slot(key, known_mask)
        hit = False
        while True:
            held = known[s]
            if held == key:
                hit = True
                break
            if held == -1:
                break
            s = (s + 1) & known_mask
        ok[j] = not hit
    return added


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

    def accept(self, ca: np.ndarray, cb: np.ndarray, n_items: int, known: KeySet) -> np.ndarray:
        """The draws of one round that are new pairs (see ``_accept``); all their keys join this set."""
        self.reserve(len(ca))
        ok = np.empty(len(ca), dtype=bool)
        self.size += int(_accept(np.ascontiguousarray(ca, dtype=np.int64), np.ascontiguousarray(cb, dtype=np.int64),
                                 np.int64(n_items), known.table, self.table, ok))
        return ok
