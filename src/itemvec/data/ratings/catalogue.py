"""What reading the ratings collects, and how it becomes dense ids and one rating per (user, item).

The catalogue is every item rated plus every item of the metadata file (``u.item``, ``movies.csv``, the Amazon
metadata), rated or not; users likewise (``u.user``). Dense ids are ``int32`` in the order of the original ids
(numeric order when every id is a whole number, text order otherwise), so they do not depend on row order.
Two ratings of one (user, item) keep the latest by timestamp (the later row on a tie) and count as
``duplicates``.

Memory while reading: the two id maps (one dict entry per user / item) and 29 bytes per rating row (int32 user,
int32 item, float64 rating, int64 timestamp, int8 part, int32 row order once sorted); the raw files are streamed.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

import numpy as np

from itemvec.data.pairs import IdMap


class _RatingLog:
    """Rating rows appended while streaming (codes of the two id maps, in order of first appearance)."""

    def __init__(self) -> None:
        self.user = array("i")
        self.item = array("i")
        self.rating = array("d")
        self.timestamp = array("q")
        self.part = array("b")

    def adder(self, users: IdMap, items: IdMap) -> Callable[[str, str, float, int, int], None]:
        """``add(user id, item id, rating, timestamp, part)``, with the appends bound once (the hot loop)."""
        add_user, add_item = users.add, items.add
        user, item, rating = self.user.append, self.item.append, self.rating.append
        timestamp, part = self.timestamp.append, self.part.append

        def add(user_id: str, item_id: str, value: float, when: int, code: int) -> None:
            user(add_user(user_id))
            item(add_item(item_id))
            rating(value)
            timestamp(when)
            part(code)

        return add

    def arrays(self) -> dict[str, np.ndarray]:
        return {"user": np.frombuffer(self.user, np.int32), "item": np.frombuffer(self.item, np.int32),
                "rating": np.frombuffer(self.rating, np.float64),
                "timestamp": np.frombuffer(self.timestamp, np.int64), "part": np.frombuffer(self.part, np.int8)}


class Catalogue:
    """Id maps and side columns keyed by id-map code; ``rows`` holds the ratings."""

    def __init__(self) -> None:
        self.users = IdMap()
        self.items = IdMap()
        self.rows = _RatingLog()
        self.item_side: dict[int, dict] = {}
        self.user_side: dict[int, dict] = {}
        self.header_lines = 0
        self.metadata_duplicates = 0

    def add_item_side(self, item_id: str, fields: dict) -> None:
        code = self.items.add(item_id)
        side = self.item_side.get(code)
        if side is None:
            self.item_side[code] = fields
            return
        self.metadata_duplicates += 1  # fields merge: the first line wins, later lines fill what it lacked
        for name, value in fields.items():
            if side.get(name) in (None, []):
                side[name] = value


def id_order(keys: list[str]) -> np.ndarray:
    """Rank of each key in numeric order (all whole numbers) or text order: ``rank[code] = dense id``."""
    if keys and all(k.isascii() and k.isdigit() for k in keys):
        # Numeric order without int(): a whole number is ordered by its length without leading zeros, then
        # by its digits (int() refuses ids of over 4,300 digits).
        order = sorted(range(len(keys)), key=lambda i: (len(keys[i].lstrip("0")), keys[i].lstrip("0"), keys[i]))
    else:
        order = sorted(range(len(keys)), key=keys.__getitem__)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(len(keys))
    return rank


def latest_unique(user: np.ndarray, item: np.ndarray, timestamp: np.ndarray, n_items: int) -> np.ndarray:
    """Row indices that keep one rating per (user, item): the latest by timestamp, the later row on a tie.
    Returned sorted by row."""
    key = user.astype(np.int64) * np.int64(max(n_items, 1)) + item.astype(np.int64)
    order = np.lexsort((np.arange(len(key)), timestamp, key))
    sorted_key = key[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_key[1:] != sorted_key[:-1]
    return np.sort(order[last])
