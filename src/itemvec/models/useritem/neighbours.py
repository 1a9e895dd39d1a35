"""Neighbourhood baselines for users × items on the implicit view (a user's train positives, rating at or above
the data's threshold): ``itemknn``, ``rp3beta`` and ``ease``. Dacrema et al. (RecSys 2019, "Are we really making
much progress?") found such baselines beat most neural recommenders; the tables show whether ours do.

- ``itemknn``: score(u, i) = Σ_{j ∈ P(u)} sim(j, i), sim the shrunk cosine of the items' user sets (kept to
  ``neighbours`` per item), as on item pairs (``models.itemitem.heuristics.cosine_similarity``).
- ``rp3beta``: the three-step walk u → j → v → i with the end's popularity penalty (the same function as on
  pairs) from the user's positives (the first step's weight 1 / |P(u)| is the same for all of a user's items).
- ``ease``: EASE^R (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): the item-item weights
  B = argmin |X − X B|² + λ |B|² with diag(B) = 0, in closed form B = I − P / diag(P), P = (XᵀX + λI)⁻¹, over
  the items with a train positive. Dense: the limit is ``EASE.MAX_ITEMS`` such items (the Gram matrix and its
  inverse in float64, 2 GB each at the limit); beyond it the model refuses with one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from itemvec.config import Range, Seed
from itemvec.data.types import Interactions
from itemvec.errors import InputError
from itemvec.models.base import sparse_from_state, sparse_state
from itemvec.models.itemitem.heuristics import ItemKNN, RP3beta, cosine_similarity, rp3beta_similarity
from itemvec.models.useritem.base import UserItemModel
from itemvec.train import Trainer
from itemvec.tune import IntRange, LogUniform, Space, Uniform

Neighbours = Annotated[int, Range(1, 100_000)]


class _ItemWeights(UserItemModel):
    """score(u, i) = (H W)_ui: a user's history row H_u (weights on their train positives) through an item-item
    matrix W. Subclasses set ``history_`` (users × items CSR) and ``weights_`` (items × items CSR)."""

    kind = "implicit"
    history_: sp.csr_matrix
    weights_: Any

    def _rows(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.history_[users] @ self.weights_).toarray(), dtype=np.float32)

    def _predict(self, users, items):
        out = np.empty(len(users), dtype=np.float64)
        step = 1024
        order = np.argsort(users, kind="stable")
        for start in range(0, len(order), step):
            chosen = order[start:start + step]
            unique, inverse = np.unique(users[chosen], return_inverse=True)
            out[chosen] = self._rows(unique)[inverse, items[chosen]]
        return out

    def _score_users(self, users):
        return self._rows(users)

    def _state(self):
        return {**sparse_state("history_", self.history_), **sparse_state("weights_", self.weights_)}

    def _set_state(self, state):
        n_users, n_items = len(self.known_users_), len(self.known_items_)
        self.history_ = sparse_from_state(state, "history_", (n_users, n_items))
        self.weights_ = sparse_from_state(state, "weights_", (n_items, n_items))


class ItemKNNUsers(_ItemWeights):
    """Item-based k-nearest neighbours on the train positives (see the module docstring)."""

    name = "itemknn"
    search_space: ClassVar[dict[str, Space]] = {"neighbours": IntRange(10, 1000, log=True), "shrink": Uniform(0.0, 100.0)}

    @dataclass(frozen=True)
    class Config(ItemKNN.Config):  # the same settings as on item pairs
        pass

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        positives = data.matrix(positives_only=True)
        self.history_ = positives.astype(np.float32)
        self.weights_ = cosine_similarity(positives, c.neighbours, c.shrink, c.chunk).astype(np.float32)


class RP3betaUsers(_ItemWeights):
    """RP3beta on the train positives (see the module docstring)."""

    name = "rp3beta"
    search_space: ClassVar[dict[str, Space]] = {"alpha": Uniform(0.3, 1.5), "beta": Uniform(0.0, 1.0),
                                               "neighbours": IntRange(10, 1000, log=True)}

    @dataclass(frozen=True)
    class Config(RP3beta.Config):
        pass

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        positives = data.matrix(positives_only=True)
        self.history_ = positives.astype(np.float32)  # the first step's 1 / |P(u)| ** alpha: a user's constant
        self.weights_ = rp3beta_similarity(positives, c.alpha, c.beta, c.neighbours, c.chunk).astype(np.float32)


class EASE(_ItemWeights):
    """EASE^R on the train positives, up to ``MAX_ITEMS`` items with a positive (see the module docstring)."""

    name = "ease"
    search_space: ClassVar[dict[str, Space]] = {"l2": LogUniform(10.0, 5000.0)}
    # 16,000 items: 2 GB per dense float64 matrix; ITEMVEC_EASE_MAX_ITEMS moves the limit (a machine with more
    # memory, or a test).
    MAX_ITEMS: ClassVar[int] = int(os.environ.get("ITEMVEC_EASE_MAX_ITEMS", "16000"))

    @dataclass(frozen=True)
    class Config:
        seed: Seed = 0
        l2: Annotated[float, Range(0, 1e9, low_open=True)] = 200.0  # λ on B (Steck's range: 100 to 1000)

    @classmethod
    def refusal(cls, n_items: int, what: str = "items") -> str | None:
        """Why ``ease`` cannot train on ``n_items`` items, or None (``compare`` asks with the catalogue's size
        before training, ``fit`` with the count of items that have a train positive)."""
        if n_items <= cls.MAX_ITEMS:
            return None
        return (f"ease: {n_items:,} {what}, over its limit of {cls.MAX_ITEMS:,} (a dense items × items inverse: "
                f"{8 * n_items * n_items / 2**30:.1f} GB at float64); use itemknn or rp3beta")

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        self._mark_known(data)
        positives = data.matrix(positives_only=True)
        columns = np.flatnonzero(np.diff(positives.tocsc().indptr) > 0)
        reason = self.refusal(len(columns), "items with train positives")
        if reason:
            raise InputError(reason)
        x = positives[:, columns].astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.config.l2
        inverse = np.linalg.inv(gram)
        del gram
        b = inverse / (-np.diag(inverse))[None, :]
        b[np.diag_indices_from(b)] = 0.0
        self.columns_ = columns.astype(np.int64)
        self.weights_ = b.astype(np.float32)
        self.history_ = positives[:, columns].astype(np.float32).tocsr()

    def _rows(self, users: np.ndarray) -> np.ndarray:
        # Items without a train positive have no column in B: they score 0 (below any item a neighbour points to).
        out = np.zeros((len(users), len(self.known_items_)), dtype=np.float32)
        out[:, self.columns_] = np.asarray(self.history_[users] @ self.weights_, dtype=np.float32)
        return out

    def _state(self):
        return {**sparse_state("history_", self.history_), "weights": self.weights_, "columns_": self.columns_}

    def _set_state(self, state):
        self.columns_ = np.asarray(state["columns_"], dtype=np.int64)
        self.weights_ = np.asarray(state["weights"], dtype=np.float32)
        self.history_ = sparse_from_state(state, "history_", (len(self.known_users_), len(self.columns_)))
