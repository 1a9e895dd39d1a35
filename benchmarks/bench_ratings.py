"""User-item models against their peers on the same ratings split, in one script: scikit-surprise's SVD
(and SVD++, BaselineOnly) for explicit ratings, `implicit`'s BPR and LightFM's WARP for implicit feedback. Every model, ours and
the peers', is scored by the same protocol (`itemvec.evaluate.ranking.evaluate_user_model`): RMSE on the
test ratings, per-user AUC and P/R/MAP/NDCG@10 over the whole catalogue with known items excluded.

    itemvec prepare ratings ../shared/data/movielens/ml-latest-small --format movielens-csv --out bench-output/ml-small
    python benchmarks/bench_ratings.py --data bench-output/ml-small --out bench-output/ml-small-compare

Our models run through `itemvec compare` (each in its own process: train seconds and peak memory per
model); the peers run here, timed around their ``fit``. Prints JSON. Needs the `bench` extra
(`pip install -e .[bench]`: scikit-surprise, implicit, lightfm-next).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from itemvec import registry
from itemvec.data.store import RatingsDir
from itemvec.entry import configure
from itemvec.evaluate.ranking import evaluate_user_model
from itemvec.runs import compare


class PeerModel:
    """A peer's predictions behind the two methods the protocol calls (kind, predict, score_users)."""

    def __init__(self, name: str, kind: str, scores: np.ndarray, predict=None) -> None:
        self.name, self.kind, self._scores, self._predict = name, kind, scores, predict

    def predict(self, users, items) -> np.ndarray:
        if self._predict is not None:
            return self._predict(np.asarray(users), np.asarray(items))
        return self._scores[np.asarray(users), np.asarray(items)].astype(np.float64)

    def score_users(self, users) -> np.ndarray:
        return self._scores[np.asarray(users)]


def surprise_peer(name: str, train, n_users: int, n_items: int, rating_min: float, rating_max: float):
    """Fit Surprise's ``name`` (baseline, svd, svdpp) on the train ratings; scores for every (user, item),
    with Surprise's own answer for unknown users / items (the global mean plus the known biases)."""
    from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp

    make = {"baseline": lambda: BaselineOnly(verbose=False), "svd": lambda: SVD(random_state=0),
            "svdpp": lambda: SVDpp(random_state=0, cache_ratings=True)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.csv")
        np.savetxt(path, np.column_stack([train.user, train.item, train.rating]), fmt=["%d", "%d", "%.2f"],
                   delimiter=",")
        reader = Reader(line_format="user item rating", sep=",", rating_scale=(rating_min, rating_max))
        trainset = Dataset.load_from_file(path, reader).build_full_trainset()
    algo = make[name]()
    started = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - started
    users = np.array([int(trainset.to_raw_uid(u)) for u in range(trainset.n_users)])
    items = np.array([int(trainset.to_raw_iid(i)) for i in range(trainset.n_items)])
    mu = trainset.global_mean
    bu, bi = np.zeros(n_users), np.zeros(n_items)
    if name == "baseline":
        b_u, b_i = algo.compute_baselines()
        bu[users], bi[items] = b_u, b_i
        scores = mu + bu[:, None] + bi[None, :]
    else:
        bu[users], bi[items] = algo.bu, algo.bi
        pu, qi = np.zeros((n_users, algo.n_factors)), np.zeros((n_items, algo.n_factors))
        pu[users], qi[items] = algo.pu, algo.qi
        if name == "svdpp":  # the user's factors plus |N(u)|^-1/2 · Σ y_j over the items they rated
            for inner, raw in enumerate(users):
                rated = [j for j, _ in trainset.ur[inner]]
                pu[raw] += algo.yj[rated].sum(axis=0) / np.sqrt(len(rated))
        scores = mu + bu[:, None] + bi[None, :] + pu @ qi.T
    return np.clip(scores, rating_min, rating_max).astype(np.float32), seconds


def implicit_bpr_peer(train, n_users: int, n_items: int, threads: int, factors: int, iterations: int):
    """`implicit`'s BPR on the train positives (rating >= threshold)."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    matrix = train.matrix(positives_only=True).astype(np.float32)
    model = BayesianPersonalizedRanking(factors=factors, iterations=iterations, random_state=0,
                                        num_threads=threads)
    started = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - started
    scores = np.asarray(model.user_factors) @ np.asarray(model.item_factors).T
    return scores.astype(np.float32), seconds


def lightfm_warp_peer(train, n_users: int, n_items: int, threads: int, components: int, epochs: int):
    """LightFM's WARP (no side features: an identity feature per user and per item, as LightFM sets by
    default) on the train positives; LightFM's scores include its item biases."""
    from lightfm import LightFM

    matrix = train.matrix(positives_only=True).tocoo().astype(np.float32)
    model = LightFM(loss="warp", no_components=components, random_state=0)
    started = time.perf_counter()
    model.fit(matrix, epochs=epochs, num_threads=threads)
    seconds = time.perf_counter() - started
    users, items = model.get_user_representations(), model.get_item_representations()
    scores = users[1] @ items[1].T + users[0][:, None] + items[0][None, :]
    return scores.astype(np.float32), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="a DATA_DIR written by `itemvec prepare ratings`")
    parser.add_argument("--out", type=Path, required=True, help="REPORT_DIR for our models' comparison")
    parser.add_argument("--models", default=",".join(registry.default_models("ratings")))
    parser.add_argument("--surprise", default="baseline,svd", help="Surprise algorithms (baseline, svd, svdpp)")
    parser.add_argument("--bpr-factors", type=int, default=64)
    parser.add_argument("--bpr-iterations", type=int, default=200)
    parser.add_argument("--lightfm-components", type=int, default=64)
    parser.add_argument("--lightfm-epochs", type=int, default=30, help="0: leave LightFM out")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--retrain", action="store_true", help="retrain our models even if runs exist")
    args = parser.parse_args()

    data = RatingsDir(args.data)
    known = data.training(features=False)  # train + validation: the user's history, excluded from ranking
    train = data.interactions("train", features=False)
    test = data.interactions("test", features=False)
    result = {"benchmark": "ratings", "data": str(args.data), "n_users": data.n_users, "n_items": data.n_items,
              "parts": data.manifest.get("parts"), "models": {}}
    configure("compare")  # our models train in processes of their own, set up as by the `itemvec` command
    rows = compare(args.data, args.models.split(","), args.out, progress=False, reuse=not args.retrain,
                   log=lambda m: print(m, file=sys.stderr))
    keys = ("rmse", "rmse_scaled", "mae", "auc_per_user", "precision_at_10", "recall_at_10", "map_at_10",
            "ndcg_at_10", "train_seconds", "peak_rss_mb")
    for row in rows:
        result["models"][row["model"]] = {k: row.get(k) for k in keys}
    peers = []
    for name in filter(None, args.surprise.split(",")):
        scores, seconds = surprise_peer(name, train, data.n_users, data.n_items, train.rating_min,
                                        train.rating_max)
        peers.append((f"surprise-{name}", "explicit", scores, seconds))
    bpr, seconds = implicit_bpr_peer(train, data.n_users, data.n_items, args.threads, args.bpr_factors,
                                     args.bpr_iterations)
    peers.append(("implicit-bpr", "implicit", bpr, seconds))
    if args.lightfm_epochs > 0:
        warp, seconds = lightfm_warp_peer(train, data.n_users, data.n_items, args.threads, args.lightfm_components,
                                          args.lightfm_epochs)
        peers.append(("lightfm-warp", "implicit", warp, seconds))
    for name, kind, scores, seconds in peers:
        metrics = evaluate_user_model(PeerModel(name, kind, scores), known, test, k=10)
        entry = {k: metrics.get(k) for k in keys}
        entry["train_seconds"] = round(seconds, 2)
        result["models"][name] = entry
        print(json.dumps({name: entry}), file=sys.stderr)
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
