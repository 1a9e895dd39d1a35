"""Negative pairs for evaluation: uniform over products, or degree-matched. Pure functions of arrays and a
``numpy.random.Generator``.

Every negative is a pair that is not a self pair, not a known positive (in any split part) and not repeated
within the set or in ``exclude``. Proposals are drawn in vectorised batches and the collisions redrawn.
"""

from __future__ import annotations

import numpy as np

from itemvec.arrays import unique_sorted
from itemvec.data.pairs import pair_keys

MAX_ROUNDS = 200
DEGREE_ROUNDS = 50  # after this many rounds, degree-matched slots fall back to a uniform partner


def _in_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.searchsorted(sorted_keys, keys)
    pos[pos == len(sorted_keys)] = 0
    return sorted_keys[pos] == keys


def _fill(n: int, propose, known_sorted: np.ndarray, n_items: int, exclude_sorted: np.ndarray | None):
    """Draw until ``n`` acceptable pairs; ``propose(idx, round)`` returns candidate (a, b) for slots ``idx``."""
    a = np.full(n, -1, dtype=np.int64)
    b = np.full(n, -1, dtype=np.int64)
    todo = np.arange(n)
    accepted = np.empty(0, dtype=np.int64)
    for round_number in range(MAX_ROUNDS):
        if len(todo) == 0:
            break
        ca, cb = propose(todo, round_number)
        keys = pair_keys(ca, cb, n_items)
        ok = (ca != cb) & ~_in_sorted(keys, known_sorted)
        if exclude_sorted is not None:
            ok &= ~_in_sorted(keys, exclude_sorted)
        ok &= ~_in_sorted(keys, accepted)
        # Within this batch, keep the first of repeated keys.
        _, first = np.unique(keys, return_index=True)
        unique_mask = np.zeros(len(keys), dtype=bool)
        unique_mask[first] = True
        ok &= unique_mask
        a[todo[ok]] = ca[ok]
        b[todo[ok]] = cb[ok]
        accepted = np.sort(np.concatenate([accepted, keys[ok]]))
        todo = todo[~ok]
    if len(todo):
        raise ValueError(
            f"could not draw {n} distinct negative pairs: the graph is too dense or too small "
            f"({len(todo)} slots left after {MAX_ROUNDS} rounds)")
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return lo.astype(np.int32), hi.astype(np.int32)


def uniform_negatives(n: int, nodes: np.ndarray, known_sorted: np.ndarray, n_items: int,
                      rng: np.random.Generator, exclude_sorted: np.ndarray | None = None):
    """``n`` pairs with both items drawn uniformly from ``nodes``. Returns ``(item_a, item_b)``, a < b."""
    nodes = np.asarray(nodes, dtype=np.int64)

    def propose(idx, _round):
        return nodes[rng.integers(0, len(nodes), len(idx))], nodes[rng.integers(0, len(nodes), len(idx))]

    return _fill(n, propose, known_sorted, n_items, exclude_sorted)


def degree_matched_negatives(pos_a: np.ndarray, pos_b: np.ndarray, endpoints: np.ndarray,
                             known_sorted: np.ndarray, n_items: int, rng: np.random.Generator,
                             exclude_sorted: np.ndarray | None = None, nodes: np.ndarray | None = None):
    """One negative per positive pair: keep one of its items (chosen by a fair coin) and replace the other by
    an item drawn with probability proportional to its degree (a uniform draw from ``endpoints``, the list of
    both ends of every pair). Both sides of the negatives then follow the positives' degree distribution, so
    popularity alone cannot separate them. A slot that finds no acceptable partner in ``DEGREE_ROUNDS`` rounds
    (a kept item linked to nearly every popular item) takes a uniform partner from ``nodes`` (default: the
    distinct endpoints) instead."""
    keep = np.where(rng.random(len(pos_a)) < 0.5, pos_a, pos_b).astype(np.int64)
    endpoints = np.asarray(endpoints, dtype=np.int64)
    fallback = unique_sorted(endpoints) if nodes is None else np.asarray(nodes, dtype=np.int64)

    def propose(idx, round_number):
        if round_number >= DEGREE_ROUNDS:
            return keep[idx], fallback[rng.integers(0, len(fallback), len(idx))]
        return keep[idx], endpoints[rng.integers(0, len(endpoints), len(idx))]

    return _fill(len(pos_a), propose, known_sorted, n_items, exclude_sorted)
