"""Runs: train one model into a RUN_DIR, (re)evaluate it, and compare several on the same data.

The same for both kinds of data: what differs between product pairs and ratings (how the DATA_DIR opens,
what a model is fitted on, how it is scored and reported) is the kind's protocol object
(:mod:`itemvec.evaluate.protocol`).

```
RUN_DIR/
  config.toml      the resolved settings (seed included), written before training starts
  model.json       model name, settings and the shape of every array; weights.npz the arrays (no pickle)
  history.jsonl    the learning curve: validation AUC (per user, for ratings) and loss per evaluation
  checkpoint.npz   the state after the last finished epoch, while training (removed when it ends)
  metrics.json     test metrics under the evaluation protocol of the data's kind
  train.json       written last: the run is complete. Data dir and fingerprint, a digest of config.toml,
                   train seconds, peak memory of the training process
  curves.npz       ROC, precision-recall and threshold curves (item-item); *.png their plots
```

A run counts as finished only when ``train.json`` says so and its data fingerprint and settings digest
match: ``compare`` reuses nothing else, and starting a new training removes the old ``train.json`` and
``metrics.json`` first, so an interrupted retraining can never be mistaken for the run it replaces.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from itemvec import registry
from itemvec.config import (
    check,
    epochs_of,
    load_toml,
    replace,
    setting_names,
    settings_for,
    toml_text,
)
from itemvec.costs import Cost
from itemvec.data.store import DataDir, RatingsDir, read_json_object
from itemvec.data.types import RankShare
from itemvec.distributed import Group, world_size
from itemvec.errors import ConfigError, InputError, Interrupted
from itemvec.evaluate.protocol import ITEM_ITEM, USER_ITEM, protocol
from itemvec.index import ALL_FILES as INDEX_FILES
from itemvec.index import Neighbours
from itemvec.models.base import Model, load_model, read_model_json
from itemvec.outputs import OutputFolder, safe_name, save_npz, write_json, write_text
from itemvec.train import (
    Trainer,
    checkpoint_identity,
    refuse_foreign_checkpoint,
    refuse_undistributable,
    run_identity,
)

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from _typeshed import DataclassInstance

MAX_K = 10_000  # neighbours / recommendations per query


def resolve_config(model: str, config_file: Path | None = None, sets: dict[str, str] | None = None,
                   *, strict: bool = True, kind: str = "pairs") -> tuple[type[Model], DataclassInstance]:
    cls = registry.get(model, kind)
    file_values = load_toml(config_file) if config_file else None
    if file_values and "model" in file_values and file_values.get("model") != model:
        file_values = {k: v for k, v in file_values.items() if k != "model"}
    elif file_values:
        file_values.pop("model", None)
    values = settings_for(model, file_values, sets or {}, cls.Config, strict_unprefixed=strict)
    return cls, replace(cls.Config(), values, source=f"settings for {model}")


def open_data(data_dir: str | Path, kind: str | None = None) -> DataDir | RatingsDir:
    """The DATA_DIR of either kind, checked on open (see itemvec.data.store)."""
    return protocol(kind or registry.data_kind(data_dir)).open(data_dir)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ConfigError(f"-k: {k} is out of range; expected [1, {MAX_K}]")
    return k


def train_run(model: str, data_dir: str | Path, out: str | Path, *, config_file: Path | None = None,
              sets: dict[str, str] | None = None, config: DataclassInstance | None = None, progress: bool = True,
              resume: bool = True, ranking_queries: int | None = None) -> dict[str, Any]:
    """Fit ``model`` on DATA_DIR's train pairs (or ratings), save it into ``out`` and evaluate it on the
    test part. The settings: ``config`` (a resolved Config of the model), else ``config_file`` and ``sets``.
    Everything is checked (settings, data, the output folder, a checkpoint left in it) before anything in
    ``out`` changes."""
    kind = registry.data_kind(data_dir)
    kind_protocol = protocol(kind)
    if config is None:
        cls, config = resolve_config(model, config_file, sets, kind=kind)
    else:
        cls = registry.get(model, kind)
        if not isinstance(config, cls.Config):
            raise ConfigError(f"settings for {model}: expected a {cls.__name__}.Config, got {type(config).__name__}")
        check(config, source=f"settings for {model}")
    settings = getattr(config, "train", None)
    group: Group | None = None
    if getattr(settings, "distributed", False):
        refuse_undistributable(cls, model)
        world_size(settings)  # refuses outside torchrun
        data = kind_protocol.open(data_dir, validate=False)  # the manifest, with the fingerprint every rank shows
        group = Group(settings)
        group.agree(run_identity(model, config, data.fingerprint))
    else:
        data = kind_protocol.open(data_dir)
    read = _training_reader(data, cls, group)
    if group is not None and group.rank:  # a distributed run's rank > 0: trains its share, writes nothing
        estimator = cls(config)
        estimator.data_fingerprint = data.fingerprint
        _measured_fit(estimator, data, read=read, group=group, progress=False, resume=resume)
        return {}
    with OutputFolder(out, "run", inputs=[data_dir, config_file]) as folder:
        out = folder.path
        identity = run_identity(model, config, data.fingerprint)
        checkpoint = out / "checkpoint.npz"
        if checkpoint.exists() and resume:
            refuse_foreign_checkpoint(checkpoint, checkpoint_identity(checkpoint), identity)
        # From here the folder holds this run: the old result stops counting before training starts.
        for name in ("train.json", "metrics.json", *INDEX_FILES,
                     *([] if resume else ["checkpoint.npz"])):
            (out / name).unlink(missing_ok=True)
        config_text = toml_text(model, config)
        write_text(out / "config.toml", config_text)
        estimator = cls(config)
        estimator.data_fingerprint = data.fingerprint  # recorded in checkpoints (itemvec.train)
        training, costs = _measured_fit(estimator, data, read=read, group=group, progress=progress, run_dir=out,
                                        resume=resume)
        size = kind_protocol.training_size(training)
        # peak_rss_mb: the training's peak, under the name the tables have always read
        info = {"model": model, "data_dir": str(Path(data_dir).resolve()), "data_fingerprint": data.fingerprint,
                "config_digest": _digest(config_text), "train_seconds": costs["train_seconds"],
                "train_cpu_seconds": costs["train_cpu_seconds"], "peak_rss_mb": costs["train_peak_rss_mb"],
                "train_load_average": costs["train_load_average"], **size,
                **({"distributed": costs["distributed"]} if "distributed" in costs else {}), "complete": True}
        estimator.save(out)
        metrics = _evaluate(out, data, estimator, info, ranking_queries=ranking_queries)
        write_json(out / "train.json", info)  # last: the run is complete
        checkpoint.unlink(missing_ok=True)
        return metrics


def _training_reader(data: DataDir | RatingsDir, cls: type[Model], group: Group | None
                     ) -> Callable[[], Any]:
    """What reads the training data for the fit: the whole train part, or in a distributed run this rank's
    share of it (``RankShare``: only its own rows for the models that read a share, ``reads_share``). There,
    rank 0 first checks every table, as the single process does on open, and the other ranks check the rows
    they read; a rank that refuses the data makes every rank refuse at once (``Group.together``)."""
    kind_protocol = protocol(data.kind)
    if group is None:
        return lambda: kind_protocol.training(data)

    def reduce(array: np.ndarray, op: str) -> None:
        group.all_reduce(array, op=op, what="the sum of the data's counts")

    def read() -> Any:
        if group.rank == 0:
            data.validate()
        share = RankShare(rank=group.rank, world=group.world, held=bool(getattr(cls, "reads_share", False)),
                          all_reduce=reduce)
        return kind_protocol.training(data, share, validation=group.rank == 0)  # only rank 0 evaluates

    return lambda: group.together("the data", read)


def _measured_fit(estimator: Model, data: DataDir | RatingsDir, *, read: Callable[[], Any] | None = None,
                  **trainer_options: Any) -> tuple[Any, dict[str, Any]]:
    """Read the training data (``read()``, by default the whole train part) and fit ``estimator`` with a
    ``Trainer(**trainer_options)`` whose learning curve is the data kind's validation function: (the training
    data, what it cost: ``Cost.record("train")``)."""
    kind_protocol = protocol(data.kind)
    with Cost() as cost:  # reading the training data, then fitting: what training costs
        training = read() if read is not None else kind_protocol.training(data)
        evaluate = kind_protocol.validation_function(estimator, training, estimator.config)
        trainer = Trainer(evaluate=evaluate, **trainer_options)
        estimator.fit(training, trainer)
    costs = cost.record("train")
    if trainer.distributed is not None:  # what a distributed run's syncs cost
        costs["distributed"] = trainer.distributed
    return training, costs


def _save_curves(path: Path, curves: dict[str, Any]) -> None:
    arrays = {f"{group}.{key}": np.asarray(value) for group, values in curves.items() if isinstance(values, dict)
              for key, value in values.items() if not isinstance(value, str)}
    save_npz(path, arrays)


def load_curves(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    curves: dict[str, Any] = {}
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


def _train_info(run_dir: Path) -> dict[str, Any]:
    """A finished run's ``train.json`` (checked), or {} when training did not finish."""
    path = run_dir / "train.json"
    if not path.exists():
        return {}
    info = read_json_object(path, "a finished run's record")
    if not isinstance(info.get("data_dir"), str):
        raise InputError(f"{path}: 'data_dir' must be the path of the DATA_DIR; pass --data")
    for key in ("train_seconds", "train_cpu_seconds", "peak_rss_mb", "train_load_average"):
        value = info.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(f"{path}: {key!r} must be a number, found {value!r}")
    return info


def open_run(run_dir: str | Path, data_dir: str | Path | None = None, *, expect: str | None = None,
             mmap: bool = False) -> tuple[Model, DataDir | RatingsDir, dict[str, Any]]:
    """(model, data, train info) of a RUN_DIR, every file checked, the data of the model's kind and size.
    ``expect`` (a data kind) refuses a run of the other kind with a hint at the command for it; ``mmap``
    memory-maps the model's large arrays (``Model.load``)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: no such run folder" if not run_dir.exists() else f"{run_dir}: is a file, "
                         "expected a run folder written by `itemvec train`")
    meta = read_model_json(run_dir)
    kind = registry.run_kind(meta)
    kind_protocol = protocol(kind)
    if expect is not None and kind != expect:
        raise InputError(f"{run_dir} holds {kind_protocol.a_model} ({meta['model']}); use "
                         f"`itemvec {kind_protocol.command}` for it")
    info = _train_info(run_dir)
    if not info and data_dir is None:
        raise InputError(f"{run_dir}: training did not finish (no train.json); run `itemvec train` again, or "
                         "pass --data")
    data_dir = Path(data_dir or info["data_dir"])
    data_kind = registry.data_kind(data_dir)
    if data_kind != kind:
        raise InputError(f"{run_dir} holds {kind_protocol.a_model}; {data_dir} holds {protocol(data_kind).data_words}")
    data = kind_protocol.open(data_dir)
    model = load_model(run_dir, mmap=mmap)
    kind_protocol.check_size(model, data, run_dir)
    return model, data, info


def evaluate_model(model: Model, data: DataDir | RatingsDir, *, ranking_queries: int | None = None) -> dict[str, Any]:
    """The figures of a fitted ``model`` on the test part of an opened DATA_DIR ``data`` (``open_data``), by the
    protocol of the data's kind: the same dict as a run's ``metrics.json``, without the timings of training."""
    if model.data_kind != data.kind:
        raise ConfigError(f"{model.name} is {protocol(model.data_kind).a_model}; {data.path} holds "
                          f"{protocol(data.kind).data_words}")
    kind_protocol = protocol(data.kind)
    kind_protocol.check_size(model, data, f"the {model.name} model")
    metrics, _ = kind_protocol.evaluate(model, data, ranking_queries=ranking_queries)
    return metrics


def evaluate_run(run_dir: str | Path, data_dir: str | Path | None = None, *, ranking_queries: int | None = None,
                 plots: bool = True) -> dict[str, Any]:
    """(Re)compute ``metrics.json``, ``curves.npz`` and the plots of a finished run."""
    model, data, info = open_run(run_dir, data_dir)
    with OutputFolder(run_dir, "run") as folder:
        return _evaluate(folder.path, data, model, info, ranking_queries=ranking_queries, plots=plots)


def _evaluate(run_dir: Path, data: DataDir | RatingsDir, model: Model, info: dict[str, Any], *,
              ranking_queries: int | None = None, plots: bool = True) -> dict[str, Any]:
    from itemvec.evaluate.report import plot_model

    common = {"train_seconds": info.get("train_seconds"), "train_cpu_seconds": info.get("train_cpu_seconds"),
              "peak_rss_mb": info.get("peak_rss_mb"), "train_load_average": info.get("train_load_average"),
              "epochs": epochs_of(model.config)}
    metrics, curves = protocol(data.kind).evaluate(model, data, recorded=common, ranking_queries=ranking_queries)
    if curves:
        _save_curves(run_dir / "curves.npz", curves)
    write_json(run_dir / "metrics.json", metrics)
    if plots:
        plot_model(run_dir, model.name, load_curves(run_dir))
    return metrics


def _reusable(run_dir: Path, model: str, config: DataclassInstance, data: DataDir | RatingsDir) -> bool:
    """A run may stand in for a new training only when it finished, on this very data, with these settings."""
    try:
        info = json.loads((run_dir / "train.json").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
        return (isinstance(info, dict) and isinstance(metrics, dict) and info.get("complete") is True
                and info.get("model") == model
                and info.get("config_digest") == _digest(toml_text(model, config))
                and (run_dir / "config.toml").read_text() == toml_text(model, config)
                and info.get("data_fingerprint") == data.fingerprint
                and metrics.get("data_fingerprint") == data.fingerprint
                and (run_dir / "model.json").is_file() and (run_dir / "weights.npz").is_file())
    except (OSError, ValueError):
        return False


def _stop(process: BaseProcess) -> None:
    """Ask a worker to stop as the user asked us (SIGINT: it saves and cleans up), then insist."""
    for signum, grace in ((signal.SIGINT, 60), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if not process.is_alive():
            return
        assert process.pid is not None  # alive, so started
        with suppress(ProcessLookupError):
            os.kill(process.pid, signum)
        process.join(grace)


def _train_worker(model: str, data_dir: Path, out: Path, config: DataclassInstance, progress: bool,
                  resume: bool) -> None:
    """The body of one of compare's worker processes: ``train_run`` under the command line's rules for how a
    job ends (one line for a user error, exit 2; 130 / 143 on a signal, reported by the parent)."""
    from itemvec.guard import run_guarded

    sys.exit(run_guarded(lambda: train_run(model, data_dir, out, config=config, progress=progress, resume=resume),
                         report_interrupt=False))


def _kept_note(runs: Path, done: int, name: str, run_dir: Path, epochs: int | None,
               trials: Path | None = None) -> str:
    kept = [f"{done} finished run(s) in {runs}"] if done else []
    if trials is not None and trials.exists():
        with suppress(OSError, ValueError, AttributeError, TypeError):
            kept.append(f"{len(json.loads(trials.read_text())['trials'])} tuning trial(s) of {name} in {trials}")
    checkpoint = run_dir / "checkpoint.npz"
    if checkpoint.exists():
        with suppress(OSError, ValueError, KeyError), np.load(checkpoint, allow_pickle=False) as npz:
            kept.append(f"{checkpoint} after epoch {int(npz['_epoch']) + 1} of {epochs} for {name}")
    if not kept:
        return "no model had finished; rerun the same command to start again"
    return "kept " + " and ".join(kept) + "; rerun the same command to reuse them and resume"


def compare(data_dir: str | Path, models: list[str], out: str | Path, *, config_file: Path | None = None,
            sets: dict[str, str] | None = None, progress: bool = True, reuse: bool = True,
            log: Callable[[str], object] = print, tune: int = 0, tune_on: str | None = None) -> list[dict[str, Any]]:
    """Train (or reuse) each model in its own process, evaluate all on the same test part, write the report.
    ``tune`` > 1: first try that many settings per model (its ``search_space``; the first is the configured
    one) on the validation part, scored by ``tune_on`` (``itemvec.tune``), and train the best as the run."""
    from itemvec import tune as search
    from itemvec.evaluate import report

    if tune < 0:
        raise ConfigError(f"--tune: {tune} is out of range; expected 0 (no tuning) or more")
    if not models:
        raise ConfigError("--models: no model names given")
    repeated = sorted({m for m in models if models.count(m) > 1})
    if repeated:
        raise ConfigError(f"--models: {', '.join(repeated)} named more than once")
    kind = registry.data_kind(data_dir)
    kind_protocol = protocol(kind)
    data = kind_protocol.open(data_dir)
    configs = {}
    for spec in models:
        base, variant = parse_model_spec(spec, kind)
        config = resolve_config(base, config_file, sets, strict=False, kind=kind)[1]
        configs[spec] = (base, replace(config, variant, source=spec) if variant else config)
    unknown = [key for key in (sets or {}) if "." not in key and
               not any(key in setting_names(type(c)) for _, c in configs.values())]
    if unknown:
        raise InputError(f"--set: no model in {models} has the setting(s) {unknown}")
    if tune > 1 and tune_on is not None:  # before any trial: not after the first one has trained
        search.check_metric(tune_on, dict.fromkeys(kind_protocol.table_columns, 0.0))
    if any(getattr(getattr(c, "train", None), "distributed", False) for _, c in configs.values()):
        raise ConfigError("compare trains on one machine: drop distributed=true, or train a model on several "
                          "processes with torchrun ... -m itemvec train MODEL ... --set distributed=true")
    folders = {spec: safe_name(spec) for spec in models}
    if len(set(folders.values())) < len(folders):
        raise ConfigError(f"--models: {models} give the same run folder name twice")
    with OutputFolder(out, "report", inputs=[data_dir, config_file]) as folder:
        out = folder.path
        runs = out / "runs"
        runs.mkdir(exist_ok=True)
        rows: list[dict[str, Any]] = []
        curves_by_model: dict[str, dict[str, Any]] = {}
        for name in models:
            run_dir = runs / folders[name]
            base, config = configs[name]
            tuning = None
            try:
                if tune > 1:
                    config, tuning = _tune(name, base, config, data, out / "tuning" / folders[name], tune, tune_on,
                                           progress, log)
                if reuse and _reusable(run_dir, base, config, data):
                    log(f"[{name}] reusing {run_dir}")
                else:
                    log(f"[{name}] training")
                    _train_child(base, config, data, run_dir, progress)
            except Interrupted as exc:
                exc.kept = _kept_note(runs, len(rows), name, run_dir, epochs_of(config),
                                      out / "tuning" / folders[name] / "trials.json" if tune > 1 else None)
                raise
            metrics = {**json.loads((run_dir / "metrics.json").read_text()), "model": name}
            if tuning is not None:
                metrics["tuning"] = tuning
            rows.append(metrics)
            curves_by_model[name] = load_curves(run_dir)
            figures = "  ".join(f"{label} {_fmt(metrics[key])}" for key, label in kind_protocol.log_columns)
            log(f"[{name}] {figures}  train {metrics['train_seconds']:.1f} s")
        write_json(out / "metrics.json", rows)
        context = {"title": "itemvec comparison", "data_dir": str(data_dir), "manifest": data.manifest,
                   "command": " ".join(sys.argv) if sys.argv else "", "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        report.write_report(out, rows, curves_by_model, context, protocol=kind_protocol)
        return rows


def _tune(name: str, base: str, config: DataclassInstance, data: DataDir | RatingsDir, folder: Path, n: int,
          metric: str | None, progress: bool, log: Callable[[str], object]) -> tuple[DataclassInstance, dict[str, Any]]:
    """Try ``n`` settings of one model on the validation part (each trained in a worker process of its own) and
    return (the best settings, what the search did). Finished trials are kept in ``folder/trials.json`` and
    reused by a rerun on the same data."""
    from itemvec import tune as search

    cls = registry.get(base, data.kind)
    space = getattr(cls, "search_space", None) or {}
    metric = metric or search.default_metric(data.kind, getattr(cls, "kind", None))
    if not space:
        log(f"[{name}] no settings to tune: trained as configured")
        return config, {"on": metric, "trials": [], "chosen": {}, "note": "no search space"}
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / "trials.json"
    kept: dict[str, Any] = {}
    with suppress(OSError, ValueError, AttributeError):
        previous = json.loads(record.read_text())
        if previous.get("data_fingerprint") == data.fingerprint:
            kept = {row["digest"]: row for row in previous.get("trials", [])}
    done: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for index, overrides in enumerate(search.trials(space, n, search.model_seed(base))):
        trial_config = replace(config, overrides, source=f"{name} trial {index + 1}")
        digest = _digest(toml_text(base, trial_config))
        row = kept.get(digest)
        reused = row is not None
        if row is None:
            result = folder / f"trial-{index + 1}.json"
            result.unlink(missing_ok=True)
            _spawn(_tune_worker, (base, data.path, trial_config, result, progress), f"tune {base}",
                   f"tuning {base} (trial {index + 1})", folder)
            figures = json.loads(result.read_text())
            result.unlink()
            search.check_metric(metric, figures)
            row = {"digest": digest, "settings": overrides, "validation": figures.get(metric),
                   "train_seconds": figures.get("train_seconds")}
        done.append(row)
        write_json(record, {"model": name, "on": metric, "data_fingerprint": data.fingerprint, "trials": done})
        value = row["validation"]
        log(f"[{name}] trial {index + 1}/{n} ({search.settings_text(row['settings'])}): validation {metric} "
            f"{_fmt(value)}" + (" (kept from an earlier run)" if reused else ""))
        if best is None or search.better(metric, value, best["validation"]):
            best = row
    assert best is not None  # at least the configured settings were tried
    log(f"[{name}] chosen on validation: {search.settings_text(best['settings'])} ({metric} {_fmt(best['validation'])})")
    chosen = replace(config, best["settings"], source=f"{name} chosen") if best["settings"] else config
    return chosen, {"on": metric, "chosen": best["settings"], "validation": best["validation"],
                    "configured_validation": done[0]["validation"],
                    "trials": [{"settings": r["settings"], "validation": r["validation"]} for r in done]}


def _tune_worker(model: str, data_dir: Path, config: DataclassInstance, result: Path, progress: bool) -> None:
    """One trial of ``compare --tune`` in a worker process: train on the train part, write the validation
    figures (and the training's cost) to ``result``."""
    from itemvec.guard import run_guarded

    def trial() -> None:
        kind = registry.data_kind(data_dir)
        kind_protocol = protocol(kind)
        data = kind_protocol.open(data_dir)
        estimator = registry.get(model, kind)(config)
        _, costs = _measured_fit(estimator, data, progress=progress)
        write_json(result, {**kind_protocol.validation_figures(estimator, data), **costs})

    sys.exit(run_guarded(trial, report_interrupt=False))


def _spawn(target: Callable[..., None], args: tuple[Any, ...], name: str, what: str, where: Path) -> None:
    """Run ``target(*args)`` in a spawned worker process and wait: a stopped worker stops us (Interrupted), a
    failed one is one line naming ``what`` (its own message came above)."""
    worker = multiprocessing.get_context("spawn").Process(target=target, args=args, name=name)
    worker.start()
    try:
        worker.join()
    except BaseException:
        _stop(worker)
        raise
    code = worker.exitcode
    assert code is not None  # joined: the worker has ended
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM):
        raise Interrupted(abs(code) % 128 or signal.SIGINT)  # the worker was stopped on its own: ours too
    if code != 0:
        how = f"was killed by signal {-code}" if code < 0 else f"failed (exit {code}); see the message above"
        raise InputError(f"{what} in {where} {how}")


def _train_child(base: str, config: DataclassInstance, data: DataDir | RatingsDir, run_dir: Path,
                 progress: bool) -> None:
    """Train one model of a comparison in a worker process of its own (so that its peak memory and its thread
    counts are its own), through the library, not the command line."""
    # Resume only a checkpoint of this very run; compare owns its run folders, so another one is replaced.
    checkpoint = run_dir / "checkpoint.npz"
    resume = checkpoint.exists() and checkpoint_identity(checkpoint) == run_identity(base, config, data.fingerprint)
    _spawn(_train_worker, (base, data.path, run_dir, config, progress, resume), f"train {base}", f"training {base}",
           run_dir)


def refusals(data_dir: str | Path, models: list[str]) -> dict[str, str]:
    """model spec → why it cannot train on this DATA_DIR's catalogue (a model's ``refusal(n_items)``, e.g. ease's
    dense limit), for the models that cannot."""
    kind = registry.data_kind(data_dir)
    n_items = protocol(kind).open(data_dir).n_items
    out = {}
    for spec in models:
        refusal = getattr(registry.get(parse_model_spec(spec, kind)[0], kind), "refusal", None)
        reason = refusal(n_items) if refusal is not None else None
        if reason:
            out[spec] = reason
    return out


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


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def _cell(row: dict[str, Any], column: str) -> str:
    """A figure, with ± its standard error when the row has one."""
    error = row.get(f"{column}_se")
    return _fmt(row.get(column)) + (f"±{error:.4f}" if error is not None and row.get(column) is not None else "")


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The command line's table of metrics rows (``metrics.json`` of runs of one kind)."""
    # metrics.json records a user-item model's kind as its model.json does, so run_kind reads the rows' kind.
    columns = protocol(registry.run_kind(rows[0] if rows else {})).table_columns
    width = max([14, *(len(str(row["model"])) + 2 for row in rows)])
    errors = {c for c in columns if any(row.get(f"{c}_se") is not None for row in rows)}
    widths = [max(18 if c in errors else 16, len(c) + 2) for c in columns]
    header = f"{'model':<{width}}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths)) + f"{'train s':>10}{'peak MB':>10}"
    lines = [header]
    for row in rows:
        cells = "".join(f"{_cell(row, c):>{w}}" for c, w in zip(columns, widths))
        lines.append(f"{row['model']:<{width}}{cells}{row.get('train_seconds') or 0:>10.1f}{row.get('peak_rss_mb') or 0:>10.0f}")
    return lines


def index_run(run_dir: str | Path, *, backend: str = "ivf", m: int = 32, ef_construction: int = 200,
              ef_search: int = 64, nlist: int = 0, nprobe: int = 0) -> dict[str, Any]:
    """Build the faiss index of a finished run beside its weights (``itemvec.index``): an inverted file
    (``backend="ivf"``: nlist lists, nprobe of them searched; 0 picks them from the number of items) or an
    HNSW graph (``"hnsw"``: m, ef_construction, ef_search)."""
    from itemvec.index import BACKENDS, build_run_index

    if backend not in BACKENDS:
        raise ConfigError(f"--backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    for name, value, low, high in (("--m", m, 4, 256), ("--ef-construction", ef_construction, 8, 4096),
                                   ("--ef-search", ef_search, 1, 4096), ("--nlist", nlist, 0, 1 << 20),
                                   ("--nprobe", nprobe, 0, 1 << 20)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{name}: {value} is out of range; expected [{low}, {high}]")
    model, _, _ = open_run(run_dir)
    with OutputFolder(run_dir, "run"):
        return build_run_index(run_dir, model, backend=backend, m=m, ef_construction=ef_construction,
                               ef_search=ef_search, nlist=nlist or None, nprobe=nprobe or None)


def run_neighbours(run_dir: str | Path, model: Model) -> Neighbours:
    """The model's searches (``itemvec.index.Neighbours``): through the run's index when `itemvec index` built
    one, by the exact scan otherwise."""
    from itemvec.index import load_run_index

    return Neighbours(model, load_run_index(run_dir, model) if getattr(model, "has_embedding", False) else None)


def similar(run_dir: str | Path, asins: list[str], k: int = 10, data_dir: str | Path | None = None,
            ) -> list[dict[str, Any]]:
    """Nearest products of each ASIN, with titles. Unknown ASINs raise an InputError naming them."""
    check_k(k)
    model, data, _ = open_run(run_dir, data_dir, expect=ITEM_ITEM.kind)
    assert isinstance(data, DataDir)  # the data of an item-item run (expect)
    ids = data.item_index(asins)
    products = data.products()
    titles = products["title"].to_pylist() if "title" in products.column_names else [None] * data.n_items
    searches = run_neighbours(run_dir, model)
    found = [searches.similar(int(item), k) for item in ids]
    top, scores = [row for row, _ in found], [values for _, values in found]
    results = []
    for asin, item, row, row_scores in zip(asins, ids, top, scores):
        neighbours = [{"asin": data.asins[j], "title": titles[j], "score": float(s)}
                      for j, s in zip(row, row_scores) if j >= 0]
        results.append({"asin": asin, "title": titles[item], "seen_in_training": bool(model.known_items_[item]),
                        "similar": neighbours})
    return results


def recommend(run_dir: str | Path, users: list[str], k: int = 10, data_dir: str | Path | None = None,
              include_seen: bool = False) -> list[dict[str, Any]]:
    """Top-k items for each user (ids as in the ratings file), the items they rated in train left out,
    with titles. Unknown user ids raise an InputError naming them."""
    check_k(k)
    model, data, _ = open_run(run_dir, data_dir, expect=USER_ITEM.kind)
    from itemvec.models.useritem.base import UserItemModel  # (already imported by the model's module)

    assert isinstance(model, UserItemModel) and isinstance(data, RatingsDir)  # a user-item run (expect)
    user_ids = [str(u) for u in data.users().column("user_id").to_pylist()]
    index = {u: i for i, u in enumerate(user_ids)}
    missing = [u for u in users if u not in index]
    if missing:
        raise InputError(f"unknown user id(s): {', '.join(missing)}")
    items = data.items()
    item_ids = [str(i) for i in items.column("item_id").to_pylist()]
    titles = items.column("title").to_pylist() if "title" in items.column_names else [None] * len(item_ids)
    seen = data.seen()
    ids = np.array([index[u] for u in users], dtype=np.int64)
    neighbours = run_neighbours(run_dir, model)
    found = []
    for uid in ids:
        found.append(neighbours.recommend(int(uid), k, exclude=None if include_seen else seen[uid].indices))
    top, scores = [row for row, _ in found], [values for _, values in found]
    results = []
    for user, uid, row, row_scores in zip(users, ids, top, scores):
        results.append({"user": user, "seen_in_training": bool(model.known_users_[uid]),
                        "popularity_ranking": model.cold_user(int(uid)),
                        "train_items": int(seen[uid].nnz),
                        "recommendations": [{"item": item_ids[j], "title": titles[j], "score": float(s)}
                                            for j, s in zip(row, row_scores) if j >= 0]})
    return results
