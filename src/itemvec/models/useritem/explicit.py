"""Explicit-rating user-item models: predict the rating a user would give an item.

- ``global-mean``: the train mean for every known pair; the floor every model must clear.
- ``bias-baseline``: r̂ = μ + b_u + b_i with damped biases fitted by alternating least squares, Koren's
  "baseline estimates" (Koren 2008, §2.1; Koren 2010, "Factor in the neighbors", eq. 2), exactly as
  Surprise's ``BaselineOnly`` fits them: each sweep sets b_u = Σ(r - μ - b_i) / (reg_user + |R(u)|), then
  b_i = Σ(r - μ - b_u) / (reg_item + |R(i)|).
- ``mf-explicit``: r̂ = p_u · q_i, embeddings only.
- ``mf-explicit-bias``: r̂ = μ + b_u + b_i + p_u · q_i (Koren, Bell & Volinsky 2009, eq. 4; Funk's SVD as
  Surprise's ``SVD`` trains it), μ fixed at the train mean.

The two factorisations minimise squared error plus L2 on the rows each rating touches (the regularised
objective of Koren et al. 2009, eq. 5) by plain SGD, one fused numba kernel per trainer step, Hogwild across
cores over a fixed split of the step's ratings into blocks. Predictions are clipped to the data's rating scale.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, ClassVar

import numpy as np
from numba import njit, prange

from itemvec.config import (
    Dim,
    InitStd,
    Range,
    Regularisation,
    Seed,
)
from itemvec.data.types import Interactions
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.models.useritem.base import UserItemModel
from itemvec.train import RowSteps, Trainer, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space

N_BLOCKS = 16  # fixed work split per step: results do not depend on the number of threads (given one thread)


def _scale_of(data: Interactions) -> np.ndarray:
    return np.array([data.rating_min, data.rating_max], dtype=np.float64)


class _ExplicitBase(UserItemModel):
    """Shared pieces: the rating scale (learned state, since it comes from the data) and clipping."""

    kind = "explicit"
    scale_: np.ndarray

    def _clip(self, values: np.ndarray) -> np.ndarray:
        return np.clip(values, self.scale_[0], self.scale_[1])


# ==================================================================== global mean


class GlobalMean(_ExplicitBase):
    """Predicts the train mean for every known (user, item) pair."""

    name = "global-mean"

    @dataclass(frozen=True)
    class Config:
        seed: Seed = 0

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        self._mark_known(data)
        self.scale_ = _scale_of(data)
        self.global_mean_ = np.array([float(np.mean(data.rating, dtype=np.float64))])

    def _predict(self, users, items):
        return np.full(len(users), self._clip(self.global_mean_)[0])

    def _score_users(self, users):
        return np.full((len(users), self.n_items), self._clip(self.global_mean_)[0])

    def _state(self):
        return {"global_mean_": self.global_mean_, "scale_": self.scale_}

    def _set_state(self, state):
        self.global_mean_ = state["global_mean_"].astype(np.float64)
        self.scale_ = state["scale_"].astype(np.float64)


# ==================================================================== damped biases


def baseline_biases(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int,
                    reg_user: float, reg_item: float, sweeps: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Koren's damped baseline estimates by ALS (Surprise's ``baseline_als`` order: users, then items).

    Returns (μ, b_u (n_users,), b_i (n_items,)), float64.
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    mu = float(ratings.mean()) if len(ratings) else 0.0
    user_count = np.bincount(users, minlength=n_users)
    item_count = np.bincount(items, minlength=n_items)
    b_user = np.zeros(n_users)
    b_item = np.zeros(n_items)
    for _ in range(sweeps):
        b_user = np.bincount(users, ratings - mu - b_item[items], minlength=n_users) / (reg_user + user_count)
        b_item = np.bincount(items, ratings - mu - b_user[users], minlength=n_items) / (reg_item + item_count)
    return mu, b_user, b_item


if TYPE_CHECKING:
    _FallbackBase = _ExplicitBase  # what _BiasFallback is mixed into; at run time a plain mixin
else:
    _FallbackBase = object


class _BiasFallback(_FallbackBase):
    """For the models with biases: a rating for a pair with one side unseen in training is μ + the known
    side's bias (the untrained side contributes nothing), as Surprise's baseline estimates do; only a pair
    with neither side seen stays NaN (the protocol then gives it the train mean). Ranking is unchanged:
    ``score_users`` still leaves items without train ratings out."""

    global_mean_: np.ndarray  # (1,) μ
    user_bias_: np.ndarray
    item_bias_: np.ndarray

    def predict(self, users, items) -> np.ndarray:
        out = super().predict(users, items)
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        user_ok = (users >= 0) & (users < self.n_users)
        item_ok = (items >= 0) & (items < self.n_items)
        known_user = np.zeros(len(users), dtype=bool)
        known_item = np.zeros(len(items), dtype=bool)
        known_user[user_ok] = self.known_users_[users[user_ok]]
        known_item[item_ok] = self.known_items_[items[item_ok]]
        partial = np.isnan(out) & user_ok & item_ok & (known_user | known_item)
        if partial.any():
            u, i = users[partial], items[partial]
            estimate = (self.global_mean_[0] + np.where(known_user[partial], self.user_bias_[u], 0.0)
                        + np.where(known_item[partial], self.item_bias_[i], 0.0))
            out[partial] = self._clip(estimate)
        return out



class BiasBaseline(_BiasFallback, _ExplicitBase):
    """r̂ = μ + b_u + b_i with damped biases (see the module docstring); defaults are Surprise's."""

    name = "bias-baseline"
    search_space: ClassVar[dict[str, Space]] = {"reg_user": LogUniform(1.0, 50.0), "reg_item": LogUniform(1.0, 50.0)}

    @dataclass(frozen=True)
    class Config:
        reg_user: Annotated[float, Range(0, 1e6)] = 15.0
        reg_item: Annotated[float, Range(0, 1e6)] = 10.0
        sweeps: Annotated[int, Range(1, 1000)] = 10
        seed: Seed = 0

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        self.scale_ = _scale_of(data)
        mu, self.user_bias_, self.item_bias_ = baseline_biases(
            data.user, data.item, data.rating, data.n_users, data.n_items, c.reg_user, c.reg_item, c.sweeps)
        self.global_mean_ = np.array([mu])

    def _predict(self, users, items):
        return self._clip(self.global_mean_[0] + self.user_bias_[users] + self.item_bias_[items])

    def _score_users(self, users):
        return self._clip(self.global_mean_[0] + self.user_bias_[users][:, None] + self.item_bias_[None, :])

    def _state(self):
        return {"global_mean_": self.global_mean_, "user_bias_": self.user_bias_, "item_bias_": self.item_bias_,
                "scale_": self.scale_}

    def _set_state(self, state):
        self.global_mean_ = state["global_mean_"].astype(np.float64)
        self.user_bias_ = state["user_bias_"].astype(np.float64)
        self.item_bias_ = state["item_bias_"].astype(np.float64)
        self.scale_ = state["scale_"].astype(np.float64)


# ==================================================================== matrix factorisation by SGD


@njit(parallel=True, fastmath=True, cache=True)
def _sgd_step(user_vectors, item_vectors, user_bias, item_bias, global_mean, users, items, ratings,
              lr0, lr1, l2, l2_bias, use_bias):
    """One SGD pass over ``users/items/ratings`` (one trainer step), Surprise ``SVD``'s update rule:

    e = r - r̂;  b_u += lr (e - l2_bias b_u);  b_i += lr (e - l2_bias b_i);
    p_u += lr (e q_i - l2 p_u);  q_i += lr (e p_u - l2 q_i)   (both from the old p_u, q_i).

    The rate moves linearly from ``lr0`` to ``lr1`` along each block. Returns the summed squared error.
    """
    n = len(users)
    dim = user_vectors.shape[1]
    block = (n + N_BLOCKS - 1) // N_BLOCKS
    losses = np.zeros(N_BLOCKS)
    for blk in prange(N_BLOCKS):
        start = blk * block
        end = min(n, start + block)
        loss = 0.0
        for k in range(start, end):
            lr = lr0 + (lr1 - lr0) * ((k - start) / block)
            u = users[k]
            i = items[k]
            pred = 0.0
            for d in range(dim):
                pred += user_vectors[u, d] * item_vectors[i, d]
            if use_bias:
                pred += global_mean + user_bias[u] + item_bias[i]
            err = ratings[k] - pred
            loss += err * err
            if use_bias:
                user_bias[u] += lr * (err - l2_bias * user_bias[u])
                item_bias[i] += lr * (err - l2_bias * item_bias[i])
            for d in range(dim):
                p = user_vectors[u, d]
                q = item_vectors[i, d]
                user_vectors[u, d] = p + lr * (err * q - l2 * p)
                item_vectors[i, d] = q + lr * (err * p - l2 * q)
        losses[blk] = loss
    return losses.sum()


class _SGDTrainable(RowSteps):
    """Steps for the shared trainer: a fresh shuffle of the ratings every epoch, ``batch_size`` ratings a step."""

    def __init__(self, model: MFExplicit, users, items, ratings) -> None:
        super().__init__(len(users), model.config.train.batch_size)
        self.model = model
        self.users, self.items, self.ratings = users, items, ratings

    def train_step(self, step: int, lr_start: float, lr_end: float, seed: int) -> tuple[float, int]:
        m, c = self.model, self.model.config
        rows = self.chunk(step)
        loss = _sgd_step(m.user_vectors_, m.item_vectors_, m.user_bias_, m.item_bias_, float(m.global_mean_[0]),
                         self.users[rows], self.items[rows], self.ratings[rows], lr_start, lr_end, c.l2,
                         c.l2_bias, m.use_bias)
        return float(loss), len(rows)

    def state(self) -> dict[str, np.ndarray]:
        m = self.model
        return {"user_vectors": m.user_vectors_, "item_vectors": m.item_vectors_, "user_bias": m.user_bias_,
                "item_bias": m.item_bias_}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        m = self.model
        m.user_vectors_[:] = state["user_vectors"]
        m.item_vectors_[:] = state["item_vectors"]
        m.user_bias_[:] = state["user_bias"]
        m.item_bias_[:] = state["item_bias"]


class MFExplicit(EmbeddingModel, _ExplicitBase):
    """r̂ = p_u · q_i, trained by SGD on squared error + L2 (see the module docstring).

    Without biases the dot product has to carry the mean rating too, so every vector starts at the constant
    sqrt(μ / dim) plus noise (every prediction starts near μ instead of near 0, which SGD otherwise spends its
    first epochs climbing to).
    """

    name = "mf-explicit"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.005, 0.1), "epochs": IntRange(10, 100, log=True),
                                               "dim": OneOf((32, 64, 128)), "l2": LogUniform(1e-4, 0.1)}
    use_bias = False

    @dataclass(frozen=True)
    class Config:
        # Defaults picked on a validation slice of ml-latest-small (10% of an 80% train split): l2 0.1 beat 0.02,
        # 0.05, 0.15 and 0.2 at every dim; dim 128 beat 16-64; cosine beat a constant rate (0.8655 vs 0.8686).
        dim: Dim = 128
        l2: Regularisation = 0.1
        l2_bias: Regularisation = 0.02  # only used by mf-explicit-bias
        init_std: InitStd = 0.1
        # lr: plain SGD
        # batch_size: ratings per trainer step
        # eval_every: steps; 0: at the end of each epoch
        # Numba threads; 0: all cores. One thread measured fastest on ml-latest-small on a busy 2-core machine
        # (parallel steps wait on the slowest thread) and gives bit-identical reruns; raise it for large data.
        train: TrainSettings = TrainSettings(lr=0.02, schedule="cosine", min_lr_fraction=0.01, epochs=40,
                                             batch_size=65536, threads=1)

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        self.scale_ = _scale_of(data)
        mu = float(np.mean(data.rating, dtype=np.float64)) if len(data) else 0.0
        rng = np.random.default_rng(c.train.seed)
        offset = 0.0 if self.use_bias else np.sqrt(max(mu, 0.0) / c.dim)
        self.user_vectors_ = (offset + rng.standard_normal((data.n_users, c.dim)) * c.init_std).astype(np.float32)
        self.item_vectors_ = (offset + rng.standard_normal((data.n_items, c.dim)) * c.init_std).astype(np.float32)
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self.global_mean_ = np.array([mu if self.use_bias else 0.0])
        trainable = _SGDTrainable(self, data.user.astype(np.int64), data.item.astype(np.int64),
                                  data.rating.astype(np.float32))
        self.history_ = trainer.train(self, trainable)

    def _raw(self, users, items):
        dot = np.einsum("ij,ij->i", self.user_vectors_[users], self.item_vectors_[items], dtype=np.float64)
        if self.use_bias:
            dot += self.global_mean_[0] + self.user_bias_[users] + self.item_bias_[items]
        return dot

    def _predict(self, users, items):
        out = np.empty(len(users))
        step = 1 << 18
        for s in range(0, len(users), step):
            out[s:s + step] = self._raw(users[s:s + step], items[s:s + step])
        return self._clip(out)

    def _score_users(self, users):
        scores = self.user_vectors_[users].astype(np.float64) @ self.item_vectors_.T.astype(np.float64)
        if self.use_bias:
            scores += self.global_mean_[0] + self.user_bias_[users][:, None] + self.item_bias_[None, :]
        return self._clip(scores)

    def embedding(self) -> Embedding:
        """The vectors and biases; predictions are clipped to the rating scale (``_predict``), the
        embedding's own ``predict`` is not."""
        bias = self.use_bias
        return Embedding(rule="dot", item_vectors=self.item_vectors_, user_vectors=self.user_vectors_,
                         item_bias=self.item_bias_ if bias else None, user_bias=self.user_bias_ if bias else None,
                         global_bias=float(self.global_mean_[0]) if bias else 0.0)

    def _state(self):
        return {"user_vectors_": self.user_vectors_, "item_vectors_": self.item_vectors_,
                "user_bias_": self.user_bias_, "item_bias_": self.item_bias_, "global_mean_": self.global_mean_,
                "scale_": self.scale_}

    def _set_state(self, state):
        self.user_vectors_ = state["user_vectors_"].astype(np.float32)
        self.item_vectors_ = state["item_vectors_"].astype(np.float32)
        self.user_bias_ = state["user_bias_"].astype(np.float32)
        self.item_bias_ = state["item_bias_"].astype(np.float32)
        self.global_mean_ = state["global_mean_"].astype(np.float64)
        self.scale_ = state["scale_"].astype(np.float64)


class MFExplicitBias(_BiasFallback, MFExplicit):
    """r̂ = μ + b_u + b_i + p_u · q_i (Koren et al. 2009, eq. 4), μ fixed at the train mean."""

    name = "mf-explicit-bias"
    use_bias = True

    @dataclass(frozen=True)
    class Config(MFExplicit.Config):
        init_std: InitStd = 0.05

        train: TrainSettings = dataclasses.replace(MFExplicit.Config.train, lr=0.03)
