"""Nearest-neighbour search by a model's own scoring rule: an exact scan, or a faiss HNSW index.

Every rule of the embedding layer (``itemvec.models.embedding``) is one inner product over transformed
vectors, a query side Q and a key side K, plus a constant per query (which does not change the ranking and
is added back to the scores):

- ``dot`` with biases:  q_a·q_b + b_b + (b_a + g)           Q_a = [q_a, 1]            K_b = [q_b, b_b]
- ``two-role``:         ½(q_a·c_b + q_b·c_a) + b_b + (b_a + g)
                                                             Q_a = [½q_a, ½c_a, 1]     K_b = [c_b, q_b, b_b]
  since [½q_a, ½c_a]·[c_b, q_b] = ½ q_a·c_b + ½ c_a·q_b;
- ``cosine``:           q_a·q_b / (|q_a| |q_b|)               Q_a = q_a / |q_a|         K_b = q_b / |q_b|
- user-item:            p_u·v_i + b_i + (b_u + g)             Q_u = [p_u, 1]            K_i = [v_i, b_i]
  (a user-item model's ``similar_items`` is the cosine of its item vectors).

(Without biases the bias column is left out.) The HNSW graph is built over K with faiss's inner-product metric.
(Measured before choosing: the usual reduction of inner product to L2, K' = [K, sqrt(M² - |K|²)], found
0.75-0.94 of the exact top-10 on 20,000 random two-role items at efSearch 64-256, the inner-product graph
0.985-1.0.) The candidates HNSW returns are re-scored exactly, so a returned score is the model's score.

Only the items the model learned are in the index. Filters (the query itself, its known partners or a
user's seen items, a category or brand) are an allowed-items mask, passed to faiss as an ``IDSelectorBitmap``;
when the mask leaves few items, or HNSW returns fewer than k of the allowed ones, the exact scan over the
allowed items answers, so a search returns exactly k results whenever k items are allowed.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from itemvec.errors import InputError
from itemvec.models.embedding import Embedding

INDEX_JSON = "index.json"
FILES = {"similar": "index.faiss", "recommend": "index-recommend.faiss"}
ALL_FILES = (INDEX_JSON, *FILES.values())  # what `itemvec index` writes into a RUN_DIR
EXACT_BELOW = 4096  # allowed items under which the exact scan is cheaper than a filtered graph search


@dataclass
class Space:
    """Query and key vectors whose inner product plus ``offset`` is the model's score."""

    keys: np.ndarray  # (n_items, d) float32
    queries: np.ndarray  # (n_queries, d) float32: one row per item (similar) or per user (recommend)
    offset: np.ndarray  # (n_queries,) float64, added to every score of that query


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def similar_space(emb: Embedding, *, cosine: bool = False) -> Space:
    """The item-item rule of ``emb`` (or the cosine of its item vectors) as one inner product."""
    q = emb.item_vectors.astype(np.float64)
    n = len(q)
    if cosine or emb.rule == "cosine":
        unit = _unit(q).astype(np.float32)
        return Space(unit, unit, np.zeros(n))
    if emb.rule == "two-role":
        assert emb.context_vectors is not None  # Embedding refuses a two-role rule without them
        c = emb.context_vectors.astype(np.float64)
        queries, keys = np.hstack([0.5 * q, 0.5 * c]), np.hstack([c, q])
    else:
        queries, keys = q, q
    offset = np.zeros(n)
    if emb.item_bias is not None:
        queries = np.hstack([queries, np.ones((n, 1))])
        keys = np.hstack([keys, emb.item_bias[:, None].astype(np.float64)])
        offset = emb.item_bias.astype(np.float64) + emb.global_bias
    return Space(keys.astype(np.float32), queries.astype(np.float32), offset)


def recommend_space(emb: Embedding) -> Space:
    """A user-item model's score u·v_i + b_i + b_u + g as one inner product."""
    if emb.user_vectors is None:
        raise ValueError("recommend_space needs user vectors")
    p = emb.user_vectors.astype(np.float64)
    v = emb.item_vectors.astype(np.float64)
    offset = np.full(len(p), float(emb.global_bias))
    if emb.user_bias is not None:
        offset = offset + emb.user_bias
    if emb.item_bias is not None:
        p = np.hstack([p, np.ones((len(p), 1))])
        v = np.hstack([v, emb.item_bias[:, None].astype(np.float64)])
    return Space(v.astype(np.float32), p.astype(np.float32), offset)


def exact_search(space: Space, query: int, k: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top-k allowed items of one query by the exact scan (ids, scores; padded with -1 / NaN)."""
    from itemvec.models.base import top_k

    candidates = np.flatnonzero(allowed)
    scores = space.keys[candidates].astype(np.float64) @ space.queries[query].astype(np.float64)
    top, values = top_k(scores[None, :], k) if len(candidates) else (np.full((1, k), -1), np.full((1, k), np.nan))
    return np.where(top[0] >= 0, candidates[top[0]], -1), values[0] + space.offset[query]


def _import_faiss():
    try:
        import faiss
    except ImportError:
        raise InputError("the index needs faiss: pip install 'itemvec[serve]' (or faiss-cpu)") from None
    return faiss


class HNSWIndex:
    """A faiss HNSW graph over the learned items' keys (``positions``: the item of each stored vector)."""

    def __init__(self, index, positions: np.ndarray, n_items: int, ef_search: int) -> None:
        self.index, self.positions, self.n_items, self.ef_search = index, positions, n_items, ef_search
        self.slot = np.full(n_items, -1, dtype=np.int64)
        self.slot[positions] = np.arange(len(positions))

    @classmethod
    def build(cls, keys: np.ndarray, learned: np.ndarray, *, m: int = 32, ef_construction: int = 200,
              ef_search: int = 64) -> HNSWIndex:
        faiss = _import_faiss()
        positions = np.flatnonzero(learned)
        stored = np.ascontiguousarray(keys[positions], dtype=np.float32)
        index = faiss.IndexHNSWFlat(stored.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        if len(stored):
            index.add(stored)
        return cls(index, positions, len(keys), ef_search)

    def search(self, space: Space, query: int, k: int, allowed: np.ndarray, ef_search: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _import_faiss()
        allowed = allowed & (self.slot >= 0)
        n_allowed = int(allowed.sum())
        if n_allowed <= max(EXACT_BELOW, k):
            return exact_search(space, query, k, allowed)
        bitmap = np.packbits(allowed[self.positions], bitorder="little")
        selector = faiss.IDSelectorBitmap(len(self.positions), faiss.swig_ptr(bitmap))
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(ef_search or self.ef_search, k))
        q = np.ascontiguousarray(space.queries[query][None, :], dtype=np.float32)
        _, found = self.index.search(q, k, params=params)
        found = found[0][found[0] >= 0]
        if len(found) < k:  # the graph search ran out of allowed neighbours: the exact scan answers
            return exact_search(space, query, k, allowed)
        items = self.positions[found]
        scores = space.keys[items].astype(np.float64) @ space.queries[query].astype(np.float64)
        order = np.argsort(-scores, kind="stable")
        return items[order], scores[order] + space.offset[query]

    def to_bytes(self) -> bytes:
        return _import_faiss().serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, positions: np.ndarray, n_items: int, ef_search: int) -> HNSWIndex:
        index = _import_faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.ntotal != len(positions):
            raise InputError(f"the index holds {index.ntotal} vectors but the model learned {len(positions)} items")
        return cls(index, positions, n_items, ef_search)


def weights_digest(run_dir: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(Path(run_dir) / "weights.npz", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def spaces_of(model) -> dict[str, Space]:
    """The searches a model answers through an index: ``similar`` (both kinds) and ``recommend``."""
    if not getattr(model, "has_embedding", False):
        raise InputError(f"{model.name} has no vectors to index (it scores without an embedding); its queries "
                         "use the exact scan")
    emb = model.embedding()
    if model.data_kind == "pairs":
        return {"similar": similar_space(emb)}
    return {"similar": similar_space(emb, cosine=True), "recommend": recommend_space(emb)}


def build_run_index(run_dir: str | Path, model: Any, *, m: int = 32, ef_construction: int = 200, ef_search: int = 64) -> dict:
    """Build the run's index files (under temporary names, then renamed); returns index.json's content."""
    from itemvec.outputs import atomic_write, write_json

    run_dir = Path(run_dir)
    info: dict = {"backend": "faiss-hnsw", "m": m, "ef_construction": ef_construction, "ef_search": ef_search,
                  "model": model.name, "weights_digest": weights_digest(run_dir), "searches": {}}
    for search, space in spaces_of(model).items():
        started = time.perf_counter()
        index = HNSWIndex.build(space.keys, model.known_items_, m=m, ef_construction=ef_construction,
                                ef_search=ef_search)
        data = index.to_bytes()
        with atomic_write(run_dir / FILES[search]) as out:
            out.write(data)
        info["searches"][search] = {"file": FILES[search], "vectors": int(index.index.ntotal),
                                    "dim": int(space.keys.shape[1]), "build_seconds":
                                    round(time.perf_counter() - started, 3), "bytes": len(data)}
    write_json(run_dir / INDEX_JSON, info)
    return info


def load_run_index(run_dir: str | Path, model: Any) -> dict[str, HNSWIndex] | None:
    """The run's indexes, or None when it has none. An index of other weights (the run was trained again
    after ``itemvec index``) is refused with a hint."""
    run_dir = Path(run_dir)
    path = run_dir / INDEX_JSON
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
        searches = info["searches"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not an index description written by `itemvec index`") from None
    if info.get("weights_digest") != weights_digest(run_dir):
        raise InputError(f"{path}: the index was built from other weights; run `itemvec index {run_dir}` again")
    indexes = {}
    positions = np.flatnonzero(model.known_items_)
    for search in searches:  # the file names are ours (FILES), never read from the JSON
        if search not in FILES:
            continue
        indexes[search] = HNSWIndex.from_bytes((run_dir / FILES[search]).read_bytes(), positions, model.n_items,
                                               int(info.get("ef_search", 64)))
    return indexes


class Neighbours:
    """A fitted model's two searches with filters: ``similar`` (item → items) and ``recommend`` (user → items),
    through the run's index when it has one and by the exact scan otherwise. ``allowed``: a boolean mask over
    the items (None: all); the query item is never its own neighbour. Returns (ids, scores), k long, padded
    with -1 / NaN only when fewer than k items are allowed."""

    def __init__(self, model, indexes: dict[str, HNSWIndex] | None = None) -> None:
        self.model = model
        self.indexes = indexes or {}
        self._spaces: dict[str, Space] | None = None

    @property
    def uses_index(self) -> bool:
        return bool(self.indexes)

    def space(self, search: str) -> Space:
        """The query and key vectors of ``search`` ("similar" or "recommend"), made once."""
        if self._spaces is None:
            self._spaces = spaces_of(self.model)
        return self._spaces[search]

    def _allowed(self, allowed: np.ndarray | None) -> np.ndarray:
        n = self.model.n_items
        mask = np.ones(n, dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool).copy()
        if mask.shape != (n,):
            raise ValueError(f"allowed: expected a mask of {n} items, got shape {mask.shape}")
        return mask

    def similar(self, item: int, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from itemvec.models.base import top_k

        model = self.model
        mask = self._allowed(allowed)
        mask[item] = False
        if not model.known_items_[item]:
            return np.full(k, -1, dtype=np.int64), np.full(k, np.nan)
        if "similar" in self.indexes:
            return self.indexes["similar"].search(self.space("similar"), item, k, mask & model.known_items_)
        scores = model._similar_scores(np.array([item]))[0].astype(np.float64)
        scores[~mask] = np.nan
        ids, values = top_k(scores[None, :], k)
        return ids[0], values[0]

    def recommend(self, user: int, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        from itemvec.models.base import top_k

        model = self.model
        mask = self._allowed(allowed)
        if "recommend" in self.indexes and model.known_users_[user]:
            return self.indexes["recommend"].search(self.space("recommend"), user, k, mask & model.known_items_)
        scores = model.score_users(np.array([user]))[0].astype(np.float64)
        scores[~mask] = np.nan
        ids, values = top_k(scores[None, :], k)
        return ids[0], values[0]
