"""The one model base, for both kinds of data (as scikit-learn and `implicit` do), and its persistence.

The constructor stores settings (``MF(dim=32, epochs=3)`` or ``MF(config)``); ``fit(data) -> self``;
learned state ends in ``_``. Every model answers, batched:

- ``similar_items(ids, k) -> (ids (q, k) int64, scores (q, k))``: the best other items, the query and
  unscorable items left out; rows padded with -1 / NaN when fewer than k candidates exist.
- ``save(dir)`` / ``load(dir)``: ``model.json`` + ``weights.npz`` (``allow_pickle=False``); no pickle.

An item-item model (``ItemModel``, learned from product pairs) also answers ``score_pairs(a, b) -> (n,)
float64`` (higher: a more likely pair; NaN where the model has nothing to say, e.g. an item unseen in
training: the evaluation protocol, not the model, decides what such a pair gets) and ``score_all(queries)
-> (q, n_items) float32``. A user-item model (``itemvec.models.useritem.base.UserItemModel``) answers
``predict``, ``score_users`` and ``recommend``. Models with learned vectors get all of these from one
embedding layer (``itemvec.models.embedding``); the others (heuristics, networks) implement them.

Training is the trainer's (``itemvec.train.Trainer``): ``fit(data, trainer)`` hands the model's steps to
it; ``fit(data, progress=False, run_dir=...)`` builds one from those options.
"""

from __future__ import annotations

import dataclasses
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

import numpy as np
import scipy.sparse as sp

from itemvec.config import check, replace
from itemvec.data.store import DataFolder, read_json_object
from itemvec.data.types import TrainingData  # noqa: F401 (what an item-item model's fit receives)
from itemvec.errors import ConfigError, InputError
from itemvec.outputs import load_npz

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from itemvec.data.types import Interactions
    from itemvec.train import Trainer

ModelT = TypeVar("ModelT", bound="Model")

PAIR_CHUNK = 1 << 18  # pairs scored per _score_pairs call

# Arrays saved by earlier versions under other names: read as today's names.
LEGACY_ARRAYS = {"query_": "item_vectors_", "candidate_": "context_vectors_", "bias_": "item_bias_",
                 "input_": "field_vectors_", "output_": "context_vectors_", "vectors_": "item_vectors_",
                 "user_factors_": "user_vectors_", "item_factors_": "item_vectors_"}


class Model:
    """The base of every model. Subclasses set ``name`` and ``Config`` and implement ``_fit(data, trainer)``,
    ``_state()`` / ``_set_state()`` for saving, and their kind's queries (see ``ItemModel`` and
    ``UserItemModel``)."""

    name: ClassVar[str] = "base"
    data_kind: ClassVar[str] = "pairs"  # the data it learns from: "pairs" or "ratings" (itemvec.registry.KINDS)
    known: ClassVar[tuple[str, ...]] = ("known_items_",)  # the masks of what the model has learned about
    # Arrays every model of a kind keeps beside its own state (set by ``_fitted``), saved when set; a run saved
    # before one existed loads with it None.
    kept: ClassVar[tuple[str, ...]] = ()
    known_items_: np.ndarray  # (n_items,) bool, set by fit() or load(); None before (see _check_fitted)
    data_fingerprint: str | None  # set by itemvec.runs.train_run: the DATA_DIR's, recorded in checkpoints

    @dataclass(frozen=True)
    class Config:
        seed: int = 0

    def __init__(self, config: Any = None, **settings: Any) -> None:
        config = config if config is not None else self.Config()
        self.config = replace(config, settings, source=self.name) if settings else config
        check(self.config, source=f"settings for {self.name}")
        for mask in self.known:
            setattr(self, mask, None)
        self.history_: list[dict[str, Any]] = []

    def fit(self, data: DataFolder | TrainingData | Interactions, trainer: Trainer | None = None,
            **options: Any) -> Self:
        """Learn from ``data``: an opened DATA_DIR (``itemvec.open_data``), or what its ``training()`` gives
        (``TrainingData`` for an item-item model, ``Interactions`` for a user-item one). ``trainer``: an
        ``itemvec.train.Trainer``; without one, ``options`` (progress, run_dir, resume, evaluate,
        stop_after_epochs) make one. Models that do not train ignore it. Returns the model."""
        from itemvec.train import Trainer

        if isinstance(data, DataFolder):
            if data.kind != self.data_kind:
                raise ConfigError(f"{self.name} learns from {self.data_kind} data; {data.path} holds {data.kind} "
                                  f"data (itemvec.registry.names({data.kind!r}) lists the models for it)")
            data = data.training()
        self._fit(data, trainer if trainer is not None else Trainer(**options))
        self._fitted(data)
        return self

    def _fitted(self, data: Any) -> None:
        """After ``_fit``: what every model of a kind keeps from its training data (nothing here)."""

    def _check_fitted(self) -> None:
        if any(getattr(self, mask) is None for mask in self.known):
            raise RuntimeError(f"{self.name}: call fit() or load() first")

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return len(self.known_items_)

    def similar_items(self, ids: ArrayLike, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        self._check_fitted()
        scores = np.full((len(ids), self.n_items), np.nan, dtype=np.float32)
        ok = (ids >= 0) & (ids < self.n_items)
        if ok.any():
            scores[ok] = self._similar_scores(ids[ok])
            scores[np.flatnonzero(ok), ids[ok]] = np.nan
        return top_k(scores, k)

    def probability(self, scores: np.ndarray) -> np.ndarray | None:
        """Scores as probabilities when the model has such a reading (None otherwise)."""
        return None

    # ---------------------------------------------------------------- subclass hooks

    def _fit(self, data: Any, trainer: Trainer) -> None:
        raise NotImplementedError

    def _similar_scores(self, queries: np.ndarray) -> np.ndarray:
        """(q, n_items) similarity of every item to each (valid) query, NaN where unscorable."""
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------- persistence

    def _meta(self) -> dict[str, Any]:
        return {"model": self.name, "config": dataclasses.asdict(self.config)}

    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        masks = {mask: getattr(self, mask) for mask in self.known}
        kept = {name: value for name in self.kept if (value := getattr(self, name, None)) is not None}
        return write_weights(directory, {**masks, **kept, **self._state()}, self._meta())

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = False) -> Self:
        """The model saved in ``directory``; with ``mmap`` its large arrays are memory-mapped from the weights
        file (copy-on-write), not read into memory (what a service loading many models wants)."""
        model, state = read_weights(cls, directory, mmap=mmap)
        kept = {name: state.pop(name, None) for name in cls.kept}
        model = restore(model, directory, state, {mask: mask for mask in cls.known})
        for name, value in kept.items():
            setattr(model, name, value)
        return model


class ItemModel(Model):
    """An item-item model: learned from product pairs; ``score_pairs`` and ``score_all`` over the items it
    knows (subclasses implement ``_score_pairs`` and ``_score_all`` for known items)."""

    data_kind = "pairs"

    def score_pairs(self, a: ArrayLike, b: ArrayLike) -> np.ndarray:
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

    def score_all(self, queries: ArrayLike) -> np.ndarray:
        self._check_fitted()
        queries = np.asarray(queries, dtype=np.int64)
        ok = self.known_items_[queries]
        unknown = getattr(self, "_unknown_columns", None)
        if unknown is None or unknown[0] is not self.known_items_:  # cached while known_items_ is the same array
            unknown = self._unknown_columns = (self.known_items_, np.flatnonzero(~self.known_items_))
        if ok.all():  # the usual case (a ranking of known queries): no second (queries, n_items) array
            scores = np.asarray(self._score_all(queries), dtype=np.float32)
            scores[:, unknown[1]] = np.nan
            return scores
        out = np.full((len(queries), self.n_items), np.nan, dtype=np.float32)
        if ok.any():
            scores = np.asarray(self._score_all(queries[ok]), dtype=np.float32)
            scores[:, unknown[1]] = np.nan
            out[ok] = scores
        return out

    def _similar_scores(self, queries: np.ndarray) -> np.ndarray:
        return self.score_all(queries)

    def _score_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score_all(self, queries: np.ndarray) -> np.ndarray:
        raise NotImplementedError


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


def sparse_state(prefix: str, matrix: sp.csr_matrix, *, binary: bool = False) -> dict[str, np.ndarray]:
    """A CSR matrix as weights arrays: ``<prefix>indptr``, ``<prefix>indices`` and, unless ``binary`` (every
    entry 1), ``<prefix>data``."""
    state = {f"{prefix}indptr": matrix.indptr, f"{prefix}indices": matrix.indices}
    if not binary:
        state[f"{prefix}data"] = matrix.data
    return state


def sparse_from_state(state: dict[str, np.ndarray], prefix: str, shape: tuple[int, int]) -> sp.csr_matrix:
    """The inverse of ``sparse_state``: without ``<prefix>data`` every entry is 1 (float32)."""
    indices = state[f"{prefix}indices"]
    data = state.get(f"{prefix}data")
    if data is None:
        data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, state[f"{prefix}indptr"]), shape=shape)


def write_weights(directory: str | Path, state: dict[str, np.ndarray], meta: dict[str, Any]) -> Path:
    """``weights.npz`` and ``model.json`` (each written under a temporary name, then renamed): a saved model.
    ``model.json`` records the shape and type of every array, so a weights file that does not belong to it is
    refused on load."""
    from itemvec.outputs import save_npz, write_json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.asarray(value) for name, value in state.items()}
    save_npz(directory / "weights.npz", arrays)
    schema = {name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in arrays.items()}
    write_json(directory / "model.json", {**meta, "arrays": schema})
    return directory


def read_model_json(directory: str | Path) -> dict[str, Any]:
    """A run's ``model.json``, checked: an object with a "model" name and a "config" table."""
    path = Path(directory) / "model.json"
    if not path.exists():
        raise InputError(f"{directory}: not a run folder (no model.json); run `itemvec train` first")
    meta = read_json_object(path, "a saved model")
    if not isinstance(meta.get("model"), str):
        raise InputError(f"{path}: no \"model\" name")
    if not isinstance(meta.get("config"), dict):
        raise InputError(f"{path}: \"config\" must be a table of settings, found "
                         f"{type(meta.get('config')).__name__}")
    if "arrays" in meta and not isinstance(meta["arrays"], dict):
        raise InputError(f"{path}: \"arrays\" must be a table")
    return meta


def read_weights(cls: type[ModelT], directory: str | Path, *, mmap: bool = False,
                 ) -> tuple[ModelT, dict[str, np.ndarray]]:
    """The inverse of ``write_weights`` for a model class: (a model with the saved config, its arrays). Every
    mismatch (a config key the model does not have, a value out of range, a missing or reshaped array) is one
    InputError or ConfigError naming the file."""
    directory = Path(directory)
    meta = read_model_json(directory)
    if meta["model"] != cls.name:
        raise InputError(f"{directory} holds a {meta['model']!r} model, not {cls.name!r}")
    model = cls(replace(cls.Config(), meta["config"], source=str(directory / "model.json")))
    path = directory / "weights.npz"
    try:
        state = load_npz(path, mmap=mmap)
    except FileNotFoundError:
        raise InputError(f"{path}: missing; the run did not finish (run `itemvec train` again)") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable weights file ({exc})") from None
    schema = meta.get("arrays")
    if schema is not None:
        for name, spec in schema.items():
            if name not in state:
                raise InputError(f"{path}: no array {name!r} ({directory / 'model.json'} lists it)")
            shape = list(state[name].shape)
            if not isinstance(spec, dict) or spec.get("shape") != shape or spec.get("dtype") != state[name].dtype.str:
                raise InputError(f"{path}: array {name!r} is {state[name].dtype.str} {shape}, but "
                                 f"{directory / 'model.json'} records {spec}")
        extra = sorted(set(state) - set(schema))
        if extra:
            raise InputError(f"{path}: arrays {extra} are not in {directory / 'model.json'}")
    return model, state


def restore(model: ModelT, directory: str | Path, state: dict[str, np.ndarray], known: dict[str, str]) -> ModelT:
    """Set a loaded model's ``known_*_`` masks (``known``: attribute → array name) and its state; a state that
    does not fit the model is one InputError naming the weights file."""
    path = Path(directory) / "weights.npz"
    for old, new in LEGACY_ARRAYS.items():
        if old in state and new not in state:
            state[new] = state.pop(old)
    try:
        for attribute, name in known.items():
            mask = state.pop(name)
            if mask.ndim != 1:
                raise ValueError(f"{name} must be one-dimensional")
            setattr(model, attribute, mask.astype(bool))
        model._set_state(state)
    except (KeyError, ValueError, IndexError, TypeError, RuntimeError) as exc:
        raise InputError(f"{path}: does not fit a {model.name!r} model ({type(exc).__name__}: {exc})") from None
    return model


def load_model(directory: str | Path, *, mmap: bool = False) -> Model:
    """Load any registered model from a directory written by ``save`` (``mmap``: see ``Model.load``)."""
    from itemvec import registry

    meta = read_model_json(directory)
    return registry.get(meta["model"], registry.run_kind(meta)).load(directory, mmap=mmap)
