"""The in-memory data every model receives, in one place: product pairs, evaluation pairs and user-item
interactions as parallel numpy arrays (dense int ids, see :class:`itemvec.data.pairs.IdMap`). Readers build
them (itemvec.data.store); models and the evaluation read them and never open a folder for them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from itemvec.data.store import DataDir


def _alone(array: np.ndarray, op: str) -> None:
    """The all-reduce of a single process: every figure is already the whole."""


@dataclass
class RankShare:
    """What a rank of a distributed run holds of the train part (itemvec.distributed): ``rank`` of ``world``;
    ``held``: only its own rows of the part's ``total`` rows (a model then takes every figure over the
    whole catalogue, a degree or a count, through ``all_reduce``: in place over the ranks, "sum" or "max").
    The default is the single process, which holds every row."""

    rank: int = 0
    world: int = 1
    held: bool = False
    total: int = 0
    all_reduce: Callable[[np.ndarray, str], None] = field(default=_alone, repr=False)

    def count(self, ids: np.ndarray, n: int) -> np.ndarray:
        """(n,) int64: how often each id occurs in ``ids``, this rank's own rows (or walks), summed over the
        ranks."""
        counts = np.bincount(ids, minlength=n).astype(np.int64)
        if self.world > 1:
            self.all_reduce(counts, "sum")
        return counts

    def summed(self, value: int) -> int:
        """The sum of every rank's ``value`` (a count of its own rows)."""
        box = np.array([value], dtype=np.int64)
        if self.world > 1:
            self.all_reduce(box, "sum")
        return int(box[0])

    def largest(self, value: float) -> float:
        """The largest of every rank's ``value`` (of its own rows)."""
        box = np.array([value], dtype=np.float64)
        if self.world > 1:
            self.all_reduce(box, "max")
        return float(box[0])

    def walk_rows(self, n: int) -> tuple[int, int]:
        """The rows ``[lo, hi)`` of ``n`` generated sequences (walks) this rank trains: every row once over the
        ranks (all of them in a single process)."""
        return share_of(n, self.rank, self.world)


def share_of(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous rows ``[lo, hi)`` of ``n`` split among ``world`` ranks: every row once."""
    return n * rank // world, n * (rank + 1) // world


@dataclass
class Pairs:
    """Unique undirected pairs: ``item_a < item_b`` (int32), summed ``weight`` and a ``relations`` bitmask
    (bit ``k`` set when relation ``relation_names[k]`` links the pair)."""

    item_a: np.ndarray
    item_b: np.ndarray
    weight: np.ndarray
    relations: np.ndarray
    relation_names: list[str]

    def __len__(self) -> int:
        return len(self.item_a)

    def take(self, index: np.ndarray) -> Pairs:
        return Pairs(self.item_a[index], self.item_b[index], self.weight[index], self.relations[index],
                     self.relation_names)


@dataclass
class EvalPairs:
    """Positives followed by negatives of one split part: ``item_a``, ``item_b`` (int64), ``label`` (0/1)."""

    item_a: np.ndarray
    item_b: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


@dataclass
class Interactions:
    """Ratings of one split part as parallel arrays, plus what every model may read about the data.

    ``user``, ``item`` (int64 dense ids in ``[0, n_users)`` / ``[0, n_items)``), ``rating`` (float32 on the
    data's scale ``[rating_min, rating_max]``), ``timestamp`` (int64 seconds, 0 when unknown).
    ``threshold``: the implicit view; ratings at or above it are positives.
    ``user_features`` / ``item_features``: optional (n_users, f) / (n_items, g) CSR matrices of 0/1 side
    features (genres, year bucket, age bucket, gender, occupation, brand, category), with their column names.
    ``validation``: the validation part, for learning curves (None or empty when the split has none).
    """

    n_users: int
    n_items: int
    user: np.ndarray
    item: np.ndarray
    rating: np.ndarray
    timestamp: np.ndarray
    rating_min: float = 1.0
    rating_max: float = 5.0
    threshold: float = 4.0
    user_features: sp.csr_matrix | None = None
    item_features: sp.csr_matrix | None = None
    user_feature_names: list[str] | None = None
    item_feature_names: list[str] | None = None
    validation: Interactions | None = None
    share: RankShare = field(default_factory=RankShare, repr=False)  # a distributed rank's rows (RankShare)

    def __len__(self) -> int:
        return len(self.user)

    @property
    def positive(self) -> np.ndarray:
        """(n,) bool: the implicit view, rating >= threshold."""
        return self.rating >= self.threshold

    def scaled(self, ratings: np.ndarray) -> np.ndarray:
        """Ratings mapped onto [0, 1] (the scale of the "PyTorch for Recommenders 101" figures)."""
        return (np.asarray(ratings, dtype=np.float64) - self.rating_min) / (self.rating_max - self.rating_min)

    def matrix(self, positives_only: bool = False) -> sp.csr_matrix:
        """(n_users, n_items) CSR with 1 where the user rated the item (or rated it >= threshold)."""
        keep = self.positive if positives_only else np.ones(len(self), dtype=bool)
        m = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (self.user[keep], self.item[keep])),
                          shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    def subset(self, mask: np.ndarray) -> Interactions:
        """The same data restricted to the rows in ``mask`` (features and validation kept)."""
        return dataclasses.replace(self, user=self.user[mask], item=self.item[mask], rating=self.rating[mask],
                                   timestamp=self.timestamp[mask])


@dataclass
class Sequences:
    """Item sequences (sessions or walks): sequence ``k`` is ``tokens[offsets[k]:offsets[k+1]]`` (int32 ids,
    int64 offsets)."""

    tokens: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1


@dataclass
class SideInformation:
    """The catalogue's side fields per item, in a fixed order: ``names[f]`` and ``values[f]`` of shape
    (n_items,): int64 codes 0..k-1 (-1 where missing) for categorical fields (brand, leaf category, a session
    data set's attribute slots), float64 with NaN where missing for ``price``."""

    names: list[str]
    values: list[np.ndarray]


def _nothing() -> None:
    return None


@dataclass
class TrainingData:
    """What an item-item model's fit() receives: the train pairs, the validation pairs with negatives (for
    learning curves) and, read on first use by the models that want them, the session sequences of a session
    DATA_DIR (None for other data) and the catalogue's side information. Built by ``DataDir.training()``; a
    model never opens the DATA_DIR itself."""

    n_items: int
    train: Pairs
    validation: EvalPairs | None = None
    read_sessions: Callable[[], Sequences | None] = field(default=_nothing, repr=False)
    read_side_information: Callable[[], SideInformation | None] = field(default=_nothing, repr=False)
    share: RankShare = field(default_factory=RankShare, repr=False)  # a distributed rank's rows (RankShare)

    @classmethod
    def from_data_dir(cls, data: DataDir | str | Path) -> TrainingData:
        """The training data of a DATA_DIR (a ``DataDir`` or its path)."""
        from itemvec.data.store import DataDir

        return (data if isinstance(data, DataDir) else DataDir(data)).training()

    @cached_property
    def sessions(self) -> Sequences | None:
        return self.read_sessions()

    @cached_property
    def side_information(self) -> SideInformation | None:
        return self.read_side_information()

    def degree(self) -> np.ndarray:
        """(n_items,) int64: number of train pairs each item is in (over every rank's rows)."""
        ids = np.concatenate([self.train.item_a, self.train.item_b])
        return self.share.count(ids, self.n_items) if self.share.held else np.bincount(ids, minlength=self.n_items)
