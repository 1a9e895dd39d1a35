"""The nearest-neighbour index against the exact scan, ann-benchmarks style, on trained runs.

For each RUN_DIR (an item-item run; train one with `itemvec train`), the item-item rule is written as one inner
product (``itemvec.index.similar_space``), a sample of learned items is drawn as queries, and:

- the oracle is the exact top-k of every query over all other learned items, in float64;
- the exact scan's speed is faiss's brute-force inner-product scan (``IndexFlatIP``, float32 BLAS), one query
  at a time, one thread: the fastest exact scan there is, not itemvec's fallback;
- for each HNSW M and each IVF nlist the index is built (build time and size reported separately), then for
  each efSearch or nprobe the queries are answered one at a time on one thread, both by faiss alone and by
  ``FaissIndex.search`` (what `itemvec similar` and the service call: the query left out, candidates
  re-scored in float64);
- recall@k tolerates ties by distance, as ann-benchmarks does: a returned item counts when its exact score is
  at least the k-th exact score minus ``--epsilon``.

    python benchmarks/bench_index.py bench-output/run-mf-bias-420000 [RUN_DIR...] [--queries 2000]

Prints one JSON object (also written to ``--out`` if given).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread for every query, the scan and the graph alike

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def recall_at_k(found: np.ndarray, query_scores: np.ndarray, kth: float, k: int, epsilon: float) -> float:
    """The share of the k returned items whose exact score reaches the k-th exact score (less epsilon)."""
    found = found[found >= 0][:k]
    return float(np.count_nonzero(query_scores[found] >= kth - epsilon)) / k


def bench_run(run_dir: Path, args: argparse.Namespace) -> dict:
    import faiss

    from itemvec.index import FaissIndex, similar_space
    from itemvec.runs import open_run

    faiss.omp_set_num_threads(1)
    model, data, _ = open_run(run_dir)
    emb = model.embedding()
    space = similar_space(emb)
    learned = np.asarray(model.known_items_, dtype=bool)
    positions = np.flatnonzero(learned)
    rng = np.random.default_rng(args.seed)
    queries = np.sort(rng.choice(positions, size=min(args.queries, len(positions)), replace=False))
    k = args.k
    keys64 = space.keys.astype(np.float64)

    # The oracle: each query's exact scores over the learned items (the query itself left out), float64.
    started = time.perf_counter()
    truth_scores, kth = [], np.empty(len(queries))
    for n, q in enumerate(queries):
        scores = keys64 @ space.queries[q].astype(np.float64)
        scores[~learned] = -np.inf
        scores[q] = -np.inf
        kth[n] = np.partition(scores, len(scores) - k)[len(scores) - k]
        truth_scores.append(scores)
    oracle_s = time.perf_counter() - started

    # The exact scan's speed: faiss brute force over the learned items, one query at a time.
    stored = np.ascontiguousarray(space.keys[positions], dtype=np.float32)
    flat = faiss.IndexFlatIP(stored.shape[1])
    flat.add(stored)
    qvecs = np.ascontiguousarray(space.queries[queries], dtype=np.float32)
    started = time.perf_counter()
    for n in range(len(queries)):
        flat.search(qvecs[n:n + 1], k + 1)
    exact_s = time.perf_counter() - started
    exact_qps = len(queries) / exact_s
    del flat

    from itemvec.index import default_nlist

    builds = [("hnsw", {"m": m, "ef_construction": args.ef_construction}, args.ef) for m in args.m]
    builds += [("ivf", {"nlist": nlist or default_nlist(len(positions))}, args.nprobe) for nlist in args.nlist]
    results = []
    for backend, settings, breadths in builds:
        if backend not in args.backends:
            continue
        faiss.omp_set_num_threads(args.build_threads)
        started = time.perf_counter()
        index = FaissIndex.build(space.keys, learned, backend=backend, **settings)
        build_s = time.perf_counter() - started
        size = len(index.to_bytes())
        faiss.omp_set_num_threads(1)
        for breadth in breadths:
            if backend == "hnsw":
                params = faiss.SearchParametersHNSW(efSearch=max(breadth, k + 1))
            else:
                params = faiss.SearchParametersIVF(nprobe=min(breadth, settings["nlist"]))
            started = time.perf_counter()
            raw = [index.index.search(qvecs[n:n + 1], k + 1, params=params)[1][0] for n in range(len(queries))]
            faiss_s = time.perf_counter() - started
            started = time.perf_counter()
            ours = [index.search(space, int(q), k, exclude=np.array([q]), breadth=breadth)[0] for q in queries]
            ours_s = time.perf_counter() - started
            faiss_recall = np.mean([
                recall_at_k(np.array([positions[i] for i in row if i >= 0 and positions[i] != q]), truth_scores[n],
                            kth[n], k, args.epsilon) for n, (q, row) in enumerate(zip(queries, raw))])
            ours_recall = np.mean([recall_at_k(row, truth_scores[n], kth[n], k, args.epsilon)
                                   for n, row in enumerate(ours)])
            row = {"backend": backend, **settings, ("ef_search" if backend == "hnsw" else "nprobe"): breadth,
                   "build_seconds": round(build_s, 1), "index_mb": round(size / 2**20, 1),
                   "faiss_qps": round(len(queries) / faiss_s, 1), "faiss_recall": round(float(faiss_recall), 4),
                   "itemvec_qps": round(len(queries) / ours_s, 1), "itemvec_recall": round(float(ours_recall), 4),
                   "speedup_vs_exact": round(len(queries) / ours_s / exact_qps, 1)}
            results.append(row)
            print(json.dumps({"run": str(run_dir), **row}), file=sys.stderr, flush=True)
        del index
    return {"run": str(run_dir), "model": model.name, "rule": emb.rule, "bias": emb.item_bias is not None,
            "items": int(model.n_items), "learned": int(len(positions)), "dim": int(space.keys.shape[1]),
            "queries": int(len(queries)), "k": k, "oracle_seconds": round(oracle_s, 1),
            "exact_qps": round(exact_qps, 1), "exact_ms": round(1000 / exact_qps, 3), "sweep": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="item-item RUN_DIRs (itemvec train ... --out RUN_DIR)")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--m", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32])
    parser.add_argument("--ef", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128, 256])
    parser.add_argument("--ef-construction", type=int, default=200)
    parser.add_argument("--backends", type=lambda s: s.split(","), default=["hnsw", "ivf"])
    parser.add_argument("--nlist", type=lambda s: [int(x) for x in s.split(",")], default=[0],
                        help="IVF lists (0: itemvec's default for the number of items)")
    parser.add_argument("--nprobe", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128])
    parser.add_argument("--build-threads", type=int, default=1)
    parser.add_argument("--epsilon", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    report = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
              "settings": {"queries": args.queries, "k": args.k, "ef_construction": args.ef_construction,
                           "build_threads": args.build_threads, "query_threads": 1, "epsilon": args.epsilon},
              "runs": [bench_run(run, args) for run in args.runs]}
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
