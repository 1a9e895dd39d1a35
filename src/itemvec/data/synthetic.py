"""Synthetic Amazon product metadata in the 2014 format, with planted structure.

The real 2014 metadata (McAuley et al., "Image-based recommendations on styles and substitutes",
SIGIR 2015) is one Python dict literal per line, exactly as ``repr(dict)`` prints it::

    {'asin': 'B000123456', 'title': 'Acme Wireless Headphones X200', 'price': 17.95,
     'related': {'also_bought': ['B0...', ...], 'also_viewed': [...], 'bought_together': [...],
                 'buy_after_viewing': [...]},
     'salesRank': {'Electronics': 2073}, 'brand': 'Acme',
     'categories': [['Electronics', 'Audio', 'Headphones', 'Wireless Headphones']]}

This module writes files of that shape whose relations carry a known answer, so that a model which
learns the structure can recover held-out pairs and a random one cannot:

* a category tree: one root (``'Electronics'``), 20 top-level categories, 5 subcategories each and
  3-5 leaves under each subcategory; every product sits in one leaf;
* a latent vector per product: leaf centroid plus noise (centroids themselves nested top → sub → leaf),
  so products in the same leaf are similar and products in sibling leaves somewhat similar;
* Zipf popularity (exponent about 1) over the whole universe;
* brands (up to a few thousand), each concentrated in one to three subcategories;
* log-normal prices whose location depends on the category;
* relation lists drawn mostly (80-92 % depending on the type) from the source's own leaf, the rest from
  its subcategory or the whole catalogue, each partner chosen with probability roughly
  ∝ popularity × exp(similarity / temperature) (sampling-importance-resampling over a few
  popularity-drawn candidates).

As in the real data only about 40 % of the products have a metadata line; the rest appear only inside
other products' lists, most of them exactly once, which gives the star shape of real catalogues
(about half of all products take part in a single pair).

Sizes follow the real Electronics/Books scale: at 420,000 products the file holds about 4 million
unique undirected pairs (also_bought ∪ also_viewed ∪ bought_together), at 2,000,000 about 27 million.
"""

from __future__ import annotations

import gzip
import os
import queue
import threading
import time
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

import numpy as np

from itemvec.arrays import unique_sorted
from itemvec.outputs import check_output_file
from itemvec.progress import progress_bar

__all__ = [
    "RELATION_TYPES",
    "PAIR_RELATION_TYPES",
    "ROOT_CATEGORY",
    "Catalogue",
    "generate_catalogue",
    "write_amazon_2014",
    "unique_pairs",
]

ROOT_CATEGORY = "Electronics"

#: Relation types in the order they appear in a line's ``'related'`` dict (and their integer codes).
RELATION_TYPES: tuple[str, ...] = ("also_bought", "also_viewed", "bought_together", "buy_after_viewing")
#: The types that define a pair; buy_after_viewing is a weaker signal and, as in the reference study,
#: does not count.
PAIR_RELATION_TYPES: tuple[str, ...] = RELATION_TYPES[:3]

# Fraction of the universe with a metadata line of its own (about 40 % in the real 2014 dumps).
METADATA_FRACTION = 0.4
# Popularity: weight ∝ rank^-ZIPF_EXPONENT over the whole universe.
ZIPF_EXPONENT = 1.0
# Which products get a metadata line: the top 40 % by METADATA_POPULARITY_BIAS·log(popularity) + Gumbel
# noise, so crawled products lean popular but not strictly.
METADATA_POPULARITY_BIAS = 1.0
# Products without metadata are drawn this much less often as partners; most of them then appear only
# once (attached as an "orphan"), which gives the star shape.
NO_METADATA_WEIGHT = 0.2
# Latent space.
LATENT_DIM = 8
LATENT_NOISE = 0.6
TEMPERATURE = 0.25
CANDIDATES = 4  # sampling-importance-resampling candidates per slot
# Per-type (leaf, subcategory, whole catalogue) scope probabilities. also_bought and bought_together
# reach further (complements: a camera and a memory card), also_viewed and buy_after_viewing stay near
# (substitutes).
SCOPE_PROBABILITIES = np.array(
    [[0.80, 0.12, 0.08], [0.88, 0.09, 0.03], [0.75, 0.15, 0.10], [0.92, 0.06, 0.02]]
)
# Probability that a metadata line has each list (given that it has 'related' at all).
LIST_PRESENCE = np.array([0.78, 0.72, 0.40, 0.45])
RELATED_MISSING = 0.05
# Mean requested list lengths at the reference size (420,000 products); they scale with
# (products / 420,000) ** LENGTH_EXPONENT, calibrated so that 420k → ~4.0M pairs and 2M → ~27M.
REFERENCE_PRODUCTS = 420_000
MEAN_LENGTH = np.array([32.5, 21.0])  # also_bought, also_viewed (before deduplication)
LENGTH_EXPONENT = 0.19
LENGTH_CAP = np.array([100, 80])
LENGTH_SIGMA = 0.6  # log-normal spread of list lengths around the popularity trend
LENGTH_POPULARITY_POWER = 0.3  # popular sources have longer lists: length ∝ (rank / M) ** -power
PRICE_MISSING = 0.20
BRAND_MISSING = 0.15
BRAND_EMPTY = 0.15
SALES_RANK_MISSING = 0.10
IMAGE_MISSING = 0.04
DESCRIPTION_PRESENT = 0.65

# The category tree: 20 top-level categories with 5 subcategories each. Leaves are
# "<modifier> <subcategory>", 3-5 modifiers per subcategory chosen by the seed.
_TREE: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Audio", ("Headphones", "Speakers", "Home Audio", "Microphones", "Turntables")),
    ("Camera & Photo", ("Digital Cameras", "Lenses", "Tripods", "Camera Bags", "Flashes")),
    ("Computers", ("Laptops", "Desktops", "Monitors", "Keyboards", "Mice")),
    ("Computer Components", ("Graphics Cards", "Memory", "Motherboards", "Power Supplies", "Processors")),
    ("Data Storage", ("Hard Drives", "USB Flash Drives", "Memory Cards", "Solid State Drives", "NAS")),
    ("Networking", ("Routers", "Modems", "Network Adapters", "Switches", "Range Extenders")),
    ("Cell Phones & Accessories", ("Cases", "Chargers", "Screen Protectors", "Phone Mounts", "Cables")),
    (
        "Television & Video",
        ("Televisions", "Projectors", "Streaming Players", "Blu-ray Players", "TV Mounts"),
    ),
    ("Car Electronics", ("Car Stereos", "GPS Units", "Dash Cams", "Car Speakers", "Radar Detectors")),
    ("Portable Audio & Video", ("MP3 Players", "Radios", "Boomboxes", "Voice Recorders", "CD Players")),
    ("Video Games", ("Consoles", "Controllers", "Gaming Headsets", "Racing Wheels", "Capture Cards")),
    ("Wearable Technology", ("Smartwatches", "Fitness Trackers", "Smart Glasses", "Body Cameras", "Bands")),
    ("Home Automation", ("Smart Plugs", "Smart Lighting", "Thermostats", "Security Cameras", "Doorbells")),
    ("Office Electronics", ("Printers", "Scanners", "Calculators", "Label Makers", "Shredders")),
    ("Power & Batteries", ("Batteries", "Power Banks", "Surge Protectors", "UPS Units", "Battery Chargers")),
    ("Tablets & E-Readers", ("Tablets", "E-Readers", "Tablet Cases", "Styluses", "Tablet Stands")),
    (
        "Musical Instruments",
        ("Guitar Strings", "Amplifiers", "Effects Pedals", "MIDI Keyboards", "Interfaces"),
    ),
    ("GPS & Navigation", ("Handheld GPS", "Marine GPS", "Golf GPS", "Trackers", "Aviation GPS")),
    (
        "Security & Surveillance",
        ("Surveillance Kits", "DVR Systems", "Alarm Systems", "Motion Sensors", "Hidden Cameras"),
    ),
    (
        "Accessories & Supplies",
        ("Cables & Adapters", "Cleaning Kits", "Mounts", "Remote Controls", "Cases & Bags"),
    ),
)
# "Kids'" gives categories with an apostrophe, which Python's repr then double-quotes, as in real data.
_LEAF_MODIFIERS = (
    "Wireless", "Portable", "Professional", "Compact", "Rugged", "Premium",
    "Budget", "Kids'", "Refurbished", "Universal",
)  # fmt: skip
_SYLLABLES = (
    "ac", "me", "zen", "trix", "vo", "lta", "nex", "ion", "sky", "tek", "ora", "pix", "al", "bo", "ra",
    "lum", "ex", "cor", "sa", "ny", "ko", "dak", "fi", "lo", "gen", "mar", "vi", "sta", "qu", "ad",
    "ro", "ka", "ele", "tron", "po", "lar", "iso", "nic", "wave", "tor",
)  # fmt: skip
# Title pieces. Some prefixes carry an apostrophe, some sizes a double quote (inches), so that repr()
# chooses double quotes or backslash escapes exactly as in real titles.
_TITLE_PREFIXES = ("Men's ", "Women's ", "Kids' ", "Editor's Choice ", "Traveler's ")
_TITLE_SIZES = (' 7"', ' 10.1"', ' 13.3"', ' 24"', ' 55"', ' 3.5"')
_TITLE_SUFFIXES = (
    " (Black)", " (White)", " (Silver)", " (Blue)", " (Red)", ", Pack of 2", " with Case",
    " - Retail Packaging", " (Renewed)", " Kit",
)  # fmt: skip
_FEATURES = (
    "long battery life", "crisp sound", "fast charging", "a durable aluminium body", "plug-and-play setup",
    "a two-year warranty", "low power draw", "a slim profile", "reliable performance", "easy mounting",
)  # fmt: skip
_SENTENCES = (
    "The {brand} {noun} offers {f1} and {f2}.",
    "It's compatible with most {sub} setups.",
    "Designed for everyday use, with {f1}.",
    "Package includes: {noun}, user manual and {f2}.",
    "Customers love its {f1}; it's a great value.",
    "Note: this is the {model} model.",
)  # fmt: skip
_ALPHABET36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_ALPHABET62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
_SCOPE_CUMULATIVE = np.cumsum(SCOPE_PROBABILITIES, axis=1)[:, :2]  # (4, 2) thresholds on a uniform draw
_SLOT_CHUNK = 1 << 19  # slots sampled per vectorised step: bounds the (chunk, candidates, dim) temporaries


@dataclass(frozen=True, eq=False)
class Catalogue:
    """A synthetic catalogue: the planted truth behind one generated file.

    Product ids are dense ``0..N-1`` and sorted by leaf category (so every leaf, subcategory and
    top-level category is a contiguous id range); the file's line order is by ASIN instead.

    Attributes (N products, L leaves, S subcategories, T top-level categories, M metadata lines,
    R relation mentions):
        asins: (N,) ``S10`` bytes, unique ASINs ('B00' + 7 base-36 digits, about 5 % 10-digit ISBNs).
        leaf: (N,) int32 leaf category of each product (non-decreasing in the product id).
        leaf_sub: (L,) int32 subcategory of each leaf; sub_top: (S,) int32 top-level of each subcategory.
        top_names, sub_names, leaf_names: category names by id.
        brand: (N,) int32 the product's brand (its title always names it).
        brand_names: brand names by id.
        brand_field: (N,) int8 how the line writes the brand: 0 the name, 1 no 'brand' key, 2 ''.
        price: (N,) float64 price in dollars, NaN where the line has no 'price'.
        popularity: (N,) float64 Zipf popularity, sums to 1.
        has_metadata: (N,) bool whether the product has a line of its own.
        latent: (N, LATENT_DIM) float32 unit vectors; partners are chosen ∝ popularity × exp(sim / T).
        sales_rank: (N,) int64, 0 where the line has no 'salesRank'.
        lines: (M,) int32 product ids of the metadata lines, in file order (sorted by ASIN).
        related_missing: (M,) bool lines written without a 'related' key at all.
        relation_source, relation_target: (R,) int32 product ids; relation_type: (R,) int8 index into
            RELATION_TYPES. Mentions are grouped by line (file order), then type, then list position
            (most popular partner first), and are unique within a list.
        relation_offsets: (M * 4 + 1,) int64; the list of type r on line i is
            ``relation_target[relation_offsets[4*i + r] : relation_offsets[4*i + r + 1]]``.
        text: per-line integer codes used only to render titles, descriptions, images and extra
            category paths (see ``_make_text``).
        seed: the seed it was generated with.
    """

    asins: np.ndarray
    leaf: np.ndarray
    leaf_sub: np.ndarray
    sub_top: np.ndarray
    top_names: tuple[str, ...]
    sub_names: tuple[str, ...]
    leaf_names: tuple[str, ...]
    brand: np.ndarray
    brand_names: tuple[str, ...]
    brand_field: np.ndarray
    price: np.ndarray
    popularity: np.ndarray
    has_metadata: np.ndarray
    latent: np.ndarray
    sales_rank: np.ndarray
    lines: np.ndarray
    related_missing: np.ndarray
    relation_source: np.ndarray
    relation_target: np.ndarray
    relation_type: np.ndarray
    relation_offsets: np.ndarray
    text: dict[str, np.ndarray]
    seed: int

    @property
    def products(self) -> int:
        return int(self.asins.shape[0])

    def relation_mentions(self) -> dict[str, int]:
        """Number of list entries per relation type (what the file writes), by type name."""
        counts = np.bincount(self.relation_type, minlength=len(RELATION_TYPES))
        return {name: int(c) for name, c in zip(RELATION_TYPES, counts, strict=True)}


def unique_pairs(catalogue: Catalogue) -> np.ndarray:
    """Unique undirected pairs among also_bought, also_viewed and bought_together.

    A pair {a, b} (a != b) counts once however many types or directions mention it.

    Returns:
        (P, 2) int32 array of product ids with ``a < b``, sorted. Peak memory ≈ 40 bytes per mention.
    """
    keep = catalogue.relation_type < len(PAIR_RELATION_TYPES)
    a = catalogue.relation_source[keep].astype(np.int64)
    b = catalogue.relation_target[keep].astype(np.int64)
    n = np.int64(catalogue.products)
    keys = unique_sorted(np.minimum(a, b) * n + np.maximum(a, b))
    return np.stack([keys // n, keys % n], axis=1).astype(np.int32)


# --------------------------------------------------------------------------------------------------
# Generation


def generate_catalogue(products: int, seed: int = 0) -> Catalogue:
    """Draw a catalogue of ``products`` distinct products with planted structure.

    Args:
        products: N, the number of distinct products (every one of them appears in the file, either with a
            line of its own or inside another product's lists). At least 10.
        seed: seed for ``numpy.random.default_rng``; the same (products, seed) gives the same catalogue.

    Memory: about 100 bytes per product plus about 30 bytes per requested list entry at the peak
    (≈ 0.35 GB at 420,000 products, ≈ 1.3 GB at 2,000,000).
    """
    _check_products(products)
    n = int(products)
    rng = np.random.default_rng(seed)

    # Category tree. Leaf ids are contiguous within a subcategory and subcategory ids within a
    # top-level category, so every level is a contiguous range of leaves (and, below, of products).
    top_names = tuple(t for t, _ in _TREE)
    sub_names = tuple(s for _, subs in _TREE for s in subs)
    sub_top = np.repeat(np.arange(len(_TREE), dtype=np.int32), [len(s) for _, s in _TREE])
    leaves_per_sub = rng.integers(3, 6, size=len(sub_names))
    leaf_names: list[str] = []
    for s, k in enumerate(leaves_per_sub):
        for m in rng.permutation(len(_LEAF_MODIFIERS))[:k]:
            leaf_names.append(f"{_LEAF_MODIFIERS[m]} {sub_names[s]}")
    leaf_sub = np.repeat(np.arange(len(sub_names), dtype=np.int32), leaves_per_sub)
    n_leaves = len(leaf_names)

    # Leaf sizes vary by a log-normal factor per top-level category and per leaf.
    top_weight = rng.lognormal(0.0, 0.5, len(top_names))
    leaf_weight = top_weight[sub_top[leaf_sub]] * rng.lognormal(0.0, 0.8, n_leaves)
    leaf_counts = rng.multinomial(n, leaf_weight / leaf_weight.sum())
    leaf = np.repeat(np.arange(n_leaves, dtype=np.int32), leaf_counts)
    leaf_start = np.concatenate([[0], np.cumsum(leaf_counts)]).astype(np.int64)  # (L+1,)
    sub_of = leaf_sub[leaf]

    # Popularity: a random Zipf rank per product.
    rank = rng.permutation(n).astype(np.float64) + 1.0
    popularity = rank**-ZIPF_EXPONENT
    popularity /= popularity.sum()

    # Metadata lines: the top 40 % by biased popularity plus Gumbel noise (a weighted draw without
    # replacement), so lines lean popular without being exactly the head.
    n_meta = max(1, int(round(METADATA_FRACTION * n)))
    meta_key = METADATA_POPULARITY_BIAS * np.log(popularity) + rng.gumbel(size=n)
    has_metadata = np.zeros(n, dtype=bool)
    has_metadata[np.argpartition(-meta_key, n_meta - 1)[:n_meta]] = True
    del meta_key

    latent = _make_latent(rng, n, leaf, leaf_sub, sub_top)
    brand, brand_names = _make_brands(rng, n, sub_of, sub_top)
    price = _make_prices(rng, n, leaf, leaf_sub, sub_top)
    asins = _make_asins(rng, n)

    draws = rng.random((n, 4))  # field-missingness draws, one column per field
    brand_field = np.zeros(n, dtype=np.int8)
    brand_field[draws[:, 0] < BRAND_MISSING + BRAND_EMPTY] = 2
    brand_field[draws[:, 0] < BRAND_MISSING] = 1
    price[draws[:, 1] < PRICE_MISSING] = np.nan
    # Sales rank follows popularity among the lines, with noise; the real ranks run into the millions
    # because Amazon sells far more than a dump holds, hence the stretch factor.
    sales_rank = np.zeros(n, dtype=np.int64)
    meta_ids = np.flatnonzero(has_metadata)
    noisy = np.log(popularity[meta_ids]) + rng.normal(0.0, 0.5, meta_ids.size)
    order = np.argsort(-noisy, kind="stable")
    sales_rank[meta_ids[order]] = np.arange(1, meta_ids.size + 1) * 3 + rng.integers(0, 3, meta_ids.size)
    sales_rank[draws[:, 2] < SALES_RANK_MISSING] = 0
    del draws, noisy, order

    # File order: metadata lines sorted by ASIN, as in the real dumps.
    lines = meta_ids[np.argsort(asins[meta_ids], kind="stable")].astype(np.int32)
    related_missing = rng.random(lines.size) < RELATED_MISSING

    relation_source, relation_type, relation_target, relation_offsets = _make_relations(
        rng, n, lines, related_missing, leaf, leaf_start, leaf_sub, popularity, has_metadata, latent
    )
    text = _make_text(rng, lines.size, len(sub_names))

    return Catalogue(
        asins=asins,
        leaf=leaf,
        leaf_sub=leaf_sub,
        sub_top=sub_top,
        top_names=top_names,
        sub_names=sub_names,
        leaf_names=tuple(leaf_names),
        brand=brand,
        brand_names=brand_names,
        brand_field=brand_field,
        price=price,
        popularity=popularity,
        has_metadata=has_metadata,
        latent=latent,
        sales_rank=sales_rank,
        lines=lines,
        related_missing=related_missing,
        relation_source=relation_source,
        relation_target=relation_target,
        relation_type=relation_type,
        relation_offsets=relation_offsets,
        text=text,
        seed=int(seed),
    )


def _check_products(products: int) -> None:
    if isinstance(products, bool) or not isinstance(products, int | np.integer):
        raise ValueError(f"products must be an integer >= 10, got {products!r}")
    if products < 10:
        raise ValueError(f"products must be >= 10 (a catalogue needs room for relations), got {products}")


def _make_latent(rng, n, leaf, leaf_sub, sub_top) -> np.ndarray:
    """(N, LATENT_DIM) float32 unit vectors: nested centroids (top → sub → leaf) plus product noise."""
    top_c = rng.normal(0.0, 1.0, (int(sub_top.max()) + 1, LATENT_DIM))
    sub_c = top_c[sub_top] + rng.normal(0.0, 0.7, (sub_top.size, LATENT_DIM))
    leaf_c = sub_c[leaf_sub] + rng.normal(0.0, 0.5, (leaf_sub.size, LATENT_DIM))
    leaf_c /= np.linalg.norm(leaf_c, axis=1, keepdims=True)
    z = leaf_c[leaf].astype(np.float32)
    z += rng.normal(0.0, LATENT_NOISE / np.sqrt(LATENT_DIM), (n, LATENT_DIM)).astype(np.float32)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    return z


def _make_brands(rng, n, sub_of, sub_top) -> tuple[np.ndarray, tuple[str, ...]]:
    """Brand per product and brand names; each brand lives mostly in one to three subcategories."""
    n_subs = sub_top.size
    n_brands = int(np.clip(round(n / 100), 20, 4000))
    names: dict[str, None] = {}
    while len(names) < n_brands:
        k = rng.integers(2, 4, size=4 * n_brands)
        syl = rng.integers(0, len(_SYLLABLES), size=(4 * n_brands, 3))
        possessive = rng.random(4 * n_brands) < 0.02  # "Hunter's": brands with an apostrophe exist
        for i in range(4 * n_brands):
            name = "".join(_SYLLABLES[s] for s in syl[i, : k[i]]).capitalize()
            names.setdefault(name + "'s" if possessive[i] else name)
            if len(names) == n_brands:
                break
    brand_names = tuple(names)

    # Brand size is Zipf-like; home subcategories: the first by chance, the rest mostly in the
    # same top-level category (a camera brand also makes lenses).
    brand_weight = (np.arange(n_brands) + 1.0) ** -0.8
    rng.shuffle(brand_weight)
    n_homes = rng.integers(1, 4, size=n_brands)
    home_brand = np.repeat(np.arange(n_brands), n_homes)
    first = rng.integers(0, n_subs, size=n_brands)
    same_top_pick = rng.integers(0, 5, size=home_brand.size)
    top_first = sub_top[first][home_brand]
    same_top_sub = np.flatnonzero(np.diff(sub_top, prepend=-1))[top_first] + same_top_pick  # 5 subs per top
    home_sub = np.where(
        rng.random(home_brand.size) < 0.7, same_top_sub, rng.integers(0, n_subs, home_brand.size)
    )
    is_first = np.concatenate([[True], home_brand[1:] != home_brand[:-1]])
    home_sub[is_first] = first
    order = np.lexsort((home_brand, home_sub))
    home_sub, home_brand = home_sub[order], home_brand[order]
    cum = np.concatenate([[0.0], np.cumsum(brand_weight[home_brand])])
    seg = np.searchsorted(home_sub, np.arange(n_subs + 1))  # (S+1,) segment of each sub in the home list

    lo, hi = seg[sub_of], seg[sub_of + 1]
    u = cum[lo] + rng.random(n) * (cum[hi] - cum[lo])
    pick = np.clip(np.searchsorted(cum, u, side="right") - 1, lo, np.maximum(hi - 1, lo))
    brand = np.where(hi > lo, home_brand[np.minimum(pick, home_brand.size - 1)], -1)
    # 15 % of products (and those in a subcategory no brand calls home) come from any brand.
    stray = (rng.random(n) < 0.15) | (brand < 0)
    gcum = np.cumsum(brand_weight)
    brand[stray] = np.searchsorted(gcum, rng.random(int(stray.sum())) * gcum[-1], side="right")
    return np.minimum(brand, n_brands - 1).astype(np.int32), brand_names


def _make_prices(rng, n, leaf, leaf_sub, sub_top) -> np.ndarray:
    """(N,) float64 log-normal prices in dollars; the location depends on the top category and leaf."""
    top_mu = rng.normal(3.2, 0.7, int(sub_top.max()) + 1)
    leaf_mu = top_mu[sub_top[leaf_sub]] + rng.normal(0.0, 0.35, leaf_sub.size)
    price = np.exp(leaf_mu[leaf] + rng.normal(0.0, 0.8, n))
    price = np.clip(price, 0.5, 5000.0)
    # Retail prices: many end in .99, the rest are whole cents.
    charm = rng.random(n) < 0.4
    price = np.where(charm, np.floor(price) + 0.99, np.round(price, 2))
    return price


def _make_asins(rng, n) -> np.ndarray:
    """(N,) unique 'S10' ASINs: 'B00' + 7 base-36 digits, about 5 % ISBN-10s (with a real check digit)."""
    isbn = rng.random(n) < 0.05
    out = np.empty((n, 10), dtype=np.uint8)
    # B00 ASINs.
    b = rng.integers(0, 36**7, size=n, dtype=np.int64)
    out[:, :3] = np.frombuffer(b"B00", dtype=np.uint8)
    for j in range(7):
        out[:, 9 - j] = _ALPHABET36[b % 36]
        b //= 36
    # ISBN-10: nine digits and a check digit in 0-9 or X.
    k = int(isbn.sum())
    digits = rng.integers(0, 10, size=(k, 9))
    check = (digits * np.arange(10, 1, -1)).sum(axis=1)
    check = (11 - check % 11) % 11
    isbn_bytes = np.empty((k, 10), dtype=np.uint8)
    isbn_bytes[:, :9] = digits + ord("0")
    isbn_bytes[:, 9] = np.where(check == 10, ord("X"), check + ord("0"))
    out[isbn] = isbn_bytes
    asins = out.view("S10").ravel()
    # Collisions are rare (birthday bound over 36^7 and 10^9); redraw until unique.
    while True:
        _, first = np.unique(asins, return_index=True)
        if first.size == n:
            return asins
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        fresh = rng.integers(0, 36**7, size=int(dup.sum()), dtype=np.int64)
        rows = np.empty((fresh.size, 10), dtype=np.uint8)
        rows[:, :3] = np.frombuffer(b"B00", dtype=np.uint8)
        for j in range(7):
            rows[:, 9 - j] = _ALPHABET36[fresh % 36]
            fresh //= 36
        asins[dup] = rows.view("S10").ravel()


def _length_scale(n: int) -> float:
    """Multiplier on list lengths: the real catalogues' lists grow with the crawl's size."""
    return float((n / REFERENCE_PRODUCTS) ** LENGTH_EXPONENT)


def _list_lengths(rng, n, lines, related_missing, popularity) -> np.ndarray:
    """(M, 4) int64 requested list lengths per line and type (0: no list)."""
    m = lines.size
    present = (rng.random((m, 4)) < LIST_PRESENCE) & ~related_missing[:, None]
    # Popular sources have longer lists (the head of the catalogue has the most co-purchases).
    order = np.argsort(-popularity[lines], kind="stable")
    pop_rank = np.empty(m, dtype=np.float64)
    pop_rank[order] = np.arange(1, m + 1)
    trend = (1.0 - LENGTH_POPULARITY_POWER) * (pop_rank / m) ** -LENGTH_POPULARITY_POWER
    noise = rng.lognormal(-0.5 * LENGTH_SIGMA**2, LENGTH_SIGMA, (m, 2))
    mean = MEAN_LENGTH * _length_scale(n)
    lengths = np.zeros((m, 4), dtype=np.int64)
    lengths[:, :2] = np.clip(np.rint(mean * trend[:, None] * noise), 1, LENGTH_CAP)
    # bought_together: 1-3 items (mostly one or two); buy_after_viewing: usually 4.
    lengths[:, 2] = rng.choice([1, 2, 3], size=m, p=[0.5, 0.35, 0.15])
    lengths[:, 3] = rng.choice([1, 2, 3, 4], size=m, p=[0.05, 0.05, 0.1, 0.8])
    lengths[~present] = 0
    return lengths


def _sample_partners(rng, cum, pool, lo, hi, query, latent, exclude):
    """Choose one pool member per slot, ∝ weight × exp(similarity / TEMPERATURE).

    Sampling-importance-resampling: CANDIDATES draws ∝ weight (inverse CDF on ``cum``) within the
    slot's range ``[lo, hi)`` of the pool, then one of them ∝ exp(similarity / temperature).

    Args:
        cum: (P + 1,) float64 cumulative pool weights starting at 0.
        pool: (P,) product id of each pool position, or None when the pool is all products.
        lo, hi: (S,) int64 pool ranges, hi > lo.
        query: (S,) product ids whose latent vectors score the candidates.
        exclude: (S,) product ids that may not be chosen (the source itself), or None.

    Returns:
        (S,) int64 chosen product ids, -1 where every candidate was excluded.
    """
    s = lo.size
    c_lo, c_hi = cum[lo], cum[hi]
    u = rng.random((s, CANDIDATES))
    u *= (c_hi - c_lo)[:, None]
    u += c_lo[:, None]
    # Searching only the slice that holds every slot's range keeps the binary search in cache: callers
    # pass slots of nearby sources together (a random search over millions of entries costs ~1 µs).
    first, last = int(lo.min()), int(hi.max())
    idx = np.searchsorted(cum[first : last + 1], u, side="right") + (first - 1)
    np.clip(idx, lo[:, None], (hi - 1)[:, None], out=idx)  # guards the float edge at c_hi
    cand = idx if pool is None else pool[idx]
    sim = np.einsum("sd,skd->sk", latent[query], latent[cand])
    # Subtracting the row maximum is unnecessary: |sim| <= 1, so exp stays in range.
    w = np.exp(sim * np.float32(1.0 / TEMPERATURE))
    if exclude is not None:
        w[cand == exclude[:, None]] = 0.0
    np.cumsum(w, axis=1, out=w)
    total = w[:, -1].copy()
    pick = (w < (rng.random(s, dtype=np.float32) * total)[:, None]).sum(axis=1)
    chosen = cand[np.arange(s), np.minimum(pick, CANDIDATES - 1)].astype(np.int64)
    chosen[total <= 0] = -1
    return chosen


def _make_relations(
    rng, n, lines, related_missing, leaf, leaf_start, leaf_sub, popularity, has_metadata, latent
):
    """Relation lists for every line, plus one mention for every product nobody else lists.

    Returns (source, type, target, offsets) as documented on Catalogue. Peak memory ≈ 20 bytes per
    requested list entry on top of the catalogue.
    """
    m = lines.size
    n_types = len(RELATION_TYPES)
    lengths = _list_lengths(rng, n, lines, related_missing, popularity)

    # Subcategory ranges of products: leaves of a subcategory are contiguous.
    sub_leaf_start = np.searchsorted(leaf_sub, np.arange(int(leaf_sub.max()) + 2))
    sub_start = leaf_start[sub_leaf_start]  # (S+1,)
    weight = popularity * np.where(has_metadata, 1.0, NO_METADATA_WEIGHT)
    cum = np.concatenate([[0.0], np.cumsum(weight)])
    # Order inside a list: most popular partner first (real lists are ranked by co-occurrence strength).
    pop_order = np.argsort(-popularity, kind="stable").astype(np.int32)
    pop_rank = np.empty(n, dtype=np.int64)
    pop_rank[pop_order] = np.arange(n)
    cum_by_popularity = np.concatenate([[0.0], np.cumsum(weight[pop_order])])
    del weight

    # Slots (one per requested list entry) are drawn for lines taken in product-id order, i.e. leaf by
    # leaf, so the candidates' cumulative weights and latent vectors are read from a small, cached
    # range; keys then carry the line's file position, and one sort restores file order.
    by_product = np.argsort(lines, kind="stable")
    slots_per_line = lengths[by_product].sum(axis=1)
    line_end = np.cumsum(slots_per_line)
    keys = np.empty(int(line_end[-1]), dtype=np.int64)
    kept = 0
    block_start = 0
    while block_start < m:
        first = int(line_end[block_start - 1]) if block_start else 0
        block_stop = max(int(np.searchsorted(line_end, first + _SLOT_CHUNK, side="right")), block_start + 1)
        block = by_product[block_start:block_stop]
        group = np.repeat(
            (block[:, None] * n_types + np.arange(n_types)).ravel(), lengths[block].ravel()
        )  # (slots,) line * 4 + type
        rtype = group % n_types
        src = lines[group // n_types].astype(np.int64)
        scope = (rng.random(group.size)[:, None] > _SCOPE_CUMULATIVE[rtype]).sum(axis=1)
        src_leaf = leaf[src]
        src_sub = leaf_sub[src_leaf]
        target = np.empty(group.size, dtype=np.int64)
        near = scope < 2  # leaf or subcategory: ranges near the block's sources
        lo = np.where(scope[near] == 0, leaf_start[src_leaf[near]], sub_start[src_sub[near]])
        hi = np.where(scope[near] == 0, leaf_start[src_leaf[near] + 1], sub_start[src_sub[near] + 1])
        target[near] = _sample_partners(rng, cum, None, lo, hi, src[near], latent, src[near])
        # Whole-catalogue draws search the popularity-ordered weights, whose mass sits in a cached head.
        far = ~near
        lo, hi = np.zeros(int(far.sum()), dtype=np.int64), np.full(int(far.sum()), n, dtype=np.int64)
        target[far] = _sample_partners(rng, cum_by_popularity, pop_order, lo, hi, src[far], latent, src[far])
        ok = target >= 0
        k = int(ok.sum())
        keys[kept : kept + k] = group[ok] * n + pop_rank[target[ok]]
        kept += k
        block_start = block_stop
    # Sorting by (line, type, partner popularity rank) both orders each list and puts repeated draws
    # of the same partner side by side, so one pass removes them.
    keys = keys[:kept]
    keys.sort()
    if keys.size:
        keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]

    # Orphans: products without a line that no pair list mentions. Each is attached to one line in
    # its leaf (or, failing that, subcategory or anywhere), chosen ∝ that line's list length ×
    # exp(similarity / T). They take part in exactly one pair: the star shape of real catalogues.
    mentioned = np.zeros(n, dtype=bool)
    mentioned[lines] = True
    list_len = np.zeros(m * n_types, dtype=np.int64)
    for start in range(0, keys.size, 4 * _SLOT_CHUNK):
        chunk = keys[start : start + 4 * _SLOT_CHUNK]
        group = chunk // n
        list_len += np.bincount(group, minlength=m * n_types)
        mentioned[pop_order[(chunk % n)[group % n_types < len(PAIR_RELATION_TYPES)]]] = True
    list_len = list_len.reshape(m, n_types)
    orphans = np.flatnonzero(~mentioned)
    del mentioned
    if orphans.size:
        room = list_len[:, 0] + list_len[:, 1]
        eligible = np.flatnonzero(room > 0)  # line indices
        if eligible.size == 0:  # tiny catalogues: any line may host
            eligible = np.arange(m)
            room = np.ones(m, dtype=np.int64)
            related_missing[:] = False
        host_products = lines[eligible]
        order = np.argsort(host_products, kind="stable")  # product order = leaf order
        eligible, host_products = eligible[order], host_products[order]
        host_cum = np.concatenate([[0.0], np.cumsum(room[eligible].astype(np.float64))])
        o_leaf = leaf[orphans]
        o_sub = leaf_sub[o_leaf]
        leaf_lo = np.searchsorted(host_products, leaf_start[o_leaf])
        leaf_hi = np.searchsorted(host_products, leaf_start[o_leaf + 1])
        sub_lo = np.searchsorted(host_products, sub_start[o_sub])
        sub_hi = np.searchsorted(host_products, sub_start[o_sub + 1])
        lo = np.where(leaf_hi > leaf_lo, leaf_lo, np.where(sub_hi > sub_lo, sub_lo, 0))
        hi = np.where(leaf_hi > leaf_lo, leaf_hi, np.where(sub_hi > sub_lo, sub_hi, eligible.size))
        host_pos = np.empty(orphans.size, dtype=np.int64)
        for start in range(0, orphans.size, _SLOT_CHUNK):
            sl = slice(start, start + _SLOT_CHUNK)
            host = _sample_partners(rng, host_cum, host_products, lo[sl], hi[sl], orphans[sl], latent, None)
            host_pos[sl] = np.searchsorted(host_products, host)
        host_line = eligible[host_pos]
        has_bought = list_len[host_line, 0] > 0
        has_viewed = list_len[host_line, 1] > 0
        has_bought &= list_len[host_line, 0] < LENGTH_CAP[0]  # real also_bought lists stop at 100
        host_type = np.where(has_bought & (~has_viewed | (rng.random(orphans.size) < 0.5)), 0, 1)
        new_keys = np.sort((host_line * n_types + host_type) * n + pop_rank[orphans])
        keys = np.insert(keys, np.searchsorted(keys, new_keys), new_keys)

    relation_target = np.empty(keys.size, dtype=np.int32)
    relation_type = np.empty(keys.size, dtype=np.int8)
    relation_source = np.empty(keys.size, dtype=np.int32)
    offsets = np.empty(m * n_types + 1, dtype=np.int64)
    offsets[0] = 0
    for start in range(0, keys.size, 4 * _SLOT_CHUNK):
        sl = slice(start, start + 4 * _SLOT_CHUNK)
        group = keys[sl] // n
        relation_target[sl] = pop_order[keys[sl] % n]
        relation_type[sl] = group % n_types
        relation_source[sl] = lines[group // n_types]
    # Offsets from list lengths: the keys are sorted by group, so lengths in group order delimit lists.
    group_len = np.zeros(m * n_types, dtype=np.int64)
    for start in range(0, keys.size, 4 * _SLOT_CHUNK):
        group_len += np.bincount(keys[start : start + 4 * _SLOT_CHUNK] // n, minlength=m * n_types)
    np.cumsum(group_len, out=offsets[1:])
    return relation_source, relation_type, relation_target, offsets


def _make_text(rng, m, n_subs) -> dict[str, np.ndarray]:
    """Per-line integer codes for the free-text fields (-1: absent).

    Keys: title_prefix, title_size, title_suffix (indices into the title pieces), model (int),
    sentences (M, 3) indices into _SENTENCES, features (M, 2) indices into _FEATURES, image (M,) 'S11'
    (b'' where the line has no imUrl), extra_sub (a second category path under another subcategory).
    """
    u = rng.random((m, 5))
    title_prefix = np.where(u[:, 0] < 0.06, rng.integers(0, len(_TITLE_PREFIXES), m), -1)
    title_size = np.where(u[:, 1] < 0.03, rng.integers(0, len(_TITLE_SIZES), m), -1)
    title_suffix = np.where(u[:, 2] < 0.5, rng.integers(0, len(_TITLE_SUFFIXES), m), -1)
    model = rng.integers(100, 10000, m)
    n_sent = np.where(u[:, 3] < DESCRIPTION_PRESENT, rng.integers(1, 4, m), 0)
    sentences = rng.integers(0, len(_SENTENCES), (m, 3))
    sentences[np.arange(3)[None, :] >= n_sent[:, None]] = -1
    features = rng.integers(0, len(_FEATURES), (m, 2))
    image = _ALPHABET62[rng.integers(0, 62, (m, 11))].view("S11").ravel().copy()
    image[u[:, 4] < IMAGE_MISSING] = b""
    extra_sub = np.where(rng.random(m) < 0.08, rng.integers(0, n_subs, m), -1)
    return {
        "title_prefix": title_prefix,
        "title_size": title_size,
        "title_suffix": title_suffix,
        "model": model,
        "sentences": sentences,
        "features": features,
        "image": image,
        "extra_sub": extra_sub,
    }


# --------------------------------------------------------------------------------------------------
# Writing

_LINES_PER_CHUNK = 20_000
GZIP_NAME = "itemvec-synth"  # in the gzip header: how synth recognises its own files (to replace them)
_COMPRESSLEVEL = 1  # level 1 is several times faster than 6 and, on random ASINs, only ~15 % larger


def write_amazon_2014(path, products: int, seed: int = 0, *, progress: bool = True) -> dict:
    """Write a synthetic catalogue as Amazon 2014 metadata: one ``repr(dict)`` per line.

    The file is gzip-compressed when ``path`` ends in ``.gz`` (level 1, mtime 0 and the name "itemvec-synth" in
    the header, so the same seed gives the same bytes wherever it is written) and plain text otherwise.
    It is written to a temporary name in the same directory and renamed at the end, so an interrupted
    run leaves no half-written file.

    Args:
        path: output file (str or PathLike); its directory must exist.
        products: N, the number of distinct products (ASINs) in the file, at least 10. About 40 % have a
            line of their own, the rest appear only inside other lines' related lists.
        seed: seed of the generator; same (products, seed) → byte-identical file.
        progress: show a tqdm progress bar over lines written.

    Returns:
        ``{'products': N, 'metadata_lines': M, 'relation_mentions': {type: list entries}, 'seconds': s}``
        where seconds is the wall time of generation plus writing.

    Cost: about 9 s and 0.35 GB at 420,000 products (45 MB gzip), about 65 s and 1.3 GB at 2,000,000
    (270 MB gzip), on two cores.
    """
    _check_products(products)
    started = time.perf_counter()
    path = Path(path)
    check_output_file(path, is_synthetic)
    n_lines = max(1, int(round(METADATA_FRACTION * products)))  # known before generation
    with progress_bar(total=n_lines, unit="line", desc="generating catalogue", enabled=progress) as bar:
        catalogue = generate_catalogue(products, seed)
        bar.set_description(f"writing {path.name}")
        _write_lines(catalogue, path, bar.update)
    return {
        "products": catalogue.products,
        "metadata_lines": int(catalogue.lines.size),
        "relation_mentions": catalogue.relation_mentions(),
        "seconds": round(time.perf_counter() - started, 3),
    }


def is_synthetic(path: Path) -> bool:
    """Whether ``path`` is a gzip catalogue this module wrote (its gzip header names ``GZIP_NAME``); a plain
    text file cannot say who wrote it, so it is never overwritten."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(10 + len(GZIP_NAME) + 1)
    except OSError:
        return False
    return header[:3] == b"\x1f\x8b\x08" and bool(header[3] & 0x08) and header[10:] == GZIP_NAME.encode() + b"\0"


def _write_lines(catalogue: Catalogue, path: Path, on_lines) -> None:
    """Format and write every line to ``path`` via a temporary file; ``on_lines(k)`` after each chunk."""
    # A fresh name in the same directory (so os.replace is atomic); mode "xb" refuses to clobber and
    # creates the file with the usual umask permissions, unlike tempfile.mkstemp's 0600.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    m = catalogue.lines.size
    try:
        with open(tmp_path, "xb") as raw:
            sink: BufferedIOBase  # the gzip stream or the file itself
            if path.name.endswith(".gz"):
                sink = gzip.GzipFile(
                    filename=GZIP_NAME, mode="wb", fileobj=raw, compresslevel=_COMPRESSLEVEL, mtime=0
                )
            else:
                sink = raw
            # zlib releases the GIL, so compressing and writing in a thread overlaps with formatting.
            chunks: queue.Queue = queue.Queue(maxsize=4)
            failure: list[BaseException] = []

            def drain() -> None:
                while (data := chunks.get()) is not None:
                    if not failure:
                        try:
                            sink.write(data)
                        except BaseException as error:  # re-raised in the main thread
                            failure.append(error)

            writer = threading.Thread(target=drain, name="synthetic-writer", daemon=True)
            writer.start()
            try:
                reprs = (*_category_reprs(catalogue), [repr(b) for b in catalogue.brand_names])
                for start in range(0, m, _LINES_PER_CHUNK):
                    if failure:
                        break
                    stop = min(start + _LINES_PER_CHUNK, m)
                    chunks.put(_format_chunk(catalogue, start, stop, reprs).encode("utf-8"))
                    on_lines(stop - start)
            finally:
                chunks.put(None)
                writer.join()
            if failure:
                raise failure[0]
            if sink is not raw:
                sink.close()
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _category_reprs(catalogue: Catalogue) -> tuple[list[str], list[str]]:
    """repr() of each leaf's full path and of each subcategory's path (for second paths)."""
    leaf_paths = []
    for leaf_id, name in enumerate(catalogue.leaf_names):
        sub = int(catalogue.leaf_sub[leaf_id])
        top = int(catalogue.sub_top[sub])
        leaf_paths.append(repr([ROOT_CATEGORY, catalogue.top_names[top], catalogue.sub_names[sub], name]))
    sub_paths = [
        repr([ROOT_CATEGORY, catalogue.top_names[int(catalogue.sub_top[s])], name])
        for s, name in enumerate(catalogue.sub_names)
    ]
    return leaf_paths, sub_paths


def _format_chunk(
    catalogue: Catalogue, start: int, stop: int, reprs: tuple[list[str], list[str], list[str]]
) -> str:
    """Lines ``start..stop`` of the file as one string (the only per-line Python loop).

    ``reprs`` is (leaf path reprs, subcategory path reprs, brand name reprs), computed once per file.
    """
    leaf_paths, sub_paths, brand_reprs = reprs
    text = catalogue.text
    items = catalogue.lines[start:stop]
    asin = catalogue.asins[items].astype("U10").tolist()
    leaf = catalogue.leaf[items].tolist()
    sub = catalogue.leaf_sub[catalogue.leaf[items]].tolist()
    brand = catalogue.brand[items].tolist()
    brand_field = catalogue.brand_field[items].tolist()
    price = catalogue.price[items].tolist()
    sales_rank = catalogue.sales_rank[items].tolist()
    related_missing = catalogue.related_missing[start:stop].tolist()
    prefix = text["title_prefix"][start:stop].tolist()
    size = text["title_size"][start:stop].tolist()
    suffix = text["title_suffix"][start:stop].tolist()
    model = text["model"][start:stop].tolist()
    sentences = text["sentences"][start:stop].tolist()
    features = text["features"][start:stop].tolist()
    image = text["image"][start:stop].astype("U11").tolist()
    extra_sub = text["extra_sub"][start:stop].tolist()

    # Related lists: the chunk's mentions as quoted ASINs, then one slice per (line, type).
    offsets = catalogue.relation_offsets[4 * start : 4 * stop + 1]
    base = int(offsets[0])
    quoted = np.char.add(
        np.char.add("'", catalogue.asins[catalogue.relation_target[base : int(offsets[-1])]].astype("U10")),
        "'",
    )
    quoted = quoted.tolist()
    offsets = (offsets - base).tolist()

    leaf_names, sub_names, brand_names = catalogue.leaf_names, catalogue.sub_names, catalogue.brand_names
    out: list[str] = []
    append = out.append
    for i in range(stop - start):
        parts = [f"{{'asin': '{asin[i]}'"]
        noun = leaf_names[leaf[i]]
        brand_name = brand_names[brand[i]]
        if sentences[i][0] >= 0:
            f1, f2 = _FEATURES[features[i][0]], _FEATURES[features[i][1]]
            words = {"brand": brand_name, "noun": noun, "sub": sub_names[sub[i]], "f1": f1, "f2": f2,
                     "model": f"{brand_name} {model[i]}"}  # fmt: skip
            description = " ".join(_SENTENCES[s].format_map(words) for s in sentences[i] if s >= 0)
            parts.append(f", 'description': {description!r}")
        title = brand_name + " " + (_TITLE_PREFIXES[prefix[i]] if prefix[i] >= 0 else "") + noun
        title += f" {chr(65 + model[i] % 26)}{model[i]}"
        if size[i] >= 0:
            title += _TITLE_SIZES[size[i]]
        if suffix[i] >= 0:
            title += _TITLE_SUFFIXES[suffix[i]]
        parts.append(f", 'title': {title!r}")
        if price[i] == price[i]:  # not NaN
            parts.append(f", 'price': {price[i]!r}")
        if image[i]:
            parts.append(f", 'imUrl': 'http://ecx.images-amazon.com/images/I/{image[i]}.jpg'")
        if not related_missing[i]:
            o = offsets[4 * i : 4 * i + 5]
            lists = [
                f"'{RELATION_TYPES[r]}': [{', '.join(quoted[o[r] : o[r + 1]])}]"
                for r in range(4)
                if o[r + 1] > o[r]
            ]
            if lists:
                parts.append(f", 'related': {{{', '.join(lists)}}}")
        if sales_rank[i]:
            parts.append(f", 'salesRank': {{'{ROOT_CATEGORY}': {sales_rank[i]}}}")
        if brand_field[i] == 0:
            parts.append(f", 'brand': {brand_reprs[brand[i]]}")
        elif brand_field[i] == 2:
            parts.append(", 'brand': ''")
        if extra_sub[i] >= 0:
            parts.append(f", 'categories': [{leaf_paths[leaf[i]]}, {sub_paths[extra_sub[i]]}]}}\n")
        else:
            parts.append(f", 'categories': [{leaf_paths[leaf[i]]}]}}\n")
        append("".join(parts))
    return "".join(out)
