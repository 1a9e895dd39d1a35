"""Tests for the synthetic Amazon 2014 metadata generator (itemvec.data.synthetic)."""

from __future__ import annotations

import ast
import gzip

import numpy as np
import pytest

from itemvec.data import synthetic
from itemvec.data.synthetic import (
    PAIR_RELATION_TYPES,
    RELATION_TYPES,
    ROOT_CATEGORY,
    generate_catalogue,
    unique_pairs,
    write_amazon_2014,
)

ALWAYS = {"asin", "title", "categories"}
OPTIONAL = {"description", "price", "imUrl", "related", "salesRank", "brand"}


def _read_lines(path) -> list[str]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """5,000 products written as plain text: (path, summary, parsed lines, raw lines)."""
    path = tmp_path_factory.mktemp("synthetic") / "meta.json"
    summary = write_amazon_2014(path, 5000, seed=3, progress=False)
    raw = _read_lines(path)
    return path, summary, [ast.literal_eval(line) for line in raw], raw


@pytest.fixture(scope="module")
def catalogue_20k():
    return generate_catalogue(20_000, seed=11)


def test_every_line_parses_with_expected_keys(small_file):
    _, summary, records, raw = small_file
    assert len(records) == summary["metadata_lines"]
    for record in records:
        assert isinstance(record, dict)
        assert ALWAYS <= record.keys() <= ALWAYS | OPTIONAL
        assert len(record["asin"]) == 10
        first_path = record["categories"][0]
        assert first_path[0] == ROOT_CATEGORY and len(first_path) == 4
        if "price" in record:
            assert isinstance(record["price"], float) and record["price"] > 0
        if "salesRank" in record:
            assert list(record["salesRank"]) == [ROOT_CATEGORY]
        if "related" in record:
            related = record["related"]
            assert related and set(related) <= set(RELATION_TYPES)
            for partners in related.values():
                assert partners, "empty lists are omitted, as in the real dumps"
                assert len(set(partners)) == len(partners), "no repeats within a list"
                assert record["asin"] not in partners
            assert len(related.get("bought_together", [])) <= 3
            assert len(related.get("buy_after_viewing", [])) <= 4


def test_lines_are_exactly_python_repr(small_file):
    # The 2014 format is repr(dict): re-printing a parsed line gives the same text, quoting included.
    _, _, records, raw = small_file
    for record, line in zip(records, raw, strict=True):
        assert repr(record) == line
    titles = [r["title"] for r in records]
    assert any("'" in t for t in titles), "some titles carry an apostrophe"
    assert any('"' in t for t in titles), "some titles carry a double quote (inches)"
    assert any("'title': \"" in line for line in raw), "repr double-quotes a title with an apostrophe"
    assert any("'" in t and '"' in t for t in titles), "a few titles carry both"
    assert any("\\'" in line for line in raw), "... and repr escapes the apostrophe"


def test_universe_and_metadata_fraction(small_file):
    _, summary, records, _ = small_file
    asins = {r["asin"] for r in records}
    mentioned = {a for r in records for partners in r.get("related", {}).values() for a in partners}
    assert len(asins | mentioned) == summary["products"] == 5000
    assert summary["metadata_lines"] / summary["products"] == pytest.approx(0.4, abs=0.03)
    # Most products exist only inside other products' lists.
    assert len(mentioned - asins) == 5000 - len(asins)


def test_optional_fields_missing_at_realistic_rates(small_file):
    _, _, records, _ = small_file
    n = len(records)
    no_price = sum("price" not in r for r in records) / n
    no_brand = sum(not r.get("brand") for r in records) / n
    empty_brand = sum(r.get("brand") == "" for r in records) / n
    no_related = sum("related" not in r for r in records) / n
    assert 0.14 < no_price < 0.26
    assert 0.22 < no_brand < 0.38 and empty_brand > 0.08
    assert 0.03 < no_related < 0.15


def test_summary_matches_file(small_file):
    _, summary, records, _ = small_file
    counts = dict.fromkeys(RELATION_TYPES, 0)
    for r in records:
        for name, partners in r.get("related", {}).items():
            counts[name] += len(partners)
    assert summary["relation_mentions"] == counts
    assert summary["seconds"] >= 0


def test_file_matches_catalogue_arrays(small_file):
    _, _, records, _ = small_file
    catalogue = generate_catalogue(5000, seed=3)
    asins = catalogue.asins.astype(str)
    assert [r["asin"] for r in records] == asins[catalogue.lines].tolist()
    offsets = catalogue.relation_offsets
    for i in range(0, len(records), 97):
        related = records[i].get("related", {})
        for r, name in enumerate(RELATION_TYPES):
            expected = asins[catalogue.relation_target[offsets[4 * i + r] : offsets[4 * i + r + 1]]].tolist()
            assert related.get(name, []) == (expected if not catalogue.related_missing[i] else [])


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path):
    a, b, c = tmp_path / "a.json.gz", tmp_path / "b.json.gz", tmp_path / "c.json.gz"
    write_amazon_2014(a, 800, seed=5, progress=False)
    write_amazon_2014(b, 800, seed=5, progress=False)  # another name: the gzip header must not record it
    write_amazon_2014(c, 800, seed=6, progress=False)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_plain_and_gzip_hold_the_same_text(tmp_path):
    plain, packed = tmp_path / "meta.json", tmp_path / "meta.json.gz"
    write_amazon_2014(plain, 600, seed=2, progress=False)
    write_amazon_2014(packed, 600, seed=2, progress=False)
    assert plain.read_bytes().startswith(b"{'asin': '")
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "meta.json.gz"]  # no temp files


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_format_chunk", fail)
    with pytest.raises(KeyboardInterrupt):
        write_amazon_2014(tmp_path / "meta.json.gz", 500, progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("products", [9, 0, -5, 100.0, "1000", True])
def test_rejects_bad_product_counts(tmp_path, products):
    with pytest.raises(ValueError, match="products"):
        write_amazon_2014(tmp_path / "x.json", products, progress=False)


def test_tiny_catalogue_still_mentions_every_product():
    catalogue = generate_catalogue(10, seed=0)
    seen = np.zeros(10, dtype=bool)
    seen[catalogue.lines] = True
    seen[catalogue.relation_target] = True
    assert seen.all()
    assert catalogue.lines.size == 4


def test_partners_mostly_share_the_leaf(catalogue_20k):
    c = catalogue_20k
    bought = c.relation_type == RELATION_TYPES.index("also_bought")
    same_leaf = c.leaf[c.relation_source[bought]] == c.leaf[c.relation_target[bought]]
    assert same_leaf.mean() > 0.7
    # ... and the rest mostly stay in the subcategory: a random partner would share the leaf ~0.3 % of
    # the time.
    same_sub = c.leaf_sub[c.leaf[c.relation_source[bought]]] == c.leaf_sub[c.leaf[c.relation_target[bought]]]
    assert same_sub.mean() > 0.8


def test_partners_are_similar_in_the_latent_space(catalogue_20k):
    c = catalogue_20k
    pairs = unique_pairs(c)
    sim = np.einsum("pd,pd->p", c.latent[pairs[:, 0]], c.latent[pairs[:, 1]])
    rng = np.random.default_rng(0)
    random_pairs = rng.integers(0, c.products, size=(pairs.shape[0], 2))
    random_sim = np.einsum("pd,pd->p", c.latent[random_pairs[:, 0]], c.latent[random_pairs[:, 1]])
    assert sim.mean() > random_sim.mean() + 0.5


def test_degree_distribution_is_skewed_and_star_shaped(catalogue_20k):
    c = catalogue_20k
    mentions = np.bincount(c.relation_target, minlength=c.products)
    top = np.sort(mentions)[::-1][: c.products // 100]
    assert top.sum() / mentions.sum() > 0.15  # top 1 % of products: 1 % under a uniform draw
    degree = np.bincount(unique_pairs(c).ravel(), minlength=c.products)
    assert 0.4 <= np.mean(degree == 1) <= 0.7  # real catalogues: 41-74 % of products in one pair
    # Popular products with a line have many partners.
    lines_by_popularity = c.lines[np.argsort(-c.popularity[c.lines])]
    assert np.median(degree[lines_by_popularity[:80]]) > 5 * np.median(degree[c.lines])


def test_brands_concentrate_in_few_subcategories(catalogue_20k):
    c = catalogue_20k
    sub = c.leaf_sub[c.leaf]
    counts = np.zeros((len(c.brand_names), len(c.sub_names)))
    np.add.at(counts, (c.brand, sub), 1)
    big = counts.sum(axis=1) >= 50
    top3 = np.sort(counts[big], axis=1)[:, -3:].sum(axis=1) / counts[big].sum(axis=1)
    assert np.median(top3) > 0.7  # out of 100 subcategories


def test_pair_count_scales_with_the_catalogue(catalogue_20k):
    # The size targets (about 4.0M pairs at 420k products, 27M at 2M: 9.5 and 13.5 pairs per product)
    # follow pairs/N ∝ N^0.22; extrapolated to 20k that is ~4.9. Small leaves (~45 products here)
    # repeat more draws, so somewhat fewer survive deduplication; accept 3-6.
    pairs_20k = unique_pairs(catalogue_20k).shape[0] / catalogue_20k.products
    assert 3.0 < pairs_20k < 6.0
    small = generate_catalogue(4000, seed=11)
    assert unique_pairs(small).shape[0] / small.products < pairs_20k  # lists grow with N


def test_unique_pairs_counts_each_unordered_pair_once():
    c = generate_catalogue(2000, seed=1)
    pairs = unique_pairs(c)
    assert (pairs[:, 0] < pairs[:, 1]).all()
    assert np.unique(pairs, axis=0).shape[0] == pairs.shape[0]
    keep = c.relation_type < len(PAIR_RELATION_TYPES)
    slow = {
        (min(a, b), max(a, b))
        for a, b in zip(c.relation_source[keep].tolist(), c.relation_target[keep].tolist(), strict=True)
    }
    assert slow == set(map(tuple, pairs.tolist()))


def test_catalogue_is_deterministic():
    a, b = generate_catalogue(3000, seed=9), generate_catalogue(3000, seed=9)
    for name in ("asins", "leaf", "brand", "relation_source", "relation_target", "relation_type"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
