"""``itemvec export``: a finished run's vectors in the formats other tools read.

- ``word2vec`` (text) and ``word2vec-binary``: the format of word2vec.c as gensim writes it (a header line
  ``"<count> <dim>"``, then one key and its vector per entry: text with nine significant digits, which
  round-trips float32 exactly, or the key, a space and ``dim`` little-endian float32), keyed by the original
  ids (ASINs, item ids, user ids). ``gensim.models.KeyedVectors.load_word2vec_format`` reads both.
- ``parquet``: columns ``id`` (string), ``vector`` (fixed-size list of float32) and ``bias`` where the model
  has one; the file's metadata holds the model's name, scoring rule, dimension, global bias and the data
  fingerprint (pyarrow, polars and pandas read it).

Which vectors: the item vectors of the items the model learned (the query side of a two-role model;
``context=True`` adds the candidate side, keyed ``ID#context``), or with ``users=True`` the user vectors of a
user-item run. Items (or users) absent from training are left out: their vectors are untrained. gensim ranks
by cosine; the model scores by its own rule (``itemvec.models.embedding``), so gensim's neighbours are the
model's only for a ``cosine`` model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from itemvec.errors import InputError
from itemvec.outputs import atomic_write, check_output_file
from itemvec.runs import open_run

FORMATS = ("word2vec", "word2vec-binary", "parquet")
CONTEXT_SUFFIX = "#context"
METADATA_KEY = b"itemvec"


def _parquet_is_ours(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        return METADATA_KEY in (pq.read_schema(path).metadata or {})
    except Exception:  # not a parquet file: not ours
        return False


def _word2vec_is_ours(path: Path) -> bool:
    return False  # a word2vec file carries no mark of who wrote it: never overwritten


def models_with_vectors() -> list[str]:
    from itemvec import registry

    return [name for kind in registry.KINDS for name in registry.names(kind)
            if getattr(registry.get(name, kind), "has_embedding", False)]


def exported_vectors(model, data, *, users: bool = False, context: bool = False
                     ) -> tuple[list[str], np.ndarray, np.ndarray | None, dict]:
    """(keys, vectors (n, dim) float32, biases (n,) or None, metadata) of a fitted model with an embedding."""
    if not getattr(model, "has_embedding", False):
        raise InputError(f"{model.name} has no vectors to export (it scores without an embedding); "
                         f"models with vectors: {', '.join(models_with_vectors())}")
    emb = model.embedding()
    meta = {"model": model.name, "rule": emb.rule, "dim": int(emb.item_vectors.shape[1]),
            "global_bias": float(emb.global_bias), "data_fingerprint": data.fingerprint,
            "vectors": "user" if users else ("item and context" if context else "item")}
    if users:
        if model.data_kind != "ratings" or emb.user_vectors is None:
            raise InputError(f"{model.name}: --users needs a user-item model with user vectors")
        if context:
            raise InputError("--context applies to item vectors, not to --users")
        ids = [str(u) for u in data.users().column("user_id").to_pylist()]
        keep = np.flatnonzero(model.known_users_)
        bias = emb.user_bias
        return [ids[i] for i in keep], emb.user_vectors[keep], None if bias is None else bias[keep], meta
    ids = data.asins if model.data_kind == "pairs" else [str(i) for i in data.items().column("item_id").to_pylist()]
    keep = np.flatnonzero(model.known_items_)
    keys = [ids[i] for i in keep]
    vectors = emb.item_vectors[keep]
    bias = None if emb.item_bias is None else emb.item_bias[keep]
    if context:
        if emb.context_vectors is None:
            raise InputError(f"{model.name} scores with one table ({emb.rule}); there are no context vectors")
        keys = keys + [key + CONTEXT_SUFFIX for key in keys]
        vectors = np.concatenate([vectors, emb.context_vectors[keep]])
        bias = None if bias is None else np.concatenate([bias, bias])
    return keys, np.ascontiguousarray(vectors, dtype=np.float32), bias, meta


def _check_keys(keys: list[str]) -> None:
    for key in keys:
        if not key or any(c.isspace() for c in key):
            raise InputError(f"id {key!r} is empty or holds whitespace, which the word2vec format cannot hold; "
                             "use --format parquet")


def write_word2vec(path: Path, keys: list[str], vectors: np.ndarray, *, binary: bool) -> None:
    _check_keys(keys)
    with atomic_write(path) as out:
        out.write(f"{len(keys)} {vectors.shape[1]}\n".encode())
        if binary:
            little = vectors.astype("<f4", copy=False)
            for key, row in zip(keys, little):
                out.write(key.encode() + b" " + row.tobytes())
        else:
            lines = []
            for key, row in zip(keys, vectors):
                lines.append(key + " " + " ".join(f"{x:.9g}" for x in row.tolist()) + "\n")
                if len(lines) >= 4096:
                    out.write("".join(lines).encode())
                    lines.clear()
            out.write("".join(lines).encode())


def write_parquet(path: Path, keys: list[str], vectors: np.ndarray, bias: np.ndarray | None, meta: dict) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    columns = {"id": pa.array(keys, pa.string()),
               "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1), pa.float32()), dim)}
    if bias is not None:
        columns["bias"] = pa.array(np.asarray(bias, dtype=np.float32), pa.float32())
    table = pa.table(columns).replace_schema_metadata({METADATA_KEY: json.dumps(meta).encode()})
    with atomic_write(path) as out:
        pq.write_table(table, out)


def export_run(run_dir: Path, fmt: str, out: Path, *, data_dir: Path | None = None, users: bool = False,
               context: bool = False) -> dict:
    """Write the run's vectors to ``out`` in ``fmt``; returns what was written (count, dim, format)."""
    if fmt not in FORMATS:
        raise InputError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    out = Path(out)
    check_output_file(out, _parquet_is_ours if fmt == "parquet" else _word2vec_is_ours)
    if not out.parent.is_dir():
        raise InputError(f"{out.parent}: no such folder")
    model, data, _ = open_run(run_dir, data_dir)
    keys, vectors, bias, meta = exported_vectors(model, data, users=users, context=context)
    if fmt == "parquet":
        write_parquet(out, keys, vectors, bias, meta)
    else:
        write_word2vec(out, keys, vectors, binary=fmt == "word2vec-binary")
    return {"path": str(out), "format": fmt, "count": len(keys), "dim": int(vectors.shape[1]), **meta}
