"""Negative pairs for evaluation: uniform over products, or degree-matched. Pure functions of arrays and a
``numpy.random.Generator``.

Every negative is a pair that is not a self pair, not a known positive (in any split part) and not repeated
within the set or in ``exclude``. Proposals are drawn in vectorised batches and the collisions redrawn.
"""

from __future__ import annotations

import numpy as np

from itemvec.arrays import unique_sorted

MAX_ROUNDS = 200
DEGREE_ROUNDS = 50  # after this many rounds, degree-matched slots fall back to a uniform partner


def _known_set(known, n_items: int):
    """``known`` as a :class:`PairSet` (an array of pair keys is converted; a PairSet is used as it is)."""
    from itemvec.data.keyset import PairSet

    return known if isinstance(known, PairSet) else PairSet.from_keys(known, n_items)


def _fill(n: int, propose, known, n_items: int, exclude: np.ndarray | None):
    """Draw until ``n`` acceptable pairs; ``propose(idx, round)`` returns candidate (a, b) for slots ``idx``.

    A draw is accepted where it is not a self pair, not ``known``, not in ``exclude``, not accepted in
    an earlier round and not drawn earlier in this round. The keys seen so far (accepted, refused and excluded)
    are one hash set: a key seen before is either accepted already or refused for good."""
    from itemvec.data.keyset import KeySet

    known = _known_set(known, n_items)
    excluded = np.zeros(0, np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
    # Nearly every draw is accepted (a collision is rare among millions of items), so room for the n keys and
    # a sixteenth more; the set grows if a round needs more (the same answers either way).
    seen = KeySet(excluded, capacity=len(excluded) + n + n // 16)
    lo = np.empty(n, dtype=np.int32)  # each slot written once, by the round that fills it
    hi = np.empty(n, dtype=np.int32)
    todo = np.arange(n)
    for round_number in range(MAX_ROUNDS):
        if len(todo) == 0:
            break
        ca, cb = propose(todo, round_number)
        todo = seen.accept(ca, cb, n_items, known, todo, lo, hi)
    if len(todo):
        raise ValueError(
            f"could not draw {n} distinct negative pairs: the graph is too dense or too small "
            f"({len(todo)} slots left after {MAX_ROUNDS} rounds)")
    return lo, hi


def uniform_negatives(n: int, nodes: np.ndarray, known, n_items: int,
                      rng: np.random.Generator, exclude: np.ndarray | None = None):
    """``n`` pairs with both items drawn uniformly from ``nodes``. Returns ``(item_a, item_b)``, a < b."""
    nodes = np.asarray(nodes, dtype=np.int64)

    def propose(idx, _round):
        return nodes[rng.integers(0, len(nodes), len(idx))], nodes[rng.integers(0, len(nodes), len(idx))]

    return _fill(n, propose, known, n_items, exclude)


def degree_matched_negatives(pos_a: np.ndarray, pos_b: np.ndarray, endpoints: np.ndarray,
                             known, n_items: int, rng: np.random.Generator,
                             exclude: np.ndarray | None = None, nodes: np.ndarray | None = None):
    """One negative per positive pair: keep one of its items (chosen by a fair coin) and replace the other by
    an item drawn with probability proportional to its degree (a uniform draw from ``endpoints``, the list of
    both ends of every pair). Both sides of the negatives then follow the positives' degree distribution, so
    popularity alone cannot separate them. A slot that finds no acceptable partner in ``DEGREE_ROUNDS`` rounds
    (a kept item linked to nearly every popular item) takes a uniform partner from ``nodes`` (default: the
    distinct endpoints) instead."""
    keep = np.where(rng.random(len(pos_a)) < 0.5, pos_a, pos_b).astype(np.int64)
    endpoints = np.asarray(endpoints)  # as it comes (int32 at Books size: 38 M, no int64 copy); draws as int64
    fallback = unique_sorted(endpoints).astype(np.int64) if nodes is None else np.asarray(nodes, dtype=np.int64)

    def propose(idx, round_number):
        if round_number >= DEGREE_ROUNDS:
            return keep[idx], fallback[rng.integers(0, len(fallback), len(idx))]
        return keep[idx], endpoints[rng.integers(0, len(endpoints), len(idx))].astype(np.int64)

    return _fill(len(pos_a), propose, known, n_items, exclude)
