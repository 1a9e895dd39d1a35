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

Only the items the model learned are in the index. Filters come in two forms. A short list of items to
leave out (the query itself, its known partners, a user's seen items) is applied by asking the graph for k
more results than the list is long and dropping them: no per-query work over all items. A mask (a category or
brand) is passed to faiss as an ``IDSelectorBitmap``. When the mask leaves few items, or HNSW returns fewer
than k of the allowed ones, the exact scan over the allowed items answers, so a search returns exactly k
results whenever k items are allowed.
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
OVERFETCH_MAX = 256  # a leave-out list up to this long is dropped from a larger graph answer, not masked


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


BACKENDS = ("hnsw", "ivf")


def default_nlist(n: int) -> int:
    """Inverted lists for ``n`` vectors: the power of two nearest 8√n, with at least 39 vectors per list to
    train k-means on (faiss's own floor)."""
    if n < 39:
        return 1
    wanted = 2 ** round(np.log2(8 * np.sqrt(n)))
    return int(max(1, min(wanted, 2 ** int(np.log2(n // 39)))))


def default_nprobe(nlist: int) -> int:
    """Lists an IVF search visits: 3/256 of them (48 of 4096: recall@10 0.95 at over 20 times the exact scan's
    speed at Electronics size in benchmarks/bench_index.py), at least 16."""
    return int(min(nlist, max(16, (3 * nlist) // 256)))


class FaissIndex:
    """A faiss index over the learned items' keys (``positions``: the item of each stored vector), by the
    inner product: an HNSW graph (``hnsw``) or an inverted file of k-means lists scanned exactly (``ivf``).
    ``breadth`` is how far a search looks: HNSW's efSearch, or the IVF lists visited (nprobe)."""

    def __init__(self, index, positions: np.ndarray, n_items: int, breadth: int) -> None:
        faiss = _import_faiss()
        self._owner = index  # the object that owns the C++ index: a downcast view of it does not
        self.index = faiss.downcast_index(index)
        self.backend = "ivf" if isinstance(self.index, faiss.IndexIVF) else "hnsw"
        self.positions, self.n_items, self.breadth = positions, n_items, breadth
        self.slot = np.full(n_items, -1, dtype=np.int64)
        self.slot[positions] = np.arange(len(positions))
        self._params: dict[int, Any] = {}  # breadth → faiss search parameters without a filter

    @classmethod
    def build(cls, keys: np.ndarray, learned: np.ndarray, *, backend: str = "hnsw", m: int = 32,
              ef_construction: int = 200, ef_search: int = 64, nlist: int | None = None,
              nprobe: int | None = None) -> FaissIndex:
        faiss = _import_faiss()
        if backend not in BACKENDS:
            raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
        positions = np.flatnonzero(learned)
        stored = np.ascontiguousarray(keys[positions], dtype=np.float32)
        dim = stored.shape[1]
        if backend == "hnsw":
            index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            breadth = ef_search
        else:
            nlist = nlist or default_nlist(len(stored))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = 1  # k-means' sample and starting centroids: the same index from the same weights
            if len(stored):
                index.train(stored)
            breadth = nprobe or default_nprobe(nlist)
        if len(stored):
            index.add(stored)
        return cls(index, positions, len(keys), breadth)

    def search(self, space: Space, query: int, k: int, allowed: np.ndarray | None = None,
               exclude: np.ndarray | None = None, breadth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of ``query`` among the learned items that ``allowed`` (a mask over all items; None: every
        item) keeps and that are not in ``exclude`` (item ids)."""
        leave_out = np.empty(0, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64)
        ef = breadth or self.breadth
        if allowed is None and len(leave_out) <= OVERFETCH_MAX and k + len(leave_out) <= len(self.positions):
            found = self._graph(space, query, k + len(leave_out), ef)
            if len(leave_out):  # a broadcast comparison: for lists this short, faster than np.isin's sort
                found = found[(found[:, None] != leave_out[None, :]).all(axis=1)]
            if len(found) >= k:
                return self._rescored(space, query, found, k)
        mask = np.ones(self.n_items, dtype=bool) if allowed is None else allowed.copy()
        mask[leave_out] = False
        mask &= self.slot >= 0
        if int(mask.sum()) <= max(EXACT_BELOW, k):
            return exact_search(space, query, k, mask)
        faiss = _import_faiss()
        bitmap = np.packbits(mask[self.positions], bitorder="little")
        selector = faiss.IDSelectorBitmap(len(self.positions), faiss.swig_ptr(bitmap))
        found = self._graph(space, query, k, ef, selector)
        if len(found) < k:  # the search ran out of allowed neighbours: the exact scan answers
            return exact_search(space, query, k, mask)
        return self._rescored(space, query, found, k)

    def _graph(self, space: Space, query: int, k: int, breadth: int, selector: Any = None) -> np.ndarray:
        """The items of the index search's top-k (fewer when it ran out)."""
        breadth = min(breadth, self.index.nlist) if self.backend == "ivf" else max(breadth, k)
        params = self._params.get(breadth) if selector is None else None
        if params is None:
            faiss = _import_faiss()
            extra = {} if selector is None else {"sel": selector}
            params = (faiss.SearchParametersIVF(nprobe=breadth, **extra) if self.backend == "ivf"
                      else faiss.SearchParametersHNSW(efSearch=breadth, **extra))
            if selector is None:  # made once per breadth: a SWIG object costs as much as a small search
                self._params[breadth] = params
        q = np.ascontiguousarray(space.queries[query][None, :], dtype=np.float32)
        _, found = self.index.search(q, k, params=params)
        return self.positions[found[0][found[0] >= 0]]

    @staticmethod
    def _rescored(space: Space, query: int, items: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The best k of ``items`` by the exact score (float64), best first."""
        scores = space.keys[items].astype(np.float64) @ space.queries[query].astype(np.float64)
        order = np.argsort(-scores, kind="stable")[:k]
        return items[order], scores[order] + space.offset[query]

    @classmethod
    def read(cls, path: Path, positions: np.ndarray, n_items: int, breadth: int, backend: str) -> FaissIndex:
        """An index file. An HNSW graph's vectors are memory-mapped, read-only (faiss's IO_FLAG_MMAP_IFC): they
        stay in the file's pages, shared and read on demand. An inverted file is read into memory: its
        memory-mapped lists (IO_FLAG_MMAP) searched three times slower (1.8 ms against 0.59 ms a query at
        Electronics size, measured)."""
        faiss = _import_faiss()
        flags = 0 if backend == "ivf" else faiss.IO_FLAG_READ_ONLY | faiss.IO_FLAG_MMAP_IFC
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            raise InputError(f"{path}: not a readable faiss index ({str(exc).splitlines()[-1][:200]})") from None
        if index.ntotal != len(positions):
            raise InputError(f"{path}: holds {index.ntotal} vectors but the model learned {len(positions)} items")
        return cls(index, positions, n_items, breadth)

    def to_bytes(self) -> bytes:
        return _import_faiss().serialize_index(self.index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, positions: np.ndarray, n_items: int, breadth: int) -> FaissIndex:
        index = _import_faiss().deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.ntotal != len(positions):
            raise InputError(f"the index holds {index.ntotal} vectors but the model learned {len(positions)} items")
        return cls(index, positions, n_items, breadth)


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


def build_run_index(run_dir: str | Path, model: Any, *, backend: str = "hnsw", m: int = 32,
                    ef_construction: int = 200, ef_search: int = 64, nlist: int | None = None,
                    nprobe: int | None = None) -> dict:
    """Build the run's index files (under temporary names, then renamed); returns index.json's content."""
    from itemvec.outputs import atomic_write, write_json

    run_dir = Path(run_dir)
    info: dict = {"backend": f"faiss-{backend}", "model": model.name, "weights_digest": weights_digest(run_dir),
                  "searches": {}}
    if backend == "hnsw":
        info.update(m=m, ef_construction=ef_construction, ef_search=ef_search)
    for search, space in spaces_of(model).items():
        started = time.perf_counter()
        index = FaissIndex.build(space.keys, model.known_items_, backend=backend, m=m,
                                 ef_construction=ef_construction, ef_search=ef_search, nlist=nlist, nprobe=nprobe)
        data = index.to_bytes()
        with atomic_write(run_dir / FILES[search]) as out:
            out.write(data)
        entry = {"file": FILES[search], "vectors": int(index.index.ntotal), "dim": int(space.keys.shape[1]),
                 "breadth": index.breadth, "build_seconds": round(time.perf_counter() - started, 3),
                 "bytes": len(data)}
        if backend == "ivf":
            entry.update(nlist=int(index.index.nlist), nprobe=index.breadth)
        info["searches"][search] = entry
    write_json(run_dir / INDEX_JSON, info)
    return info


def load_run_index(run_dir: str | Path, model: Any) -> dict[str, FaissIndex] | None:
    """The run's indexes, or None when it has none. An index of other weights (the run was trained again
    after ``itemvec index``) is refused with a hint."""
    run_dir = Path(run_dir)
    path = run_dir / INDEX_JSON
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text())
        searches = info["searches"]
        breadths = {search: int(searches[search].get("breadth", info.get("ef_search", 64))) for search in searches}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{path}: not an index description written by `itemvec index`") from None
    if info.get("weights_digest") != weights_digest(run_dir):
        raise InputError(f"{path}: the index was built from other weights; run `itemvec index {run_dir}` again")
    indexes = {}
    positions = np.flatnonzero(model.known_items_)
    for search in searches:  # the file names are ours (FILES), never read from the JSON
        if search not in FILES:
            continue
        backend = "ivf" if info.get("backend") == "faiss-ivf" else "hnsw"
        indexes[search] = FaissIndex.read(run_dir / FILES[search], positions, model.n_items,
                                          max(1, breadths[search]), backend)
    return indexes


class Neighbours:
    """A fitted model's two searches with filters: ``similar`` (item → items) and ``recommend`` (user → items),
    through the run's index when it has one and by the exact scan otherwise. ``allowed``: a boolean mask over
    the items (None: all); the query item is never its own neighbour. Returns (ids, scores), k long, padded
    with -1 / NaN only when fewer than k items are allowed."""

    def __init__(self, model, indexes: dict[str, FaissIndex] | None = None) -> None:
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

    def warm(self) -> None:
        """Make the searches' vectors now (a service does this at start, not on its first request)."""
        if self.uses_index:
            self.space("similar")

    def _scan(self, scores: np.ndarray, k: int, allowed: np.ndarray | None, leave_out: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        from itemvec.models.base import top_k

        scores = scores.astype(np.float64)
        if allowed is not None:
            scores[~allowed] = np.nan
        scores[leave_out] = np.nan
        ids, values = top_k(scores[None, :], k)
        return ids[0], values[0]

    def _mask(self, allowed: np.ndarray | None) -> np.ndarray | None:
        if allowed is None:
            return None
        mask = np.asarray(allowed, dtype=bool)
        if mask.shape != (self.model.n_items,):
            raise ValueError(f"allowed: expected a mask of {self.model.n_items} items, got shape {mask.shape}")
        return mask

    @staticmethod
    def _ids(exclude: np.ndarray | None, *more: int) -> np.ndarray:
        ids = np.empty(0, dtype=np.int64) if exclude is None else np.asarray(exclude, dtype=np.int64).ravel()
        return np.concatenate([np.array(more, dtype=np.int64), ids]) if more else ids

    def similar(self, item: int, k: int, allowed: np.ndarray | None = None, exclude: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """The k items nearest ``item`` by the model's rule, among ``allowed`` and not in ``exclude``."""
        model = self.model
        mask, leave_out = self._mask(allowed), self._ids(exclude, item)
        if not model.known_items_[item]:
            return np.full(k, -1, dtype=np.int64), np.full(k, np.nan)
        if "similar" in self.indexes:
            return self.indexes["similar"].search(self.space("similar"), item, k, mask, leave_out)
        return self._scan(model._similar_scores(np.array([item]))[0], k, mask, leave_out)

    def recommend(self, user: int, k: int, allowed: np.ndarray | None = None, exclude: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """The user's top-k by the model's score, among ``allowed`` and not in ``exclude`` (their seen items)."""
        model = self.model
        mask, leave_out = self._mask(allowed), self._ids(exclude)
        if "recommend" in self.indexes and model.known_users_[user]:
            return self.indexes["recommend"].search(self.space("recommend"), user, k, mask, leave_out)
        return self._scan(model.score_users(np.array([user]))[0], k, mask, leave_out)
