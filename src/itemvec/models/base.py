"""The one model interface every item-item model implements (as scikit-learn and `implicit` do).

The constructor stores settings; ``fit(data) -> self``; learned state ends in ``_``. Queries are batched:

- ``score_pairs(a, b) -> (n,) float64``: a higher score means a more likely pair. NaN where the model has
  nothing to say (an item unseen in training and no side information); the evaluation protocol, not the
  model, decides what such a pair gets.
- ``score_all(queries) -> (q, n_items) float32``: scores of every candidate, NaN where unscorable.
- ``similar_items(ids, k) -> (ids (q, k) int64, scores (q, k))``: best candidates, the query and unscorable
  items excluded; rows are padded with -1 / NaN when fewer than k candidates exist.
- ``save(dir)`` / ``load(dir)``: ``config.json`` + ``weights.npz`` (``allow_pickle=False``); no pickle.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from itemvec.config import replace
from itemvec.data.pairs import Pairs
from itemvec.data.store import DataDir, EvalPairs

PAIR_CHUNK = 1 << 18  # pairs scored per _score_pairs call


@dataclass
class TrainingData:
    """What fit() may read: the train pairs and (for learning curves) validation pairs with negatives."""

    n_items: int
    train: Pairs
    validation: EvalPairs | None = None
    data_dir: DataDir | None = None

    @classmethod
    def from_data_dir(cls, data: DataDir | str | Path) -> TrainingData:
        data = data if isinstance(data, DataDir) else DataDir(data)
        return cls(n_items=data.n_items, train=data.pairs("train"), validation=data.eval_pairs("validation"),
                   data_dir=data)

    def degree(self) -> np.ndarray:
        """(n_items,) int64: number of train pairs each item is in."""
        return np.bincount(np.concatenate([self.train.item_a, self.train.item_b]), minlength=self.n_items)


class ItemModel:
    """Base class: subclasses set ``name`` and ``Config`` and implement ``fit``, ``_score_pairs`` and
    ``_score_all`` over known items, and ``_state()`` / ``_set_state()`` for saving."""

    name = "base"

    @dataclass(frozen=True)
    class Config:
        seed: int = 0

    def __init__(self, config=None, **settings) -> None:
        config = config if config is not None else self.Config()
        self.config = replace(config, settings, source=self.name) if settings else config
        self.known_items_: np.ndarray | None = None
        self.history_: list[dict] = []

    # ---------------------------------------------------------------- queries

    def _check_fitted(self) -> None:
        if self.known_items_ is None:
            raise RuntimeError(f"{self.name}: call fit() or load() first")

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.known_items_)

    def score_pairs(self, a, b) -> np.ndarray:
        self._check_fitted()
        a = np.asarray(a, dtype=np.int64)
        b = np.asarray(b, dtype=np.int64)
        out = np.full(len(a), np.nan, dtype=np.float64)
        inside = (a >= 0) & (a < self.n_items) & (b >= 0) & (b < self.n_items)
        ok = inside.copy()
        ok[inside] = self.known_items_[a[inside]] & self.known_items_[b[inside]]
        rows = np.flatnonzero(ok)
        # In chunks: a model's _score_pairs may gather (pairs × dim) rows, 9 GB at once for Books-size test pairs.
        for start in range(0, len(rows), PAIR_CHUNK):
            chunk = rows[start:start + PAIR_CHUNK]
            out[chunk] = self._score_pairs(a[chunk], b[chunk])
        return out

    def score_all(self, queries) -> np.ndarray:
        self._check_fitted()
        queries = np.asarray(queries, dtype=np.int64)
        out = np.full((len(queries), self.n_items), np.nan, dtype=np.float32)
        ok = self.known_items_[queries]
        if ok.any():
            scores = self._score_all(queries[ok]).astype(np.float32, copy=False)
            scores[:, ~self.known_items_] = np.nan
            out[ok] = scores
        return out

    def similar_items(self, ids, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        scores = self.score_all(ids)
        scores[np.arange(len(ids)), ids] = np.nan
        return top_k(scores, k)

    def probability(self, scores: np.ndarray) -> np.ndarray | None:
        """Scores as probabilities when the model has such a reading (None otherwise)."""
        return None

    # ---------------------------------------------------------------- subclass hooks

    def fit(self, data: TrainingData, **kwargs) -> ItemModel:
        raise NotImplementedError

    def _score_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_all(self, queries: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- persistence

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        return write_weights(directory, {"known_items_": self.known_items_, **self._state()},
                             {"model": self.name, "config": dataclasses.asdict(self.config)})

    @classmethod
    def load(cls, directory: str | Path) -> ItemModel:
        model, state = read_weights(cls, directory)
        model.known_items_ = state.pop("known_items_").astype(bool)
        model._set_state(state)
        return model


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of each row of ``scores`` (NaN = not a candidate), best first:
    (ids (rows, k) int64, scores (rows, k) float64), padded with -1 / NaN when a row has fewer candidates."""
    scores = np.where(np.isnan(scores), -np.inf, scores)
    k_eff = min(k, scores.shape[1])
    top = np.argpartition(-scores, k_eff - 1, axis=1)[:, :k_eff]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1).astype(np.float64)
    missing = ~np.isfinite(top_scores)
    top[missing] = -1
    top_scores[missing] = np.nan
    if k_eff < k:
        top = np.pad(top, ((0, 0), (0, k - k_eff)), constant_values=-1)
        top_scores = np.pad(top_scores, ((0, 0), (0, k - k_eff)), constant_values=np.nan)
    return top, top_scores


def write_weights(directory: str | Path, state: dict[str, np.ndarray], meta: dict) -> Path:
    """``weights.npz`` (written under a temporary name, then renamed) and ``model.json``: a saved model."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / ".weights.tmp.npz"
    np.savez(tmp, **state)
    tmp.replace(directory / "weights.npz")
    (directory / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def read_weights(cls, directory: str | Path):
    """The inverse of ``write_weights`` for a model class: (a model with the saved config, its arrays)."""
    directory = Path(directory)
    meta = json.loads((directory / "model.json").read_text())
    if meta["model"] != cls.name:
        raise ValueError(f"{directory} holds a {meta['model']!r} model, not {cls.name!r}")
    model = cls(cls.Config(**meta["config"]))
    with np.load(directory / "weights.npz", allow_pickle=False) as npz:
        state = {key: npz[key] for key in npz.files}
    return model, state


def load_model(directory: str | Path) -> ItemModel:
    """Load any registered model from a directory written by ``save``."""
    from itemvec import registry

    meta = json.loads((Path(directory) / "model.json").read_text())
    return registry.get(meta["model"], registry.run_kind(meta)).load(directory)
