"""Implicit-feedback factor models on item pairs: ``bpr`` and ``als``, the two `implicit` models that led
itemvec's own on real Amazon pairs (issue 15), trained on the train graph read as a symmetric item × item
matrix: an item's partners play a user's positives.

Both keep two tables, a query vector q and a candidate vector c per item, and score a pair symmetrically as
the other two-role models do: ½ (q_a · c_b + q_b · c_a) (+ b_a + b_b for ``bpr``'s item bias).

- ``bpr``: BPR-Opt (Rendle et al. 2009) with the user-item ``bpr``'s kernel (``models.factor.ranking_step``):
  for a train pair (a, b) in either orientation, maximise ln σ(q_a·c_b + b_b − q_a·c_j − b_j) for items j drawn
  among the items with a train pair that are not partners of a, ∝ degree^0.75 (``negative_power``); L2 on the
  rows touched. The draw, the L2 (0.02) and the epochs (60) were chosen on the validation parts of Magazine
  Subscriptions, Gift Cards and the demo catalogue (issue 15): uniform draws, L2 1e-4 and 30 epochs gave AUC
  degree-matched 0.785 / 0.927 (Magazine / demo), these settings 0.893 / 0.956 (uniform AUC 0.894 → 0.893 /
  0.939 → 0.933). Draws ∝ degree (`implicit`'s BPR: a negative is the column of a random stored entry) lowered
  the uniform AUC more (Magazine 0.894 → 0.876 at 30 epochs).
- ``als``: weighted implicit-feedback ALS (Hu, Koren & Volinsky 2008) on W, the train pairs' summed weights in
  both directions: preference 1 on a pair, 0 elsewhere, confidence 1 + alpha · w on a pair and 1 elsewhere;
  Q and C solved in turn by a few conjugate-gradient steps per row (``models.factor.als_half_step``). Every
  iteration is one trainer epoch (the validation curve, early stopping and checkpoints follow); it has no
  learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from itemvec.config import AtLeastOneNegative, Dim, InitStd, Optimizer, Power, Regularisation
from itemvec.models.base import ItemModel, TrainingData
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.models.factor import ALS_SPACE, ALSSettings, ALSSteps, RankingSteps
from itemvec.train import Trainer, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space


def pair_matrix(data: TrainingData, weighted: bool) -> sp.csr_matrix:
    """The train graph as a symmetric (n_items, n_items) CSR matrix with sorted rows: the summed pair weights
    (``weighted``) or 1 on every pair."""
    n = data.n_items
    a, b = data.train.item_a.astype(np.int64), data.train.item_b.astype(np.int64)
    weight = data.train.weight.astype(np.float64) if weighted else np.ones(len(a))
    keep = a != b
    a, b, weight = a[keep], b[keep], weight[keep]
    matrix = sp.csr_matrix((np.r_[weight, weight], (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    matrix.sum_duplicates()
    matrix.sort_indices()
    if not weighted:
        matrix.data[:] = 1.0
    return matrix


class _TwoRoleState:
    """Scoring and persistence of a two-role item model (query and candidate tables, maybe an item bias)."""

    item_vectors_: np.ndarray
    context_vectors_: np.ndarray
    item_bias_: np.ndarray | None

    def embedding(self) -> Embedding:
        return Embedding(rule="two-role", item_vectors=self.item_vectors_, context_vectors=self.context_vectors_,
                         item_bias=self.item_bias_)

    def _state(self) -> dict[str, np.ndarray]:
        state = {"item_vectors_": self.item_vectors_, "context_vectors_": self.context_vectors_}
        if self.item_bias_ is not None:
            state["item_bias_"] = self.item_bias_
        return state

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.item_vectors_ = state["item_vectors_"]
        self.context_vectors_ = state["context_vectors_"]
        self.item_bias_ = state.get("item_bias_")


class PairBPR(_TwoRoleState, EmbeddingModel, ItemModel):
    """BPR on the train graph with two roles and an item bias (see the module docstring)."""

    name = "bpr"
    distributable = True  # the trainer's distributed=true (itemvec.distributed)
    reads_share = True  # distributed: each rank reads only its own rows of the train pairs (RankShare)
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.01, 0.2), "epochs": IntRange(10, 100, log=True),
                                               "dim": OneOf((32, 64, 128)), "l2": LogUniform(1e-4, 0.1),
                                               "negatives": IntRange(1, 5), "negative_power": OneOf((0.0, 0.5, 0.75, 1.0))}
    item_bias_: np.ndarray

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        negatives: AtLeastOneNegative = 1  # negatives drawn (and updates made) per pair orientation and epoch
        negative_power: Power = 0.75  # negatives drawn ∝ (train degree) ** power; 0: uniformly, 1: as implicit's BPR
        l2: Regularisation = 0.02
        optimizer: Optimizer = "adagrad"  # per-coordinate Adagrad, or "sgd"
        init_std: InitStd = 0.1
        # batch_size: pair orientations per trainer step
        train: TrainSettings = TrainSettings(lr=0.05, schedule="cosine", min_lr_fraction=1e-2, epochs=60,
                                             batch_size=65536)

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        c = self.config
        adjacency = pair_matrix(data, weighted=False)
        # A distributed rank holds only its own pairs: which items are known, and how often each is drawn as
        # a negative, come from every rank's (a pair's own positives, left out of its negatives, are the rank's).
        degree = data.degree() if data.share.held else None
        self.known_items_ = np.diff(adjacency.indptr) > 0 if degree is None else degree > 0
        rng = np.random.default_rng(c.train.seed)
        n = data.n_items
        # As the user-item bpr: the query side (a user's place) starts at zero, the candidates small and random.
        self.item_vectors_ = np.zeros((n, c.dim), dtype=np.float32)
        self.context_vectors_ = (rng.standard_normal((n, c.dim)) * c.init_std).astype(np.float32)
        self.item_bias_ = np.zeros(n, dtype=np.float32)
        self._acc_q = np.zeros_like(self.item_vectors_)
        self._acc_c = np.zeros_like(self.context_vectors_)
        self._acc_b = np.zeros_like(self.item_bias_)
        candidates = np.flatnonzero(self.known_items_).astype(np.int64)
        if (adjacency.nnz if degree is None else degree.sum()) and len(candidates) > 1:  # every rank decides alike
            tables = {"query": self.item_vectors_, "candidate": self.context_vectors_, "bias": self.item_bias_,
                      "acc_q": self._acc_q, "acc_c": self._acc_c, "acc_b": self._acc_b}
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(adjacency.indptr))  # each pair, both orientations
            indptr, indices = adjacency.indptr.astype(np.int64), adjacency.indices.astype(np.int64)
            trainable = RankingSteps(tables, rows, indices, indptr, indices, candidates, c,
                                     counts=None if degree is None else degree[candidates])
            if data.share.held:
                trainable.own_rows = len(rows)
            self.history_ = trainer.train(self, trainable)


class PairALS(_TwoRoleState, EmbeddingModel, ItemModel):
    """Weighted implicit-feedback ALS on the train graph with two roles (see the module docstring)."""

    name = "als"
    search_space: ClassVar[dict[str, Space]] = ALS_SPACE

    @dataclass(frozen=True)
    class Config(ALSSettings.Config):
        weighted: bool = True  # the pairs' summed weights as w; False: w = 1 on every pair

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        c = self.config
        matrix = pair_matrix(data, weighted=c.weighted)
        self.known_items_ = np.diff(matrix.indptr) > 0
        rng = np.random.default_rng(c.train.seed)
        n = data.n_items
        self.item_vectors_ = (rng.standard_normal((n, c.dim)) * c.init_std).astype(np.float32)
        self.context_vectors_ = (rng.standard_normal((n, c.dim)) * c.init_std).astype(np.float32)
        self.item_bias_ = None
        if matrix.nnz:
            steps = ALSSteps(self.item_vectors_, self.context_vectors_, matrix, c.alpha, c.reg, c.cg_steps, c.reg_scaling == "count")
            self.history_ = trainer.train(self, steps)
