"""The data pipeline: format fixtures made in code, weights, split, negatives, bad input, determinism, CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from itemvec.data.amazon import parse_line, parse_python_literal
from itemvec.data.io import LineReader
from itemvec.data.pairs import build_pairs, pair_keys, parse_split, parse_weights, split_indices
from itemvec.data.prepare import prepare_amazon, prepare_edges
from itemvec.data.sampling import degree_matched_negatives, uniform_negatives
from itemvec.data.store import DataDir
from itemvec.errors import ConfigError, InputError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def line_2014(asin, related=None, **fields):
    record = {"asin": asin, **fields}
    if related is not None:
        record["related"] = related
    return repr(record)


def line_2018(asin, also_buy=(), also_view=(), **fields):
    return json.dumps({"asin": asin, "also_buy": list(also_buy), "also_view": list(also_view), **fields})


def write(path: Path, lines, gz=False):
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def ring_catalogue(n=60, width=3):
    """Each product lists its next `width` neighbours as also_bought, so every pair is known in advance."""
    lines = []
    for i in range(n):
        partners = [f"P{(i + k) % n:04d}" for k in range(1, width + 1)]
        lines.append(line_2014(f"P{i:04d}", {"also_bought": partners}, title=f"Product {i}", price=float(i)))
    return lines


# ---------------------------------------------------------------- parsing


def test_parse_2014_literal_matches_literal_eval_on_tricky_strings():
    import ast

    tricky = [
        line_2014("A1", {"also_bought": ["B1"]}, title="It's a \"quoted\" title", price=3.5),
        line_2014("A2", title="Caf\u00e9 \\ back\\slash \t tab", description="line\nbreak"),
        line_2014("A3", title="emoji \U0001F600", salesRank={"Toys": 12}, categories=[["A", "B"], ["C"]]),
        "{'asin': 'A4', 'flag': True, 'none': None}",  # not JSON5: falls back to ast.literal_eval
        "{'asin': u'A5', 'title': u'old style'}",
    ]
    for text in tricky:
        assert parse_python_literal(text.encode()) == ast.literal_eval(text)


def test_parse_normalises_both_formats():
    p14 = parse_line(line_2014("X", {"also_bought": ["Y"], "bought_together": ["Z"]}, brand="Acme", price=2.5,
                               salesRank={"Music": 42}, categories=[["Music", "Guitars"]]).encode(), "2014")
    p18 = parse_line(line_2018("X", ["Y"], ["W"], brand="Acme", price="$1,299.99", rank="1,234 in Books (",
                               category=["Books", "Poetry"], description=["a", "b"]).encode(), "2018")
    assert p14.related == {"also_bought": ["Y"], "bought_together": ["Z"]}
    assert (p14.brand, p14.price, p14.sales_rank, p14.sales_rank_category) == ("Acme", 2.5, 42, "Music")
    assert p18.related == {"also_bought": ["Y"], "also_viewed": ["W"]}
    assert (p18.price, p18.sales_rank, p18.sales_rank_category) == (1299.99, 1234, "Books")
    assert p18.categories == [["Books", "Poetry"]] and p18.description == "a\nb"


def test_python_eval_is_never_used():
    payload = "{'asin': __import__('os').system('echo pwned')}"
    from itemvec.data.amazon import RecordError

    with pytest.raises(RecordError):
        parse_python_literal(payload.encode())


# ---------------------------------------------------------------- pairs and weights


def test_weights_sum_over_relation_types_and_mentions_are_not_double_counted(tmp_path):
    lines = [
        line_2014("A", {"bought_together": ["B"], "also_bought": ["B", "C"], "also_viewed": ["B", "D"]}),
        line_2014("B", {"also_bought": ["A"], "buy_after_viewing": ["C"]}),  # repeats A-B also_bought
        line_2014("A", {"also_bought": ["B"]}),  # a duplicate asin line: merged, not double counted
        line_2014("C", {"also_viewed": ["C"]}),  # a self pair: dropped
    ] + ring_catalogue(30)
    manifest = prepare_amazon([write(tmp_path / "m.json", lines)], tmp_path / "d", progress=False)
    data = DataDir(tmp_path / "d")
    pairs = data.pairs()
    asin = data.asins
    weight = {(asin[a], asin[b]): w for a, b, w in zip(pairs.item_a, pairs.item_b, pairs.weight)}
    norm = {tuple(sorted(k)): v for k, v in weight.items()}
    assert norm[("A", "B")] == np.float32(1.2 + 1.0 + 0.5)
    assert norm[("A", "C")] == np.float32(1.0)
    assert norm[("A", "D")] == np.float32(0.5)
    assert ("B", "C") not in norm  # buy_after_viewing has no weight by default
    assert manifest["self_pairs_dropped"] == 1
    assert manifest["duplicate_records_merged"] == 1
    assert manifest["relation_mentions"]["buy_after_viewing"] == 1
    assert (pairs.item_a < pairs.item_b).all()
    # Custom weights give buy_after_viewing pairs (also_bought keeps the ring, so every split part has pairs).
    prepare_amazon([tmp_path / "m.json"], tmp_path / "d2",
                   weights=parse_weights("buy_after_viewing=0.3,also_bought=1"), progress=False)
    d2 = DataDir(tmp_path / "d2")
    p2 = d2.pairs()
    weight2 = {tuple(sorted((d2.asins[a], d2.asins[b]))): w for a, b, w in zip(p2.item_a, p2.item_b, p2.weight)}
    assert weight2[("B", "C")] == np.float32(0.3) and weight2[("A", "B")] == np.float32(1.0)
    # A single pair cannot be split into three parts: refused before anything is written.
    with pytest.raises(InputError, match="too few to split"):
        prepare_amazon([tmp_path / "m.json"], tmp_path / "d3", weights=parse_weights("buy_after_viewing=0.3"),
                       progress=False)
    assert not (tmp_path / "d3").exists()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12), st.integers(0, 2)), min_size=1, max_size=80))
def test_build_pairs_property(mentions):
    names = ["bought_together", "also_bought", "also_viewed"]
    weights = {"bought_together": 1.2, "also_bought": 1.0, "also_viewed": 0.5}
    src = np.array([m[0] for m in mentions], np.int32)
    dst = np.array([m[1] for m in mentions], np.int32)
    rel = np.array([m[2] for m in mentions], np.uint8)
    pairs, stats = build_pairs(src, dst, rel, names, 13, weights)
    expected: dict = {}
    for a, b, r in mentions:
        if a != b:
            expected.setdefault((min(a, b), max(a, b)), set()).add(r)
    got = {(int(a), int(b)): (float(w), int(bits)) for a, b, w, bits in
           zip(pairs.item_a, pairs.item_b, pairs.weight, pairs.relations)}
    assert set(got) == set(expected)
    for key, rels in expected.items():
        assert got[key][0] == pytest.approx(sum(weights[names[r]] for r in rels), abs=1e-6)
        assert got[key][1] == sum(1 << r for r in rels)
    assert stats.self_pairs_dropped == sum(a == b for a, b, _ in mentions)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 500), st.integers(0, 10_000))
def test_split_partitions_the_pairs(n, seed):
    parts = split_indices(n, (0.667, 0.167, 0.166), seed)
    joined = np.concatenate(parts)
    assert len(joined) == n and len(np.unique(joined)) == n
    assert abs(len(parts[0]) - round(0.667 * n)) <= 1
    assert all((np.diff(p) > 0).all() for p in parts)


@settings(max_examples=40, deadline=None)
@given(st.integers(8, 40), st.integers(0, 1000), st.data())
def test_negatives_never_collide(n_items, seed, data):
    rng = np.random.default_rng(seed)
    n_pos = data.draw(st.integers(1, n_items // 2))
    a = rng.integers(0, n_items, n_pos)
    b = (a + rng.integers(1, n_items, n_pos)) % n_items
    known = np.unique(pair_keys(a, b, n_items))
    nodes = np.arange(n_items)
    n_neg = min(len(known), n_items)
    na, nb = uniform_negatives(n_neg, nodes, known, n_items, np.random.default_rng(seed))
    keys = pair_keys(na, nb, n_items)
    assert (na != nb).all() and (na < nb).all()
    assert not np.isin(keys, known).any()
    assert len(np.unique(keys)) == len(keys)
    endpoints = np.concatenate([a, b])
    da, db = degree_matched_negatives(a[:n_neg], b[:n_neg], endpoints, known, n_items,
                                      np.random.default_rng(seed), exclude=keys, nodes=nodes)
    dkeys = pair_keys(da, db, n_items)
    assert (da != db).all() and not np.isin(dkeys, known).any() and not np.isin(dkeys, keys).any()
    assert len(np.unique(dkeys)) == len(dkeys)


def _reference_fill(n, propose, known_sorted, n_items, exclude):
    """The negatives' draw as it was written before the hash set: sorted arrays and searchsorted (the oracle)."""
    def in_sorted(keys, sorted_keys):
        if len(sorted_keys) == 0:
            return np.zeros(len(keys), dtype=bool)
        pos = np.searchsorted(sorted_keys, keys)
        pos[pos == len(sorted_keys)] = 0
        return sorted_keys[pos] == keys

    known_sorted = np.sort(known_sorted)
    exclude = None if exclude is None else np.sort(exclude)
    a, b = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    todo, accepted = np.arange(n), np.empty(0, dtype=np.int64)
    for round_number in range(200):
        if len(todo) == 0:
            break
        ca, cb = propose(todo, round_number)
        keys = pair_keys(ca, cb, n_items)
        ok = (ca != cb) & ~in_sorted(keys, known_sorted) & ~in_sorted(keys, accepted)
        if exclude is not None:
            ok &= ~in_sorted(keys, exclude)
        _, first = np.unique(keys, return_index=True)
        unique_mask = np.zeros(len(keys), dtype=bool)
        unique_mask[first] = True
        ok &= unique_mask
        a[todo[ok]], b[todo[ok]] = ca[ok], cb[ok]
        accepted = np.sort(np.concatenate([accepted, keys[ok]]))
        todo = todo[~ok]
    assert len(todo) == 0
    return np.minimum(a, b).astype(np.int32), np.maximum(a, b).astype(np.int32)


@pytest.mark.parametrize("seed", range(6))
def test_negatives_are_the_draws_of_the_sorted_array_reference(seed, monkeypatch):
    """The hash-set draw accepts exactly what the searchsorted one did, draw for draw: the same negatives from
    the same generator (dense graphs, so that many rounds redraw; self pairs, repeats within a round, exclude)."""
    import itemvec.data.sampling as sampling

    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(12, 300))
    n_pos = int(rng.integers(n_items, n_items * 3))
    a = rng.integers(0, n_items, n_pos)
    b = rng.integers(0, n_items, n_pos)
    a, b = a[a != b], b[a != b]
    known = np.unique(pair_keys(a, b, n_items))
    nodes = np.unique(np.concatenate([a, b]))
    endpoints = np.concatenate([a, b])
    n_neg = min(len(known), n_items) // 2
    got, want = [], []
    for fill, out in ((sampling._fill, got), (_reference_fill, want)):
        monkeypatch.setattr(sampling, "_fill", fill)
        draws = np.random.default_rng(seed + 100)
        ua, ub = uniform_negatives(n_neg, nodes, known, n_items, draws)
        da, db = degree_matched_negatives(a[:n_neg], b[:n_neg], endpoints, known, n_items, draws,
                                          exclude=pair_keys(ua, ub, n_items), nodes=None if seed % 2 else nodes)
        out.extend([ua, ub, da, db])
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_keyset_is_a_set():
    from itemvec.data.keyset import KeySet

    rng = np.random.default_rng(0)
    keys = rng.integers(0, 10**12, 5000)
    s = KeySet(keys[:100])
    s.add(keys[100:])  # grows past its first table
    assert len(s) == len(np.unique(keys)) and len(s.table) > 256
    probe = np.concatenate([keys[::7], rng.integers(0, 10**12, 3000)])
    np.testing.assert_array_equal(s.contains(probe), np.isin(probe, keys))
    assert int(keys[3]) in s and -5 not in s


@pytest.mark.parametrize("order", ["sorted", "shuffled", "swapped"])
def test_pairset_holds_exactly_its_pairs(order):
    """The known pairs as sorted rows: the same answers as the set of their keys, from a prepare's sorted pairs
    (used as they are), shuffled pairs or pairs with the larger item first (sorted by the set itself)."""
    from itemvec.data.keyset import KeySet, PairSet, _accept

    rng = np.random.default_rng(3)
    n_items = 500
    a, b = rng.integers(0, n_items, 4000), rng.integers(0, n_items, 4000)
    a, b = a[a != b], b[a != b]
    keys = np.unique(pair_keys(a, b, n_items))
    lo, hi = keys // n_items, keys % n_items
    if order == "shuffled":
        shuffle = rng.permutation(len(keys))
        lo, hi = lo[shuffle], hi[shuffle]
    elif order == "swapped":
        lo, hi = hi, lo
    lo, hi = lo.astype(np.int32), hi.astype(np.int32)
    known = PairSet(lo, hi, n_items)
    assert (known.cols is hi) == (order == "sorted")  # a prepare's sorted pairs: their own column, no copy
    assert len(known) == len(keys)
    ca, cb = rng.integers(0, n_items, 20000), rng.integers(0, n_items, 20000)
    slots = np.arange(len(ca))
    out_lo, out_hi = np.full(len(ca), -1, np.int32), np.full(len(ca), -1, np.int32)
    left = np.empty(len(ca), np.int64)
    seen = KeySet(capacity=len(ca))
    added, n_left = _accept(ca, cb, np.int64(n_items), known.indptr, known.cols, seen.table, slots, out_lo, out_hi,
                            left)
    drawn = pair_keys(ca, cb, n_items)
    _, first = np.unique(drawn, return_index=True)
    first_draw = np.zeros(len(ca), bool)
    first_draw[first] = True
    want = first_draw & (ca != cb) & ~np.isin(drawn, keys)
    np.testing.assert_array_equal(left[:n_left], slots[~want])
    np.testing.assert_array_equal(out_lo[want], np.minimum(ca, cb)[want])
    np.testing.assert_array_equal(out_hi[want], np.maximum(ca, cb)[want])
    assert (out_lo[~want] == -1).all() and added == len(np.unique(drawn))


def test_prefetch_is_only_a_hint():
    """A kernel that prefetches every element (of several dtypes) computes what it computes without."""
    from numba import njit

    from itemvec.lookup import prefetch

    @njit
    def total(values):
        s = 0.0
        for j in range(len(values)):
            prefetch(values, len(values) - 1 - j)
            s += values[j]
        return s

    for values in (np.arange(1000, dtype=np.int64), np.linspace(0, 1, 777, dtype=np.float32),
                   np.arange(300, dtype=np.int32)[::3]):
        before = values.copy()
        assert total(values) == pytest.approx(float(values.sum()))
        np.testing.assert_array_equal(values, before)


def test_degree_matched_negatives_follow_the_degree_distribution():
    rng = np.random.default_rng(0)
    n = 2000
    # A star-heavy graph: item 0 is in many pairs.
    a = np.concatenate([np.zeros(500, int), rng.integers(1, n, 1500)])
    b = rng.integers(1, n, 2000)
    keep = a != b
    a, b = a[keep], b[keep]
    known = np.unique(pair_keys(a, b, n))
    endpoints = np.concatenate([a, b])
    ua, ub = uniform_negatives(len(a), np.arange(n), known, n, rng)
    da, db = degree_matched_negatives(a, b, endpoints, known, n, rng)
    degree = np.bincount(endpoints, minlength=n)
    pos_mean = degree[np.concatenate([a, b])].mean()
    assert degree[np.concatenate([da, db])].mean() > 0.5 * pos_mean
    assert degree[np.concatenate([ua, ub])].mean() < 0.2 * pos_mean


# ---------------------------------------------------------------- the whole prepare


def test_prepare_writes_layout_and_split_is_consistent(tmp_path):
    src = write(tmp_path / "c.json.gz", ring_catalogue(80, 4), gz=True)
    manifest = prepare_amazon([src], tmp_path / "d", seed=3, progress=False)
    data = DataDir(tmp_path / "d")
    for name in ["products.parquet", "id_map.parquet", "pairs.parquet", "manifest.json", "split/train.parquet",
                 "split/validation.parquet", "split/test.parquet", "split/test_negatives.parquet",
                 "split/test_negatives_degree.parquet", "split/validation_negatives.parquet"]:
        assert (tmp_path / "d" / name).exists(), name
    assert manifest["unique_pairs"] == 80 * 4
    assert sum(manifest["pairs_per_part"].values()) == 320
    keys = [set(pair_keys(p.item_a, p.item_b, data.n_items).tolist()) for p in
            (data.pairs("train"), data.pairs("validation"), data.pairs("test"))]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert set().union(*keys) == set(pair_keys(data.pairs().item_a, data.pairs().item_b, data.n_items).tolist())
    ev = data.eval_pairs("test")
    assert ev.label.sum() == len(ev) // 2
    products = data.products().to_pydict()
    assert products["asin"][:3] == ["P0000", "P0001", "P0002"] and products["price"][5] == 5.0
    assert manifest["records_read"] == manifest["records_parsed"] + manifest["records_rejected"] == 80
    assert manifest["peak_rss_mb"] > 0 and manifest["seed"] == 3


def test_prepare_is_deterministic_by_seed(tmp_path):
    src = write(tmp_path / "c.json", ring_catalogue(50))
    prepare_amazon([src], tmp_path / "a", seed=1, progress=False)
    prepare_amazon([src], tmp_path / "b", seed=1, progress=False)
    prepare_amazon([src], tmp_path / "c", seed=2, progress=False)
    for name in ["split/train.parquet", "split/test_negatives.parquet", "split/test_negatives_degree.parquet"]:
        ta, tb, tc = (pq.read_table(tmp_path / d / name) for d in "abc")
        assert ta.equals(tb)
    assert not pq.read_table(tmp_path / "a/split/train.parquet").equals(pq.read_table(tmp_path / "c/split/train.parquet"))


def test_several_files_of_both_formats_merge(tmp_path):
    f14 = write(tmp_path / "a.json", [line_2014("A", {"also_bought": ["B", "C"]}, title="t")] + ring_catalogue(20))
    f18 = write(tmp_path / "b.json.gz", [line_2018("B", ["C", "D"], ["E"], title="u", price="$3.00"),
                                         line_2018("F", ["A"])], gz=True)
    manifest = prepare_amazon([f14, f18], tmp_path / "d", progress=False, split=(0.5, 0.25, 0.25))
    assert [f["format"] for f in manifest["files"]] == ["2014", "2018"]
    assert manifest["unique_pairs"] == 6 + 60  # AB AC BC BD BE FA, and the ring's 20 x 3
    assert manifest["products_with_metadata"] == 3 + 20 and manifest["n_items"] == 6 + 20


def test_malformed_lines_are_counted_with_file_and_line(tmp_path):
    lines = ring_catalogue(300)
    lines[10] = "{'asin': 'broken"
    lines[20] = "[1, 2, 3]"
    lines.insert(5, "")  # blank lines are not records
    src = write(tmp_path / "c.json", lines)
    manifest = prepare_amazon([src], tmp_path / "d", progress=False)
    assert manifest["records_rejected"] == 2
    assert manifest["rejected_by_reason"] == {"parse_error": 1, "not_a_record": 1}
    assert manifest["rejected_examples"]["parse_error"][0].startswith(f"{src}:12:")
    assert manifest["records_read"] == manifest["records_parsed"] + 2 == 300
    with pytest.raises(InputError, match="over --max-bad-fraction"):
        prepare_amazon([src], tmp_path / "e", progress=False, max_bad_fraction=0.005)
    assert not (tmp_path / "e").exists()


def test_truncated_gzip_keeps_complete_records(tmp_path):
    src = write(tmp_path / "c.json.gz", ring_catalogue(400, 3), gz=True)
    data = src.read_bytes()
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    reader = LineReader(cut)
    full = list(LineReader(src))
    got = list(reader)
    assert reader.truncated and 0 < len(got) < len(full)
    assert got == full[: len(got)]  # every line kept is complete and identical
    messages = []
    manifest = prepare_amazon([cut], tmp_path / "d", progress=False, log=messages.append,
                              max_bad_fraction=0.05)
    assert manifest["truncated_files"] and "truncated" in messages[0] and "line" in messages[0]
    assert manifest["records_parsed"] == len(got)
    assert manifest["records_read"] == manifest["records_parsed"] + manifest["records_rejected"]


def test_empty_or_missing_input_is_an_error(tmp_path):
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "blank.json").write_text("\n\n")
    with pytest.raises(InputError, match="empty"):
        prepare_amazon([tmp_path / "empty.json"], tmp_path / "d", progress=False)
    with pytest.raises(InputError, match="no records"):
        prepare_amazon([tmp_path / "blank.json"], tmp_path / "d", progress=False)
    with pytest.raises(InputError, match="no such file"):
        prepare_amazon([tmp_path / "missing.json"], tmp_path / "d", progress=False)


def test_settings_are_validated():
    with pytest.raises(ConfigError):
        parse_split("0.5,0.5")
    with pytest.raises(ConfigError):
        parse_weights("also_bought=lots")
    assert parse_weights("also_buy=2") == {"also_bought": 2.0}


def test_prepare_edges(tmp_path):
    lines = ["# a SNAP-style header", "# FromNodeId\tToNodeId"]
    lines += [f"{i}\t{(i + k) % 40}" for i in range(40) for k in (1, 2)]
    lines += ["1\t0", "5\t5", "7 8 2.5"]  # a reverse duplicate, a self loop, a weighted duplicate
    manifest = prepare_edges([write(tmp_path / "g.txt", lines)], tmp_path / "d", progress=False)
    assert manifest["unique_pairs"] == 80
    assert manifest["self_pairs_dropped"] == 1 and manifest["records_read"] == 83
    data = DataDir(tmp_path / "d")
    pairs = data.pairs()
    a = data.asins.index("7")
    b = data.asins.index("8")
    row = np.flatnonzero((pairs.item_a == min(a, b)) & (pairs.item_b == max(a, b)))
    assert pairs.weight[row[0]] == np.float32(2.5)


# ---------------------------------------------------------------- CLI end to end


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_cli_synth_and_prepare_end_to_end(tmp_path):
    out = tmp_path / "new-folder" / "cat.json.gz"  # synth creates missing folders
    result = run_cli("synth", "amazon", "--products", 3000, "--seed", 5, "--out", out, "--no-progress")
    assert result.returncode == 0, result.stderr
    result = run_cli("prepare", "amazon", out, "--out", tmp_path / "d", "--seed", 5, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "unique pairs" in result.stdout
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert manifest["records_rejected"] == 0 and manifest["unique_pairs"] > 3000
    assert 0.3 < manifest["products_with_metadata"] / manifest["n_items"] < 0.5


def test_cli_errors_are_one_line(tmp_path):
    result = run_cli("prepare", "amazon", tmp_path / "nope.json", "--out", tmp_path / "d")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no such file" in result.stderr
    result = run_cli("prepare", "amazon", tmp_path / "nope.json", "--out", tmp_path / "d", "--split", "1,2")
    assert result.returncode == 2 and "--split" in result.stderr


# ---------------------------------------------------------------- real samples (skipped without ../shared/data)


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present")
def test_real_2018_magazine_subscriptions(tmp_path):
    manifest = prepare_amazon([SHARED / "amazon2018" / "meta_Magazine_Subscriptions.json.gz"], tmp_path / "d",
                              progress=False)
    assert manifest["records_read"] == 3385 and manifest["records_rejected"] == 0
    assert manifest["products_with_metadata"] == 2320
    assert manifest["n_items"] == 18204 and manifest["unique_pairs"] == 57997


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data not present")
def test_real_2014_musical_instruments(tmp_path):
    import ast

    path = SHARED / "amazon2014" / "meta_Musical_Instruments.first100.json"
    manifest = prepare_amazon([path], tmp_path / "d", progress=False)
    assert manifest["records_read"] == 100 and manifest["records_rejected"] == 0
    # An independent count with ast.literal_eval.
    pairs, asins = set(), set()
    for line in path.read_text().splitlines():
        record = ast.literal_eval(line)
        asins.add(record["asin"])
        for name, partners in record.get("related", {}).items():
            asins.update(partners)
            if name in ("bought_together", "also_bought", "also_viewed"):
                pairs.update(tuple(sorted((record["asin"], p))) for p in partners if p != record["asin"])
    assert manifest["n_items"] == len(asins) and manifest["unique_pairs"] == len(pairs)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("good"), st.integers(0, 30)),
    st.tuples(st.just("bad"), st.sampled_from(["{'asin': ", "[1]", "{'title': 'x'}", "not a record", "{'asin': 3}",
                                               "{'asin': 'Z', 'related': {'also_bought': 'B'}}"])),
    st.tuples(st.just("blank"), st.just("")),
), min_size=1, max_size=40))
def test_parsing_never_loses_a_record_silently(tmp_path_factory, lines):
    text = []
    for kind, value in lines:
        if kind == "good":
            text.append(line_2014(f"G{value}", {"also_bought": [f"G{value + 1}"]}))
        else:
            text.append(value)
    path = write(tmp_path_factory.mktemp("p") / "m.json", text)
    good = sum(kind == "good" for kind, _ in lines)
    bad = sum(kind == "bad" for kind, _ in lines)
    from itemvec.data.prepare import read_amazon

    ids, mentions, meta, report = read_amazon([path], progress=False)
    assert report.records_read == good + bad == report.records_parsed + report.records_rejected
    assert report.records_rejected == bad and report.records_parsed == good
    for reason, count in report.rejected.items():
        assert len(report.rejected_examples[reason]) == min(count, 5)
        assert all(example.startswith(f"{path}:") for example in report.rejected_examples[reason])


# The tables `prepare amazon` wrote for this catalogue before its speed work (issue 17): every later version must
# write the same rows, column for column (the digest of each table's values, not of the file's bytes, which
# carry the pyarrow version).
GOLDEN_TABLES = {
    "id_map.parquet": (5000, "4c2c1e0cb9fc5243"),
    "pairs.parquet": (12940, "54027064e5a9fecf"),
    "products.parquet": (5000, "ecb2e72cb00a388f"),
    "split/test.parquet": (2148, "01a247abe0a0f25a"),
    "split/test_negatives.parquet": (2148, "55e6722e1bf7a1e9"),
    "split/test_negatives_degree.parquet": (2148, "0da93862c3fde872"),
    "split/train.parquet": (8631, "40f87231d04c198e"),
    "split/validation.parquet": (2161, "f6ec0355cb62d649"),
    "split/validation_negatives.parquet": (2161, "93bd749524985029"),
    "split/validation_negatives_degree.parquet": (2161, "efac20bddd30f730"),
}


def test_prepare_writes_the_golden_tables(tmp_path):
    import hashlib

    import itemvec

    itemvec.synth_amazon(tmp_path / "cat.json.gz", products=5000, seed=3, progress=False)
    itemvec.prepare_amazon([tmp_path / "cat.json.gz"], tmp_path / "data", seed=3, progress=False,
                           log=lambda line: None)
    found = {}
    for path in sorted((tmp_path / "data").rglob("*.parquet")):
        table = pq.read_table(path)
        digest = hashlib.blake2b(digest_size=8)
        for name in table.column_names:
            digest.update(name.encode())
            digest.update(repr(table[name].to_pylist()).encode())
        found[path.relative_to(tmp_path / "data").as_posix()] = (table.num_rows, digest.hexdigest())
    assert found == GOLDEN_TABLES


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-2**62, 2**62), max_size=300), st.sampled_from([np.int32, np.int64, np.uint16]))
def test_unique_sorted_is_numpys_unique(values, dtype):
    from itemvec.arrays import unique_sorted

    info = np.iinfo(dtype)
    array = np.array([v % (int(info.max) - int(info.min) + 1) + int(info.min) for v in values], dtype=dtype)
    result = unique_sorted(array)
    np.testing.assert_array_equal(result, np.unique(array))
    assert result.dtype == array.dtype


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(min_size=1, max_size=6).filter(lambda t: t.encode("utf-8", "surrogatepass")
                                                                  .decode("utf-8", "ignore") == t),
                         max_size=40), max_size=8))
def test_interner_numbers_ids_as_the_id_map(batches):
    """The bulk map gives every id the dense id a dict in order of first appearance gives it, across batches
    (growing its table and store), and finds (or not) any id afterwards."""
    from itemvec.data.intern import Interner
    from itemvec.data.pairs import IdMap

    bulk, plain = Interner(), IdMap()
    long = [f"long-id-number-{k:08d}" for k in range(500)]  # over 16 bytes, the same first 16: the store decides
    for batch in batches + [[f"id{k}" for k in range(3000)] + long, long[::-1]]:
        np.testing.assert_array_equal(bulk.add_many(batch), plain.add_many(batch))
    assert len(bulk) == len(plain) and bulk.keys() == plain.keys()
    probe = plain.keys()[::3] + ["absent", "id3000"]
    np.testing.assert_array_equal(bulk.lookup(probe), plain.lookup(probe))
    assert "id7" in bulk and "nope" not in bulk and bulk.id_of("id0") == plain.index["id0"]


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 16), st.integers(2, 40), st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39),
                                                                  st.integers(0, 15)), max_size=400),
       st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.2, 1e-9, 3.3, 1e6, 0.123456789]),
                min_size=16, max_size=16))
def test_build_pairs_merge_kernel_is_the_numpy_merge(n_types, n_items, mentions, weights):
    """The one-pass kernel (itemvec.data.merge) gives the numpy path's pairs bit for bit: float32 weights summed
    as add.reduceat sums (up to 16 relations on one pair, where numpy's pairwise sum starts), bits, counts."""
    from itemvec.arrays import unique_sorted
    from itemvec.data.pairs import merge_unique

    names = [f"r{k}" for k in range(n_types)]
    source = np.array([m[0] % n_items for m in mentions], np.int32)
    target = np.array([m[1] % n_items for m in mentions], np.int32)
    relation = np.array([m[2] % n_types for m in mentions], np.uint8)
    rich = [(a, b, r) for a in range(2) for b in range(2, 4) for r in range(n_types)]  # every relation on 4 pairs
    source = np.concatenate([source, np.array([a for a, _, _ in rich], np.int32)])
    target = np.concatenate([target, np.array([b for _, b, _ in rich], np.int32)])
    relation = np.concatenate([relation, np.array([r for _, _, r in rich], np.uint8)])
    type_weights = dict(zip(names, weights))
    pairs, stats = build_pairs(source, target, relation, names, n_items, type_weights)
    keep = source != target
    combo = pair_keys(source[keep], target[keep], n_items) * n_types + relation[keep]
    unique = unique_sorted(combo)
    expected, unique_per_relation = merge_unique(unique, np.array(weights[:n_types])[unique % n_types], n_types,
                                                 n_items, names)
    for field in ("item_a", "item_b", "relations"):
        np.testing.assert_array_equal(getattr(pairs, field), getattr(expected, field))
    assert pairs.weight.tobytes() == expected.weight.tobytes()
    assert pairs.item_a.dtype == np.int32 and pairs.weight.dtype == np.float32 and pairs.relations.dtype == np.uint16
    assert stats.unique_pairs_per_relation == unique_per_relation


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(1e-12, 1e6), min_size=1, max_size=64))
def test_the_merge_kernels_sum_is_add_reduceat(values):
    """A pair's weight, before the float32 cast, is the float64 that np.add.reduceat gives its segment."""
    from itemvec.data.merge import _reduceat_sum

    array = np.array(values, np.float64)
    assert _reduceat_sum(array, len(array)) == np.add.reduceat(array, [0])[0]
