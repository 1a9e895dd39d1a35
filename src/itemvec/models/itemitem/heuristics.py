"""Baselines every comparison carries: popularity (the degree product), Adamic–Adar, item-based k-nearest
neighbours (ItemKNN) and RP3beta on the train graph.

On real Amazon pairs the degree product alone scores AUC about 0.88 against uniform negatives, so every
learned model's figure must stand beside these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
import scipy.sparse as sp

from itemvec.config import BatchSize, Range, Seed
from itemvec.models.base import ItemModel, TrainingData, sparse_from_state, sparse_state
from itemvec.train import Trainer
from itemvec.tune import IntRange, Space, Uniform


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
        adjacency = self.adjacency_ = _undirected(data)
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
        return {**sparse_state("", self.adjacency_, binary=True), "inverse_log_degree_": self.inverse_log_degree_}

    def _set_state(self, state):
        n = len(state["indptr"]) - 1
        self.adjacency_ = sparse_from_state(state, "", (n, n))
        self.inverse_log_degree_ = state["inverse_log_degree_"]


def _undirected(data: TrainingData) -> sp.csr_matrix:
    """The train graph's 0/1 adjacency, both directions, duplicates collapsed."""
    n = data.n_items
    a, b = data.train.item_a, data.train.item_b
    ones = np.ones(2 * len(a), dtype=np.float32)
    adjacency = sp.csr_matrix((ones, (np.r_[a, b], np.r_[b, a])), shape=(n, n), dtype=np.float32)
    adjacency.data[:] = 1.0
    return adjacency


def _keep_top(rows: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Each row's ``k`` largest entries (ties: the lower column), the others dropped."""
    rows = rows.tocsr()
    rows.sort_indices()
    keep = np.zeros(rows.nnz, dtype=bool)
    for r in range(rows.shape[0]):
        start, end = rows.indptr[r], rows.indptr[r + 1]
        if end - start <= k:
            keep[start:end] = True
        else:
            order = np.argsort(-rows.data[start:end], kind="stable")[:k]
            keep[start + order] = True
    rows.data[~keep] = 0.0
    rows.eliminate_zeros()
    return rows


class _Neighbourhood(ItemModel):
    """An item-item similarity S (sparse, a few entries per row) applied to the 0/1 train graph H, both (n, n)
    CSR: an item's partners play a user's history, score(a, b) = ½ ((H S)_ab + (H S)_ba), symmetric as the pairs
    are. Subclasses set both in ``_fit`` (through ``_set_matrices``)."""

    history_: sp.csr_matrix
    similarity_: sp.csr_matrix
    similarity_t_: sp.csr_matrix
    history_t_: sp.csr_matrix

    def _set_matrices(self, history: sp.csr_matrix, similarity: sp.csr_matrix) -> None:
        self.history_ = history.tocsr().astype(np.float32)
        self.history_t_ = self.history_.T.tocsr()
        self.similarity_ = similarity.tocsr().astype(np.float32)
        self.similarity_t_ = self.similarity_.T.tocsr()
        self.known_items_ = np.diff(self.history_.indptr) > 0

    def _score_pairs(self, a, b):
        # (H S)_ab = H_a · S[:, b], the row a of H against the row b of Sᵀ; both directions averaged.
        forward = np.asarray(self.history_[a].multiply(self.similarity_t_[b]).sum(axis=1)).ravel()
        backward = np.asarray(self.history_[b].multiply(self.similarity_t_[a]).sum(axis=1)).ravel()
        return 0.5 * (forward + backward)

    def _score_all(self, queries):
        # ½ ((H S)[q] + ((H S)ᵀ)[q]) with (H S)ᵀ = Sᵀ Hᵀ
        return 0.5 * ((self.history_[queries] @ self.similarity_) + (self.similarity_t_[queries] @ self.history_t_)
                      ).toarray()

    def _state(self):
        return {**sparse_state("", self.history_, binary=True), **sparse_state("similarity_", self.similarity_)}

    def _set_state(self, state):
        n = len(state["indptr"]) - 1
        self._set_matrices(sparse_from_state(state, "", (n, n)), sparse_from_state(state, "similarity_", (n, n)))


def _chunked_similarity(left: sp.csr_matrix, right_t: sp.csr_matrix, chunk: int, neighbours: int,
                        scale=None) -> sp.csr_matrix:
    """Rows of ``left @ right_t`` made ``chunk`` rows at a time, ``scale(block, rows)`` applied to each block's
    entries (in place), the diagonal dropped and each row kept to its ``neighbours`` largest."""
    n = left.shape[0]
    parts = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = (left[start:stop] @ right_t).tocsr().astype(np.float64)
        rows = np.repeat(np.arange(start, stop), np.diff(block.indptr))
        if scale is not None:
            scale(block, rows)
        block.data[block.indices == rows] = 0.0  # an item is not its own neighbour (dropped by _keep_top)
        parts.append(_keep_top(block, neighbours))
    return sp.vstack(parts).tocsr() if parts else sp.csr_matrix((n, right_t.shape[1]))


class ItemKNN(_Neighbourhood):
    """Item-based k-nearest neighbours (Sarwar et al. 2001; the baseline Dacrema et al. 2019 found hard to beat),
    on the unweighted train graph. Each item's similarity to the others is the shrunk cosine of their
    neighbourhoods, sim(i, j) = |N(i) ∩ N(j)| / (sqrt(|N(i)| |N(j)|) + shrink), kept to its ``neighbours``
    largest. An item's partners play a user's history: score(a, b) = ½ (Σ_{j ∈ N(a)} sim(j, b) +
    Σ_{j ∈ N(b)} sim(j, a)), symmetric as the pairs are."""

    name = "itemknn"
    search_space: ClassVar[dict[str, Space]] = {"neighbours": IntRange(10, 1000, log=True), "shrink": Uniform(0.0, 100.0)}

    @dataclass(frozen=True)
    class Config:
        seed: Seed = 0
        neighbours: Annotated[int, Range(1, 100_000)] = 100  # similarities kept per item
        shrink: Annotated[float, Range(0, 1e6)] = 10.0  # added to the cosine's denominator: rare overlaps count less
        chunk: BatchSize = 2048  # items whose similarity rows are made per sparse product

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        adjacency = _undirected(data)
        self._set_matrices(adjacency, cosine_similarity(adjacency, self.config.neighbours, self.config.shrink,
                                                        self.config.chunk))


def cosine_similarity(interactions: sp.csr_matrix, neighbours: int, shrink: float, chunk: int) -> sp.csr_matrix:
    """(n_columns, n_columns): the shrunk cosine between the columns of a 0/1 ``interactions`` matrix (rows:
    users, or items for the pair graph), |i ∩ j| / (sqrt(|i| |j|) + shrink), each row kept to its ``neighbours``
    largest, the diagonal dropped."""
    columns = interactions.T.tocsr()
    norm = np.sqrt(np.diff(columns.indptr).astype(np.float64))

    def scale(block, rows):
        block.data /= norm[rows] * norm[block.indices] + shrink

    return _chunked_similarity(columns, interactions, chunk, neighbours, scale)


def rp3beta_similarity(interactions: sp.csr_matrix, alpha: float, beta: float, neighbours: int,
                       chunk: int) -> sp.csr_matrix:
    """(n_columns, n_columns): RP3beta's item-to-item transition (Paudel et al. 2016, as in Dacrema et al.
    2019): W_ij = Σ_u P(i→u)^alpha P(u→j)^alpha / pop_j^beta, P the row-normalised item→user and user→item
    steps of ``interactions`` (rows: users, or items for the pair graph) and pop_j the column's count; each
    row kept to its ``neighbours`` largest, the diagonal dropped."""
    rows = interactions.tocsr().astype(np.float64)
    columns = rows.T.tocsr()
    to_column = _row_normalised(rows)  # u → j
    to_row = _row_normalised(columns)  # i → u
    to_column.data **= alpha
    to_row.data **= alpha
    popularity = np.diff(columns.indptr).astype(np.float64)
    penalty = np.where(popularity > 0, np.maximum(popularity, 1.0) ** -beta, 0.0)

    def scale(block, block_rows):
        block.data *= penalty[block.indices]

    return _chunked_similarity(to_row, to_column, chunk, neighbours, scale)


def _row_normalised(matrix: sp.csr_matrix) -> sp.csr_matrix:
    out = matrix.tocsr(copy=True).astype(np.float64)
    sums = np.asarray(out.sum(axis=1)).ravel()
    out.data /= np.repeat(np.where(sums > 0, sums, 1.0), np.diff(out.indptr))
    return out


class RP3beta(_Neighbourhood):
    """RP3beta (Paudel et al. 2016, "Updatable, accurate, diverse, and scalable recommendations for interactive
    applications"): a three-step random walk a → z → y → b on the train graph whose last step is divided by
    deg(b)^beta, so that popular items stop winning every list. The two-step item-item part (z → y → b, each
    step's probability raised to alpha) is kept to its ``neighbours`` largest per item; an item's partners play a
    user's history, each weighing 1 (as in Dacrema et al.'s implementation: the first step's 1 / deg(a) does not
    change a query's ranking, and in the symmetric score ½ (walk(a → b) + walk(b → a)) it would favour rare
    candidates; measured: Recall@10 0.057 against 0.320 on the demo catalogue's validation part)."""

    name = "rp3beta"
    search_space: ClassVar[dict[str, Space]] = {"alpha": Uniform(0.3, 1.5), "beta": Uniform(0.0, 1.0),
                                               "neighbours": IntRange(10, 1000, log=True)}

    @dataclass(frozen=True)
    class Config:
        seed: Seed = 0
        alpha: Annotated[float, Range(0, 10)] = 1.0  # each step's probability raised to alpha
        beta: Annotated[float, Range(0, 10)] = 0.5  # the popularity penalty of the walk's end
        neighbours: Annotated[int, Range(1, 100_000)] = 100  # transitions kept per item
        chunk: BatchSize = 2048

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        c = self.config
        adjacency = _undirected(data)
        self._set_matrices(adjacency, rp3beta_similarity(adjacency, c.alpha, c.beta, c.neighbours, c.chunk))
