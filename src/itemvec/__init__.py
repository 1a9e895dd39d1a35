"""itemvec: item embeddings and recommendations from product graphs, sessions and ratings.

The Python API, for notebooks (the command line does the same through ``itemvec ...``)::

    import itemvec

    itemvec.synth_amazon("catalogue.json.gz", products=2000, seed=7)   # or your own Amazon metadata
    itemvec.prepare_amazon(["catalogue.json.gz"], "data", seed=7)
    data = itemvec.open_data("data")
    model = itemvec.MFBias(dim=32, epochs=3).fit(data)
    top, scores = model.similar_items([0], k=5)                         # item indices; data.asins names them
    metrics = itemvec.evaluate_model(model, data)                       # the same figures as metrics.json

Every registered model class is importable from here by its class name (``itemvec.MF``, ``itemvec.BPR``,
...); ``itemvec.registry.names(kind)`` lists the registered names. Everything is imported on first use, so
``import itemvec`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name → "module:attribute"; the model classes come from the registry's tables (see __getattr__).
_API = {
    "open_data": "itemvec.runs:open_data",
    "train_run": "itemvec.runs:train_run",
    "evaluate_model": "itemvec.runs:evaluate_model",
    "evaluate_run": "itemvec.runs:evaluate_run",
    "open_run": "itemvec.runs:open_run",
    "compare": "itemvec.runs:compare",
    "similar": "itemvec.runs:similar",
    "recommend": "itemvec.runs:recommend",
    "load_model": "itemvec.models.base:load_model",
    "prepare_amazon": "itemvec.data.prepare:prepare_amazon",
    "prepare_edges": "itemvec.data.prepare:prepare_edges",
    "prepare_sessions": "itemvec.data.sessions:prepare_sessions",
    "prepare_ratings": "itemvec.data.ratings:prepare_ratings",
    "synth_amazon": "itemvec.data.synthetic:write_amazon_2014",
    "Trainer": "itemvec.train:Trainer",
    "TrainSettings": "itemvec.train:TrainSettings",
    "Model": "itemvec.models.base:Model",
    "ItemModel": "itemvec.models.base:ItemModel",
    "UserItemModel": "itemvec.models.useritem.base:UserItemModel",
}

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports on first use
    from itemvec.data.prepare import prepare_amazon, prepare_edges  # noqa: F401
    from itemvec.data.ratings import prepare_ratings  # noqa: F401
    from itemvec.data.sessions import prepare_sessions  # noqa: F401
    from itemvec.data.synthetic import write_amazon_2014 as synth_amazon  # noqa: F401
    from itemvec.models.base import ItemModel, Model, load_model  # noqa: F401
    from itemvec.models.useritem.base import UserItemModel  # noqa: F401
    from itemvec.runs import (  # noqa: F401
        compare,
        evaluate_model,
        evaluate_run,
        open_data,
        open_run,
        recommend,
        similar,
        train_run,
    )
    from itemvec.train import Trainer, TrainSettings  # noqa: F401


def _model_targets() -> dict[str, str]:
    from itemvec import registry

    return {target.partition(":")[2]: target for kind in registry.KINDS
            for target in registry.targets(kind).values()}


def __getattr__(name: str) -> Any:
    target = _API.get(name) or (_model_targets().get(name) if name[:1].isupper() else None)
    if target is None:
        raise AttributeError(f"module 'itemvec' has no attribute {name!r}")
    module, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_API, *_model_targets()})


__all__ = sorted(_API)
