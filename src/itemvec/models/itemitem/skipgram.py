"""Skip-gram with negative sampling on item sequences, and EGES (skip-gram with side information).

- `skipgram`: word2vec's SGNS (Mikolov et al. 2013) on random walks over the train graph (or on session
  sequences): separate centre and context tables, a reduced random window, frequent-item subsampling,
  negatives drawn ∝ count^0.75 through an alias table, SGD with word2vec's linearly decaying rate.
- `node2vec`: the same fed by second-order walks with return parameter ``p`` and in-out parameter ``q``
  (Grover & Leskovec 2016); with p = q = 1 it is DeepWalk.
- `eges`: "Billion-scale Commodity Embedding for E-commerce Recommendation in Alibaba" (Wang et al. 2018):
  the centre item is represented by H_v = Σ_f softmax(a_v)_f · W_f[value of field f for v], over the item id
  and its side information (brand, leaf category, price bucket, or a session data set's attributes), with
  the per-item field weights a_v learned; the context side uses the item id. An item unseen in training but
  with side information gets H from its side fields alone (uniform weights): its cold-start vector.

One numba kernel trains all three: the centre representation is a weighted sum over "fields", and plain
skip-gram is the one-field case (the item id, weight 1). Every walk/sequence block draws from its own
generator, so one thread gives the same vectors for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import numpy as np
from numba import njit, prange

from itemvec.config import (
    Dim,
    Negatives,
    Power,
    Range,
    Score,
    Source,
    Subsample,
    WalkBias,
    WalkLength,
    WalksPerNode,
    Window,
)
from itemvec.errors import ConfigError
from itemvec.models.base import ItemModel, TrainingData
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.models.kernels import lane_rate, lanes, sigmoid
from itemvec.rng import alias_draw, alias_table, splitmix_next, to_uniform
from itemvec.train import SequenceSteps, Trainer, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space

N_BLOCKS = 64  # fixed work split per step (one random stream per block): one thread gives the same numbers
VECTOR_ROWS = 1 << 16  # items whose vectors are composed at once (SkipGram._compute_vectors)


@njit(inline="always")
def _subsampled(tokens, start, end, keep_prob, state, kept):
    """word2vec's subsampling of frequent items: ``tokens[start:end]`` (-1 skipped), each kept with its
    ``keep_prob``, written into ``kept``; returns (state, how many were kept)."""
    n_kept = 0
    for pos in range(start, end):
        item = tokens[pos]
        if item < 0:
            continue
        state, z = splitmix_next(state)
        if to_uniform(z) < keep_prob[item]:
            kept[n_kept] = item
            n_kept += 1
    return state, n_kept


@njit(parallel=True, fastmath=True, cache=True)
def _sgns_step(emb_in, emb_out, field_rows, field_logits, tokens, offsets, order, keep_prob, prob, alias,
               window, negatives, lr0, lr1, learn_weights, seed, n_lanes):
    """One step over the sequences ``order`` (indices into ``offsets``), its blocks run in ``n_lanes`` lanes
    (``kernels.lanes``). Returns (summed loss, pairs)."""
    n_seq = len(order)
    dim = emb_in.shape[1]
    n_fields = field_rows.shape[1]
    block = (n_seq + N_BLOCKS - 1) // N_BLOCKS
    losses = np.zeros(N_BLOCKS)
    counts = np.zeros(N_BLOCKS, dtype=np.int64)
    max_len = 0
    for s in range(len(offsets) - 1):
        max_len = max(max_len, offsets[s + 1] - offsets[s])
    single = n_fields == 1 and not learn_weights  # plain skip-gram: the centre row itself, as word2vec
    clock = np.zeros((n_lanes, 8), dtype=np.int64)
    for lane in prange(n_lanes):
        done = 0
        others = 0
        for blk in range(lane, N_BLOCKS, n_lanes):
            state = np.uint64(seed) + np.uint64(blk) * np.uint64(0x632BE59BD9B4E019)
            kept = np.empty(max_len, dtype=np.int64)
            h = np.empty(dim, dtype=np.float32)
            neu = np.empty(dim, dtype=np.float32)
            weights = np.empty(n_fields)
            targets = np.empty(negatives + 1, dtype=np.int64)
            loss = 0.0
            count = 0
            for si in range(blk * block, min(n_seq, (blk + 1) * block)):
                lr, others = lane_rate(clock, lane, done, others, lr0, lr1, n_seq)  # kernels.lanes
                done += 1
                seq = order[si]
                # Subsample frequent items (word2vec), then slide the window over what is kept.
                state, n_kept = _subsampled(tokens, offsets[seq], offsets[seq + 1], keep_prob, state, kept)
                for i in range(n_kept):
                    centre = kept[i]
                    state, z = splitmix_next(state)
                    reduced = 1 + np.int64((z >> np.uint64(11)) % np.uint64(window))
                    # The centre's representation: softmax-weighted sum of its field embeddings.
                    total = 0.0
                    for f in range(n_fields):
                        if field_rows[centre, f] >= 0:
                            weights[f] = np.exp(field_logits[centre, f])
                            total += weights[f]
                        else:
                            weights[f] = 0.0
                    for f in range(n_fields):
                        weights[f] /= total
                    for j in range(max(0, i - reduced), min(n_kept, i + reduced + 1)):
                        if j == i:
                            continue
                        context = kept[j]
                        # Read the centre's representation afresh for every pair, as word2vec reads syn0.
                        if single:
                            row = field_rows[centre, 0]
                            for d in range(dim):
                                h[d] = emb_in[row, d]
                        else:
                            for d in range(dim):
                                h[d] = 0.0
                            for f in range(n_fields):
                                if weights[f] > 0.0:
                                    row = field_rows[centre, f]
                                    wf = np.float32(weights[f])
                                    for d in range(dim):
                                        h[d] += wf * emb_in[row, d]
                        for d in range(dim):
                            neu[d] = 0.0
                        # Draw the negatives first, so their table lookups overlap instead of waiting in turn.
                        targets[0] = context
                        n_targets = 1
                        for _ in range(negatives):
                            state, target = alias_draw(state, prob, alias)
                            if target != context:
                                targets[n_targets] = target
                                n_targets += 1
                        for k in range(n_targets):
                            target = targets[k]
                            label = 1.0 if k == 0 else 0.0
                            score = np.float32(0.0)
                            for d in range(dim):
                                score += h[d] * emb_out[target, d]
                            p = sigmoid(np.float64(score))
                            loss -= np.log(max(p, 1e-12)) if label > 0.5 else np.log(max(1.0 - p, 1e-12))
                            g = np.float32((label - p) * lr)
                            for d in range(dim):
                                neu[d] += g * emb_out[target, d]
                                emb_out[target, d] += g * h[d]
                        count += 1
                        # Back to the fields: each embedding moves by its weight, the weights by their fit.
                        if single:
                            row = field_rows[centre, 0]
                            for d in range(dim):
                                emb_in[row, d] += neu[d]
                            continue
                        neu_h = 0.0
                        if learn_weights:
                            for d in range(dim):
                                neu_h += neu[d] * h[d]
                        for f in range(n_fields):
                            if weights[f] > 0.0:
                                row = field_rows[centre, f]
                                wf = np.float32(weights[f])
                                neu_e = 0.0
                                for d in range(dim):
                                    neu_e += neu[d] * emb_in[row, d]
                                    emb_in[row, d] += wf * neu[d]
                                if learn_weights:
                                    field_logits[centre, f] += weights[f] * (neu_e - neu_h)
            losses[blk] = loss
            counts[blk] = count
    return losses.sum(), counts.sum()


@njit(parallel=True, fastmath=True, cache=True)
def _sgns_window_step(emb_in, emb_out, tokens, offsets, order, keep_prob, prob, alias, window, negatives,
                      lr0, lr1, seed, n_lanes):  # pragma: no cover (numba)
    """Plain skip-gram's step with the negatives shared by a window (Ji et al. 2016, "Parallelizing Word2Vec
    in Shared and Distributed Memory"): for every kept position i, its window's items are the inputs (rows of
    ``emb_in``, as word2vec.c's syn0 of the context words) and the item at i with ``negatives`` draws are the
    outputs (rows of ``emb_out``), every input scored against every output: the same pairs and, per pair,
    the same one positive and ``negatives`` negatives as ``_sgns_step``, but the draws are made once per
    window and each output row is read and written once per window instead of once per pair (word2vec's
    cost is those random rows of the output table, not the arithmetic). The window's updates are summed and
    applied at its end. Returns (summed loss, pairs)."""
    n_seq = len(order)
    dim = emb_in.shape[1]
    block = (n_seq + N_BLOCKS - 1) // N_BLOCKS
    losses = np.zeros(N_BLOCKS)
    counts = np.zeros(N_BLOCKS, dtype=np.int64)
    max_len = 0
    for s in range(len(offsets) - 1):
        max_len = max(max_len, offsets[s + 1] - offsets[s])
    clock = np.zeros((n_lanes, 8), dtype=np.int64)
    for lane in prange(n_lanes):
        done = 0
        others = 0
        for blk in range(lane, N_BLOCKS, n_lanes):
            state = np.uint64(seed) + np.uint64(blk) * np.uint64(0x632BE59BD9B4E019)
            kept = np.empty(max_len, dtype=np.int64)
            inputs = np.empty(2 * window, dtype=np.int64)
            neu = np.empty((2 * window, dim), dtype=np.float32)
            grad = np.empty(dim, dtype=np.float32)
            targets = np.empty(negatives + 1, dtype=np.int64)
            loss = 0.0
            count = 0
            for si in range(blk * block, min(n_seq, (blk + 1) * block)):
                lr, others = lane_rate(clock, lane, done, others, lr0, lr1, n_seq)  # kernels.lanes
                done += 1
                seq = order[si]
                state, n_kept = _subsampled(tokens, offsets[seq], offsets[seq + 1], keep_prob, state, kept)
                for i in range(n_kept):
                    state, z = splitmix_next(state)
                    reduced = 1 + np.int64((z >> np.uint64(11)) % np.uint64(window))
                    m = 0
                    for j in range(max(0, i - reduced), min(n_kept, i + reduced + 1)):
                        if j != i:
                            inputs[m] = kept[j]
                            m += 1
                    if m == 0:
                        continue
                    target = kept[i]
                    targets[0] = target
                    n_targets = 1
                    for _ in range(negatives):
                        state, drawn = alias_draw(state, prob, alias)
                        if drawn != target:
                            targets[n_targets] = drawn
                            n_targets += 1
                    for a in range(m):
                        for d in range(dim):
                            neu[a, d] = 0.0
                    for k in range(n_targets):
                        out = targets[k]
                        label = 1.0 if k == 0 else 0.0
                        for d in range(dim):
                            grad[d] = 0.0
                        for a in range(m):
                            row = inputs[a]
                            score = np.float32(0.0)
                            for d in range(dim):
                                score += emb_in[row, d] * emb_out[out, d]
                            p = sigmoid(np.float64(score))
                            loss -= np.log(max(p, 1e-12)) if k == 0 else np.log(max(1.0 - p, 1e-12))
                            g = np.float32((label - p) * lr)
                            for d in range(dim):
                                neu[a, d] += g * emb_out[out, d]
                                grad[d] += g * emb_in[row, d]
                        for d in range(dim):
                            emb_out[out, d] += grad[d]
                    for a in range(m):
                        row = inputs[a]
                        for d in range(dim):
                            emb_in[row, d] += neu[a, d]
                    count += m
            losses[blk] = loss
            counts[blk] = count
    return losses.sum(), counts.sum()


class _SequenceTrainable(SequenceSteps):
    """Skip-gram steps for the shared trainer: a shuffled pass over the sequences, ``batch`` per step."""

    def __init__(self, model, tokens, offsets, keep_prob, prob, alias):
        super().__init__(tokens, offsets, model.config.train.batch_size)
        self.model = model
        self.keep_prob, self.prob, self.alias = keep_prob, prob, alias

    def train_step(self, step, lr_start, lr_end, seed):
        m, c = self.model, self.model.config
        if m.field_rows_.shape[1] == 1 and not m.learn_weights and c.shared_negatives:
            loss, pairs = _sgns_window_step(m.field_vectors_, m.context_vectors_, self.tokens, self.offsets,
                                            self.chunk(step), self.keep_prob, self.prob, self.alias, c.window,
                                            c.negatives, lr_start, lr_end, seed, lanes(N_BLOCKS))
            return float(loss), int(pairs)
        loss, pairs = _sgns_step(m.field_vectors_, m.context_vectors_, m.field_rows_, m.field_logits_, self.tokens,
                                 self.offsets, self.chunk(step), self.keep_prob, self.prob, self.alias, c.window,
                                 c.negatives, lr_start, lr_end, m.learn_weights, seed, lanes(N_BLOCKS))
        return float(loss), int(pairs)

    def state(self):
        m = self.model
        return {"input": m.field_vectors_, "output": m.context_vectors_, "logits": m.field_logits_}

    def set_state(self, state):
        m = self.model
        m.field_vectors_[:] = state["input"]
        m.context_vectors_[:] = state["output"]
        m.field_logits_[:] = state["logits"]


def sequences_for(data: TrainingData, config, n_items: int, *, seed: int, threads: int
                  ) -> tuple[np.ndarray, np.ndarray, dict]:
    """Flat int32 tokens and int64 offsets of the training sequences: random walks over the train graph, or
    the data set's session sequences (cut at held-out pairs, so no test pair is ever a window neighbour).
    A rank of a distributed run holds the whole graph but only its own rows of the sequences
    (``RankShare.walk_rows``): walk i is the single process's walk i, whichever rank makes it."""
    share = data.share
    if config.source == "sessions":
        sessions = data.sessions
        if sessions is None:
            raise ConfigError("source=sessions needs a prepared session DATA_DIR")
        lo, hi = share.walk_rows(len(sessions))
        offsets = sessions.offsets[lo:hi + 1].astype(np.int64)
        tokens = sessions.tokens[offsets[0]:offsets[-1]].astype(np.int32)
        return tokens, offsets - offsets[0], {"sequences": len(sessions)}
    from itemvec.graph.csr import CSRGraph
    from itemvec.graph.walks import random_walks

    graph = CSRGraph.from_pairs(data.train.item_a, data.train.item_b, data.train.weight, n_nodes=n_items)
    total = config.walks_per_node * int((graph.degree > 0).sum())  # random_walks starts at every linked node
    rows = share.walk_rows(total) if share.world > 1 else None
    walks = random_walks(graph, walks_per_node=config.walks_per_node, walk_length=config.walk_length,
                         p=config.p, q=config.q, weighted=config.weighted, seed=seed, threads=threads, rows=rows)
    offsets = np.arange(0, walks.size + 1, walks.shape[1], dtype=np.int64)
    del graph  # its CSR arrays, before the caller allocates the tables
    # The walks are int32 already: a flat view, not a copy (800 MB at Books size, while the walks were alive).
    return np.ascontiguousarray(walks, dtype=np.int32).reshape(-1), offsets, {"walks": total}


class SkipGram(EmbeddingModel, ItemModel):
    """Skip-gram with negative sampling on random walks (see the module docstring)."""

    name = "skipgram"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.01, 0.1), "epochs": IntRange(1, 5),
                                               "dim": OneOf((64, 128)), "window": IntRange(2, 10),
                                               "walks_per_node": IntRange(2, 10), "negatives": IntRange(2, 10)}
    learn_weights = False
    distributable = True  # the trainer's distributed=true (itemvec.distributed)
    _vectors: np.ndarray | None  # item_vectors() computed once; None (or unset) until then

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 128
        window: Window = 5
        negatives: Negatives = 5
        alpha: Power = 0.75  # negatives ∝ count^alpha
        subsample: Subsample = 1e-3  # word2vec's `sample`; 0 disables
        source: Source = "walks"  # "walks" (over the train graph) or "sessions" (a session DATA_DIR)
        walks_per_node: WalksPerNode = 5  # measured: as good as 10 at half the cost (BENCHMARKS.md); 1 collapses
        walk_length: WalkLength = 40
        p: WalkBias = 1.0
        q: WalkBias = 1.0
        weighted: bool = True
        # "dot": ½(in_a·out_b + in_b·out_a), the model's own pair probability; "cosine" of centre vectors (as
        # gensim's most_similar) throws away the norms, and with them the popularity every star-shaped real
        # catalogue is made of: 0.54 against 0.79 AUC on Magazine Subscriptions (BENCHMARKS.md).
        score: Score = "dot"
        # Plain skip-gram's negatives drawn once per window and shared by its pairs (``_sgns_window_step``);
        # false: drawn per pair, as word2vec and gensim do (``_sgns_step``). EGES always draws per pair.
        shared_negatives: bool = True
        # lr: measured: 0.025 (word2vec's) learns too slowly in one epoch on short walk budgets
        # batch_size: sequences per trainer step
        train: TrainSettings = TrainSettings(lr=0.05, schedule="linear", min_lr_fraction=1e-3, epochs=1,
                                             batch_size=20000)

    # ---------------------------------------------------------------- fields (one for plain skip-gram)

    def _fields(self, data: TrainingData, n_items: int) -> tuple[np.ndarray, int, list[str]]:
        """(n_items, n_fields) rows into the input table, -1 where absent; plain skip-gram: the item id."""
        return np.arange(n_items, dtype=np.int64)[:, None], n_items, ["item"]

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        tokens, offsets, info = sequences_for(data, self.config, data.n_items, seed=self.config.train.seed,
                                              threads=self.config.train.threads)
        self.sequence_info_ = info
        self.fit_sequences(data, tokens, offsets, trainer)

    def fit_sequences(self, data: TrainingData, tokens: np.ndarray, offsets: np.ndarray,
                      trainer: Trainer | None = None) -> SkipGram:
        """Train on given sequences: ``tokens`` (flat int32, -1 ignored) split at ``offsets`` (int64)."""
        c = self.config
        n = data.n_items
        counts = data.share.count(tokens[tokens >= 0], n).astype(np.float64)  # over every rank's sequences
        self.trained_items_ = counts > 0
        self.field_rows_, n_rows, self.field_names_ = self._fields(data, n)
        rng = np.random.default_rng(c.train.seed)
        # gensim 4's initialisation: U(-1/dim, 1/dim)
        self.field_vectors_ = ((rng.random((n_rows, c.dim)) * 2.0 - 1.0) / c.dim).astype(np.float32)
        self.context_vectors_ = np.zeros((n, c.dim), dtype=np.float32)
        self.field_logits_ = np.zeros(self.field_rows_.shape, dtype=np.float32)
        total = counts.sum()
        if c.subsample > 0:
            threshold = c.subsample * total
            keep = (np.sqrt(counts / threshold) + 1) * threshold / np.maximum(counts, 1)
            keep_prob = np.minimum(keep, 1.0)
        else:
            keep_prob = np.ones(n)
        prob, alias = alias_table(np.power(counts, c.alpha))
        trainable = _SequenceTrainable(self, tokens, offsets, keep_prob, prob, alias)
        if data.share.world > 1:  # a rank made only its own sequences (sequences_for)
            trainable.own_rows = len(offsets) - 1
        self.known_items_ = self._known(self.trained_items_)
        self._vectors = None
        self.history_ = (trainer or Trainer()).train(self, trainable)
        self._vectors = None
        return self

    def _known(self, trained: np.ndarray) -> np.ndarray:
        return trained

    # ---------------------------------------------------------------- vectors and scores

    def item_vectors(self) -> np.ndarray:
        """(n_items, dim) float32 centre vectors H (for EGES: side-information only for untrained items)."""
        if getattr(self, "_vectors", None) is None:
            self._vectors = self._compute_vectors()
        assert self._vectors is not None
        return self._vectors

    def _compute_vectors(self) -> np.ndarray:
        rows_all, logits_all = self.field_rows_, self.field_logits_
        n, n_fields = rows_all.shape
        vectors = np.zeros((n, self.field_vectors_.shape[1]), dtype=np.float32)
        # VECTOR_ROWS items at a time (each row's weights are its own): the float64 weighted rows of a whole Books-
        # size table were 5 GB of temporaries, the training process's peak.
        for start in range(0, n, VECTOR_ROWS):
            stop = min(start + VECTOR_ROWS, n)
            rows, logits = rows_all[start:stop], logits_all[start:stop].astype(np.float64)
            present = rows >= 0
            if n_fields > 1:
                # An item absent from training has an untrained id vector and untrained weights: side fields only,
                # weighted equally (its cold-start vector).
                untrained = ~self.trained_items_[start:stop]
                present[untrained, 0] = False
                logits = np.where(untrained[:, None], 0.0, logits)
            weights = np.where(present, np.exp(logits - logits.max(axis=1, keepdims=True)), 0.0)
            sums = weights.sum(axis=1, keepdims=True)
            weights = np.divide(weights, sums, out=np.zeros_like(weights), where=sums > 0)
            block = vectors[start:stop]
            for f in range(n_fields):
                ok = present[:, f]
                block[ok] += (weights[ok, f:f + 1] * self.field_vectors_[rows[ok, f]]).astype(np.float32)
        return vectors

    def field_weights(self, items) -> np.ndarray:
        """(len(items), n_fields) softmax weights over each item's present fields (rows sum to 1)."""
        rows = self.field_rows_[np.asarray(items)]
        logits = self.field_logits_[np.asarray(items)].astype(np.float64)
        weights = np.where(rows >= 0, np.exp(logits - logits.max(axis=1, keepdims=True)), 0.0)
        return weights / weights.sum(axis=1, keepdims=True)

    @property
    def item_vectors_(self) -> np.ndarray:
        return self.item_vectors()

    def embedding(self) -> Embedding:
        return Embedding(rule="cosine" if self.config.score == "cosine" else "two-role",
                         item_vectors=self.item_vectors(), context_vectors=self.context_vectors_)

    # ---------------------------------------------------------------- persistence

    def _state(self):
        return {"field_vectors_": self.field_vectors_, "context_vectors_": self.context_vectors_,
                "field_rows_": self.field_rows_, "field_logits_": self.field_logits_, "trained_items_": self.trained_items_}

    def _set_state(self, state):
        self.field_vectors_ = state["field_vectors_"]
        self.context_vectors_ = state["context_vectors_"]
        self.field_rows_ = state["field_rows_"]
        self.field_logits_ = state["field_logits_"]
        self.trained_items_ = state["trained_items_"].astype(bool)
        self._vectors = None


class Node2Vec(SkipGram):
    """Skip-gram on second-order node2vec walks (p = q = 1 is DeepWalk)."""

    name = "node2vec"

    @dataclass(frozen=True)
    class Config(SkipGram.Config):
        p: WalkBias = 1.0
        q: WalkBias = 0.5


def _price_buckets(prices: np.ndarray, n_buckets: int) -> np.ndarray:
    """Quantile bucket of each price (0..n_buckets-1), -1 where missing."""
    out = np.full(len(prices), -1, dtype=np.int64)
    ok = np.isfinite(prices)
    if ok.sum() >= n_buckets:
        edges = np.quantile(prices[ok], np.linspace(0, 1, n_buckets + 1)[1:-1])
        out[ok] = np.searchsorted(edges, prices[ok], side="right")
    return out


class EGES(SkipGram):
    """Skip-gram with side information, weighted per item (see the module docstring)."""

    name = "eges"
    learn_weights = True

    @dataclass(frozen=True)
    class Config(SkipGram.Config):
        price_buckets: Annotated[int, Range(1, 1000)] = 10

    def _fields(self, data: TrainingData, n_items: int):
        side = data.side_information
        if side is None:
            return super()._fields(data, n_items)
        rows = [np.arange(n_items, dtype=np.int64)]
        offset = n_items
        for name, values in zip(side.names, side.values, strict=True):
            codes = _price_buckets(values, self.config.price_buckets) if name == "price" else values
            rows.append(np.where(codes >= 0, codes + offset, -1))
            offset += int(codes.max()) + 1 if (codes >= 0).any() else 0
        return np.stack(rows, axis=1), offset, ["item", *side.names]

    def _known(self, trained: np.ndarray) -> np.ndarray:
        # Cold start: an untrained item with at least one side field has a vector.
        return trained | (self.field_rows_[:, 1:] >= 0).any(axis=1)
