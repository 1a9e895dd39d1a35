"""Implicit-feedback user-item models: planted checkerboard, save/load, seeds, samplers, losses, WARP's rank weight,
FM cold start."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from numba import njit

from itemvec import registry
from itemvec.data.types import Interactions
from itemvec.errors import ConfigError, InputError
from itemvec.models import factor
from itemvec.models.useritem import implicit
from itemvec.models.useritem.fm import FactorizationMachine
from itemvec.models.useritem.implicit import (
    BPR,
    WARP,
    ALSUsers,
    sample_negatives,
    warp_rank_weight,
)
from itemvec.models.useritem.neighbours import EASE, ItemKNNUsers, RP3betaUsers
from itemvec.models.useritem.popularity import PopularityUsers
from itemvec.models.useritem.triplet import DeepTriplet, Triplet

CLASSES = {c.name: c for c in (PopularityUsers, BPR, WARP, Triplet, DeepTriplet, FactorizationMachine, ALSUsers,
                               ItemKNNUsers, RP3betaUsers, EASE)}
FAST = {
    "popularity": {},
    "bpr": {"dim": 8, "epochs": 40, "batch_size": 64, "threads": 1, "lr": 0.1},
    "warp": {"dim": 8, "epochs": 40, "batch_size": 64, "threads": 1, "lr": 0.1},
    "triplet": {"dim": 8, "epochs": 30, "batch_size": 64, "threads": 1, "lr": 0.02},
    "deep-triplet": {"dim": 8, "user_dim": 8, "hidden": 16, "epochs": 30, "batch_size": 64, "threads": 1,
                     "lr": 0.01},
    "fm": {"dim": 8, "epochs": 30, "batch_size": 64, "threads": 1, "lr": 0.02},
    "als": {"dim": 8, "epochs": 10, "threads": 1},
    "itemknn": {"neighbours": 20, "shrink": 1.0},
    "rp3beta": {"neighbours": 20},
    "ease": {"l2": 5.0},
}
TRAINED = ["bpr", "warp", "triplet", "deep-triplet", "fm", "als"]  # random initial state: seeds matter
PLANTED = TRAINED + ["itemknn", "rp3beta", "ease"]
GROUP = 12  # users per group and items per group
EXTRA = 2  # items never rated in train


def checkerboard(features: bool = False):
    """Users 0..11 (group A) rate items 0..11 (A) 5 and three B items 1; users 12..23 likewise with B.
    One positive per user is held out (a different one per user, so every item keeps train positives).
    Items 24, 25 have no train rating; with ``features``, item 24 carries group A's feature and 25 none.
    Returns the train Interactions and the held-out (user, item) pairs."""
    users, items, ratings, held = [], [], [], []
    for u in range(2 * GROUP):
        group = u // GROUP
        own = np.arange(GROUP) + group * GROUP
        other = np.arange(GROUP) + (1 - group) * GROUP
        out = own[u % GROUP]
        held.append((u, out))
        for i in own:
            if i != out:
                users.append(u), items.append(i), ratings.append(5.0)
        for i in other[(u + np.arange(3)) % GROUP]:
            users.append(u), items.append(i), ratings.append(1.0)
    n_items = 2 * GROUP + EXTRA
    item_features = None
    if features:
        group_of = np.r_[np.zeros(GROUP, int), np.ones(GROUP, int)]
        rows = np.r_[np.arange(2 * GROUP), 2 * GROUP]
        cols = np.r_[group_of, 0]
        item_features = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_items, 2))
    data = Interactions(2 * GROUP, n_items, np.array(users, np.int64), np.array(items, np.int64),
                        np.array(ratings, np.float32), np.zeros(len(users), np.int64), item_features=item_features,
                        item_feature_names=["group-a", "group-b"] if features else None)
    return data, np.array(held)


def make(name, **extra):
    return CLASSES[name](**{**FAST[name], **extra})


@pytest.mark.parametrize("name", PLANTED)
def test_planted_checkerboard(name):
    data, held = checkerboard(features=name == "fm")
    model = make(name).fit(data, progress=False)
    scores = model.score_users(np.arange(data.n_users))
    aucs = []
    for u, i in held:
        other = np.arange(GROUP) + (1 - u // GROUP) * GROUP
        aucs.append(np.mean(scores[u, i] > scores[u, other]))
    assert np.mean(aucs) > 0.97, aucs
    assert min(aucs) >= 0.75


def test_every_registered_implicit_model_is_in_the_contract():
    implicit_models = {n for n in registry.names("ratings") if registry.get(n, "ratings").kind == "implicit"}
    assert implicit_models == set(CLASSES)


@pytest.mark.parametrize("name", list(CLASSES))
def test_save_load_same_scores_and_unknown_ids(name, tmp_path):
    data, _ = checkerboard()
    model = make(name).fit(data, progress=False)
    users = np.arange(data.n_users)
    scores = model.score_users(users)
    loaded = type(model).load(model.save(tmp_path / name))
    np.testing.assert_array_equal(loaded.score_users(users), scores)
    # score_users and predict agree; never-rated items and unknown users are NaN.
    u, i = np.meshgrid(users, np.arange(data.n_items), indexing="ij")
    np.testing.assert_allclose(loaded.predict(u.ravel(), i.ravel()), scores.ravel(), rtol=1e-5, atol=1e-5)
    assert np.isnan(scores[:, 2 * GROUP:]).all() and np.isfinite(scores[:, :2 * GROUP]).all()
    assert np.isnan(model.predict([-1, data.n_users, 0], [0, 0, data.n_items])).all()
    assert np.isnan(model.score_users([data.n_users])).all()
    top, _ = model.recommend([0], k=3, exclude=data.matrix())
    assert set(top[0]).isdisjoint(data.item[data.user == 0])


@pytest.mark.parametrize("name", TRAINED)
def test_same_seed_same_scores(name):
    data, _ = checkerboard(features=True)
    first = make(name, epochs=3).fit(data, progress=False).score_users(np.arange(data.n_users))
    second = make(name, epochs=3).fit(data, progress=False).score_users(np.arange(data.n_users))
    other = make(name, epochs=3, seed=1).fit(data, progress=False).score_users(np.arange(data.n_users))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first[:, :2 * GROUP], other[:, :2 * GROUP])


def test_popularity_counts_positives():
    data, _ = checkerboard()
    scores = PopularityUsers().fit(data).score_users([0, 13])
    expected = np.bincount(data.item[data.rating >= 4], minlength=data.n_items)
    np.testing.assert_array_equal(scores[0, :2 * GROUP], expected[:2 * GROUP])
    np.testing.assert_array_equal(scores[0], scores[1])


def test_warp_rank_weight_hand_values():
    # log(floor((N - 1) / tries)), at least log(1) = 0.
    assert warp_rank_weight(101, 1) == pytest.approx(math.log(100))
    assert warp_rank_weight(101, 3) == pytest.approx(math.log(33))
    assert warp_rank_weight(101, 100) == 0.0
    assert warp_rank_weight(101, 200) == 0.0
    for n, tries in [(101, 1), (101, 3), (10, 4), (2, 1)]:
        assert factor._warp_weight(n, tries) == pytest.approx(warp_rank_weight(n, tries))


def test_warp_kernel_applies_the_rank_weight():
    # One user, positive item 0, candidates {0, 1, 2}: all scores 0, so the first draw (an item 1 or 2)
    # violates the margin at tries = 1, weight log(floor(2 / 1)) = log 2; plain SGD, lr 0.1, no L2.
    user_f = np.zeros((1, 2), np.float32)
    item_f = np.zeros((3, 2), np.float32)
    bias = np.zeros(3, np.float32)
    acc_u, acc_i, acc_b = np.zeros_like(user_f), np.zeros_like(item_f), np.zeros_like(bias)
    indptr, indices = np.array([0, 1], np.int64), np.array([0], np.int64)
    loss, count = factor.ranking_step(user_f, item_f, bias, acc_u, acc_i, acc_b, np.array([0], np.int64),
                                         np.array([0], np.int64), indptr, indices, np.arange(3, dtype=np.int64),
                                         np.zeros(0), np.zeros(0, np.int32), 0.1, 0.1, 0.0, True, 1, 10, 1.0, False, 7, 1)
    weight = math.log(2)
    assert count == 1
    assert loss == pytest.approx(weight * 1.0)
    assert bias[0] == pytest.approx(0.1 * weight)
    assert bias[1] + bias[2] == pytest.approx(-0.1 * weight) and min(bias[1], bias[2]) < 0


def test_negatives_never_positives():
    data, _ = checkerboard()
    indptr, indices = implicit.positive_rows(data)
    rng = np.random.default_rng(0)
    users = rng.integers(0, data.n_users, 5000)
    negatives = sample_negatives(users, indptr, indices, np.arange(2 * GROUP, dtype=np.int64), rng)
    positives = data.matrix(positives_only=True)
    assert not np.asarray(positives[users, negatives]).any()
    assert set(np.unique(negatives)) <= set(range(2 * GROUP))


def test_the_row_membership_test_is_set_membership():
    rng = np.random.default_rng(3)
    rows = [np.unique(rng.integers(0, 40, rng.integers(0, 12))) for _ in range(30)]  # some rows empty
    indptr = np.r_[0, np.cumsum([len(r) for r in rows])].astype(np.int64)
    indices = np.concatenate(rows).astype(np.int64)
    users, items = rng.integers(-1, 32, 4000), rng.integers(0, 40, 4000)  # -1, 30 and 31: past the rows
    out = np.empty(len(users), np.bool_)
    implicit._in_rows(users, items, indptr, indices, out)
    expected = [0 <= u < len(rows) and i in set(rows[u]) for u, i in zip(users, items)]
    assert out.tolist() == expected and 0 < out.sum() < len(out)
    # The same rows as bits: the same answers, past the rows and past the table's width included.
    bits = implicit.positive_bits(indptr, indices, 40)
    np.testing.assert_array_equal(np.unpackbits(bits, axis=1, bitorder="little")[:, :40],
                                  [[i in set(r) for i in range(40)] for r in rows])
    by_bits = np.empty(len(users), np.bool_)
    implicit._in_bits(users, items, bits, by_bits)
    assert by_bits.tolist() == expected
    implicit._in_bits(np.zeros(3, np.int64), np.array([-1, 40, 1 << 40]), bits, by_bits[:3])
    assert not by_bits[:3].any()


def test_negatives_drawn_with_the_bit_table_are_the_same_draws(monkeypatch):
    """``positive_bits`` changes how a draw is tested, not what is drawn: the same negatives for the same seed,
    uniformly and by popularity; past ``BITS_LIMIT`` there is no table (the search is used)."""
    data, _ = checkerboard()
    indptr, indices = implicit.positive_rows(data)
    candidates = np.arange(2 * GROUP, dtype=np.int64)
    bits = implicit.positive_bits(indptr, indices, len(candidates))
    users = np.random.default_rng(1).integers(0, data.n_users, 3000)
    for cdf in (None, implicit.popularity_cdf(data, candidates, 1.0)):
        searched = sample_negatives(users, indptr, indices, candidates, np.random.default_rng(4), cdf=cdf)
        looked_up = sample_negatives(users, indptr, indices, candidates, np.random.default_rng(4), cdf=cdf, bits=bits)
        np.testing.assert_array_equal(looked_up, searched)
    with pytest.raises(ValueError, match="items must be in"):  # an item past the width would mark the next row
        implicit.positive_bits(indptr, indices, int(indices.max()))
    monkeypatch.setattr(implicit, "BITS_LIMIT", bits.nbytes - 1)
    assert implicit.positive_bits(indptr, indices, len(candidates)) is None


@pytest.mark.parametrize("weights", ["random", "flat runs", "one heavy", "single"])
def test_the_guided_cdf_search_is_searchsorted(weights):
    """``_search_cdf`` (a guide table, then a short binary search) answers as ``np.searchsorted(cdf, x,
    side="right")`` for draws, for the edges themselves and for the ends, on weights with long runs of zeros
    (equal cdf entries), one weight far above the rest, and a single candidate."""
    rng = np.random.default_rng(7)
    w = {"random": rng.random(1000) + 0.01, "flat runs": np.where(rng.random(1000) < 0.7, 0.0, rng.random(1000)),
         "one heavy": np.r_[np.ones(500), 1e6, np.ones(499)], "single": np.array([2.5])}[weights]
    w[-1] = max(w[-1], 0.5)  # a positive total
    cdf = np.cumsum(w)
    guide = implicit.cdf_guide(cdf)
    x = np.r_[rng.random(20000) * cdf[-1], cdf, np.nextafter(cdf, 0), np.arange(len(guide)) * (cdf[-1] / (len(guide) - 1)),
              0.0, cdf[-1]]
    x = x[(x >= 0) & (x <= cdf[-1])]
    out = np.empty(len(x), np.int64)
    implicit._search_cdf(x, cdf, guide, (len(guide) - 1) / cdf[-1], out)
    np.testing.assert_array_equal(out, np.searchsorted(cdf, x, side="right"))


def test_negatives_by_popularity_follow_the_weights():
    data, _ = checkerboard()
    indptr, indices = implicit.positive_rows(data)
    candidates = np.arange(2 * GROUP, dtype=np.int64)
    assert implicit.popularity_cdf(data, candidates, 0.0) is None
    cdf = implicit.popularity_cdf(data, candidates, 1.0)
    counts = np.bincount(data.item, minlength=data.n_items)[candidates]
    np.testing.assert_allclose(np.diff(cdf, prepend=0.0), counts)
    # A user of group A: group A's items are its positives, so draws are group B items ∝ their rating counts.
    user = np.zeros(20000, np.int64)
    drawn = sample_negatives(user, indptr, indices, candidates, np.random.default_rng(0), cdf=cdf)
    assert not np.asarray(data.matrix(positives_only=True)[user[:100], drawn[:100]]).any()
    own = set(indices[indptr[0]:indptr[1]])
    others = np.array([i for i in candidates if i not in own])
    expected = counts[others] / counts[others].sum()
    observed = np.bincount(drawn, minlength=2 * GROUP)[others] / len(drawn)
    np.testing.assert_allclose(observed, expected, atol=0.015)


@njit
def _draws(n, candidates, prob, alias, indptr, indices):
    state, out = np.uint64(11), np.empty(n, np.int64)
    for k in range(n):
        state, out[k] = factor._draw_negative(state, candidates, prob, alias, indptr, indices, 0)
    return out


@pytest.mark.parametrize("power", [0.0, 0.75, 1.0])
def test_ranking_kernel_draws_negatives_by_degree_power(power):
    """The BPR / WARP kernel's negative: never a positive of the row, otherwise ∝ count ** power (uniform at 0)."""
    counts = np.array([1, 2, 4, 8, 16, 32], dtype=np.float64)
    candidates = np.arange(6, dtype=np.int64)
    prob, alias = factor.negative_sampler(counts, power)
    assert (len(prob) == 0) == (power == 0)
    indptr, indices = np.array([0, 1], np.int64), np.array([5], np.int64)  # the row's one positive: item 5
    drawn = _draws(60000, candidates, prob, alias, indptr, indices)
    assert 5 not in drawn
    expected = counts[:5] ** power / (counts[:5] ** power).sum()
    np.testing.assert_allclose(np.bincount(drawn, minlength=6)[:5] / len(drawn), expected, atol=0.01)


def test_triplet_hinge_against_hardest_or_summed():
    import torch

    model = DeepTriplet(margin=0.5, item_bias=False, product=True, user_dim=8, dim=8, l2=0.0)  # the base path
    model._pair_scores = lambda users, items, generator=None: items.to(torch.float32) / 10
    users, positives, negatives = torch.tensor([0, 1]), torch.tensor([5, 9]), torch.tensor([[1, 7], [2, 3]])
    # scores: positive 0.5 and 0.9; negatives (0.1, 0.7) and (0.2, 0.3); hinge max(0, 0.5 - pos + neg).
    hardest = model._triplet_loss(users, positives, negatives, None)
    np.testing.assert_allclose(hardest.numpy(), [0.7, 0.0], atol=1e-6)
    summed = DeepTriplet(margin=0.5, hardest=False, item_bias=False, product=True, user_dim=8, dim=8, l2=0.0)
    summed._pair_scores = model._pair_scores
    np.testing.assert_allclose(summed._triplet_loss(users, positives, negatives, None).numpy(), [0.1 + 0.7, 0.0],
                               atol=1e-6)


def test_fm_scores_cold_item_from_its_features():
    data, _ = checkerboard(features=True)
    model = make("fm").fit(data, progress=False)
    cold, bare = 2 * GROUP, 2 * GROUP + 1
    scores = model.score_users(np.arange(data.n_users))
    assert np.isnan(scores[:, bare]).all()
    assert np.isfinite(scores[:, cold]).all()
    assert scores[:GROUP, cold].min() > scores[GROUP:, cold].max()
    assert np.isnan(model.predict([0], [bare]))[0] and np.isfinite(model.predict([0], [cold]))[0]


def test_fm_scores_unknown_user_from_features():
    data, _ = checkerboard()
    # User 24 has no train rating but group A's feature; user 25 has neither.
    users = 2 * GROUP + 2
    group_of = np.r_[np.zeros(GROUP, int), np.ones(GROUP, int), 0]
    user_features = sp.csr_matrix((np.ones(2 * GROUP + 1, np.float32), (np.arange(2 * GROUP + 1), group_of)),
                                  shape=(users, 2))
    data = Interactions(users, data.n_items, data.user, data.item, data.rating, data.timestamp,
                        user_features=user_features)
    model = make("fm").fit(data, progress=False)
    scores = model.score_users([2 * GROUP, 2 * GROUP + 1])
    # User 25, with neither, gets the popularity ranking (every model's answer for a user it cannot score).
    assert not np.isnan(scores[1, :2 * GROUP]).any()
    np.testing.assert_array_equal(scores[1, :2 * GROUP], model.item_popularity_[:2 * GROUP])
    assert scores[0, :GROUP].mean() > scores[0, GROUP:2 * GROUP].mean()


@pytest.mark.parametrize("name,bad", [("bpr", {"dim": 0}), ("warp", {"max_sampled": 0}),
                                      ("triplet", {"margin": 0.0}), ("deep-triplet", {"dropout": 1.0}),
                                      ("triplet", {"negatives": 0}), ("deep-triplet", {"negative_power": -1.0}),
                                      ("fm", {"schedule": "sometimes"}), ("bpr", {"optimizer": "adam"})])
def test_bad_settings_are_config_errors(name, bad):
    with pytest.raises(ConfigError):
        CLASSES[name](**bad)


def test_deep_triplet_with_product_input():
    data, held = checkerboard()
    model = make("deep-triplet", product=True, user_dim=8).fit(data, progress=False)
    scores = model.score_users(np.arange(data.n_users))
    u, i = np.meshgrid(np.arange(data.n_users), np.arange(2 * GROUP), indexing="ij")
    np.testing.assert_allclose(model.predict(u.ravel(), i.ravel()), scores[:, :2 * GROUP].ravel(), rtol=1e-4,
                               atol=1e-4)
    other = [np.arange(GROUP) + (1 - u // GROUP) * GROUP for u, _ in held]
    assert np.mean([np.mean(scores[u, i] > scores[u, o]) for (u, i), o in zip(held, other)]) > 0.97


def test_ease_is_the_ridge_regression_of_each_item_on_the_others():
    """EASE's closed form B = I − P / diag(P) against an independent oracle: column j of B is the ridge
    regression of item j's column on the other items' columns (its own weight constrained to 0)."""
    data, _ = checkerboard()
    l2 = 3.0
    model = EASE(l2=l2).fit(data, progress=False)
    x = data.matrix(positives_only=True).toarray().astype(np.float64)
    columns = np.flatnonzero(x.any(axis=0))
    x = x[:, columns]
    k = len(columns)
    expected = np.zeros((k, k))
    for j in range(k):
        others = np.r_[0:j, j + 1:k]
        xo = x[:, others]
        expected[others, j] = np.linalg.solve(xo.T @ xo + l2 * np.eye(k - 1), xo.T @ x[:, j])
    np.testing.assert_allclose(model.weights_, expected, rtol=1e-4, atol=1e-5)
    scores = model.score_users(np.arange(data.n_users))
    np.testing.assert_allclose(scores[:, columns], x @ expected, rtol=1e-4, atol=1e-5)


def test_ease_refuses_a_catalogue_over_its_limit(monkeypatch):
    data, _ = checkerboard()
    monkeypatch.setattr(EASE, "MAX_ITEMS", 10)
    with pytest.raises(InputError, match=r"ease: 24 items with train positives, over its limit of 10"):
        EASE().fit(data, progress=False)


def test_user_itemknn_is_the_shrunk_cosine_of_a_dense_oracle():
    data, _ = checkerboard()
    model = ItemKNNUsers(neighbours=5, shrink=2.0, chunk=7).fit(data, progress=False)
    x = data.matrix(positives_only=True).toarray().astype(np.float64)
    count = x.sum(axis=0)
    similarity = x.T @ x / (np.sqrt(np.outer(count, count)) + 2.0)
    np.fill_diagonal(similarity, 0.0)
    for row in similarity:
        row[np.argsort(-row, kind="stable")[5:]] = 0.0
    scores = model.score_users(np.arange(data.n_users))
    rated = np.arange(2 * GROUP)
    np.testing.assert_allclose(scores[:, rated], (x @ similarity)[:, rated], rtol=1e-5, atol=1e-6)
