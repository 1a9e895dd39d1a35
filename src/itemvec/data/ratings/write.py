"""The files of a ratings DATA_DIR and their column types: ``users.parquet``, ``items.parquet``,
``ratings/{train,validation,test}.parquet`` and ``manifest.json`` (read back by itemvec.data.store.RatingsDir).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from itemvec.costs import max_rss_mb
from itemvec.data.prepare import finish_data_dir
from itemvec.data.ratings.catalogue import Catalogue
from itemvec.data.ratings.split import PARTS
from itemvec.outputs import OutputFolder


def age_bucket(age: int | None) -> str | None:
    """The MovieLens 1M age groups: "<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"."""
    if age is None:
        return None
    for upper, name in ((18, "<18"), (25, "18-24"), (35, "25-34"), (45, "35-44"), (50, "45-49"), (56, "50-55")):
        if age < upper:
            return name
    return "56+"


def _side_column(side: dict[int, dict], rank: np.ndarray, n: int, name: str, default=None) -> list:
    """Side field ``name`` by dense id (``rank[code]``); ``default`` (or ``default()``) where it is missing."""
    column = [default() if callable(default) else default for _ in range(n)]
    for code, fields in side.items():
        value = fields.get(name)
        if value is not None:
            column[int(rank[code])] = value
    return column


def catalogue_tables(cat: Catalogue, user_rank: np.ndarray, item_rank: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """users.parquet and items.parquet: every user / item of the catalogue by dense id, with its side fields."""
    users_sorted: list[str | None] = [None] * len(user_rank)
    for code, key in enumerate(cat.users.keys()):
        users_sorted[int(user_rank[code])] = key
    items_sorted: list[str | None] = [None] * len(item_rank)
    for code, key in enumerate(cat.items.keys()):
        items_sorted[int(item_rank[code])] = key
    n_users, n_items = len(users_sorted), len(items_sorted)
    ages = _side_column(cat.user_side, user_rank, n_users, "age")
    users = pa.table({
        "user": pa.array(np.arange(n_users, dtype=np.int32)),
        "user_id": pa.array(users_sorted, pa.string()),
        "age": pa.array(ages, pa.int16()),
        "age_bucket": pa.array([age_bucket(a) for a in ages], pa.string()),
        "gender": pa.array(_side_column(cat.user_side, user_rank, n_users, "gender"), pa.string()),
        "occupation": pa.array(_side_column(cat.user_side, user_rank, n_users, "occupation"), pa.string()),
        "zip": pa.array(_side_column(cat.user_side, user_rank, n_users, "zip"), pa.string()),
    })
    items = pa.table({
        "item": pa.array(np.arange(n_items, dtype=np.int32)),
        "item_id": pa.array(items_sorted, pa.string()),
        "title": pa.array(_side_column(cat.item_side, item_rank, n_items, "title"), pa.string()),
        "genres": pa.array(_side_column(cat.item_side, item_rank, n_items, "genres", list), pa.list_(pa.string())),
        "year": pa.array(_side_column(cat.item_side, item_rank, n_items, "year"), pa.int16()),
        "brand": pa.array(_side_column(cat.item_side, item_rank, n_items, "brand"), pa.string()),
        "category": pa.array(_side_column(cat.item_side, item_rank, n_items, "category"), pa.string()),
    })
    return users, items


def ratings_table(user, item, rating, timestamp) -> pa.Table:
    """One part's ratings as stored: int32 user and item, float32 rating, int64 timestamp."""
    return pa.table({"user": pa.array(np.asarray(user, np.int32)), "item": pa.array(np.asarray(item, np.int32)),
                     "rating": pa.array(np.asarray(rating, np.float32)),
                     "timestamp": pa.array(np.asarray(timestamp, np.int64))})


def write_ratings_dir(out: str | Path, manifest: dict, users: pa.Table, items: pa.Table, part: np.ndarray, user, item,
                      rating, timestamp, *, started: float, inputs: Sequence[Path]) -> None:
    """Write the DATA_DIR into ``out``: built in a temporary folder beside it and exchanged with it in one step
    (itemvec.outputs), so ``out`` is never half written. Each rating goes to the file of its ``part`` code (0 train,
    1 validation, 2 test); ``manifest`` gains the seconds since ``started`` and the peak memory, then is written
    with the files' fingerprint."""
    with OutputFolder(out, "data", inputs=inputs) as folder, folder.build() as tmp:
        (tmp / "ratings").mkdir()
        pq.write_table(users, tmp / "users.parquet")
        pq.write_table(items, tmp / "items.parquet")
        for code, name in enumerate(PARTS):
            mask = part == code
            pq.write_table(ratings_table(user[mask], item[mask], rating[mask], timestamp[mask]),
                           tmp / "ratings" / f"{name}.parquet")
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        manifest["peak_rss_mb"] = round(max_rss_mb(), 1)
        finish_data_dir(tmp, manifest, "ratings")
