"""Baselines every comparison carries: popularity (the degree product) and Adamic–Adar on the train graph.

On real Amazon pairs the degree product alone scores AUC about 0.88 against uniform negatives, so every
learned model's figure must stand beside these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from itemvec.config import BatchSize, Seed
from itemvec.models.base import ItemModel, TrainingData
from itemvec.train import Trainer


class Popularity(ItemModel):
    """score(a, b) = log(deg a) + log(deg b), the log of the degree product (preferential attachment)."""

    name = "popularity"

    @dataclass(frozen=True)
    class Config:
        seed: Seed = 0

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        self.degree_ = data.degree().astype(np.float64)
        self.known_items_ = self.degree_ > 0

    def _log_degree(self, ids: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(self.degree_[ids], 1.0))

    def _score_pairs(self, a, b):
        return self._log_degree(a) + self._log_degree(b)

    def _score_all(self, queries):
        return self._log_degree(queries)[:, None] + self._log_degree(np.arange(self.n_items))[None, :]

    def _state(self):
        return {"degree_": self.degree_}

    def _set_state(self, state):
        self.degree_ = state["degree_"]


class AdamicAdar(ItemModel):
    """score(a, b) = Σ over common neighbours z of 1 / log(deg z) (Adamic & Adar 2003), on the unweighted
    train graph. Pairs without a common neighbour score 0."""

    name = "adamic-adar"

    @dataclass(frozen=True)
    class Config:
        seed: Seed = 0
        chunk: BatchSize = 65536  # pairs scored per sparse product

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        n = data.n_items
        a, b = data.train.item_a, data.train.item_b
        ones = np.ones(2 * len(a), dtype=np.float32)
        adjacency = sp.csr_matrix((ones, (np.r_[a, b], np.r_[b, a])), shape=(n, n), dtype=np.float32)
        adjacency.data[:] = 1.0  # duplicates collapse to one edge
        self.adjacency_ = adjacency
        degree = np.diff(adjacency.indptr)
        # A neighbour of degree 1 cannot be shared by two items; 1/log(1) is undefined, so it weighs 0.
        self.inverse_log_degree_ = np.where(degree > 1, 1.0 / np.log(np.maximum(degree, 2)), 0.0).astype(np.float32)
        self.known_items_ = degree > 0

    def _score_pairs(self, a, b):
        out = np.empty(len(a), dtype=np.float64)
        weighted = self.adjacency_ @ sp.diags(self.inverse_log_degree_)
        step = self.config.chunk
        for start in range(0, len(a), step):
            rows_a = weighted[a[start:start + step]]
            rows_b = self.adjacency_[b[start:start + step]]
            out[start:start + step] = np.asarray(rows_a.multiply(rows_b).sum(axis=1)).ravel()
        return out

    def _score_all(self, queries):
        weighted = self.adjacency_[queries] @ sp.diags(self.inverse_log_degree_)
        return (weighted @ self.adjacency_.T).toarray()

    def _state(self):
        m = self.adjacency_
        return {"indptr": m.indptr, "indices": m.indices, "inverse_log_degree_": self.inverse_log_degree_}

    def _set_state(self, state):
        n = len(state["indptr"]) - 1
        data = np.ones(len(state["indices"]), dtype=np.float32)
        self.adjacency_ = sp.csr_matrix((data, state["indices"], state["indptr"]), shape=(n, n))
        self.inverse_log_degree_ = state["inverse_log_degree_"]
