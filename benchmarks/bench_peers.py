"""itemvec's item-pair models against `implicit`'s BPR and ALS, on the same split, scored by itemvec's protocol.
Prints JSON (and a Markdown table per data set on stderr).

    python benchmarks/bench_peers.py DATA_DIR [DATA_DIR ...] --out bench-output/peers [--models ...] [--threads 2]
    python benchmarks/bench_peers.py --prepare magazine,giftcards,video,beauty,demo,electronics --out ...

Per DATA_DIR (a prepared item-pair DATA_DIR: `prepare amazon`, `edges` or `sessions`):

- ours: `itemvec compare` on the models given (each trained in its own process, evaluated on the test part by
  the item-item protocol, Recall@10 / NDCG@10 ranked until their standard errors are under 0.002);
- peers: `implicit` 0.7's BayesianPersonalizedRanking and AlternatingLeastSquares fitted on the same train
  pairs, read as a symmetric item × item matrix (an item's partners as a user's items; ALS's confidence from
  the summed pair weights), with the settings the issue's measurement used (BPR: 128 factors, lr 0.05,
  reg 0.01, 100 iterations; ALS: 128 factors, alpha 10, reg 0.05, 15 iterations) or, with ``--tune N``, the
  best of N settings on the validation part (the same budget as ours: N trials per model), each scored two ways:
  ``two-role`` ½ (u_a · i_b + u_b · i_a) (BPR's bias column included) and ``cosine`` of the item factors
  (implicit's similar_items). Their vectors go through the same evaluation as ours (unseen items: the median).

``--prepare`` builds the data sets the issue names under OUT/data first: Magazine Subscriptions and Gift Cards
(Amazon 2018 metadata), the SASRec Video Games and S3-Rec Beauty sequences (all from ../shared/data), the demo
catalogue (`make demo`'s 100,000 products, seed 7) and the Electronics-size synthetic one (420,000 products).

`winners` says, per column, which model leads and whether the best of ours is at least the best peer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from itemvec import tune
from itemvec.data.store import DataDir
from itemvec.entry import configure
from itemvec.evaluate.protocol import protocol
from itemvec.models.base import ItemModel
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.models.itemitem.implicit import pair_matrix
from itemvec.runs import compare

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OURS = "popularity,adamic-adar,itemknn,rp3beta,mf,mf-bias,mf-seq,skipgram,eges,bpr,als"
COLUMNS = ("auc", "auc_seen", "auc_degree", "recall_at_10", "ndcg_at_10")
TARGETS = ("auc", "auc_degree", "recall_at_10", "ndcg_at_10")  # the "done when" columns
ERRORS = tuple(f"{c}_se" for c in COLUMNS)  # each figure's standard error (DeLong's for the AUCs)


def recipes(shared: Path) -> dict[str, list[list[str]]]:
    """name → the itemvec commands that prepare it ({out} and {work} filled in)."""
    amazon = lambda file: [["prepare", "amazon", str(shared / "amazon2018" / file), "--out", "{out}"]]  # noqa: E731
    return {
        "magazine": amazon("meta_Magazine_Subscriptions.json.gz"),
        "giftcards": amazon("meta_Gift_Cards.json.gz"),
        "video": [["prepare", "sessions", str(shared / "sequences" / "sasrec" / "Video.txt"), "--format", "sasrec",
                   "--out", "{out}"]],
        "beauty": [["prepare", "sessions", str(shared / "sequences" / "s3rec" / "Beauty.txt"), "--format", "s3rec",
                    "--attributes", str(shared / "sequences" / "s3rec" / "Beauty_item2attributes.json"),
                    "--out", "{out}"]],
        "demo": [["synth", "amazon", "--products", "100000", "--seed", "7", "--out", "{work}/demo.json.gz"],
                 ["prepare", "amazon", "{work}/demo.json.gz", "--out", "{out}", "--seed", "7"]],
        "electronics": [["synth", "amazon", "--products", "420000", "--seed", "0", "--out",
                         "{work}/electronics.json.gz"],
                        ["prepare", "amazon", "{work}/electronics.json.gz", "--out", "{out}"]],
    }


def prepare(names: list[str], work: Path) -> list[Path]:
    itemvec = str(Path(sys.executable).parent / "itemvec")
    table = recipes(SHARED)
    out = []
    for name in names:
        target = work / name
        if not (target / "manifest.json").exists():
            for command in table[name]:
                filled = [part.format(out=target, work=work) for part in command]
                if filled[0] == "synth" and Path(filled[-1]).exists():
                    continue
                subprocess.run([itemvec, *filled, "--no-progress"], check=True)
        out.append(target)
    return out


class PeerVectors(EmbeddingModel, ItemModel):
    """A peer's item vectors as an itemvec model, so that the same protocol scores them."""

    name = "peer"

    @dataclass(frozen=True)
    class Config:
        seed: int = 0

    def __init__(self, name: str, embedding: Embedding, known: np.ndarray) -> None:
        super().__init__()
        self.name = name
        self._embedding = embedding
        self.known_items_ = known

    def embedding(self) -> Embedding:
        return self._embedding


PEER_DEFAULTS = {
    "implicit-bpr": {"factors": 128, "learning_rate": 0.05, "regularization": 0.01, "iterations": 100},
    "implicit-als": {"factors": 128, "alpha": 10.0, "regularization": 0.05, "iterations": 15},
}
PEER_SPACES = {  # the peers' budget under --tune: as many trials as ours, a space of the same size
    "implicit-bpr": {"factors": tune.OneOf((64, 128)), "learning_rate": tune.LogUniform(0.005, 0.1),
                     "regularization": tune.LogUniform(1e-4, 0.1), "iterations": tune.IntRange(20, 200, log=True)},
    "implicit-als": {"factors": tune.OneOf((64, 128)), "alpha": tune.LogUniform(1.0, 100.0),
                     "regularization": tune.LogUniform(1e-3, 10.0), "iterations": tune.IntRange(5, 30)},
}


def implicit_fit(label: str, settings: dict, data: DataDir, threads: int) -> tuple[dict[str, Embedding], float]:
    """One `implicit` model on the train pairs: {scoring: Embedding}, fit seconds."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    training = data.training()
    if label == "implicit-bpr":
        model = BayesianPersonalizedRanking(**settings, random_state=0, num_threads=threads)
        matrix = pair_matrix(training, weighted=False)
    else:
        model = AlternatingLeastSquares(**settings, random_state=0, num_threads=threads)
        matrix = pair_matrix(training, weighted=True)
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    with threadpool_limits(1, "blas"):  # implicit's own advice: its threads, not BLAS's, do the work
        model.fit(matrix.astype(np.float32).tocsr(), show_progress=False)
    seconds = time.perf_counter() - started
    query = np.asarray(model.user_factors, dtype=np.float32)
    candidate = np.asarray(model.item_factors, dtype=np.float32)
    return {"two-role": Embedding("two-role", query, context_vectors=candidate),
            "cosine": Embedding("cosine", candidate)}, seconds


def implicit_peers(data: DataDir, threads: int, trials: int, metric: str) -> list[tuple[str, Embedding, float, dict]]:
    """(name, embedding, fit seconds, tuning) per peer and scoring. With ``trials`` > 1 each peer's settings
    are chosen on the validation part per scoring, as ours are by compare --tune."""
    item_protocol = protocol("pairs")
    known = data.training().degree() > 0
    out = []
    for label, defaults in PEER_DEFAULTS.items():
        draws = tune.trials(PEER_SPACES[label], trials, tune.model_seed(label)) if trials > 1 else [{}]
        best: dict[str, tuple] = {}
        log = []
        for overrides in draws:
            settings = {**defaults, **overrides}
            embeddings, seconds = implicit_fit(label, settings, data, threads)
            for scoring, embedding in embeddings.items():
                value = None
                if trials > 1:
                    value = item_protocol.validation_figures(PeerVectors(label, embedding, known), data).get(metric)
                    log.append({"scoring": scoring, "settings": overrides, "validation": value})
                if scoring not in best or tune.better(metric, value, best[scoring][3]):
                    best[scoring] = (embedding, seconds, overrides, value)
            print(json.dumps({label: settings, "validation": [r for r in log[-2:]]}), file=sys.stderr)
        for scoring, (embedding, seconds, overrides, value) in best.items():
            tuning = {"on": metric, "chosen": overrides, "validation": value,
                      "trials": [r for r in log if r["scoring"] == scoring]} if trials > 1 else None
            out.append((f"{label} {scoring}", embedding, seconds, tuning))
    return out


def winners(rows: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for column in COLUMNS:
        values = {name: row[column] for name, row in rows.items() if row.get(column) is not None}
        if not values:
            continue
        ours = {n: v for n, v in values.items() if not n.startswith("implicit")}
        peers = {n: v for n, v in values.items() if n.startswith("implicit")}
        best = max(values, key=values.get)
        best_ours = max(ours, key=ours.get) if ours else None
        best_peer = max(peers, key=peers.get) if peers else None
        out[column] = {"best": best, "best_ours": best_ours, "best_peer": best_peer,
                       "difference": (round(ours[best_ours] - peers[best_peer], 4)
                                      if best_ours and best_peer else None),
                       "ours_at_least_peer": bool(best_ours and best_peer and ours[best_ours] >= peers[best_peer])}
    return out


def markdown(name: str, rows: dict[str, dict]) -> str:
    lines = [f"### {name}", "", "| model | AUC | AUC seen | AUC degree-matched | Recall@10 | NDCG@10 | train s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    best = {c: max((r[c] for r in rows.values() if r.get(c) is not None), default=None) for c in COLUMNS}

    def cell(row, column):
        value = row.get(column)
        if value is None:
            return "–"
        text = f"{value:.4f}"
        if row.get(f"{column}_se") is not None:
            text += f" ± {row[f'{column}_se']:.4f}"
        return f"**{text}**" if value == best[column] else text

    for model, row in rows.items():
        lines.append(f"| {model} | " + " | ".join(cell(row, c) for c in COLUMNS)
                     + f" | {row.get('train_seconds', 0):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="*", type=Path, help="prepared item-pair DATA_DIRs")
    parser.add_argument("--prepare", default="", help=f"data sets to prepare under OUT/data: {', '.join(recipes(SHARED))}")
    parser.add_argument("--out", type=Path, required=True, help="where our comparisons (and prepared data) go")
    parser.add_argument("--models", default=OURS, help="our models, comma-separated (compare's --models)")
    parser.add_argument("--threads", type=int, default=2, help="threads for the peers")
    parser.add_argument("--retrain", action="store_true", help="retrain our models even if runs exist")
    parser.add_argument("--tune", type=int, default=0, help="settings tried per model on validation, ours and the peers'")
    parser.add_argument("--tune-on", default="ndcg_at_10", help="the validation figure the search maximises")
    args = parser.parse_args()
    datasets = list(args.data) + prepare([n for n in args.prepare.split(",") if n], args.out / "data")
    if not datasets:
        parser.error("give DATA_DIRs or --prepare")
    item_protocol = protocol("pairs")
    configure("compare")  # our models train in processes of their own, set up as by the `itemvec` command
    result = {"benchmark": "peers", "models": args.models.split(","), "data": {}}
    for path in datasets:
        data = DataDir(path)
        rows = {}
        report = args.out / "reports" / (path.name + (f"-tune{args.tune}" if args.tune > 1 else ""))
        for row in compare(path, args.models.split(","), report, progress=False, reuse=not args.retrain,
                           log=lambda m: print(m, file=sys.stderr), tune=args.tune, tune_on=args.tune_on):
            rows[row["model"]] = {k: row.get(k) for k in (*COLUMNS, *ERRORS, "ranking_queries", "train_seconds",
                                                          "peak_rss_mb", "eval_seconds", "tuning")}
        known = data.training().degree() > 0
        for name, embedding, seconds, tuning in implicit_peers(data, args.threads, args.tune, args.tune_on):
            metrics, _ = item_protocol.evaluate(PeerVectors(name, embedding, known), data)
            rows[name] = {k: metrics.get(k) for k in (*COLUMNS, *ERRORS, "ranking_queries")}
            rows[name]["train_seconds"] = round(seconds, 2)
            if tuning:
                rows[name]["tuning"] = tuning
            print(json.dumps({name: rows[name]}), file=sys.stderr)
        entry = {"n_items": data.n_items, "pairs_per_part": data.manifest.get("pairs_per_part"), "rows": rows,
                 "winners": winners(rows)}
        entry["done"] = all(entry["winners"].get(c, {}).get("ours_at_least_peer") for c in TARGETS)
        result["data"][path.name] = entry
        print(markdown(path.name, rows), file=sys.stderr)
    print(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
