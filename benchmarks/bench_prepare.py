"""`prepare` at Amazon Electronics size (420k products) and Books size (2M products): seconds and peak memory.

Each size runs `itemvec synth amazon` then `itemvec prepare amazon` in its own process, so the peak memory
(from the manifest, ru_maxrss) is that stage's alone. With ``--literal-eval`` the same file is also read by a
bare pass in a process of its own: gunzip, split lines, ``ast.literal_eval`` each (no ids, no pairs, nothing
written), the floor a pure-Python reader of the 2014 format starts from. Prints JSON.

    python benchmarks/bench_prepare.py [--sizes 420000,2000000] [--workdir bench-output] [--literal-eval]
        [--workers 0,auto]

``--workers`` runs the prepare once per value, alternating (``auto``: itemvec's default, one read worker per
core for inputs of 24 MB or more; 0: one process), with ``--repeats`` rounds; every run's seconds are listed.
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


BARE = """
import ast, gzip, sys
with gzip.open(sys.argv[1], "rb") as f:
    for line in f:
        if line.strip():
            ast.literal_eval(line.decode("utf-8"))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="420000,2000000")
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--literal-eval", action="store_true", help="also time a bare ast.literal_eval pass")
    parser.add_argument("--existing", action="store_true", help="reuse WORKDIR/synthetic-N.json.gz if present")
    parser.add_argument("--workers", default="auto", help="comma-separated --workers values (auto: the default)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the --workers values")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "itemvec"]
    results = []
    for size in [int(s) for s in args.sizes.split(",")]:
        raw = args.workdir / f"synthetic-{size}.json.gz"
        data = args.workdir / f"data-{size}"
        synth_s = None
        if not (args.existing and raw.exists()):
            synth_s, _ = run(cli + ["synth", "amazon", "--products", str(size), "--seed", "1", "--out", str(raw),
                                    "--no-progress"])
        runs: dict[str, list[dict]] = {w: [] for w in args.workers.split(",")}
        for _ in range(args.repeats):
            for workers in runs:
                extra = [] if workers == "auto" else ["--workers", workers]
                seconds, _ = run(cli + ["prepare", "amazon", str(raw), "--out", str(data), "--seed", "1",
                                        "--no-progress", *extra])
                done = json.loads((data / "manifest.json").read_text())
                runs[workers].append({"wall": round(seconds, 1), "manifest": done["seconds"],
                                      "peak_rss_mb": done["peak_rss_mb"], "read_workers": done.get("read_workers")})
        prep_s = sorted(r["wall"] for r in runs[next(iter(runs))])[(args.repeats - 1) // 2]  # the first's median
        bare_s = run([sys.executable, "-c", BARE, str(raw)])[0] if args.literal_eval else None
        manifest = json.loads((data / "manifest.json").read_text())
        results.append({
            "products": size,
            "input_mb": round(raw.stat().st_size / 1e6, 1),
            "metadata_lines": manifest["records_read"],
            "unique_pairs": manifest["unique_pairs"],
            "train_pairs": manifest["pairs_per_part"]["train"],
            "synth_seconds": None if synth_s is None else round(synth_s, 1),
            "prepare_seconds_wall": round(prep_s, 1),
            "prepare_seconds_manifest": manifest["seconds"],
            "prepare_peak_rss_mb": manifest["peak_rss_mb"],
            "runs_by_workers": runs,
        })
        if bare_s is not None:
            results[-1]["bare_literal_eval_seconds"] = round(bare_s, 1)
            results[-1]["prepare_vs_bare_literal_eval"] = round(bare_s / prep_s, 2)
        if not args.keep and synth_s is not None:  # only what this run generated
            raw.unlink()
        print(json.dumps(results[-1]), file=sys.stderr)
    print(json.dumps({"benchmark": "prepare", "results": results}, indent=2))


if __name__ == "__main__":
    main()
