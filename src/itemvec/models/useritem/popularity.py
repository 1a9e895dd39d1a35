"""The implicit-feedback popularity baseline: every user gets the items ranked by their number of train
positives. In a module of its own, with nothing but numpy under it, so that training it loads none of the
numba kernels of the learned models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from itemvec.config import Seed
from itemvec.data.types import Interactions
from itemvec.models.useritem.base import UserItemModel
from itemvec.train import Trainer


class PopularityUsers(UserItemModel):
    """score(u, i) = the number of train positives of item i, the same for every user: the baseline every
    personalised model has to beat."""

    name = "popularity"
    kind = "implicit"

    @dataclass(frozen=True)
    class Config:
        seed: Seed = 0

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        self._mark_known(data)
        positive = data.positive
        self.counts_ = np.bincount(data.item[positive], minlength=data.n_items).astype(np.float32)

    def _predict(self, users, items):
        return self.counts_[items].astype(np.float64)

    def _score_users(self, users):
        return np.broadcast_to(self.counts_, (len(users), len(self.counts_))).copy()

    def _state(self):
        return {"counts_": self.counts_}

    def _set_state(self, state):
        self.counts_ = state["counts_"].astype(np.float32)
