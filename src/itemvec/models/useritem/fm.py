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

Training is one fused numba kernel per trainer step (``fm_step``, in the manner of ``factor.ranking_step``):
for each train positive (u, i) of the step it draws ``negatives`` items j uniformly among the items with a
train rating and not among u's train positives (rejection against the sorted CSR positives), computes P_u,
Q_i, Q_j and the two scores, and applies the gradient of −ln σ(y(u, i) − y(u, j)) plus ``l2`` · (the feature's
parameter) to the factor vector and weight of every present feature of u, i and j: sparse updates with
per-coordinate Adagrad (or SGD), Hogwild across cores, the rate following the step's progress
(``kernels.lane_rate``). The work is split into ``factor.N_BLOCKS`` fixed blocks, each with its own splitmix64
generator seeded from the step's seed, so one thread gives the same numbers on any machine. The gradients,
with c = ∂loss/∂y (−σ(−Δ) for the positive, +σ(−Δ) for the negative, Δ = y(u, i) − y(u, j)):

    ∂y(u, i)/∂v_f = x_f Q_i (f in U),   ∂y(u, i)/∂v_g = x_g (P_u + Q_i − v_g x_g),   ∂y(u, i)/∂w_g = x_g (g in I).

Defaults, chosen on the validation part of MovieLens latest-small (per-user AUC / NDCG@10 / recall@10 over the
catalogue, one thread, seed 0; never the test part). The torch FM this replaces (Adam, lr 0.01, 10 epochs of
one negative, batch 1024): 0.9497 / 0.0840 / 0.1199 in 47 s. Here, 5 epochs of 6 negatives per positive at
Adagrad rate 0.035, l2 2e-3, init_std 0.1: 0.9534 / 0.0988 / 0.1346 in about 1 s of kernel time (seeds 1-3:
AUC 0.9530-0.9535, NDCG 0.0886-0.0958). More negatives per epoch rather than more epochs because the
trainer's validation after each epoch (about 0.2 s here) costs more than an epoch's updates: the same
updates as 30 epochs of one negative (rate 0.02, l2 1e-3) reach 0.9523 / 0.0945 and pay 30 validations;
10 epochs of 5 negatives at 0.05 reach 0.9544 / 0.1012 in twice the time. Rates of 0.07 and above lose AUC (0.947-0.949), init_std 0.2 too (0.948); l2
between 1e-3 and 5e-3 changes little.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from itemvec.config import (
    AtLeastOneNegative,
    Dim,
    InitStd,
    Optimizer,
    Regularisation,
)
from itemvec.data.types import Interactions
from itemvec.models.factor import N_BLOCKS, PositiveSteps, _draw_negative
from itemvec.models.kernels import lane_rate, lanes, sigmoid, step_row
from itemvec.models.useritem.base import UserItemModel
from itemvec.models.useritem.implicit import positive_rows
from itemvec.train import Trainer, TrainSettings
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


# ---------------------------------------------------------------- kernels


@njit(inline="always")
def _user_sum(factors, index, value, row, out):
    """``out`` = P = Σ v_f x_f over the features of ``row``."""
    for d in range(len(out)):
        out[d] = 0.0
    for k in range(index.shape[1]):
        x = value[row, k]
        if x != 0.0:
            f = index[row, k]
            for d in range(len(out)):
                out[d] += x * factors[f, d]


@njit(inline="always")
def _item_sum(factors, weights, index, value, row, out):
    """``out`` = Q = Σ v_g x_g over the features of ``row``; returns Σ w_g x_g + pairs within the row."""
    for d in range(len(out)):
        out[d] = 0.0
    linear = np.float32(0.0)
    squares = np.float32(0.0)
    for k in range(index.shape[1]):
        x = value[row, k]
        if x != 0.0:
            g = index[row, k]
            linear += x * weights[g]
            for d in range(len(out)):
                v = x * factors[g, d]
                out[d] += v
                squares += v * v
    total = np.float32(0.0)
    for d in range(len(out)):
        total += out[d] * out[d]
    return linear + 0.5 * (total - squares)


@njit(inline="always")
def _dot(a, b):
    s = np.float32(0.0)
    for d in range(len(a)):
        s += a[d] * b[d]
    return s


@njit(inline="always")
def _update_item(factors, weights, acc_f, acc_w, index, value, row, p, q, c, l2, lr, adagrad, grad):
    """Step the factors and weights of ``row``'s features for ∂loss/∂y(u, row) = ``c`` (P_u = ``p`` and
    Q_row = ``q`` as before the update), plus ``l2`` times each parameter (``grad``: a buffer)."""
    for k in range(index.shape[1]):
        x = value[row, k]
        if x == 0.0:
            continue
        g = index[row, k]
        cx = c * x
        for d in range(len(p)):
            v = factors[g, d]
            grad[d] = cx * (p[d] + q[d] - x * v) + l2 * v
        step_row(factors, acc_f, g, grad, lr, adagrad)
        gw = cx + l2 * weights[g]
        if adagrad:
            acc_w[g] += adagrad * gw * gw
            weights[g] -= lr * gw / np.sqrt(acc_w[g] + np.float32(1e-8))
        else:
            weights[g] -= lr * gw


@njit(parallel=True, fastmath=True, cache=True)
def fm_step(factors, weights, acc_f, acc_w, user_index, user_value, item_index, item_value, users, items,
            indptr, indices, candidates, lr0, lr1, l2, negatives, adagrad, seed, n_lanes):
    """One trainer step of the FM's BPR over the positives ``users/items`` (one chunk): ``negatives`` draws
    per positive, uniform among ``candidates`` and not among the user's positives (the sorted CSR rows
    ``indptr`` / ``indices``), each an update of −ln σ(y(u, i) − y(u, j)) (see the module docstring).
    ``adagrad``: 0 for SGD, else the squared gradient's weight in the accumulators ``acc_f`` / ``acc_w``.
    The blocks run in ``n_lanes`` lanes (``kernels.lanes``). Returns (summed loss, updates)."""
    n = len(users)
    dim = factors.shape[1]
    block = (n + N_BLOCKS - 1) // N_BLOCKS
    losses = np.zeros(N_BLOCKS)
    counts = np.zeros(N_BLOCKS, dtype=np.int64)
    clock = np.zeros((n_lanes, 8), dtype=np.int64)
    no_prob = np.zeros(0)
    no_alias = np.zeros(0, dtype=np.int32)
    l2_32 = np.float32(l2)
    rate_w = np.float32(adagrad)
    for lane in prange(n_lanes):
        done = 0
        others = 0
        p = np.empty(dim, dtype=np.float32)
        qi = np.empty(dim, dtype=np.float32)
        qj = np.empty(dim, dtype=np.float32)
        grad = np.empty(dim, dtype=np.float32)
        for blk in range(lane, N_BLOCKS, n_lanes):
            state = np.uint64(seed) + np.uint64(blk) * np.uint64(0x632BE59BD9B4E019)
            loss = 0.0
            count = 0
            for e in range(blk * block, min(n, (blk + 1) * block)):
                lr, others = lane_rate(clock, lane, done, others, lr0, lr1, n)
                lr32 = np.float32(lr)
                done += 1
                u = users[e]
                i = items[e]
                for _ in range(negatives):  # P_u and the positive's terms as after the last negative's update
                    _user_sum(factors, user_index, user_value, u, p)
                    own_i = _item_sum(factors, weights, item_index, item_value, i, qi)
                    state, j = _draw_negative(state, candidates, no_prob, no_alias, indptr, indices, u)
                    own_j = _item_sum(factors, weights, item_index, item_value, j, qj)
                    x = _dot(p, qi) + own_i - _dot(p, qj) - own_j
                    loss -= np.log(max(sigmoid(x), 1e-12))
                    g = sigmoid(-x)  # −∂ ln σ(x)/∂x: ∂loss/∂y(u, j) = g, ∂loss/∂y(u, i) = −g
                    count += 1
                    g32 = np.float32(g)
                    for k in range(user_index.shape[1]):
                        xf = user_value[u, k]
                        if xf == 0.0:
                            continue
                        f = user_index[u, k]
                        for d in range(dim):
                            grad[d] = g32 * xf * (qj[d] - qi[d]) + l2_32 * factors[f, d]
                        step_row(factors, acc_f, f, grad, lr32, rate_w)
                    _update_item(factors, weights, acc_f, acc_w, item_index, item_value, i, p, qi, -g32, l2_32,
                                 lr32, rate_w, grad)
                    _update_item(factors, weights, acc_f, acc_w, item_index, item_value, j, p, qj, g32, l2_32,
                                 lr32, rate_w, grad)
            losses[blk] = loss
            counts[blk] = count
    return losses.sum(), counts.sum()


@njit(parallel=True, fastmath=True, cache=True)
def feature_sums(factors, weights, index, value):
    """For every row of ``index`` / ``value``: (Σ v_f x_f (n, dim) float32, Σ w_f x_f + pairs within the row
    (n,) float32), the P_u of a user row, the Q_i and own terms of an item row."""
    n = index.shape[0]
    dim = factors.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    own = np.empty(n, dtype=np.float32)
    for r in prange(n):
        q = np.empty(dim, dtype=np.float32)
        own[r] = _item_sum(factors, weights, index, value, r, q)
        for d in range(dim):
            out[r, d] = q[d]
    return out, own


class FMSteps(PositiveSteps):
    """The FM's steps for the trainer over the train positives (users as rows, items as columns), on
    ``tables``: the feature factors, the feature weights and their Adagrad accumulators; ``features``: the
    padded (index, value) feature rows of the users, then of the items."""

    def __init__(self, tables: dict[str, np.ndarray], features: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                 users: np.ndarray, items: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                 candidates: np.ndarray, config: Any) -> None:
        super().__init__(tables, users, items, indptr, indices, candidates, config)
        self.features = features

    def _step(self, rows, columns, lr_start, lr_end, seed):
        c = self.config
        factors, weights, acc_f, acc_w = self.tables.values()
        user_index, user_value, item_index, item_value = self.features
        return fm_step(factors, weights, acc_f, acc_w, user_index, user_value, item_index, item_value, rows, columns,
                       self.indptr, self.indices, self.candidates, lr_start, lr_end, c.l2, c.negatives,
                       self.accumulate(c.optimizer == "adagrad"), seed, lanes(N_BLOCKS))


# ---------------------------------------------------------------- the model


class FactorizationMachine(UserItemModel):
    """Factorisation machine over user/item ids and side features, BPR loss (see the module docstring)."""

    name = "fm"
    kind = "implicit"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.005, 0.1), "epochs": IntRange(3, 30),
                                               "negatives": IntRange(1, 10), "dim": OneOf((32, 64, 128)),
                                               "l2": LogUniform(1e-5, 1e-2)}

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        # negatives drawn (and updates made) per positive and epoch: 6 per epoch beat more epochs of 1 on
        # validation in the same time (the module docstring)
        negatives: AtLeastOneNegative = 6
        l2: Regularisation = 2e-3  # times the parameter, added to the gradient of each present feature's
        optimizer: Optimizer = "adagrad"  # per-coordinate Adagrad, or "sgd"
        init_std: InitStd = 0.1  # the factors' (the weights start at 0); 0.2 loses validation AUC
        # lr: Adagrad's; 0.07 and above lose validation AUC
        # batch_size: positives per trainer step
        # threads: 0: all cores
        train: TrainSettings = TrainSettings(lr=0.035, schedule="cosine", min_lr_fraction=1e-2, epochs=5,
                                             batch_size=16384)

    factors_: np.ndarray  # (n_features, dim) float32: v_f
    weights_: np.ndarray  # (n_features,) float32: w_f

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

    # ---------------------------------------------------------------- training

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        self._prepare(data)
        rng = np.random.default_rng(c.train.seed)
        self.factors_ = (rng.standard_normal((self.n_features_, c.dim)) * c.init_std).astype(np.float32)
        self.weights_ = np.zeros(self.n_features_, dtype=np.float32)
        positive = data.positive
        indptr, indices = positive_rows(data)
        candidates = np.flatnonzero(self.known_items_).astype(np.int64)
        if positive.any() and len(candidates) > 1:
            tables = {"factors": self.factors_, "weights": self.weights_,
                      "acc_factors": np.zeros_like(self.factors_), "acc_weights": np.zeros_like(self.weights_)}
            rows = (self.user_index_, self.user_value_, self.item_index_, self.item_value_)
            steps = FMSteps(tables, rows, data.user[positive].astype(np.int64), data.item[positive].astype(np.int64),
                            indptr, indices, candidates, c)
            self.history_ = trainer.train(self, steps)

    # ---------------------------------------------------------------- scoring (unseen users/items included)

    def _user_vectors(self, users: np.ndarray) -> np.ndarray:
        """(n, dim) float32 P_u = Σ_U v_f x_f."""
        return feature_sums(self.factors_, self.weights_, self.user_index_[users], self.user_value_[users])[0]

    def _item_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """(n_items, dim) Q_i = Σ_I v_g x_g and (n_items,) Σ_I w_g x_g + pairs within I, float32."""
        return feature_sums(self.factors_, self.weights_, self.item_index_, self.item_value_)

    # Scored from side features too: the base class's masking, with these masks instead of the known ones.
    def _scorable_users(self) -> np.ndarray:
        return self.scorable_users_

    def _scorable_items(self) -> np.ndarray:
        return self.scorable_items_

    def _predict(self, users, items):
        q, own = self._item_terms()
        return np.einsum("ij,ij->i", self._user_vectors(users), q[items]) + own[items]

    def _score_users(self, users):
        q, own = self._item_terms()
        return self._user_vectors(users) @ q.T + own[None, :]

    # ---------------------------------------------------------------- persistence

    def _state(self):
        return {"factors_": self.factors_, "weights_": self.weights_, "user_index_": self.user_index_,
                "user_value_": self.user_value_, "item_index_": self.item_index_, "item_value_": self.item_value_,
                "n_features_": np.array(self.n_features_)}

    def _set_state(self, state):
        if "factors_" not in state:  # a run saved by the torch FM: its two embedding tables
            state = {**state, "factors_": state["net.factors.weight"], "weights_": state["net.weights.weight"][:, 0]}
        self.factors_ = np.ascontiguousarray(state["factors_"], dtype=np.float32)
        self.weights_ = np.ascontiguousarray(state["weights_"], dtype=np.float32)
        self.user_index_ = state["user_index_"].astype(np.int64)
        self.user_value_ = state["user_value_"].astype(np.float32)
        self.item_index_ = state["item_index_"].astype(np.int64)
        self.item_value_ = state["item_value_"].astype(np.float32)
        self.n_features_ = int(state["n_features_"])
