"""Evaluation metrics: pure numpy, vectorised, at most O(n log n) in the number of scores.

Three families live here.

* **Binary classification of pairs** (is this pair a true pair or a sampled negative?):
  :func:`roc_auc`, :func:`average_precision`, :func:`roc_curve`, :func:`precision_recall_curve` and
  :func:`precision_recall_at_thresholds`. Tied scores are handled as scikit-learn handles them: all
  examples with one score value form a single threshold, and in the AUC a positive tied with a negative
  counts as half a win (the Mann-Whitney statistic with mid-ranks).
* **Ranking of one true partner against the whole catalogue** (item-item retrieval):
  :func:`ranks_from_scores` turns a score matrix into the 0-based rank of each query's target, and
  :func:`recall_at_k` / :func:`ndcg_at_k` average over queries.
* **Ranking with several relevant items per user** (user-item evaluation): :func:`precision_at_k`,
  :func:`recall_at_k_multi`, :func:`map_at_k`, :func:`ndcg_at_k_multi` from a top-k list, and
  :func:`per_user_auc` / :func:`mean_per_user_auc` from a full score matrix.

Plus :func:`rmse` and :func:`mae` for rating prediction.

Every function validates its input and raises ``ValueError`` with a message that says what was wrong,
rather than returning NaN silently. The only NaNs returned on purpose are the per-user AUCs of users
with no positives or no negatives (see :func:`per_user_auc`).

All functions are tested against scikit-learn and against slow, obvious Python loops in
``tests/test_metrics.py``, ties included, as LightFM tests its metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "average_precision",
    "map_at_k",
    "mae",
    "mean_per_user_auc",
    "ndcg_at_k",
    "ndcg_at_k_multi",
    "per_user_auc",
    "precision_at_k",
    "precision_recall_at_thresholds",
    "precision_recall_curve",
    "rank_discounts",
    "ranks_from_scores",
    "recall_at_k",
    "recall_at_k_multi",
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
    index_lists: Sequence[np.ndarray | Sequence[int]], shape: tuple[int, int], name: str
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
# Several relevant items per user
# --------------------------------------------------------------------------------------------------


def rank_discounts(k: int) -> np.ndarray:
    """(k,) float64: the DCG discount ``1 / log2(position + 2)`` for 0-based positions 0..k-1."""
    return 1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0)


def _hits_and_counts(
    topk_items: np.ndarray, relevant: Sequence[np.ndarray | Sequence[int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Which recommended items are relevant, and how many distinct relevant items each user has.

    Parameters
    ----------
    topk_items : (n_users, k) int
        Recommended items per user, best first. Negative entries are padding (fewer than k items could
        be recommended) and are never relevant. Non-negative entries must be distinct within a row.
    relevant : sequence of n_users int arrays
        Relevant (held-out) items per user; duplicates are counted once.

    Returns
    -------
    hits : (n_users, k) bool
    n_relevant : (n_users,) int64
    """
    topk_items = np.asarray(topk_items)
    if topk_items.ndim != 2 or topk_items.shape[1] == 0:
        raise ValueError(
            f"topk_items must be a 2-D (users, k) array with k >= 1, got shape {topk_items.shape}"
        )
    if not np.issubdtype(topk_items.dtype, np.integer):
        raise ValueError(f"topk_items must hold integer item indices, got dtype {topk_items.dtype}")
    n_users, _ = topk_items.shape
    if len(relevant) != n_users:
        raise ValueError(f"relevant has {len(relevant)} entries but topk_items has {n_users} rows")
    # A repeated item would be counted as two hits and push precision above what is achievable.
    ordered = np.sort(topk_items, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    if repeated.any():
        user = int(np.flatnonzero(repeated.any(axis=1))[0])
        raise ValueError(f"topk_items row {user} recommends the same item twice: {topk_items[user].tolist()}")

    arrays = [np.asarray(r).reshape(-1) for r in relevant]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=n_users)
    # Empty lists default to float64 and would make the concatenation float; leave them out.
    relevant_items = np.concatenate([a for a in arrays if a.size] or [np.zeros(0, dtype=np.int64)])
    if relevant_items.size and not np.issubdtype(relevant_items.dtype, np.integer):
        raise ValueError(f"relevant must hold integer item indices, got dtype {relevant_items.dtype}")
    relevant_items = relevant_items.astype(np.int64, copy=False)
    if relevant_items.size and relevant_items.min() < 0:
        raise ValueError("relevant item indices must be >= 0")
    # Encode (user, item) as one int64 key so one sorted membership test covers every user at once.
    n_keys = int(max(topk_items.max(initial=0), relevant_items.max(initial=0))) + 1
    relevant_keys = np.unique(
        np.repeat(np.arange(n_users, dtype=np.int64), lengths) * n_keys + relevant_items
    )
    n_relevant = np.bincount(relevant_keys // n_keys, minlength=n_users).astype(np.int64)
    topk_keys = np.arange(n_users, dtype=np.int64)[:, None] * n_keys + topk_items
    hits = np.isin(topk_keys, relevant_keys) & (topk_items >= 0)
    return hits, n_relevant


def _mean_over_users_with_relevant(values: np.ndarray, n_relevant: np.ndarray, name: str) -> float:
    has_relevant = n_relevant > 0
    if not has_relevant.any():
        raise ValueError(f"{name}: no user has any relevant item, so there is nothing to average")
    return float(np.mean(values[has_relevant]))


def precision_at_k(topk_items: np.ndarray, relevant: Sequence[np.ndarray | Sequence[int]]) -> float:
    """Mean over users of (relevant items among the top k) / k, with k = ``topk_items.shape[1]``.

    Parameters
    ----------
    topk_items : (n_users, k) int
        Recommendations, best first; negative entries are padding and count as misses.
    relevant : sequence of n_users int arrays
        Held-out relevant items per user.

    Users with no relevant items are left out of the mean (as in ``implicit``), in every ``*_at_k``
    multi-relevant metric here, so that all of them average over the same users.
    """
    hits, n_relevant = _hits_and_counts(topk_items, relevant)
    return _mean_over_users_with_relevant(hits.mean(axis=1), n_relevant, "precision_at_k")


def recall_at_k_multi(topk_items: np.ndarray, relevant: Sequence[np.ndarray | Sequence[int]]) -> float:
    """Mean over users of (relevant items among the top k) / (number of relevant items).

    Parameters as :func:`precision_at_k`. The denominator is the full ``|relevant|``, so a user with
    more than k relevant items cannot reach 1; this is the textbook recall, not the "capped" variant.
    """
    hits, n_relevant = _hits_and_counts(topk_items, relevant)
    recall = hits.sum(axis=1) / np.maximum(n_relevant, 1)
    return _mean_over_users_with_relevant(recall, n_relevant, "recall_at_k_multi")


def map_at_k(topk_items: np.ndarray, relevant: Sequence[np.ndarray | Sequence[int]]) -> float:
    """Mean average precision at k.

    ``AP@k = sum_{i < k} hit_i * precision@(i + 1) / min(k, |relevant|)`` per user, averaged over users
    with at least one relevant item. The ``min(k, |relevant|)`` denominator is the common convention
    (Kaggle's ``apk``, RecBole, ``implicit``): a perfect top-k list scores 1 even when the user has more
    than k relevant items. Parameters as :func:`precision_at_k`.
    """
    hits, n_relevant = _hits_and_counts(topk_items, relevant)
    k = hits.shape[1]
    precision_at_each_position = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    summed = np.sum(precision_at_each_position * hits, axis=1)
    average_precisions = summed / np.maximum(np.minimum(n_relevant, k), 1)
    return _mean_over_users_with_relevant(average_precisions, n_relevant, "map_at_k")


def ndcg_at_k_multi(topk_items: np.ndarray, relevant: Sequence[np.ndarray | Sequence[int]]) -> float:
    """Mean NDCG@k with binary gains (1 for a relevant item, 0 otherwise).

    ``DCG = sum_{i < k} hit_i / log2(i + 2)``; the ideal DCG puts ``min(k, |relevant|)`` hits in the first
    positions. Averaged over users with at least one relevant item. Equal to ``sklearn.metrics.ndcg_score``
    with binary relevance when the scores have no ties. Parameters as :func:`precision_at_k`.
    """
    hits, n_relevant = _hits_and_counts(topk_items, relevant)
    k = hits.shape[1]
    discounts = rank_discounts(k)
    dcg = hits @ discounts
    # ideal_dcg[m] = DCG of m hits in the first m positions; index by min(k, |relevant|).
    ideal_dcg = np.concatenate(([0.0], np.cumsum(discounts)))
    ideal = ideal_dcg[np.minimum(n_relevant, k)]
    ndcg = np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)
    return _mean_over_users_with_relevant(ndcg, n_relevant, "ndcg_at_k_multi")


def per_user_auc(
    scores: np.ndarray,
    positives: Sequence[np.ndarray | Sequence[int]],
    exclude: Sequence[np.ndarray | Sequence[int]] | None = None,
) -> np.ndarray:
    """AUC of each user's positives against all of that user's other (non-excluded) items.

    Parameters
    ----------
    scores : (n_users, n_items) float
        Score of every item for every user; ``-inf`` is allowed, NaN is not.
    positives : sequence of n_users int arrays
        Held-out relevant items per user (duplicates count once).
    exclude : sequence of n_users int arrays, optional
        Items that are neither positive nor negative for that user, typically the items seen in
        training. An item listed both as positive and excluded counts as **positive**.

    Returns
    -------
    (n_users,) float64
        Per user, the fraction of (positive, negative) pairs ordered correctly, a tie counting 1/2 (the
        same number as :func:`roc_auc` on that user's row). NaN for users with no positives or no
        negatives; :func:`mean_per_user_auc` averages the rest.

    O(n_users * n_items * log n_items): one sort per row, done for all rows at once; the temporaries are
    a few arrays the size of ``scores``, so for a large catalogue call it on row batches.
    """
    scores = _check_score_matrix(scores)
    n_users, n_items = scores.shape
    is_positive = _index_lists_to_mask(positives, scores.shape, "positives")
    is_negative = ~is_positive
    if exclude is not None:
        is_negative &= ~_index_lists_to_mask(exclude, scores.shape, "exclude")
    if n_items == 0:
        return np.full(n_users, np.nan)

    order = np.argsort(scores, axis=1)
    sorted_scores = np.take_along_axis(scores, order, axis=1)
    sorted_positive = np.take_along_axis(is_positive, order, axis=1)
    sorted_negative = np.take_along_axis(is_negative, order, axis=1)

    # Negatives at or before each position along the ascending row.
    negatives_through = np.cumsum(sorted_negative, axis=1, dtype=np.int64)
    # Each position's run of tied scores [start, end]: forward-fill the run's first index, and
    # backward-fill its last index, so every position can look up its run's boundaries.
    positions = np.broadcast_to(np.arange(n_items), scores.shape)
    starts_run = np.ones(scores.shape, dtype=np.bool_)
    starts_run[:, 1:] = sorted_scores[:, 1:] != sorted_scores[:, :-1]
    ends_run = np.ones(scores.shape, dtype=np.bool_)
    ends_run[:, :-1] = starts_run[:, 1:]
    run_start = np.maximum.accumulate(np.where(starts_run, positions, 0), axis=1)
    run_end = np.minimum.accumulate(np.where(ends_run, positions, n_items - 1)[:, ::-1], axis=1)[:, ::-1]
    negatives_below = np.take_along_axis(negatives_through, run_start, axis=1) - np.take_along_axis(
        sorted_negative, run_start, axis=1
    )
    negatives_at_or_below = np.take_along_axis(negatives_through, run_end, axis=1)
    # A positive wins against negatives strictly below and half-wins against tied ones:
    # 2 * wins = below + at_or_below. Integers throughout, so the result is exact.
    twice_wins = np.sum(np.where(sorted_positive, negatives_below + negatives_at_or_below, 0), axis=1)

    n_pos = is_positive.sum(axis=1)
    n_neg = negatives_through[:, -1]
    pairs = n_pos * n_neg
    auc = np.full(n_users, np.nan)
    defined = pairs > 0
    auc[defined] = twice_wins[defined] / (2.0 * pairs[defined])
    return auc


def mean_per_user_auc(
    scores: np.ndarray,
    positives: Sequence[np.ndarray | Sequence[int]],
    exclude: Sequence[np.ndarray | Sequence[int]] | None = None,
) -> float:
    """Mean of :func:`per_user_auc` over users where it is defined (at least one positive and one negative).

    Raises ``ValueError`` if it is defined for no user.
    """
    auc = per_user_auc(scores, positives, exclude)
    defined = ~np.isnan(auc)
    if not defined.any():
        raise ValueError("mean_per_user_auc: no user has both a positive and a negative item")
    return float(np.mean(auc[defined]))


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
