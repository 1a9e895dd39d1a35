"""`mf` and `mf-bias` against the reference design, side by side on the same data and epochs. Prints JSON.

The reference design (the study's implementation 1): a plain PyTorch loop over ``nn.Embedding`` (dense
gradients), batch size 1024, BCE on sigmoid(dot) with 5 negatives per positive drawn ∝ degree (alpha 1.0),
an L2 term over the whole table every batch, Adam at lr 0.01 with cosine annealing restarted each epoch.

    python benchmarks/bench_mf.py --products 420000 --epochs 5 [--data DATA_DIR] [--threads 2]

Without --data it synthesises the catalogue and prepares it under --workdir first.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from itemvec.data.store import DataDir
from itemvec.evaluate import metrics
from itemvec.evaluate.protocols import impute_unscorable
from itemvec.models.base import TrainingData
from itemvec.models.itemitem.mf import MF, MFBias, alias_table


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def test_auc(model_scores, data: DataDir) -> dict:
    out = {}
    for kind in ("uniform", "degree"):
        pairs = data.eval_pairs("test", kind)
        scores, _ = impute_unscorable(model_scores(pairs.item_a, pairs.item_b))
        out["auc" if kind == "uniform" else "auc_degree"] = round(metrics.roc_auc(pairs.label, scores), 4)
    return out


def reference_loop(training: TrainingData, epochs: int, dim: int, seed: int, max_seconds: float | None):
    """The reference design, timed per epoch. Returns (score function, seconds, epochs run, seconds/epoch)."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    n = training.n_items
    degree = training.degree()
    prob, alias = alias_table(degree.astype(np.float64))
    emb = torch.nn.Embedding(n, dim)
    torch.nn.init.normal_(emb.weight, 0, 0.1)
    optimiser = torch.optim.Adam(emb.parameters(), lr=0.01)
    a_all = torch.from_numpy(training.train.item_a.astype(np.int64))
    b_all = torch.from_numpy(training.train.item_b.astype(np.int64))
    batch, negatives, l2 = 1024, 5, 1e-6
    steps = math.ceil(len(a_all) / batch)
    started = time.perf_counter()
    epoch_seconds = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.from_numpy(rng.permutation(len(a_all)))
        for step in range(steps):
            lr = 0.01 * 0.5 * (1 + math.cos(math.pi * step / steps))
            for group in optimiser.param_groups:
                group["lr"] = lr
            idx = order[step * batch:(step + 1) * batch]
            a, b = a_all[idx], b_all[idx]
            j = rng.integers(0, n, len(a) * negatives)
            neg = torch.from_numpy(np.where(rng.random(len(j)) < prob[j], j, alias[j]).astype(np.int64))
            left = torch.cat([a, a.repeat_interleave(negatives)])
            right = torch.cat([b, neg])
            label = torch.cat([torch.ones(len(a)), torch.zeros(len(neg))])
            prediction = torch.sigmoid((emb(left) * emb(right)).sum(1))
            loss = torch.nn.functional.binary_cross_entropy(prediction, label) + l2 * (emb.weight ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        epoch_seconds.append(time.perf_counter() - t0)
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
    weight = emb.weight.detach().numpy()

    def score(x, y):
        return np.einsum("ij,ij->i", weight[x], weight[y]).astype(np.float64)

    return score, time.perf_counter() - started, len(epoch_seconds), epoch_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=420000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--workdir", type=Path, default=Path("bench-output"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--reference-max-seconds", type=float, default=None,
                        help="stop the reference loop after the epoch that crosses this budget (reported)")
    args = parser.parse_args()
    if args.data is None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        raw = args.workdir / f"synthetic-{args.products}.json.gz"
        args.data = args.workdir / f"data-{args.products}"
        cli = [sys.executable, "-m", "itemvec"]
        if not (args.data / "manifest.json").exists():
            subprocess.run(cli + ["synth", "amazon", "--products", str(args.products), "--seed", "1", "--out",
                                  str(raw), "--no-progress"], check=True)
            subprocess.run(cli + ["prepare", "amazon", str(raw), "--out", str(args.data), "--seed", "1",
                                  "--no-progress"], check=True, stdout=subprocess.DEVNULL)
    data = DataDir(args.data)
    training = TrainingData.from_data_dir(data)
    result = {"benchmark": "mf", "data": str(args.data), "n_items": data.n_items, "train_pairs": len(training.train),
              "epochs": args.epochs, "dim": args.dim, "models": {}}
    # Warm the numba kernel on a tiny problem so compilation is not timed (it is cached on disk anyway).
    tiny = TrainingData(n_items=training.n_items, train=training.train.take(np.arange(1000)))
    MF(dim=args.dim, epochs=1).fit(tiny, progress=False)
    for cls in (MF, MFBias):
        model = cls(dim=args.dim, epochs=args.epochs, seed=args.seed)
        start = time.perf_counter()
        model.fit(training, progress=False)
        seconds = time.perf_counter() - start
        result["models"][cls.name] = {"train_seconds": round(seconds, 2), **test_auc(model.score_pairs, data),
                                      "peak_rss_mb_so_far": round(rss_mb(), 0)}
        print(json.dumps({cls.name: result["models"][cls.name]}), file=sys.stderr)
    if not args.skip_reference:
        score, seconds, done, per_epoch = reference_loop(training, args.epochs, args.dim, args.seed,
                                                         args.reference_max_seconds)
        entry = {"train_seconds": round(seconds, 2), "epochs_run": done,
                 "seconds_per_epoch": [round(s, 1) for s in per_epoch], **test_auc(score, data)}
        if done < args.epochs:
            entry["train_seconds_extrapolated"] = round(seconds / done * args.epochs, 1)
        result["models"]["reference-pytorch-loop"] = entry
        reference_seconds = entry.get("train_seconds_extrapolated", seconds)
        for name in ("mf", "mf-bias"):
            result["models"][name]["speedup_vs_reference"] = round(
                reference_seconds / result["models"][name]["train_seconds"], 1)
    result["peak_rss_mb"] = round(rss_mb(), 0)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
