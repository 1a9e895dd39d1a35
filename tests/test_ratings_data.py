"""`prepare ratings`: a MovieLens 100K fixture in its exact format (tab-separated u.data, latin-1 u.item with 19
genre flags, u.user, ua.base/ua.test), ml-latest CSV, generic CSV and Amazon reviews made in code; splits, ids,
side features, bad rows, duplicates, determinism, the reader, the CLI, and the real samples when ../shared/data
is present."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itemvec.data.ratings import (
    ML100K_GENRES,
    RatingsDir,
    age_bucket,
    latest_unique,
    parse_columns,
    prepare_ratings,
    split_ratings,
    title_year,
)
from itemvec.errors import ConfigError, InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ACCENTED = "Cité des enfants perdus, La (1995)"
N_USERS, N_ITEMS = 12, 20


def ml100k_ratings(seed: int = 0) -> list[tuple[int, int, int, int]]:
    """``(user, item, rating, timestamp)`` with distinct (user, item): users 1..11 rate 4..12 items each (user 12
    is in u.user only); items 19 and 20 are never rated."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(1, N_USERS):
        items = rng.choice(np.arange(1, N_ITEMS - 1), size=3 + user, replace=False)
        times = 880_000_000 + np.sort(rng.choice(10_000_000, size=len(items), replace=False))
        rows += [(user, int(i), int(rng.integers(1, 6)), int(t)) for i, t in zip(items, times)]
    return rows


def write_ml100k(folder: Path, seed: int = 0) -> list[tuple[int, int, int, int]]:
    """The ml-100k layout. ua.test: each user's 2 latest ratings (the real one holds 10 per user); u.data is
    ua.base + ua.test in shuffled order."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ml100k_ratings(seed)
    by_user: dict[int, list] = {}
    for row in rows:
        by_user.setdefault(row[0], []).append(row)
    test = [r for user_rows in by_user.values() for r in sorted(user_rows, key=lambda r: r[3])[-2:]]
    base = [r for r in rows if r not in set(test)]

    def lines(rs):
        return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rs)

    order = np.random.default_rng(seed + 1).permutation(len(rows))
    (folder / "u.data").write_text(lines([rows[k] for k in order]))
    (folder / "ua.base").write_text(lines(base))
    (folder / "ua.test").write_text(lines(test))
    items = []
    for item in range(1, N_ITEMS + 1):
        flags = ["0"] * len(ML100K_GENRES)
        flags[1 + item % 18] = "1"  # one genre each, never "unknown"
        title, date = f"Movie {item} (19{70 + item})", f"01-Jan-19{70 + item}"
        if item == 1:
            title, flags = ACCENTED, ["0"] * len(ML100K_GENRES)
            flags[5] = flags[8] = "1"  # Comedy, Drama
        if item == 2:
            title = "No Year In Title"  # the year comes from the release date (1972)
        if item == 3:
            title, date, flags = "unknown", "", ["1"] + ["0"] * 18  # as u.item's movie 267
        items.append(f"{item}|{title}|{date}||http://us.imdb.com/M/title-exact?{item}|" + "|".join(flags))
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    users = [f"{u}|{[15, 20, 30, 40, 47, 52, 60][u % 7]}|{'MF'[u % 2]}|{['student', 'writer', 'other'][u % 3]}|"
             f"{55100 + u:05d}" for u in range(1, N_USERS + 1)]
    (folder / "u.user").write_text("\n".join(users) + "\n")
    return rows


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ml") / "ml-100k"
    rows = write_ml100k(folder)
    return folder, rows


def part_rows(data: RatingsDir, part: str) -> set[tuple[str, str, float, int]]:
    users = data.users()["user_id"].to_pylist()
    items = data.items()["item_id"].to_pylist()
    r = data.ratings(part)
    return {(users[u], items[i], float(x), int(t)) for u, i, x, t in zip(r["user"], r["item"], r["rating"],
                                                                           r["timestamp"])}


def file_rows(path: Path) -> set[tuple[str, str, float, int]]:
    out = set()
    for line in path.read_text().splitlines():
        u, i, r, t = line.split("\t")
        out.add((u, i, float(r), int(t)))
    return out


# ---------------------------------------------------------------- small pieces


def test_age_buckets_and_years():
    assert [age_bucket(a) for a in (None, 7, 17, 18, 24, 25, 34, 35, 44, 45, 49, 50, 55, 56, 90)] == [
        None, "<18", "<18", "18-24", "18-24", "25-34", "25-34", "35-44", "35-44", "45-49", "45-49", "50-55",
        "50-55", "56+", "56+"]
    assert title_year("Toy Story (1995)") == 1995
    assert title_year(ACCENTED) == 1995
    assert title_year("Babylon 5 (1994-1998) ") == 1994
    assert title_year("unknown", "01-Jan-1995") == 1995
    assert title_year("unknown", "") is None and title_year(None) is None


def test_parse_columns():
    assert parse_columns(None) == {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}
    assert parse_columns("user=uid, rating=stars")["rating"] == "stars"
    with pytest.raises(ConfigError, match="--columns"):
        parse_columns("who=uid")


def test_latest_unique_keeps_latest_then_later_row():
    user = np.array([0, 0, 1, 0, 1])
    item = np.array([1, 1, 2, 1, 2])
    ts = np.array([5, 9, 3, 7, 3])
    assert latest_unique(user, item, ts, 3).tolist() == [1, 4]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 50)), min_size=1, max_size=120),
       st.sampled_from(["random", "temporal"]), st.floats(0, 0.9), st.floats(0, 0.9), st.integers(0, 3))
def test_split_properties(rows, kind, test_fraction, validation_fraction, seed):
    user = np.array([u for u, _ in rows])
    ts = np.array([t for _, t in rows])
    part = split_ratings(user, ts, kind, test_fraction=test_fraction, validation_fraction=validation_fraction,
                         seed=seed)
    assert part.shape == user.shape and set(np.unique(part)) <= {0, 1, 2}
    again = split_ratings(user, ts, kind, test_fraction=test_fraction, validation_fraction=validation_fraction,
                          seed=seed)
    assert np.array_equal(part, again)
    if kind == "temporal":
        for u in np.unique(user):
            mine = user == u
            train_t, val_t, test_t = (ts[mine & (part == k)] for k in (0, 1, 2))
            if mine.sum() >= 2 and test_fraction > 0:
                assert len(test_t) >= 1
            assert len(train_t) >= 1
            if len(test_t):
                assert test_t.min() >= max(train_t.max(), val_t.max() if len(val_t) else -1)
            if len(val_t):
                assert val_t.min() >= train_t.max()


# ---------------------------------------------------------------- MovieLens 100K


def test_ml100k_counts_ids_and_side_columns(ml100k, tmp_path):
    folder, rows = ml100k
    manifest = prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", progress=False)
    assert manifest["kind"] == "ratings" and manifest["format"] == "movielens-100k"
    assert (manifest["n_users"], manifest["n_items"], manifest["n_ratings"]) == (N_USERS, N_ITEMS, len(rows))
    assert manifest["n_items_rated"] == N_ITEMS - 2 and manifest["n_users_rated"] == N_USERS - 1
    assert manifest["rows_read"] == len(rows) and manifest["rejected"] == {} and manifest["duplicates"] == 0
    assert (manifest["rating_min"], manifest["rating_max"], manifest["threshold"]) == (1.0, 5.0, 4.0)
    assert sum(manifest["parts"].values()) == len(rows)
    assert manifest["split"] == {"kind": "random", "seed": 0, "validation_fraction": 0.05, "test_fraction": 0.2}
    data = RatingsDir(tmp_path / "d")
    items, users = data.items(), data.users()
    # Dense ids follow the numeric order of the original ids, whatever the row order.
    assert items["item_id"].to_pylist() == [str(i) for i in range(1, N_ITEMS + 1)]
    assert users["user_id"].to_pylist() == [str(u) for u in range(1, N_USERS + 1)]
    assert items.schema.field("item").type == "int32" and items.schema.field("year").type == "int16"
    first = items.slice(0, 3).to_pylist()
    assert first[0]["title"] == ACCENTED and first[0]["year"] == 1995
    assert first[0]["genres"] == ["Comedy", "Drama"]
    assert first[1]["year"] == 1972 and first[2]["genres"] == [] and first[2]["year"] is None
    assert items.slice(3, 1).to_pylist()[0]["genres"] == [ML100K_GENRES[1 + 4 % 18]]
    user1 = users.slice(0, 1).to_pylist()[0]
    assert user1 == {"user": 0, "user_id": "1", "age": 20, "age_bucket": "18-24", "gender": "F",
                     "occupation": "writer", "zip": "55101"}
    everything = set().union(*(part_rows(data, p) for p in ("train", "validation", "test")))
    assert everything == {(str(u), str(i), float(r), t) for u, i, r, t in rows}
    train = data.ratings("train")
    assert {k: v.dtype.name for k, v in train.items()} == {"user": "int32", "item": "int32", "rating": "float32",
                                                           "timestamp": "int64"}


def test_ml100k_files_split_is_exactly_the_files(ml100k, tmp_path):
    folder, _ = ml100k
    manifest = prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", split_files="ua.base,ua.test",
                               progress=False)
    assert manifest["split"]["kind"] == "files" and manifest["parts"]["validation"] == 0
    assert manifest["split"]["files"]["test"].endswith("ua.test")
    data = RatingsDir(tmp_path / "d")
    assert part_rows(data, "train") == file_rows(folder / "ua.base")
    assert part_rows(data, "test") == file_rows(folder / "ua.test")
    assert data.training().validation is None
    prepare_ratings(folder, tmp_path / "v", fmt="movielens-100k", split="files", split_files=["ua.base", "ua.test"],
                    validation_fraction=0.25, progress=False)
    carved = RatingsDir(tmp_path / "v")
    validation = part_rows(carved, "validation")
    assert len(validation) == round(0.25 * len(file_rows(folder / "ua.base")))
    assert part_rows(carved, "train") | validation == file_rows(folder / "ua.base")
    assert part_rows(carved, "test") == file_rows(folder / "ua.test")


@pytest.mark.parametrize("split", ["random", "temporal"])
def test_ml100k_seeded_splits_partition(ml100k, tmp_path, split):
    folder, rows = ml100k
    manifest = prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", split=split, test_fraction=0.25,
                               validation_fraction=0.2, seed=4, progress=False)
    data = RatingsDir(tmp_path / "d")
    parts = {p: part_rows(data, p) for p in ("train", "validation", "test")}
    assert sum(len(v) for v in parts.values()) == len(rows) == manifest["n_ratings"]
    assert set().union(*parts.values()) == {(str(u), str(i), float(r), t) for u, i, r, t in rows}
    assert {p: len(v) for p, v in parts.items()} == manifest["parts"]
    if split == "random":
        assert manifest["parts"]["test"] == round(0.25 * len(rows))
        return
    for user in {u for u, *_ in rows}:
        times = {p: [t for u, _, _, t in v if u == str(user)] for p, v in parts.items()}
        assert times["test"], "every user with 2+ ratings has a test rating"
        assert min(times["test"]) >= max(times["train"] + times["validation"])
        if times["validation"]:
            assert min(times["validation"]) >= max(times["train"])


def test_same_seed_same_bytes(ml100k, tmp_path):
    folder, _ = ml100k
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        prepare_ratings(folder, tmp_path / name, fmt="movielens-100k", seed=seed, progress=False)
    for name in ("users.parquet", "items.parquet", "ratings/train.parquet", "ratings/test.parquet",
                 "ratings/validation.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a/ratings/test.parquet").read_bytes() != (tmp_path / "c/ratings/test.parquet").read_bytes()


def test_bad_rows_are_counted_with_file_and_line(tmp_path):
    folder = tmp_path / "ml-100k"
    rows = write_ml100k(folder)
    u, i, r, t = rows[0]
    extra = [
        "1\t2\t3\n",  # line n+1: too few fields
        f"{u}\t{i}\tfive\t{t}\n",  # not a number
        f"{u}\t{i}\t7\t{t}\n",  # off the 1-5 scale
        "\n",  # blank: neither a row nor a reject
        f"{u}\t{i}\t{(r % 5) + 1}\t{t + 5}\n",  # a later rating of the same pair: replaces it
        f"{u}\t{i}\t1\t{t - 5}\n",  # an earlier one: dropped
    ]
    with open(folder / "u.data", "a") as handle:
        handle.writelines(extra)
    n = len(rows)
    manifest = prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", max_bad_fraction=1.0, progress=False)
    assert manifest["rejected"] == {"bad_fields": 1, "bad_rating": 1, "rating_out_of_range": 1}
    assert manifest["rows_read"] == n + 5 == manifest["rows_parsed"] + sum(manifest["rejected"].values())
    assert manifest["blank_lines"] == 1
    assert manifest["duplicates"] == 2 and manifest["n_ratings"] == n
    examples = manifest["rejected_examples"]
    assert f"{folder / 'u.data'}:{n + 1}: expected 4 tab-separated fields" in examples[0]
    assert any(e.startswith(f"{folder / 'u.data'}:{n + 2}: rating 'five'") for e in examples)
    assert any(e.startswith(f"{folder / 'u.data'}:{n + 3}: rating 7 is outside the scale 1-5") for e in examples)
    data = RatingsDir(tmp_path / "d")
    kept = {(uu, ii): (x, tt) for p in ("train", "validation", "test") for uu, ii, x, tt in part_rows(data, p)}
    assert kept[(str(u), str(i))] == ((r % 5) + 1, t + 5)  # the latest of the three ratings of the pair
    on_disk = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert on_disk["rejected"] == manifest["rejected"] and on_disk["duplicates"] == 2
    # Over the default 1% limit: one line that says where.
    with pytest.raises(InputError, match="rejected"):
        prepare_ratings(folder, tmp_path / "e", fmt="movielens-100k", progress=False)
    assert not (tmp_path / "e").exists()


def test_input_errors(ml100k, tmp_path):
    folder, _ = ml100k
    with pytest.raises(ConfigError, match="--format"):
        prepare_ratings(folder, tmp_path / "d", fmt="netflix")
    with pytest.raises(InputError, match="folder"):
        prepare_ratings(folder / "u.data", tmp_path / "d", fmt="movielens-100k")
    with pytest.raises(InputError, match="no such file"):
        prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", split_files="ua.base,nope.test")
    with pytest.raises(ConfigError, match="--split-files"):
        prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", split="files")
    with pytest.raises(ConfigError, match="--test-fraction"):
        prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", test_fraction=1.5)
    with pytest.raises(InputError, match="no manifest"):
        RatingsDir(tmp_path)
    (tmp_path / "pairs").mkdir()
    (tmp_path / "pairs" / "manifest.json").write_text('{"source": "amazon"}')
    with pytest.raises(InputError, match="not ratings"):
        RatingsDir(tmp_path / "pairs")


def test_interactions_and_features(ml100k, tmp_path):
    folder, rows = ml100k
    prepare_ratings(folder, tmp_path / "d", fmt="movielens-100k", split="temporal", threshold=3.5, progress=False)
    data = RatingsDir(tmp_path / "d")
    train = data.training()
    assert train.validation is not None
    assert len(train) + len(train.validation) + len(data.ratings("test")["user"]) == len(rows)
    assert (train.n_users, train.n_items, train.threshold, train.rating_min, train.rating_max) == (
        N_USERS, N_ITEMS, 3.5, 1.0, 5.0)
    assert train.user.dtype == np.int64 and train.rating.dtype == np.float32
    names = train.item_feature_names
    assert train.item_features.shape == (N_ITEMS, len(names))
    row = train.item_features[0].toarray().ravel()
    assert sorted(names[k] for k in np.flatnonzero(row)) == ["genre:Comedy", "genre:Drama", "year:1990s"]
    assert train.item_features[2].nnz == 0  # "unknown": no genre, no year
    assert set(np.unique(train.item_features.data)) == {1.0}
    user_names = train.user_feature_names
    row = train.user_features[0].toarray().ravel()
    assert sorted(user_names[k] for k in np.flatnonzero(row)) == ["age:18-24", "gender:F", "occupation:writer"]
    assert "gender:M" in user_names and "age:56+" in user_names
    bare = data.interactions("test", features=False)
    assert bare.item_features is None and bare.user_features is None


# ---------------------------------------------------------------- other formats


def test_movielens_csv(tmp_path):
    folder = tmp_path / "ml-latest"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,29,0.5,964982931\r\n"
                                        "2,1,5.0,964983000\r\n2,29,2.5,964983815\r\n")
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n'
        '29,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",Adventure|Drama|Fantasy\n'
        '40,"Cry, the Beloved Country (1995)",Drama\n99,Nothing Here,(no genres listed)\n', encoding="utf-8")
    manifest = prepare_ratings(folder, tmp_path / "d", fmt="movielens-csv", split="temporal", progress=False)
    assert (manifest["n_users"], manifest["n_items"], manifest["n_ratings"]) == (2, 4, 4)
    assert (manifest["rating_min"], manifest["rating_max"]) == (0.5, 5.0) and manifest["header_lines"] == 2
    items = RatingsDir(tmp_path / "d").items().to_pylist()
    assert [i["item_id"] for i in items] == ["1", "29", "40", "99"]
    assert items[1]["title"].startswith("City of Lost Children, The (Cité") and items[1]["year"] == 1995
    assert items[3]["genres"] == [] and items[3]["year"] is None
    assert manifest["parts"] == {"train": 2, "validation": 0, "test": 2}


def test_generic_csv_columns_and_delimiter(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('who;what;stars;when\n"a;1";x;2;\n"a;1";y;10;\nb;x;7;2020-01-02T00:00:00\nb;y;n/a;5\nb;z;3\n')
    manifest = prepare_ratings(path, tmp_path / "d", fmt="csv", columns="user=who,item=what,rating=stars",
                               delimiter=";", max_bad_fraction=1.0, progress=False)
    assert manifest["rejected"] == {"bad_fields": 1, "bad_rating": 1} and manifest["n_ratings"] == 3
    assert (manifest["rating_min"], manifest["rating_max"]) == (2.0, 10.0)
    data = RatingsDir(tmp_path / "d")
    assert data.users()["user_id"].to_pylist() == ["a;1", "b"]
    assert sorted(data.ratings("train")["timestamp"].tolist() + data.ratings("test")["timestamp"].tolist()
                  + data.ratings("validation")["timestamp"].tolist()) == [0, 0, 0]
    manifest = prepare_ratings(path, tmp_path / "t", fmt="csv", columns="user=who,item=what,rating=stars,"
                               "timestamp=when", delimiter=";", max_bad_fraction=1.0, progress=False)
    assert manifest["rejected"] == {"bad_fields": 1, "bad_rating": 1}
    data = RatingsDir(tmp_path / "t")
    stamps = np.concatenate([data.ratings(p)["timestamp"] for p in ("train", "validation", "test")])
    assert sorted(stamps.tolist()) == [0, 0, 1577923200]
    with pytest.raises(InputError, match="no column 'score'"):
        prepare_ratings(path, tmp_path / "e", fmt="csv", columns="user=who,item=what,rating=score", delimiter=";",
                        progress=False)


def amazon_fixture(tmp_path: Path) -> tuple[Path, Path]:
    reviews = [
        {"overall": 5.0, "reviewerID": "U1", "asin": "A1", "unixReviewTime": 1529193600},
        {"overall": 3.0, "reviewerID": "U1", "asin": "A2", "unixReviewTime": 1529193700},
        {"overall": 4.0, "reviewerID": "U2", "asin": "A1", "unixReviewTime": 1529190000},
        {"overall": 2.0, "reviewerID": "U2", "asin": "A1", "unixReviewTime": 1529199999},  # later duplicate
        {"overall": 1.0, "reviewerID": "U3", "asin": "A9", "unixReviewTime": 1529193600},  # not in metadata
        {"overall": 4.0, "asin": "A2", "unixReviewTime": 1},  # no reviewer
        {"overall": 9.0, "reviewerID": "U3", "asin": "A2", "unixReviewTime": 1},  # off the scale
    ]
    lines = [json.dumps(r) for r in reviews] + ['{"overall": 4.0, "reviewerID": "U4", "as']
    path = tmp_path / "reviews.json.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    meta = tmp_path / "meta.json"
    meta.write_text("\n".join([
        json.dumps({"asin": "A1", "title": "Card One", "brand": "Acme", "category": ["Gift Cards", "Restaurants"]}),
        "{'asin': 'A2', 'title': 'Card Two', 'brand': 'Zed', 'categories': [['Gift Cards', 'Travel']]}",
        json.dumps({"asin": "A3", "title": "Never Rated", "brand": "Acme", "category": []}),
    ]) + "\n")
    return path, meta


def test_amazon_reviews_with_metadata(tmp_path):
    reviews, meta = amazon_fixture(tmp_path)
    manifest = prepare_ratings(reviews, tmp_path / "d", fmt="amazon-reviews", metadata=meta, max_bad_fraction=1.0,
                               split="temporal", progress=False)
    assert manifest["rows_read"] == 8 and manifest["rows_parsed"] == 5
    assert manifest["rejected"] == {"missing_field": 1, "parse_error": 1, "rating_out_of_range": 1}
    assert manifest["duplicates"] == 1 and manifest["n_ratings"] == 4
    assert manifest["metadata"]["records_parsed"] == 3
    data = RatingsDir(tmp_path / "d")
    items = {i["item_id"]: i for i in data.items().to_pylist()}
    assert sorted(items) == ["A1", "A2", "A3", "A9"]
    assert items["A1"] == {"item": 0, "item_id": "A1", "title": "Card One", "genres": [],
                                         "year": None, "brand": "Acme", "category": "Gift Cards > Restaurants"}
    assert items["A2"]["category"] == "Gift Cards > Travel" and items["A9"]["title"] is None
    ratings = {(u, i): (r, t) for part in ("train", "validation", "test") for u, i, r, t in part_rows(data, part)}
    assert ratings[("U2", "A1")] == (2.0, 1529199999)
    features = data.interactions("train")
    assert "brand:Acme" in features.item_feature_names and features.user_features is None
    with pytest.raises(ConfigError, match="--metadata"):
        prepare_ratings(tmp_path, tmp_path / "e", fmt="movielens-100k", metadata=meta)


# ---------------------------------------------------------------- CLI end to end


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True)


def test_cli_prepare_ratings_end_to_end(ml100k, tmp_path):
    folder, rows = ml100k
    out = tmp_path / "d"
    result = run_cli("prepare", "ratings", folder, "--format", "movielens-100k", "--out", out, "--split", "files",
                     "--split-files", "ua.base,ua.test", "--validation-fraction", "0.1", "--seed", 2,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert f"rows read {len(rows)}" in result.stdout and "split files (seed 2)" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith(f"wrote {out}")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split"]["seed"] == 2 and manifest["split"]["validation_fraction"] == 0.1
    assert pq.read_table(out / "ratings" / "test.parquet").num_rows == len(file_rows(folder / "ua.test"))
    for bad, message in ((["--format", "nope"], "--format"), (["--format", "csv"], "is a folder"),
                         (["--format", "movielens-100k", "--split", "sideways"], "--split")):
        result = run_cli("prepare", "ratings", folder, *bad, "--out", tmp_path / "e")
        assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
        assert message in result.stderr
    assert not (tmp_path / "e").exists()


# ---------------------------------------------------------------- real samples (skipped without ../shared/data)

needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present")


@needs_shared
def test_real_ml_latest_small(tmp_path):
    manifest = prepare_ratings(SHARED / "movielens" / "ml-latest-small", tmp_path / "d", fmt="movielens-csv",
                               split="temporal", progress=False)
    # 100,836 rating rows; the shared copy has one line with a broken timestamp (line 522), rejected and counted.
    assert manifest["rows_read"] == 100836
    assert manifest["n_ratings"] + sum(manifest["rejected"].values()) + manifest["duplicates"] == 100836
    assert sum(manifest["rejected"].values()) <= 1
    assert (manifest["n_users"], manifest["n_items"]) == (610, 9742)
    assert (manifest["rating_min"], manifest["rating_max"]) == (0.5, 5.0)
    data = RatingsDir(tmp_path / "d")
    train = data.training()
    assert len(train) + len(train.validation) + len(data.ratings("test")["user"]) == manifest["n_ratings"]
    assert set(np.unique(train.rating).tolist()) == {x / 2 for x in range(1, 11)}
    assert "genre:Comedy" in train.item_feature_names and "year:1990s" in train.item_feature_names
    assert Counter(data.ratings("test")["user"].tolist()).keys() == set(range(610))


@needs_shared
def test_real_gift_cards_with_metadata(tmp_path):
    root = SHARED / "amazon2018"
    manifest = prepare_ratings(root / "Gift_Cards_5.json.gz", tmp_path / "d", fmt="amazon-reviews",
                               metadata=root / "meta_Gift_Cards.json.gz", progress=False)
    assert manifest["rows_read"] == 2972 and manifest["rejected"] == {}
    assert manifest["n_ratings"] + manifest["duplicates"] == 2972
    assert manifest["n_items"] >= manifest["n_items_rated"] and manifest["metadata"]["records_read"] == 1547
    items = RatingsDir(tmp_path / "d").items()
    rated = np.unique(np.concatenate([RatingsDir(tmp_path / "d").ratings(p)["item"]
                                      for p in ("train", "validation", "test")]))
    assert items.take(rated)["brand"].null_count < len(rated)
