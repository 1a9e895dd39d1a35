"""The ranking passes of the two protocols in numba: the item-item one's (``protocols._target_ranks``) and
the user-item one's (``ranking.user_ranking_stats``), in a module of their own so that numba is loaded only by
a process that ranks (a heuristic model's training never does)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def rank_rows(scores, targets, out_indptr, out_indices, ranks):
    """Per row: how many competing items score at least the target's score, a NaN counting as the row's
    median finite score. One pass over the row (the median's side of the target's score follows from the
    count of finite scores at or above it); another only for a NaN target, whose score is that median, and
    for the rare even count of finite scores whose middle pair straddles the target's score."""
    n_rows, n_items = scores.shape
    for r in prange(n_rows):
        row = scores[r]
        t = np.float64(row[targets[r]])
        if np.isnan(t):
            finite = np.empty(n_items, dtype=np.float64)
            m = 0
            for j in range(n_items):
                if not np.isnan(row[j]):
                    finite[m] = row[j]
                    m += 1
            t = np.median(finite[:m]) if m > 0 else 0.0
        count = 0
        n_nan = 0
        t_row = row.dtype.type(t)
        if np.float64(t_row) == t:  # the usual case: compare in the row's own precision, one cheap pass
            for j in range(n_items):
                v = row[j]
                if v >= t_row:
                    count += 1
                elif v != v:
                    n_nan += 1
        else:  # a NaN target's median, between two of the row's values: compare exactly, in float64
            for j in range(n_items):
                v = np.float64(row[j])
                if v >= t:
                    count += 1
                elif v != v:
                    n_nan += 1
        n_finite = n_items - n_nan
        upper = np.inf  # the smallest finite score >= t and the largest below it: needed only for an even count
        lower = -np.inf  # whose middle pair straddles t
        if n_finite > 0 and n_finite % 2 == 0 and count == n_finite // 2:
            for j in range(n_items):
                v = np.float64(row[j])
                if v >= t:
                    if v < upper:
                        upper = v
                elif v > lower:
                    lower = v
        # Is the median of the finite scores >= t?  (numpy's median: the mean of the two middle values.)
        if n_finite == 0:
            nan_counts = 0.0 >= t
        elif n_finite % 2 == 1:
            nan_counts = count >= (n_finite + 1) // 2
        elif count >= n_finite // 2 + 1:
            nan_counts = True
        elif count <= n_finite // 2 - 1:
            nan_counts = False
        else:
            nan_counts = 0.5 * (lower + upper) >= t
        rank = count + (n_nan if nan_counts else 0)
        for k in range(out_indptr[r], out_indptr[r + 1]):
            v = np.float64(row[out_indices[k]])
            if np.isnan(v):
                rank -= 1 if nan_counts else 0
            elif v >= t:
                rank -= 1
        ranks[r] = rank


FEW_RELEVANT = 32  # a user with at most this many relevant candidates is counted per relevant item (below)


@njit(nogil=True, cache=True)
def user_ranking(scores, columns, relevant_indptr, relevant_indices, exclude_indptr, exclude_indices, k, first,
                 stop, n_relevant, n_candidates, twice_wins, hits, ap_sum, dcg):  # pragma: no cover (numba)
    """Per user in rows [first, stop): relevant and candidate counts, twice the AUC wins, and the top-k hits,
    AP sum and DCG, written into the output arrays at the user's row. The candidates are the score columns
    ``columns`` (ascending), or every column when it is empty; the relevant and excluded items are score
    columns either way.

    Serial and ``nogil``: :func:`user_ranking_stats` runs disjoint row ranges on threads. (A ``prange`` kernel
    compiled twice as slowly, and starting its thread pool cost 50 times the work of a small call on a busy
    machine.) Each user's relevant scores are sorted ascending (``relevant``, m of them, a NaN as -inf); what
    the AUC and the top k need is, for each non-relevant candidate, how many relevant scores lie below it
    (``lo``) and at or below it (``hi``): it loses to ``m - hi`` relevant items and ties ``hi - lo``, so twice
    the wins are Σ (2m - lo - hi); and ``at_or_below[h]``, the number of candidates with ``hi == h``, tells how
    many non-relevant candidates score at least each relevant item, which with pessimistic ties is exactly
    what stands in front of it.

    Both come from two counts per relevant item i: ``ge_i`` / ``gt_i``, the non-relevant candidates scoring
    at least / more than ``relevant[i]`` (Σ hi = Σ ge_i, Σ lo = Σ gt_i, ``at_or_below[h] = ge_(h-1) - ge_h``).
    For a user with few relevant items (``FEW_RELEVANT``) they are m branch-free counting passes over the
    row, which the compiler vectorises (about 7 times faster than a search per candidate at MovieLens size,
    where a validation user has 4 relevant items); for more, each candidate above the lowest relevant score
    is placed by a binary search. The counts are integers: both ways give the same figures.
    """
    width = scores.shape[1]
    n_items = len(columns) if len(columns) else width
    # Per score column: 0 = non-relevant candidate, 1 = relevant candidate, 2 = excluded (exclusion wins over
    # relevance), reset after each user; 3 = not among ``columns``. (The passes then read the rows as they
    # are, in order, rather than gathering the columns.)
    mark = np.zeros(width, dtype=np.uint8)
    if len(columns):
        mark[:] = 3
        for j in columns:
            mark[j] = 0
    candidates = np.empty(width, dtype=scores.dtype)
    for u in range(first, stop):
        n_excluded = 0
        for p in range(exclude_indptr[u], exclude_indptr[u + 1]):
            j = exclude_indices[p]
            if mark[j] == 0:
                mark[j] = 2
                n_excluded += 1
        relevant = np.empty(relevant_indptr[u + 1] - relevant_indptr[u], dtype=np.float64)
        m = 0
        for p in range(relevant_indptr[u], relevant_indptr[u + 1]):
            j = relevant_indices[p]
            if mark[j] == 0:
                mark[j] = 1
                s = np.float64(scores[u, j])
                relevant[m] = -np.inf if np.isnan(s) else s
                m += 1
        n_relevant[u] = m
        n_candidates[u] = n_items - n_excluded
        if m > 0:
            relevant = np.sort(relevant[:m])
            n_other = np.int64(n_items - n_excluded - m)
            at_or_below = np.zeros(m + 1, dtype=np.int64)
            if m <= FEW_RELEVANT:
                twice_wins[u] = _count_per_relevant(scores[u], mark, relevant, n_other, candidates, at_or_below)
            else:
                twice_wins[u] = _search_per_candidate(scores[u], mark, relevant, at_or_below)
            # Walk the relevant items from the best down. In front of relevant[i]: the non-relevant candidates
            # scoring >= relevant[i] (those with hi > i) and the m - 1 - i relevant items after it in ascending
            # order. Positions only grow along the walk, so stop at the first one outside the top k.
            in_front = np.int64(0)
            found = np.int64(0)
            precision_sum = 0.0
            gain = 0.0
            for i in range(m - 1, -1, -1):
                in_front += at_or_below[i + 1]
                position = in_front + (m - 1 - i)
                if position >= k:
                    break
                found += 1
                precision_sum += found / (position + 1.0)
                gain += 1.0 / np.log2(position + 2.0)
            hits[u] = found
            ap_sum[u] = precision_sum
            dcg[u] = gain
        for p in range(exclude_indptr[u], exclude_indptr[u + 1]):
            mark[exclude_indices[p]] = 0
        for p in range(relevant_indptr[u], relevant_indptr[u + 1]):
            mark[relevant_indices[p]] = 0


@njit(inline="always")
def _count_per_relevant(row, mark, relevant, n_other, candidates, at_or_below):
    """Twice the AUC wins of one user, filling ``at_or_below``, by ``ge_i`` / ``gt_i`` (see
    ``user_ranking``): ``candidates`` is the row with a NaN score as -inf and every marked column as NaN (it
    compares false with everything), in the row's own precision (the relevant scores are its values, exactly)."""
    inf = row.dtype.type(np.inf)
    nan = row.dtype.type(np.nan)
    n_items = len(row)
    for j in range(n_items):
        v = row[j]
        candidates[j] = nan if mark[j] != 0 else (v if v == v else -inf)
    wins = 2 * len(relevant) * n_other
    previous = n_other  # ge of the relevant item before (all the candidates before the first)
    for i in range(len(relevant)):
        r = row.dtype.type(relevant[i])
        ge = np.int64(0)
        gt = np.int64(0)
        for j in range(n_items):
            ge += candidates[j] >= r
            gt += candidates[j] > r
        wins -= ge + gt
        at_or_below[i] = previous - ge
        previous = ge
    at_or_below[len(relevant)] = previous
    return wins


@njit(inline="always")
def _search_per_candidate(row, mark, relevant, at_or_below):
    """Twice the AUC wins of one user, filling ``at_or_below``, by placing each non-relevant candidate among
    the sorted relevant scores (see ``user_ranking``)."""
    m = len(relevant)
    lowest = relevant[0]
    wins = np.int64(0)
    for j in range(len(row)):
        if mark[j] != 0:
            continue
        s = np.float64(row[j])
        if np.isnan(s):
            s = -np.inf
        if s < lowest:
            # Below every relevant score (the common case for a good model): no search needed.
            wins += 2 * m
            at_or_below[0] += 1
            continue
        lo = np.searchsorted(relevant, s, side="left")
        hi = lo
        while hi < m and relevant[hi] == s:  # ties are rare: scan them rather than search again
            hi += 1
        # Relevant items above s win (m - hi), tied ones half-win (hi - lo): 2 * wins = 2m - lo - hi.
        wins += 2 * m - lo - hi
        at_or_below[hi] += 1
    return wins
