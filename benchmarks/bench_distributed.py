"""Data-parallel training (itemvec.distributed) against the single process, and what its collectives cost.
Prints JSON.

    python benchmarks/bench_distributed.py train DATA_DIR --model mf-bias --out bench-output/dist [--set k=v ...]
    python benchmarks/bench_distributed.py collective --items 420000,2000000 --dim 128 [--fractions 0.1,0.3]

``train``: the same `itemvec train MODEL` twice on the same DATA_DIR and settings, as 1 process × 2 threads and
as 2 processes × 1 thread (`torchrun --standalone --nproc-per-node 2 ... --set distributed=true`), each from a
fresh RUN_DIR: wall seconds of the whole command and of the training, test AUC and AUC degree-matched, the
syncs' payload per sync and per epoch, the seconds in collectives, each rank's peak RSS.

``collective``: two processes on loopback (gloo) sum one float32 table of ITEMS × DIM, as a sync does: the
dense all-reduce, and the rows mode (a one-byte-per-row MAX of the touched mask, then the touched rows) at the
given fractions of rows touched; median seconds over ``--repeats``, and the model "on paper" for N machines:
a ring all-reduce sends 2 (N − 1) / N × the payload per rank, so at B bit/s a sync takes at least
16 (N − 1) / N × payload / B seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return seconds, result


def train(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    sets = [x for kv in args.set for x in ("--set", kv)]
    base = ["-m", "itemvec", "train", args.model, "--data", args.data, "--no-progress", "--no-resume", *sets]
    rows = {}
    for key, name, launcher, extra, threads in (
            ("single", "1 process x 2 threads", [sys.executable], [], 2),
            ("two", "2 processes x 1 thread", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                               "--nproc-per-node", "2"], ["--set", "distributed=true"], 1)):
        if key not in args.runs:
            continue
        run_dir = out / f"{args.model}-{key}"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        seconds, result = run([*launcher, *base, "--out", str(run_dir), "--set", f"threads={threads}", *extra], env)
        info = json.loads((run_dir / "train.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        dist = info.get("distributed", {})
        peaks = [info["peak_rss_mb"]] + [int(line.split("peak RSS ")[1].split()[0])
                                         for line in result.stderr.splitlines() if "peak RSS " in line]
        rows[name] = {"command_seconds": round(seconds, 1), "train_seconds": info["train_seconds"],
                      "train_cpu_seconds": info["train_cpu_seconds"], "auc": round(metrics["auc"], 4),
                      "auc_degree": round(metrics["auc_degree"], 4), "peak_rss_mb_per_rank": peaks,
                      **{k: dist[k] for k in ("syncs", "payload_bytes_per_sync", "payload_bytes_per_epoch",
                                              "sent_bytes_per_rank_per_sync", "collective_seconds",
                                              "dense_tables", "row_tables", "touched_fraction") if k in dist}}
        print(f"{name}: {json.dumps(rows[name])}", file=sys.stderr, flush=True)
    return {"benchmark": "distributed-train", "model": args.model, "data": args.data, "sets": args.set,
            "runs": rows}


def collective_worker(args: argparse.Namespace) -> None:
    """One rank of ``collective`` (under torchrun)."""
    import numpy as np
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    results = []
    for items in args.items:
        table = np.random.default_rng(rank).standard_normal((items, args.dim)).astype(np.float32)

        def timed(work) -> float:
            times = []
            for _ in range(args.repeats):
                dist.barrier()
                started = time.perf_counter()
                work()
                times.append(time.perf_counter() - started)
            return float(np.median(times))

        dense = timed(lambda table=table: dist.all_reduce(torch.from_numpy(table)))
        row = {"items": items, "dim": args.dim, "dense_payload_bytes": table.nbytes, "dense_seconds": round(dense, 4),
               "rows": []}
        for fraction in args.fractions:
            mask = np.zeros(items, dtype=np.uint8)
            mask[: int(items * fraction)] = 1

            def rows_sync(mask=mask, table=table) -> None:
                m = mask.copy()
                dist.all_reduce(torch.from_numpy(m), op=dist.ReduceOp.MAX)
                touched = np.flatnonzero(m)
                part = np.ascontiguousarray(table[touched])
                dist.all_reduce(torch.from_numpy(part))

            seconds = timed(rows_sync)
            payload = items + int(items * fraction) * args.dim * 4
            row["rows"].append({"fraction": fraction, "payload_bytes": payload, "seconds": round(seconds, 4)})
        results.append(row)
    if rank == 0:
        print(json.dumps(results))
    dist.destroy_process_group()


def collective(args: argparse.Namespace) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", __file__,
               "collective-worker", "--items", ",".join(map(str, args.items)), "--dim", str(args.dim),
               "--fractions", ",".join(map(str, args.fractions)), "--repeats", str(args.repeats)]
    _, result = run(command, {**os.environ, "OMP_NUM_THREADS": "1"})
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    for row in measured:
        size = row["dense_payload_bytes"]
        row["loopback_gbit_per_s"] = round(16 * 0.5 * size / row["dense_seconds"] / 1e9, 2)  # 2 ranks: 2(N-1)/N = 1
        row["on_paper"] = [{"machines": n, "gbit_per_s": gbit,
                            "dense_sync_seconds": round(16 * (n - 1) / n * size / (gbit * 1e9), 3)}
                           for n in (2, 4, 8, 16) for gbit in (10, 100)]
    return {"benchmark": "distributed-collective", "results": measured}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train")
    t.add_argument("data")
    t.add_argument("--model", default="mf-bias")
    t.add_argument("--out", required=True)
    t.add_argument("--set", action="append", default=[])
    t.add_argument("--runs", type=lambda v: v.split(","), default=["single", "two"],
                   help="which runs: single (1 process x 2 threads), two (2 processes x 1 thread)")
    for name in ("collective", "collective-worker"):
        c = sub.add_parser(name)
        c.add_argument("--items", type=lambda s: [int(x) for x in s.split(",")], default=[420_000, 2_000_000])
        c.add_argument("--dim", type=int, default=128)
        c.add_argument("--fractions", type=lambda s: [float(x) for x in s.split(",")], default=[0.05, 0.2, 0.5])
        c.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.what == "collective-worker":
        collective_worker(args)
        return
    result = train(args) if args.what == "train" else collective(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
