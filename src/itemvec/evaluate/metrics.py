"""Evaluation metrics: pure numpy, vectorised, at most O(n log n) in the number of scores.

Two families live here.

* **Binary classification of pairs** (is this pair a true pair or a sampled negative?):
  :func:`roc_auc`, :func:`average_precision`, :func:`roc_curve`, :func:`precision_recall_curve` and
  :func:`precision_recall_at_thresholds`. Tied scores are handled as scikit-learn handles them: all
  examples with one score value form a single threshold, and in the AUC a positive tied with a negative
  counts as half a win (the Mann-Whitney statistic with mid-ranks).
* **Ranking of one true partner against the whole catalogue** (item-item retrieval):
  :func:`ranks_from_scores` turns a score matrix into the 0-based rank of each query's target, and
  :func:`recall_at_k` / :func:`ndcg_at_k` average over queries.

The user-item ranking metrics (several relevant items per user) are in :mod:`itemvec.evaluate.ranking`, one
numba pass per batch of users; their slow, obvious oracles are in ``tests/oracles.py``.

Plus :func:`rmse` and :func:`mae` for rating prediction.

Every function validates its input and raises ``ValueError`` with a message that says what was wrong,
rather than returning NaN silently. No NaN is returned on purpose.

All functions are tested against scikit-learn and against slow, obvious Python loops in
``tests/test_metrics.py``, ties included, as LightFM tests its metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "average_precision",
    "mae",
    "ndcg_at_k",
    "precision_recall_at_thresholds",
    "precision_recall_curve",
    "ranks_from_scores",
    "recall_at_k",
    "rmse",
    "roc_auc",
    "roc_curve",
]


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _check_binary(
    labels: np.ndarray | Sequence, scores: np.ndarray | Sequence
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a (labels, scores) pair and return ``(labels as bool, scores as float64)``, both (n,)."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-D arrays, got shapes {labels.shape} and {scores.shape}"
        )
    if labels.shape != scores.shape:
        raise ValueError(
            f"labels and scores must have the same length, got {labels.shape[0]} and {scores.shape[0]}"
        )
    if labels.size == 0:
        raise ValueError("labels and scores are empty; a metric needs at least one example")
    if labels.dtype != np.bool_:
        # 0/1 in any numeric dtype is accepted; anything else (e.g. -1/1 or 1/2) is ambiguous about
        # which class is positive, so say so rather than guess.
        if not np.issubdtype(labels.dtype, np.number) or not np.all((labels == 0) | (labels == 1)):
            raise ValueError(
                f"labels must be 0/1 or boolean (1 = positive); found values {np.unique(labels)[:5].tolist()}"
            )
        labels = labels.astype(np.bool_)
    if not np.issubdtype(scores.dtype, np.number) or np.issubdtype(scores.dtype, np.complexfloating):
        raise ValueError(f"scores must be real numbers, got dtype {scores.dtype}")
    scores = scores.astype(np.float64, copy=False)
    if np.isnan(scores).any():
        raise ValueError(
            f"scores contain {int(np.isnan(scores).sum())} NaN values; a NaN cannot be ranked, "
            "so fix the model output (or drop those examples) first"
        )
    return labels, scores


def _binary_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positive counts at every distinct score, highest score first.

    Parameters
    ----------
    labels : (n,) bool
    scores : (n,) float64, no NaN

    Returns
    -------
    tps, fps : (t,) int64
        Number of positives / negatives with score >= ``thresholds[i]``; t = number of distinct scores.
    thresholds : (t,) float64
        The distinct scores in decreasing order.

    All examples sharing a score are one threshold (they cannot be separated by any cut), which is
    exactly scikit-learn's ``confusion_matrix_at_thresholds``. Counts stay integers, so sums built on
    them are exact.
    """
    # Two plain sorts and a binary search rather than an argsort and a gather: at 10M scores this is
    # about a quarter faster, and ties need no special care since runs are found by value.
    all_sorted = np.sort(scores)
    positives_sorted = np.sort(scores[labels])
    # First index of each run of equal scores. `!=` rather than np.diff, because inf - inf is NaN and
    # would split a run of tied infinite scores.
    run_starts = np.flatnonzero(np.concatenate(([True], all_sorted[1:] != all_sorted[:-1])))
    thresholds = all_sorted[run_starts]
    at_or_above = all_sorted.size - run_starts
    tps = positives_sorted.size - np.searchsorted(positives_sorted, thresholds, side="left")
    fps = at_or_above - tps
    return tps[::-1].astype(np.int64), fps[::-1].astype(np.int64), thresholds[::-1].copy()


# --------------------------------------------------------------------------------------------------
# Binary classification of pairs
# --------------------------------------------------------------------------------------------------


def roc_auc(labels: np.ndarray | Sequence, scores: np.ndarray | Sequence) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative).

    Parameters
    ----------
    labels : (n,) 0/1 or bool
        1 marks a positive example.
    scores : (n,) float
        Higher means "more likely positive"; any monotone transform gives the same AUC.

    Returns
    -------
    float in [0, 1]
        Equal to ``sklearn.metrics.roc_auc_score``. A positive tied with a negative counts as half a
        win (the Mann-Whitney U statistic with mid-ranks divided by n_pos * n_neg), so a constant scorer
        gets exactly 0.5.

    Raises
    ------
    ValueError
        If only one class is present (the AUC is undefined), or the input is malformed.

    Runs in O(n log n) time (a sort of each class) and O(n) memory.
    """
    labels, scores = _check_binary(labels, scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        which = "negative (0)" if n_pos == 0 else "positive (1)"
        raise ValueError(
            f"roc_auc needs both classes, but all {labels.size} labels are {which}; "
            "add examples of the other class (e.g. sampled negatives)"
        )
    positives_sorted = np.sort(scores[labels])
    negatives_sorted = np.sort(scores[~labels])
    # Each positive wins against the negatives strictly below it and half-wins against tied ones, so
    # 2 * wins = #(negatives < s) + #(negatives <= s): two binary searches, integers throughout, so the
    # statistic is exact. Sorting the two classes separately avoids an argsort of everything (which is
    # about 3x slower at 10M scores); sorted queries also keep the binary searches cache-friendly.
    below = np.searchsorted(negatives_sorted, positives_sorted, side="left")
    at_or_below = np.searchsorted(negatives_sorted, positives_sorted, side="right")
    twice_wins = int(below.sum(dtype=np.int64)) + int(at_or_below.sum(dtype=np.int64))
    return twice_wins / (2.0 * n_pos * n_neg)


def roc_auc_standard_error(labels: np.ndarray | Sequence, scores: np.ndarray | Sequence) -> float:
    """The standard error of :func:`roc_auc` by DeLong, DeLong & Clarke-Pearson (1988): the variance of the
    positives' placements (each one's share of negatives below it, ties half) over n_pos plus that of the
    negatives' placements (the share of positives above) over n_neg. Same ties and errors as ``roc_auc``."""
    labels, scores = _check_binary(labels, scores)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos < 2 or n_neg < 2:
        raise ValueError(f"the AUC's standard error needs two examples of each class, got {n_pos} positive(s) "
                         f"and {n_neg} negative(s)")
    positives = np.sort(scores[labels])
    negatives = np.sort(scores[~labels])
    placements_pos = (np.searchsorted(negatives, positives, side="left")
                      + np.searchsorted(negatives, positives, side="right")) / (2.0 * n_neg)
    placements_neg = (2 * n_pos - np.searchsorted(positives, negatives, side="right")
                      - np.searchsorted(positives, negatives, side="left")) / (2.0 * n_pos)
    return float(np.sqrt(np.var(placements_pos, ddof=1) / n_pos + np.var(placements_neg, ddof=1) / n_neg))


def average_precision(labels: np.ndarray | Sequence, scores: np.ndarray | Sequence) -> float:
    """Average precision: the mean of precision at each positive, walking down the ranking.

    Parameters
    ----------
    labels : (n,) 0/1 or bool
    scores : (n,) float

    Returns
    -------
    float in [0, 1]
        Same definition as ``sklearn.metrics.average_precision_score`` (the step-function sum
        ``sum_i (R_i - R_{i-1}) P_i``, no interpolation). Tied scores form one threshold: all the
        positives in a run of ties share the run's precision, so the result does not depend on how ties
        happen to be ordered.

    Raises
    ------
    ValueError
        If there are no positives. (scikit-learn warns and returns 0 there; a metric of a ranking
        that has nothing to find is more likely a bug upstream than a real 0.) All-positive input is
        fine and gives 1.0.
    """
    labels, scores = _check_binary(labels, scores)
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise ValueError(f"average_precision needs at least one positive, but all {labels.size} labels are 0")
    tps, fps, _ = _binary_counts(labels, scores)
    positives_in_run = np.diff(tps, prepend=0)
    precision = tps / (tps + fps)
    return float(np.sum(positives_in_run * precision) / n_pos)


def roc_curve(
    labels: np.ndarray | Sequence, scores: np.ndarray | Sequence
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC curve: false and true positive rates at every distinct score.

    Parameters
    ----------
    labels : (n,) 0/1 or bool
    scores : (n,) float

    Returns
    -------
    fpr, tpr : (t + 1,) float64
        Rates when predicting "positive" for score >= ``thresholds[i]``; both start at 0 and end at 1.
    thresholds : (t + 1,) float64
        ``inf`` (predict nothing), then the t distinct scores in decreasing order.

    Equal to ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``. scikit-learn's default
    ``drop_intermediate=True`` additionally removes collinear points; they do not change the plotted
    curve or its area, and keeping them keeps one point per threshold for tables. Unlike scikit-learn,
    which warns and returns NaN rates, this raises ``ValueError`` if only one class is present.
    """
    labels, scores = _check_binary(labels, scores)
    tps, fps, thresholds = _binary_counts(labels, scores)
    if tps[-1] == 0 or fps[-1] == 0:
        which = "positives" if tps[-1] == 0 else "negatives"
        raise ValueError(f"roc_curve needs both classes, but there are no {which} among {labels.size} labels")
    # Start the curve at (0, 0): a threshold above every score predicts nothing positive.
    tps = np.concatenate(([0], tps))
    fps = np.concatenate(([0], fps))
    thresholds = np.concatenate(([np.inf], thresholds))
    return fps / fps[-1], tps / tps[-1], thresholds


def precision_recall_curve(
    labels: np.ndarray | Sequence, scores: np.ndarray | Sequence
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score.

    Parameters
    ----------
    labels : (n,) 0/1 or bool
    scores : (n,) float

    Returns
    -------
    precision, recall : (t + 1,) float64
        For i < t, the values when predicting "positive" for score >= ``thresholds[i]``; the last entry
        is the conventional end point (precision 1, recall 0). Recall is decreasing.
    thresholds : (t,) float64
        The distinct scores in increasing order.

    Equal to ``sklearn.metrics.precision_recall_curve`` (whose ``drop_intermediate`` defaults to False,
    as here). Unlike scikit-learn, which warns and sets recall to 1, this raises ``ValueError`` when
    there are no positives.
    """
    labels, scores = _check_binary(labels, scores)
    tps, fps, thresholds = _binary_counts(labels, scores)
    if tps[-1] == 0:
        raise ValueError(f"precision_recall_curve needs at least one positive among {labels.size} labels")
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    # scikit-learn's orientation: increasing thresholds, so decreasing recall, then the (recall 0,
    # precision 1) end point that makes the step-function area equal the average precision.
    return (
        np.concatenate((precision[::-1], [1.0])),
        np.concatenate((recall[::-1], [0.0])),
        thresholds[::-1].copy(),
    )


def precision_recall_at_thresholds(
    labels: np.ndarray | Sequence, scores: np.ndarray | Sequence, thresholds: np.ndarray | Sequence
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall on a fixed grid of thresholds, for plotting both against the threshold.

    Parameters
    ----------
    labels : (n,) 0/1 or bool
    scores : (n,) float
    thresholds : (m,) float
        Any values in any order; an example is predicted positive when ``score >= threshold``.

    Returns
    -------
    precision, recall : (m,) float64
        ``precision[j] = TP / (TP + FP)`` at ``thresholds[j]``, defined as **1.0 when nothing is predicted
        positive** (no false positives were made; this also makes the curve end at 1 on the right, as
        scikit-learn's precision-recall curve does). ``recall[j] = TP / n_pos``.

    Raises
    ------
    ValueError
        If there are no positives (recall is undefined), or a threshold is NaN.

    O((n + m) log n): both counts come from binary searches in sorted score arrays.
    """
    labels, scores = _check_binary(labels, scores)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1:
        raise ValueError(f"thresholds must be a 1-D array, got shape {thresholds.shape}")
    if np.isnan(thresholds).any():
        raise ValueError("thresholds contain NaN")
    positive_scores = np.sort(scores[labels])
    n_pos = positive_scores.size
    if n_pos == 0:
        raise ValueError(
            f"precision_recall_at_thresholds needs at least one positive among {labels.size} labels"
        )
    all_scores = np.sort(scores)
    # searchsorted(side="left") counts the scores strictly below the threshold; the rest are >= it.
    predicted = all_scores.size - np.searchsorted(all_scores, thresholds, side="left")
    true_positives = n_pos - np.searchsorted(positive_scores, thresholds, side="left")
    precision = np.ones(thresholds.shape, dtype=np.float64)
    some = predicted > 0
    precision[some] = true_positives[some] / predicted[some]
    return precision, true_positives / n_pos


# --------------------------------------------------------------------------------------------------
# One target per query, ranked against the whole catalogue
# --------------------------------------------------------------------------------------------------


def _index_lists_to_mask(
    index_lists: np.ndarray | Sequence[np.ndarray | Sequence[int]], shape: tuple[int, int], name: str
) -> np.ndarray:
    """Turn one array of column indices per row into a boolean (rows, columns) mask.

    Duplicated indices are harmless. Indices must lie in ``[0, columns)``; negative indices are rejected
    rather than wrapped around as numpy would.
    """
    n_rows, n_columns = shape
    if len(index_lists) != n_rows:
        raise ValueError(f"{name} has {len(index_lists)} entries but there are {n_rows} rows of scores")
    mask = np.zeros(shape, dtype=np.bool_)
    arrays = [np.asarray(a).reshape(-1) for a in index_lists]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=n_rows)
    if lengths.sum() == 0:
        return mask
    # Empty lists default to float64 and would make the concatenation float; leave them out.
    columns = np.concatenate([a for a in arrays if a.size])
    if not np.issubdtype(columns.dtype, np.integer):
        raise ValueError(f"{name} must hold integer item indices, got dtype {columns.dtype}")
    if columns.min() < 0 or columns.max() >= n_columns:
        bad = columns[(columns < 0) | (columns >= n_columns)][0]
        raise ValueError(f"{name} holds item index {bad}, outside [0, {n_columns})")
    rows = np.repeat(np.arange(n_rows), lengths)
    mask[rows, columns] = True
    return mask


def _check_score_matrix(scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (queries, items) array, got shape {scores.shape}")
    if np.issubdtype(scores.dtype, np.floating) and np.isnan(scores).any():
        raise ValueError(
            "scores contain NaN; a NaN cannot be ranked (use -inf to rule an item out, or pass exclude)"
        )
    return scores


def ranks_from_scores(
    scores: np.ndarray,
    targets: np.ndarray | Sequence[int],
    exclude: np.ndarray | Sequence[np.ndarray | Sequence[int]] | None = None,
) -> np.ndarray:
    """0-based rank of each query's target item among the items it competes with.

    Parameters
    ----------
    scores : (n_queries, n_items) float
        Score of every item for every query; higher is better. ``-inf`` is a valid score.
    targets : (n_queries,) int
        Column of the true partner of each query.
    exclude : optional
        Items that do not compete, e.g. the query item itself and items seen in training. Either a
        boolean mask of shape (n_queries, n_items) (True = excluded), or a sequence of n_queries integer
        arrays of item indices. The target itself is never excluded, even when listed.

    Returns
    -------
    (n_queries,) int64
        ``rank = #{non-excluded items j != target : scores[q, j] >= scores[q, target]}``: items with a
        strictly higher score, plus every other item tied with the target. Ties are thus broken
        **pessimistically** (the target comes last among its ties), so a model that scores everything
        equally gets the worst rank, not the best, and cannot look good by collapsing its scores.
        0 means the target is first.

    Memory: one boolean temporary the size of ``scores``; for a large catalogue, call it on row batches.
    """
    scores = _check_score_matrix(scores)
    n_queries, n_items = scores.shape
    targets = np.asarray(targets)
    if targets.shape != (n_queries,):
        raise ValueError(f"targets must have shape ({n_queries},), got {targets.shape}")
    if not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be integer item indices, got dtype {targets.dtype}")
    if n_queries and (targets.min() < 0 or targets.max() >= n_items):
        raise ValueError(
            f"targets must lie in [0, {n_items}), got values from {targets.min()} to {targets.max()}"
        )

    rows = np.arange(n_queries)
    if exclude is None:
        competing = np.ones(scores.shape, dtype=np.bool_)
    elif isinstance(exclude, np.ndarray) and exclude.dtype == np.bool_:
        if exclude.shape != scores.shape:
            raise ValueError(f"exclude mask must have shape {scores.shape}, got {exclude.shape}")
        competing = ~exclude
    else:
        competing = ~_index_lists_to_mask(exclude, scores.shape, "exclude")
    # The target never competes with itself; `>=` below would otherwise count it.
    competing[rows, targets] = False
    target_scores = scores[rows, targets]
    return np.count_nonzero((scores >= target_scores[:, None]) & competing, axis=1).astype(np.int64)


def _check_ranks(ranks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
    ranks = np.asarray(ranks)
    if ranks.ndim != 1 or ranks.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-D array, got shape {ranks.shape}")
    if not np.issubdtype(ranks.dtype, np.integer):
        raise ValueError(f"ranks must be integers (0 = first), got dtype {ranks.dtype}")
    if ranks.min() < 0:
        raise ValueError("ranks must be >= 0 (0 = first)")
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return ranks


def recall_at_k(ranks: np.ndarray | Sequence[int], k: int) -> float:
    """Fraction of queries whose single target is ranked in the top k (HitRate@k).

    Parameters
    ----------
    ranks : (n_queries,) int, 0-based (as from :func:`ranks_from_scores`)
    k : int >= 1

    With one relevant item per query, recall@k and hit rate@k are the same number.
    """
    ranks = _check_ranks(ranks, k)
    return float(np.mean(ranks < k))


def ndcg_at_k(ranks: np.ndarray | Sequence[int], k: int) -> float:
    """Mean NDCG@k with one relevant item per query: ``1 / log2(rank + 2)`` if rank < k, else 0.

    Parameters
    ----------
    ranks : (n_queries,) int, 0-based (as from :func:`ranks_from_scores`)
    k : int >= 1

    The ideal DCG of a single relevant item is 1 (it would sit at rank 0), so DCG is already normalised.
    """
    ranks = _check_ranks(ranks, k)
    gains = np.where(ranks < k, 1.0 / np.log2(ranks.astype(np.float64) + 2.0), 0.0)
    return float(np.mean(gains))


# --------------------------------------------------------------------------------------------------
# Rating prediction
# --------------------------------------------------------------------------------------------------


def _check_regression(y: np.ndarray | Sequence, yhat: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    if y.shape != yhat.shape:
        raise ValueError(f"y and yhat must have the same shape, got {y.shape} and {yhat.shape}")
    if y.size == 0:
        raise ValueError("y and yhat are empty")
    if not (np.isfinite(y).all() and np.isfinite(yhat).all()):
        raise ValueError("y and yhat must be finite (no NaN or inf)")
    return y, yhat


def rmse(y: np.ndarray | Sequence, yhat: np.ndarray | Sequence) -> float:
    """Root mean squared error, in the units of the ratings. y, yhat: arrays of the same shape."""
    y, yhat = _check_regression(y, yhat)
    return float(np.sqrt(np.mean((y - yhat) ** 2)))


def mae(y: np.ndarray | Sequence, yhat: np.ndarray | Sequence) -> float:
    """Mean absolute error, in the units of the ratings. y, yhat: arrays of the same shape."""
    y, yhat = _check_regression(y, yhat)
    return float(np.mean(np.abs(y - yhat)))
