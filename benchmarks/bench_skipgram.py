"""`skipgram` against gensim skip-gram, one epoch over the same walks, same window, negatives, dimension and
threads, in one script. Prints JSON (seconds, pairs/s, test AUC under the evaluation protocol).

    python benchmarks/bench_skipgram.py --data bench-output/data-420000 --walks-per-node 5 --walk-length 40
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from itemvec.data.store import DataDir
from itemvec.evaluate.protocols import evaluate_item_model
from itemvec.graph.csr import CSRGraph
from itemvec.graph.walks import random_walks
from itemvec.models.base import TrainingData
from itemvec.models.itemitem.skipgram import SkipGram
from itemvec.models.itemitem.w2v import GensimWord2Vec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--walks-per-node", type=int, default=10)
    parser.add_argument("--walk-length", type=int, default=40)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ranking-queries", type=int, default=300)
    parser.add_argument("--lrs", default="0.05",
                        help="learning rates of our skipgram runs (gensim runs once, at its default 0.025)")
    parser.add_argument("--variants", default="shared,per-pair",
                        help="our kernels: shared (negatives drawn once per window, the default) and per-pair "
                             "(drawn per pair, as word2vec)")
    args = parser.parse_args()
    data = DataDir(args.data)
    training = TrainingData.from_data_dir(data)
    train = training.train
    start = time.perf_counter()
    graph = CSRGraph.from_pairs(train.item_a, train.item_b, train.weight, n_nodes=data.n_items)
    walks = random_walks(graph, walks_per_node=args.walks_per_node, walk_length=args.walk_length, seed=0,
                         threads=args.threads)
    walk_seconds = time.perf_counter() - start
    tokens = walks.ravel().astype(np.int32)
    offsets = np.arange(0, walks.size + 1, walks.shape[1], dtype=np.int64)
    settings = {"dim": args.dim, "window": args.window, "negatives": args.negatives, "epochs": 1,
                "threads": args.threads, "walks_per_node": args.walks_per_node, "walk_length": args.walk_length}
    result = {"benchmark": "skipgram", "data": str(args.data), "n_items": data.n_items,
              "train_pairs": len(train), "walks": int(walks.shape[0]), "tokens": int(walks.size),
              "walk_seconds": round(walk_seconds, 1), "settings": settings, "models": {}}
    # Warm the numba kernel (compilation is cached on disk, but not timed either way).
    tiny = TrainingData(n_items=data.n_items, train=train)
    variants = {"shared": True, "per-pair": False}
    for shared in variants.values():
        SkipGram(**{**settings, "dim": 8}, shared_negatives=shared).fit_sequences(tiny, tokens[:400], offsets[:11])
    runs = [("gensim-skipgram", GensimWord2Vec(**settings))]
    runs += [(f"skipgram-{variant}-lr{lr}", SkipGram(**settings, lr=float(lr), shared_negatives=variants[variant]))
             for lr in args.lrs.split(",") for variant in args.variants.split(",")]
    for name, model in runs:
        begin = time.perf_counter()
        model.fit_sequences(training, tokens, offsets)
        seconds = time.perf_counter() - begin
        entry = {"train_seconds": round(seconds, 1)}
        if hasattr(model, "train_started_"):
            entry["train_seconds_without_corpus_file"] = round(seconds - (model.train_started_ - begin), 1)
        metrics, _ = evaluate_item_model(model, data, ranking_queries=args.ranking_queries)
        entry.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()
                      if k in ("auc", "auc_seen", "auc_unseen", "auc_degree", "ap", "recall_at_10", "ndcg_at_10")})
        result["models"][name] = entry
        print(json.dumps({name: entry}), file=sys.stderr)
    peer = result["models"]["gensim-skipgram"]
    result["speedup_vs_gensim"] = {name: round(peer["train_seconds"] / entry["train_seconds"], 2)
                                   for name, entry in result["models"].items() if name != "gensim-skipgram"}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
