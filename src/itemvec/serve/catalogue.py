"""What the service knows of a DATA_DIR: ids, titles, brands, categories, search, known partners, seen items.
Loaded once when the service starts; every lookup afterwards is an array or dict access."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def _leaf(paths) -> str | None:
    if not paths:
        return None
    first = paths[0] if isinstance(paths[0], list | tuple) else paths
    return str(first[-1]) if first else None


def _inverted(sets: list[set[str]]) -> dict[str, np.ndarray]:
    """Each value → the (ascending) positions whose set holds it."""
    found: dict[str, list[int]] = {}
    for i, values in enumerate(sets):
        for value in values:
            found.setdefault(value, []).append(i)
    return {value: np.array(items, dtype=np.int64) for value, items in found.items()}


class Catalogue:
    """Items (and, for ratings data, users) of one DATA_DIR."""

    def __init__(self, data) -> None:
        self.data = data
        self.kind = data.kind
        if self.kind == "pairs":
            table = data.products()
            self.ids = list(data.asins)
            columns = table.column_names
            self.titles = table["title"].to_pylist() if "title" in columns else [None] * len(self.ids)
            self.brands = table["brand"].to_pylist() if "brand" in columns else [None] * len(self.ids)
            paths = table["categories"].to_pylist() if "categories" in columns else [None] * len(self.ids)
            self.categories = [_leaf(p) for p in paths]
            self.category_sets = [{str(c).lower() for path in (p or []) for c in (path or [])} for p in paths]
            train = data.pairs("train")
            n = len(self.ids)
            adjacency = sp.coo_matrix((np.ones(len(train.item_a)), (train.item_a, train.item_b)), shape=(n, n)).tocsr()
            self.partners = ((adjacency + adjacency.T) > 0).tocsr()
            self.user_ids: list[str] = []
            self.seen = None
        else:
            items = data.items()
            self.ids = [str(i) for i in items.column("item_id").to_pylist()]
            columns = items.column_names
            self.titles = items["title"].to_pylist() if "title" in columns else [None] * len(self.ids)
            self.brands = [None] * len(self.ids)
            genres = items["genres"].to_pylist() if "genres" in columns else [None] * len(self.ids)
            self.categories = [", ".join(g) if g else None for g in genres]
            self.category_sets = [{str(x).lower() for x in (g or [])} for g in genres]
            self.partners = None
            self.user_ids = [str(u) for u in data.users().column("user_id").to_pylist()]
            self.seen = data.seen()
        self.index = {item: i for i, item in enumerate(self.ids)}
        self.user_index = {user: i for i, user in enumerate(self.user_ids)}
        self._search_text = [f"{item} {title or ''}".lower() for item, title in zip(self.ids, self.titles)]
        self.n_items = len(self.ids)
        # category and brand (lower case) → their items, so that a filter is one array write, not a scan
        self._by_category = _inverted(self.category_sets)
        self._by_brand = _inverted([{b.lower()} if b else set() for b in self.brands])

    def item(self, i: int, score: float | None = None) -> dict:
        out = {"id": self.ids[i], "title": self.titles[i], "brand": self.brands[i], "category": self.categories[i]}
        if score is not None:
            out["score"] = score
        return out

    def search(self, query: str, limit: int) -> list[dict]:
        """Items whose id or title holds every word of ``query`` (case-insensitive), exact id first."""
        words = query.lower().split()
        if not words:
            return []
        hits = []
        exact = self.index.get(query.strip())
        if exact is not None:
            hits.append(exact)
        for i, text in enumerate(self._search_text):
            if len(hits) >= limit:
                break
            if i != exact and all(w in text for w in words):
                hits.append(i)
        return [self.item(i) for i in hits[:limit]]

    def filter_mask(self, *, category: str | None = None, brand: str | None = None) -> np.ndarray | None:
        """The items of ``category`` (any level of an item's paths) and ``brand`` (case-insensitive), or None
        when neither is given."""
        mask = None
        for wanted, inverted in ((category, self._by_category), (brand, self._by_brand)):
            if wanted:
                keep = np.zeros(self.n_items, dtype=bool)
                keep[inverted.get(wanted.lower(), np.empty(0, dtype=np.int64))] = True
                mask = keep if mask is None else mask & keep
        return mask

    def known_partners(self, i: int) -> np.ndarray:
        return self.partners[i].indices if self.partners is not None else np.empty(0, dtype=np.int64)

    def seen_items(self, user: int) -> np.ndarray:
        return self.seen[user].indices if self.seen is not None else np.empty(0, dtype=np.int64)
