"""Id maps, weighted symmetric pairs from relation mentions, and the seeded train/validation/test split.

Memory: the mentions are three flat arrays (int32 source, int32 target, uint8 relation), 9 bytes per
mention; building the pairs sorts one int64 key per mention. Nothing here grows with the raw input size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from itemvec.data.types import Pairs
from itemvec.errors import ConfigError

# The reference study's weights: a pair's weight is the sum over the relation types that link it.
DEFAULT_WEIGHTS = {"bought_together": 1.2, "also_bought": 1.0, "also_viewed": 0.5}
DEFAULT_SPLIT = (0.667, 0.167, 0.166)


class IdMap:
    """Original string ids ↔ dense int32 ids, in order of first appearance.

    A plain dict is the map: Python dicts keep insertion order, so the string of id ``i`` is the ``i``-th key.
    """

    def __init__(self, keys: list[str] | None = None) -> None:
        self.index: dict[str, int] = {}
        for key in keys or []:
            self.index.setdefault(key, len(self.index))

    def __len__(self) -> int:
        return len(self.index)

    def add(self, key: str) -> int:
        return self.index.setdefault(key, len(self.index))

    def add_many(self, keys: list[str]) -> list[int]:
        index = self.index
        # len(index) is evaluated before the insertion, so a new key gets the next id.
        return [index.setdefault(key, len(index)) for key in keys]

    def keys(self) -> list[str]:
        return list(self.index)

    def lookup(self, keys: list[str]) -> np.ndarray:
        """Dense ids of ``keys``; -1 for a key not in the map."""
        get = self.index.get
        return np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))


@dataclass
class PairStats:
    self_pairs_dropped: int
    mentions_per_relation: dict[str, int]
    unique_pairs_per_relation: dict[str, int]
    pairs_per_relation: dict[str, int]


def pair_keys(a: np.ndarray, b: np.ndarray, n_items: int) -> np.ndarray:
    """One int64 key per unordered pair: ``min * n_items + max`` (made in place: one int64 array at a time)."""
    key = np.minimum(a, b).astype(np.int64)
    key *= np.int64(n_items)
    key += np.maximum(a, b)
    return key


def merge_unique(combo_unique: np.ndarray, combo_weight: np.ndarray, n_types: int, n_items: int,
                 relation_names: list[str]) -> tuple[Pairs, dict[str, int]]:
    """Distinct sorted ``pair key * n_types + relation`` keys and their weights to pairs (numpy): a pair's
    weight is the sum of its weighted relations' (``add.reduceat``), its bits those relations. Also each
    relation's number of distinct keys. ``build_pairs`` does this with one kernel (itemvec.data.merge) where
    the weights are per relation type."""
    rel_unique = (combo_unique % n_types).astype(np.int64)
    unique_per_relation = {name: int(c) for name, c in
                           zip(relation_names, np.bincount(rel_unique, minlength=n_types))}
    weighted = combo_weight > 0
    if not weighted.all():
        combo_unique, rel_unique, combo_weight = combo_unique[weighted], rel_unique[weighted], combo_weight[weighted]
    del weighted
    key_unique = combo_unique // n_types
    starts = np.flatnonzero(np.r_[True, key_unique[1:] != key_unique[:-1]]) if len(key_unique) else np.array([], int)
    pair_key = key_unique[starts]
    weight = np.add.reduceat(combo_weight, starts) if len(starts) else np.array([], np.float64)
    bits = np.left_shift(np.uint16(1), rel_unique.astype(np.uint16))
    relations = np.bitwise_or.reduceat(bits, starts) if len(starts) else np.array([], np.uint16)
    pairs = Pairs(
        item_a=(pair_key // n_items).astype(np.int32),
        item_b=(pair_key % n_items).astype(np.int32),
        weight=weight.astype(np.float32),
        relations=relations.astype(np.uint16),
        relation_names=list(relation_names),
    )
    return pairs, unique_per_relation


def build_pairs(
    source: np.ndarray,
    target: np.ndarray,
    relation: np.ndarray,
    relation_names: list[str],
    n_items: int,
    weights: dict[str, float],
    pair_weight: np.ndarray | None = None,
) -> tuple[Pairs, PairStats]:
    """Merge directed mentions into unique weighted undirected pairs.

    A relation links a pair once, however many times and in whichever direction it is mentioned (a product
    listed twice, or two products listing each other, is not double counted). A pair's weight is the sum of
    the weights of the relation types that link it; types without a weight (or weight 0) make no pairs but are
    counted. Self pairs are dropped and counted. ``pair_weight`` (edge lists) replaces the type weight with a
    per-mention weight; duplicates of one pair then keep the largest.
    """
    n_types = max(len(relation_names), 1)
    is_self = source == target
    n_self = int(is_self.sum())
    keep = ~is_self if n_self else slice(None)  # no copies of 38 M mentions (Books size) when none is a self pair
    del is_self
    source, target, relation = source[keep], target[keep], relation[keep]
    mentions = {name: int(c) for name, c in zip(relation_names, np.bincount(relation, minlength=n_types))}
    combo = pair_keys(source, target, n_items)  # then (pair key, relation): in place, one int64 array
    combo *= np.int64(n_types)
    combo += relation
    if pair_weight is not None:
        mention_weight = pair_weight[keep].astype(np.float64)
        order = np.lexsort((-mention_weight, combo))
        combo_sorted = combo[order]
        first = np.ones(len(combo_sorted), dtype=bool)
        first[1:] = combo_sorted[1:] != combo_sorted[:-1]
        del combo
        pairs, unique_per_relation = merge_unique(combo_sorted[first], mention_weight[order][first], n_types,
                                                  n_items, relation_names)
    else:
        from itemvec.data.merge import merge_sorted

        combo.sort()
        type_weight = np.array([float(weights.get(name, 0.0)) for name in relation_names] or [0.0])
        unique_counts = np.zeros(n_types, np.int64)
        none = np.zeros(0, np.int32)
        n_pairs = merge_sorted(combo, n_types, type_weight, n_items, unique_counts, none, none,
                               np.zeros(0, np.float32), np.zeros(0, np.uint16), False)
        pairs = Pairs(item_a=np.empty(n_pairs, np.int32), item_b=np.empty(n_pairs, np.int32),
                      weight=np.empty(n_pairs, np.float32), relations=np.empty(n_pairs, np.uint16),
                      relation_names=list(relation_names))
        merge_sorted(combo, n_types, type_weight, n_items, unique_counts, pairs.item_a, pairs.item_b, pairs.weight,
                     pairs.relations, True)
        unique_per_relation = {name: int(c) for name, c in zip(relation_names, unique_counts)}
        del combo
    per_relation = {name: int(np.count_nonzero(pairs.relations & (1 << k)))
                    for k, name in enumerate(relation_names)}
    stats = PairStats(n_self, mentions, unique_per_relation, per_relation)
    return pairs, stats


def parse_weights(text: str | None) -> dict[str, float]:
    """``"bought_together=1.2,also_bought=1.0"`` → dict; None → the reference study's defaults."""
    if text is None or not text.strip():
        return dict(DEFAULT_WEIGHTS)
    from itemvec.data.amazon import RELATION_ALIASES

    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = RELATION_ALIASES.get(name.strip(), name.strip())
        try:
            weights[name] = float(value)
        except ValueError:
            raise ConfigError(f"--weights: expected NAME=NUMBER, got {part.strip()!r}") from None
        if not sep or not name:
            raise ConfigError(f"--weights: expected NAME=NUMBER, got {part.strip()!r}")
        if not 0 <= weights[name] <= 1e6:  # also refuses nan and inf
            raise ConfigError(f"--weights: {name}={value.strip()} is out of range; expected [0, 1e+06]")
    return weights


def parse_split(text: str | None) -> tuple[float, float, float]:
    """``"0.667,0.167,0.166"`` → fractions summing to 1 (within 1e-3; then normalised)."""
    if text is None or not text.strip():
        return DEFAULT_SPLIT
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ConfigError(f"--split: expected TRAIN,VAL,TEST fractions, got {text!r}") from None
    # Every part must get pairs: a split without validation or test pairs fails later, not here.
    if len(parts) != 3 or not all(0 < p < 1 for p in parts) or abs(sum(parts) - 1) > 1e-3:
        raise ConfigError(f"--split: expected three fractions in (0, 1) summing to 1 (train, validation, test), "
                          f"got {text!r}")
    total = sum(parts)
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def split_indices(n_pairs: int, fractions: tuple[float, float, float], seed: int) -> list[np.ndarray]:
    """A seeded random partition of ``range(n_pairs)`` into train / validation / test (each sorted)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_pairs)
    n_train = int(round(n_pairs * fractions[0]))
    n_val = int(round(n_pairs * fractions[1]))
    n_val = min(n_val, n_pairs - n_train)
    # Each part's indices ascending, as np.sort of its slice of ``order`` gives them, by one labelling pass
    # instead of three sorts (the indices are distinct).
    label = np.full(n_pairs, 2, dtype=np.int8)
    label[order[:n_train]] = 0
    label[order[n_train:n_train + n_val]] = 1
    del order
    return [np.flatnonzero(label == part) for part in range(3)]
