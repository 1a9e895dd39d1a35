"""Triplet models for implicit feedback, after Olivier Grisel's "Triplet loss for implicit feedback neural
recommender systems" notebook (Keras, MovieLens 100K): a model scores (user, item) pairs and is trained on
(user, positive item, negative item) triplets with the margin (hinge) loss

    loss = max(0, margin − score(u, i) + score(u, j)),

i a train positive of u and j an item drawn uniformly among the items with a train rating that are not among
u's train positives (``implicit.sample_negatives``). Unlike the notebook, ``negatives`` items are drawn per
positive and the hinge is taken against the highest-scoring of them (``hardest``; as WARP, this pushes on the
top of the list): on a validation slice of MovieLens latest-small, 10 negatives lifted the deep model's
per-user AUC from 0.900 (popularity: 0.904) to 0.917, and the cosine model's NDCG@10 from 0.083 to 0.118.

- ``triplet``: user and item embeddings, score = cosine similarity of the two (the notebook's first model).
- ``deep-triplet``: an MLP over the concatenated user and item embeddings gives the score (the notebook's
  ``DeepTripletModel``). The notebook ends the MLP on a ReLU; a linear output is used here, since a ReLU
  output that goes to zero for every pair stops learning. A per-item bias is added to the MLP's output, so
  the MLP need not spend itself on item popularity.

``triplet`` is bilinear enough for a fused numba kernel (``triplet_kernel.triplet_step``: the cosine's
gradients by hand, sparse SGD or Adagrad updates, Hogwild across cores) and imports no torch: on MovieLens
latest-small it trains in about a tenth of the torch model's time it replaced, at the same or better
validation figures. ``deep-triplet`` is a network trained with Adam (the notebook's optimiser) through the
shared ``Trainer`` loop, in large steps whose first layer is computed once per item, and scored by a fused numba
kernel (``triplet_kernel.one_layer_scores``). Its usual network (one hidden layer, no dropout, no product
feature: the defaults) trains without torch (``deep_triplet_kernel``: the same loss, negatives, minibatch and
dense Adam as the torch module, the gradients by hand, held to torch's autograd by the tests); on MovieLens
latest-small its ``train s`` fell from about 10 s to about 5 s (no torch import; a step of about 20 ms instead of
39 ms). Given torch's initial weights it reaches the torch module's validation figures (seed 0, per-user AUC /
NDCG@10 / R@10: 0.9292 / 0.0834 / 0.1342 against 0.9282 / 0.0826 / 0.1343); its own initial weights are drawn by
numpy (the same distributions). Any other network is the torch module (``TorchRankingModel``: steps, optimiser
state for resume, save/load); both keep the same arrays under the same names, so a run saved by either loads in
the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import numpy as np

from itemvec.config import (
    AtLeastOneNegative,
    Dim,
    Dropout,
    InitStd,
    Margin,
    Optimizer,
    Power,
    Range,
    Regularisation,
)
from itemvec.data.types import Interactions
from itemvec.errors import ConfigError
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.models.factor import PositiveSteps
from itemvec.models.useritem.base import TorchSteps, UserItemModel, set_torch_state, torch_state
from itemvec.models.useritem.implicit import NegativeDraws, popularity_cdf, positive_rows
from itemvec.parallel import one_blas_thread
from itemvec.train import RowSteps, Trainer, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space, Uniform

SCORE_CHUNK = 1 << 20  # pairs scored per forward pass at query time


def margin_loss(positive, negative, margin: float):
    """(n,) hinge max(0, margin − positive + negative), the triplet loss (a pure function of scores)."""
    import torch

    return torch.clamp(margin - positive + negative, min=0.0)


def bpr_loss(positive, negative):
    """(n,) −ln σ(positive − negative), BPR-Opt's loss."""
    import torch.nn.functional as F

    return -F.logsigmoid(positive - negative)


def dropout(x, p: float, generator):
    """Inverted dropout drawn from ``generator`` (not the global torch generator, so steps replay exactly)."""
    import torch

    if p <= 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator) >= p
    return x * keep / (1.0 - p)


class _TorchSteps(RowSteps, TorchSteps):
    """Steps for the shared trainer over the train positives of a ``TorchRankingModel``: a shuffled pass each
    epoch, ``batch_size`` positives per step, ``negatives`` negatives per positive (one where the config has no
    such setting) drawn from the step's seed, uniformly or by ``cdf`` (see ``sample_negatives``). The Adam
    optimiser and its checkpointed state are ``TorchSteps``'."""

    def __init__(self, model: TorchRankingModel, users, items, indptr, indices, candidates, cdf=None) -> None:
        import torch

        RowSteps.__init__(self, len(users), model.config.train.batch_size)
        TorchSteps.__init__(self, model.net_, model.config.train.lr)
        self.model = model
        self.users, self.items = users, items
        self.draws = NegativeDraws(indptr, indices, candidates, cdf)
        self.negatives = getattr(model.config, "negatives", 1)
        self.generator = torch.Generator()

    def loss(self, step: int, seed: int):
        import torch

        chunk = self.chunk(step)
        if len(chunk) == 0:
            return None, 0
        rng = np.random.default_rng(seed)
        users = self.users[chunk]
        negatives = self.draws.draw(users, self.negatives, rng)
        self.generator.manual_seed(seed)
        loss = self.model._triplet_loss(torch.from_numpy(users), torch.from_numpy(self.items[chunk]),
                                        torch.from_numpy(negatives), self.generator)
        return loss.mean(), len(chunk)


class TorchRankingModel(UserItemModel):
    """Shared part of the torch implicit models: training on triplets through ``Trainer``, scoring in
    chunks, save/load of the module. Subclasses build ``net_`` (``_build``), score pairs (``_pair_scores``)
    and give the per-triplet loss (``_triplet_loss``)."""

    kind = "implicit"
    net_: Any  # the torch module _build makes (its parts are set on it as attributes)

    # ---------------------------------------------------------------- subclass hooks

    def _build(self, n_users: int, n_items: int, generator) -> None:
        raise NotImplementedError

    def _pair_scores(self, users, items, generator=None):
        """(n,) torch scores of the pairs; ``generator`` is given in training (for dropout)."""
        raise NotImplementedError

    def _negative_scores(self, users, negatives, generator):
        """(n, k) scores of each user's k negatives ``negatives`` (n, k)."""
        n, k = negatives.shape
        return self._pair_scores(users.repeat_interleave(k), negatives.reshape(-1), generator).reshape(n, k)

    def _triplet_loss(self, users, positives, negatives, generator):
        """(n,) loss of each positive against its negatives (n, k): the hinge against the highest-scoring
        negative (``hardest``, as in WARP, and the default with one negative) or summed over all k."""
        c = self.config
        pos = self._pair_scores(users, positives, generator)
        neg = self._negative_scores(users, negatives, generator)
        if getattr(c, "hardest", True):
            loss = margin_loss(pos, neg.max(1).values, c.margin)
        else:
            loss = margin_loss(pos[:, None], neg, c.margin).sum(1)
        if c.l2 > 0:
            loss = loss + c.l2 * self._l2_terms(users, positives, negatives)
        return loss

    def _l2_terms(self, users, positives, negatives):
        net = self.net_
        return ((net.user(users) ** 2).sum(1) + (net.item(positives) ** 2).sum(1)
                + (net.item(negatives) ** 2).sum(-1).mean(1))

    def _prepare(self, data: Interactions) -> None:
        """Anything the model keeps from the data besides the known users and items (FM: features)."""

    # ---------------------------------------------------------------- training

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        import torch

        c = self.config
        self._mark_known(data)
        self._prepare(data)
        generator = torch.Generator().manual_seed(c.train.seed)
        self._build(data.n_users, data.n_items, generator)
        positive = data.positive
        indptr, indices = positive_rows(data)
        candidates = np.flatnonzero(self.known_items_).astype(np.int64)
        if positive.any() and len(candidates) > 1:
            cdf = popularity_cdf(data, candidates, getattr(c, "negative_power", 0.0))
            steps = _TorchSteps(self, data.user[positive].astype(np.int64), data.item[positive].astype(np.int64),
                                indptr, indices, candidates, cdf)
            self.history_ = trainer.train(self, steps)
        self.net_.eval()

    # ---------------------------------------------------------------- scoring

    def _predict(self, users, items):
        import torch

        out = np.empty(len(users), dtype=np.float64)
        with torch.no_grad():
            for s in range(0, len(users), SCORE_CHUNK):
                out[s:s + SCORE_CHUNK] = self._pair_scores(torch.from_numpy(users[s:s + SCORE_CHUNK]),
                                                           torch.from_numpy(items[s:s + SCORE_CHUNK])).numpy()
        return out

    def _score_users(self, users):
        import torch

        n_items = self.n_items
        out = np.empty((len(users), n_items), dtype=np.float32)
        rows = max(1, SCORE_CHUNK // max(n_items, 1))
        all_items = torch.arange(n_items)
        with torch.no_grad():
            for s in range(0, len(users), rows):
                u = torch.from_numpy(users[s:s + rows])
                pair_users = u.repeat_interleave(n_items)
                pair_items = all_items.repeat(len(u))
                out[s:s + rows] = self._pair_scores(pair_users, pair_items).reshape(len(u), n_items).numpy()
        return out

    # ---------------------------------------------------------------- persistence

    def _state(self):
        return torch_state(self.net_)

    def _set_state(self, state):
        import torch

        self._build(len(self.known_users_), len(self.known_items_), torch.Generator().manual_seed(0))
        set_torch_state(self.net_, state)
        self.net_.eval()


def _embedding(n: int, dim: int, std: float, generator):
    import torch

    table = torch.nn.Embedding(n, dim)
    with torch.no_grad():
        table.weight.copy_(torch.randn(n, dim, generator=generator) * std)
    return table


def _linear(n_in: int, n_out: int, generator):
    """A dense layer with Glorot-uniform weights (Keras' default, as in the notebook) and zero bias."""
    import torch

    layer = torch.nn.Linear(n_in, n_out)
    bound = (6.0 / (n_in + n_out)) ** 0.5
    with torch.no_grad():
        layer.weight.copy_((torch.rand(n_out, n_in, generator=generator) * 2 - 1) * bound)
        layer.bias.zero_()
    return layer


# deep-triplet's parameters in torch's order (``nn.Module.parameters()``: the optimiser state's indices)
DEEP_PARAMETERS = ("user.weight", "item.weight", "hidden.0.weight", "hidden.0.bias", "out.weight", "out.bias",
                   "bias.weight")


class _DeepTripletSteps(RowSteps):
    """``deep-triplet``'s steps without torch (``deep_triplet_kernel``), for its usual network: as
    ``_TorchSteps`` (a shuffled pass each epoch, ``batch_size`` positives a step, the same negatives from the
    step's seed, the mean loss, Adam at the mean of the step's start and end rates) on ``weights``, the
    network's arrays under ``torch_state``'s names. Every array becomes a view of one flat buffer (and its
    gradient and Adam moments of three more), so a step's Adam is one pass over all of them. The Adam state is
    checkpointed under ``TorchSteps``' names (``opt.<index>.step`` / ``exp_avg`` / ``exp_avg_sq``)."""

    def __init__(self, weights: dict[str, np.ndarray], users, items, indptr, indices, candidates, cdf, config) -> None:
        super().__init__(len(users), config.train.batch_size)
        self.config = config
        self.users, self.items = users, items
        self.draws = NegativeDraws(indptr, indices, candidates, cdf)
        self.names = [f"net.{name}" for name in DEEP_PARAMETERS if f"net.{name}" in weights]
        sizes = [weights[name].size for name in self.names]
        offsets = np.r_[0, np.cumsum(sizes)]
        self.flat = np.concatenate([weights[name].ravel() for name in self.names]).astype(np.float32)
        self.grad, self.exp_avg, self.exp_avg_sq = (np.zeros_like(self.flat) for _ in range(3))

        def views(buffer):
            return {name: buffer[a:b].reshape(weights[name].shape)
                    for name, a, b in zip(self.names, offsets[:-1], offsets[1:])}

        for name, view in views(self.flat).items():  # the model's own dict: it keeps the trained arrays
            weights[name] = view
        self.weights, self.grads = weights, views(self.grad)
        self.moments = {name: (m, v) for (name, m), v in zip(views(self.exp_avg).items(),
                                                              views(self.exp_avg_sq).values())}
        self.steps_taken = 0  # Adam's t (every parameter gets a gradient every step)

    def _gradients(self, users, positives, negatives):
        """(loss summed over the rows, {name: gradient of the mean loss}) of one step's rows; the gradients
        are views of ``self.grad``, overwritten by the next call."""
        from itemvec.models.useritem.deep_triplet_kernel import (
            scatter_rows,
            triplet_backward,
            triplet_forward,
        )

        c, w, grads = self.config, self.weights, self.grads
        n, k = negatives.shape
        user_f, item_f, first = w["net.user.weight"], w["net.item.weight"], w["net.hidden.0.weight"]
        user_weight = np.ascontiguousarray(first[:, :c.user_dim])
        item_weight = np.ascontiguousarray(first[:, c.user_dim:])
        out_weight = w["net.out.weight"][0]
        if c.item_bias:
            item_bias, grad_item_bias = w["net.bias.weight"][:, 0], grads["net.bias.weight"][:, 0]
        else:
            item_bias, grad_item_bias = np.zeros(len(item_f), np.float32), np.zeros(len(item_f), np.float32)
        # The user half of the first layer, a = W_u U + b1: for every user once when there are fewer users than
        # rows (a row then reads its user's), else for each row; its gradient likewise (summed per user).
        per_user = len(user_f) <= n
        user_rows = users if per_user else np.arange(n)
        user_table = user_f if per_user else user_f[users]
        user_part = user_table @ user_weight.T
        user_part += w["net.hidden.0.bias"]
        item_part = item_f @ item_weight.T  # (items, hidden): every item once
        coef = np.empty((n, k + 1), np.float32)
        chosen = np.empty(n, np.int64)
        loss = triplet_forward(user_part, item_part, out_weight, np.float32(w["net.out.bias"][0]), item_bias,
                               user_rows, positives, negatives, c.margin, c.hardest, coef, chosen)
        self.grad.fill(0.0)
        grad_user_part = np.zeros_like(user_part)
        grad_item_part = np.zeros_like(item_part)
        touched = np.zeros(len(item_f), np.uint8)
        grads["net.out.bias"][0] = triplet_backward(user_part, item_part, out_weight, user_rows, positives, negatives,
                                                    coef, np.float32(1.0 / n), grad_user_part, grad_item_part,
                                                    grads["net.out.weight"][0], grad_item_bias, touched)
        # The l2 rows: the user, the positive and the hardest negative (or each of the k, weighted 1 / k).
        decayed = negatives[np.arange(n), chosen] if c.hardest else negatives.reshape(-1)
        share = 1.0 if c.hardest else 1.0 / k
        none = np.zeros((0, 0), np.float32)
        decay = np.float32(2.0 * c.l2 / n)
        grad_user = grads["net.user.weight"]
        if per_user:
            np.matmul(grad_user_part, user_weight, out=grad_user)  # (users, user_dim)
            squares = scatter_rows(grad_user, users, none, user_f, decay)
        else:
            squares = scatter_rows(grad_user, users, grad_user_part @ user_weight, user_f, decay)
        # ∂V = ∂c W_i and ∂W_i = ∂cᵀ V: only the items of violated triplets have a ∂c row (a third of them at
        # MovieLens size); when they are fewer than half, the two products run on their rows alone.
        grad_item = grads["net.item.weight"]
        rows = np.flatnonzero(touched)
        sparse = 2 * len(rows) < len(item_f)
        if sparse:
            grad_item_rows = grad_item_part[rows]
            grad_item[rows] = grad_item_rows @ item_weight
        else:
            np.matmul(grad_item_part, item_weight, out=grad_item)  # (items, dim)
        squares += scatter_rows(grad_item, positives, none, item_f, decay)
        squares += share * scatter_rows(grad_item, decayed, none, item_f, np.float32(decay * share))
        loss += c.l2 * squares
        grad_first = grads["net.hidden.0.weight"]
        grad_first[:, :c.user_dim] = grad_user_part.T @ user_table
        grad_first[:, c.user_dim:] = grad_item_rows.T @ item_f[rows] if sparse else grad_item_part.T @ item_f
        grad_user_part.sum(0, out=grads["net.hidden.0.bias"])
        return loss, grads

    def train_step(self, step: int, lr_start: float, lr_end: float, seed: int) -> tuple[float, int]:
        from itemvec.models.useritem.base import Adam
        from itemvec.models.useritem.deep_triplet_kernel import adam

        chunk = self.chunk(step)
        if len(chunk) == 0:
            return 0.0, 0
        k = self.config.negatives
        rng = np.random.default_rng(seed)
        users = self.users[chunk]
        negatives = self.draws.draw(users, k, rng)
        loss, _ = self._gradients(users, self.items[chunk], negatives)
        self.steps_taken += 1
        t = self.steps_taken
        beta1, beta2 = Adam.betas
        lr = 0.5 * (lr_start + lr_end)
        adam(self.flat, self.grad, self.exp_avg, self.exp_avg_sq, lr / (1 - beta1 ** t), beta1, beta2,
             (1 - beta2 ** t) ** 0.5, Adam.eps)
        return float(loss), len(chunk)

    def state(self) -> dict[str, np.ndarray]:
        state = {name: value.copy() for name, value in self.weights.items()}
        if self.steps_taken:
            for index, name in enumerate(DEEP_PARAMETERS):
                if f"net.{name}" not in self.moments:
                    continue
                exp_avg, exp_avg_sq = self.moments[f"net.{name}"]
                state[f"opt.{index}.step"] = np.array(self.steps_taken, np.float32)
                state[f"opt.{index}.exp_avg"] = exp_avg.copy()
                state[f"opt.{index}.exp_avg_sq"] = exp_avg_sq.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for name, target in self.weights.items():
            target[:] = state[name]
        for index, name in enumerate(DEEP_PARAMETERS):  # (without optimiser state, as TorchSteps: left as is)
            if f"net.{name}" in self.moments and f"opt.{index}.step" in state:
                exp_avg, exp_avg_sq = self.moments[f"net.{name}"]
                exp_avg[:] = state[f"opt.{index}.exp_avg"]
                exp_avg_sq[:] = state[f"opt.{index}.exp_avg_sq"]
                self.steps_taken = int(state[f"opt.{index}.step"])


class _TripletSteps(PositiveSteps):
    """``triplet``'s steps for the trainer over the train positives, each step one call of the fused kernel
    ``triplet_kernel.triplet_step`` on the model's tables and Adagrad accumulators; uniform negatives."""

    prob, alias = np.zeros(0), np.zeros(0, dtype=np.int32)  # (an empty alias table: uniform draws)

    def _step(self, rows, columns, lr_start, lr_end, seed):
        from itemvec.models.kernels import lanes
        from itemvec.models.useritem.triplet_kernel import N_BLOCKS, triplet_step

        c, t = self.config, self.tables
        return triplet_step(t["user_vectors"], t["item_vectors"], t["acc_u"], t["acc_i"], rows, columns, self.indptr,
                            self.indices, self.candidates, self.prob, self.alias, lr_start, lr_end, c.l2, c.negatives,
                            c.hardest, c.margin, self.accumulate(c.optimizer == "adagrad"), seed, lanes(N_BLOCKS))


class Triplet(EmbeddingModel, UserItemModel):
    """score(u, i) = cos(user_u, item_i), margin loss on (user, positive, negative) triplets, trained by the
    fused numba kernel in ``triplet_kernel.py`` (sparse per-coordinate Adagrad; torch is not imported)."""

    name = "triplet"
    kind = "implicit"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.01, 0.5), "epochs": IntRange(5, 40),
                                               "dim": OneOf((32, 64, 128)), "margin": Uniform(0.1, 1.0)}

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        margin: Margin = 0.5
        negatives: AtLeastOneNegative = 10  # negatives drawn per positive
        hardest: bool = True  # hinge against the highest-scoring negative, else summed over them
        l2: Regularisation = 0.0  # l2 · |row|² on every row a violated triplet updates
        # SGD, or per-coordinate Adagrad. Chosen on the validation part of MovieLens latest-small (per-user AUC,
        # NDCG@10, R@10): SGD at lr 0.1, 0.9367 / 0.1166 / 0.1837; the torch model this kernel replaced (Adam,
        # lr 0.01) 0.9335 / 0.1126 / 0.1725; Adagrad at its best lr (0.2) 0.9338 / 0.1001 / 0.1634.
        optimizer: Optimizer = "sgd"
        init_std: InitStd = 0.05
        # batch_size: positives per trainer step (one kernel call)
        # threads: 0: all cores
        train: TrainSettings = TrainSettings(lr=0.1, schedule="cosine", min_lr_fraction=1e-2, epochs=20,
                                             batch_size=16384)

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        c = self.config
        self._mark_known(data)
        rng = np.random.default_rng(c.train.seed)
        # Both tables random: a cosine has no direction to follow from a zero vector.
        self.user_vectors_ = (rng.standard_normal((data.n_users, c.dim)) * c.init_std).astype(np.float32)
        self.item_vectors_ = (rng.standard_normal((data.n_items, c.dim)) * c.init_std).astype(np.float32)
        positive = data.positive
        indptr, indices = positive_rows(data)
        candidates = np.flatnonzero(self.known_items_).astype(np.int64)
        if positive.any() and len(candidates) > 1:
            tables = {"user_vectors": self.user_vectors_, "item_vectors": self.item_vectors_,
                      "acc_u": np.zeros_like(self.user_vectors_), "acc_i": np.zeros_like(self.item_vectors_)}
            steps = _TripletSteps(tables, data.user[positive].astype(np.int64), data.item[positive].astype(np.int64),
                                  indptr, indices, candidates, c)
            self.history_ = trainer.train(self, steps)

    def embedding(self) -> Embedding:
        # The cosine as a dot product of unit vectors: export and the index see an ordinary dot-product model.
        return Embedding(rule="dot", item_vectors=_unit(self.item_vectors_), user_vectors=_unit(self.user_vectors_))

    def _state(self):
        return {"user_vectors_": self.user_vectors_, "item_vectors_": self.item_vectors_}

    def _set_state(self, state):
        if "net.user.weight" in state:  # a run saved by the torch model this replaced: the same two tables
            state = {"user_vectors_": state["net.user.weight"], "item_vectors_": state["net.item.weight"]}
        self.user_vectors_ = state["user_vectors_"].astype(np.float32)
        self.item_vectors_ = state["item_vectors_"].astype(np.float32)


def _unit(table: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, a row shorter than the kernel's floor divided by the floor (as torch's cosine)."""
    from itemvec.models.useritem.triplet_kernel import EPS

    return (table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True), EPS)).astype(np.float32)


class DeepTriplet(TorchRankingModel):
    """score(u, i) = MLP([user_u, item_i]), margin loss on (user, positive, negative) triplets. The usual network
    (``_fused``) is numpy arrays in ``weights_`` trained by ``_DeepTripletSteps``; any other, a torch module in
    ``net_`` trained by ``_TorchSteps``."""

    name = "deep-triplet"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(3e-4, 0.01), "epochs": IntRange(5, 40),
                                               "hidden": OneOf((32, 64, 128)), "dropout": Uniform(0.0, 0.5)}

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64  # item embedding size (the notebook's item_dim)
        user_dim: Dim = 32  # the notebook's user_dim
        hidden: Dim = 64  # units per hidden layer
        layers: Annotated[int, Range(1, 16)] = 1  # hidden layers
        dropout: Dropout = 0.0
        product: bool = False  # also feed user ⊙ item to the MLP (needs user_dim == dim); not in the notebook
        item_bias: bool = True  # add a learned per-item bias to the MLP's score (not in the notebook)
        negatives: AtLeastOneNegative = 10  # negatives drawn per positive (the notebook: 1)
        hardest: bool = True  # hinge against the highest-scoring negative, else summed over them
        negative_power: Power = 0.0  # negatives drawn ∝ (train ratings of the item) ** power; 0: uniformly
        margin: Margin = 1.0
        l2: Regularisation = 1e-4  # on the embedding rows of each triplet
        init_std: InitStd = 0.05
        # batch_size: 8192 triplets a step at Adam's lr 0.01 (was 1024 at 0.003: 8 times the steps). On the
        # validation part of MovieLens latest-small (per-user AUC / NDCG@10 / R@10): 0.9282 / 0.0826 / 0.1343,
        # against 0.9278 / 0.0867 / 0.1304 before; the model is seed-sensitive (±0.005 AUC across seeds).
        # Trained without torch (numpy's initial draws), the mean over seeds 0-4: 0.9270 / 0.0757 / 0.1154
        # (the torch module: 0.9244 / 0.0801 / 0.1248; NDCG@10 0.073-0.078 against 0.074-0.085 per seed); on the
        # test part 0.9232 / 0.1777 / 0.1254 against 0.9230 / 0.1803 / 0.1256. 10 epochs at lr 0.02 lose AUC
        # (0.9066).
        train: TrainSettings = TrainSettings(lr=0.01, schedule="cosine", min_lr_fraction=1e-2, epochs=20,
                                             batch_size=8192)

        def validate(self) -> None:
            if self.product and self.user_dim != self.dim:
                raise ConfigError("deep-triplet: product=true needs user_dim == dim")

    weights_: dict[str, np.ndarray]  # the usual network's arrays (``_fused``), under torch_state's names

    @property
    def _fused(self) -> bool:
        """The usual network (one hidden layer, no product feature, no dropout): trained and scored from numpy
        arrays by ``deep_triplet_kernel`` (torch is not imported); any other, the torch module."""
        c = self.config
        return c.layers == 1 and not c.product and c.dropout <= 0.0

    def _initial_weights(self, n_users: int, n_items: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``_build``'s initial network as numpy arrays drawn from ``rng`` (the same distributions: embeddings
        N(0, init_std), Glorot-uniform layers, zero biases)."""
        c = self.config

        def glorot(n_in, n_out):
            bound = (6.0 / (n_in + n_out)) ** 0.5
            return ((rng.random((n_out, n_in)) * 2 - 1) * bound).astype(np.float32)

        weights = {"net.user.weight": (rng.standard_normal((n_users, c.user_dim)) * c.init_std).astype(np.float32),
                   "net.item.weight": (rng.standard_normal((n_items, c.dim)) * c.init_std).astype(np.float32),
                   "net.hidden.0.weight": glorot(c.user_dim + c.dim, c.hidden),
                   "net.hidden.0.bias": np.zeros(c.hidden, np.float32),
                   "net.out.weight": glorot(c.hidden, 1), "net.out.bias": np.zeros(1, np.float32)}
        if c.item_bias:
            weights["net.bias.weight"] = np.zeros((n_items, 1), np.float32)
        return weights

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        if not self._fused:
            super()._fit(data, trainer)
            return
        c = self.config
        self._mark_known(data)
        self.weights_ = self._initial_weights(data.n_users, data.n_items, np.random.default_rng(c.train.seed))
        positive = data.positive
        indptr, indices = positive_rows(data)
        candidates = np.flatnonzero(self.known_items_).astype(np.int64)
        if positive.any() and len(candidates) > 1:
            cdf = popularity_cdf(data, candidates, c.negative_power)
            steps = _DeepTripletSteps(self.weights_, data.user[positive].astype(np.int64),
                                      data.item[positive].astype(np.int64), indptr, indices, candidates, cdf, c)
            # One BLAS thread: the fused step's small products alternate with numba's parallel kernels, and BLAS
            # threads that spun beside numba's slowed a step on two cores from about 26 ms to 38 ms, and the
            # curve's scoring from 30 ms to 60-100 ms.
            with one_blas_thread():
                self.history_ = trainer.train(self, steps)

    def _parts(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The fused network's first layer split: (users, hidden) user half and (n_items, hidden) item half
        with the layer's bias."""
        c, w = self.config, self.weights_
        first = w["net.hidden.0.weight"]
        user_part = w["net.user.weight"][users] @ first[:, :c.user_dim].T
        item_part = w["net.item.weight"] @ first[:, c.user_dim:].T + w["net.hidden.0.bias"]
        return np.ascontiguousarray(user_part, np.float32), np.ascontiguousarray(item_part, np.float32)

    def _predict(self, users, items):
        if not self._fused:
            return super()._predict(users, items)
        w = self.weights_
        out = np.empty(len(users), dtype=np.float64)
        for s in range(0, len(users), SCORE_CHUNK):
            u, i = users[s:s + SCORE_CHUNK], items[s:s + SCORE_CHUNK]
            user_part, item_part = self._parts(u)
            h = np.maximum(user_part + item_part[i], 0.0)
            score = h @ w["net.out.weight"][0] + w["net.out.bias"][0]
            if self.config.item_bias:
                score += w["net.bias.weight"][i, 0]
            out[s:s + SCORE_CHUNK] = score
        return out

    def _state(self):
        return dict(self.weights_) if self._fused else super()._state()

    def _set_state(self, state):
        if not self._fused:
            super()._set_state(state)
            return
        # The torch module's own names (torch_state): a run saved by the torch path loads as it is.
        self.weights_ = {key: np.ascontiguousarray(value, np.float32) for key, value in state.items()
                         if key.startswith("net.")}

    def _build(self, n_users, n_items, generator):
        import torch

        c = self.config
        self.net_ = torch.nn.Module()
        self.net_.user = _embedding(n_users, c.user_dim, c.init_std, generator)
        self.net_.item = _embedding(n_items, c.dim, c.init_std, generator)
        sizes = [c.user_dim + c.dim + (c.dim if c.product else 0)] + [c.hidden] * c.layers
        self.net_.hidden = torch.nn.ModuleList([_linear(a, b, generator) for a, b in zip(sizes[:-1], sizes[1:])])
        self.net_.out = _linear(c.hidden, 1, generator)
        if c.item_bias:
            self.net_.bias = _embedding(n_items, 1, 0.0, generator)

    def _mlp(self, h, generator=None):
        """The rest of the MLP from the first layer's pre-activation ``h``."""
        import torch

        for k, layer in enumerate(self.net_.hidden):
            h = torch.relu(h if k == 0 else layer(h))
            if generator is not None:
                h = dropout(h, self.config.dropout, generator)
        return self.net_.out(h).squeeze(-1)

    def _triplet_loss(self, users, positives, negatives, generator):
        """The base class's loss, computed as ``_score_users`` scores: the first layer is linear in
        [user, item], so its item half is one (items, hidden) product per step and every (user, item) pair
        then costs an addition. With ``hardest`` (and no dropout, which draws per pair), the hardest negative
        is found without gradients and only it and the positive are scored with them: the hinge's gradient
        goes to the highest-scoring negative alone either way. (With ``product``, the pairs' own features:
        the base class's path.)"""
        import torch
        import torch.nn.functional as F

        c = self.config
        if c.product:
            return super()._triplet_loss(users, positives, negatives, generator)
        first = self.net_.hidden[0]
        n, k = negatives.shape
        user_weight, item_weight = first.weight[:, :c.user_dim], first.weight[:, c.user_dim:]
        if c.hardest and c.dropout <= 0.0 and k > 1:
            with torch.no_grad():
                user_part = self.net_.user(users) @ user_weight.T + first.bias
                item_part = F.embedding(negatives.reshape(-1), self.net_.item.weight @ item_weight.T)
                neg = self._mlp(user_part[:, None, :] + item_part.reshape(n, k, -1))
                if c.item_bias:
                    neg += self.net_.bias(negatives).squeeze(-1)
                negatives = negatives.gather(1, neg.argmax(1, keepdim=True))
            k = 1
        user_part = self.net_.user(users) @ user_weight.T + first.bias  # (n, hidden)
        items = torch.cat([positives, negatives.reshape(-1)])
        item_part = F.embedding(items, self.net_.item.weight @ item_weight.T)  # (n (1 + k), hidden)
        pos = self._mlp(user_part + item_part[:n], generator)
        neg = self._mlp(user_part[:, None, :] + item_part[n:].reshape(n, k, -1), generator)
        if c.item_bias:
            pos = pos + self.net_.bias(positives).squeeze(-1)
            neg = neg + self.net_.bias(negatives).squeeze(-1)
        if c.hardest:
            loss = margin_loss(pos, neg.max(1).values, c.margin)
        else:
            loss = margin_loss(pos[:, None], neg, c.margin).sum(1)
        if c.l2 > 0:
            loss = loss + c.l2 * self._l2_terms(users, positives, negatives)
        return loss

    def _pair_scores(self, users, items, generator=None):
        import torch

        first = self.net_.hidden[0]
        u, v = self.net_.user(users), self.net_.item(items)
        h = first(torch.cat([u, v, u * v] if self.config.product else [u, v], dim=1))
        score = self._mlp(h, generator)
        return score + self.net_.bias(items).squeeze(-1) if self.config.item_bias else score

    def _score_users(self, users):
        if self._fused:
            from itemvec.models.useritem.triplet_kernel import one_layer_scores

            w = self.weights_
            user_part, item_part = self._parts(users)
            out = np.empty((len(users), self.n_items), dtype=np.float32)
            one_layer_scores(user_part, item_part, np.ascontiguousarray(w["net.out.weight"][0]),
                             np.float32(w["net.out.bias"][0]), out)
            if self.config.item_bias:
                out += w["net.bias.weight"][:, 0][None, :]
            return out
        import torch

        # The first layer is linear in [user, item]: split its weight so the item half is computed once.
        c = self.config
        first = self.net_.hidden[0]
        n_items = self.n_items
        out = np.empty((len(users), n_items), dtype=np.float32)
        rows = max(1, SCORE_CHUNK // max(n_items, 1))
        with torch.no_grad():
            items = self.net_.item.weight
            item_part = items @ first.weight[:, c.user_dim:c.user_dim + c.dim].T + first.bias  # (n_items, hidden)
            user_vectors = self.net_.user.weight[torch.from_numpy(users)]
            user_part = user_vectors @ first.weight[:, :c.user_dim].T
            if c.layers == 1 and not c.product:  # the usual net: one fused kernel, no (users, items, hidden)
                from itemvec.models.useritem.triplet_kernel import one_layer_scores

                one_layer_scores(user_part.numpy(), item_part.numpy(), self.net_.out.weight[0].numpy(),
                                 np.float32(self.net_.out.bias[0]), out)
            else:
                for s in range(0, len(users), rows):
                    h = user_part[s:s + rows, None, :] + item_part[None, :, :]
                    if c.product:  # W_p (u ⊙ v) = (W_p ⊙ u) v: one (n_items, dim) @ (dim, hidden) per user
                        scaled = first.weight[None, :, c.user_dim + c.dim:] * user_vectors[s:s + rows, None, :]
                        h = h + torch.matmul(items[None], scaled.transpose(1, 2))
                    out[s:s + rows] = self._mlp(h).numpy()
            if c.item_bias:
                out += self.net_.bias.weight[:, 0].numpy()[None, :]
        return out
