"""`prepare sessions`: the four formats made in code, co-occurrence weights, the split, training sequences cut at
held-out pairs, attributes, bad rows, the CLI, and the real samples when ../shared/data is present."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itemvec.data.pairs import pair_keys
from itemvec.data.sessions import (
    FORMATS,
    Sessions,
    cut_at_pairs,
    load_sequences,
    prepare_sessions,
    read_attributes,
    read_sessions,
    session_pairs,
)
from itemvec.data.store import DataDir
from itemvec.errors import ConfigError, InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def random_sessions(n_sessions=150, n_items=120, seed=0, max_length=8):
    """``[(session id, [item ids in time order])]`` with integer-string ids and some repeated clicks."""
    rng = np.random.default_rng(seed)
    sessions = []
    for s in range(n_sessions):
        length = int(rng.integers(1, max_length + 1))
        items = [str(100 + int(i)) for i in rng.integers(0, n_items, length)]
        if length > 2 and s % 7 == 0:
            items[2] = items[1]  # a repeated click
        sessions.append((str(1000 + s), items))
    return sessions


def write_format(path: Path, fmt: str, sessions, seed=0, gz=False) -> Path:
    """Write ``sessions`` in the exact layout of ``fmt``; session formats get their rows shuffled, so only the
    time columns give the order."""
    rng = np.random.default_rng(seed)
    if fmt == "s3rec":
        lines = [f"{sid} {' '.join(items)}" for sid, items in sessions]
    elif fmt == "sasrec":
        # Users interleave (round robin); each user's lines stay in time order.
        lines, step = [], 0
        while any(step < len(items) for _, items in sessions):
            lines += [f"{sid} {items[step]}" for sid, items in sessions if step < len(items)]
            step += 1
    elif fmt == "diginetica":
        rows = []
        for sid, items in sessions:
            for k, item in enumerate(items):
                # The date is the primary key: timeframe restarts low on each new day.
                day = date(2016, 5, 1) + timedelta(days=k // 3)
                rows.append(f"{sid};NA;{item};{100 * (k % 3) + 7};{day.isoformat()}")
        lines = ["session_id;user_id;item_id;timeframe;eventdate"] + [rows[i] for i in rng.permutation(len(rows))]
    elif fmt == "yoochoose":
        rows = [f"{sid}\t{item}\t{1396437466.94 + 30.5 * k + int(sid):.3f}"
                for sid, items in sessions for k, item in enumerate(items)]
        lines = ["SessionId\tItemId\tTime"] + [rows[i] for i in rng.permutation(len(rows))]
    else:
        raise AssertionError(fmt)
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def decoded(ids, sessions: Sessions) -> dict[str, list[str]]:
    asins = ids.keys()
    return {name: [asins[i] for i in sessions.items[sessions.offsets[k]:sessions.offsets[k + 1]]]
            for k, name in enumerate(sessions.names)}


def slow_pair_counts(sessions, window) -> tuple[Counter, int]:
    counts, self_pairs = Counter(), 0
    for _, items in sessions:
        for i in range(len(items)):
            for j in range(i + 1, min(i + window, len(items) - 1) + 1):
                if items[i] == items[j]:
                    self_pairs += 1
                else:
                    counts[tuple(sorted((items[i], items[j])))] += 1
    return counts, self_pairs


def make_sessions(lists: list[list[int]]) -> Sessions:
    offsets = np.zeros(len(lists) + 1, np.int64)
    np.cumsum([len(x) for x in lists], out=offsets[1:])
    flat = np.array([i for x in lists for i in x], np.int32)
    return Sessions([f"s{k}" for k in range(len(lists))], flat, offsets)


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_parses_into_the_sessions_in_order(tmp_path, fmt):
    sessions = random_sessions(60, 50, seed=1)
    path = write_format(tmp_path / f"{fmt}.txt", fmt, sessions, gz=fmt == "yoochoose")
    ids, got, report, state = read_sessions([path], fmt, progress=False)
    assert decoded(ids, got) == dict(sessions)
    if fmt in ("s3rec", "sasrec"):
        assert got.names == [sid for sid, _ in sessions]
    else:  # rows were shuffled: sessions come in order of first appearance in the file
        text = gzip.decompress(path.read_bytes()).decode() if fmt == "yoochoose" else path.read_text()
        first_column = [line.replace(";", "\t").split("\t")[0] for line in text.splitlines()[1:]]
        assert got.names == list(dict.fromkeys(first_column))
    events = sum(len(items) for _, items in sessions)
    assert len(got.items) == events and got.items.dtype == np.int32 and got.offsets.dtype == np.int64
    expected_records = len(sessions) if fmt == "s3rec" else events
    assert report.records_read == report.records_parsed == expected_records
    assert state["header_lines"] == (1 if fmt in ("diginetica", "yoochoose") else 0)


def test_session_formats_order_by_time_and_keep_file_order_on_ties(tmp_path):
    yoo = tmp_path / "y.txt"
    yoo.write_text("SessionId\tItemId\tTime\n7\t3\t20.5\n7\t1\t10\n7\t2\t20.5\n8\t9\t2014-04-07T10:51:09.277Z\n"
                   "8\t4\t2014-04-07T10:51:08Z\n")
    ids, got, _, _ = read_sessions([yoo], "yoochoose", progress=False)
    assert decoded(ids, got) == {"7": ["1", "3", "2"], "8": ["4", "9"]}
    dig = tmp_path / "d.csv"
    # Columns in another order: the header names them.
    dig.write_text("eventdate;itemId;sessionId;timeframe;userId\n2016-05-02;5;1;10;NA\n2016-05-01;6;1;900;NA\n"
                   "2016-05-01;7;1;100;NA\n")
    ids, got, _, _ = read_sessions([dig], "diginetica", progress=False)
    assert decoded(ids, got) == {"1": ["7", "6", "5"]}


def test_several_files_continue_the_same_sessions(tmp_path):
    a = write_format(tmp_path / "a.txt", "sasrec", [("1", ["10", "11"]), ("2", ["12", "13"])])
    b = write_format(tmp_path / "b.txt", "sasrec", [("1", ["14"]), ("3", ["10", "15"])])
    ids, got, _, _ = read_sessions([a, b], "sasrec", progress=False)
    assert decoded(ids, got) == {"1": ["10", "11", "14"], "2": ["12", "13"], "3": ["10", "15"]}


# ---------------------------------------------------------------- pairs and weights


def test_weights_count_cooccurrences_in_both_directions():
    # ids: 0 1 2 1 1 3 | 4 0 1 | 5
    sessions = make_sessions([[0, 1, 2, 1, 1, 3], [4, 0, 1], [5]])
    pairs, counts = session_pairs(sessions, 6, window=1)
    got = {(int(a), int(b)): float(w) for a, b, w in zip(pairs.item_a, pairs.item_b, pairs.weight, strict=True)}
    assert got == {(0, 1): 2.0, (1, 2): 2.0, (1, 3): 1.0, (0, 4): 1.0}
    assert counts == {"cooccurrences": 7, "self_pairs_dropped": 1}
    pairs2, counts2 = session_pairs(sessions, 6, window=2)
    got2 = {(int(a), int(b)): float(w) for a, b, w in zip(pairs2.item_a, pairs2.item_b, pairs2.weight, strict=True)}
    assert got2 == {(0, 1): 2.0, (1, 2): 3.0, (1, 3): 2.0, (0, 2): 1.0, (0, 4): 1.0, (1, 4): 1.0}
    assert counts2["self_pairs_dropped"] == 2 and (pairs2.relations == 1).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), min_size=1, max_size=9), min_size=1, max_size=12),
       st.integers(1, 4))
def test_weights_match_a_slow_count(lists, window):
    pairs, counts = session_pairs(make_sessions(lists), 10, window)
    expected, self_pairs = slow_pair_counts([(None, x) for x in lists], window)
    got = {(int(a), int(b)): float(w) for a, b, w in zip(pairs.item_a, pairs.item_b, pairs.weight, strict=True)}
    assert got == {k: float(v) for k, v in expected.items()}
    assert counts["self_pairs_dropped"] == self_pairs
    assert (pairs.item_a < pairs.item_b).all()


# ---------------------------------------------------------------- training sequences


def slow_cut(lists, held_out: set, window: int):
    """Greedy by end over each session: cut before j when (i, j) is held out and no cut separates them yet."""
    pieces, cuts = [], 0
    for items in lists:
        cut_points = []
        for j in range(len(items)):
            for i in range(max(0, j - window), j):
                if tuple(sorted((items[i], items[j]))) in held_out and not any(i < c <= j for c in cut_points):
                    cut_points.append(j)
                    cuts += 1
        bounds = [0, *cut_points, len(items)]
        pieces += [items[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b - a >= 2]
    return pieces, cuts


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.integers(0, 7), min_size=1, max_size=10), min_size=1, max_size=10),
       st.sets(st.tuples(st.integers(0, 7), st.integers(0, 7)).filter(lambda t: t[0] < t[1]), max_size=12),
       st.integers(1, 3))
def test_cut_at_pairs_separates_every_held_out_pair(lists, held_out, window):
    sessions = make_sessions(lists)
    keys = np.sort(np.array([a * 8 + b for a, b in held_out], np.int64))
    pieces, counts = cut_at_pairs(sessions, keys, 8, window)
    got = [pieces.items[pieces.offsets[k]:pieces.offsets[k + 1]].tolist() for k in range(len(pieces))]
    expected, cuts = slow_cut(lists, held_out, window)
    assert got == expected and counts["cuts"] == cuts
    for piece in got:  # no held-out pair within `window` steps in any piece
        assert len(piece) >= 2
        for i in range(len(piece)):
            for j in range(i + 1, min(i + window, len(piece) - 1) + 1):
                assert tuple(sorted((piece[i], piece[j]))) not in held_out
    assert counts["items_kept"] == len(pieces.items) and counts["sequences"] == len(got)


# ---------------------------------------------------------------- the whole prepare


def test_prepare_writes_layout_split_and_sequences(tmp_path):
    sessions = random_sessions(200, 150, seed=2)
    src = write_format(tmp_path / "s.txt", "s3rec", sessions)
    manifest = prepare_sessions(src, tmp_path / "d", fmt="s3rec", seed=4, progress=False)
    data = DataDir(tmp_path / "d")
    for name in ["products.parquet", "id_map.parquet", "pairs.parquet", "manifest.json", "sequences.parquet",
                 "sequences_train.parquet", "split/train.parquet", "split/validation.parquet",
                 "split/test.parquet", "split/test_negatives.parquet", "split/validation_negatives_degree.parquet"]:
        assert (tmp_path / "d" / name).exists(), name
    events = sum(len(x) for _, x in sessions)
    assert manifest["source"] == "sessions" and manifest["format"] == "s3rec" and manifest["window"] == 1
    assert manifest["sessions"] == len(sessions) and manifest["events"] == events
    assert manifest["mean_session_length"] == pytest.approx(events / len(sessions), abs=1e-4)
    assert manifest["n_items"] == len({i for _, x in sessions for i in x})
    assert data.relation_names == ["session"]
    # Weights are the co-occurrence counts.
    asins = data.asins
    pairs = data.pairs()
    got = {tuple(sorted((asins[a], asins[b]))): w for a, b, w in zip(pairs.item_a, pairs.item_b, pairs.weight,
                                                                       strict=True)}
    expected, self_pairs = slow_pair_counts(sessions, 1)
    assert got == {k: float(v) for k, v in expected.items()}
    assert manifest["self_pairs_dropped"] == self_pairs > 0
    # The split partitions the pairs, weights kept.
    n = data.n_items
    parts = [data.pairs(p) for p in ("train", "validation", "test")]
    keys = [set(pair_keys(p.item_a, p.item_b, n).tolist()) for p in parts]
    assert sum(len(k) for k in keys) == len(pairs) == manifest["unique_pairs"]
    assert set().union(*keys) == set(pair_keys(pairs.item_a, pairs.item_b, n).tolist())
    assert sum(float(p.weight.sum()) for p in parts) == pytest.approx(float(pairs.weight.sum()))
    # sequences.parquet holds every session in order; the training ones never hold a held-out pair as neighbours.
    table = pq.read_table(tmp_path / "d" / "sequences.parquet")
    assert table["session"].to_pylist() == [sid for sid, _ in sessions]
    assert [[asins[i] for i in x] for x in table["items"].to_pylist()] == [x for _, x in sessions]
    items, offsets = load_sequences(tmp_path / "d", part="all")
    assert items.dtype == np.int32 and offsets.dtype == np.int64 and offsets[-1] == events
    held_out = keys[1] | keys[2]
    train_items, train_offsets = load_sequences(data)
    assert train_offsets[-1] == len(train_items) == manifest["sequences_train"]["items_kept"]
    assert len(train_offsets) - 1 == manifest["sequences_train"]["sequences"] > 0
    assert (np.diff(train_offsets) >= 2).all()
    neighbours = 0
    for k in range(len(train_offsets) - 1):
        seq = train_items[train_offsets[k]:train_offsets[k + 1]]
        step = pair_keys(seq[:-1], seq[1:], n)[seq[:-1] != seq[1:]]
        assert not set(step.tolist()) & held_out
        neighbours += len(step)
    assert neighbours > 0
    cuts = manifest["sequences_train"]["cuts"]
    # With window 1 there is one cut per consecutive occurrence of a held-out pair.
    assert cuts == sum(v for k, v in expected.items()
                       if pair_keys(np.array([asins.index(k[0])]), np.array([asins.index(k[1])]), n)[0] in held_out)
    assert manifest["records_read"] == manifest["records_parsed"] == len(sessions)


def test_window_two_links_and_cuts_within_two_steps(tmp_path):
    sessions = random_sessions(200, 150, seed=3)
    src = write_format(tmp_path / "s.txt", "yoochoose", sessions)
    manifest = prepare_sessions([src], tmp_path / "d", fmt="yoochoose", window=2, progress=False)
    expected, _ = slow_pair_counts(sessions, 2)
    assert manifest["unique_pairs"] == len(expected) and manifest["window"] == 2
    data = DataDir(tmp_path / "d")
    n = data.n_items
    held_out = set()
    for part in ("validation", "test"):
        p = data.pairs(part)
        held_out |= set(pair_keys(p.item_a, p.item_b, n).tolist())
    items, offsets = load_sequences(tmp_path / "d", "train")
    for k in range(len(offsets) - 1):
        seq = items[offsets[k]:offsets[k + 1]]
        for d in (1, 2):
            a, b = seq[:-d], seq[d:]
            assert not set(pair_keys(a, b, n)[a != b].tolist()) & held_out


def test_attributes_land_in_products(tmp_path):
    sessions = random_sessions(120, 80, seed=5)
    src = write_format(tmp_path / "s.txt", "sasrec", sessions)
    items = sorted({i for _, x in sessions for i in x})
    attributes = {item: [int(item) % 5, 10 + int(item) % 3] for item in items[::2]}
    attributes["999999"] = [1]  # an item no session has
    attributes[items[1]] = []  # given, but empty
    (tmp_path / "attr.json").write_text(json.dumps(attributes))
    manifest = prepare_sessions(src, tmp_path / "d", fmt="sasrec", attributes=tmp_path / "attr.json",
                                progress=False)
    products = DataDir(tmp_path / "d").products().to_pydict()
    assert set(products) == {"id", "asin", "has_metadata", "attributes"}
    for asin, has, attrs in zip(products["asin"], products["has_metadata"], products["attributes"], strict=True):
        assert has == (asin in attributes) and attrs == attributes.get(asin)
    info = manifest["attributes"]
    assert info["entries_not_in_sessions"] == 1 and info["entries_rejected"] == 0
    assert manifest["products_with_metadata"] == info["items_with_attributes"] == sum(products["has_metadata"])
    table = pq.read_table(tmp_path / "d" / "products.parquet")
    kind = table.schema.field("attributes").type
    assert pa.types.is_list(kind) and kind.value_type == pa.int64()
    # Without an attributes file there is no attributes column.
    prepare_sessions(src, tmp_path / "e", fmt="sasrec", progress=False)
    assert "attributes" not in DataDir(tmp_path / "e").products().column_names


def test_bad_attribute_files(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text('{"1": [1, 2], "2": "brand", "3": [1.5]}')
    with pytest.raises(InputError, match="2 of 3 attribute entries rejected"):
        read_attributes(bad)
    attrs, info = read_attributes(bad, max_bad_fraction=1.0)
    assert attrs == {"1": [1, 2]} and info["entries_rejected"] == 2 and "'2'" in info["rejected_examples"][0]
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        read_attributes(bad)
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_attributes(bad)
    with pytest.raises(InputError, match="no such file"):
        read_attributes(tmp_path / "missing.json")


def test_bad_rows_are_counted_with_file_and_line(tmp_path):
    sessions = random_sessions(300, 150, seed=6)
    path = write_format(tmp_path / "y.txt", "yoochoose", sessions)
    lines = path.read_text().splitlines()
    lines[5] = "1\t2"  # too few fields
    lines[9] = "1\t2\tyesterday"  # a bad time
    lines.insert(12, "")  # blank lines are not records
    path.write_text("\n".join(lines) + "\n")
    events = sum(len(x) for _, x in sessions)
    manifest = prepare_sessions(path, tmp_path / "d", fmt="yoochoose", progress=False)
    assert manifest["rejected_by_reason"] == {"bad_fields": 1, "bad_time": 1}
    assert manifest["rejected_examples"]["bad_fields"][0].startswith(f"{path}:6:")
    assert manifest["rejected_examples"]["bad_time"][0].startswith(f"{path}:10:")
    assert manifest["records_read"] == manifest["records_parsed"] + 2 == events
    assert manifest["header_lines"] == 1 and manifest["blank_lines"] == 1
    with pytest.raises(InputError, match="over --max-bad-fraction"):
        prepare_sessions(path, tmp_path / "e", fmt="yoochoose", progress=False, max_bad_fraction=0.0001)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("fmt,line,reason", [
    ("s3rec", "17", "bad_fields"), ("s3rec", "17 12 B00X", "bad_id"), ("sasrec", "1 2 3", "bad_fields"),
    ("sasrec", "u1 2", "bad_id"), ("diginetica", "1;NA;2;abc;2016-05-01", "bad_time"),
    ("diginetica", "1;NA;2;3;May 1", "bad_time"), ("diginetica", "1,NA,2,3,2016-05-01", "bad_fields"),
    ("diginetica", ";NA;2;3;2016-05-01", "bad_id"), ("yoochoose", "1\t2\tnan", "bad_time"),
])
def test_each_kind_of_bad_row(tmp_path, fmt, line, reason):
    path = write_format(tmp_path / "f.txt", fmt, random_sessions(20, 30, seed=7))
    with path.open("a") as handle:
        handle.write(line + "\n")
    _, _, report, _ = read_sessions([path], fmt, progress=False)
    assert dict(report.rejected) == {reason: 1}
    assert report.rejected_examples[reason][0].startswith(f"{path}:{len(path.read_text().splitlines())}:")


def test_wrong_format_empty_and_missing_files_are_one_line_errors(tmp_path):
    path = write_format(tmp_path / "d.csv", "diginetica", random_sessions(30, 30))
    with pytest.raises(InputError, match="most common: bad_fields"):
        prepare_sessions(path, tmp_path / "o", fmt="sasrec", progress=False)
    with pytest.raises(InputError, match="most common: bad_fields"):
        prepare_sessions(path, tmp_path / "o", fmt="yoochoose", progress=False)
    (tmp_path / "h.txt").write_text("SessionId\tItemId\n1\t2\n1\t3\n")
    with pytest.raises(InputError, match="lacks the column"):
        prepare_sessions(tmp_path / "h.txt", tmp_path / "o", fmt="yoochoose", progress=False)
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InputError, match="empty"):
        prepare_sessions(tmp_path / "empty.txt", tmp_path / "o", fmt="s3rec", progress=False)
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(InputError, match="no records"):
        prepare_sessions(tmp_path / "blank.txt", tmp_path / "o", fmt="s3rec", progress=False)
    with pytest.raises(InputError, match="no such file"):
        prepare_sessions(tmp_path / "missing.txt", tmp_path / "o", fmt="s3rec", progress=False)
    (tmp_path / "single.txt").write_text("1 5\n2 6 6\n")
    with pytest.raises(InputError, match="no item pairs"):
        prepare_sessions(tmp_path / "single.txt", tmp_path / "o", fmt="s3rec", progress=False)
    with pytest.raises(ConfigError, match="--format"):
        prepare_sessions(path, tmp_path / "o", fmt="csv", progress=False)
    with pytest.raises(ConfigError, match="--window"):
        prepare_sessions(path, tmp_path / "o", fmt="diginetica", window=0, progress=False)
    with pytest.raises(InputError, match="not a prepared data folder"):
        load_sequences(tmp_path)
    assert not (tmp_path / "o").exists()


def test_prepare_is_deterministic_by_seed(tmp_path):
    src = write_format(tmp_path / "s.txt", "s3rec", random_sessions(150, 100, seed=8))
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        prepare_sessions(src, tmp_path / name, fmt="s3rec", seed=seed, progress=False)
    for name in ("sequences_train.parquet", "split/test.parquet", "split/test_negatives_degree.parquet"):
        assert pq.read_table(tmp_path / "a" / name).equals(pq.read_table(tmp_path / "b" / name))
    assert not pq.read_table(tmp_path / "a/split/train.parquet").equals(
        pq.read_table(tmp_path / "c/split/train.parquet"))


# ---------------------------------------------------------------- CLI end to end


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True)


def test_cli_prepare_sessions_end_to_end(tmp_path):
    sessions = random_sessions(200, 120, seed=9)
    src = write_format(tmp_path / "d.csv", "diginetica", sessions)
    attributes = tmp_path / "attr.json"
    attributes.write_text(json.dumps({"100": [1, 2], "101": [3]}))
    result = run_cli("prepare", "sessions", src, "--format", "diginetica", "--attributes", attributes, "--out",
                     tmp_path / "d", "--window", 2, "--seed", 3, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "sessions 200" in result.stdout and "training sequences" in result.stdout
    assert "unique pairs" in result.stdout
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["sessions"] == 200 and manifest["window"] == 2 and manifest["seed"] == 3
    assert manifest["format"] == "diginetica" and manifest["records_rejected"] == 0
    assert manifest["attributes"]["items_with_attributes"] == 2
    result = run_cli("prepare", "sessions", src, "--format", "nope", "--out", tmp_path / "e")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "--format" in result.stderr
    result = run_cli("prepare", "sessions", tmp_path / "missing.txt", "--format", "s3rec", "--out", tmp_path / "e")
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr


# ---------------------------------------------------------------- real samples (skipped without ../shared/data)

needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present")


def check_real(manifest, out, sessions, items, events):
    assert manifest["records_rejected"] == 0
    assert (manifest["sessions"], manifest["n_items"], manifest["events"]) == (sessions, items, events)
    assert sum(manifest["pairs_per_part"].values()) == manifest["unique_pairs"] > 0
    train_items, offsets = load_sequences(out)
    assert len(train_items) == manifest["sequences_train"]["items_kept"] == offsets[-1]
    all_items, all_offsets = load_sequences(out, "all")
    assert len(all_offsets) == sessions + 1 and len(all_items) == events


@needs_shared
def test_real_s3rec_beauty_with_attributes(tmp_path):
    root = SHARED / "sequences" / "s3rec"
    manifest = prepare_sessions(root / "Beauty.txt", tmp_path / "d", fmt="s3rec",
                                attributes=root / "Beauty_item2attributes.json", progress=False)
    check_real(manifest, tmp_path / "d", 22363, 12101, 198502)
    assert manifest["attributes"]["entries_rejected"] == 0
    assert manifest["products_with_metadata"] == manifest["attributes"]["items_with_attributes"] > 0.9 * 12101


@needs_shared
def test_real_sasrec_video(tmp_path):
    manifest = prepare_sessions(SHARED / "sequences" / "sasrec" / "Video.txt", tmp_path / "d", fmt="sasrec",
                                progress=False)
    check_real(manifest, tmp_path / "d", 31013, 23715, 287107)
    assert manifest["records_read"] == 287107


@needs_shared
def test_real_diginetica_sample(tmp_path):
    manifest = prepare_sessions(SHARED / "sessions" / "diginetica" / "sample_train-item-views.csv", tmp_path / "d",
                                fmt="diginetica", progress=False)
    check_real(manifest, tmp_path / "d", 2986, 7139, 12391)
    assert manifest["header_lines"] == 1


@needs_shared
def test_real_yoochoose_sample(tmp_path):
    path = SHARED / "sessions" / "yoochoose" / "yoochoose-clicks-100k_train_full.txt"
    manifest = prepare_sessions(path, tmp_path / "d", fmt="yoochoose", progress=False)
    assert manifest["records_rejected"] == 0 and manifest["header_lines"] == 1
    assert (manifest["sessions"], manifest["events"]) == (17794, 70278)
    train_items, offsets = load_sequences(tmp_path / "d")
    assert len(train_items) == offsets[-1] == manifest["sequences_train"]["items_kept"]
