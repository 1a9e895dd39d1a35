"""Runs: train one model into a RUN_DIR, (re)evaluate it, and compare several on the same pairs.

```
RUN_DIR/
  config.toml      the resolved settings (seed included)
  model.json       model name and settings; weights.npz the learned arrays (no pickle)
  history.jsonl    the learning curve: validation AUC and loss per evaluation
  train.json       data dir, train seconds, peak memory of the training process
  metrics.json     test metrics under the evaluation protocol
  curves.npz       ROC, precision-recall and threshold curves; *.png their plots
```
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from itemvec import registry
from itemvec.config import load_toml, replace, settings_for, to_dict, write_toml
from itemvec.data.prepare import peak_rss_mb
from itemvec.data.store import DataDir
from itemvec.errors import InputError
from itemvec.evaluate.protocols import POLICY, evaluate_item_model, validation_auc_function
from itemvec.models.base import TrainingData, load_model

METRIC_COLUMNS = ["auc", "auc_seen", "auc_unseen", "auc_cold", "auc_degree", "ap", "recall_at_10", "ndcg_at_10"]
RATINGS_METRIC_COLUMNS = ["rmse", "rmse_scaled", "mae", "auc_per_user", "precision_at_10", "recall_at_10",
                          "map_at_10", "ndcg_at_10"]


def resolve_config(model: str, config_file: Path | None = None, sets: dict[str, str] | None = None,
                   *, strict: bool = True, kind: str = "pairs"):
    cls = registry.get(model, kind)
    file_values = load_toml(config_file) if config_file else None
    if file_values and "model" in file_values and file_values.get("model") != model:
        file_values = {k: v for k, v in file_values.items() if k != "model"}
    elif file_values:
        file_values.pop("model", None)
    values = settings_for(model, file_values, sets or {}, cls.Config, strict_unprefixed=strict)
    return cls, replace(cls.Config(), values, source=f"settings for {model}")


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=float) + "\n")
    os.replace(tmp, path)


def train_run(model: str, data_dir: Path, out: Path, *, config_file: Path | None = None,
              sets: dict[str, str] | None = None, progress: bool = True, resume: bool = True,
              ranking_queries: int = 1000) -> dict:
    """Fit ``model`` on DATA_DIR's train pairs (or ratings), save it into ``out`` and evaluate it on the
    test part."""
    kind = registry.data_kind(data_dir)
    cls, config = resolve_config(model, config_file, sets, kind=kind)
    data = _open_data(data_dir, kind)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = out / "config.toml"
    if previous.exists() and previous.read_text() != _toml_text(model, config):
        (out / "checkpoint.npz").unlink(missing_ok=True)  # settings changed: do not resume from another run
    write_toml(out / "config.toml", model, config)
    estimator = cls(config)
    if kind == "ratings":
        training = data.training()
        evaluate = validation_user_auc_function(training)
        size = {"train_ratings": len(training)}
    else:
        training = TrainingData.from_data_dir(data)
        evaluate = validation_auc_function(estimator, training.validation, seed=config.seed)
        size = {"train_pairs": len(training.train)}
    started = time.perf_counter()
    fit_kwargs = {"progress": progress}
    if hasattr(config, "epochs"):
        fit_kwargs.update(run_dir=out, resume=resume, evaluate=evaluate)
    estimator.fit(training, **fit_kwargs)
    train_seconds = time.perf_counter() - started
    info = {"model": model, "data_dir": str(Path(data_dir).resolve()), "train_seconds": round(train_seconds, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1), **size}
    estimator.save(out)
    _write_json(out / "train.json", info)
    (out / "checkpoint.npz").unlink(missing_ok=True)
    return evaluate_run(out, data_dir, model=estimator, ranking_queries=ranking_queries)


def _open_data(data_dir: Path, kind: str):
    if kind == "ratings":
        from itemvec.data.ratings import RatingsDir

        return RatingsDir(data_dir)
    return DataDir(data_dir)


def validation_user_auc_function(training, max_users: int = 2000):
    """The learning curve of a user-item model: mean per-user AUC on the validation ratings (at most
    ``max_users`` users, a fixed seeded sample), or None when the split has no validation part."""
    from itemvec.evaluate.ranking import evaluate_user_model

    validation = training.validation
    if validation is None or len(validation) == 0:
        return None
    users = np.unique(validation.user)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(0).choice(users, max_users, replace=False))
        validation = validation.subset(np.isin(validation.user, users))

    train_only = dataclasses.replace(training, validation=None)  # else the validation items are excluded

    def evaluate(model) -> float | None:
        return evaluate_user_model(model, train_only, validation, k=10)["auc_per_user"]

    return evaluate


def _toml_text(model: str, config) -> str:
    import tomli_w

    return tomli_w.dumps({"model": model, model: to_dict(config)})


def _save_curves(path: Path, curves: dict) -> None:
    arrays = {f"{group}.{key}": np.asarray(value) for group, values in curves.items() if isinstance(values, dict)
              for key, value in values.items() if not isinstance(value, str)}
    tmp = path.with_name(".curves.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_curves(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    curves: dict = {}
    if (run_dir / "curves.npz").exists():
        with np.load(run_dir / "curves.npz", allow_pickle=False) as npz:
            for key in npz.files:
                group, _, name = key.partition(".")
                value = npz[key]
                curves.setdefault(group, {})[name] = value.item() if value.ndim == 0 else value
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else {}
    if "threshold" in curves and metrics.get("threshold_axis"):
        curves["threshold"]["axis"] = metrics["threshold_axis"]
    history = run_dir / "history.jsonl"
    if history.exists():
        curves["history"] = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    return curves


def evaluate_run(run_dir: Path, data_dir: Path | None = None, *, model=None, ranking_queries: int = 1000,
                 plots: bool = True) -> dict:
    """(Re)compute ``metrics.json``, ``curves.npz`` and the plots of a run."""
    from itemvec.evaluate.report import plot_model

    run_dir = Path(run_dir)
    if not (run_dir / "model.json").exists():
        raise InputError(f"{run_dir}: not a run directory (no model.json); run `itemvec train` first")
    info = json.loads((run_dir / "train.json").read_text()) if (run_dir / "train.json").exists() else {}
    data_dir = Path(data_dir or info.get("data_dir", ""))
    model = model if model is not None else load_model(run_dir)
    if registry.data_kind(data_dir) == "ratings":
        return _evaluate_user_run(run_dir, data_dir, model, info, plots=plots)
    data = DataDir(data_dir)
    if not hasattr(model, "score_pairs"):
        raise InputError(f"{run_dir} holds a user-item model; {data_dir} holds product pairs")
    if model.n_items != data.n_items:
        raise InputError(f"{run_dir} was trained on {model.n_items} products but {data_dir} has {data.n_items}")
    started = time.perf_counter()
    result, curves = evaluate_item_model(model, data, ranking_queries=ranking_queries, seed=0)
    metrics = {"model": model.name, **result,
               "train_seconds": info.get("train_seconds"), "peak_rss_mb": info.get("peak_rss_mb"),
               "epochs": getattr(model.config, "epochs", None), "eval_seconds": round(time.perf_counter() - started, 3),
               "threshold_axis": curves["threshold"]["axis"], "data_dir": str(data_dir),
               "config": to_dict(model.config)}
    _write_json(run_dir / "metrics.json", metrics)
    _save_curves(run_dir / "curves.npz", curves)
    if plots:
        plot_model(run_dir, model.name, load_curves(run_dir))
    return metrics


def _evaluate_user_run(run_dir: Path, data_dir: Path, model, info: dict, *, plots: bool = True) -> dict:
    from itemvec.data.ratings import RatingsDir
    from itemvec.evaluate.ranking import RANKING_POLICY, evaluate_user_model
    from itemvec.evaluate.report import plot_model

    data = RatingsDir(data_dir)
    if not hasattr(model, "score_users"):
        raise InputError(f"{run_dir} holds an item-item model; {data_dir} holds ratings")
    if (model.n_users, model.n_items) != (data.n_users, data.n_items):
        raise InputError(f"{run_dir} was trained on {model.n_users} users × {model.n_items} items but "
                         f"{data_dir} has {data.n_users} × {data.n_items}")
    started = time.perf_counter()
    # Train and validation ratings are both the user's known history: neither is a candidate.
    result = evaluate_user_model(model, data.training(features=False), data.interactions("test", features=False),
                                 k=10)
    metrics = {"model": model.name, "kind": model.kind, **result,
               "train_seconds": info.get("train_seconds"), "peak_rss_mb": info.get("peak_rss_mb"),
               "epochs": getattr(model.config, "epochs", None), "eval_seconds": round(time.perf_counter() - started, 3),
               "data_dir": str(data_dir), "policy": RANKING_POLICY, "config": to_dict(model.config)}
    _write_json(run_dir / "metrics.json", metrics)
    if plots:
        plot_model(run_dir, model.name, load_curves(run_dir))
    return metrics


def _reusable(run_dir: Path, model: str, config, data_dir: Path) -> bool:
    try:
        info = json.loads((run_dir / "train.json").read_text())
        return ((run_dir / "metrics.json").exists() and (run_dir / "config.toml").read_text() == _toml_text(model, config)
                and info["data_dir"] == str(Path(data_dir).resolve())
                and (run_dir / "train.json").stat().st_mtime >= (Path(data_dir) / "manifest.json").stat().st_mtime)
    except (OSError, KeyError, ValueError):
        return False


def compare(data_dir: Path, models: list[str], out: Path, *, config_file: Path | None = None,
            sets: dict[str, str] | None = None, progress: bool = True, reuse: bool = True,
            log=print) -> list[dict]:
    """Train (or reuse) each model in its own process, evaluate all on the same pairs, write the report."""
    from itemvec.evaluate import report

    kind = registry.data_kind(data_dir)
    data = _open_data(data_dir, kind)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = {}
    for spec in models:
        base, variant = parse_model_spec(spec, kind)
        config = resolve_config(base, config_file, sets, strict=False, kind=kind)[1]
        configs[spec] = (base, replace(config, variant, source=spec) if variant else config)
    unknown = [key for key in (sets or {}) if "." not in key and
               not any(key in to_dict(c) for _, c in configs.values())]
    if unknown:
        raise InputError(f"--set: no model in {models} has the setting(s) {unknown}")
    rows, curves_by_model = [], {}
    for name in models:
        run_dir = out / "runs" / name.replace("@", "_")
        base, config = configs[name]
        if reuse and _reusable(run_dir, base, config, data_dir):
            log(f"[{name}] reusing {run_dir}")
        else:
            log(f"[{name}] training")
            run_dir.mkdir(parents=True, exist_ok=True)
            resolved = run_dir / "resolved.toml"
            write_toml(resolved, base, config)
            command = [sys.executable, "-m", "itemvec.cli", "train", base, "--data", str(data_dir), "--out",
                       str(run_dir), "--config", str(resolved), "--progress" if progress else "--no-progress"]
            result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
            if result.returncode != 0:
                raise InputError(f"training {name} failed (exit {result.returncode}); see the messages above")
            resolved.unlink(missing_ok=True)
        metrics = {**json.loads((run_dir / "metrics.json").read_text()), "model": name}
        rows.append(metrics)
        curves_by_model[name] = load_curves(run_dir)
        if kind == "ratings":
            log(f"[{name}] rmse {_fmt(metrics['rmse'])}  auc_per_user {_fmt(metrics['auc_per_user'])}  "
                f"ndcg@10 {_fmt(metrics['ndcg_at_10'])}  train {metrics['train_seconds']:.1f} s")
        else:
            log(f"[{name}] auc {metrics['auc']:.4f}  auc_seen {_fmt(metrics['auc_seen'])}  "
                f"auc_degree {metrics['auc_degree']:.4f}  train {metrics['train_seconds']:.1f} s")
    _write_json(out / "metrics.json", rows)
    context = {"title": "itemvec comparison", "data_dir": str(data_dir), "manifest": data.manifest,
               "command": " ".join(sys.argv) if sys.argv else "", "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    if kind == "ratings":
        from itemvec.evaluate.ranking import RANKING_POLICY

        context.update(policy=RANKING_POLICY, baseline_note=(
            "global-mean and bias-baseline (explicit) and popularity (implicit) are baselines: every learned "
            "model's figure stands beside them."))
        report.write_report(out, rows, curves_by_model, context, columns=report.RATINGS_COLUMNS,
                            notes=report.RATINGS_NOTES)
    else:
        context.update(policy=POLICY, baseline_note=(
            "popularity (the degree product) and adamic-adar are baselines: every learned model's figure "
            "stands beside them."))
        report.write_report(out, rows, curves_by_model, context)
    return rows


def parse_model_spec(spec: str, kind: str = "pairs") -> tuple[str, dict[str, str]]:
    """``"mf@labels=continuous@dim=32"`` → ``("mf", {"labels": "continuous", "dim": "32"})``: a registered
    model with settings of its own, so one comparison can hold variants of one model."""
    base, *parts = spec.split("@")
    registry.get(base, kind)
    variant = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise InputError(f"model {spec!r}: expected NAME@key=value[@key=value...]")
        variant[key] = value
    return base, variant


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def table_lines(rows: list[dict]) -> list[str]:
    columns = RATINGS_METRIC_COLUMNS if rows and "auc_per_user" in rows[0] else METRIC_COLUMNS
    width = max([14, *(len(str(row["model"])) + 2 for row in rows)])
    header = f"{'model':<{width}}" + "".join(f"{c:>16}" for c in columns) + f"{'train s':>10}{'peak MB':>10}"
    lines = [header]
    for row in rows:
        cells = "".join(f"{_fmt(row.get(c)):>16}" for c in columns)
        lines.append(f"{row['model']:<{width}}{cells}{row.get('train_seconds') or 0:>10.1f}{row.get('peak_rss_mb') or 0:>10.0f}")
    return lines


def similar(run_dir: Path, asins: list[str], k: int = 10, data_dir: Path | None = None) -> list[dict]:
    """Nearest products of each ASIN, with titles. Unknown ASINs raise an InputError naming them."""
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "train.json").read_text()) if (run_dir / "train.json").exists() else {}
    data = DataDir(data_dir or info.get("data_dir", ""))
    model = load_model(run_dir)
    index = {asin: i for i, asin in enumerate(data.asins)}
    missing = [a for a in asins if a not in index]
    if missing:
        raise InputError(f"unknown product id(s): {', '.join(missing)}")
    products = data.products()
    titles = products["title"].to_pylist() if "title" in products.column_names else [None] * data.n_items
    ids = np.array([index[a] for a in asins])
    top, scores = model.similar_items(ids, k)
    results = []
    for asin, item, row, row_scores in zip(asins, ids, top, scores):
        neighbours = [{"asin": data.asins[j], "title": titles[j], "score": float(s)}
                      for j, s in zip(row, row_scores) if j >= 0]
        results.append({"asin": asin, "title": titles[item], "seen_in_training": bool(model.known_items_[item]),
                        "similar": neighbours})
    return results


def recommend(run_dir: Path, users: list[str], k: int = 10, data_dir: Path | None = None,
              include_seen: bool = False) -> list[dict]:
    """Top-k items for each user (ids as in the ratings file), the items they rated in train left out,
    with titles. Unknown user ids raise an InputError naming them."""
    from itemvec.data.ratings import RatingsDir

    run_dir = Path(run_dir)
    info = json.loads((run_dir / "train.json").read_text()) if (run_dir / "train.json").exists() else {}
    data = RatingsDir(data_dir or info.get("data_dir", ""))
    model = load_model(run_dir)
    if not hasattr(model, "recommend"):
        raise InputError(f"{run_dir} holds an item-item model; use `itemvec similar` for it")
    user_ids = [str(u) for u in data.users().column("user_id").to_pylist()]
    index = {u: i for i, u in enumerate(user_ids)}
    missing = [u for u in users if u not in index]
    if missing:
        raise InputError(f"unknown user id(s): {', '.join(missing)}")
    items = data.items()
    item_ids = [str(i) for i in items.column("item_id").to_pylist()]
    titles = items.column("title").to_pylist() if "title" in items.column_names else [None] * len(item_ids)
    train = data.training(features=False)
    seen = train.matrix()
    if train.validation is not None and len(train.validation):
        seen = ((seen + train.validation.matrix()) > 0).astype(np.float32).tocsr()
    ids = np.array([index[u] for u in users], dtype=np.int64)
    top, scores = model.recommend(ids, k, exclude=None if include_seen else seen)
    results = []
    for user, uid, row, row_scores in zip(users, ids, top, scores):
        results.append({"user": user, "seen_in_training": bool(model.known_users_[uid]),
                        "train_items": int(seen[uid].nnz),
                        "recommendations": [{"item": item_ids[j], "title": titles[j], "score": float(s)}
                                            for j, s in zip(row, row_scores) if j >= 0]})
    return results
