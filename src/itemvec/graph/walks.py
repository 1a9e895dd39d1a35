"""Random walks on a `CSRGraph`: DeepWalk (Perozzi et al. 2014) and node2vec (Grover & Leskovec 2016).

First-order steps (DeepWalk, and the first step of every node2vec walk) draw the next node from the
current node's neighbours ∝ edge weight, in O(1) through a per-node alias table (Walker/Vose) built in one
pass over the CSR arrays, or uniformly when ``weighted=False``.

Second-order steps (node2vec, from the previous node t at the current node v) need
P(x | t, v) ∝ alpha(t, x) · w(v, x), with alpha = 1/p if x == t, 1 if x is a neighbour of t, 1/q otherwise.
The reference implementation precomputes an alias table per (t, v) edge, Σ_v deg(v)² entries, which ran out
of 64 GB on 4M edges. Here nothing second-order is stored (memory stays linear in edges); each step uses
rejection sampling, as KnightKing (Yang et al. 2019) does:

- propose x from the first-order distribution of v (the alias table), and accept it with probability
  alpha(t, x) / B, where B = max(1, 1/q) bounds alpha over every x other than t; "is x a neighbour of t"
  is a binary search in t's sorted row, and is skipped when the uniform draw already lies below the
  smallest alpha (every x would be accepted);
- when 1/p > B (p small: walks that like to return), the return move alone would force a large bound and
  many rejections, so its excess mass (1/p - B) · w(v, t) is an "outlier" drawn directly (KnightKing's
  trick): each trial first picks the outlier with probability excess / (envelope mass), else proposes
  as above with min(alpha, B); a rejection restarts the whole trial.

Together they draw x with probability exactly ∝ alpha(t, x) · w(v, x) (checked against the definition,
`walk_transition_probabilities`, in the tests).

Determinism: walk ``i`` (its row in the output) draws only from its own splitmix64 stream, seeded by
(seed, i), so the walks do not depend on the number of threads or on how the rows are chunked.

Memory: the (n_walks, walk_length) int32 output, the alias records (12 bytes per stored edge, weighted
walks only) and the row sums (8 bytes per node); nothing per walk step.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from itemvec.errors import ConfigError
from itemvec.graph.csr import CSRGraph
from itemvec.lookup import find_sorted
from itemvec.parallel import thread_limit
from itemvec.progress import progress_bar
from itemvec.rng import splitmix_next, to_uniform

LANES = 16  # walks each thread advances in lockstep (see _walk_kernel)
ALIAS_BLOCKS = 64  # fixed split of the nodes for building alias tables in parallel (deterministic either way)
PROGRESS_CHUNK = 1 << 16  # rows per kernel call when a progress bar is shown


# ---------------------------------------------------------------- random numbers


@njit(inline="always")
def _stream(seed, walk):
    """The starting state of walk ``walk``'s stream: both numbers pass through the splitmix64 mixer, so
    neighbouring seeds and neighbouring walks start far apart (no walk's stream is another's shifted)."""
    _, s = splitmix_next(np.uint64(seed))
    _, w = splitmix_next(np.uint64(walk) ^ np.uint64(0xD1B54A32D192ED03))
    return s ^ w


# ---------------------------------------------------------------- first-order tables


@njit(parallel=True, cache=True)
def _build_alias(indptr, indices, weights, records, keep, row_sum):
    """Fill per-edge alias records and the row sums.

    Record e (a row of the (n_stored, 3) table) = (neighbour, alias neighbour, keep probability): a draw
    from row v picks a column j uniformly and returns record start+j's neighbour with its keep
    probability, else its alias neighbour. ``records`` (int32) and ``keep`` (float32) are two views of
    the same memory, so a step reads one 12-byte record (one cache miss) instead of three arrays.
    A row whose weights sum to 0 gets the uniform table. Work space is O(max degree) per block.
    """
    n = len(indptr) - 1
    max_degree = 0
    for v in range(n):
        max_degree = max(max_degree, indptr[v + 1] - indptr[v])
    block = (n + ALIAS_BLOCKS - 1) // ALIAS_BLOCKS
    for blk in prange(ALIAS_BLOCKS):
        scaled = np.empty(max_degree, dtype=np.float64)
        small = np.empty(max_degree, dtype=np.int64)
        large = np.empty(max_degree, dtype=np.int64)
        for v in range(blk * block, min(n, (blk + 1) * block)):
            start = indptr[v]
            degree = indptr[v + 1] - start
            total = 0.0
            for j in range(degree):
                total += weights[start + j]
            row_sum[v] = total
            if degree == 0:
                continue
            n_small = 0
            n_large = 0
            for j in range(degree):
                scaled[j] = weights[start + j] * degree / total if total > 0 else 1.0
                records[start + j, 0] = indices[start + j]
                records[start + j, 1] = indices[start + j]
                keep[start + j, 2] = 1.0
                if scaled[j] < 1.0:
                    small[n_small] = j
                    n_small += 1
                else:
                    large[n_large] = j
                    n_large += 1
            while n_small > 0 and n_large > 0:
                n_small -= 1
                s = small[n_small]
                g = large[n_large - 1]
                keep[start + s, 2] = scaled[s]
                records[start + s, 1] = indices[start + g]
                scaled[g] = scaled[g] + scaled[s] - 1.0
                if scaled[g] < 1.0:
                    n_large -= 1
                    small[n_small] = g
                    n_small += 1
            # What is left in either list has scaled ≈ 1 (rounding): it keeps probability 1.


# ---------------------------------------------------------------- one step


@njit(inline="always")
def _first_order(indptr, indices, records, keep, weighted, v, state):
    """A neighbour of ``v`` (which must have one) ∝ weight, or uniformly. Returns (state, node)."""
    start = indptr[v]
    degree = indptr[v + 1] - start
    state, z = splitmix_next(state)
    # One draw gives both the column and the alias coin: the fractional part of u·degree is itself
    # uniform (with 53 - log2(degree) bits, more than the float32 probability has).
    x = to_uniform(z) * degree
    j = min(np.int64(x), degree - 1)
    if not weighted:
        return state, np.int64(indices[start + j])
    e = start + j
    if x - j < keep[e, 2]:
        return state, np.int64(records[e, 0])
    return state, np.int64(records[e, 1])


@njit(inline="always")
def _second_order(indptr, indices, weights, records, keep, row_sum, weighted, t, v, inv_p, inv_q, state):
    """node2vec's next node from ``v`` having come from ``t`` (module docstring). Returns (state, node)."""
    bound = max(1.0, inv_q)
    excess = 0.0
    if inv_p > bound:
        # The return move's mass above the bound, (1/p - bound)·w(v, t), is drawn directly. With
        # π_t = w(v, t) / Σw, its share of the envelope mass bound·Σw + (1/p - bound)·w(v, t) is
        # excess / (bound + excess), excess = (1/p - bound)·π_t. It is part of every trial: a rejected
        # proposal starts the whole draw again, the outlier coin included.
        start = indptr[v]
        stop = indptr[v + 1]
        pos = find_sorted(indices, start, stop, t)
        if pos >= 0:
            if weighted and row_sum[v] > 0:
                share = weights[pos] / row_sum[v]
            else:
                share = 1.0 / (stop - start)
            excess = (inv_p - bound) * share
    alpha_return = min(inv_p, bound)
    lowest = min(alpha_return, min(1.0, inv_q))
    t_start = indptr[t]
    t_stop = indptr[t + 1]
    while True:
        if excess > 0.0:
            state, z = splitmix_next(state)
            if to_uniform(z) * (bound + excess) < excess:
                return state, t
        state, x = _first_order(indptr, indices, records, keep, weighted, v, state)
        state, z = splitmix_next(state)
        u = to_uniform(z) * bound
        if u < lowest:
            return state, x  # accepted whatever alpha(t, x) is: no membership test needed
        if x == t:
            alpha = alpha_return
        elif find_sorted(indices, t_start, t_stop, x) >= 0:
            alpha = 1.0
        else:
            alpha = inv_q
        if u < alpha:
            return state, x


# ---------------------------------------------------------------- kernels


@njit(parallel=True, cache=True)
def _walk_kernel(indptr, indices, weights, records, keep, row_sum, out, first_row, seed, inv_p, inv_q,
                 second_order, weighted):
    """Fill rows of ``out`` whose column 0 holds the start nodes; row i is walk ``first_row + i``.

    Each thread advances LANES walks in lockstep, one step of each in turn: a step is a chain of dependent
    cache misses (the row offsets, then the row's record), and interleaving independent walks lets the
    processor overlap their misses instead of waiting on one walk at a time. Walks are still independent
    streams, so the result is the same for any LANES and thread count.
    """
    n_walks, length = out.shape
    n_groups = (n_walks + LANES - 1) // LANES
    for group in prange(n_groups):
        lo = group * LANES
        hi = min(n_walks, lo + LANES)
        states = np.empty(LANES, dtype=np.uint64)
        for i in range(lo, hi):
            states[i - lo] = _stream(seed, first_row + i)
        for k in range(1, length):
            for i in range(lo, hi):
                v = np.int64(out[i, k - 1])
                if v < 0 or indptr[v + 1] == indptr[v]:
                    out[i, k] = -1  # a node without neighbours ends the walk; -1 pads the rest
                    continue
                if second_order and k >= 2:
                    state, x = _second_order(indptr, indices, weights, records, keep, row_sum, weighted,
                                             np.int64(out[i, k - 2]), v, inv_p, inv_q, states[i - lo])
                else:
                    state, x = _first_order(indptr, indices, records, keep, weighted, v, states[i - lo])
                states[i - lo] = state
                out[i, k] = x


@njit(cache=True)
def _next_steps_kernel(indptr, indices, weights, records, keep, row_sum, previous, current, n, seed,
                       inv_p, inv_q, second_order, weighted):
    out = np.empty(n, dtype=np.int32)
    state = _stream(seed, 0)
    for i in range(n):
        if second_order and previous >= 0:
            state, x = _second_order(indptr, indices, weights, records, keep, row_sum, weighted, previous,
                                     current, inv_p, inv_q, state)
        else:
            state, x = _first_order(indptr, indices, records, keep, weighted, current, state)
        out[i] = x
    return out


# ---------------------------------------------------------------- public functions


def _tables(graph: CSRGraph, weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(records, keep, row_sum): the alias records (12 bytes per stored edge, two views of one
    buffer; empty when unweighted, as uniform draws need none) and the float64 row sums."""
    records = np.empty((graph.n_edges if weighted else 0, 3), dtype=np.int32)
    keep = records.view(np.float32)
    row_sum = np.zeros(graph.n_nodes, dtype=np.float64)
    if weighted:
        _build_alias(graph.indptr, graph.indices, graph.weights, records, keep, row_sum)
    return records, keep, row_sum


def _check(graph: CSRGraph, p: float, q: float) -> None:
    if not (p > 0 and q > 0 and np.isfinite(p) and np.isfinite(q)):
        raise ConfigError(f"node2vec p and q must be positive numbers, got p={p}, q={q}")
    if graph.indptr.dtype != np.int64 or graph.indices.dtype != np.int32 or graph.weights.dtype != np.float32:
        raise ConfigError("CSRGraph arrays must be indptr int64, indices int32, weights float32 "
                          "(build it with CSRGraph.from_pairs)")


def random_walks(graph: CSRGraph, *, walks_per_node: int = 10, walk_length: int = 40, p: float = 1.0,
                 q: float = 1.0, weighted: bool = True, seed: int = 0, threads: int = 0,
                 start_nodes: np.ndarray | None = None, progress: bool = False,
                 rows: tuple[int, int] | None = None) -> np.ndarray:
    """Random walks on ``graph``: DeepWalk when p == q == 1, node2vec otherwise.

    Returns an (n_walks, walk_length) int32 matrix, one walk per row, starting with its start node; a walk
    that reaches a node without neighbours is padded with -1. n_walks = walks_per_node × number of start
    nodes (default: every node with at least one neighbour), ordered round by round (every start node's
    first walk, then every start node's second walk, ...) with the nodes of each round in a seeded random
    order. ``weighted``: steps ∝ edge weight (else uniform over neighbours, node2vec's alpha still applies).
    ``threads``: numba threads (0: all). The same seed gives the same walks whatever ``threads`` is, and
    with or without ``progress`` (a tqdm bar; the rows are then generated in chunks). ``rows``: only the walks
    ``[lo, hi)`` of that matrix, the same rows as in the whole one (a distributed rank's share).

    Memory: the output (4 · n_walks · walk_length bytes), 12 bytes per stored edge (weighted) and 8 per node.
    """
    _check(graph, p, q)
    if walks_per_node < 0 or walk_length < 1:
        raise ConfigError(f"walks_per_node must be >= 0 and walk_length >= 1, "
                          f"got {walks_per_node} and {walk_length}")
    if start_nodes is None:
        start_nodes = np.flatnonzero(graph.degree > 0)
    else:
        start_nodes = np.asarray(start_nodes)
        if start_nodes.ndim != 1 or (len(start_nodes) and (start_nodes.min() < 0
                                                            or start_nodes.max() >= graph.n_nodes)):
            raise ConfigError(f"start_nodes must be a 1-d array of node ids in [0, {graph.n_nodes})")
    n_starts = len(start_nodes)
    n_walks = walks_per_node * n_starts
    lo, hi = (0, n_walks) if rows is None else (max(0, min(rows[0], n_walks)), max(0, min(rows[1], n_walks)))
    hi = max(lo, hi)
    walks = np.empty((hi - lo, walk_length), dtype=np.int32)
    # The start nodes live in column 0 of the output itself: no separate (n_walks,) array.
    rng = np.random.default_rng(seed)
    for r in range(walks_per_node):
        order = rng.permutation(n_starts)  # drawn for every round, kept where the round meets [lo, hi)
        begin, end = max(r * n_starts, lo), min((r + 1) * n_starts, hi)
        if begin < end:
            walks[begin - lo:end - lo, 0] = start_nodes[order[begin - r * n_starts:end - r * n_starts]]
    if len(walks) == 0 or walk_length == 1:
        return walks

    records, keep, row_sum = _tables(graph, weighted)
    second_order = not (p == 1.0 and q == 1.0)
    with thread_limit(threads):
        chunk = PROGRESS_CHUNK if progress else len(walks)
        bar = progress_bar(total=len(walks), unit="walk", desc="walks") if progress else None
        for begin in range(0, len(walks), chunk):
            part = walks[begin:begin + chunk]
            _walk_kernel(graph.indptr, graph.indices, graph.weights, records, keep, row_sum, part, lo + begin,
                         np.uint64(seed % 2**64), 1.0 / p, 1.0 / q, second_order, weighted)
            if bar is not None:
                bar.update(len(part))
        if bar is not None:
            bar.close()
    return walks


def sample_next_steps(graph: CSRGraph, previous: int, current: int, n: int, *, p: float = 1.0, q: float = 1.0,
                      weighted: bool = True, seed: int = 0) -> np.ndarray:
    """(n,) int32 independent draws of the node after ``current`` having come from ``previous`` (-1: none,
    a first-order step), through the same step code as `random_walks`. For tests and diagnostics."""
    _check(graph, p, q)
    if graph.degree[current] == 0:
        raise ConfigError(f"node {current} has no neighbours: there is no next step")
    records, keep, row_sum = _tables(graph, weighted)
    return _next_steps_kernel(graph.indptr, graph.indices, graph.weights, records, keep, row_sum,
                              int(previous),
                              int(current), int(n), np.uint64(seed % 2**64), 1.0 / p, 1.0 / q,
                              not (p == 1.0 and q == 1.0), weighted)


def walk_transition_probabilities(graph: CSRGraph, previous: int, current: int, p: float, q: float,
                                  weighted: bool = True) -> dict[int, float]:
    """node2vec's exact P(next = x | previous, current) for every neighbour x of ``current``, by the
    definition (Grover & Leskovec 2016, eq. 2-3): a slow reference for tests. ``previous`` -1: first order.
    """
    nodes, w = graph.neighbours(current)
    w = np.asarray(w, dtype=np.float64) if weighted and w.sum() > 0 else np.ones(len(nodes))
    if previous >= 0:
        previous_neighbours = set(graph.neighbours(previous)[0].tolist())
        alpha = np.array([1.0 / p if x == previous else 1.0 if x in previous_neighbours else 1.0 / q
                          for x in nodes.tolist()])
        w = w * alpha
    return {int(x): float(v) for x, v in zip(nodes, w / w.sum(), strict=True)}
