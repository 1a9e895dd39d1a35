"""The two numba passes of a distributed sync (``distributed.Group.sync``), in a module of their own so that
numba is loaded only by a process that syncs."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def difference(table, snap, delta, mask):
    """delta = table − snap (2-d views of one shape) and mask[i] = 1 where row i changed, in one pass."""
    for i in prange(table.shape[0]):
        changed = 0
        for j in range(table.shape[1]):
            d = table[i, j] - snap[i, j]
            delta[i, j] = d
            if d != 0:
                changed = 1
        mask[i] = changed


@njit(parallel=True, cache=True)
def apply(table, snap, delta, rows, scale):
    """table = snap = snap + scale × delta on ``rows`` (delta's row k is table row rows[k]; all rows when
    ``rows`` is empty)."""
    every = len(rows) == 0
    n = table.shape[0] if every else len(rows)
    for k in prange(n):
        i = np.int64(k) if every else np.int64(rows[k])
        for j in range(table.shape[1]):
            v = snap[i, j] + scale * delta[k, j]
            table[i, j] = v
            snap[i, j] = v
