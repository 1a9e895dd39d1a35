"""Implicit-feedback user-item models: BPR, WARP and ALS (the popularity baseline is in popularity.py).

The implicit view of a rating split: a user's positives are the items rated at or above the data's threshold
(``Interactions.positive``). The models rank items for a user by a match score
``score(u, i) = p_u · q_i + b_i`` (higher = more likely to be a positive).

- ``bpr``: BPR-Opt (Rendle et al. 2009, "BPR: Bayesian Personalized Ranking from Implicit Feedback", eq. 4):
  maximise ln σ(score(u, i) − score(u, j)) over a train positive i and an item j drawn uniformly among the
  items with a train rating that are not among u's train positives, with L2 on the rows touched.
- ``warp``: WSABIE's Weighted Approximate-Rank Pairwise loss (Weston et al. 2011), as in LightFM: for a
  positive (u, i), draw negatives until one violates the margin (score(u, j) > score(u, i) − 1), at most
  ``max_sampled`` draws; the hinge 1 − score(u, i) + score(u, j) of that violator is weighted by
  ``log(floor((N − 1) / tries))``, an estimate of log(rank of i), with N the number of candidate items.
  A positive whose ``max_sampled`` draws found no violator is left alone.

Training is one fused numba kernel per trainer step (like ``mf.py``): it draws the negatives with a per-block
splitmix64 generator, scores, and applies sparse row updates with per-coordinate Adagrad (LightFM's choice)
or SGD, Hogwild across cores. The work is split into a fixed number of blocks, so one thread gives the same
numbers whatever the machine. User factors start at zero and item factors small and random (as word2vec's
output vectors): a user with no train positive is ranked by the item biases alone instead of at random.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from numba import njit

from itemvec.config import (
    AtLeastOneNegative,
    Dim,
    InitStd,
    Margin,
    Optimizer,
    Range,
    Regularisation,
)
from itemvec.data.types import Interactions
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.models.factor import ALS_SPACE, ALSSettings, ALSSteps, RankingSteps, _is_positive
from itemvec.models.useritem.base import UserItemModel
from itemvec.train import Trainer, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space

# ---------------------------------------------------------------- pure pieces: positives, samplers, weights


def positive_rows(data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """The train positives as CSR arrays ``(indptr (n_users + 1,) int64, indices int64)``, each row sorted."""
    m = data.matrix(positives_only=True)
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices.astype(np.int64)


BITS_LIMIT = 64 << 20  # bytes: the largest table of positives as bits (``positive_bits``)


def positive_bits(indptr: np.ndarray, indices: np.ndarray, width: int) -> np.ndarray | None:
    """The sorted CSR rows ``indptr`` / ``indices`` (items below ``width``) as a bit table for
    :func:`sample_negatives`: (n_users, ⌈width / 8⌉) uint8, bit ``i % 8`` of byte ``i // 8`` set in a user's row
    for each positive ``i`` (numpy's ``packbits(..., bitorder="little")``). A draw is then one load instead of a
    binary search in the user's row (about 20 times faster at MovieLens size). None when the table would take
    more than ``BITS_LIMIT`` bytes (the search is used)."""
    n_users, row_bytes = len(indptr) - 1, (max(int(width), 1) + 7) // 8
    if n_users * row_bytes > BITS_LIMIT:
        return None
    indices = np.asarray(indices, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= width):
        raise ValueError(f"positive_bits: items must be in [0, {width}), found {indices.min()}..{indices.max()}")
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
    table = np.zeros(n_users * row_bytes, dtype=np.uint8)
    np.bitwise_or.at(table, rows * row_bytes + (indices >> 3), np.left_shift(1, indices & 7).astype(np.uint8))
    return table.reshape(n_users, row_bytes)


def sample_negatives(users: np.ndarray, indptr: np.ndarray, indices: np.ndarray, candidates: np.ndarray,
                     rng: np.random.Generator, max_rounds: int = 32, cdf: np.ndarray | None = None,
                     guide: np.ndarray | None = None, bits: np.ndarray | None = None) -> np.ndarray:
    """(n,) int64: for each user, an item drawn from ``candidates`` and not among the user's positives (the
    sorted CSR rows ``indptr`` / ``indices``), by rejection. Uniformly, or with ``cdf`` (the cumulative sum of
    one non-negative weight per candidate, see :func:`popularity_cdf`) in proportion to the weights.
    A user whose positives cover nearly all candidates may keep a colliding draw after ``max_rounds`` rounds.
    Each round's draws are tested against the users' own rows (``_in_rows``, a binary search per draw), and a
    weighted draw finds its candidate as ``np.searchsorted(cdf, u * cdf[-1], side="right")`` does, through a
    guide table (``_search_cdf``: the same answers, a few times faster for random draws); ``guide`` is
    ``cdf_guide(cdf)``, made here unless a caller that draws with the same ``cdf`` at every step passes it;
    ``bits``, ``positive_bits`` of the rows (made once by a caller that draws at every step), answers the
    membership test instead of the search, with the same draws."""
    users = np.ascontiguousarray(users, dtype=np.int64)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int64)

    if cdf is not None and guide is None:
        guide = cdf_guide(cdf)

    def draw(n: int) -> np.ndarray:
        if cdf is None:
            return candidates[rng.integers(0, len(candidates), n)]
        assert guide is not None
        at = np.empty(n, dtype=np.int64)
        _search_cdf(rng.random(n) * cdf[-1], cdf, guide, (len(guide) - 1) / cdf[-1], at)
        return candidates[np.minimum(at, len(candidates) - 1)]

    out = draw(len(users)).astype(np.int64)
    todo = np.arange(len(users))
    for _ in range(max_rounds):
        clash = np.empty(len(todo), dtype=np.bool_)
        if bits is None:
            _in_rows(users[todo], out[todo], indptr, indices, clash)
        else:
            _in_bits(users[todo], out[todo], bits, clash)
        todo = todo[clash]
        if len(todo) == 0:
            break
        out[todo] = draw(len(todo))
    return out


class NegativeDraws:
    """:func:`sample_negatives` for a model that draws at every step from the same rows, candidates and weights:
    the weights' guide table and the positives' bit table made once. ``candidates`` None: nothing to draw from
    (steps used for their gradients alone)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, candidates: np.ndarray | None,
                 cdf: np.ndarray | None = None) -> None:
        self.indptr, self.indices, self.candidates, self.cdf = indptr, indices, candidates, cdf
        self.guide = None if cdf is None else cdf_guide(cdf)
        self.bits = None if candidates is None else positive_bits(indptr, indices, int(candidates.max()) + 1)

    def draw(self, users: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """(len(users), k) int64: k negatives for each user."""
        assert self.candidates is not None
        return sample_negatives(np.repeat(users, k), self.indptr, self.indices, self.candidates, rng, cdf=self.cdf,
                                guide=self.guide, bits=self.bits).reshape(len(users), k)


@njit(cache=True, nogil=True)
def _in_rows(users, items, indptr, indices, out):
    """out[r] = whether items[r] is in the sorted CSR row of users[r] (False for a user past the rows)."""
    n_rows = len(indptr) - 1
    for r in range(len(users)):
        u, x = users[r], items[r]
        if u < 0 or u >= n_rows:
            out[r] = False
            continue
        out[r] = _is_positive(indices, indptr[u], indptr[u + 1], x)


@njit(cache=True, nogil=True)
def _in_bits(users, items, bits, out):
    """out[r] = whether items[r]'s bit is set in the row of users[r] of ``positive_bits``' table (False past
    the table)."""
    n_rows, row_bytes = bits.shape
    for r in range(len(users)):
        u, x = users[r], items[r]
        if u < 0 or u >= n_rows or x < 0 or (x >> 3) >= row_bytes:
            out[r] = False
            continue
        out[r] = (bits[u, x >> 3] >> (x & 7)) & 1 == 1


GUIDE_BUCKETS = 4  # guide entries per cdf entry


def cdf_guide(cdf: np.ndarray) -> np.ndarray:
    """For ``_search_cdf``: ``guide[b] = searchsorted(cdf, b * cdf[-1] / n, side="right")`` for the n =
    ``GUIDE_BUCKETS * len(cdf)`` buckets, and a last entry ``len(cdf)``."""
    n = max(len(cdf) * GUIDE_BUCKETS, 1)
    edges = np.arange(n, dtype=np.float64) * (cdf[-1] / n)
    return np.r_[np.searchsorted(cdf, edges, side="right"), len(cdf)].astype(np.int64)


@njit(cache=True, nogil=True)
def _search_cdf(x, cdf, guide, scale, out):
    """out[r] = np.searchsorted(cdf, x[r], side="right") for 0 <= x[r] <= cdf[-1]: the bucket of x[r] in
    ``guide`` (``scale`` buckets per unit of weight) bounds the answer, searched between the neighbouring
    buckets' bounds (so a rounding of x[r] * scale by one bucket either way cannot matter)."""
    n_buckets = len(guide) - 1
    for r in range(len(x)):
        value = x[r]
        bucket = min(max(int(value * scale), 0), n_buckets - 1)
        lo = guide[max(bucket - 1, 0)]
        hi = guide[min(bucket + 2, n_buckets)]
        while lo < hi:
            mid = (lo + hi) >> 1
            if cdf[mid] <= value:
                lo = mid + 1
            else:
                hi = mid
        out[r] = lo


def popularity_cdf(data: Interactions, candidates: np.ndarray, power: float) -> np.ndarray | None:
    """Cumulative sampling weights ``count_i ** power`` over ``candidates`` (count_i = the item's train
    ratings, >= 1 for a candidate), for :func:`sample_negatives`; None (uniform) when ``power == 0``.
    word2vec's 0.75 draws popular items more often than uniform, less than in proportion to their counts."""
    if power == 0:
        return None
    counts = np.bincount(data.item, minlength=data.n_items)[candidates].astype(np.float64)
    return np.cumsum(np.maximum(counts, 1.0) ** power)


def warp_rank_weight(n_items: int, tries: int) -> float:
    """WARP's weight for a violator found at draw ``tries`` among ``n_items`` candidates: log of the
    estimated rank of the positive, floor((n_items − 1) / tries), at least 1 (so the weight is >= 0)."""
    return math.log(max(1.0, math.floor((n_items - 1) / tries)))



# ---------------------------------------------------------------- models


class BPR(EmbeddingModel, UserItemModel):
    """Bayesian Personalised Ranking on user/item factors and an item bias (see the module docstring).

    Defaults chosen on a validation slice of MovieLens latest-small's train part (benchmark in the report).
    """

    name = "bpr"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.005, 0.2), "epochs": IntRange(10, 200, log=True),
                                               "dim": OneOf((32, 64, 128)), "l2": LogUniform(1e-6, 1e-2)}
    kind = "implicit"
    warp = False
    distributable = True  # the trainer's distributed=true (itemvec.distributed)
    reads_share = True  # distributed: each rank reads only its own rows of the train ratings (RankShare)

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        negatives: AtLeastOneNegative = 1  # negatives drawn (and updates made) per positive and epoch
        l2: Regularisation = 1e-4
        optimizer: Optimizer = "adagrad"  # per-coordinate Adagrad, or "sgd"
        init_std: InitStd = 0.1
        # batch_size: positives per trainer step
        # threads: 0: all cores
        train: TrainSettings = TrainSettings(lr=0.05, schedule="cosine", min_lr_fraction=1e-2, epochs=60,
                                             batch_size=16384)


    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        rng = np.random.default_rng(c.train.seed)
        self.user_vectors_ = np.zeros((data.n_users, c.dim), dtype=np.float32)
        self.item_vectors_ = (rng.standard_normal((data.n_items, c.dim)) * c.init_std).astype(np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self._acc_u = np.zeros_like(self.user_vectors_)
        self._acc_i = np.zeros_like(self.item_vectors_)
        self._acc_b = np.zeros_like(self.item_bias_)
        positive = data.positive
        indptr, indices = positive_rows(data)
        candidates = np.flatnonzero(self.known_items_).astype(np.int64)
        any_positive = data.share.summed(int(positive.sum())) > 0 if data.share.held else positive.any()
        if any_positive and len(candidates) > 1:  # every rank decides alike
            tables = {"user_factors": self.user_vectors_, "item_factors": self.item_vectors_,
                      "item_bias": self.item_bias_, "acc_u": self._acc_u, "acc_i": self._acc_i, "acc_b": self._acc_b}
            trainable = RankingSteps(tables, data.user[positive].astype(np.int64), data.item[positive].astype(np.int64),
                                     indptr, indices, candidates, c, warp=self.warp)
            if data.share.held:  # a distributed rank's own ratings; its users' other positives are on other ranks
                trainable.own_rows = int(positive.sum())
            self.history_ = trainer.train(self, trainable)

    def embedding(self) -> Embedding:
        return Embedding(rule="dot", item_vectors=self.item_vectors_, item_bias=self.item_bias_,
                         user_vectors=self.user_vectors_)

    def _state(self):
        return {"user_vectors_": self.user_vectors_, "item_vectors_": self.item_vectors_,
                "item_bias_": self.item_bias_}

    def _set_state(self, state):
        self.user_vectors_ = state["user_vectors_"].astype(np.float32)
        self.item_vectors_ = state["item_vectors_"].astype(np.float32)
        self.item_bias_ = state["item_bias_"].astype(np.float32)


class WARP(BPR):
    """WSABIE / LightFM's WARP loss on the same factors as ``bpr`` (see the module docstring).

    Defaults chosen on a validation slice of MovieLens latest-small's train part, like ``bpr``'s.
    """

    name = "warp"
    warp = True

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        max_sampled: Annotated[int, Range(1, 1000)] = 10  # LightFM's default
        margin: Margin = 1.0
        l2: Regularisation = 1e-3
        optimizer: Optimizer = "adagrad"
        init_std: InitStd = 0.01

        # lr: LightFM's default Adagrad rate, 0.05, overfits ml-latest-small (validation NDCG -0.02)
        train: TrainSettings = TrainSettings(lr=0.02, schedule="cosine", min_lr_fraction=1e-2, epochs=60,
                                             batch_size=16384)


class ALSUsers(EmbeddingModel, UserItemModel):
    """Weighted implicit-feedback ALS (Hu, Koren & Volinsky 2008) on the train positives: preference 1 and
    confidence 1 + alpha on a positive, 0 and 1 elsewhere; user and item factors solved in turn by a few
    conjugate-gradient steps per row (``models.factor.als_half_step``), one iteration per trainer epoch.
    score(u, i) = x_u · y_i."""

    name = "als"
    search_space: ClassVar[dict[str, Space]] = ALS_SPACE
    kind = "implicit"

    @dataclass(frozen=True)
    class Config(ALSSettings.Config):
        pass

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        rng = np.random.default_rng(c.train.seed)
        self.user_vectors_ = (rng.standard_normal((data.n_users, c.dim)) * c.init_std).astype(np.float32)
        self.item_vectors_ = (rng.standard_normal((data.n_items, c.dim)) * c.init_std).astype(np.float32)
        matrix = data.matrix(positives_only=True)
        matrix.sort_indices()
        if matrix.nnz:
            steps = ALSSteps(self.user_vectors_, self.item_vectors_, matrix, c.alpha, c.reg, c.cg_steps, c.reg_scaling == "count")
            self.history_ = trainer.train(self, steps)

    def embedding(self) -> Embedding:
        return Embedding(rule="dot", item_vectors=self.item_vectors_, user_vectors=self.user_vectors_)

    def _state(self):
        return {"user_vectors_": self.user_vectors_, "item_vectors_": self.item_vectors_}

    def _set_state(self, state):
        self.user_vectors_ = state["user_vectors_"].astype(np.float32)
        self.item_vectors_ = state["item_vectors_"].astype(np.float32)
