"""Reference versions of the user-item ranking metrics, for tests only, written independently of the numba
kernel in itemvec.evaluate.ranking (numpy, one sort per row): tests/test_ranking.py holds the kernel to them,
and tests/test_metrics.py holds them to scikit-learn and to plain Python loops, ties included. (They lived
in itemvec.evaluate.metrics, where nothing but the tests called them.)"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from itemvec.evaluate.metrics import _check_score_matrix, _index_lists_to_mask


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
