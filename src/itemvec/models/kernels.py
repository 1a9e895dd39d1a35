"""Numba pieces shared by the training kernels: a per-block random generator, the sigmoid, alias tables, and
the split of a step's fixed blocks into lanes (one per thread)."""

from __future__ import annotations

import numba
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


@njit(inline="always")
def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + np.exp(-x))
    e = np.exp(x)
    return e / (1.0 + e)


CLOCK_EVERY = 64  # examples (or sequences) between two looks at the other lanes' progress


def lanes(n_blocks: int) -> int:
    """How many lanes a kernel runs its ``n_blocks`` fixed blocks in: one per numba thread, at most one per
    block; lane ``l`` runs blocks l, l + lanes, ... in turn.

    The learning rate of an example follows the step's progress counted over every lane: the examples this
    lane has done plus those the others had done when it last looked at their clocks (``lanes_done``, every
    ``CLOCK_EVERY`` examples). On one thread that is the example's position in the step, as before; on
    several, the rate falls from the step's start to its end value over the step's time as on one thread,
    whichever lane runs when. (A rate by position in the whole step let two threads run the step's two
    halves side by side and end it at its middle rate: the expected result depended on the thread count, and
    on which thread ran first, wherever a step spans much of the schedule, as a whole epoch in one step on a
    small catalogue.)"""
    return max(1, min(numba.get_num_threads(), n_blocks))


@njit(inline="always")
def lanes_done(clock, lane, done):
    """Publish lane ``lane``'s count of examples done and return the other lanes' (``clock``: one row of 8
    int64, a cache line, per lane; a racy read, at most ``CLOCK_EVERY`` examples behind)."""
    clock[lane, 0] = done
    others = 0
    for other in range(clock.shape[0]):
        if other != lane:
            others += clock[other, 0]
    return others


@njit(inline="always")
def lane_rate(clock, lane, done, others, lr0, lr1, n):
    """The rate of lane ``lane``'s next example, its ``done``-th, in a step of ``n`` going from ``lr0`` to
    ``lr1``, by the step's progress over all lanes; refreshes ``others`` (the other lanes' count) every
    ``CLOCK_EVERY`` examples. Returns (rate, others)."""
    if done % CLOCK_EVERY == 0:
        others = lanes_done(clock, lane, done)
    return lr0 + (lr1 - lr0) * ((done + others) / n), others
