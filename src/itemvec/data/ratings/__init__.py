"""`itemvec prepare ratings`: explicit ratings → a ratings DATA_DIR (users, items, seeded train/validation/test).

The modules, in the order the data goes through them:

- ``formats``: the input formats (``--format``): which files each one reads, and the parser of each file kind
  (rating rows, and the items' and users' side files) into a Catalogue. ``fields`` holds the checks of one
  field that they share (a rating, a timestamp, a CSV row, a year in a title) and ``Reject``, a bad row.
- ``catalogue``: what reading collects (id maps, rating rows, side fields); dense ids; one rating per
  (user, item).
- ``split``: the train / validation / test split (``--split``).
- ``write``: the files of the DATA_DIR and their column types.
- ``prepare``: ``prepare_ratings``, the pipeline from the input files to the written DATA_DIR, and its manifest.

The names other code uses are importable from here; reading a ratings DATA_DIR is ``RatingsDir``
(itemvec.data.store).
"""

from __future__ import annotations

from itemvec.data.ratings.catalogue import Catalogue, latest_unique
from itemvec.data.ratings.fields import title_year
from itemvec.data.ratings.formats import (
    FORMATS,
    ML100K_GENRES,
    SCALES,
    parse_columns,
    read_movies_csv,
    read_rating_lines,
    read_u_item,
    read_u_user,
)
from itemvec.data.ratings.prepare import DEFAULT_THRESHOLD, prepare_ratings, ratings_summary_lines
from itemvec.data.ratings.split import (
    DEFAULT_TEST_FRACTION,
    DEFAULT_VALIDATION_FRACTION,
    PARTS,
    SPLITS,
    split_ratings,
)
from itemvec.data.ratings.write import age_bucket, catalogue_tables, ratings_table
from itemvec.data.store import RatingsDir

# The former private names of these, which tests/test_bad_records.py and tests/test_fuzz_readers.py still use.
_Catalogue, _tables = Catalogue, catalogue_tables
_read_u_item, _read_u_user, _read_movies_csv = read_u_item, read_u_user, read_movies_csv

__all__ = [
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_THRESHOLD",
    "DEFAULT_VALIDATION_FRACTION",
    "FORMATS",
    "ML100K_GENRES",
    "PARTS",
    "SCALES",
    "SPLITS",
    "Catalogue",
    "RatingsDir",
    "age_bucket",
    "catalogue_tables",
    "latest_unique",
    "parse_columns",
    "prepare_ratings",
    "ratings_summary_lines",
    "ratings_table",
    "read_movies_csv",
    "read_rating_lines",
    "read_u_item",
    "read_u_user",
    "split_ratings",
    "title_year",
]
