"""What a training process holds (issue 17: "a `bpr` or `popularity` process stays under 150 MB").

    python benchmarks/bench_process.py --data bench-output/ml-small [--models popularity,bpr] [--runs 3]

Measures, each in a fresh process (peak RSS from wait4's rusage, MB): the floor of a process that loads only
numpy; numpy and numba; numpy, numba and one cached numba kernel run (what any numba model needs before it
reads a byte); and `itemvec train MODEL --data DATA` for each model, with the training stage's own peak
(``peak_rss_mb`` in train.json). MB here are MiB (ru_maxrss / 1024), as in every itemvec figure. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from bench_books import run as peak_of  # (seconds, peak RSS in MB) of a command that must succeed

FLOORS = {
    "numpy": "import numpy",
    "numpy + numba imported": "import numpy, numba",
    # A kernel in a module file, so that numba caches it (cache=True needs a file) and the second run loads it.
    "numpy + numba + one cached kernel": "import sys; sys.path.insert(0, {dir!r}); import floor_kernel; "
                                         "floor_kernel.total(floor_kernel.numpy.ones(10))",
}

KERNEL = '''import numpy
from numba import njit


@njit(cache=True, nogil=True)
def total(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="a ratings DATA_DIR (`itemvec prepare ratings`)")
    parser.add_argument("--models", default="popularity,bpr")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (args.data / "manifest.json").is_file():
        parser.error(f"{args.data}: not a DATA_DIR (no manifest.json); make one with `itemvec prepare ratings`")
    work = Path(tempfile.mkdtemp(prefix="bench-process-"))
    try:
        (work / "floor_kernel.py").write_text(KERNEL)
        peak_of([sys.executable, "-c", FLOORS["numpy + numba + one cached kernel"].format(dir=str(work))])  # compiles
        result: dict = {"benchmark": "process-memory", "data": str(args.data), "runs": args.runs, "floors_mb": {},
                        "models": {}}
        for name, code in FLOORS.items():
            peaks = [peak_of([sys.executable, "-c", code.format(dir=str(work))])[1] for _ in range(args.runs)]
            result["floors_mb"][name] = [round(p, 1) for p in peaks]
        for model in args.models.split(","):
            rows = []
            for run in range(args.runs):
                out = work / f"{model}-{run}"
                seconds, peak = peak_of([sys.executable, "-m", "itemvec", "train", model, "--data", str(args.data),
                                         "--out", str(out), "--no-progress", "--no-resume"])
                train = json.loads((out / "train.json").read_text())
                rows.append({"training_peak_mb": train["peak_rss_mb"], "process_peak_mb": round(peak, 1),
                             "seconds": round(seconds, 1)})
            result["models"][model] = rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
