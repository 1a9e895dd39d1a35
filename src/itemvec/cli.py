"""The `itemvec` command: a thin Typer app that parses arguments, calls the library and prints a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from itemvec.errors import ItemvecError

app = typer.Typer(help="Item embeddings and recommendations from product graphs, sessions and ratings.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
synth_app = typer.Typer(help="Generate synthetic data with planted structure.", no_args_is_help=True)
prepare_app = typer.Typer(help="Turn raw files into a prepared DATA_DIR.", no_args_is_help=True)
app.add_typer(synth_app, name="synth")
app.add_typer(prepare_app, name="prepare")

Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")]
Seed = Annotated[int, typer.Option(help="Random seed (same seed, same output).")]


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


SplitOption = Annotated[str, typer.Option(help="TRAIN,VAL,TEST fractions.")]
MaxBad = Annotated[float, typer.Option(help="Fail when more than this fraction of records is rejected.")]


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
) -> None:
    """Stream Amazon product metadata into products, weighted pairs and a seeded split."""
    from itemvec.data.pairs import parse_split, parse_weights
    from itemvec.data.prepare import prepare_amazon

    manifest = prepare_amazon(files, out, weights=parse_weights(weights), split=parse_split(split), seed=seed,
                              max_bad_fraction=max_bad_fraction, progress=progress)
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


def main() -> None:
    """Entry point: user errors print one line to stderr and exit 2, without a traceback."""
    try:
        app(standalone_mode=False)
    except ItemvecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; no partial outputs were left", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
