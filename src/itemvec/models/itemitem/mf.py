"""Matrix factorisation on item pairs: the reference study's implementations 1 (`mf`) and 2 (`mf-bias`).

score(a, b) = q_a · c_b (+ b_a + b_b + g for `mf-bias`), read as sigmoid(score) = P(pair).
- ``roles = 1``: one table (q = c), as in the reference study.
- ``roles = 2``: a "query" and a "candidate" vector per item, scored symmetrically ½(q_a·c_b + q_b·c_a)
  (pairs are unordered); measured better on real Amazon pairs (DESIGN.md).
- ``labels = "binary"``: BCE with label 1 for train pairs and 0 for sampled negatives; ``"continuous"``: MSE
  between sigmoid(score) and the pair's summed weight divided by the largest weight (so both lie in [0, 1]).
- ``negatives`` per positive, for the left item, drawn with probability ∝ train degree^``alpha``
  (1.0 in the reference study, 0.75 in word2vec) through an alias table (O(1) per draw).
- L2 (``l2``) on the embeddings a step touches, not the whole table.

Training is one fused numba kernel per trainer step: it samples the negatives, scores, and applies sparse
row updates (SGD or row-wise Adagrad), Hogwild across cores as word2vec does. Nothing of size
(examples × dim) is ever materialised, which is where a PyTorch loop spends its time.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from numba import njit, prange

from itemvec.config import (
    Choices,
    Dim,
    InitStd,
    Negatives,
    Optimizer,
    Power,
    Range,
    Regularisation,
    Source,
    WalkBias,
    WalkLength,
    WalksPerNode,
    Window,
)
from itemvec.models.base import ItemModel, TrainingData
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.models.kernels import lane_rate, lanes, sigmoid
from itemvec.rng import alias_draw, alias_table  # noqa: F401 (alias_table re-exported)
from itemvec.train import SequenceSteps, Shard, Trainer, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space

N_BLOCKS = 16  # fixed work split per step (one random stream per block): one thread gives the same numbers


@njit(inline="always")
def _update_row(table, acc, row, grad, lr, adagrad):
    """``adagrad``: 0 for SGD, else the weight of this step's squared gradients in the accumulator (1; the
    world size in a distributed run, ``train.Shard.accumulate``)."""
    dim = table.shape[1]
    if adagrad:
        g2 = 0.0
        for j in range(dim):
            g2 += grad[j] * grad[j]
        acc[row] += adagrad * g2 / dim
        scale = lr / np.sqrt(acc[row] + 1e-8)
    else:
        scale = lr
    for j in range(dim):
        table[row, j] -= scale * grad[j]


@njit(parallel=True, fastmath=True, cache=True)
def _mf_step(query, cand, bias, global_bias, acc_q, acc_c, acc_b, left, right, target, prob, alias,
             negatives, lr0, lr1, l2, mse, use_bias, two_roles, adagrad, seed, n_lanes):
    """One trainer step over ``left/right/target`` (one chunk of positives), its blocks run in ``n_lanes``
    lanes (``kernels.lanes``). Returns the summed loss."""
    n = len(left)
    dim = query.shape[1]
    block = (n + N_BLOCKS - 1) // N_BLOCKS
    losses = np.zeros(N_BLOCKS)
    clock = np.zeros((n_lanes, 8), dtype=np.int64)
    for lane in prange(n_lanes):
        done = 0
        others = 0
        for blk in range(lane, N_BLOCKS, n_lanes):
            state = np.uint64(seed) + np.uint64(blk) * np.uint64(0x632BE59BD9B4E019)
            g_qa = np.empty(dim)
            g_ca = np.empty(dim)
            g_qb = np.empty(dim)
            g_cb = np.empty(dim)
            loss = 0.0
            for i in range(blk * block, min(n, (blk + 1) * block)):
                lr, others = lane_rate(clock, lane, done, others, lr0, lr1, n)  # kernels.lanes
                done += 1
                a = left[i]
                for k in range(negatives + 1):
                    if k == 0:
                        b = right[i]
                        y = target[i]
                    else:
                        state, b = alias_draw(state, prob, alias)
                        if b == a:
                            continue
                        y = 0.0
                    s = 0.0
                    if two_roles:
                        for d in range(dim):
                            s += query[a, d] * cand[b, d] + query[b, d] * cand[a, d]
                        s *= 0.5
                    else:
                        for d in range(dim):
                            s += query[a, d] * query[b, d]
                    if use_bias:
                        s += bias[a] + bias[b] + global_bias[0]
                    p = sigmoid(s)
                    if mse:
                        err = p - y
                        loss += err * err
                        g = 2.0 * err * p * (1.0 - p)
                    else:
                        loss -= np.log(max(p, 1e-12)) if y > 0.5 else np.log(max(1.0 - p, 1e-12))
                        g = p - y
                    if two_roles:
                        for d in range(dim):
                            g_qa[d] = 0.5 * g * cand[b, d] + l2 * query[a, d]
                            g_cb[d] = 0.5 * g * query[a, d] + l2 * cand[b, d]
                            g_qb[d] = 0.5 * g * cand[a, d] + l2 * query[b, d]
                            g_ca[d] = 0.5 * g * query[b, d] + l2 * cand[a, d]
                        _update_row(query, acc_q, a, g_qa, lr, adagrad)
                        _update_row(cand, acc_c, b, g_cb, lr, adagrad)
                        _update_row(query, acc_q, b, g_qb, lr, adagrad)
                        _update_row(cand, acc_c, a, g_ca, lr, adagrad)
                    else:
                        for d in range(dim):
                            g_qa[d] = g * query[b, d] + l2 * query[a, d]
                            g_qb[d] = g * query[a, d] + l2 * query[b, d]
                        _update_row(query, acc_q, a, g_qa, lr, adagrad)
                        _update_row(query, acc_q, b, g_qb, lr, adagrad)
                    if use_bias:
                        for row in (a, b):
                            gb = g + l2 * bias[row]
                            if adagrad:
                                acc_b[row] += adagrad * gb * gb
                                bias[row] -= lr * gb / np.sqrt(acc_b[row] + 1e-8)
                            else:
                                bias[row] -= lr * gb
                        global_bias[0] -= lr * g * 0.01  # shared by every example: a small rate keeps it stable
            losses[blk] = loss
    return losses.sum()


class _MFTrainable(Shard):
    """The MF family's steps for the shared trainer: a shuffled, randomly oriented pass over train pairs."""

    def __init__(self, model: MF, a: np.ndarray, b: np.ndarray, target: np.ndarray, prob, alias) -> None:
        self.model = model
        self.a, self.b, self.target = a, b, target
        self.prob, self.alias = prob, alias
        self.batch = max(1, model.config.train.batch_size)
        self.order = np.arange(len(a))
        self.left, self.right = a, b

    def steps_per_epoch(self) -> int:
        return self.n_steps(len(self.a))

    def begin_epoch(self, epoch: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.order = rng.permutation(len(self.a))
        # Pairs are unordered: a fair coin picks which item is the "left" one whose negatives are drawn.
        flip = rng.random(len(self.a)) < 0.5
        a, b = self.a[self.order], self.b[self.order]
        self.left = np.where(flip, b, a)
        self.right = np.where(flip, a, b)
        self.epoch_target = self.target[self.order]

    def train_step(self, step: int, lr_start: float, lr_end: float, seed: int) -> tuple[float, int]:
        m, c = self.model, self.model.config
        sl: slice | np.ndarray = self.span(step, len(self.left))
        if self.shard[1] > 1 and self.total_rows is None:  # a distributed run: this rank's share of the step
            sl = self.share(np.arange(len(self.left))[sl])
        loss = _mf_step(m.item_vectors_, m.context_vectors_, m.item_bias_, m.global_bias_, m._acc_q, m._acc_c, m._acc_b,
                        self.left[sl], self.right[sl], self.epoch_target[sl], self.prob, self.alias,
                        c.negatives, lr_start, lr_end, c.l2, c.labels == "continuous", m.use_bias, c.roles == 2,
                        self.accumulate(c.optimizer == "adagrad"), seed, lanes(N_BLOCKS))
        n = len(self.left[sl])
        return float(loss), n * (c.negatives + 1)

    def state(self) -> dict[str, np.ndarray]:
        m = self.model
        return {"query": m.item_vectors_, "candidate": m.context_vectors_, "bias": m.item_bias_,
                "global_bias": m.global_bias_,
                "acc_q": m._acc_q, "acc_c": m._acc_c, "acc_b": m._acc_b}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        m = self.model
        m.item_vectors_[:] = state["query"]
        if m.config.roles == 2:
            m.context_vectors_[:] = state["candidate"]
        m.item_bias_[:] = state["bias"]
        m.global_bias_[:] = state["global_bias"]
        m._acc_q[:] = state["acc_q"]
        m._acc_c[:] = state["acc_c"]
        m._acc_b[:] = state["acc_b"]


class MF(EmbeddingModel, ItemModel):
    """Matrix factorisation of the item-pair matrix (see the module docstring)."""

    name = "mf"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.02, 0.5), "epochs": IntRange(2, 40, log=True),
                                               "dim": OneOf((32, 64, 128)), "l2": LogUniform(1e-7, 1e-3),
                                               "negatives": IntRange(1, 10)}
    use_bias = False
    distributable = True  # the trainer's distributed=true (itemvec.distributed)
    reads_share = True  # distributed: each rank reads only its own rows of the train pairs (RankShare)

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        roles: Annotated[int, Range(1, 2)] = 2
        labels: Annotated[str, Choices(("binary", "continuous"))] = "binary"  # BCE, or MSE on the pair weight
        negatives: Negatives = 5
        alpha: Power = 0.0  # negative sampling ∝ degree^alpha; 0 = uniform measured best on AUC (BENCHMARKS.md)
        l2: Regularisation = 1e-5
        optimizer: Optimizer = "adagrad"  # "adagrad" (row-wise) or "sgd"
        init_std: InitStd = 0.1
        # lr: initial rate for row-wise Adagrad (measured best; the reference used Adam at 0.01)
        # batch_size: positives per trainer step
        # eval_every: steps; 0: at the end of each epoch
        # threads: 0: all cores
        train: TrainSettings = TrainSettings(lr=0.15, schedule="cosine-restarts", min_lr_fraction=1e-3, epochs=5,
                                             batch_size=65536)

    def _init_tables(self, n_items: int) -> None:
        c = self.config
        rng = np.random.default_rng(c.train.seed)
        # Query vectors start small and random, candidate vectors at zero (as word2vec's output vectors): every
        # pair starts at score 0, and an item never trained stays neutral instead of scoring at random.
        self.item_vectors_ = (rng.standard_normal((n_items, c.dim)) * c.init_std).astype(np.float32)
        if c.roles == 2:
            self.context_vectors_ = np.zeros((n_items, c.dim), dtype=np.float32)
        else:
            self.context_vectors_ = self.item_vectors_  # the same array: one table
        self.item_bias_ = np.zeros(n_items, dtype=np.float32)
        self.global_bias_ = np.zeros(1, dtype=np.float32)
        self._acc_q = np.zeros(n_items, dtype=np.float32)
        self._acc_c = np.zeros(n_items, dtype=np.float32)
        self._acc_b = np.zeros(n_items, dtype=np.float32)

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        c = self.config
        degree = data.degree()
        self.known_items_ = degree > 0
        self._init_tables(data.n_items)
        train = data.train
        if c.labels == "binary":
            target = np.ones(len(train), dtype=np.float32)
        else:  # the largest weight of every rank's rows, in a distributed run
            largest = data.share.largest(float(train.weight.max(initial=0.0)))
            target = (train.weight / max(largest, 1e-12)).astype(np.float32)
        prob, alias = alias_table(np.power(degree.astype(np.float64), c.alpha))
        trainable = _MFTrainable(self, train.item_a.astype(np.int64), train.item_b.astype(np.int64), target,
                                 prob, alias)
        if data.share.held:
            trainable.own_rows = len(train)
        self.history_ = trainer.train(self, trainable)

    # ---------------------------------------------------------------- scoring

    def embedding(self) -> Embedding:
        return Embedding(rule="two-role" if self.config.roles == 2 else "dot", item_vectors=self.item_vectors_,
                         context_vectors=self.context_vectors_ if self.config.roles == 2 else None,
                         item_bias=self.item_bias_ if self.use_bias else None,
                         global_bias=float(self.global_bias_[0]) if self.use_bias else 0.0)

    def probability(self, scores):
        return 1.0 / (1.0 + np.exp(-np.clip(scores, -50, 50)))

    # ---------------------------------------------------------------- persistence

    def _state(self):
        state = {"item_vectors_": self.item_vectors_, "item_bias_": self.item_bias_,
                 "global_bias_": self.global_bias_}
        if self.config.roles == 2:
            state["context_vectors_"] = self.context_vectors_
        return state

    def _set_state(self, state):
        self.item_vectors_ = state["item_vectors_"]
        self.context_vectors_ = state.get("context_vectors_", self.item_vectors_)
        self.item_bias_ = state["item_bias_"]
        self.global_bias_ = state["global_bias_"]


class MFBias(MF):
    """`mf` plus a per-item bias and a global bias: score = q_a·c_b + b_a + b_b + g."""

    name = "mf-bias"
    use_bias = True


@njit(cache=True)
def window_pairs(tokens, offsets, order, window):
    """(centre, context) pairs within ``window`` positions in the sequences ``order``, both directions."""
    total = 0
    for s in order:
        length = offsets[s + 1] - offsets[s]
        for d in range(1, min(window, length - 1) + 1):
            total += 2 * (length - d)
    left = np.empty(total, dtype=np.int64)
    right = np.empty(total, dtype=np.int64)
    n = 0
    for s in order:
        start, end = offsets[s], offsets[s + 1]
        for i in range(start, end):
            if tokens[i] < 0:
                continue
            for j in range(i + 1, min(end, i + window + 1)):
                if tokens[j] < 0 or tokens[j] == tokens[i]:
                    continue
                left[n] = tokens[i]
                right[n] = tokens[j]
                left[n + 1] = tokens[j]
                right[n + 1] = tokens[i]
                n += 2
    return left[:n], right[:n]


class _WindowTrainable(SequenceSteps):
    """MF steps over (centre, context) pairs taken from walk windows, ``train.batch_size`` walks per step."""

    def __init__(self, model, tokens, offsets, prob, alias):
        super().__init__(tokens, offsets, model.config.train.batch_size)
        self.model = model
        self.prob, self.alias = prob, alias

    state = _MFTrainable.state
    set_state = _MFTrainable.set_state

    def train_step(self, step, lr_start, lr_end, seed):
        m, c = self.model, self.model.config
        left, right = window_pairs(self.tokens, self.offsets, self.chunk(step), c.window)
        shuffle = np.random.default_rng(seed).permutation(len(left))
        left, right = left[shuffle], right[shuffle]
        target = np.ones(len(left), dtype=np.float32)
        loss = _mf_step(m.item_vectors_, m.context_vectors_, m.item_bias_, m.global_bias_, m._acc_q, m._acc_c, m._acc_b,
                        left, right, target, self.prob, self.alias, c.negatives, lr_start, lr_end, c.l2, False,
                        m.use_bias, c.roles == 2, self.accumulate(c.optimizer == "adagrad"), seed, lanes(N_BLOCKS))
        return float(loss), len(left) * (c.negatives + 1)


class MFSeq(MFBias):
    """`mf-bias` trained on (centre, context) pairs from random-walk windows (or session windows), with
    negatives, instead of on the pairs themselves: the reference study's implementation 7."""

    name = "mf-seq"
    reads_share = False  # distributed: every rank reads the whole train graph and walks its share of it
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.02, 0.5), "epochs": IntRange(1, 5),
                                               "dim": OneOf((32, 64, 128)), "window": IntRange(1, 5),
                                               "walks_per_node": IntRange(2, 10), "negatives": IntRange(1, 10)}

    @dataclass(frozen=True)
    class Config(MF.Config):
        window: Window = 2
        source: Source = "walks"
        walks_per_node: WalksPerNode = 3
        walk_length: WalkLength = 20
        p: WalkBias = 1.0
        q: WalkBias = 1.0
        weighted: bool = True
        train: TrainSettings = dataclasses.replace(MF.Config.train, epochs=1, batch_size=20000)

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        from itemvec.models.itemitem.skipgram import sequences_for

        c = self.config
        tokens, offsets, self.sequence_info_ = sequences_for(data, c, data.n_items, seed=c.train.seed,
                                                             threads=c.train.threads)
        counts = data.share.count(tokens[tokens >= 0], data.n_items)  # over every rank's sequences
        self.known_items_ = counts > 0
        self._init_tables(data.n_items)
        prob, alias = alias_table(np.power(counts.astype(np.float64), c.alpha))
        trainable = _WindowTrainable(self, tokens.astype(np.int64), offsets, prob, alias)
        if data.share.world > 1:  # a rank made only its own sequences (sequences_for)
            trainable.own_rows = len(offsets) - 1
        self.history_ = trainer.train(self, trainable)
