"""DATA_DIR layout: what `prepare` writes and every later stage reads, checked on the way in.

```
DATA_DIR/
  manifest.json                       what prepare did: counts in, out, rejected, seconds, peak memory; the
                                      kind ("pairs" or "ratings") and a fingerprint of the files' contents
  products.parquet                    one row per product id: id, asin, has_metadata, title, brand, ...
  id_map.parquet                      id (int32) -> asin (string)
  pairs.parquet                       item_a < item_b (int32), weight (float32), relations (uint16 bitmask)
  split/train.parquet                 positive pairs, same columns as pairs.parquet
  split/validation.parquet            (for choices and learning curves)
  split/test.parquet                  (for reported figures)
  split/{validation,test}_negatives.parquet         uniform negatives, item_a < item_b
  split/{validation,test}_negatives_degree.parquet  degree-matched negatives
  sequences.parquet, sequences_train.parquet        sessions (`prepare sessions` only)
```

A DATA_DIR may have been edited, half copied or written by something else, and a numba kernel indexes its
tables without bounds checks. So nothing reaches a model unchecked: opening a DATA_DIR checks the manifest's
schema and kind and that every file a stage needs is present; every table is checked when it is read (its
columns, and every id column within [0, n_items)). Each problem is one :class:`InputError` naming the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from itemvec.data.types import (
    EvalPairs,
    Interactions,
    Pairs,
    RankShare,
    Sequences,
    SideInformation,
    TrainingData,
    share_of,
)
from itemvec.errors import InputError

PARTS = ("train", "validation", "test")
NEGATIVE_KINDS = {"uniform": "negatives", "degree": "negatives_degree"}
PAIR_FILES = ("products.parquet", "id_map.parquet", "pairs.parquet",
              *(f"split/{part}.parquet" for part in PARTS),
              *(f"split/{part}_{name}.parquet" for part in ("validation", "test") for name in NEGATIVE_KINDS.values()))
RATING_FILES = ("users.parquet", "items.parquet", *(f"ratings/{part}.parquet" for part in PARTS))
SEQUENCE_FILES = {"all": "sequences.parquet", "train": "sequences_train.parquet"}
_FINGERPRINT_CHUNK = 1 << 22


def write_json(path: Path, obj: object) -> None:
    Path(path).write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")


def read_json(path: Path) -> object:
    return orjson.loads(Path(path).read_bytes())


def read_json_object(path: str | Path, what: str = "file") -> dict[str, Any]:
    """A JSON object from ``path``, or an InputError naming the file and what is wrong with it."""
    path = Path(path)
    try:
        value = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise InputError(f"{path}: missing ({what})") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: expected a JSON object ({what}), found {type(value).__name__}")
    return value


def fingerprint_files(root: Path, names: list[str]) -> str:
    """A digest of the contents of the files ``names`` (relative to ``root``) and of their names."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(names):
        digest.update(name.encode() + b"\0")
        with open(root / name, "rb") as handle:
            while chunk := handle.read(_FINGERPRINT_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def pairs_table(pairs: Pairs) -> pa.Table:
    return pa.table({
        "item_a": pa.array(pairs.item_a, pa.int32()),
        "item_b": pa.array(pairs.item_b, pa.int32()),
        "weight": pa.array(pairs.weight, pa.float32()),
        "relations": pa.array(pairs.relations, pa.uint16()),
    })


def write_pairs(path: Path, pairs: Pairs) -> None:
    pq.write_table(pairs_table(pairs), path)


def write_negatives(path: Path, item_a: np.ndarray, item_b: np.ndarray) -> None:
    pq.write_table(pa.table({"item_a": pa.array(item_a, pa.int32()), "item_b": pa.array(item_b, pa.int32())}),
                   path)


# ---------------------------------------------------------------- checks shared by both kinds


def _positive_int(manifest: dict[str, Any], key: str, path: Path, minimum: int = 1) -> int:
    value = manifest.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value >= 2**31:
        raise InputError(f"{path}: manifest key {key!r} must be a whole number in [{minimum}, 2**31), "
                         f"found {value!r}")
    return value


def _finite(manifest: dict[str, Any], key: str, path: Path) -> float:
    value = manifest.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise InputError(f"{path}: manifest key {key!r} must be a finite number, found {value!r}")
    return float(value)


def read_table(path: Path, columns: dict[str, str], *, select: list[str] | None = None,
               rows: tuple[int, int] | None = None) -> pa.Table:
    """A Parquet table with (at least) ``columns`` (name → a pyarrow type test such as "integer"); one line
    naming the file when it is missing, unreadable or lacks a column. ``rows``: only the rows ``[lo, hi)``,
    read from the row groups that hold them (``row_groups``), not the whole file."""
    try:
        # One file through ParquetFile, not pq.read_table: that goes through pyarrow.dataset, whose import
        # alone cost a process 35 ms and 13 MB.
        with pq.ParquetFile(path) as file:
            absent = [name for name in select or () if name not in file.schema_arrow.names]
            if absent:  # (ParquetFile.read would leave them out without a word)
                raise InputError(f"{path}: no column {absent[0]!r} (has {', '.join(file.schema_arrow.names)})")
            if rows is None:
                table = file.read(columns=select)
            else:
                groups, first = row_groups(file.metadata, *rows)
                table = (file.read_row_groups(groups, columns=select) if groups
                         else file.schema_arrow.empty_table().select(select or file.schema_arrow.names))
                table = table.slice(rows[0] - first, rows[1] - rows[0])
    except FileNotFoundError:
        raise InputError(f"{path}: missing; the data folder is incomplete (run `itemvec prepare` again)") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    tests = {"integer": pa.types.is_integer, "floating": pa.types.is_floating, "string": pa.types.is_string,
             "list": pa.types.is_list, "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t)}
    for name, kind in columns.items():
        if select is not None and name not in select:
            continue
        if name not in table.column_names:
            raise InputError(f"{path}: no column {name!r} (has {', '.join(table.column_names)})")
        if not tests[kind](table.schema.field(name).type):
            raise InputError(f"{path}: column {name!r} is {table.schema.field(name).type}, expected {kind}")
    return table


def row_groups(metadata: pq.FileMetaData, lo: int, hi: int) -> tuple[list[int], int]:
    """The row groups of a Parquet file that hold its rows ``[lo, hi)``, and the first row of the first of
    them (``lo`` when there are none)."""
    groups: list[int] = []
    start, first = 0, lo
    for group in range(metadata.num_row_groups):
        size = metadata.row_group(group).num_rows
        if size and start < hi and start + size > lo:
            if not groups:
                first = start
            groups.append(group)
        start += size
    return groups, first


def _metadata(path: Path) -> pq.FileMetaData:
    """A Parquet file's footer (row count, row groups), or one line naming the file."""
    try:
        return pq.ParquetFile(path).metadata
    except FileNotFoundError:
        raise InputError(f"{path}: missing; the data folder is incomplete (run `itemvec prepare` again)") from None
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None


def _row_count(path: Path) -> int:
    return _metadata(path).num_rows


def check_ids(path: Path, name: str, values: np.ndarray, n: int, *, allow_negative: bool = False,
              first_row: int = 0) -> np.ndarray:
    """``values`` unchanged when every id is within [0, n) (or is -1 where ``allow_negative``); else an
    InputError naming the file, the column and the first offending id (``values[0]`` is the file's row
    ``first_row``)."""
    if len(values) == 0:
        return values
    low = -1 if allow_negative else 0
    bad = (values < low) | (values >= n)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InputError(f"{path}: {name} {int(values[first])} at row {first + first_row} is outside [0, {n}) "
                         f"(manifest n = {n}); the data folder was changed after `itemvec prepare`")
    return values


def _column(table: pa.Table, name: str) -> np.ndarray:
    column = table[name]
    if column.null_count:
        raise InputError(f"column {name!r} has {column.null_count} empty values")
    return column.to_numpy()


def shard(path: Path, share: RankShare) -> tuple[RankShare, tuple[int, int]]:
    """A distributed rank's own rows of the Parquet file ``path``: ``share`` with the file's ``total``, and the
    rank's rows ``[lo, hi)`` of it (``share_of``: contiguous, every row on one rank). Only the row groups
    holding them are read (``read_table(rows=...)``); the rank says which on stderr."""
    metadata = _metadata(path)
    total = metadata.num_rows
    lo, hi = share_of(total, share.rank, share.world)
    groups, _ = row_groups(metadata, lo, hi)
    span = f"{groups[0]}-{groups[-1]}" if len(groups) > 1 else (str(groups[0]) if groups else "none")
    print(f"rank {share.rank} of {share.world}: reads rows {lo}-{hi} of {total} of {path.parent.name}/{path.name} "
          f"(row groups {span} of {metadata.num_row_groups})", file=sys.stderr, flush=True)
    return dataclasses.replace(share, total=total), (lo, hi)


class DataFolder:
    """What both kinds of DATA_DIR share: the folder, its manifest (checked) and its fingerprint."""

    kind = "pairs"
    files: tuple[str, ...] = ()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such data folder")
        if not self.path.is_dir():
            raise InputError(f"{self.path}: is a file, expected a prepared data folder")
        if not (self.path / "manifest.json").exists():
            raise InputError(f"{self.path}: not a prepared data folder (no manifest.json); run `itemvec prepare`")
        kind = self.manifest.get("kind", "pairs")
        if kind != self.kind:
            raise InputError(f"{self.path}: holds {kind} data, not {self.kind}; "
                             + ("run `itemvec prepare ratings`" if self.kind == "ratings"
                                else "item-item models need `itemvec prepare amazon|edges|sessions` data"))
        self._check_manifest()
        missing = [name for name in self.files if not (self.path / name).is_file()]
        if missing:
            raise InputError(f"{self.path}: half-made data folder: {missing[0]} is missing"
                             + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                             + "; run `itemvec prepare` again")

    if TYPE_CHECKING:
        def training(self) -> TrainingData | Interactions:
            """What a model's fit() receives; each kind's class builds it (``DataDir``, ``RatingsDir``)."""

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return read_json_object(self.path / "manifest.json", "a data folder's manifest")

    def _check_manifest(self) -> None:
        _positive_int(self.manifest, "n_items", self.path / "manifest.json")

    @property
    def n_items(self) -> int:
        return int(self.manifest["n_items"])

    @cached_property
    def fingerprint(self) -> str:
        """A digest of this DATA_DIR's contents, recorded by prepare (for folders of earlier versions, of the
        manifest): a run, a checkpoint or a reused result is only ever matched to the data it was made on."""
        value = self.manifest.get("fingerprint")
        if isinstance(value, str) and value:
            return value
        return hashlib.blake2b((self.path / "manifest.json").read_bytes(), digest_size=16).hexdigest()


class DataDir(DataFolder):
    """Read access to a prepared product-pair DATA_DIR (``prepare amazon``, ``edges``, ``sessions``)."""

    kind = "pairs"
    files = PAIR_FILES

    def _check_manifest(self) -> None:
        super()._check_manifest()
        bits = self.manifest.get("relation_bits")
        if not isinstance(bits, dict) or not all(isinstance(k, str) for k in bits):
            raise InputError(f"{self.path / 'manifest.json'}: 'relation_bits' must map relation names to bits")

    @property
    def relation_names(self) -> list[str]:
        return list(self.manifest["relation_bits"])

    def _pairs(self, path: Path, rows: tuple[int, int] | None = None) -> Pairs:
        table = read_table(path, {"item_a": "integer", "item_b": "integer", "weight": "number",
                                  "relations": "integer"}, rows=rows)
        try:
            a, b = _column(table, "item_a"), _column(table, "item_b")
            weight, relations = _column(table, "weight"), _column(table, "relations")
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        check_ids(path, "item_a", a, self.n_items, first_row=rows[0] if rows else 0)
        check_ids(path, "item_b", b, self.n_items, first_row=rows[0] if rows else 0)
        if len(weight) and not (np.isfinite(weight).all() and (weight > 0).all()):
            raise InputError(f"{path}: weights must be finite positive numbers")
        return Pairs(item_a=a.astype(np.int32, copy=False), item_b=b.astype(np.int32, copy=False),
                     weight=weight.astype(np.float32, copy=False), relations=relations.astype(np.uint16, copy=False),
                     relation_names=self.relation_names)

    def pairs(self, part: str | None = None) -> Pairs:
        """All pairs, or the positives of one split part (train / validation / test)."""
        if part is None:
            return self._pairs(self.path / "pairs.parquet")
        if part not in PARTS:
            raise ValueError(f"unknown split part {part!r}; expected one of {PARTS}")
        return self._pairs(self.path / "split" / f"{part}.parquet")

    def negatives(self, part: str, kind: str = "uniform") -> tuple[np.ndarray, np.ndarray]:
        if part not in ("validation", "test"):
            raise ValueError("negatives exist for the validation and test parts only")
        if kind not in NEGATIVE_KINDS:
            raise ValueError(f"unknown negative kind {kind!r}; expected one of {sorted(NEGATIVE_KINDS)}")
        path = self.path / "split" / f"{part}_{NEGATIVE_KINDS[kind]}.parquet"
        table = read_table(path, {"item_a": "integer", "item_b": "integer"})
        try:
            a, b = _column(table, "item_a"), _column(table, "item_b")
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        return check_ids(path, "item_a", a, self.n_items), check_ids(path, "item_b", b, self.n_items)

    def eval_pairs(self, part: str, kind: str = "uniform") -> EvalPairs:
        pos = self.pairs(part)
        neg_a, neg_b = self.negatives(part, kind)
        return EvalPairs(
            item_a=np.concatenate([pos.item_a, neg_a]).astype(np.int64),
            item_b=np.concatenate([pos.item_b, neg_b]).astype(np.int64),
            label=np.concatenate([np.ones(len(pos), np.int8), np.zeros(len(neg_a), np.int8)]),
        )

    def products(self, columns: list[str] | None = None) -> pa.Table:
        path = self.path / "products.parquet"
        table = read_table(path, {}, select=columns)
        if table.num_rows != self.n_items:
            raise InputError(f"{path}: {table.num_rows} rows, but the manifest has n_items = {self.n_items}")
        return table


    def training(self, share: RankShare | None = None, *, validation: bool = True) -> TrainingData:
        """What an item-item model's fit() receives (itemvec.data.types.TrainingData). ``share``: a
        distributed rank's place; with ``share.held``, the train part is only the rank's own rows (``shard``).
        ``validation``: False leaves the validation part out (a rank that never evaluates)."""
        share = share or RankShare()
        path = self.path / "split" / "train.parquet"
        rows = None
        if share.held:
            share, rows = shard(path, share)
        return TrainingData(n_items=self.n_items, train=self._pairs(path, rows),
                            validation=self.eval_pairs("validation") if validation else None,
                            read_sessions=self._train_sessions, read_side_information=self.side_information,
                            share=share)

    def _train_sessions(self) -> Sequences | None:
        if not (self.path / SEQUENCE_FILES["train"]).exists():
            return None
        return Sequences(*self.sequences("train"))

    def side_information(self) -> SideInformation:
        """Per-item side fields from products.parquet: brand, leaf category, price; or, for session data sets,
        the first three attribute slots (itemvec.data.types.SideInformation)."""
        products = self.products()
        present = set(products.column_names)
        names: list[str] = []
        values: list[np.ndarray] = []

        def encode(raw: list[Any]) -> np.ndarray:
            index: dict[Any, int] = {}
            return np.array([-1 if v is None else index.setdefault(v, len(index)) for v in raw], dtype=np.int64)

        if "brand" in present:
            names.append("brand")
            values.append(encode(products["brand"].to_pylist()))
        if "categories" in present:
            names.append("category")
            values.append(encode([paths[0][-1] if paths and paths[0] else None
                                  for paths in products["categories"].to_pylist()]))
        if "price" in present:
            names.append("price")
            values.append(np.array([np.nan if p is None else p for p in products["price"].to_pylist()],
                                   dtype=np.float64))
        if "attributes" in present:
            attributes = products["attributes"].to_pylist()
            for slot in range(3):
                names.append(f"attribute_{slot}")
                values.append(encode([a[slot] if a is not None and len(a) > slot else None for a in attributes]))
        return SideInformation(names, values)

    @cached_property
    def asins(self) -> list[str]:
        path = self.path / "id_map.parquet"
        table = read_table(path, {"asin": "string"}, select=["asin"])
        if table.num_rows != self.n_items:
            raise InputError(f"{path}: {table.num_rows} rows, but the manifest has n_items = {self.n_items}")
        return table["asin"].to_pylist()

    @cached_property
    def _asin_index(self) -> dict[str, int]:
        return {asin: i for i, asin in enumerate(self.asins)}

    def item_index(self, asins: Sequence[str]) -> np.ndarray:
        """The item indices (what models take) of product ids; an InputError names the unknown ones."""
        index = self._asin_index
        missing = [asin for asin in asins if asin not in index]
        if missing:
            raise InputError(f"unknown product id(s): {', '.join(missing)}")
        return np.array([index[asin] for asin in asins], dtype=np.int64)

    def validate(self) -> DataDir:
        """Read and check every table once, before any work starts (a tampered file is refused up front,
        not after an hour of training)."""
        for part in (None, *PARTS):
            self.pairs(part)
        for part in ("validation", "test"):
            for kind in NEGATIVE_KINDS:
                self.negatives(part, kind)
        rows = _row_count(self.path / "products.parquet")
        if rows != self.n_items:
            raise InputError(f"{self.path / 'products.parquet'}: {rows} rows, but the manifest has n_items = "
                             f"{self.n_items}")
        _ = self.asins
        for part, name in SEQUENCE_FILES.items():
            if (self.path / name).exists():
                self.sequences(part)
        return self

    def sequences(self, part: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """Sessions as ``(items int32, offsets int64)``: sequence ``k`` is ``items[offsets[k]:offsets[k+1]]``.
        ``part="train"``: the training sequences (cut at held-out pairs); ``"all"``: the whole sessions."""
        if part not in SEQUENCE_FILES:
            raise ValueError(f"unknown sequence part {part!r}; expected one of {sorted(SEQUENCE_FILES)}")
        path = self.path / SEQUENCE_FILES[part]
        if not path.exists():
            raise InputError(f"{self.path}: no {SEQUENCE_FILES[part]}; sequences come from `itemvec prepare "
                             "sessions` (use source=walks for this data)")
        column = read_table(path, {"items": "list"}, select=["items"])["items"]
        lists = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if len(lists) == 0:
            return np.empty(0, np.int32), np.zeros(1, np.int64)
        if lists.null_count or lists.values.null_count or not pa.types.is_integer(lists.type.value_type):
            raise InputError(f"{path}: column 'items' must hold lists of integer ids without empty values")
        offsets = np.asarray(lists.offsets, dtype=np.int64)
        items = lists.flatten().to_numpy(zero_copy_only=False)
        check_ids(path, "item", items, self.n_items)
        return items.astype(np.int32, copy=False), offsets - offsets[0]


class RatingsDir(DataFolder):
    """Read access to a ratings DATA_DIR written by ``prepare ratings``."""

    kind = "ratings"
    files = RATING_FILES

    def _check_manifest(self) -> None:
        super()._check_manifest()
        path = self.path / "manifest.json"
        _positive_int(self.manifest, "n_users", path)
        low, high = _finite(self.manifest, "rating_min", path), _finite(self.manifest, "rating_max", path)
        _finite(self.manifest, "threshold", path)
        if low > high:
            raise InputError(f"{path}: rating_min {low:g} is above rating_max {high:g}")

    @property
    def n_users(self) -> int:
        return int(self.manifest["n_users"])

    def ratings(self, part: str, rows: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
        """``user`` (int32), ``item`` (int32), ``rating`` (float32), ``timestamp`` (int64) of one split part
        (of its rows ``[lo, hi)`` only, with ``rows``)."""
        if part not in PARTS:
            raise ValueError(f"unknown split part {part!r}; expected one of {PARTS}")
        path = self.path / "ratings" / f"{part}.parquet"
        table = read_table(path, {"user": "integer", "item": "integer", "rating": "number", "timestamp": "integer"},
                           rows=rows)
        try:
            arrays = {name: _column(table, name) for name in ("user", "item", "rating", "timestamp")}
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        first = rows[0] if rows else 0
        check_ids(path, "user", arrays["user"], self.n_users, first_row=first)
        check_ids(path, "item", arrays["item"], self.n_items, first_row=first)
        if not np.isfinite(arrays["rating"]).all():
            raise InputError(f"{path}: ratings must be finite numbers")
        return arrays

    def validate(self) -> RatingsDir:
        """Read and check every table once, before any work starts."""
        for part in PARTS:
            self.ratings(part)
        self.users()
        self.items()
        return self

    def _side_table(self, name: str, id_column: str, n: int) -> pa.Table:
        path = self.path / name
        table = read_table(path, {id_column: "string"})
        if table.num_rows != n:
            raise InputError(f"{path}: {table.num_rows} rows, but the manifest has {n}")
        return table

    def users(self) -> pa.Table:
        return self._side_table("users.parquet", "user_id", self.n_users)

    def items(self) -> pa.Table:
        return self._side_table("items.parquet", "item_id", self.n_items)

    @cached_property
    def item_features(self) -> tuple[sp.csr_matrix | None, list[str] | None]:
        """0/1 item features: "genre:Comedy", "year:1990s", "brand:...", "category:..."."""
        table = self.items().to_pydict()
        empty = [None] * self.n_items
        rows = []
        for genres, year, brand, category in zip(*(table.get(name, empty) for name in ("genres", "year", "brand",
                                                                                        "category"))):
            row = [f"genre:{g}" for g in genres or []]
            if isinstance(year, int):
                row.append(f"year:{year // 10 * 10}s")
            if brand:
                row.append(f"brand:{brand}")
            if category:
                row.append(f"category:{category}")
            rows.append(row)
        return _one_hot(rows)

    @cached_property
    def user_features(self) -> tuple[sp.csr_matrix | None, list[str] | None]:
        """0/1 user features: "age:25-34", "gender:F", "occupation:student"."""
        table = self.users().to_pydict()
        empty = [None] * self.n_users
        table = {name: table.get(name, empty) for name in ("age_bucket", "gender", "occupation")}
        rows = [[f"{name}:{value}" for name, value in (("age", age), ("gender", gender), ("occupation", job))
                 if value]
                for age, gender, job in zip(table["age_bucket"], table["gender"], table["occupation"])]
        return _one_hot(rows)

    def interactions(self, part: str, features: bool = True, rows: tuple[int, int] | None = None) -> Interactions:
        """One split part (or its rows ``[lo, hi)``) as :class:`itemvec.data.types.Interactions` (ids as
        int64), with the side features when ``features``."""
        arrays = self.ratings(part, rows)
        user_features, user_names = self.user_features if features else (None, None)
        item_features, item_names = self.item_features if features else (None, None)
        m = self.manifest
        return Interactions(
            n_users=self.n_users, n_items=self.n_items,
            user=arrays["user"].astype(np.int64), item=arrays["item"].astype(np.int64),
            rating=arrays["rating"].astype(np.float32), timestamp=arrays["timestamp"].astype(np.int64),
            rating_min=float(m["rating_min"]), rating_max=float(m["rating_max"]), threshold=float(m["threshold"]),
            user_features=user_features, item_features=item_features,
            user_feature_names=user_names, item_feature_names=item_names)

    def training(self, share: RankShare | None = None, *, features: bool = True,
                 validation: bool = True) -> Interactions:
        """The train part, with ``validation`` set to the validation part (None when it is empty, or left out
        with ``validation=False``). ``share``: a distributed rank's place; with ``share.held``, the train part
        is only the rank's own rows (``shard``)."""
        share = share or RankShare()
        rows = None
        if share.held:
            share, rows = shard(self.path / "ratings" / "train.parquet", share)
        train = self.interactions("train", features, rows=rows)
        train.share = share
        if validation:
            held_out = self.interactions("validation", features)
            train.validation = held_out if len(held_out) else None
        return train

    def seen(self) -> sp.csr_matrix:
        """(n_users, n_items) CSR, nonzero where a user rated an item in the train or validation part: what
        a recommendation leaves out."""
        train = self.training(features=False)
        seen = train.matrix()
        if train.validation is not None and len(train.validation):
            seen = ((seen + train.validation.matrix()) > 0).astype(np.float32)
        return sp.csr_matrix(seen)


def _one_hot(rows: list[list[str]]) -> tuple[sp.csr_matrix | None, list[str] | None]:
    """(n, f) 0/1 CSR matrix over the sorted feature names of ``rows`` (None, None when there are none)."""
    names = sorted({name for row in rows for name in row})
    if not names:
        return None, None
    column = {name: k for k, name in enumerate(names)}
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(set(row)) for row in rows], out=indptr[1:])
    indices = np.fromiter((column[name] for row in rows for name in sorted(set(row))), dtype=np.int32,
                          count=int(indptr[-1]))
    matrix = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(rows), len(names)))
    return matrix, names
