"""DATA_DIR layout: what `prepare` writes and every later stage reads.

```
DATA_DIR/
  manifest.json                       what prepare did: counts in, out, rejected, seconds, peak memory
  products.parquet                    one row per product id: id, asin, has_metadata, title, brand, ...
  id_map.parquet                      id (int32) -> asin (string)
  pairs.parquet                       item_a < item_b (int32), weight (float32), relations (uint16 bitmask)
  split/train.parquet                 positive pairs, same columns as pairs.parquet
  split/validation.parquet            (for choices and learning curves)
  split/test.parquet                  (for reported figures)
  split/{validation,test}_negatives.parquet         uniform negatives, item_a < item_b
  split/{validation,test}_negatives_degree.parquet  degree-matched negatives
```
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from itemvec.data.pairs import Pairs
from itemvec.errors import InputError

PARTS = ("train", "validation", "test")
NEGATIVE_KINDS = {"uniform": "negatives", "degree": "negatives_degree"}


def write_json(path: Path, obj: object) -> None:
    Path(path).write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY) + b"\n")


def read_json(path: Path) -> object:
    return orjson.loads(Path(path).read_bytes())


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


@dataclass
class EvalPairs:
    """Positives followed by negatives of one split part: ``item_a``, ``item_b`` (int64), ``label`` (0/1)."""

    item_a: np.ndarray
    item_b: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


class DataDir:
    """Read access to a prepared DATA_DIR."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not (self.path / "manifest.json").exists():
            raise InputError(f"{self.path}: not a prepared data directory (no manifest.json); run `itemvec prepare`")

    @cached_property
    def manifest(self) -> dict:
        return read_json(self.path / "manifest.json")

    @property
    def n_items(self) -> int:
        return int(self.manifest["n_items"])

    @property
    def relation_names(self) -> list[str]:
        return list(self.manifest["relation_bits"])

    def _pairs(self, path: Path) -> Pairs:
        table = pq.read_table(path)
        return Pairs(
            item_a=table["item_a"].to_numpy(),
            item_b=table["item_b"].to_numpy(),
            weight=table["weight"].to_numpy(),
            relations=table["relations"].to_numpy(),
            relation_names=self.relation_names,
        )

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
        table = pq.read_table(self.path / "split" / f"{part}_{NEGATIVE_KINDS[kind]}.parquet")
        return table["item_a"].to_numpy(), table["item_b"].to_numpy()

    def eval_pairs(self, part: str, kind: str = "uniform") -> EvalPairs:
        pos = self.pairs(part)
        neg_a, neg_b = self.negatives(part, kind)
        return EvalPairs(
            item_a=np.concatenate([pos.item_a, neg_a]).astype(np.int64),
            item_b=np.concatenate([pos.item_b, neg_b]).astype(np.int64),
            label=np.concatenate([np.ones(len(pos), np.int8), np.zeros(len(neg_a), np.int8)]),
        )

    def products(self, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.path / "products.parquet", columns=columns)

    @cached_property
    def asins(self) -> list[str]:
        return pq.read_table(self.path / "id_map.parquet", columns=["asin"])["asin"].to_pylist()
