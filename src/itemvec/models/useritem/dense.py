"""``dense``: a user embedding and an item embedding, concatenated, through an MLP to a rating.

The "dense" network of the "PyTorch for Recommenders 101" tutorial (and of He et al. 2017's MLP tower,
trained on ratings instead of clicks): r̂ = lo + (hi - lo) · sigmoid(MLP([e_u ; e_i])), so the prediction
always lies on the rating scale [lo, hi]. Loss: mean squared error plus ``l2`` times the squared norm of the
embedding rows each batch touches (the same "L2 on touched rows" as the factorisation models); Adam.

The torch steps (Adam, its checkpointed state, the rate the schedule asks for) are ``TorchSteps`` in
``useritem.base``, shared with every torch user-item model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from itemvec.config import (
    Dim,
    Dropout,
    InitStd,
    Regularisation,
)
from itemvec.data.types import Interactions
from itemvec.errors import ConfigError
from itemvec.models.useritem.base import TorchSteps, UserItemModel, forked_seed, set_torch_state, torch_state
from itemvec.train import RowSteps, Trainer, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space, Uniform


def parse_hidden(text: str) -> list[int]:
    """``"64,32"`` → ``[64, 32]``; ``""`` → ``[]`` (a linear layer on the embeddings)."""
    try:
        sizes = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise ConfigError(f"hidden: expected comma-separated layer sizes such as '64,32', got {text!r}") from None
    if any(size <= 0 for size in sizes):
        raise ConfigError(f"hidden: layer sizes must be positive, got {text!r}")
    return sizes


def _mlp(sizes: list[int], dropout: float):
    from torch import nn

    layers: list = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def _dense_net(n_users: int, n_items: int, dim: int, hidden: list[int], dropout: float, init_std: float):
    import torch
    from torch import nn

    class DenseNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user = nn.Embedding(n_users, dim)
            self.item = nn.Embedding(n_items, dim)
            nn.init.normal_(self.user.weight, std=init_std)
            nn.init.normal_(self.item.weight, std=init_std)
            self.mlp = _mlp([2 * dim, *hidden, 1], dropout)

        def forward(self, users, items):
            """(n,) int64 each → (raw score (n,), the touched embedding rows' squared norm summed (n,))."""
            eu, ei = self.user(users), self.item(items)
            raw = self.mlp(torch.cat([eu, ei], dim=1)).squeeze(1)
            return raw, (eu * eu).sum(1) + (ei * ei).sum(1)

    return DenseNet()


class _DenseSteps(RowSteps, TorchSteps):
    def __init__(self, model: Dense, users, items, target) -> None:
        RowSteps.__init__(self, len(users), model.config.train.batch_size)
        TorchSteps.__init__(self, model.net_, model.config.train.lr)
        import torch

        self.model = model
        self.users = torch.from_numpy(users)
        self.items = torch.from_numpy(items)
        self.target = torch.from_numpy(target)

    def loss(self, step: int, seed: int):
        import torch

        rows = torch.from_numpy(self.chunk(step))
        raw, norms = self.net(self.users[rows], self.items[rows])
        # Target and prediction on the [0, 1] scale: the squared error is in scaled units.
        err = torch.sigmoid(raw) - self.target[rows]
        return (err * err).mean() + self.model.config.l2 * norms.mean(), len(rows)


class Dense(UserItemModel):
    """Concatenated user and item embeddings through an MLP (see the module docstring)."""

    name = "dense"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(3e-4, 0.01), "epochs": IntRange(2, 20),
                                               "dim": OneOf((16, 32, 64)), "dropout": Uniform(0.0, 0.5)}
    kind = "explicit"

    @dataclass(frozen=True)
    class Config:
        # Defaults picked on a validation slice of ml-latest-small (10% of an 80% train split); more epochs,
        # wider layers or a higher rate overfit there (8 epochs: 0.883 RMSE, 12: 0.920, against 0.877 at 5).
        dim: Dim = 32
        hidden: str = "64,32"  # MLP layer sizes after the concatenation, comma-separated
        dropout: Dropout = 0.0
        l2: Regularisation = 1e-3  # on the embedding rows a batch touches, per example
        init_std: InitStd = 0.1
        # lr: Adam
        # Torch threads; 0: torch's default (all cores). One thread measured 8x faster than two on a busy
        # 2-core machine for these small layers (the intra-op pool waits on the slowest thread).
        train: TrainSettings = TrainSettings(lr=0.003, schedule="cosine", min_lr_fraction=0.01, epochs=5,
                                             batch_size=1024, threads=1)

        def validate(self) -> None:
            parse_hidden(self.hidden)

    def __init__(self, config=None, **settings) -> None:
        super().__init__(config, **settings)
        self.net_: Any = None  # the torch network, built by _build (its class is local to _dense_net)

    def _build(self, n_users: int, n_items: int) -> None:
        c = self.config
        with forked_seed(c.train.seed):
            self.net_ = _dense_net(n_users, n_items, c.dim, parse_hidden(c.hidden), c.dropout, c.init_std)
        self.net_.eval()

    def _fit(self, data: Interactions, trainer: Trainer) -> None:
        import torch

        self._mark_known(data)
        self.scale_ = np.array([data.rating_min, data.rating_max], dtype=np.float64)
        self._build(data.n_users, data.n_items)
        target = data.scaled(data.rating).astype(np.float32)
        mean = float(np.clip(target.mean(), 1e-3, 1 - 1e-3)) if len(target) else 0.5
        with torch.no_grad():  # start every prediction at the mean rating
            self.net_.mlp[-1].bias.fill_(float(np.log(mean / (1 - mean))))
        steps = _DenseSteps(self, data.user.astype(np.int64), data.item.astype(np.int64), target)
        self.history_ = trainer.train(self, steps)

    def _rate(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        import torch

        lo, hi = self.scale_
        out = np.empty(len(users))
        step = 1 << 18
        with torch.no_grad():
            for s in range(0, len(users), step):
                raw, _ = self.net_(torch.from_numpy(users[s:s + step]), torch.from_numpy(items[s:s + step]))
                out[s:s + step] = torch.sigmoid(raw.double()).numpy()
        return lo + (hi - lo) * out

    def _predict(self, users, items):
        return self._rate(np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64))

    def _score_users(self, users):
        n_items = self.n_items
        out = np.empty((len(users), n_items))
        per_chunk = max(1, (1 << 20) // max(n_items, 1))
        items = np.arange(n_items, dtype=np.int64)
        for s in range(0, len(users), per_chunk):
            chunk = users[s:s + per_chunk]
            out[s:s + len(chunk)] = self._rate(np.repeat(chunk, n_items), np.tile(items, len(chunk))).reshape(
                len(chunk), n_items)
        return out

    def _state(self):
        return {**torch_state(self.net_), "scale_": self.scale_}

    def _set_state(self, state):
        self.scale_ = state["scale_"].astype(np.float64)
        self._build(int(state["net.user.weight"].shape[0]), int(state["net.item.weight"].shape[0]))
        set_torch_state(self.net_, state)
