"""String ids → dense int32 ids in order of first appearance, for many millions of ids: a numba hash table
over the ids' UTF-8 bytes.

The Amazon metadata of a Books-size catalogue names about 25 million partner ids (800,000 lines of about 30
each). Mapping each through a Python dict (``IdMap``) was half of ``read_amazon``'s time: a bytecode loop, a
string hash and a cache miss per id. Here a batch of ids becomes one Arrow string array (its UTF-8 bytes and
offsets, made in C from the Python strings) and one kernel call hashes (FNV-1a), finds or adds each id. A table
slot holds an id's hash, its first 16 bytes and its length, so a short id (an asin) is decided with one cache
line; the distinct ids' bytes are also kept in one growing buffer (longer ids are compared there, and ``keys``
reads it). A kernel hashes its batch first and prefetches the slots of the lookups ahead of the one it probes
(itemvec.lookup). The table holds no Python objects. The ids and their order are exactly ``IdMap``'s
(``tests/test_prepare.py`` checks it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from itemvec.data.keyset import MAX_LOAD
from itemvec.lookup import AHEAD, prefetch

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


SHORT = 16  # ids of up to this many bytes are compared in the table's slot itself (Amazon's asins: 10)


@njit(cache=True, inline="always")
def _hash(data, start, end):
    h = FNV_OFFSET
    for k in range(start, end):
        h = (h ^ np.uint64(data[k])) * FNV_PRIME
    return h ^ (h >> np.uint64(29))


@njit(cache=True, inline="always")
def _words(data, start, end):
    """The first 16 bytes of a string as two little-endian words (zero padded)."""
    lo = np.uint64(0)
    hi = np.uint64(0)
    for k in range(min(end - start, 8)):
        lo |= np.uint64(data[start + k]) << np.uint64(8 * k)
    for k in range(8, min(end - start, 16)):
        hi |= np.uint64(data[start + k]) << np.uint64(8 * (k - 8))
    return lo, hi


@njit(cache=True, inline="always")
def _probe(data, start, end, h, table, store, store_offsets):
    """The slot holding the string whose hash is ``h``, or the free slot where it belongs (``table[slot, 3] ==
    -1``), and its first 16 bytes. A slot is (hash, first 8 bytes, next 8 bytes, length << 32 | id): one cache
    line decides a short id."""
    mask = np.uint64(len(table) - 1)
    lo, hi = _words(data, start, end)
    length = end - start
    slot = np.int64(h & mask)
    while True:
        tag = table[slot, 3]
        if tag == -1:
            return slot, lo, hi
        if (np.uint64(table[slot, 0]) == h and np.uint64(table[slot, 1]) == lo and np.uint64(table[slot, 2]) == hi
                and (tag >> 32) == length):
            if length <= SHORT:
                return slot, lo, hi
            k = tag & 0xFFFFFFFF
            base = store_offsets[k]
            same = True
            for b in range(length):
                if store[base + b] != data[start + b]:
                    same = False
                    break
            if same:
                return slot, lo, hi
        slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)


@njit(cache=True, inline="always")
def _hashes(data, offsets, table):
    """Every string's hash, and a prefetch of the first ``AHEAD`` strings' slots (itemvec.lookup): a
    probe then finds its slot on its way to the cache, requested ``AHEAD`` strings earlier."""
    count = len(offsets) - 1
    hashes = np.empty(count, dtype=np.uint64)
    for j in range(count):
        hashes[j] = _hash(data, offsets[j], offsets[j + 1])
    mask = np.uint64(len(table) - 1)
    flat = table.reshape(-1)
    for j in range(min(AHEAD, count)):
        prefetch(flat, np.int64(hashes[j] & mask) * 4)
    return hashes, flat, mask


@njit(cache=True)
def _intern(data, offsets, table, store, store_offsets, n_known, out):
    """Dense ids of the strings ``data[offsets[j]:offsets[j + 1]]`` into ``out``; a new string gets the next id
    (its slot filled, its bytes and end offset stored). The caller has made room for every string to be new.
    Returns the number of distinct strings after the batch."""
    hashes, flat, mask = _hashes(data, offsets, table)
    count = len(hashes)
    n = n_known
    for j in range(count):
        if j + AHEAD < count:
            prefetch(flat, np.int64(hashes[j + AHEAD] & mask) * 4)
        start, end = offsets[j], offsets[j + 1]
        h = hashes[j]
        slot, lo, hi = _probe(data, start, end, h, table, store, store_offsets)
        tag = table[slot, 3]
        if tag == -1:
            table[slot, 0] = np.int64(h)
            table[slot, 1] = np.int64(lo)
            table[slot, 2] = np.int64(hi)
            table[slot, 3] = ((end - start) << 32) | n
            base = store_offsets[n]
            for b in range(end - start):
                store[base + b] = data[start + b]
            store_offsets[n + 1] = base + end - start
            out[j] = n
            n += 1
        else:
            out[j] = tag & 0xFFFFFFFF
    return n


@njit(cache=True)
def _find(data, offsets, table, store, store_offsets, out):
    """Dense ids of the strings (as ``_intern``), -1 for a string not in the table; adds nothing."""
    hashes, flat, mask = _hashes(data, offsets, table)
    count = len(hashes)
    for j in range(count):
        if j + AHEAD < count:
            prefetch(flat, np.int64(hashes[j + AHEAD] & mask) * 4)
        slot, _, _ = _probe(data, offsets[j], offsets[j + 1], hashes[j], table, store, store_offsets)
        tag = table[slot, 3]
        out[j] = -1 if tag == -1 else tag & 0xFFFFFFFF


@njit(cache=True)
def _rehash(old, table):
    mask = np.uint64(len(table) - 1)
    for s in range(len(old)):
        if old[s, 3] == -1:
            continue
        slot = np.int64(np.uint64(old[s, 0]) & mask)
        while table[slot, 3] != -1:
            slot = np.int64((np.uint64(slot) + np.uint64(1)) & mask)
        table[slot] = old[s]


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    if len(array) >= size:
        return array
    bigger = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
    bigger[:len(array)] = array
    return bigger


class Interner:
    """Original string ids ↔ dense int32 ids, in order of first appearance (``IdMap``'s contract, in bulk)."""

    def __init__(self) -> None:
        self.n = 0
        self.table = np.full((1 << 10, 4), -1, dtype=np.int64)
        self.store = np.zeros(1 << 12, dtype=np.uint8)
        self.store_offsets = np.zeros((1 << 9) + 1, dtype=np.int64)

    def __len__(self) -> int:
        return self.n

    @staticmethod
    def _bytes(keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The UTF-8 bytes of ``keys`` back to back, and the offsets of each key's start and end."""
        array = pa.array(keys, pa.large_string())
        if array.null_count:
            raise ValueError("an id is None")
        _, offsets_buffer, data_buffer = array.buffers()
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[:len(array) + 1]
        data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
        return data, offsets

    def lookup(self, keys: list[str]) -> np.ndarray:
        """Dense ids of ``keys``; -1 for a key not in the map (``IdMap.lookup``)."""
        data, offsets = self._bytes(keys)
        out = np.empty(len(keys), dtype=np.int64)
        _find(data, offsets, self.table, self.store, self.store_offsets, out)
        return out

    def __contains__(self, key: str) -> bool:
        return bool(self.lookup([key])[0] >= 0)

    def id_of(self, key: str) -> int:
        """The dense id of ``key``; KeyError when it is not in the map."""
        found = int(self.lookup([key])[0])
        if found < 0:
            raise KeyError(key)
        return found

    def add_many(self, keys: list[str]) -> np.ndarray:
        """The dense ids (int32) of ``keys``, new keys numbered in their order. Keys must be valid Unicode."""
        return self.add_bytes(*self._bytes(keys))

    def add_bytes(self, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """``add_many`` of the strings ``data[offsets[j]:offsets[j + 1]]`` (UTF-8 bytes, int64 offsets)."""
        count = len(offsets) - 1
        new = self.n + count
        if new > MAX_LOAD * len(self.table):
            size = len(self.table)
            while new > MAX_LOAD * size:
                size *= 2
            old, self.table = self.table, np.full((size, 4), -1, dtype=np.int64)
            _rehash(old, self.table)
        self.store_offsets = _grown(self.store_offsets, new + 1)
        self.store = _grown(self.store, int(self.store_offsets[self.n]) + int(offsets[-1] - offsets[0]))
        out = np.empty(count, dtype=np.int32)
        self.n = int(_intern(data, offsets, self.table, self.store, self.store_offsets, np.int64(self.n), out))
        return out

    def key_array(self) -> pa.LargeStringArray:
        """The distinct ids in order of first appearance, as an Arrow array over the table's own bytes."""
        offsets = self.store_offsets[:self.n + 1]
        return pa.LargeStringArray.from_buffers(self.n, pa.py_buffer(offsets), pa.py_buffer(self.store))

    def keys(self) -> list[str]:
        """The distinct ids in order of first appearance (``IdMap.keys``)."""
        return self.key_array().to_pylist()
