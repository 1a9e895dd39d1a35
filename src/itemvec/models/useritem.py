"""The one interface every user-item model implements (explicit ratings and implicit feedback alike).

Like ``ItemModel`` (and scikit-learn, `implicit`): the constructor stores settings; ``fit(data) -> self``;
learned state ends in ``_``. Queries are batched:

- ``predict(users, items) -> (n,) float64``: the predicted rating on the data's rating scale for an
  ``explicit`` model, a match score (higher = more likely) for an ``implicit`` one. NaN where the model
  has nothing to say (a user or item unseen in training and no side features); the evaluation protocol,
  not the model, decides what such a pair gets.
- ``score_users(users) -> (u, n_items) float32``: the same over the whole catalogue, NaN where unscorable.
- ``recommend(users, k, exclude=None) -> (ids (u, k) int64, scores (u, k) float64)``: best items per user,
  items in ``exclude`` (a users × items CSR matrix, e.g. the train interactions) and unscorable items
  left out; rows padded with -1 / NaN when fewer than k candidates exist.
- ``save(dir)`` / ``load(dir)``: ``model.json`` + ``weights.npz`` (``allow_pickle=False``); no pickle.

Subclasses set ``name``, ``kind`` ("explicit" or "implicit") and ``Config`` and implement ``fit``,
``_predict`` and ``_score_users`` over known users and items, and ``_state`` / ``_set_state``.
Models that can score unseen users or items (the factorisation machine, through side features) override
``predict`` / ``score_users`` themselves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from itemvec.config import check, replace
from itemvec.data.types import Interactions
from itemvec.models.base import read_weights, restore, top_k, write_weights


class UserItemModel:
    """Base class of the user-item models; see the module docstring for the contract."""

    name = "base"
    kind = "explicit"  # or "implicit"

    @dataclass(frozen=True)
    class Config:
        seed: int = 0

    def __init__(self, config=None, **settings) -> None:
        config = config if config is not None else self.Config()
        self.config = replace(config, settings, source=self.name) if settings else config
        check(self.config, source=f"settings for {self.name}")
        self.known_users_: np.ndarray | None = None
        self.known_items_: np.ndarray | None = None
        self.history_: list[dict] = []

    # ---------------------------------------------------------------- queries

    def _check_fitted(self) -> None:
        if self.known_items_ is None or self.known_users_ is None:
            raise RuntimeError(f"{self.name}: call fit() or load() first")

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return len(self.known_users_)

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.known_items_)

    def _mark_known(self, data: Interactions) -> None:
        """Users and items with at least one train rating: the ones the model has learned anything about."""
        self.known_users_ = np.bincount(data.user, minlength=data.n_users) > 0
        self.known_items_ = np.bincount(data.item, minlength=data.n_items) > 0

    def _scorable_users(self) -> np.ndarray:
        """(n_users,) bool: the users the model can score; the known ones unless it has side features."""
        return self.known_users_

    def _scorable_items(self) -> np.ndarray:
        return self.known_items_

    def predict(self, users, items) -> np.ndarray:
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.full(len(users), np.nan, dtype=np.float64)
        inside = (users >= 0) & (users < self.n_users) & (items >= 0) & (items < self.n_items)
        ok = inside.copy()
        ok[inside] = self._scorable_users()[users[inside]] & self._scorable_items()[items[inside]]
        if ok.any():
            out[ok] = self._predict(users[ok], items[ok])
        return out

    def score_users(self, users) -> np.ndarray:
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), self.n_items), np.nan, dtype=np.float32)
        ok = (users >= 0) & (users < self.n_users)
        ok[ok] = self._scorable_users()[users[ok]]
        if ok.any():
            scores = np.asarray(self._score_users(users[ok]), dtype=np.float32)
            scores[:, ~self._scorable_items()] = np.nan
            out[ok] = scores
        return out

    def recommend(self, users, k: int = 10, exclude: sp.csr_matrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users, dtype=np.int64)
        scores = self.score_users(users)
        if exclude is not None:
            rows = exclude[users]
            scores[np.repeat(np.arange(len(users)), np.diff(rows.indptr)), rows.indices] = np.nan
        return top_k(scores, k)

    # ---------------------------------------------------------------- subclass hooks

    def fit(self, data: Interactions, **kwargs) -> UserItemModel:
        """kwargs the runner may pass: ``progress`` (bool), ``run_dir``, ``resume``, ``evaluate`` (a function
        of the model returning a validation figure for the learning curve, or None)."""
        raise NotImplementedError

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        state = {"known_users_": self.known_users_, "known_items_": self.known_items_, **self._state()}
        return write_weights(directory, state, {"model": self.name, "kind": self.kind,
                                                "config": dataclasses.asdict(self.config)})

    @classmethod
    def load(cls, directory: str | Path) -> UserItemModel:
        model, state = read_weights(cls, directory)
        return restore(model, directory, state, {"known_users_": "known_users_", "known_items_": "known_items_"})


def torch_state(module) -> dict[str, np.ndarray]:
    """A torch module's parameters and buffers as numpy arrays, for ``_state``."""
    return {f"net.{key}": value.detach().cpu().numpy().copy() for key, value in module.state_dict().items()}


def set_torch_state(module, state: dict[str, np.ndarray]) -> None:
    """The inverse of ``torch_state``."""
    import torch

    module.load_state_dict({key[4:]: torch.from_numpy(np.asarray(value)) for key, value in state.items()
                            if key.startswith("net.")})
