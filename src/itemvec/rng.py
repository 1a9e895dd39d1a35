"""Random draws inside numba kernels, shared by the walks (graph/) and the training kernels (models/): splitmix64,
a generator whose whole state is one uint64 (one per block of work, so one thread gives the same draws every
time), and Walker/Vose alias tables for O(1) draws from a discrete distribution. The lowest layer: it imports
nothing of itemvec."""

from __future__ import annotations

import numpy as np
from numba import njit


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for drawing index i with probability weights[i] / sum(weights)."""
    n = len(weights)
    p = np.asarray(weights, dtype=np.float64)
    p = p * (n / p.sum())
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n, dtype=np.int32)
    small = list(np.flatnonzero(p < 1.0))
    large = list(np.flatnonzero(p >= 1.0))
    while small and large:
        s = small.pop()
        g = large[-1]
        prob[s] = p[s]
        alias[s] = g
        p[g] = p[g] + p[s] - 1.0
        if p[g] < 1.0:
            large.pop()
            small.append(g)
    return prob, alias


@njit(inline="always")
def splitmix_next(state):
    """splitmix64: a tiny, good-enough generator whose whole state is one uint64 (per block)."""
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(inline="always")
def to_uniform(z):
    return (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def alias_draw(state, prob, alias):
    """One draw from an alias table (``alias_table``): a uniform slot, kept with its probability, else its alias.
    Returns the advanced generator state and the drawn index."""
    state, z = splitmix_next(state)
    slot = np.int64((z >> np.uint64(11)) % np.uint64(len(prob)))
    state, z = splitmix_next(state)
    if to_uniform(z) < prob[slot]:
        return state, slot
    return state, np.int64(alias[slot])
