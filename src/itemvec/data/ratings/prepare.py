"""``prepare_ratings``, the pipeline of `itemvec prepare ratings` from end to end: read the files of a format into a
Catalogue (metadata first), check the rejects, keep one rating per (user, item), give dense ids, split, build the
manifest and write the DATA_DIR; ``ratings_summary_lines`` is its summary for the CLI.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from itemvec.arrays import unique_sorted
from itemvec.data.ratings.catalogue import Catalogue, id_order, latest_unique
from itemvec.data.ratings.formats import (
    SCALES,
    input_files,
    parse_columns,
    parse_delimiter,
    read_rating_lines,
)
from itemvec.data.ratings.split import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VALIDATION_FRACTION,
    PARTS,
    SPLITS,
    split_ratings,
)
from itemvec.data.ratings.write import catalogue_tables, write_ratings_dir
from itemvec.data.readers import DEFAULT_MAX_BAD_FRACTION, ReadReport, log_stderr, read_lines
from itemvec.errors import ConfigError, InputError
from itemvec.outputs import check_output

DEFAULT_THRESHOLD = 4.0


def prepare_ratings(path: str | Path, out: str | Path, *, fmt: str, split: str | None = None,
                    split_files: Sequence[str] | str | None = None, test_fraction: float = DEFAULT_TEST_FRACTION,
                    validation_fraction: float | None = None, threshold: float = DEFAULT_THRESHOLD, seed: int = 0,
                    metadata: str | Path | None = None, columns: dict[str, str] | str | None = None,
                    delimiter: str = ",", max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION,
                    progress: bool = True, log: Callable[[str], None] = log_stderr) -> dict:
    """Read ratings of format ``fmt`` at ``path`` and write a ratings DATA_DIR at ``out``; returns the manifest.

    ``split`` defaults to "files" when ``split_files`` is given, else "random". ``validation_fraction`` defaults
    to 0.05 for random / temporal and 0 for files.
    """
    started = time.perf_counter()
    path = Path(path)
    if isinstance(split_files, str):
        split_files = [s.strip() for s in split_files.split(",") if s.strip()]
    split = split or ("files" if split_files else "random")
    if split not in SPLITS:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if validation_fraction is None:
        validation_fraction = 0.0 if split == "files" else DEFAULT_VALIDATION_FRACTION
    for name, value in (("--test-fraction", test_fraction), ("--validation-fraction", validation_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name}: expected a fraction in [0, 1), got {value}")
    if not isinstance(columns, dict):
        columns = parse_columns(columns)
    delimiter = parse_delimiter(delimiter)
    rating_files, side_files = input_files(path, fmt, split, split_files, metadata)
    inputs = [path, *(p for p, _ in rating_files), *(p for p, _ in side_files)]
    check_output(out, "data", inputs=inputs)  # before the long read: never after it
    scale = SCALES[fmt]

    cat = Catalogue()
    # Metadata first: its items and users join the catalogue even when nobody rated them.
    meta_report = ReadReport()
    for side_path, reader in side_files:
        reader(read_lines([side_path], meta_report, progress, log), cat, meta_report)
    if side_files:
        meta_report.check(max_bad_fraction)
    report = ReadReport()
    part_of = {str(p): code for p, code in rating_files}
    read_rating_lines(read_lines([p for p, _ in rating_files], report, progress, log), fmt, cat, report, part_of,
                      columns=columns, delimiter=delimiter)
    report.check(max_bad_fraction)
    if report.records_parsed == 0:
        raise InputError(f"{', '.join(str(p) for p, _ in rating_files)}: no ratings found")

    rows = cat.rows.arrays()
    keep = latest_unique(rows["user"], rows["item"], rows["timestamp"], len(cat.items))
    duplicates = len(rows["user"]) - len(keep)
    user_rank, item_rank = id_order(cat.users.keys()), id_order(cat.items.keys())
    user = user_rank[rows["user"][keep]].astype(np.int32)
    item = item_rank[rows["item"][keep]].astype(np.int32)
    rating, timestamp, file_part = rows["rating"][keep], rows["timestamp"][keep], rows["part"][keep]
    del rows, keep
    # One canonical row order (user, time, item): the split and the files do not depend on the input's order.
    order = np.lexsort((item, timestamp, user))
    user, item, rating, timestamp, file_part = (a[order] for a in (user, item, rating, timestamp, file_part))
    part = split_ratings(user, timestamp, split, test_fraction=test_fraction,
                         validation_fraction=validation_fraction, seed=seed, file_part=file_part)
    rating_min, rating_max = scale if scale is not None else (float(rating.min()), float(rating.max()))
    users_table, items_table = catalogue_tables(cat, user_rank, item_rank)

    split_info: dict = {"kind": split, "seed": seed, "validation_fraction": validation_fraction}
    if split == "files":
        split_info["files"] = {"train": str(rating_files[0][0]), "test": str(rating_files[1][0])}
    else:
        split_info["test_fraction"] = test_fraction
    examples = [e for reason in sorted(report.rejected_examples) for e in report.rejected_examples[reason]]
    manifest = {
        "kind": "ratings",
        "format": fmt,
        "source": {"ratings": [str(p) for p, _ in rating_files], "metadata": [str(p) for p, _ in side_files]},
        "n_users": users_table.num_rows,
        "n_items": items_table.num_rows,
        "n_ratings": int(len(user)),
        "n_users_rated": int(len(unique_sorted(user))),
        "n_items_rated": int(len(unique_sorted(item))),
        "rating_min": rating_min,
        "rating_max": rating_max,
        "threshold": threshold,
        "split": split_info,
        "parts": {name: int(np.count_nonzero(part == code)) for code, name in enumerate(PARTS)},
        "rows_read": report.records_read,
        "rows_parsed": report.records_parsed,
        "rejected": dict(sorted(report.rejected.items())),
        "rejected_examples": examples,
        "duplicates": duplicates,
        "header_lines": cat.header_lines,
        "blank_lines": report.blank_lines,
        "files": report.files,
        "truncated_files": report.truncated_files,
        "metadata": {
            "files": meta_report.files,
            "records_read": meta_report.records_read,
            "records_parsed": meta_report.records_parsed,
            "rejected": dict(sorted(meta_report.rejected.items())),
            "rejected_examples": [e for r in sorted(meta_report.rejected_examples)
                                  for e in meta_report.rejected_examples[r]],
            "fields_nulled": dict(sorted(meta_report.fields_nulled.items())),
            "ids_rejected": dict(sorted(meta_report.ids_rejected.items())),
            "duplicates": cat.metadata_duplicates,
            "items_with_metadata": len(cat.item_side),
            "users_with_metadata": len(cat.user_side),
        },
    }
    write_ratings_dir(out, manifest, users_table, items_table, part, user, item, rating, timestamp, started=started,
                      inputs=inputs)
    return manifest


def ratings_summary_lines(manifest: dict) -> list[str]:
    """A short human summary of a ratings manifest, for the CLI."""
    parts = manifest["parts"]
    rejected = sum(manifest["rejected"].values())
    split = manifest["split"]
    lines = [
        f"rows read {manifest['rows_read']:,} = parsed {manifest['rows_parsed']:,} + rejected {rejected:,}"
        + (f" {manifest['rejected']}" if rejected else ""),
        f"ratings {manifest['n_ratings']:,} (duplicates dropped {manifest['duplicates']:,}), users "
        f"{manifest['n_users']:,}, items {manifest['n_items']:,} ({manifest['n_items_rated']:,} rated), scale "
        f"{manifest['rating_min']:g}-{manifest['rating_max']:g}, threshold {manifest['threshold']:g}",
        f"split {split['kind']} (seed {split['seed']}): train {parts['train']:,}, validation "
        f"{parts['validation']:,}, test {parts['test']:,}",
        f"{manifest['seconds']:.1f} s, peak memory {manifest['peak_rss_mb']:.0f} MB",
    ]
    meta_rejected = sum(manifest["metadata"]["rejected"].values())
    if meta_rejected:
        lines.insert(1, f"metadata records rejected {meta_rejected:,} {manifest['metadata']['rejected']}")
    if manifest.get("truncated_files"):
        lines.append(f"truncated inputs: {manifest['truncated_files']}")
    return lines
