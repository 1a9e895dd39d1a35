"""Model name → class. The CLI, configs and the contract tests all read these tables.

Two tables, one per kind of DATA_DIR: item-item models learn from product pairs (``prepare amazon``,
``edges``, ``sessions``); user-item models from ratings (``prepare ratings``). A name may appear in both
(``popularity``); which class it means follows from the data.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from itemvec.errors import ConfigError

# name → "module:Class"; imported on first use so that `itemvec --help` stays fast.
_MODELS = {
    "popularity": "itemvec.models.itemitem.heuristics:Popularity",
    "adamic-adar": "itemvec.models.itemitem.heuristics:AdamicAdar",
    "itemknn": "itemvec.models.itemitem.heuristics:ItemKNN",
    "rp3beta": "itemvec.models.itemitem.heuristics:RP3beta",
    "mf": "itemvec.models.itemitem.mf:MF",
    "mf-bias": "itemvec.models.itemitem.mf:MFBias",
    "mf-seq": "itemvec.models.itemitem.mf:MFSeq",
    "skipgram": "itemvec.models.itemitem.skipgram:SkipGram",
    "node2vec": "itemvec.models.itemitem.skipgram:Node2Vec",
    "eges": "itemvec.models.itemitem.skipgram:EGES",
    "w2v-gensim": "itemvec.models.itemitem.w2v:GensimWord2Vec",
    "bpr": "itemvec.models.itemitem.implicit:PairBPR",
    "als": "itemvec.models.itemitem.implicit:PairALS",
}

_USER_MODELS = {
    # explicit ratings
    "global-mean": "itemvec.models.useritem.explicit:GlobalMean",
    "bias-baseline": "itemvec.models.useritem.explicit:BiasBaseline",
    "mf-explicit": "itemvec.models.useritem.explicit:MFExplicit",
    "mf-explicit-bias": "itemvec.models.useritem.explicit:MFExplicitBias",
    "dense": "itemvec.models.useritem.dense:Dense",
    "lstm": "itemvec.models.useritem.lstm:LSTMRating",
    # implicit feedback
    "popularity": "itemvec.models.useritem.popularity:PopularityUsers",
    "itemknn": "itemvec.models.useritem.neighbours:ItemKNNUsers",
    "rp3beta": "itemvec.models.useritem.neighbours:RP3betaUsers",
    "ease": "itemvec.models.useritem.neighbours:EASE",
    "als": "itemvec.models.useritem.implicit:ALSUsers",
    "bpr": "itemvec.models.useritem.implicit:BPR",
    "warp": "itemvec.models.useritem.implicit:WARP",
    "triplet": "itemvec.models.useritem.triplet:Triplet",
    "deep-triplet": "itemvec.models.useritem.triplet:DeepTriplet",
    "fm": "itemvec.models.useritem.fm:FactorizationMachine",
}

KINDS = ("pairs", "ratings")

# The models `compare` runs when no --models is given, baselines first.
ITEM_MODELS = ["popularity", "adamic-adar", "itemknn", "rp3beta", "mf", "mf-bias", "skipgram", "eges", "bpr", "als"]
USER_MODELS = list(_USER_MODELS)


def _table(kind: str) -> dict[str, str]:
    if kind not in KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {KINDS}")
    return _MODELS if kind == "pairs" else _USER_MODELS


def targets(kind: str = "pairs") -> dict[str, str]:
    """name → "module:Class" of the models for ``kind`` data."""
    return dict(_table(kind))


def names(kind: str = "pairs") -> list[str]:
    return list(_table(kind))


def default_models(kind: str = "pairs") -> list[str]:
    return list(ITEM_MODELS if kind == "pairs" else USER_MODELS)


def get(name: str, kind: str = "pairs") -> type[Any]:
    table = _table(kind)
    try:
        target = table[name]
    except KeyError:
        other = "ratings" if kind == "pairs" else "pairs"
        hint = (f" ({name!r} is a model for {other} data: prepare the data with "
                f"`itemvec prepare {'ratings' if other == 'ratings' else 'amazon|edges|sessions'}`)"
                if name in _table(other) else "")
        raise ConfigError(f"unknown model {name!r} for {kind} data; registered: {', '.join(table)}{hint}") from None
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def data_kind(data_dir: str | Path) -> str:
    """"ratings" for a DATA_DIR written by ``prepare ratings``, "pairs" for every other prepared DATA_DIR."""
    manifest = Path(data_dir) / "manifest.json"
    try:
        values = json.loads(manifest.read_bytes())
    except (OSError, ValueError):
        return "pairs"
    kind = values.get("kind") if isinstance(values, dict) else None
    return "ratings" if kind == "ratings" else "pairs"


def run_kind(meta: dict[str, Any]) -> str:
    """The data kind a saved model (its ``model.json``) was trained on."""
    return "ratings" if meta.get("kind") in ("explicit", "implicit") else "pairs"
