"""`prepare` at Amazon Electronics size (420k products) and Books size (2M products): seconds and peak memory.

Each size runs `itemvec synth amazon` then `itemvec prepare amazon` in its own process, so the peak memory
(from the manifest, ru_maxrss) is that stage's alone. Prints JSON.

    python benchmarks/bench_prepare.py [--sizes 420000,2000000] [--workdir bench-output]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def run(args: list[str]) -> tuple[float, float]:
    """Run a command; returns (seconds, peak RSS in MB of that child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(after, before) / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="420000,2000000")
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "itemvec.cli"]
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        raw = args.workdir / f"synthetic-{size}.json.gz"
        data = args.workdir / f"data-{size}"
        synth_s, synth_mb = run(cli + ["synth", "amazon", "--products", str(size), "--seed", "1", "--out", str(raw),
                                       "--no-progress"])
        prep_s, _ = run(cli + ["prepare", "amazon", str(raw), "--out", str(data), "--seed", "1", "--no-progress"])
        manifest = json.loads((data / "manifest.json").read_text())
        results.append({
            "products": size,
            "input_mb": round(raw.stat().st_size / 1e6, 1),
            "metadata_lines": manifest["records_read"],
            "unique_pairs": manifest["unique_pairs"],
            "train_pairs": manifest["pairs_per_part"]["train"],
            "synth_seconds": round(synth_s, 1),
            "prepare_seconds_wall": round(prep_s, 1),
            "prepare_seconds_manifest": manifest["seconds"],
            "prepare_peak_rss_mb": manifest["peak_rss_mb"],
        })
        if not args.keep:
            raw.unlink()
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "prepare", "results": results}, indent=2))


if __name__ == "__main__":
    main()
