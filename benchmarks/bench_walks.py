"""Random walks (DeepWalk and node2vec) against PecanPy on the same graph, side by side. Prints JSON.

    python benchmarks/bench_walks.py --data bench-output/data-420000 [--threads 2] [--walks-per-node 10]

The graph is the train pairs of a prepared DATA_DIR (weighted, undirected). Each walker runs in its own
child process, so its wall seconds and peak RSS (``ru_maxrss``) are its own: ours in this interpreter's
environment, PecanPy 2.0.9 in a separate venv (``--pecanpy-venv``, created once with pip), because PecanPy's
dependency nptyping needs numpy<2 while itemvec uses numpy 2. PecanPy reads the same graph from a weighted
edge list written to a temporary file.

Walks are 40 nodes long (``--walk-length``; PecanPy's ``walk_length`` counts steps, so it gets 39).
Timings (seconds): ``load`` (graph into memory: ours from the Parquet pairs, PecanPy from the edge list),
``preprocess`` (PecanPy's precomputed tables; ours builds its alias table inside ``walk``), ``compile``
(numba, measured separately: ours in a fresh cache directory, PecanPy's walk kernel on 1,000 walks — it
recompiles for every graph object, so a user pays it on every call), ``walk`` (the walk matrix, compiled
code only), and for PecanPy ``to_lists`` (its ``simulate_walks`` also turns the matrix into lists of
node-id strings, which is what its word2vec step consumes; reported apart, as ours returns the matrix).

Without --data the catalogue is synthesised and prepared under --workdir first (several minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PECANPY_VERSION = "2.0.9"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> bool:
    """Restart the peak-RSS count from the current RSS (Linux >= 4.0), so that a phase's own peak can be read
    apart from the loader's (PecanPy's edge-list reader holds Python dicts that are freed before walking)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- workers (child processes)


def worker_ours(args: dict) -> dict:
    """Load the train pairs, build the CSR graph, compile, walk. Runs in the main environment."""
    import numpy as np

    t0 = time.perf_counter()
    from itemvec.data.store import DataDir
    from itemvec.graph import CSRGraph, random_walks

    data = DataDir(args["data"])
    pairs = data.pairs("train")
    graph = CSRGraph.from_pairs(pairs.item_a, pairs.item_b, pairs.weight, n_nodes=data.n_items)
    del pairs
    load_s = time.perf_counter() - t0
    rss_load = peak_rss_mb()

    settings = {"p": args["p"], "q": args["q"], "threads": args["threads"], "weighted": True}
    t0 = time.perf_counter()
    tiny = CSRGraph.from_pairs(np.array([0, 1, 2]), np.array([1, 2, 0]))
    random_walks(tiny, walks_per_node=1, walk_length=3, **settings)
    compile_s = time.perf_counter() - t0

    reset = reset_peak_rss()
    t0 = time.perf_counter()
    walks = random_walks(graph, walks_per_node=args["walks_per_node"], walk_length=args["walk_length"],
                         seed=args["seed"], **settings)
    walk_s = time.perf_counter() - t0
    return {
        "load_s": round(load_s, 3), "compile_s": round(compile_s, 3), "walk_s": round(walk_s, 3),
        "n_walks": int(walks.shape[0]), "walk_nodes": int(walks.shape[1]),
        "padded_fraction": round(float((walks < 0).mean()), 6),
        "steps_per_s": round(float((walks[:, 1:] >= 0).sum()) / walk_s),
        "rss_after_load_mb": round(rss_load, 1),
        "walk_phase_peak_rss_mb": round(peak_rss_mb(), 1) if reset else None,
        "peak_rss_mb": round(max(rss_load, peak_rss_mb()), 1),
        "graph": {"nodes": graph.n_nodes, "stored_edges": graph.n_edges,
                  "nodes_with_neighbours": int((graph.degree > 0).sum())},
    }


def worker_pecanpy(args: dict) -> dict:
    """PecanPy's own pipeline on the edge list. Runs in the PecanPy venv (no itemvec there)."""
    import numpy as np
    from numba_progress import ProgressBar
    from pecanpy import pecanpy as node2vec

    mode = getattr(node2vec, args["mode"])
    g = mode(p=args["p"], q=args["q"], workers=args["threads"], verbose=False, extend=False,
             random_state=args["seed"])
    t0 = time.perf_counter()
    g.read_edg(args["edges"], weighted=True, directed=False)
    load_s = time.perf_counter() - t0
    rss_load = peak_rss_mb()

    reset = reset_peak_rss()
    t0 = time.perf_counter()
    g._preprocess_transition_probs()
    preprocess_s = time.perf_counter() - t0
    rss_preprocess = peak_rss_mb()

    # simulate_walks, step by step (PecanPy 2.0.9's own code), so that compiling, walking and turning the
    # matrix into lists of strings are timed apart. The kernel compiled on the first call is reused as long
    # as the same move_forward / has_nbrs functions are passed.
    steps = args["walk_length"] - 1
    nodes = np.array(range(g.num_nodes), dtype=np.uint32)
    starts = np.concatenate([nodes] * args["walks_per_node"])
    np.random.seed(g.random_state)
    np.random.shuffle(starts)
    move_forward = g.get_move_forward()
    has_nbrs = g.get_has_nbrs()

    def walk(start_nodes):
        with ProgressBar(total=len(start_nodes), disable=True) as progress:
            return g._random_walks(len(start_nodes), steps, g.random_state, start_nodes, has_nbrs,
                                   move_forward, progress)

    t0 = time.perf_counter()
    walk(starts[:1000])
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    matrix = walk(starts)
    walk_s = time.perf_counter() - t0
    rss_walk = peak_rss_mb()
    lengths = matrix[:, -1].astype(np.int64)
    t0 = time.perf_counter()
    walks = [g._map_walk(row) for row in matrix]
    to_lists_s = time.perf_counter() - t0
    return {
        "load_s": round(load_s, 3), "preprocess_s": round(preprocess_s, 3), "compile_s": round(compile_s, 3),
        "walk_s": round(walk_s, 3), "to_lists_s": round(to_lists_s, 3),
        "n_walks": len(walks), "walk_nodes": int(lengths.max()),
        "steps_per_s": round(float((lengths - 1).sum()) / walk_s),
        "rss_after_load_mb": round(rss_load, 1),
        "walk_phase_peak_rss_mb": round(rss_walk, 1) if reset else None,
        "preprocess_peak_rss_mb": round(rss_preprocess, 1) if reset else None,
        "peak_rss_mb": round(max(rss_load, rss_walk), 1),  # the whole process, up to the walk matrix
        "peak_rss_with_lists_mb": round(max(rss_load, peak_rss_mb()), 1),
    }


# ---------------------------------------------------------------- the driver


def ensure_data(args) -> Path:
    if args.data is not None:
        return args.data
    args.workdir.mkdir(parents=True, exist_ok=True)
    raw = args.workdir / f"synthetic-{args.products}.json.gz"
    data = args.workdir / f"data-{args.products}"
    cli = [sys.executable, "-m", "itemvec"]
    if not (data / "manifest.json").exists():
        if not raw.exists():
            subprocess.run(cli + ["synth", "amazon", "--products", str(args.products), "--seed", "1", "--out",
                                  str(raw), "--no-progress"], check=True)
        subprocess.run(cli + ["prepare", "amazon", str(raw), "--out", str(data), "--seed", "1",
                              "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    return data


def ensure_pecanpy(venv: Path) -> Path:
    """The PecanPy venv's python, creating the venv on first use (needs PyPI)."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import pecanpy, sys; sys.exit(0)"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"pecanpy=={PECANPY_VERSION}"], check=True,
                   stdout=sys.stderr)
    return python


def write_edge_list(data: Path, path: Path) -> dict:
    """The train pairs as ``a<TAB>b<TAB>weight`` lines, PecanPy's weighted edge-list format."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as csv

    from itemvec.data.store import DataDir

    t0 = time.perf_counter()
    pairs = DataDir(data).pairs("train")
    table = pa.table({"a": pairs.item_a, "b": pairs.item_b, "w": pairs.weight.astype(np.float64)})
    csv.write_csv(table, path, csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"))
    return {"pairs": len(pairs), "seconds": round(time.perf_counter() - t0, 3), "bytes": path.stat().st_size}


def second_order_entries(data: Path) -> int:
    """Σ_v degree(v)²: the entries of a precomputed second-order table such as PecanPy's PreComp keeps."""
    import numpy as np

    from itemvec.data.store import DataDir

    d = DataDir(data)
    pairs = d.pairs("train")
    degree = np.bincount(pairs.item_a, minlength=d.n_items) + np.bincount(pairs.item_b, minlength=d.n_items)
    return int((degree.astype(np.int64) ** 2).sum())


def run_worker(python: str, role: str, args: dict, env: dict, timeout: float) -> dict:
    """Run one worker in a child process; its JSON answer, or what went wrong."""
    command = [python, str(Path(__file__).resolve()), "--worker", role, "--worker-args", json.dumps(args)]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if done.returncode != 0:
        return {"error": f"exit status {done.returncode}", "stderr_tail": done.stderr[-2000:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - t0, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--products", type=int, default=420000)
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    parser.add_argument("--walks-per-node", type=int, default=10)
    parser.add_argument("--walk-length", type=int, default=40, help="nodes per walk, start included")
    parser.add_argument("--q", type=float, default=0.5, help="node2vec in-out parameter (p is 1)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pecanpy-venv", type=Path, default=Path(".venv-pecanpy"))
    parser.add_argument("--skip-pecanpy", action="store_true")
    parser.add_argument("--peers-from", type=Path, action="append", default=[],
                        help="take PecanPy's figures from an earlier output of this script (same data and "
                             "settings) instead of rerunning it (its runs take tens of minutes); repeatable, "
                             "later files win, failed runs are ignored")
    parser.add_argument("--runs", default="deepwalk,node2vec", help="which of deepwalk,node2vec to run")
    parser.add_argument("--pecanpy-modes", default="PreCompFirstOrder,SparseOTF,PreComp",
                        help="PecanPy modes (PreCompFirstOrder: DeepWalk only, PreComp: node2vec only)")
    parser.add_argument("--skip-ours", action="store_true")
    parser.add_argument("--precomp-max-gb", type=float, default=8.0,
                        help="skip PecanPy PreComp when its second-order table would exceed this")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per walker run")
    parser.add_argument("--worker", choices=["ours", "pecanpy"], help=argparse.SUPPRESS)
    parser.add_argument("--worker-args", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        role = worker_ours if args.worker == "ours" else worker_pecanpy
        print(json.dumps(role(json.loads(args.worker_args))))
        return

    data = ensure_data(args)
    base = {"walks_per_node": args.walks_per_node, "walk_length": args.walk_length, "threads": args.threads,
            "seed": args.seed, "data": str(data)}
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads))
    result = {"benchmark": "walks", "data": str(data), "threads": args.threads, "cpu_count": os.cpu_count(),
              "walks_per_node": args.walks_per_node, "walk_nodes": args.walk_length, "weighted": True,
              "runs": {}}
    configs = {"deepwalk": (1.0, 1.0), f"node2vec_p1_q{args.q:g}": (1.0, args.q)}
    wanted = args.runs.split(",")
    configs = {name: pq for name, pq in configs.items() if name.split("_")[0] in wanted}
    wanted_modes = args.pecanpy_modes.split(",")

    with tempfile.TemporaryDirectory() as tmp:
        for name, (p, q) in configs.items():
            result["runs"].setdefault(name, {"p": p, "q": q})
            if args.skip_ours:
                continue
            # Our kernels compile into a fresh cache directory, so compile_s is a real compilation.
            ours_env = dict(env, NUMBA_CACHE_DIR=str(Path(tmp) / f"numba-cache-{name}"))
            settings = dict(base, p=p, q=q)
            outcome = run_worker(sys.executable, "ours", settings, ours_env, args.timeout)
            result["runs"][name]["itemvec"] = outcome
            print(f"{name} itemvec: {result['runs'][name]['itemvec']}", file=sys.stderr)

        for path in args.peers_from:
            earlier = json.loads(path.read_text())
            for key in ("data", "walks_per_node", "walk_nodes", "threads"):
                if earlier[key] != result[key]:
                    raise SystemExit(f"--peers-from {path}: {key} differs "
                                     f"({earlier[key]!r} != {result[key]!r})")
            result.setdefault("peers_from", []).append(str(path))
            for key in ("edge_list", "precomp_table_gb_estimate"):
                if key in earlier:
                    result[key] = earlier[key]
            for name, run in earlier["runs"].items():
                if name in result["runs"]:
                    result["runs"][name].update({k: v for k, v in run.items()
                                                 if k.startswith("pecanpy_") and "error" not in v})
        if not args.peers_from and not args.skip_pecanpy:
            python = str(ensure_pecanpy(args.pecanpy_venv))
            edges = Path(tmp) / "train.edg"
            result["edge_list"] = write_edge_list(data, edges)
            entries = second_order_entries(data)
            precomp_gb = entries * 8 / 1e9  # uint32 alias index + float32 alias probability per entry
            result["precomp_table_gb_estimate"] = round(precomp_gb, 2)
            for name, (p, q) in configs.items():
                modes = ["PreCompFirstOrder", "SparseOTF"] if name == "deepwalk" else ["SparseOTF", "PreComp"]
                for mode in [m for m in modes if m in wanted_modes]:
                    if mode == "PreComp" and precomp_gb > args.precomp_max_gb:
                        outcome = {"skipped": f"second-order table ≈ {precomp_gb:.1f} GB "
                                              f"(> --precomp-max-gb {args.precomp_max_gb:g})"}
                    else:
                        settings = dict(base, p=p, q=q, mode=mode, edges=str(edges))
                        outcome = run_worker(python, "pecanpy", settings, env, args.timeout)
                    result["runs"][name][f"pecanpy_{mode}"] = outcome
                    print(f"{name} pecanpy {mode}: {outcome}", file=sys.stderr)

    for run in result["runs"].values():
        ours = run.get("itemvec", {})
        peers = {k: v for k, v in run.items() if k.startswith("pecanpy_") and "walk_s" in v}
        if "walk_s" in ours and peers:
            # Our walk_s includes building the alias tables; PecanPy's tables are its preprocess_s.
            fastest = min(peers, key=lambda k: peers[k]["walk_s"] + peers[k]["preprocess_s"])
            peer = peers[fastest]
            run["fastest_pecanpy"] = fastest
            run["speedup"] = round((peer["walk_s"] + peer["preprocess_s"]) / ours["walk_s"], 2)
            # PecanPy's preprocess_s includes compiling its table-building closure (it recompiles per graph);
            # the kernel-only figure compares walk matrices alone, whichever mode has the fastest kernel.
            kernel = min(peers, key=lambda k: peers[k]["walk_s"])
            run["fastest_pecanpy_kernel"] = kernel
            run["speedup_walk_kernel_only"] = round(peers[kernel]["walk_s"] / ours["walk_s"], 2)
            run["peak_rss_ratio"] = round(ours["peak_rss_mb"] / peers[fastest]["peak_rss_mb"], 3)
            if ours.get("walk_phase_peak_rss_mb") and peers[fastest].get("walk_phase_peak_rss_mb"):
                run["walk_phase_peak_rss_ratio"] = round(
                    ours["walk_phase_peak_rss_mb"] / peers[fastest]["walk_phase_peak_rss_mb"], 3)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
