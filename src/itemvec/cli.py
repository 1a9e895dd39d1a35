"""The `itemvec` command: a thin Typer app that parses arguments, calls the library and prints a summary."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated

import typer

from itemvec.errors import ConfigError

app = typer.Typer(help="Item embeddings and recommendations from product graphs, sessions and ratings.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
synth_app = typer.Typer(help="Generate synthetic data with planted structure.", no_args_is_help=True)
prepare_app = typer.Typer(help="Turn raw files into a prepared DATA_DIR.", no_args_is_help=True)
app.add_typer(synth_app, name="synth")
app.add_typer(prepare_app, name="prepare")

Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
def _seed(value: int) -> int:
    if not 0 <= value < 2**63:
        raise ConfigError(f"--seed: {value} is out of range; expected [0, 2**63)")
    return value


Seed = Annotated[int, typer.Option(help="Random seed (same seed, same output).", callback=_seed)]


@synth_app.command("amazon")
def synth_amazon(
    out: Annotated[Path, typer.Option(help="Output file (.json.gz for gzip), Amazon 2014 format.")],
    products: Annotated[int, typer.Option(help="Distinct products in the catalogue.")] = 20000,
    seed: Seed = 0,
    progress: Progress = True,
) -> None:
    """Write a synthetic Amazon 2014-format metadata file with planted structure."""
    from itemvec.data.synthetic import write_amazon_2014

    summary = write_amazon_2014(out, products, seed, progress=progress)
    typer.echo(f"wrote {out}: {summary['metadata_lines']:,} metadata lines over {summary['products']:,} products "
               f"in {summary['seconds']:.1f} s")


def _print_manifest(manifest: dict, out: Path) -> None:
    from itemvec.data.prepare import summary_lines

    for line in summary_lines(manifest):
        typer.echo(line)
    typer.echo(f"wrote {out} (manifest: {out / 'manifest.json'})")


def _fraction(value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"--max-bad-fraction: {value} is out of range; expected a fraction in [0, 1]")
    return value


def _finite(name: str):
    def check(value: float) -> float:
        if not math.isfinite(value):
            raise ConfigError(f"{name}: expected a finite number, got {value}")
        return value

    return check


SplitOption = Annotated[str, typer.Option(help="TRAIN,VAL,TEST fractions.")]
MaxBad = Annotated[float, typer.Option(help="Fail when more than this fraction of records is rejected.",
                                       callback=_fraction)]


@prepare_app.command("amazon")
def prepare_amazon_command(
    files: Annotated[list[Path], typer.Argument(help="Amazon metadata files (2014 or 2018, plain or gzip).")],
    out: Annotated[Path, typer.Option(help="DATA_DIR to write.")],
    weights: Annotated[str, typer.Option(help="Relation weights, NAME=W,...")] = (
        "bought_together=1.2,also_bought=1.0,also_viewed=0.5"),
    split: SplitOption = "0.667,0.167,0.166",
    seed: Seed = 0,
    max_bad_fraction: MaxBad = 0.01,
    progress: Progress = True,
    workers: Annotated[int | None, typer.Option(
        min=0, help="Processes that parse the lines beside this one (0: none). Default: one per core for inputs "
                    "of 24 MB or more, none below. The outputs are the same either way.")] = None,
) -> None:
    """Stream Amazon product metadata into products, weighted pairs and a seeded split."""
    from itemvec.data.pairs import parse_split, parse_weights
    from itemvec.data.prepare import prepare_amazon

    manifest = prepare_amazon(files, out, weights=parse_weights(weights), split=parse_split(split), seed=seed,
                              max_bad_fraction=max_bad_fraction, progress=progress, workers=workers)
    _print_manifest(manifest, out)


@prepare_app.command("edges")
def prepare_edges_command(
    files: Annotated[list[Path], typer.Argument(help="Edge lists: 'a b [weight]' per line, '#' comments.")],
    out: Annotated[Path, typer.Option(help="DATA_DIR to write.")],
    split: SplitOption = "0.667,0.167,0.166",
    seed: Seed = 0,
    max_bad_fraction: MaxBad = 0.01,
    progress: Progress = True,
) -> None:
    """Read a plain edge list (as the SNAP graphs) into the same DATA_DIR layout."""
    from itemvec.data.pairs import parse_split
    from itemvec.data.prepare import prepare_edges

    manifest = prepare_edges(files, out, split=parse_split(split), seed=seed, max_bad_fraction=max_bad_fraction,
                             progress=progress)
    _print_manifest(manifest, out)


@prepare_app.command("sessions")
def prepare_sessions_command(
    files: Annotated[list[Path], typer.Argument(help="Session or sequence files (plain or gzip).")],
    out: Annotated[Path, typer.Option(help="DATA_DIR to write.")],
    fmt: Annotated[str, typer.Option("--format", help="s3rec, sasrec, diginetica or yoochoose.")],
    attributes: Annotated[Path | None, typer.Option(help="Item attributes, JSON {\"item id\": [ids]}.")] = None,
    window: Annotated[int, typer.Option(help="Link each item to the next WINDOW items of its session.")] = 1,
    split: SplitOption = "0.667,0.167,0.166",
    seed: Seed = 0,
    max_bad_fraction: MaxBad = 0.01,
    progress: Progress = True,
) -> None:
    """Read click sessions or user sequences into an item graph, the sessions and training sessions."""
    from itemvec.data.pairs import parse_split
    from itemvec.data.sessions import prepare_sessions, session_summary_lines

    manifest = prepare_sessions(files, out, fmt=fmt, attributes=attributes, window=window,
                                split=parse_split(split), seed=seed, max_bad_fraction=max_bad_fraction,
                                progress=progress)
    for line in session_summary_lines(manifest):
        typer.echo(line)
    _print_manifest(manifest, out)


@prepare_app.command("ratings")
def prepare_ratings_command(
    path: Annotated[Path, typer.Argument(help="The ml-100k / ml-latest folder, or a CSV or review file.")],
    out: Annotated[Path, typer.Option(help="DATA_DIR to write.")],
    fmt: Annotated[str, typer.Option("--format", help="movielens-100k, movielens-csv, csv or amazon-reviews.")],
    split: Annotated[str | None, typer.Option(help="random, temporal (per user) or files (default: files "
                                                   "with --split-files, else random).")] = None,
    split_files: Annotated[str | None, typer.Option(help="TRAIN,TEST file names inside PATH, e.g. "
                                                         "ua.base,ua.test.")] = None,
    test_fraction: Annotated[float, typer.Option(help="Test share of the ratings (of each user's, temporal).")] = 0.2,
    validation_fraction: Annotated[float | None, typer.Option(
        help="Validation share of what is left (default 0.05; 0 for --split files).")] = None,
    threshold: Annotated[float, typer.Option(help="Ratings at or above it are positives (implicit view).",
                                             callback=_finite("--threshold"))] = 4.0,
    seed: Seed = 0,
    metadata: Annotated[Path | None, typer.Option(help="Amazon metadata file (amazon-reviews).")] = None,
    columns: Annotated[str | None, typer.Option(help="csv: user=...,item=...,rating=...,timestamp=... header "
                                                     "names.")] = None,
    delimiter: Annotated[str, typer.Option(help="csv: field delimiter ('tab' for tabs).")] = ",",
    max_bad_fraction: MaxBad = 0.01,
    progress: Progress = True,
) -> None:
    """Read explicit ratings (MovieLens, CSV, Amazon reviews) into users, items and a seeded split."""
    from itemvec.data.ratings import prepare_ratings, ratings_summary_lines

    manifest = prepare_ratings(path, out, fmt=fmt, split=split, split_files=split_files,
                               test_fraction=test_fraction, validation_fraction=validation_fraction,
                               threshold=threshold, seed=seed, metadata=metadata, columns=columns,
                               delimiter=delimiter, max_bad_fraction=max_bad_fraction, progress=progress)
    for line in ratings_summary_lines(manifest):
        typer.echo(line)
    typer.echo(f"wrote {out} (manifest: {out / 'manifest.json'})")


SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a setting: key=value (repeatable).")]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML file of settings.")]


@app.command("train")
def train_command(
    model: Annotated[str, typer.Argument(help="Registered model name (see `itemvec models`).")],
    data: Annotated[Path, typer.Option(help="Prepared DATA_DIR.")],
    out: Annotated[Path, typer.Option(help="RUN_DIR to write.")],
    config: ConfigOption = None,
    set_: SetOption = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Resume from a checkpoint in RUN_DIR.")] = True,
    progress: Progress = True,
) -> None:
    """Train one model; writes the resolved config, weights, history.jsonl and metrics.json."""
    from itemvec.config import parse_sets
    from itemvec.runs import table_lines, train_run

    metrics = train_run(model, data, out, config_file=config, sets=parse_sets(set_), progress=progress,
                        resume=resume)
    if not metrics:  # a distributed run's rank > 0: rank 0 reports
        return
    for line in table_lines([metrics]):
        typer.echo(line)
    typer.echo(f"wrote {out}")


@app.command("evaluate")
def evaluate_command(
    run_dir: Annotated[Path, typer.Argument(help="A RUN_DIR written by `itemvec train`.")],
    data: Annotated[Path | None, typer.Option(help="DATA_DIR (default: the one it was trained on).")] = None,
) -> None:
    """(Re)compute a run's metrics.json and plots."""
    from itemvec.runs import evaluate_run, table_lines

    metrics = evaluate_run(run_dir, data)
    for line in table_lines([metrics]):
        typer.echo(line)


@app.command("compare")
def compare_command(
    data: Annotated[Path, typer.Option(help="Prepared DATA_DIR.")],
    out: Annotated[Path, typer.Option(help="REPORT_DIR to write.")],
    models: Annotated[str | None, typer.Option(help="Comma-separated model names, a variant as NAME@key=value (default: the standard models for the data's kind, see `itemvec models`).")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    reuse: Annotated[bool, typer.Option("--reuse/--retrain", help="Reuse finished runs with the same settings.")] = True,
    tune: Annotated[int, typer.Option(help="Try N settings per model on the validation part (the first: as configured) and train the best.", min=0)] = 0,
    tune_on: Annotated[str | None, typer.Option(help="The validation figure --tune maximises (rmse, mae: minimises); default ndcg_at_10 (rmse for explicit-rating models).")] = None,
    progress: Progress = True,
) -> None:
    """Train (or reuse) each model and evaluate all on the same test part; writes report.md/html and
    metrics.json. Product-pair data gets the item-item models, ratings data the user-item models. With
    --tune N, each model's settings are first chosen on the validation part (never on test)."""
    from itemvec import registry
    from itemvec.config import parse_sets
    from itemvec.errors import InputError
    from itemvec.runs import compare, parse_model_spec, refusals, table_lines

    kind = registry.data_kind(data)
    names = [m.strip() for m in models.split(",") if m.strip()] if models else registry.default_models(kind)
    for name in names:
        parse_model_spec(name, kind)  # unknown names fail before any training
    refused = refusals(data, names)  # a model that cannot take this data's size: named, refused; default, left out
    if refused and models:
        raise InputError(next(iter(refused.values())))
    for name, reason in refused.items():
        typer.echo(f"[{name}] left out: {reason}", err=True)
    names = [name for name in names if name not in refused]
    rows = compare(data, names, out, config_file=config, sets=parse_sets(set_), progress=progress, reuse=reuse,
                   log=lambda m: typer.echo(m, err=True), tune=tune, tune_on=tune_on)
    for line in table_lines(rows):
        typer.echo(line)
    typer.echo(f"report: {out / 'report.html'} (also report.md, metrics.json)")


@app.command("similar")
def similar_command(
    run_dir: Annotated[Path, typer.Argument(help="A RUN_DIR written by `itemvec train`.")],
    asins: Annotated[list[str], typer.Argument(help="Product ids (ASINs).")],
    k: Annotated[int, typer.Option("-k", help="How many neighbours.")] = 10,
    data: Annotated[Path | None, typer.Option(help="DATA_DIR (default: the one it was trained on).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the nearest products of each ASIN, with titles and scores."""
    import json

    from itemvec.runs import similar

    results = similar(run_dir, asins, k, data)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for result in results:
        note = "" if result["seen_in_training"] else "  (not in the training graph: no neighbours)"
        typer.echo(f"{result['asin']}  {result['title'] or ''}{note}")
        for rank, n in enumerate(result["similar"], 1):
            typer.echo(f"  {rank:>3}. {n['asin']}  {n['score']:+.4f}  {n['title'] or ''}")


@app.command("recommend")
def recommend_command(
    run_dir: Annotated[Path, typer.Argument(help="A RUN_DIR of a user-item model (trained on `prepare ratings` data).")],
    user: Annotated[list[str], typer.Option("--user", help="User id as in the ratings file (repeatable).")],
    k: Annotated[int, typer.Option("-k", help="How many items.")] = 10,
    data: Annotated[Path | None, typer.Option(help="DATA_DIR (default: the one it was trained on).")] = None,
    include_seen: Annotated[bool, typer.Option("--include-seen", help="Keep items the user rated in train.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the top items for each user that they have not rated in train, with titles and scores."""
    import json

    from itemvec.runs import recommend

    results = recommend(run_dir, user, k, data, include_seen=include_seen)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for result in results:
        note = ("  (no train ratings: the most popular items)" if result["popularity_ranking"] else
                "" if result["seen_in_training"] else "  (no train ratings: ranked from the user's features)")
        typer.echo(f"user {result['user']}  ({result['train_items']} items rated in train){note}")
        for rank, r in enumerate(result["recommendations"], 1):
            typer.echo(f"  {rank:>3}. {r['item']}  {r['score']:+.4f}  {r['title'] or ''}")


@app.command("export")
def export_command(
    run_dir: Annotated[Path, typer.Argument(help="A RUN_DIR written by `itemvec train`.")],
    out: Annotated[Path, typer.Option(help="The file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="word2vec, word2vec-binary or parquet.")] = "word2vec",
    users: Annotated[bool, typer.Option("--users", help="The user vectors of a user-item run.")] = False,
    context: Annotated[bool, typer.Option("--context", help="Add the context vectors (keys ID#context).")] = False,
    data: Annotated[Path | None, typer.Option(help="DATA_DIR (default: the one it was trained on).")] = None,
) -> None:
    """Write a run's learned vectors, keyed by the original ids, for gensim, pyarrow or polars."""
    from itemvec.export import export_run

    result = export_run(run_dir, fmt, out, data_dir=data, users=users, context=context)
    typer.echo(f"wrote {result['path']}: {result['count']:,} {result['vectors']} vectors of dimension "
               f"{result['dim']} ({result['format']}; {result['model']} scores by its {result['rule']} rule)")


@app.command("index")
def index_command(
    run_dir: Annotated[Path, typer.Argument(help="A RUN_DIR written by `itemvec train`.")],
    backend: Annotated[str, typer.Option(help="hnsw (a graph) or ivf (k-means lists scanned exactly); faiss "
                                               "means ivf.")] = "faiss",
    m: Annotated[int, typer.Option("--m", help="HNSW: links per node.")] = 32,
    ef_construction: Annotated[int, typer.Option(help="HNSW: build breadth.")] = 200,
    ef_search: Annotated[int, typer.Option(help="HNSW: search breadth (recall against speed).")] = 64,
    nlist: Annotated[int, typer.Option(help="IVF: lists (0: the power of two nearest 8√items).")] = 0,
    nprobe: Annotated[int, typer.Option(help="IVF: lists searched per query (0: 3/256 of them, at least 16).")] = 0,
) -> None:
    """Build a nearest-neighbour index beside the run's weights; `similar`, `recommend` and `serve` use it."""
    from itemvec.runs import index_run

    structure = {"faiss": "ivf", "faiss-ivf": "ivf", "faiss-hnsw": "hnsw"}.get(backend, backend)
    info = index_run(run_dir, backend=structure, m=m, ef_construction=ef_construction, ef_search=ef_search,
                     nlist=nlist, nprobe=nprobe)
    for search, entry in info["searches"].items():
        typer.echo(f"{search}: {entry['vectors']:,} vectors of dimension {entry['dim']} in "
                   f"{run_dir / entry['file']} ({entry['bytes'] / 1e6:.1f} MB, {entry['build_seconds']:.1f} s)")


@app.command("serve")
def serve_command(
    paths: Annotated[list[Path], typer.Argument(help="REPORT_DIRs (every finished run in runs/) or RUN_DIRs.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Serve the models behind an HTTP API (/v1/..., docs at /docs) and a page that compares them per product."""
    from itemvec.serve.app import serve

    serve(paths, host=host, port=port, log=lambda line: typer.echo(line, err=True))


@app.command("models")
def models_command() -> None:
    """List the registered models: item-item (product pairs) and user-item (ratings)."""
    from itemvec import registry
    from itemvec.evaluate.protocol import PROTOCOLS

    for kind_protocol in PROTOCOLS:
        typer.echo(f"{kind_protocol.model_words} ({kind_protocol.sources}):")
        for name in registry.names(kind_protocol.kind):
            typer.echo(f"  {name}")


def main() -> None:
    """Entry point: user errors print one line to stderr and exit 2, without a traceback; SIGINT exits 130
    and SIGTERM 143, with one line saying what was kept (itemvec.guard)."""
    from itemvec.guard import run_guarded

    # typer returns the code of an Exit raised inside a command, e.g. 130 for a KeyboardInterrupt.
    code = run_guarded(lambda: app(standalone_mode=False))
    from itemvec.distributed import leave_if_joined

    leave_if_joined(code)  # a rank of a distributed run: no interpreter teardown of the gloo group
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
