"""Model name → class. The CLI, configs and the contract tests all read this one table."""

from __future__ import annotations

import importlib

from itemvec.errors import ConfigError

# name → "module:Class"; imported on first use so that `itemvec --help` stays fast.
_MODELS = {
    "popularity": "itemvec.models.heuristics:Popularity",
    "adamic-adar": "itemvec.models.heuristics:AdamicAdar",
    "mf": "itemvec.models.mf:MF",
    "mf-bias": "itemvec.models.mf:MFBias",
    "mf-seq": "itemvec.models.mf:MFSeq",
    "skipgram": "itemvec.models.skipgram:SkipGram",
    "node2vec": "itemvec.models.skipgram:Node2Vec",
    "eges": "itemvec.models.skipgram:EGES",
    "w2v-gensim": "itemvec.models.w2v:GensimWord2Vec",
}

# The item-item models `compare` runs when no --models is given, baselines first.
ITEM_MODELS = ["popularity", "adamic-adar", "mf", "mf-bias"]


def names() -> list[str]:
    return list(_MODELS)


def get(name: str):
    try:
        target = _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; registered: {', '.join(_MODELS)}") from None
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
