"""A factorisation machine (Rendle 2010, "Factorization Machines", eq. 1 and lemma 3.1) for implicit feedback.

The input of a (user, item) pair is a sparse vector x over one feature space: the user's one-hot id, the user's
side features (``Interactions.user_features``), the item's one-hot id and the item's side features
(``Interactions.item_features``). With a weight w_f and a factor vector v_f per feature, the FM is

    y(x) = w_0 + Σ_f w_f x_f + Σ_{f<g} ⟨v_f, v_g⟩ x_f x_g,

its pairwise term computed in O(k·n) as ½ Σ_d [(Σ_f v_fd x_f)² − Σ_f v_fd² x_f²]. Split x into the user block
U and the item block I and that is

    y = [w_0 + Σ_U w_f x_f + pairs within U] + Σ_I w_g x_g + pairs within I + ⟨P_u, Q_i⟩,
    P_u = Σ_U v_f x_f,  Q_i = Σ_I v_g x_g.

Trained with BPR's loss −ln σ(y(u, i) − y(u, j)) on (user, positive, negative) triplets, the bracket (the terms
of the user alone) cancels in every difference: the loss never sees it, so it is left out of the score, which is
``Σ_I w_g x_g + pairs within I + ⟨P_u, Q_i⟩``. Scores of one item are then comparable across users too.

Because the score is a sum over features, a user or item unseen in training is scored from its side features
alone (its untrained one-hot is left out): ``predict`` / ``score_users`` give scores wherever the user and the
item each have a train rating or at least one side feature, NaN otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from itemvec.config import (
    Dim,
    InitStd,
    Regularisation,
)
from itemvec.data.types import Interactions
from itemvec.models.useritem.base import set_torch_state, torch_state
from itemvec.models.useritem.triplet import TorchRankingModel, _embedding, bpr_loss
from itemvec.train import TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space


def feature_rows(n_rows: int, known: np.ndarray, features: sp.csr_matrix | None, one_hot_offset: int,
                 feature_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded ``(index (n_rows, L) int64, value (n_rows, L) float32)`` of each row's active features in the
    shared feature space: the row's one-hot (only where ``known``, i.e. trained) then its side features.
    Padding has index 0 and value 0, so it adds nothing."""
    if features is not None:
        features = sp.csr_matrix(features)
        if features.shape[0] != n_rows:
            raise ValueError(f"side features have {features.shape[0]} rows, expected {n_rows}")
        counts = np.diff(features.indptr)
    else:
        counts = np.zeros(n_rows, dtype=np.int64)
    width = 1 + int(counts.max(initial=0))
    index = np.zeros((n_rows, width), dtype=np.int64)
    value = np.zeros((n_rows, width), dtype=np.float32)
    index[:, 0] = one_hot_offset + np.arange(n_rows)
    value[:, 0] = known.astype(np.float32)
    if features is not None and features.nnz:
        rows = np.repeat(np.arange(n_rows), counts)
        cols = 1 + np.arange(features.nnz) - np.repeat(features.indptr[:-1], counts)
        index[rows, cols] = feature_offset + features.indices
        value[rows, cols] = features.data
    return index, value


class FactorizationMachine(TorchRankingModel):
    """Factorisation machine over user/item ids and side features, BPR loss (see the module docstring)."""

    name = "fm"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(1e-3, 0.05), "epochs": IntRange(3, 30),
                                               "dim": OneOf((32, 64, 128))}

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        l2: Regularisation = 1e-5  # on the factor vectors and weights of the features of each triplet
        init_std: InitStd = 0.05
        # lr: Adam
        # epochs: with lr 0.01, as good on a validation slice as 20 epochs at 0.003, in half the time
        # batch_size: triplets per step
        train: TrainSettings = TrainSettings(lr=0.01, schedule="cosine", min_lr_fraction=1e-2, epochs=10,
                                             batch_size=1024)

    # ---------------------------------------------------------------- features

    def _prepare(self, data: Interactions) -> None:
        n_user_features = 0 if data.user_features is None else data.user_features.shape[1]
        n_item_features = 0 if data.item_features is None else data.item_features.shape[1]
        item_start = data.n_users + n_user_features
        self.n_features_ = item_start + data.n_items + n_item_features
        self.user_index_, self.user_value_ = feature_rows(data.n_users, self.known_users_, data.user_features,
                                                          0, data.n_users)
        self.item_index_, self.item_value_ = feature_rows(data.n_items, self.known_items_, data.item_features,
                                                          item_start, item_start + data.n_items)

    @property
    def scorable_users_(self) -> np.ndarray:
        """(n_users,) bool: a train rating or at least one side feature."""
        return (self.user_value_ != 0).any(axis=1)

    @property
    def scorable_items_(self) -> np.ndarray:
        return (self.item_value_ != 0).any(axis=1)

    # ---------------------------------------------------------------- the network

    def _build(self, n_users, n_items, generator):
        import torch

        c = self.config
        self.net_ = torch.nn.Module()
        self.net_.factors = _embedding(self.n_features_, c.dim, c.init_std, generator)
        self.net_.weights = _embedding(self.n_features_, 1, 0.0, generator)
        self._tensors = {key: torch.from_numpy(getattr(self, key)) for key in
                         ("user_index_", "user_value_", "item_index_", "item_value_")}

    def _user_vectors(self, users):
        """(n, dim) P_u = Σ_U v_f x_f."""
        t = self._tensors
        x = t["user_value_"][users]
        return (self.net_.factors(t["user_index_"][users]) * x[..., None]).sum(1)

    def _item_terms(self, items):
        """(n, dim) Q_i = Σ_I v_g x_g and (n,) Σ_I w_g x_g + pairs within I (the O(k·n) form)."""
        t = self._tensors
        index, x = t["item_index_"][items], t["item_value_"][items]
        v = self.net_.factors(index) * x[..., None]
        q = v.sum(1)
        pairs = 0.5 * (q * q - (v * v).sum(1)).sum(1)
        linear = (self.net_.weights(index).squeeze(-1) * x).sum(1)
        return q, linear + pairs

    def _pair_scores(self, users, items, generator=None):
        q, own = self._item_terms(items)
        return (self._user_vectors(users) * q).sum(1) + own

    def _triplet_loss(self, users, positives, negatives, generator):
        negatives = negatives[:, 0]  # one negative per positive (the config has no ``negatives``)
        loss = bpr_loss(self._pair_scores(users, positives), self._pair_scores(users, negatives))
        c = self.config
        if c.l2 > 0:
            t = self._tensors
            penalty = 0.0
            for index, x in ((t["user_index_"][users], t["user_value_"][users]),
                             (t["item_index_"][positives], t["item_value_"][positives]),
                             (t["item_index_"][negatives], t["item_value_"][negatives])):
                present = (x != 0).float()
                penalty = penalty + ((self.net_.factors(index) ** 2).sum(-1) * present).sum(1) \
                    + ((self.net_.weights(index).squeeze(-1) ** 2) * present).sum(1)
            loss = loss + c.l2 * penalty
        return loss

    # ---------------------------------------------------------------- scoring (unseen users/items included)

    def _score_arrays(self):
        import torch

        with torch.no_grad():
            p = self._user_vectors(torch.arange(len(self.user_index_))).numpy()
            q, own = self._item_terms(torch.arange(len(self.item_index_)))
        return p, q.numpy(), own.numpy()

    # Scored from side features too: the base class's masking, with these masks instead of the known ones.
    def _scorable_users(self) -> np.ndarray:
        return self.scorable_users_

    def _scorable_items(self) -> np.ndarray:
        return self.scorable_items_

    def _predict(self, users, items):
        p, q, own = self._score_arrays()
        return np.einsum("ij,ij->i", p[users], q[items]) + own[items]

    def _score_users(self, users):
        p, q, own = self._score_arrays()
        return p[users] @ q.T + own[None, :]

    # ---------------------------------------------------------------- persistence

    def _state(self):
        return {**torch_state(self.net_), "user_index_": self.user_index_, "user_value_": self.user_value_,
                "item_index_": self.item_index_, "item_value_": self.item_value_,
                "n_features_": np.array(self.n_features_)}

    def _set_state(self, state):
        import torch

        self.user_index_ = state["user_index_"].astype(np.int64)
        self.user_value_ = state["user_value_"].astype(np.float32)
        self.item_index_ = state["item_index_"].astype(np.int64)
        self.item_value_ = state["item_value_"].astype(np.float32)
        self.n_features_ = int(state["n_features_"])
        self._build(len(self.known_users_), len(self.known_items_), torch.Generator().manual_seed(0))
        set_torch_state(self.net_, state)
        self.net_.eval()

