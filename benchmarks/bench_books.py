"""Books size end to end (issue 4): prepare, walks, one epoch of `skipgram` and the evaluation, with the
reference study's walk settings (10 walks per node of length 10). Each stage runs in its own process, so the
peak memory reported is that stage's alone; the targets are under 30 minutes and 24 GB (aim 8 GB) on 2 cores.

    python benchmarks/bench_books.py [--products 2000000] [--workdir bench-output] [--model skipgram]

The synthetic catalogue (`itemvec synth amazon`) is written first when missing and not timed. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def run(args: list[str]) -> tuple[float, float]:
    """Run a command; returns (seconds, peak RSS in MB of that process, from wait4's rusage)."""
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}")
    return seconds, usage.ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=2_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    parser.add_argument("--model", default="skipgram")
    parser.add_argument("--walks-per-node", type=int, default=10)
    parser.add_argument("--walk-length", type=int, default=10)
    parser.add_argument("--skip-prepare", action="store_true", help="reuse the prepared DATA_DIR")
    args = parser.parse_args()
    itemvec = [sys.executable, "-m", "itemvec"]
    catalogue = args.workdir / f"synthetic-{args.products}.json.gz"
    data = args.workdir / f"data-{args.products}"
    run_dir = args.workdir / f"books-{args.model}"
    if not catalogue.exists():
        run([*itemvec, "synth", "amazon", "--products", str(args.products), "--seed", "1", "--out", str(catalogue),
             "--no-progress"])
    result = {"benchmark": "books-end-to-end", "products": args.products, "model": args.model,
              "walks_per_node": args.walks_per_node, "walk_length": args.walk_length, "stages": {}}
    if not args.skip_prepare:
        seconds, peak = run([*itemvec, "prepare", "amazon", str(catalogue), "--out", str(data), "--no-progress"])
        manifest = json.loads((data / "manifest.json").read_text())
        result["stages"]["prepare"] = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak, 1)}
    else:
        manifest = json.loads((data / "manifest.json").read_text())
        result["stages"]["prepare"] = {"seconds": manifest.get("seconds"), "peak_rss_mb": manifest.get("peak_rss_mb"),
                                       "reused": True}
    seconds, peak = run([*itemvec, "train", args.model, "--data", str(data), "--out", str(run_dir), "--no-resume",
                      "--set", f"walks_per_node={args.walks_per_node}", "--set", f"walk_length={args.walk_length}",
                      "--set", "epochs=1", "--no-progress"])
    train = json.loads((run_dir / "train.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result["stages"]["walks_train_evaluate"] = {
        "seconds": round(seconds, 1), "train_seconds": train["train_seconds"],
        "eval_seconds": metrics["eval_seconds"], "peak_rss_mb": round(peak, 1),
        "peak_rss_mb_after_training": train["peak_rss_mb"]}
    result["n_items"] = manifest.get("n_items")
    result["train_pairs"] = train.get("train_pairs")
    result["metrics"] = {k: metrics.get(k) for k in ("auc", "auc_seen", "auc_unseen", "auc_degree", "ap",
                                                     "recall_at_10", "ndcg_at_10")}
    stages = result["stages"]
    result["total_seconds"] = round(sum(float(s["seconds"] or 0) for s in stages.values()), 1)
    result["peak_rss_mb"] = max(float(s["peak_rss_mb"] or 0) for s in stages.values())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
