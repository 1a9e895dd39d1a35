"""The user-item half of the one model base: models learned from ratings (explicit) or implicit feedback.

On top of ``itemvec.models.base.Model`` (construction, ``fit``, ``similar_items``, save / load):

- ``predict(users, items) -> (n,) float64``: the predicted rating on the data's rating scale for an
  ``explicit`` model, a match score (higher = more likely) for an ``implicit`` one. NaN where the model
  has nothing to say (a user or item unseen in training and no side features); the evaluation protocol,
  not the model, decides what such a pair gets.
- ``score_users(users) -> (u, n_items) float32``: the same over the whole catalogue, NaN where unscorable; a
  user without train history (and no features the model reads) gets the popularity ranking, every model alike.
- ``recommend(users, k, exclude=None) -> (ids (u, k) int64, scores (u, k) float64)``: best items per user,
  items in ``exclude`` (a users × items CSR matrix, e.g. the train interactions) and unscorable items
  left out; rows padded with -1 / NaN when fewer than k candidates exist.

Subclasses set ``name``, ``kind`` ("explicit" or "implicit") and ``Config`` and implement ``_fit``,
``_predict`` and ``_score_users`` over known users and items, ``_similar_scores`` (item-item similarity;
the embedding layer gives it from the item vectors), and ``_state`` / ``_set_state``. Models that can score
unseen users or items (the factorisation machine, through side features) override ``predict`` /
``score_users`` themselves.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from itemvec.data.types import Interactions
from itemvec.models.base import Model, top_k

if TYPE_CHECKING:
    import torch
    from numpy.typing import ArrayLike

SIMILARITY_USERS = 512


class UserItemModel(Model):
    """Base class of the user-item models; see the module docstring for the contract."""

    data_kind = "ratings"
    kind: ClassVar[str] = "explicit"  # or "implicit"
    known = ("known_users_", "known_items_")
    kept = ("item_popularity_",)
    known_users_: np.ndarray  # (n_users,) bool, as known_items_
    # (n_items,) float32: each item's train positives, the ranking a user without train history gets from every
    # model (``score_users``); None for a run saved before it was kept (such a user then gets no ranking)
    item_popularity_: np.ndarray | None = None

    # ---------------------------------------------------------------- queries

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return len(self.known_users_)

    def _mark_known(self, data: Interactions) -> None:
        """Users and items with at least one train rating: the ones the model has learned anything about (over
        every rank's ratings, when a distributed rank holds only its own)."""
        if data.share.held:
            self.known_users_ = data.share.count(data.user, data.n_users) > 0
            self.known_items_ = data.share.count(data.item, data.n_items) > 0
            return
        self.known_users_ = np.bincount(data.user, minlength=data.n_users) > 0
        self.known_items_ = np.bincount(data.item, minlength=data.n_items) > 0

    def _scorable_users(self) -> np.ndarray:
        """(n_users,) bool: the users the model can score; the known ones unless it has side features."""
        return self.known_users_

    def _scorable_items(self) -> np.ndarray:
        return self.known_items_

    def predict(self, users: ArrayLike, items: ArrayLike) -> np.ndarray:
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

    def score_users(self, users: ArrayLike) -> np.ndarray:
        """(u, n_items) float32. A user the model cannot score (no train history, and no features the model
        reads) gets the popularity ranking (``item_popularity_``) over the items it can score."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        inside = (users >= 0) & (users < self.n_users)
        ok = inside.copy()
        ok[inside] = self._scorable_users()[users[inside]]
        if len(users) and ok.all():  # the usual case: the model's own array, masked in place (no more copies)
            scores = np.asarray(self._score_users(users), dtype=np.float32)
            unscorable = ~self._scorable_items()
            if unscorable.any():
                scores[:, unscorable] = np.nan
            return scores
        out = np.full((len(users), self.n_items), np.nan, dtype=np.float32)
        if ok.any():
            scores = np.asarray(self._score_users(users[ok]), dtype=np.float32)
            scores[:, ~self._scorable_items()] = np.nan
            out[ok] = scores
        cold = inside & ~ok
        if cold.any() and self.item_popularity_ is not None:
            fallback = np.where(self._scorable_items(), self.item_popularity_, np.nan).astype(np.float32)
            out[cold] = fallback
        return out

    def cold_user(self, user: int) -> bool:
        """Does ``user`` get the popularity ranking (see ``score_users``)?"""
        return 0 <= user < self.n_users and not bool(self._scorable_users()[user])

    def _fitted(self, data: Interactions) -> None:
        self.item_popularity_ = np.bincount(data.item[data.positive], minlength=data.n_items).astype(np.float32)

    def recommend(self, users: ArrayLike, k: int = 10, exclude: sp.csr_matrix | None = None,
                  ) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users, dtype=np.int64)
        scores = self.score_users(users)
        if exclude is not None:
            rows = exclude[users]
            scores[np.repeat(np.arange(len(users)), np.diff(rows.indptr)), rows.indices] = np.nan
        return top_k(scores, k)

    def _meta(self) -> dict[str, Any]:
        return {**super()._meta(), "kind": self.kind}

    def _similar_scores(self, queries: np.ndarray) -> np.ndarray:
        """For a model without item vectors: the cosine between the items' columns of predicted scores over
        a fixed sample of known users (at most SIMILARITY_USERS): two items are similar when the model scores
        them alike for the same users. Items it cannot score are NaN."""
        users = np.flatnonzero(self._scorable_users())
        if len(users) > SIMILARITY_USERS:
            users = users[np.linspace(0, len(users) - 1, SIMILARITY_USERS).astype(np.int64)]
        columns = np.nan_to_num(self.score_users(users).astype(np.float64)).T  # (n_items, users)
        columns -= columns.mean(axis=1, keepdims=True)
        columns /= np.maximum(np.linalg.norm(columns, axis=1, keepdims=True), 1e-12)
        scores = (columns[queries] @ columns.T).astype(np.float32)
        scores[:, ~self._scorable_items()] = np.nan
        return scores

    # ---------------------------------------------------------------- subclass hooks

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        """(u, n_items) scores of known users: a new array, which ``score_users`` may modify."""
        raise NotImplementedError


def torch_state(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A torch module's parameters and buffers as numpy arrays, for ``_state``."""
    return {f"net.{key}": value.detach().cpu().numpy().copy() for key, value in module.state_dict().items()}


def set_torch_state(module: torch.nn.Module, state: dict[str, np.ndarray]) -> None:
    """The inverse of ``torch_state``."""
    import torch

    module.load_state_dict({key[4:]: torch.from_numpy(np.asarray(value)) for key, value in state.items()
                            if key.startswith("net.")})


def forked_seed(seed: int) -> AbstractContextManager[None]:
    """A context in which torch's global generator is seeded with ``seed``, restored afterwards (dropout and
    ``nn`` initialisers read the global generator; this keeps a model's draws its own)."""
    import torch

    class _Fork:
        def __enter__(self) -> None:
            self._fork = torch.random.fork_rng(devices=[])
            self._fork.__enter__()
            torch.manual_seed(seed & 0x7FFF_FFFF_FFFF_FFFF)

        def __exit__(self, *exc: Any) -> bool | None:
            return self._fork.__exit__(*exc)

    return _Fork()


class Adam:
    """``torch.optim.Adam``'s update with its defaults (betas 0.9 and 0.999, eps 1e-8, no weight decay, the
    single-tensor path torch takes on the CPU), the same numbers to the bit and the same state names
    (``step``, ``exp_avg``, ``exp_avg_sq``, so checkpoints of either resume with the other). Written out
    because constructing any ``torch.optim`` optimiser imports ``torch._dynamo``: 1.1 to 1.6 s of every torch
    model's training process, more than a whole run of ``deep-triplet`` on MovieLens-size data takes to train.
    tests/test_torch_adam.py holds it to torch's."""

    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(self, params: Any, lr: float) -> None:
        self.params = list(params)
        self.param_groups = [{"lr": lr, "params": self.params}]
        self.state: dict[Any, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        import torch

        lr = self.param_groups[0]["lr"]
        beta1, beta2 = self.betas
        with torch.no_grad():
            for param in self.params:
                grad = param.grad
                if grad is None:
                    continue
                state = self.state.get(param)
                if not state:
                    state = self.state[param] = {"step": torch.tensor(0.0),
                                                 "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
                                                 "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format)}
                state["step"] += 1
                step = state["step"].item()
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
                denom = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(self.eps)
                param.addcdiv_(state["exp_avg"], denom, value=-(lr / (1 - beta1 ** step)))


class TorchSteps:
    """A torch model's side of the trainer protocol, shared by every torch user-item model: the Adam optimiser
    (``Adam``, torch's own update without its import cost) and its state (checkpointed with the weights, so a resumed run continues exactly) and the rate the trainer's
    schedule asks for at each step. Subclasses implement ``steps_per_epoch``, ``begin_epoch`` and
    ``loss(step, seed) -> (loss tensor (mean), examples)``; the step runs with torch's global generator seeded
    by ``seed`` (``forked_seed``), and a step of no examples changes nothing."""

    def __init__(self, net: torch.nn.Module, lr: float) -> None:
        self.net = net
        self.optimizer = Adam(net.parameters(), lr=lr)

    def loss(self, step: int, seed: int) -> tuple[torch.Tensor | None, int]:
        raise NotImplementedError

    def train_step(self, step: int, lr_start: float, lr_end: float, seed: int) -> tuple[float, int]:
        for group in self.optimizer.param_groups:
            group["lr"] = 0.5 * (lr_start + lr_end)
        self.net.train()
        with forked_seed(seed):
            loss, examples = self.loss(step, seed)
            if examples == 0:
                self.net.eval()
                return 0.0, 0
            assert loss is not None  # (None only for a step of no examples)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.net.eval()
        return float(loss.detach()) * examples, examples

    def state(self) -> dict[str, np.ndarray]:
        state = torch_state(self.net)
        for index, param in enumerate(self.net.parameters()):
            for key, value in self.optimizer.state.get(param, {}).items():
                state[f"opt.{index}.{key}"] = value.detach().cpu().numpy().copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        import torch

        set_torch_state(self.net, state)
        for index, param in enumerate(self.net.parameters()):
            saved = {key.split(".", 2)[2]: torch.from_numpy(np.asarray(value)).clone()
                     for key, value in state.items() if key.startswith(f"opt.{index}.")}
            if saved:
                self.optimizer.state[param] = saved
