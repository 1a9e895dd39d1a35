"""An undirected weighted graph in compressed sparse row (CSR) form, as PecanPy and scipy store one.

Node ``v``'s neighbours are ``indices[indptr[v]:indptr[v + 1]]``, sorted ascending, with the matching
``weights``. Every undirected edge is stored twice (once in each endpoint's row), so a walker reads one row
per step and node2vec's "is x a neighbour of t?" is a binary search in t's row.

Memory: ``indptr`` 8 bytes per node, ``indices`` + ``weights`` 8 bytes per stored edge (16 per undirected
edge). Building from pairs sorts one int64 key per stored edge (plus its int64 order), freed on return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from itemvec.errors import ConfigError


@dataclass
class CSRGraph:
    """Adjacency in CSR form (see the module docstring).

    indptr:  (n_nodes + 1,) int64, row ``v`` spans ``indptr[v]:indptr[v + 1]``.
    indices: (n_stored,) int32, neighbour ids, ascending within each row.
    weights: (n_stored,) float32, edge weights (a pair's summed weight), non-negative.
    """

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray

    @property
    def n_nodes(self) -> int:
        return len(self.indptr) - 1

    @property
    def n_edges(self) -> int:
        """Stored (directed) edges: twice the undirected edges for a graph built by `from_pairs`."""
        return len(self.indices)

    @property
    def degree(self) -> np.ndarray:
        """(n_nodes,) int64 number of neighbours of each node."""
        return np.diff(self.indptr)

    @classmethod
    def from_pairs(cls, a, b, weight=None, n_nodes: int | None = None) -> CSRGraph:
        """The undirected graph of pairs ``(a[i], b[i])`` with weights ``weight[i]`` (default 1).

        Pairs are unordered: (a, b) and (b, a) are the same edge, and repeated pairs have their weights
        summed. Self loops are dropped (a walk step that stays put says nothing about neighbourhoods).
        ``n_nodes`` defaults to the largest id + 1; nodes without pairs get empty rows.
        """
        a = np.asarray(a)
        b = np.asarray(b)
        if a.shape != b.shape or a.ndim != 1:
            raise ConfigError(f"pairs: item_a and item_b must be 1-d arrays of one length, "
                              f"got shapes {a.shape} and {b.shape}")
        if weight is None:
            weight = np.ones(len(a), dtype=np.float64)
        weight = np.asarray(weight, dtype=np.float64)
        if weight.shape != a.shape:
            raise ConfigError(f"pairs: weight has shape {weight.shape}, expected {a.shape}")
        if len(a) and (min(a.min(), b.min()) < 0):
            raise ConfigError("pairs: node ids must be non-negative")
        if len(weight) and not np.all(weight >= 0):  # also rejects NaN
            raise ConfigError("pairs: weights must be non-negative numbers")
        largest = int(max(a.max(), b.max())) if len(a) else -1
        if n_nodes is None:
            n_nodes = largest + 1
        elif largest >= n_nodes:
            raise ConfigError(f"pairs: node id {largest} is out of range for n_nodes={n_nodes}")

        keep = a != b
        a, b, weight = a[keep].astype(np.int64), b[keep].astype(np.int64), weight[keep]
        # Both directions in one sort: sorting by (source, target) gives rows in order and each row's
        # neighbours ascending, and puts repeats of one edge next to each other for summing.
        key = np.concatenate([a * n_nodes + b, b * n_nodes + a])
        order = np.argsort(key)
        key = key[order]
        stored_weight = np.concatenate([weight, weight])[order]
        del order
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, np.int64)
        summed = np.add.reduceat(stored_weight, starts) if len(starts) else np.zeros(0, np.float64)
        del stored_weight
        key = key[starts]
        source = key // n_nodes
        indptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(source, minlength=n_nodes), out=indptr[1:])
        return cls(indptr=indptr, indices=(key % n_nodes).astype(np.int32), weights=summed.astype(np.float32))

    def neighbours(self, node: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices, weights) of ``node``'s row: views, neighbours ascending."""
        if not 0 <= node < self.n_nodes:
            raise IndexError(f"node {node} is out of range for a graph of {self.n_nodes} nodes")
        row = slice(self.indptr[node], self.indptr[node + 1])
        return self.indices[row], self.weights[row]
