"""Golden values: every registered model, trained on one thread on a tiny fixed catalogue (item-item) or a tiny
fixed ratings set (user-item), gives the metrics and scores recorded in tests/golden/models.json.

This is the guard for restructuring (one model layer, one trainer, one protocol per data kind): such a change
must not move a single figure. A change that is meant to change results updates the file on purpose, with
``ITEMVEC_WRITE_GOLDEN=1 python -m pytest tests/test_golden.py`` and a commit message that says why.

A model registered without an entry in SETTINGS fails here: every model is covered or the test says so.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from itemvec import registry
from itemvec.data.prepare import prepare_amazon
from itemvec.data.ratings import prepare_ratings
from itemvec.data.store import DataDir, RatingsDir
from itemvec.data.synthetic import write_amazon_2014
from itemvec.evaluate.protocols import evaluate_item_model
from itemvec.evaluate.ranking import evaluate_user_model
from itemvec.models.base import TrainingData

sys.path.insert(0, str(Path(__file__).parent))
from test_ratings_cli import write_planted_ml100k  # noqa: E402

GOLDEN = Path(__file__).parent / "golden" / "models.json"
WALKS = {"dim": 8, "threads": 1, "walks_per_node": 2, "walk_length": 10}
SETTINGS = {
    "pairs": {
        "popularity": {}, "adamic-adar": {}, "itemknn": {}, "rp3beta": {},
        "bpr": {"dim": 8, "epochs": 3, "threads": 1}, "als": {"dim": 8, "epochs": 3, "threads": 1},
        "mf": {"dim": 8, "epochs": 2, "threads": 1}, "mf-bias": {"dim": 8, "epochs": 2, "threads": 1},
        "mf-seq": WALKS, "skipgram": WALKS, "node2vec": WALKS, "eges": WALKS, "w2v-gensim": WALKS,
    },
    "ratings": {
        "global-mean": {}, "bias-baseline": {}, "popularity": {},
        "mf-explicit": {"dim": 8, "epochs": 3, "threads": 1}, "mf-explicit-bias": {"dim": 8, "epochs": 3, "threads": 1},
        "dense": {"dim": 8, "epochs": 2, "threads": 1}, "lstm": {"dim": 8, "epochs": 1, "threads": 1},
        "bpr": {"dim": 8, "epochs": 3, "threads": 1}, "warp": {"dim": 8, "epochs": 3, "threads": 1},
        "triplet": {"dim": 8, "epochs": 2, "threads": 1}, "deep-triplet": {"dim": 8, "epochs": 2, "threads": 1},
        "fm": {"dim": 8, "epochs": 2, "threads": 1},
        "itemknn": {}, "rp3beta": {}, "ease": {}, "als": {"dim": 8, "epochs": 3, "threads": 1},
    },
}
N_SCORES = 40  # scores per model: test pairs of seen items, half positives, half negatives (or test ratings)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    write_amazon_2014(root / "catalogue.json.gz", 1000, seed=11, progress=False)
    prepare_amazon([root / "catalogue.json.gz"], root / "pairs", seed=11, progress=False, log=lambda m: None)
    write_planted_ml100k(root / "ml-100k", seed=3)
    prepare_ratings(root / "ml-100k", root / "ratings", fmt="movielens-100k", split_files="ua.base,ua.test",
                    validation_fraction=0.1, seed=3, progress=False, log=lambda m: None)
    return {"pairs": DataDir(root / "pairs"), "ratings": RatingsDir(root / "ratings")}


def figures(kind: str, name: str, data) -> dict:
    model = registry.get(name, kind)(**SETTINGS[kind][name])
    if kind == "pairs":
        model.fit(TrainingData.from_data_dir(data), progress=False)
        metrics, _ = evaluate_item_model(model, data, ranking_queries=100, seed=0)
        test = data.eval_pairs("test")
        train = data.pairs("train")
        seen = np.bincount(np.r_[train.item_a, train.item_b], minlength=data.n_items) > 0
        both = seen[test.item_a] & seen[test.item_b]  # pairs every model can score
        positives = np.flatnonzero(both & (test.label == 1))[:N_SCORES // 2]
        negatives = np.flatnonzero(both & (test.label == 0))[:N_SCORES // 2]
        pick = np.r_[positives, negatives]
        scores = model.score_pairs(test.item_a[pick], test.item_b[pick])
    else:
        model.fit(data.training(), progress=False)
        metrics = evaluate_user_model(model, data.training(features=False), data.interactions("test", features=False),
                                      k=10)
        test = data.interactions("test", features=False)
        scores = model.predict(test.user[:N_SCORES], test.item[:N_SCORES])
    numbers = {key: value for key, value in metrics.items()
               if isinstance(value, int | float) and not isinstance(value, bool)}
    return {"metrics": numbers, "scores": [None if np.isnan(s) else float(s) for s in scores]}


def close(actual, expected) -> bool:
    if expected is None or actual is None:
        return actual is expected
    if isinstance(expected, float) and np.isnan(expected):
        return isinstance(actual, float) and np.isnan(actual)
    # Loose enough for another CPU's summation order, tight enough for any change in what a model computes.
    return bool(np.isclose(actual, expected, rtol=1e-4, atol=1e-5))


def test_every_registered_model_has_golden_settings():
    for kind in registry.KINDS:
        assert sorted(SETTINGS[kind]) == sorted(registry.names(kind)), kind


@pytest.mark.parametrize("kind, name", [(kind, name) for kind in registry.KINDS for name in SETTINGS[kind]])
def test_golden_figures(datasets, kind, name):
    got = figures(kind, name, datasets[kind])
    key = f"{kind}/{name}"
    if os.environ.get("ITEMVEC_WRITE_GOLDEN"):
        recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        recorded[key] = got
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
        return
    expected = json.loads(GOLDEN.read_text())[key]
    assert sorted(got["metrics"]) == sorted(expected["metrics"])
    for metric, value in expected["metrics"].items():
        assert close(got["metrics"][metric], value), (key, metric, got["metrics"][metric], value)
    assert len(got["scores"]) == len(expected["scores"])
    for position, (actual, value) in enumerate(zip(got["scores"], expected["scores"])):
        assert close(actual, value), (key, position, actual, value)
