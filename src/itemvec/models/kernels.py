"""Numba pieces shared by the training kernels: the sigmoid and the split of a step's fixed blocks into lanes
(one per thread). The random generator and alias tables are in itemvec.rng, below graph/ and models/."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit


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


@njit(inline="always")
def step_row(table, acc, row, grad, lr, adagrad):
    """Per-coordinate Adagrad (``adagrad``: the squared gradient's weight in ``acc``) or SGD (0) on
    ``table[row]`` with the gradient ``grad``, in float32 (the row-at-once kernels: ``fm``, ``triplet``)."""
    if adagrad:
        for d in range(len(grad)):
            a = acc[row, d] + adagrad * grad[d] * grad[d]
            acc[row, d] = a
            table[row, d] -= lr * grad[d] / np.sqrt(a + np.float32(1e-8))
    else:
        for d in range(len(grad)):
            table[row, d] -= lr * grad[d]
