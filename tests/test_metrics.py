"""Oracle tests for itemvec.evaluate.metrics and the user-item reference metrics in tests/oracles.py.

Each fast metric is checked three ways: against scikit-learn where it has the metric, against a slow
and obvious Python loop, and on a few hand-computed golden values. The hypothesis strategies draw scores
from a handful of integer values so that ties are the rule, not the exception (as LightFM tests its
metrics); ties are where vectorised ranking code usually goes wrong.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sklearn_metrics = pytest.importorskip("sklearn.metrics")

from itemvec.evaluate.metrics import (  # noqa: E402  (after the importorskip on purpose)
    average_precision,
    mae,
    ndcg_at_k,
    precision_recall_at_thresholds,
    precision_recall_curve,
    ranks_from_scores,
    recall_at_k,
    rmse,
    roc_auc,
    roc_auc_standard_error,
    roc_curve,
)

sys.path.insert(0, str(Path(__file__).parent))
from oracles import (  # noqa: E402
    map_at_k,
    mean_per_user_auc,
    ndcg_at_k_multi,
    per_user_auc,
    precision_at_k,
    recall_at_k_multi,
)

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------


@st.composite
def labelled_scores(draw, both_classes: bool = True):
    """(labels, scores): up to 30 examples, scores from at most 5 integer levels (many ties)."""
    n = draw(st.integers(2 if both_classes else 1, 30))
    labels = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.int64)
    if both_classes:
        # Force both classes in by overwriting two positions; the order is then shuffled by the scores.
        labels[0], labels[-1] = 1, 0
    levels = draw(st.integers(1, 5))
    scores = np.array(draw(st.lists(st.integers(0, levels - 1), min_size=n, max_size=n)), dtype=np.float64)
    # Scale so that scores are not just small integers (thresholds must come back as given).
    return labels, scores * 0.37 - 0.5


@st.composite
def score_matrix_with_sets(draw, max_users: int = 6, max_items: int = 12, levels: int | None = None):
    """(scores, positives, exclude) with few distinct score levels, so ties are frequent."""
    n_users = draw(st.integers(1, max_users))
    n_items = draw(st.integers(1, max_items))
    n_levels = levels if levels is not None else draw(st.integers(1, 4))
    flat = draw(
        st.lists(st.integers(0, n_levels - 1), min_size=n_users * n_items, max_size=n_users * n_items)
    )
    scores = np.array(flat, dtype=np.float64).reshape(n_users, n_items)
    item = st.integers(0, n_items - 1)
    positives = [np.array(draw(st.lists(item, max_size=4)), dtype=np.int64) for _ in range(n_users)]
    exclude = [np.array(draw(st.lists(item, max_size=4)), dtype=np.int64) for _ in range(n_users)]
    return scores, positives, exclude


@st.composite
def topk_with_relevant(draw, padding: bool = True):
    """(topk_items, relevant): distinct items per row, optional -1 padding at the end of rows."""
    n_users = draw(st.integers(1, 6))
    n_items = draw(st.integers(1, 15))
    k = draw(st.integers(1, n_items))
    rows = []
    for _ in range(n_users):
        row = draw(st.permutations(range(n_items)))[:k]
        n_padded = draw(st.integers(0, k - 1)) if padding else 0
        rows.append(list(row[: k - n_padded]) + [-1] * n_padded)
    topk = np.array(rows, dtype=np.int64)
    item = st.integers(0, n_items - 1)
    relevant = [np.array(draw(st.lists(item, max_size=6)), dtype=np.int64) for _ in range(n_users)]
    return topk, relevant, n_items


# --------------------------------------------------------------------------------------------------
# Slow, obvious references
# --------------------------------------------------------------------------------------------------


def slow_auc(labels, scores):
    positives = [s for s, y in zip(scores, labels, strict=True) if y]
    negatives = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = 0.0
    for p in positives:
        for n in negatives:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(positives) * len(negatives))


def slow_counts_at(labels, scores, threshold):
    tp = sum(1 for s, y in zip(scores, labels, strict=True) if y and s >= threshold)
    fp = sum(1 for s, y in zip(scores, labels, strict=True) if not y and s >= threshold)
    return tp, fp


def slow_average_precision(labels, scores):
    """Walk the distinct thresholds from the top; each adds (recall gained) * (precision there)."""
    n_pos = sum(labels)
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        tp, fp = slow_counts_at(labels, scores, threshold)
        recall = tp / n_pos
        total += (recall - previous_recall) * tp / (tp + fp)
        previous_recall = recall
    return total


def slow_rank(row, target, excluded):
    target_score = row[target]
    return sum(1 for j, s in enumerate(row) if j != target and j not in excluded and s >= target_score)


def slow_multi(topk, relevant):
    """Per-user precision, recall, AP (min(k, |rel|) denominator), NDCG with binary gains; users with
    relevant items only."""
    out = []
    for row, rel in zip(topk.tolist(), relevant, strict=True):
        rel = set(np.asarray(rel).tolist())
        if not rel:
            continue
        k = len(row)
        hits = [1 if item >= 0 and item in rel else 0 for item in row]
        precision = sum(hits) / k
        recall = sum(hits) / len(rel)
        ap, seen = 0.0, 0
        for i, h in enumerate(hits):
            if h:
                seen += 1
                ap += seen / (i + 1)
        ap /= min(k, len(rel))
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
        out.append((precision, recall, ap, dcg / ideal))
    return np.array(out).reshape(-1, 4)


def slow_per_user_auc(scores, positives, exclude):
    result = []
    for row, pos, exc in zip(scores, positives, exclude, strict=True):
        pos = set(np.asarray(pos).tolist())
        exc = set(np.asarray(exc).tolist()) - pos
        labels = [1 if j in pos else 0 for j in range(len(row)) if j not in exc]
        kept = [s for j, s in enumerate(row) if j not in exc]
        if 0 < sum(labels) < len(labels):
            result.append(slow_auc(labels, kept))
        else:
            result.append(float("nan"))
    return np.array(result)


# --------------------------------------------------------------------------------------------------
# Binary classification metrics
# --------------------------------------------------------------------------------------------------


@SETTINGS
@given(labelled_scores())
def test_roc_auc_matches_sklearn_and_slow_loop(data):
    labels, scores = data
    expected = sklearn_metrics.roc_auc_score(labels, scores)
    assert roc_auc(labels, scores) == pytest.approx(expected, abs=1e-12)
    assert roc_auc(labels, scores) == pytest.approx(slow_auc(labels, scores), abs=1e-12)
    # Booleans are the same labels.
    assert roc_auc(labels.astype(bool), scores) == roc_auc(labels, scores)


@SETTINGS
@given(labelled_scores(both_classes=False))
def test_average_precision_matches_sklearn_and_slow_loop(data):
    labels, scores = data
    if labels.sum() == 0:
        with pytest.raises(ValueError, match="at least one positive"):
            average_precision(labels, scores)
        return
    expected = sklearn_metrics.average_precision_score(labels, scores)
    assert average_precision(labels, scores) == pytest.approx(expected, abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        slow_average_precision(labels, scores), abs=1e-12
    )


@SETTINGS
@given(labelled_scores())
def test_roc_curve_matches_sklearn_without_dropping_points(data):
    labels, scores = data
    fpr, tpr, thresholds = roc_curve(labels, scores)
    expected_fpr, expected_tpr, expected_thresholds = sklearn_metrics.roc_curve(
        labels, scores, drop_intermediate=False
    )
    np.testing.assert_allclose(fpr, expected_fpr, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr, expected_tpr, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thresholds, expected_thresholds)
    # The trapezoidal area under the returned curve is the AUC (ties give the diagonal segments).
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(labels, scores), abs=1e-12)


@SETTINGS
@given(labelled_scores(both_classes=False))
def test_precision_recall_curve_matches_sklearn(data):
    labels, scores = data
    if labels.sum() == 0:
        with pytest.raises(ValueError):
            precision_recall_curve(labels, scores)
        return
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    expected_precision, expected_recall, expected_thresholds = sklearn_metrics.precision_recall_curve(
        labels, scores
    )
    np.testing.assert_allclose(precision, expected_precision, rtol=0, atol=1e-12)
    np.testing.assert_allclose(recall, expected_recall, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thresholds, expected_thresholds)
    # The step-function area under it is the average precision.
    assert -np.sum(np.diff(recall) * precision[:-1]) == pytest.approx(average_precision(labels, scores))


@SETTINGS
@given(labelled_scores(both_classes=False), st.lists(st.integers(-3, 6), min_size=1, max_size=8))
def test_precision_recall_at_thresholds_matches_slow_loop(data, grid):
    labels, scores = data
    thresholds = np.array(grid, dtype=np.float64) * 0.37 - 0.5  # on and between the score levels
    if labels.sum() == 0:
        with pytest.raises(ValueError):
            precision_recall_at_thresholds(labels, scores, thresholds)
        return
    precision, recall = precision_recall_at_thresholds(labels, scores, thresholds)
    for j, threshold in enumerate(thresholds):
        tp, fp = slow_counts_at(labels.tolist(), scores.tolist(), threshold)
        assert precision[j] == pytest.approx(tp / (tp + fp) if tp + fp else 1.0)
        assert recall[j] == pytest.approx(tp / labels.sum())
    # At the curve's own thresholds the grid version agrees with the curve.
    curve_precision, curve_recall, curve_thresholds = precision_recall_curve(labels, scores)
    grid_precision, grid_recall = precision_recall_at_thresholds(labels, scores, curve_thresholds)
    np.testing.assert_allclose(grid_precision, curve_precision[:-1])
    np.testing.assert_allclose(grid_recall, curve_recall[:-1])


def test_binary_golden_values():
    # scikit-learn's documented example.
    labels, scores = [0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]
    assert roc_auc(labels, scores) == 0.75
    assert average_precision(labels, scores) == pytest.approx((1 / 1 + 2 / 3) / 2)
    # Ties count half: pos 2 beats both negatives, pos 1 ties one and beats one -> 3.5 / 4.
    assert roc_auc([1, 0, 1, 0], [2, 1, 1, 0]) == 0.875
    assert roc_auc([True, False], [5.0, 5.0]) == 0.5
    assert roc_auc([1, 0, 1, 0, 0], [7, 7, 7, 7, 7]) == 0.5
    # Tied infinite scores are one run, not several.
    # (inf vs inf ties: 0.5, inf vs -inf: 1, 0 vs inf: 0, 0 vs -inf: 1 -> 2.5 / 4.)
    assert roc_auc([1, 0, 1, 0], [np.inf, np.inf, 0, -np.inf]) == 0.625
    assert roc_auc([0, 1, 1, 0], [np.inf, np.inf, 0, -np.inf]) == 0.625
    # A run of ties shares its precision: both positives sit in the top run of 4 -> precision 1/2.
    assert average_precision([1, 0, 1, 0], [1, 1, 1, 1]) == 0.5
    precision, recall = precision_recall_at_thresholds(
        [1, 0, 1, 0], [0.9, 0.8, 0.4, 0.1], [1.0, 0.85, 0.5, 0.0]
    )
    np.testing.assert_allclose(precision, [1.0, 1.0, 0.5, 0.5])  # 1.0 when nothing is predicted
    np.testing.assert_allclose(recall, [0.0, 0.5, 0.5, 1.0])
    fpr, tpr, thresholds = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.8, 0.4, 0.35, 0.1])


def test_binary_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="both classes.*positive"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="both classes.*negative"):
        roc_auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="both classes"):
        roc_curve([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="0/1 or boolean"):
        roc_auc([1, -1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([1, 0], [np.nan, 0.2])
    with pytest.raises(ValueError, match="same length"):
        average_precision([1, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="empty"):
        roc_auc([], [])
    assert average_precision([1, 1], [0.3, 0.1]) == 1.0  # all positive is fine for AP


def test_roc_auc_large_input_is_exact_for_a_constant_scorer():
    # Integer accumulation: no drift even with many ties and many examples.
    rng = np.random.default_rng(0)
    labels = rng.random(200_000) < 0.1
    assert roc_auc(labels, np.zeros(labels.size)) == 0.5
    scores = rng.integers(0, 50, labels.size).astype(np.float64) + labels
    assert roc_auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert average_precision(labels, scores) == pytest.approx(
        sklearn_metrics.average_precision_score(labels, scores), abs=1e-12
    )


# --------------------------------------------------------------------------------------------------
# One target per query
# --------------------------------------------------------------------------------------------------


@SETTINGS
@given(score_matrix_with_sets(), st.data())
def test_ranks_from_scores_matches_slow_loop(matrix, data):
    scores, _, exclude = matrix
    n_users, n_items = scores.shape
    targets = np.array(data.draw(st.lists(st.integers(0, n_items - 1), min_size=n_users, max_size=n_users)))
    expected_plain = [slow_rank(scores[q].tolist(), targets[q], set()) for q in range(n_users)]
    np.testing.assert_array_equal(ranks_from_scores(scores, targets), expected_plain)
    expected = [slow_rank(scores[q].tolist(), targets[q], set(exclude[q].tolist())) for q in range(n_users)]
    ranks = ranks_from_scores(scores, targets, exclude)
    assert ranks.dtype == np.int64
    np.testing.assert_array_equal(ranks, expected)
    mask = np.zeros(scores.shape, dtype=bool)
    for q, items in enumerate(exclude):
        mask[q, items] = True
    np.testing.assert_array_equal(ranks_from_scores(scores, targets, mask), expected)
    # The caller's mask is not modified (the target is un-excluded on a copy).
    assert mask.sum() == sum(len(set(e.tolist())) for e in exclude)


@SETTINGS
@given(st.lists(st.integers(0, 12), min_size=1, max_size=20), st.integers(1, 8))
def test_recall_and_ndcg_at_k_match_slow_loop(ranks, k):
    assert recall_at_k(ranks, k) == pytest.approx(sum(r < k for r in ranks) / len(ranks))
    expected = sum(1 / math.log2(r + 2) for r in ranks if r < k) / len(ranks)
    assert ndcg_at_k(ranks, k) == pytest.approx(expected)


def test_ranking_golden_values():
    scores = np.array([[3.0, 1.0, 2.0, 2.0], [0.5, 0.5, 0.5, 0.5], [-np.inf, 1.0, -np.inf, 0.0]])
    targets = np.array([2, 0, 2])
    # Row 0: item 0 is higher, item 3 ties -> 2. Row 1: all tie -> last, 3. Row 2: -inf ties -inf -> 3.
    np.testing.assert_array_equal(ranks_from_scores(scores, targets), [2, 3, 3])
    # Excluding the target itself is ignored; excluding others removes them.
    np.testing.assert_array_equal(ranks_from_scores(scores, targets, [[0, 2], [1, 2, 3], []]), [1, 0, 3])
    assert recall_at_k([0, 1, 5], 2) == pytest.approx(2 / 3)
    assert ndcg_at_k([0, 1, 5], 3) == pytest.approx((1 + 1 / math.log2(3)) / 3)
    with pytest.raises(ValueError, match="NaN"):
        ranks_from_scores(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="targets"):
        ranks_from_scores(scores, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="outside"):
        ranks_from_scores(scores, targets, [[7], [], []])
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k([0, 1], 0)


# --------------------------------------------------------------------------------------------------
# Several relevant items per user
# --------------------------------------------------------------------------------------------------


@SETTINGS
@given(topk_with_relevant())
def test_multi_relevant_metrics_match_slow_loop(data):
    topk, relevant, _ = data
    expected = slow_multi(topk, relevant)
    metrics = (precision_at_k, recall_at_k_multi, map_at_k, ndcg_at_k_multi)
    if expected.shape[0] == 0:
        for metric in metrics:
            with pytest.raises(ValueError, match="no user has any relevant"):
                metric(topk, relevant)
        return
    for column, metric in enumerate(metrics):
        assert metric(topk, relevant) == pytest.approx(expected[:, column].mean(), abs=1e-12), metric.__name__


@SETTINGS
@given(topk_with_relevant(padding=False), st.randoms(use_true_random=False))
def test_ndcg_at_k_multi_matches_sklearn_without_ties(data, random):
    topk, relevant, n_items = data
    has_relevant = np.array([len(r) > 0 for r in relevant])
    if n_items < 2 or not has_relevant.any():
        return
    n_users, k = topk.shape
    # Scores that reproduce the top-k list with no ties anywhere: k..1 for the list, distinct negatives
    # for the rest (they fall beyond position k, so their order does not matter to NDCG@k).
    y_score = np.zeros((n_users, n_items))
    y_true = np.zeros((n_users, n_items))
    for u in range(n_users):
        rest = random.sample(range(1, n_items + 1), n_items)
        y_score[u] = -np.array(rest, dtype=np.float64)
        y_score[u, topk[u]] = np.arange(k, 0, -1)
        y_true[u, relevant[u]] = 1.0
    expected = sklearn_metrics.ndcg_score(y_true[has_relevant], y_score[has_relevant], k=k)
    assert ndcg_at_k_multi(topk, relevant) == pytest.approx(expected, abs=1e-12)


def test_multi_relevant_golden_values():
    topk = np.array([[1, 2, 3], [4, 5, -1], [0, 1, 2]])
    relevant = [np.array([1, 3]), np.array([9, 8, 7, 6, 5]), np.array([], dtype=np.int64)]
    # User 0: hits 1,0,1. User 1: hits 0,1,0 (padding never hits). User 2 has nothing relevant: left out.
    assert precision_at_k(topk, relevant) == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert recall_at_k_multi(topk, relevant) == pytest.approx((2 / 2 + 1 / 5) / 2)
    assert map_at_k(topk, relevant) == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2) / 3) / 2)
    d = [1 / math.log2(i + 2) for i in range(3)]
    assert ndcg_at_k_multi(topk, relevant) == pytest.approx(
        ((d[0] + d[2]) / (d[0] + d[1]) + d[1] / sum(d)) / 2
    )
    # Duplicated relevant items count once.
    assert recall_at_k_multi(topk[:1], [np.array([1, 1, 3])]) == 1.0
    with pytest.raises(ValueError, match="same item twice"):
        precision_at_k(np.array([[1, 1]]), [np.array([1])])
    with pytest.raises(ValueError, match="2 entries"):
        precision_at_k(topk, relevant[:2])


@SETTINGS
@given(score_matrix_with_sets())
def test_per_user_auc_matches_slow_loop_and_sklearn(matrix):
    scores, positives, exclude = matrix
    auc = per_user_auc(scores, positives, exclude)
    expected = slow_per_user_auc(scores, positives, exclude)
    np.testing.assert_allclose(auc, expected, rtol=0, atol=1e-12)  # NaNs in the same places
    for u in np.flatnonzero(~np.isnan(expected)):
        excluded = set(exclude[u].tolist()) - set(positives[u].tolist())
        keep = np.array([j not in excluded for j in range(scores.shape[1])])
        labels = np.isin(np.arange(scores.shape[1]), positives[u])
        assert auc[u] == pytest.approx(
            sklearn_metrics.roc_auc_score(labels[keep], scores[u, keep]), abs=1e-12
        )
        assert auc[u] == pytest.approx(roc_auc(labels[keep], scores[u, keep]), abs=1e-12)
    if np.isnan(expected).all():
        with pytest.raises(ValueError, match="no user"):
            mean_per_user_auc(scores, positives, exclude)
    else:
        assert mean_per_user_auc(scores, positives, exclude) == pytest.approx(np.nanmean(expected))
    # Without exclusions every non-positive item is a negative.
    no_exclusions = slow_per_user_auc(scores, positives, [np.array([], dtype=np.int64)] * len(positives))
    np.testing.assert_allclose(per_user_auc(scores, positives), no_exclusions, rtol=0, atol=1e-12)


def test_per_user_auc_golden_values():
    scores = np.array([[0.9, 0.5, 0.5, 0.1], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    positives = [np.array([1]), np.array([], dtype=np.int64), np.array([0, 1, 2, 3])]
    exclude = [np.array([0]), np.array([3]), np.array([])]
    # User 0: positive 1 (0.5) vs negatives 2 (0.5, tie) and 3 (0.1, win) -> 1.5 / 2; item 0 excluded.
    # User 1: no positives -> NaN. User 2: everything positive, no negatives -> NaN.
    auc = per_user_auc(scores, positives, exclude)
    assert auc[0] == 0.75
    assert np.isnan(auc[1]) and np.isnan(auc[2])
    assert mean_per_user_auc(scores, positives, exclude) == 0.75
    # A positive that is also listed as excluded still counts as positive.
    assert per_user_auc(scores[:1], [np.array([1])], [np.array([1, 0])])[0] == 0.75


# --------------------------------------------------------------------------------------------------
# Rating prediction
# --------------------------------------------------------------------------------------------------


def test_rmse_and_mae_golden_values():
    y, yhat = [1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 1.0, 4.0]
    assert rmse(y, yhat) == pytest.approx(math.sqrt((1 + 0 + 4 + 0) / 4))
    assert mae(y, yhat) == pytest.approx((1 + 0 + 2 + 0) / 4)
    rng = np.random.default_rng(1)
    y, yhat = rng.normal(size=50), rng.normal(size=50)
    assert rmse(y, yhat) == pytest.approx(math.sqrt(sklearn_metrics.mean_squared_error(y, yhat)))
    assert mae(y, yhat) == pytest.approx(sklearn_metrics.mean_absolute_error(y, yhat))
    with pytest.raises(ValueError, match="same shape"):
        rmse([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        mae([np.nan], [1.0])


def test_auc_standard_error_is_delongs_and_agrees_with_the_bootstrap():
    """DeLong's standard error: the mean of the positives' placements is the AUC itself, and on a sample the
    spread of bootstrap AUCs agrees with it (within 15%); ties count half as in the AUC."""
    rng = np.random.default_rng(5)
    labels = rng.random(3000) < 0.4
    scores = np.round(rng.standard_normal(3000) + labels * 0.8, 1)  # rounded: ties
    error = roc_auc_standard_error(labels, scores)
    boot = []
    for _ in range(300):
        pick = rng.integers(0, len(labels), len(labels))
        boot.append(roc_auc(labels[pick], scores[pick]))
    assert error == pytest.approx(np.std(boot), rel=0.15)
    # Hand case: positives {2, 3}, negatives {1, 2}: placements 3/4, 1 and 0, 1/4 (ties half).
    se = roc_auc_standard_error([1, 1, 0, 0], [2.0, 3.0, 1.0, 2.0])
    assert se == pytest.approx(np.sqrt(np.var([0.75, 1.0], ddof=1) / 2 + np.var([0.0, 0.25], ddof=1) / 2))
    with pytest.raises(ValueError, match="two examples of each class"):
        roc_auc_standard_error([1, 0, 0], [1.0, 0.0, 0.5])
