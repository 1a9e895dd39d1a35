"""Oracle tests for itemvec.evaluate.ranking: the user-item metrics and the user-item protocol.

The kernel's per-user numbers are checked against a slow, obvious Python ranking (sort the candidates, walk
the list), against scikit-learn where its definitions match (``roc_auc_score`` always; ``ndcg_score`` and
``average_precision_score`` without ties, since those average over tied orders while the top-k metrics here
break ties pessimistically), against the reference ``oracles.per_user_auc``, and on hand-computed golden values.
Scores come from a few levels plus NaN, so ties and unscorable items are the rule, not the exception.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sklearn_metrics = pytest.importorskip("sklearn.metrics")

sys.path.insert(0, str(Path(__file__).parent))
import oracles  # noqa: E402  (tests/oracles.py: the reference metrics)

from itemvec.data.types import Interactions  # noqa: E402
from itemvec.evaluate import metrics  # noqa: E402  (after the importorskip on purpose)
from itemvec.evaluate.ranking import (  # noqa: E402
    RANKING_POLICY,
    UserRankingStats,
    baseline_rmse,
    evaluate_user_model,
    map_at_k,
    ndcg_at_k,
    per_user_auc,
    precision_at_k,
    recall_at_k,
    user_ranking_stats,
)
from itemvec.models.useritem.base import UserItemModel  # noqa: E402

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIELDS = ("auc", "precision", "recall", "average_precision", "ndcg")


# --------------------------------------------------------------------------------------------------
# Strategies and slow references
# --------------------------------------------------------------------------------------------------


@st.composite
def ranking_problem(draw, max_users: int = 5, max_items: int = 12, max_relevant: int = 5):
    """(scores float32 with NaN, relevant lists, exclude lists, k): few score levels, so many ties."""
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(1, max_items))
    levels = draw(st.integers(1, 4))
    # Level -1 stands for NaN (unscorable).
    flat = draw(st.lists(st.integers(-1, levels - 1), min_size=n_users * n_items, max_size=n_users * n_items))
    scores = np.array(flat, dtype=np.float32).reshape(n_users, n_items) * np.float32(0.25)
    scores[scores < 0] = np.nan
    item = st.integers(0, n_items - 1)
    relevant = [np.array(draw(st.lists(item, max_size=max_relevant)), dtype=np.int64) for _ in range(n_users)]
    exclude = [np.array(draw(st.lists(item, max_size=4)), dtype=np.int64) for _ in range(n_users)]
    k = draw(st.integers(1, n_items + 2))
    return scores, relevant, exclude, k


def slow_user(row, relevant, exclude, k):
    """The obvious version for one user: dict of metrics, None where the user has no relevant candidate."""
    excluded = set(np.asarray(exclude).tolist())
    relevant = set(np.asarray(relevant).tolist()) - excluded
    candidates = [j for j in range(len(row)) if j not in excluded]
    key = {j: (-math.inf if math.isnan(row[j]) else float(row[j])) for j in candidates}
    if not relevant:
        return None
    # Best first; among equal scores the non-relevant ones first (pessimistic: False sorts before True).
    ranking = sorted(candidates, key=lambda j: (-key[j], j in relevant))
    hits = [1 if j in relevant else 0 for j in ranking[:k]]
    m = len(relevant)
    ap, found = 0.0, 0
    for i, h in enumerate(hits):
        if h:
            found += 1
            ap += found / (i + 1)
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, m)))
    wins, pairs = 0.0, 0
    for a in relevant:
        for b in candidates:
            if b not in relevant:
                pairs += 1
                wins += 1.0 if key[a] > key[b] else 0.5 if key[a] == key[b] else 0.0
    return {"auc": wins / pairs if pairs else math.nan, "precision": sum(hits) / k, "recall": sum(hits) / m,
            "average_precision": ap / min(k, m), "ndcg": dcg / ideal, "hits": sum(hits), "n_relevant": m,
            "n_candidates": len(candidates)}


def assert_matches_slow(stats, scores, relevant, exclude, k):
    for u in range(scores.shape[0]):
        expected = slow_user(scores[u], relevant[u], exclude[u], k)
        if expected is None:
            assert stats.n_relevant[u] == 0
            assert all(np.isnan(getattr(stats, f)[u]) for f in FIELDS)
            continue
        for field in FIELDS:
            value, want = getattr(stats, field)[u], expected[field]
            assert (np.isnan(value) and np.isnan(want)) or value == pytest.approx(want, abs=1e-12), (u, field)
        assert (stats.hits[u], stats.n_relevant[u], stats.n_candidates[u]) == (
            expected["hits"], expected["n_relevant"], expected["n_candidates"])


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


@SETTINGS
@given(ranking_problem())
def test_stats_match_slow_loop(problem):
    scores, relevant, exclude, k = problem
    stats = user_ranking_stats(scores, relevant, exclude, k=k)
    assert_matches_slow(stats, scores, relevant, exclude, k)
    # The means are the means of the defined per-user values; no defined value at all is an error.
    for function, field in ((precision_at_k, "precision"), (recall_at_k, "recall"),
                            (map_at_k, "average_precision"), (ndcg_at_k, "ndcg")):
        values = getattr(stats, field)
        if np.isnan(values).all():
            with pytest.raises(ValueError, match="no user has a relevant item"):
                function(scores, relevant, exclude, k=k)
        else:
            assert function(scores, relevant, exclude, k=k) == pytest.approx(np.nanmean(values), abs=1e-12)
    if np.isnan(stats.auc).all():
        with pytest.raises(ValueError, match="no user has a relevant item and a non-relevant"):
            per_user_auc(scores, relevant, exclude)
    else:
        assert per_user_auc(scores, relevant, exclude) == pytest.approx(np.nanmean(stats.auc), abs=1e-12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ranking_problem(max_users=4, max_items=90, max_relevant=80))
def test_stats_match_slow_loop_with_many_relevant_items(problem):
    """Larger problems, up to 80 relevant items a user, in either precision agree with the slow loop (users
    past ``rank_kernels.FEW_RELEVANT`` relevant candidates, when drawn, are ranked by a search per candidate;
    the test below makes sure one is)."""
    from itemvec.evaluate.rank_kernels import FEW_RELEVANT

    scores, relevant, exclude, k = problem
    stats = user_ranking_stats(scores, relevant, exclude, k=k)
    assert_matches_slow(stats, scores, relevant, exclude, k)
    float64 = user_ranking_stats(scores.astype(np.float64), relevant, exclude, k=k)
    for field in ("auc", "n_relevant", "hits", "ndcg"):  # the same counts in the scores' other precision
        np.testing.assert_array_equal(getattr(float64, field), getattr(stats, field))
    assert FEW_RELEVANT < 80  # (so that the strategy can reach the search)


@SETTINGS
@given(ranking_problem(max_items=14), st.data())
def test_ranking_chosen_columns_is_ranking_their_copy(problem, data):
    """``columns=`` ranks those score columns as ``np.take`` of them would, without the copy."""
    scores, relevant, exclude, k = problem
    n_items = scores.shape[1]
    columns = np.sort(data.draw(st.lists(st.integers(0, n_items - 1), min_size=1, max_size=n_items, unique=True)))
    wide = np.full((scores.shape[0], n_items + 3), np.float32(9.0))  # columns outside `columns` must not count
    wide[:, :n_items] = scores
    positions = [np.flatnonzero(np.isin(columns, r)) for r in relevant]
    skipped = [np.flatnonzero(np.isin(columns, e)) for e in exclude]
    got = user_ranking_stats(wide, positions, skipped, k=k, columns=columns)
    want = user_ranking_stats(np.take(scores, columns, axis=1), positions, skipped, k=k)
    for field in ("n_relevant", "n_candidates", "hits") + FIELDS:
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field))


def test_bad_columns_are_refused():
    scores = np.zeros((2, 4), np.float32)
    for columns in ([4], [-1], [[0, 1]], [2, 1], [1, 1], [False, True], [0.0, 1.0]):
        with pytest.raises(ValueError, match="columns must be"):
            user_ranking_stats(scores, [[0], [1]], columns=np.array(columns))
    # No column at all, as a copy of none: no candidates, nothing ranked.
    none = user_ranking_stats(scores, [[], []], columns=np.array([], dtype=np.int64))
    assert none.n_candidates.tolist() == [0, 0] and np.isnan(none.auc).all()


def test_both_ways_of_counting_meet_on_one_user():
    """One user with many relevant items and one with few, on the same scores: the figures are the slow loop's
    (the two ways in ``user_ranking`` cover a user each)."""
    from itemvec.evaluate.rank_kernels import FEW_RELEVANT

    rng = np.random.default_rng(5)
    n_items = 400
    scores = np.round(rng.standard_normal((2, n_items)), 1).astype(np.float32)  # ties
    scores[:, ::37] = np.nan
    relevant = [rng.choice(n_items, FEW_RELEVANT + 20, replace=False), rng.choice(n_items, 3, replace=False)]
    exclude = [rng.choice(n_items, 30, replace=False), rng.choice(n_items, 30, replace=False)]
    for k in (1, 10, 100):
        stats = user_ranking_stats(scores, relevant, exclude, k=k)
        assert_matches_slow(stats, scores, relevant, exclude, k)
        assert stats.n_relevant[0] > FEW_RELEVANT >= stats.n_relevant[1]


@SETTINGS
@given(ranking_problem())
def test_auc_matches_metrics_per_user_auc_and_sklearn(problem):
    scores, relevant, exclude, _ = problem
    auc = user_ranking_stats(scores, relevant, exclude).auc
    # oracles.per_user_auc takes -inf but not NaN, and keeps an item both relevant and excluded as relevant;
    # this module excludes it, so hand it the relevant candidates only.
    as_minus_inf = np.where(np.isnan(scores), -np.inf, scores.astype(np.float64))
    candidates_only = [np.setdiff1d(r, e) for r, e in zip(relevant, exclude)]
    np.testing.assert_allclose(auc, oracles.per_user_auc(as_minus_inf, candidates_only, exclude), atol=1e-12)
    for u in np.flatnonzero(~np.isnan(auc)):
        keep = ~np.isin(np.arange(scores.shape[1]), exclude[u])
        labels = np.isin(np.arange(scores.shape[1]), relevant[u])[keep]
        row = scores[u, keep].astype(np.float64)
        # NaN ranks below every finite score, tied with the other NaNs: one value below the minimum.
        row[np.isnan(row)] = (np.nanmin(row) if not np.isnan(row).all() else 0.0) - 1.0
        assert auc[u] == pytest.approx(sklearn_metrics.roc_auc_score(labels, row), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_ndcg_and_average_precision_match_sklearn_without_ties(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items = 20, 30
    scores = rng.standard_normal((n_users, n_items)).astype(np.float32)  # continuous: no ties
    relevant = [rng.choice(n_items, rng.integers(1, 8), replace=False) for _ in range(n_users)]
    exclude = [np.setdiff1d(rng.choice(n_items, rng.integers(0, 6), replace=False), r) for r in relevant]
    for k in (1, 5, 10, n_items):
        stats = user_ranking_stats(scores, relevant, exclude, k=k)
        for u in range(n_users):
            keep = ~np.isin(np.arange(n_items), exclude[u])
            labels = np.isin(np.arange(n_items), relevant[u])[keep]
            row = scores[u, keep].astype(np.float64)
            assert stats.ndcg[u] == pytest.approx(sklearn_metrics.ndcg_score([labels], [row], k=k), abs=1e-12)
            if k >= n_items:  # AP@k with k >= the number of candidates is the full-list AP
                assert stats.average_precision[u] == pytest.approx(
                    sklearn_metrics.average_precision_score(labels, row), abs=1e-12)
                assert stats.average_precision[u] == pytest.approx(metrics.average_precision(labels, row))
                assert stats.recall[u] == 1.0


@pytest.mark.parametrize("seed", range(4))
def test_precision_recall_map_ndcg_match_pytrec_eval(seed):
    """trec_eval's P_k, recall_k and ndcg_cut_k (through pytrec_eval) agree with ours on a run of every
    candidate (the excluded items left out) and continuous scores (trec_eval breaks ties by document id, we
    pessimistically). MAP: trec_eval's map_cut_k divides the top-k precision sum by the number of relevant
    items; ours (as implicit and Kaggle's apk) by min(k, number relevant). So ours = trec_eval's ·
    m / min(k, m): equal when a user has at most k relevant items, larger otherwise."""
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(seed)
    n_users, n_items = 25, 40
    scores = rng.standard_normal((n_users, n_items))
    relevant = [rng.choice(n_items, rng.integers(1, 16), replace=False) for _ in range(n_users)]
    exclude = [np.setdiff1d(rng.choice(n_items, rng.integers(0, 6), replace=False), r) for r in relevant]
    for k in (1, 5, 10):
        stats = user_ranking_stats(scores, relevant, exclude, k=k)
        qrels = {f"u{u}": {f"d{i}": 1 for i in relevant[u]} for u in range(n_users)}
        run = {f"u{u}": {f"d{i}": float(scores[u, i]) for i in range(n_items) if i not in set(exclude[u])}
               for u in range(n_users)}
        measures = {f"P_{k}", f"recall_{k}", f"ndcg_cut_{k}", f"map_cut_{k}"}
        trec = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
        for u in range(n_users):
            got = trec[f"u{u}"]
            m = len(relevant[u])
            assert stats.precision[u] == pytest.approx(got[f"P_{k}"], abs=1e-9)
            assert stats.recall[u] == pytest.approx(got[f"recall_{k}"], abs=1e-9)
            assert stats.ndcg[u] == pytest.approx(got[f"ndcg_cut_{k}"], abs=1e-9)
            assert stats.average_precision[u] == pytest.approx(got[f"map_cut_{k}"] * m / min(k, m), abs=1e-9)


def test_golden_values_three_users():
    nan = np.nan
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5],
                       [nan, 0.5, 0.5, nan, 0.1],
                       [1.0, 2.0, 3.0, 4.0, 5.0]], dtype=np.float32)
    relevant = [np.array([1, 3]), np.array([0, 2]), np.array([4])]
    exclude = [np.array([0]), np.array([4]), np.array([4])]
    # User 0: candidates 1 (rel), 2, 3 (rel), 4 in that order. Top 2 holds one hit at position 0.
    #   AUC: 1 beats 2 and 4, 3 loses to 2 and beats 4 -> 3/4. AP@2 = (1/1) / min(2, 2) = 1/2.
    #   NDCG@2 = 1 / (1 + 1/log2 3).
    # User 1: NaN ranks as -inf, so pessimistically 1, 2 (rel, tied with 1), 3, 0 (rel, tied with 3).
    #   One hit at position 1: precision 1/2, recall 1/2, AP@2 = (1/2) / 2, NDCG@2 = (1/log2 3) / (1 + 1/log2 3).
    #   AUC: 0 loses to 1 and ties 3 (1/2); 2 ties 1 (1/2) and beats 3 (1) -> 2/4.
    # User 2: its only relevant item is a train item, so it is excluded, and so is the user.
    stats = user_ranking_stats(scores, relevant, exclude, k=2)
    ideal = 1 + 1 / math.log2(3)
    np.testing.assert_allclose(stats.auc, [0.75, 0.5, nan])
    np.testing.assert_allclose(stats.precision, [0.5, 0.5, nan])
    np.testing.assert_allclose(stats.recall, [0.5, 0.5, nan])
    np.testing.assert_allclose(stats.average_precision, [0.5, 0.25, nan])
    np.testing.assert_allclose(stats.ndcg, [1 / ideal, (1 / math.log2(3)) / ideal, nan])
    assert stats.n_relevant.tolist() == [2, 2, 0] and stats.n_candidates.tolist() == [4, 4, 4]
    assert per_user_auc(scores, relevant, exclude) == pytest.approx(0.625)
    assert precision_at_k(scores, relevant, exclude, k=2) == pytest.approx(0.5)
    assert recall_at_k(scores, relevant, exclude, k=2) == pytest.approx(0.5)
    assert map_at_k(scores, relevant, exclude, k=2) == pytest.approx(0.375)
    assert ndcg_at_k(scores, relevant, exclude, k=2) == pytest.approx(0.5)  # the two users' NDCGs sum to 1


def test_excluded_items_never_count_and_users_without_relevant_are_skipped():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((6, 40)).astype(np.float32)
    relevant = [rng.choice(40, 5, replace=False) for _ in range(6)]
    exclude = [rng.choice(40, 10, replace=False) for _ in range(6)]
    relevant[4] = exclude[4][:3]  # all its relevant items are train items: not ranked
    relevant[5] = np.array([], dtype=np.int64)
    base = user_ranking_stats(scores, relevant, exclude, k=5)
    assert base.n_relevant[4] == base.n_relevant[5] == 0
    assert np.isnan(base.auc[4:]).all() and np.isnan(base.precision[4:]).all()
    # Whatever the excluded items score (even +inf), nothing changes.
    moved = scores.copy()
    for u, items in enumerate(exclude):
        moved[u, items] = np.inf
    for field in FIELDS + ("hits", "n_relevant", "n_candidates"):
        np.testing.assert_array_equal(getattr(user_ranking_stats(moved, relevant, exclude, k=5), field),
                                      getattr(base, field))
    # The mean over users equals the mean over the rankable users only.
    assert precision_at_k(scores, relevant, exclude, k=5) == pytest.approx(np.mean(base.precision[:4]))


def test_unscorable_user_gets_auc_half_and_no_hits():
    scores = np.full((1, 10), np.nan, dtype=np.float32)
    stats = user_ranking_stats(scores, [np.array([2, 7])], [np.array([0])], k=3)
    assert stats.auc[0] == 0.5 and stats.hits[0] == 0 and stats.ndcg[0] == 0.0
    # With fewer non-relevant candidates than k, the relevant items fill the remaining places.
    stats = user_ranking_stats(scores[:, :4], [np.array([2, 3])], [np.array([0])], k=3)
    assert stats.hits[0] == 2 and stats.precision[0] == pytest.approx(2 / 3)


def test_input_forms_agree_and_bad_input_is_rejected():
    rng = np.random.default_rng(4)
    scores = rng.standard_normal((4, 9)).astype(np.float32)
    relevant = [np.array([1, 2]), np.array([], dtype=np.int64), np.array([8, 8, 0]), np.array([3])]
    exclude = [np.array([0]), np.array([5]), np.array([], dtype=np.int64), np.array([3, 4])]

    def as_sparse(lists):
        rows = np.repeat(np.arange(len(lists)), [len(a) for a in lists])
        cols = np.concatenate(lists).astype(np.int64)
        m = sp.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=scores.shape)
        m.data[:] = 1.0
        return m

    from_lists = user_ranking_stats(scores, relevant, exclude, k=3)
    from_sparse = user_ranking_stats(scores, as_sparse(relevant), as_sparse(exclude), k=3)
    from_masks = user_ranking_stats(scores, as_sparse(relevant).toarray() > 0, as_sparse(exclude).toarray() > 0,
                                    k=3)
    from_float64 = user_ranking_stats(scores.astype(np.float64), relevant, exclude, k=3)
    for other in (from_sparse, from_masks, from_float64):
        for field in FIELDS + ("hits", "n_relevant", "n_candidates"):
            np.testing.assert_array_equal(getattr(other, field), getattr(from_lists, field))
    assert from_lists.n_relevant.tolist() == [2, 0, 2, 0]  # duplicates once; excluded item 3 not relevant
    # Without exclusions every item is a candidate.
    assert user_ranking_stats(scores, relevant).n_candidates.tolist() == [9, 9, 9, 9]

    with pytest.raises(ValueError, match="2-D"):
        user_ranking_stats(scores[0], relevant)
    with pytest.raises(ValueError, match="k must be"):
        user_ranking_stats(scores, relevant, k=0)
    with pytest.raises(ValueError, match="3 entries"):
        user_ranking_stats(scores, relevant[:3])
    with pytest.raises(ValueError, match="outside"):
        user_ranking_stats(scores, [np.array([9])] + relevant[1:])
    with pytest.raises(ValueError, match="shape"):
        user_ranking_stats(scores, sp.csr_matrix((4, 8)))
    with pytest.raises(ValueError, match="boolean mask"):
        user_ranking_stats(scores, np.zeros((4, 9), dtype=np.int64))


@SETTINGS
@given(ranking_problem(), st.integers(0, 3))
def test_properties_bounds_identities_and_batching(problem, split):
    scores, relevant, exclude, k = problem
    stats = user_ranking_stats(scores, relevant, exclude, k=k)
    for field in FIELDS:
        values = getattr(stats, field)
        assert np.all((values[~np.isnan(values)] >= 0) & (values[~np.isnan(values)] <= 1 + 1e-12))
    ranked = stats.n_relevant > 0
    np.testing.assert_allclose(stats.precision[ranked] * k, stats.hits[ranked])
    np.testing.assert_allclose(stats.recall[ranked] * stats.n_relevant[ranked], stats.hits[ranked])
    # Per-user values do not depend on which other users share the batch.
    split = min(split, scores.shape[0])
    parts = [user_ranking_stats(scores[:split], relevant[:split], exclude[:split], k=k),
             user_ranking_stats(scores[split:], relevant[split:], exclude[split:], k=k)]
    joined = UserRankingStats.concatenate(parts)
    for field in FIELDS + ("hits",):
        np.testing.assert_array_equal(getattr(joined, field), getattr(stats, field))
    # A strictly increasing transform of the scores changes nothing (NaN stays NaN).
    transformed = np.exp(scores.astype(np.float64)) * 3.0 - 1.0
    again = user_ranking_stats(transformed, relevant, exclude, k=k)
    for field in FIELDS:
        np.testing.assert_allclose(getattr(again, field), getattr(stats, field), atol=1e-12)


# --------------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------------


def interactions(n_users, n_items, triples, **extra) -> Interactions:
    triples = np.array(triples, dtype=np.float64).reshape(-1, 3)
    return Interactions(n_users=n_users, n_items=n_items, user=triples[:, 0].astype(np.int64),
                        item=triples[:, 1].astype(np.int64), rating=triples[:, 2].astype(np.float32),
                        timestamp=np.zeros(len(triples), dtype=np.int64), **extra)


class FixedScores(UserItemModel):
    """A user-item model whose predictions are a hand-set table; items without train ratings give NaN."""

    name = "fixed-scores"

    def __init__(self, table, kind: str = "explicit") -> None:
        super().__init__()
        self.table = np.asarray(table, dtype=np.float64)
        self.kind = kind

    def fit(self, data, **kwargs):
        self._mark_known(data)
        self._fitted(data)  # what Model.fit keeps after _fit: the popularity ranking of users without history
        return self

    def _predict(self, users, items):
        return self.table[users, items]

    def _score_users(self, users):
        return self.table[users]


# Users 0-2, items 0-3; item 3 has no train rating, so the model gives it NaN. Global train mean 13/4.
TRAIN = [(0, 0, 5), (1, 1, 3), (2, 0, 1), (2, 2, 4)]
TEST = [(0, 1, 4), (0, 3, 5), (1, 2, 2), (2, 1, 5)]
TABLE = [[4.0, 4.5, 3.0, 0.0], [2.0, 1.0, 2.5, 0.0], [1.0, 4.0, 3.0, 0.0]]


@pytest.mark.parametrize("batch_users", [1, 2, 1024])
def test_evaluate_user_model_golden_values(batch_users):
    train, test = interactions(3, 4, TRAIN), interactions(3, 4, TEST)
    model = FixedScores(TABLE).fit(train)
    result = evaluate_user_model(model, train, test, k=2, batch_users=batch_users)
    # Rating errors: 4.5 vs 4, NaN -> 3.25 vs 5, 2.5 vs 2, 4.0 vs 5.
    assert result["n_imputed"] == 1
    assert result["rmse"] == pytest.approx(math.sqrt((0.25 + 1.75**2 + 0.25 + 1.0) / 4))
    assert result["rmse_scaled"] == pytest.approx(result["rmse"] / 4)
    assert result["mae"] == pytest.approx((0.5 + 1.75 + 0.5 + 1.0) / 4)
    # Relevant (rating >= 4): user 0 {1, 3}, user 2 {1}; user 1 (a 2) is not ranked. By default the candidates
    # are the items with a train rating, {0, 1, 2}: item 3 (no train rating) is out, with user 0's relevant 3.
    # User 0 ranks 1 (4.5, rel), 2 (3.0): P@2 1/2, R@2 1, AP@2 1, NDCG 1, AUC 1.
    # User 2 ranks 1 (4.0, rel) alone (0 and 2 are its train items): P@2 1/2, R 1, AP 1, NDCG 1, AUC undefined.
    assert result["auc_per_user"] == pytest.approx(1.0) and result["n_users_auc"] == 1
    assert result["precision_at_2"] == pytest.approx(0.5)
    assert result["recall_at_2"] == pytest.approx(1.0)
    assert result["map_at_2"] == pytest.approx(1.0)
    assert result["ndcg_at_2"] == pytest.approx(1.0)
    assert (result["n_users_ranked"], result["n_test_ratings"], result["n_items_ranked"]) == (2, 4, 3)
    # The whole catalogue (the second columns): user 0 ranks 1 (rel), 2, 3 (NaN, rel): NDCG 1/(1 + 1/log2 3),
    # AUC 1/2; user 2 ranks 1 (rel), 3 (NaN): NDCG 1, AUC 1.
    assert result["auc_per_user_all_items"] == pytest.approx(0.75)
    assert result["ndcg_at_2_all_items"] == pytest.approx((1 / (1 + 1 / math.log2(3)) + 1) / 2)
    # The triplet notebook's protocol: only train positives excluded (user 2's item 0, rated 1, competes):
    # user 0 as above (AUC 1/2); user 2: 1 (4.0, rel) over 0 (1.0) and 3 (NaN): AUC 1.
    assert result["auc_per_user_notebook"] == pytest.approx(0.75)
    assert result["n_users_cold"] == 0 and result["auc_per_user_cold"] is None
    assert result["auc_per_user_warm"] == pytest.approx(result["auc_per_user"])


def test_users_without_train_history_get_the_popularity_ranking_and_are_reported_apart():
    # User 3 has no train rating; items 0 (two positives), 2 (one) and 1 (none) rank in that order for them.
    train = interactions(4, 4, [(0, 0, 5), (1, 1, 3), (2, 0, 4), (2, 2, 4)])
    test = interactions(4, 4, [(0, 1, 4), (3, 2, 5), (1, 2, 4)])
    table = np.zeros((4, 4)) + [[0.0, 2.0, 1.0, 0.0]]
    model = FixedScores(table, kind="implicit").fit(train)
    scores = model.score_users([3])[0]
    assert model.cold_user(3) and not model.cold_user(0)
    np.testing.assert_array_equal(scores[:3], [2.0, 0.0, 1.0])
    assert np.isnan(scores[3])
    result = evaluate_user_model(model, train, test, k=2)
    # Cold user 3: relevant 2 ranked second behind 0 (AUC 1/2: 2 over 1, under 0); warm users 0 and 1 rank by the
    # table: user 0 {1} first of {1, 2} (AUC 1), user 1 {2} behind 0 (0.0 tie, pessimistic) of {0, 2}: AUC 1.
    assert result["n_users_cold"] == 1 and result["n_users_ranked"] == 3
    assert result["auc_per_user_cold"] == pytest.approx(0.5)
    assert result["ndcg_at_2_cold"] == pytest.approx(1 / math.log2(3))
    assert result["auc_per_user_warm"] == pytest.approx(1.0)


def test_evaluate_user_model_implicit_all_test_items_and_validation():
    train, test = interactions(3, 4, TRAIN), interactions(3, 4, TEST)
    implicit = evaluate_user_model(FixedScores(TABLE, kind="implicit").fit(train), train, test, k=2)
    assert implicit["rmse"] is implicit["rmse_scaled"] is implicit["mae"] is implicit["n_imputed"] is None
    assert implicit["auc_per_user"] == pytest.approx(1.0) and implicit["n_users_ranked"] == 2
    # Every test item relevant: user 1 joins with item 2 ranked first (2.5 over 2.0; item 3 has no train rating).
    everything = evaluate_user_model(FixedScores(TABLE).fit(train), train, test, k=2, positives_only=False)
    assert everything["n_users_ranked"] == 3
    assert everything["auc_per_user"] == pytest.approx(1.0)  # users 0 and 1; user 2 has no non-relevant candidate
    assert everything["recall_at_2"] == pytest.approx(1.0)
    assert everything["auc_per_user_all_items"] == pytest.approx((0.5 + 1 + 1) / 3)
    # A validation interaction is known, not a candidate: user 2's only relevant item drops out.
    with_validation = interactions(3, 4, TRAIN, validation=interactions(3, 4, [(2, 1, 5), (0, 2, 3)]))
    result = evaluate_user_model(FixedScores(TABLE).fit(train), with_validation, test, k=2)
    assert result["n_users_ranked"] == 1
    # User 0 now ranks 1 (rel) alone (3 has no train rating): one hit, AUC undefined (no non-relevant candidate).
    assert result["n_users_auc"] == 0 and result["auc_per_user"] is None
    assert result["precision_at_2"] == 0.5 and result["map_at_2"] == 1.0


def test_evaluate_user_model_duck_typed_model_matches_direct_metrics():
    rng = np.random.default_rng(7)
    n_users, n_items = 40, 25
    pairs = rng.choice(n_users * n_items, 400, replace=False)
    ratings = rng.integers(1, 6, len(pairs))
    triples = np.c_[pairs // n_items, pairs % n_items, ratings]
    train = interactions(n_users, n_items, triples[:250])
    test = interactions(n_users, n_items, triples[250:])
    table = np.round(rng.standard_normal((n_users, n_items)), 1).astype(np.float32)  # ties
    table[rng.random(table.shape) < 0.1] = np.nan

    class Duck:
        kind = "implicit"

        def predict(self, users, items):
            return table[users, items].astype(np.float64)

        def score_users(self, users):
            return table[users]

    result = evaluate_user_model(Duck(), train, test, k=5, batch_users=7)
    relevant = test.matrix(positives_only=True)
    stats = user_ranking_stats(table, relevant, train.matrix(), k=5)
    assert result["n_users_ranked"] == int(np.count_nonzero(stats.n_relevant))
    assert result["auc_per_user"] == pytest.approx(stats.mean("auc"))
    assert result["ndcg_at_5"] == pytest.approx(stats.mean("ndcg"))
    assert result["map_at_5"] == pytest.approx(stats.mean("average_precision"))
    assert "candidates" in RANKING_POLICY.lower() and "nan" in RANKING_POLICY.lower()

    class WrongWidth(Duck):
        def score_users(self, users):
            return table[users, :-1]

    with pytest.raises(ValueError, match="whole catalogue"):
        evaluate_user_model(WrongWidth(), train, test)


def test_baseline_rmse_golden_values_and_slow_loop():
    train, test = interactions(3, 4, TRAIN), interactions(3, 4, TEST)
    result = baseline_rmse(train, test, item_damping=0.0, user_damping=0.0)
    # Global mean 3.25: errors 0.75, 1.75, 1.25, 1.75.
    assert result["global_mean"]["rmse"] == pytest.approx(math.sqrt((0.75**2 + 2 * 1.75**2 + 1.25**2) / 4))
    assert result["global_mean"]["mae"] == pytest.approx(5.5 / 4)
    # Item biases -0.25, -0.25, 0.75, 0 (unseen); user biases 2, 0, -1. Predictions 5.0, 5.25 -> 5 (clipped),
    # 4.0, 2.0 against 4, 5, 2, 5.
    assert result["user_item_bias"]["rmse"] == pytest.approx(math.sqrt((1 + 0 + 4 + 9) / 4))
    assert result["user_item_bias"]["rmse_scaled"] == pytest.approx(math.sqrt(3.5) / 4)
    assert result["user_item_bias"]["mae"] == pytest.approx(1.5)

    rng = np.random.default_rng(2)
    triples = np.c_[rng.integers(0, 8, 120), rng.integers(0, 15, 120), rng.integers(1, 6, 120)]
    train, test = interactions(8, 15, triples[:90]), interactions(8, 15, triples[90:])
    mu = float(np.mean(triples[:90, 2]))
    item_bias = {i: sum(r - mu for _, j, r in triples[:90] if j == i) / (25 + sum(triples[:90, 1] == i))
                 for i in range(15)}
    user_bias = {u: sum(r - mu - item_bias[j] for v, j, r in triples[:90] if v == u) / (10 + sum(triples[:90, 0] == u))
                 for u in range(8)}
    predicted = [min(5.0, max(1.0, mu + user_bias[u] + item_bias[i])) for u, i, _ in triples[90:]]
    expected = math.sqrt(np.mean((np.array(predicted) - triples[90:, 2]) ** 2))
    assert baseline_rmse(train, test)["user_item_bias"]["rmse"] == pytest.approx(expected)
