"""Spread of the test figures across seeds and across thread counts. Prints JSON.

    python benchmarks/bench_determinism.py --data 5k=DATA_5K --data mag=DATA_MAG \
        [--models mf,mf-bias,skipgram,mf-seq] [--seeds 5] [--threads 1,2] [--repeats 2] [--set key=value ...] \
        [--workdir bench-output/determinism] [--out result.json]

Every configuration (model, data set, seed, thread count) trains in its own subprocess, because numba's
thread count is process-wide (`numba.set_num_threads`) and the first configuration must not set it for the
others. For each model and data set it reports, per thread count, the mean and sample standard deviation
across seeds 0..N-1 of the test AUC (uniform negatives), AUC on seen pairs, AUC against degree-matched
negatives and recall@10; the difference of the means between the largest and the smallest thread count,
with that difference divided by its standard error (|z| much above 2-3: the thread count changes the
expected result, not just the noise); the spread (max - min) of ``--repeats`` extra runs of seed 0 at the
largest thread count together with the sweep's own seed-0 run (Hogwild races); and whether a second run
of seed 0 on one thread gives bit-identical weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

METRICS = ("auc", "auc_seen", "auc_degree", "recall_at_10")


def weights_digest(run_dir: Path) -> str:
    import numpy as np

    h = hashlib.sha256()
    with np.load(run_dir / "weights.npz", allow_pickle=False) as npz:
        for key in sorted(npz.files):
            h.update(key.encode())
            h.update(np.ascontiguousarray(npz[key]).tobytes())
    return h.hexdigest()[:16]


def child(args) -> None:
    """One configuration: train, evaluate, print one JSON line."""
    from itemvec.runs import train_run

    sets = dict(kv.split("=", 1) for kv in args.set)
    sets.update(threads=str(args.one_threads), seed=str(args.one_seed))
    out = Path(args.one_out)
    started = time.perf_counter()
    metrics = train_run(args.one_model, Path(args.one_data), out, sets=sets, progress=False, resume=False)
    wall = time.perf_counter() - started
    row = {k: metrics[k] for k in METRICS}
    row.update(train_seconds=metrics.get("train_seconds"), wall_seconds=round(wall, 2), weights=weights_digest(out))
    print("RESULT " + json.dumps(row))


def run_one(model: str, data_dir: str, seed: int, threads: int, out: Path, sets: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--one-model", model, "--one-data", data_dir, "--one-seed", str(seed),
           "--one-threads", str(threads), "--one-out", str(out)]
    for kv in sets:
        cmd += ["--set", kv]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd


def summarise(runs: dict, threads: list[int], seeds: int) -> dict:
    lo, hi = min(threads), max(threads)
    out: dict = {"per_threads": {}, "difference": {}, "repeat_spread": {}}
    for t in threads:
        rows = [runs[("sweep", s, t)] for s in range(seeds)]
        out["per_threads"][str(t)] = {m: dict(zip(("mean", "sd"), (round(x, 4) for x in mean_sd([r[m] for r in rows]))))
                                      for m in METRICS}
        out["per_threads"][str(t)]["train_seconds_mean"] = round(mean_sd([r["train_seconds"] for r in rows])[0], 2)
    for m in METRICS:
        (m_lo, s_lo), (m_hi, s_hi) = (mean_sd([runs[("sweep", s, t)][m] for s in range(seeds)]) for t in (lo, hi))
        se = math.sqrt((s_lo ** 2 + s_hi ** 2) / seeds)
        out["difference"][m] = {f"mean_{hi}_minus_{lo}": round(m_hi - m_lo, 4),
                                "z": round((m_hi - m_lo) / se, 1) if se > 0 else None}
        reps = [runs[("sweep", 0, hi)][m]] + [r[m] for k, r in runs.items() if k[0] == "repeat"]
        out["repeat_spread"][m] = round(max(reps) - min(reps), 5)
    out["repeat_runs"] = 1 + sum(1 for k in runs if k[0] == "repeat")
    same = runs.get(("same", 0, 1))
    if same is not None and ("sweep", 0, 1) in runs:
        first = runs[("sweep", 0, 1)]
        out["one_thread_identical"] = same["weights"] == first["weights"] and all(same[m] == first[m] for m in METRICS)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", default=[], help="NAME=DATA_DIR (repeatable)")
    p.add_argument("--models", default="mf,mf-bias,skipgram,mf-seq")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", type=int, default=2, help="extra runs of seed 0 at the largest thread count")
    p.add_argument("--set", action="append", default=[], help="model setting key=value for every run")
    p.add_argument("--workdir", default="bench-output/determinism")
    p.add_argument("--out", default=None, help="also write the JSON here")
    p.add_argument("--one-model")
    p.add_argument("--one-data")
    p.add_argument("--one-seed", type=int)
    p.add_argument("--one-threads", type=int)
    p.add_argument("--one-out")
    args = p.parse_args()
    if args.one_model:
        child(args)
        return
    threads = [int(t) for t in args.threads.split(",")]
    workdir = Path(args.workdir)
    result: dict = {"settings": args.set, "seeds": args.seeds, "threads": threads, "repeats": args.repeats,
                    "results": {}, "raw": {}}
    started = time.perf_counter()
    for spec in args.data:
        name, data_dir = spec.split("=", 1)
        for model in args.models.split(","):
            plan = [("sweep", s, t) for t in threads for s in range(args.seeds)]
            plan += [("repeat", i, max(threads)) for i in range(args.repeats)]
            if 1 in threads:
                plan.append(("same", 0, 1))
            runs = {}
            for kind, s, t in plan:
                seed = s if kind != "repeat" else 0
                out = workdir / name / model / f"{kind}-s{s}-t{t}"
                runs[(kind, s, t)] = run_one(model, data_dir, seed, t, out, args.set)
                print(f"{name} {model} {kind} seed={seed} threads={t}: "
                      + " ".join(f"{m}={runs[(kind, s, t)][m]:.4f}" for m in METRICS), file=sys.stderr, flush=True)
            result["results"].setdefault(name, {})[model] = summarise(runs, threads, args.seeds)
            result["raw"].setdefault(name, {})[model] = {f"{k[0]}-s{k[1]}-t{k[2]}": v for k, v in runs.items()}
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=1))


if __name__ == "__main__":
    main()
