"""User-item evaluation: rating error, and ranking of each user's held-out items over the whole catalogue.

Two parts.

* **Metrics** over a (users, n_items) score matrix, computed in one pass by a numba kernel (``rank_kernels.user_ranking``):
  :func:`user_ranking_stats` (per-user values) and the means :func:`per_user_auc`, :func:`precision_at_k`,
  :func:`recall_at_k`, :func:`map_at_k`, :func:`ndcg_at_k`; plus :func:`rmse` and :func:`mae` (the ones in
  :mod:`itemvec.evaluate.metrics`, re-exported).
* **The protocol**, the same for every user-item model: :func:`evaluate_user_model` and
  :func:`baseline_rmse`; ``RANKING_POLICY`` says in words what is ranked against what;
  :func:`validation_user_auc_function` scores the learning curve on the validation part the same way.

Who competes with whom (per user, see ``RANKING_POLICY``): the **candidates** are all catalogue items except
the ones passed as ``exclude`` (the user's train interactions); the **relevant** items are the ones passed as
``relevant`` that are also candidates (an item in both lists is excluded: it can never be recommended, so it
can be neither a hit nor a miss). Every candidate that is not relevant is a **non-relevant** candidate.

Ordering: higher score first. A NaN score (the model cannot score that item) ranks as ``-inf``: below every
finite score, tied with the other NaNs (and with ``-inf``). Ties are resolved

* in the AUC by counting a relevant item tied with a non-relevant one as half a win (the Mann-Whitney
  statistic, as scikit-learn's ``roc_auc_score`` and :func:`metrics.roc_auc`; LightFM's ``auc_score`` instead
  counts such a tie as a loss, since its ``predict_rank`` places every tied item in front);
* in the top-k metrics **pessimistically**: within a run of tied scores the non-relevant candidates come
  first, as in the item-item protocol's ranks and LightFM's ``predict_rank``. A model cannot gain by
  collapsing its scores, a model that scores nothing for a user (all NaN) gets no hits, and the result never
  depends on an arbitrary tie-break. Without ties this is the ordinary ranking.

Why a kernel rather than a full argsort per row (the reference in tests/oracles.py): at MovieLens-20M size (27k
items, batches of 1024 users) that keeps about ten 8-byte temporaries the size of the score matrix (2 GB per
batch) and sorts every row; the kernel sorts only each user's few relevant scores and counts, for each of them,
the candidates scoring above it (a user with few relevant items: O(n_items × n_relevant), vectorised) or places
every candidate among them by binary search (more: O(n_items log n_relevant)); O(n_items) scratch per thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp

from itemvec.arrays import unique_sorted
from itemvec.evaluate.metrics import mae, rmse

__all__ = [
    "RANKING_POLICY",
    "UserRankingStats",
    "baseline_rmse",
    "evaluate_user_model",
    "mae",
    "map_at_k",
    "ndcg_at_k",
    "per_user_auc",
    "precision_at_k",
    "recall_at_k",
    "rmse",
    "user_ranking_stats",
    "validation_user_auc_function",
]

RANKING_POLICY = (
    "Each test user with at least one relevant test item is ranked over the items with at least one train "
    "interaction (the whole catalogue in the 'all items' columns). Relevant: the user's test items rated at or "
    "above the threshold (the implicit view; every test item when positives_only=False), for explicit and "
    "implicit models alike. Candidates: those items except the user's train interactions (and validation "
    "interactions, when the train part carries them); a test item that is also a train item is excluded, not "
    "relevant; test items rated below the threshold stay candidates and count as non-relevant; a relevant item "
    "without any train interaction counts in the 'all items' columns only. A user without "
    "train history gets the popularity ranking from every model (warm and cold users are also reported apart). "
    "AUC (notebook): the triplet notebook's protocol, the whole catalogue with only the user's train positives "
    "excluded. Explicit models rank by predicted rating, implicit models by "
    "score. An unscorable item (NaN score) ranks below every finite score, tied with the other unscorable "
    "items. AUC: per user, the probability that a relevant item outscores a non-relevant candidate, ties "
    "counting half, averaged over users with both. Top-k metrics: ties broken pessimistically (non-relevant "
    "candidates first); precision@k = hits/k; recall@k = hits/(number relevant); MAP@k divides by "
    "min(k, number relevant); NDCG@k uses binary gains, a log2 discount and the ideal DCG of min(k, number "
    "relevant) hits; each averaged over the users ranked, with its standard error over them. RMSE and MAE (explicit models only) cover every "
    "test rating; a rating the model cannot predict (NaN) gets the train global mean (counted as n_imputed). "
    "RMSE scaled is the RMSE of ratings mapped to [0, 1] by (r - min) / (max - min).")


# Below this many scores (users x items) the kernel (rank_kernels.user_ranking) runs on the calling thread alone.
_PARALLEL_MIN_SCORES = 1 << 16


# --------------------------------------------------------------------------------------------------
# Per-user statistics and their means
# --------------------------------------------------------------------------------------------------


ItemSets: TypeAlias = sp.spmatrix | sp.sparray | np.ndarray | Sequence[np.ndarray | Sequence[int]]


def _as_csr(sets: ItemSets | None, shape: tuple[int, int], name: str) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64, indices int64) of per-user item sets given as a sparse matrix, a boolean mask or lists.

    A sparse matrix counts its stored entries (whatever their value, so pass a 0/1 matrix without explicit
    zeros); a dense array must be a boolean mask of ``shape``; a sequence holds one int array per user.
    """
    n_users, n_items = shape
    if sets is None:
        return np.zeros(n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if sp.issparse(sets):
        sparse: Any = sets  # a scipy sparse matrix or array (untyped: sp.issparse narrows nothing)
        if sparse.shape != shape:
            raise ValueError(f"{name} has shape {sparse.shape} but scores have shape {shape}; pass the rows of "
                             "the same users, over the same catalogue")
        csr = sp.csr_matrix(sets)
        return csr.indptr.astype(np.int64), csr.indices.astype(np.int64)
    if isinstance(sets, np.ndarray) and sets.ndim == 2:
        if sets.dtype != np.bool_ or sets.shape != shape:
            raise ValueError(f"{name} as a dense array must be a boolean mask of shape {shape}, "
                             f"got {sets.dtype} {sets.shape}")
        csr = sp.csr_matrix(sets)
        return csr.indptr.astype(np.int64), csr.indices.astype(np.int64)
    if len(sets) != n_users:
        raise ValueError(f"{name} has {len(sets)} entries but scores have {n_users} rows (one per user)")
    arrays = [np.asarray(a).reshape(-1) for a in sets]
    lengths = np.fromiter((a.size for a in arrays), dtype=np.int64, count=n_users)
    # Empty lists default to float64 and would make the concatenation float; leave them out.
    indices = np.concatenate([a for a in arrays if a.size] or [np.zeros(0, dtype=np.int64)])
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"{name} must hold integer item indices, got dtype {indices.dtype}")
    indices = indices.astype(np.int64, copy=False)
    if indices.size and (indices.min() < 0 or indices.max() >= n_items):
        bad = indices[(indices < 0) | (indices >= n_items)][0]
        raise ValueError(f"{name} holds item index {bad}, outside [0, {n_items})")
    return np.concatenate(([0], np.cumsum(lengths))).astype(np.int64), indices


@dataclass(frozen=True)
class UserRankingStats:
    """Per-user ranking results for one batch of users (every array has shape (n_users,)).

    ``n_relevant``: relevant candidates (duplicates and excluded items not counted). ``n_candidates``: items
    not excluded. ``auc``: NaN unless the user has a relevant item and a non-relevant candidate. ``hits``: relevant
    items in the top k. ``precision``, ``recall``, ``average_precision``, ``ndcg``: NaN for users with no
    relevant item (they are left out of every mean, as in ``implicit``). Definitions in :func:`user_ranking_stats`.
    """

    k: int
    n_relevant: np.ndarray
    n_candidates: np.ndarray
    auc: np.ndarray
    hits: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    average_precision: np.ndarray
    ndcg: np.ndarray

    @staticmethod
    def concatenate(parts: Sequence[UserRankingStats]) -> UserRankingStats:
        """Stack the stats of consecutive batches (all with the same k)."""
        if not parts:
            raise ValueError("no batches to concatenate")
        ks = {p.k for p in parts}
        if len(ks) != 1:
            raise ValueError(f"batches were ranked with different k: {sorted(ks)}")
        fields = ("n_relevant", "n_candidates", "auc", "hits", "precision", "recall", "average_precision",
                  "ndcg")
        return UserRankingStats(parts[0].k, *(np.concatenate([getattr(p, f) for p in parts]) for f in fields))

    def mean(self, name: str) -> float:
        """Mean of one per-user field over the users where it is defined; ValueError when it is nowhere."""
        values = getattr(self, name)
        defined = ~np.isnan(values)
        if not defined.any():
            needs = "a relevant item and a non-relevant candidate" if name == "auc" else "a relevant item"
            raise ValueError(f"{name}: no user has {needs} (after excluding the train items), so there is "
                             "nothing to average")
        return float(np.mean(values[defined]))

    def standard_error(self, name: str) -> float:
        """The standard error of :meth:`mean` (the users' sample standard deviation / sqrt(users)); 0 for
        one user."""
        values = getattr(self, name)
        values = values[~np.isnan(values)]
        return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def user_ranking_stats(scores: np.ndarray, relevant: ItemSets, exclude: ItemSets | None = None, *,
                       k: int = 10, columns: np.ndarray | None = None) -> UserRankingStats:
    """Rank every user's candidates by score and measure where the relevant ones land.

    Parameters
    ----------
    scores : (n_users, n_items) float32 or float64
        Higher is better; NaN = unscorable (ranks as ``-inf``, tied with the other NaNs).
    relevant : per-user item sets
        A (n_users, n_items) sparse matrix (stored entries count), a boolean mask, or one int array per user.
        Typically the user's test items (rated >= threshold for the implicit view). Duplicates count once.
    exclude : per-user item sets, optional
        Items that are not candidates, typically the user's train items. An item both relevant and excluded
        is excluded.
    k : int >= 1
    columns : ascending int array, optional
        Rank only these columns of ``scores`` (as ``np.take(scores, columns, axis=1)`` would, without the
        copy); ``relevant`` and ``exclude`` then hold positions in ``columns``.

    Returns
    -------
    UserRankingStats
        With ``m`` = relevant candidates, ``hit_i`` = 1 when the item at 0-based position i is relevant, and
        positions from the ranking with pessimistic ties (non-relevant candidates first among equal scores):

        - ``auc`` = (wins + ties / 2) / (m * non-relevant candidates), over all (relevant, non-relevant) pairs;
        - ``precision`` = hits@k / k (k even when fewer than k candidates exist);
        - ``recall`` = hits@k / m (the textbook recall: below 1 when m > k);
        - ``average_precision`` = sum_{i<k} hit_i * precision@(i+1) / min(k, m) (Kaggle's ``apk``, ``implicit``);
        - ``ndcg`` = sum_{i<k} hit_i / log2(i + 2), divided by the ideal DCG of min(k, m) hits at the top.

    Memory: the inputs plus O(n_items) scratch per thread; call it on batches of users.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (users, items) array, got shape {scores.shape}")
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    scores = np.ascontiguousarray(scores)
    if columns is not None:
        columns = np.asarray(columns)
        if (columns.ndim != 1 or not (np.issubdtype(columns.dtype, np.integer) or len(columns) == 0)
                or (len(columns) and (columns[0] < 0 or columns[-1] >= scores.shape[1]))
                or (np.diff(columns) <= 0).any()):
            raise ValueError(f"columns must be a 1-D array of ascending integer column numbers below "
                             f"{scores.shape[1]}")
        if len(columns) == 0:  # no candidate at all (a train part without interactions): ranks nothing
            scores, columns = scores[:, :0], None
    if columns is None:
        columns = np.zeros(0, dtype=np.int64)  # (every column)
        shape = scores.shape
    else:
        columns = columns.astype(np.int64, copy=False)
        shape = (scores.shape[0], len(columns))
    relevant_indptr, relevant_indices = _as_csr(relevant, shape, "relevant")
    exclude_indptr, exclude_indices = _as_csr(exclude, shape, "exclude")
    if len(columns):  # positions in ``columns`` -> the score columns the kernel marks
        relevant_indices, exclude_indices = columns[relevant_indices], columns[exclude_indices]
    n_users = shape[0]
    n_relevant = np.zeros(n_users, dtype=np.int64)
    n_candidates = np.zeros(n_users, dtype=np.int64)
    twice_wins = np.zeros(n_users, dtype=np.int64)
    hits = np.zeros(n_users, dtype=np.int64)
    ap_sum = np.zeros(n_users, dtype=np.float64)
    dcg = np.zeros(n_users, dtype=np.float64)
    outputs = (n_relevant, n_candidates, twice_wins, hits, ap_sum, dcg)
    inputs = (scores, columns, relevant_indptr, relevant_indices, exclude_indptr, exclude_indices, int(k))
    import numba  # loaded by the first ranking, not by every process that imports this module

    from itemvec.evaluate.rank_kernels import user_ranking

    threads = min(numba.get_num_threads(), n_users) if scores.size >= _PARALLEL_MIN_SCORES else 1
    if threads <= 1:
        user_ranking(*inputs, 0, n_users, *outputs)
    elif n_users:
        # Four row ranges per thread, so that one range of users with many relevant items does not hold the
        # others up. The kernel releases the GIL; the ranges write disjoint rows of the outputs.
        bounds = np.linspace(0, n_users, 4 * threads + 1).astype(np.int64)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: user_ranking(*inputs, bounds[i], bounds[i + 1], *outputs),
                          range(len(bounds) - 1)))

    has_relevant = n_relevant > 0
    pairs = n_relevant * (n_candidates - n_relevant)
    auc = np.full(n_users, np.nan)
    auc[pairs > 0] = twice_wins[pairs > 0] / (2.0 * pairs[pairs > 0])
    cap = np.minimum(n_relevant, k)
    ideal = np.concatenate(([0.0], np.cumsum(1.0 / np.log2(np.arange(k, dtype=np.float64) + 2.0))))[cap]

    def where_relevant(values: np.ndarray) -> np.ndarray:
        out = np.full(n_users, np.nan)
        out[has_relevant] = values[has_relevant]
        return out

    with np.errstate(divide="ignore", invalid="ignore"):
        return UserRankingStats(
            k=int(k), n_relevant=n_relevant, n_candidates=n_candidates, auc=auc, hits=hits,
            precision=where_relevant(hits / float(k)),
            recall=where_relevant(hits / n_relevant),
            average_precision=where_relevant(ap_sum / cap),
            ndcg=where_relevant(dcg / ideal),
        )


def per_user_auc(scores: np.ndarray, relevant: ItemSets, exclude: ItemSets | None = None) -> float:
    """Mean over users of the per-user AUC (see :func:`user_ranking_stats`): for each user with a relevant
    item and a non-relevant candidate, P(a relevant item outscores a non-relevant candidate), ties half.

    Unlike the reference in tests/oracles.py (which returns the per-user array and rejects NaN), this returns the
    mean; ``user_ranking_stats(...).auc`` has the per-user values. Raises ValueError if no user qualifies.
    """
    return user_ranking_stats(scores, relevant, exclude, k=1).mean("auc")


def precision_at_k(scores: np.ndarray, relevant: ItemSets, exclude: ItemSets | None = None, *,
                   k: int = 10) -> float:
    """Mean over users with a relevant candidate of hits@k / k (see :func:`user_ranking_stats`)."""
    return user_ranking_stats(scores, relevant, exclude, k=k).mean("precision")


def recall_at_k(scores: np.ndarray, relevant: ItemSets, exclude: ItemSets | None = None, *,
                k: int = 10) -> float:
    """Mean over users with a relevant candidate of hits@k / (number of relevant candidates)."""
    return user_ranking_stats(scores, relevant, exclude, k=k).mean("recall")


def map_at_k(scores: np.ndarray, relevant: ItemSets, exclude: ItemSets | None = None, *,
             k: int = 10) -> float:
    """Mean over users with a relevant candidate of AP@k, whose denominator is min(k, number relevant)."""
    return user_ranking_stats(scores, relevant, exclude, k=k).mean("average_precision")


def ndcg_at_k(scores: np.ndarray, relevant: ItemSets, exclude: ItemSets | None = None, *,
              k: int = 10) -> float:
    """Mean over users with a relevant candidate of NDCG@k (binary gains, log2 discount, ideal DCG of
    min(k, number relevant) hits)."""
    return user_ranking_stats(scores, relevant, exclude, k=k).mean("ndcg")


# --------------------------------------------------------------------------------------------------
# The protocol
# --------------------------------------------------------------------------------------------------


def _known_interactions(train) -> sp.csr_matrix:
    """The train interactions, plus the validation part the train data carries (neither is a candidate)."""
    known = train.matrix()
    validation = getattr(train, "validation", None)
    if validation is not None and len(validation):
        known = sp.csr_matrix(known + validation.matrix())
        known.data[:] = 1.0
    return known


def evaluate_user_model(model, train, test, *, k: int = 10, batch_users: int = 1024,
                        positives_only: bool = True) -> dict:
    """Every user-item metric of one model on one test part (the policy is ``RANKING_POLICY``).

    Parameters
    ----------
    model : a ``UserItemModel`` (or any object with ``kind``, ``predict(users, items)`` and
        ``score_users(users) -> (u, n_items)``), fitted on ``train``.
    train, test : ``Interactions`` over the same users and catalogue.
    k : cut-off of the top-k metrics.
    batch_users : users scored at once; memory is about ``batch_users * n_items * 4`` bytes for the scores.
    positives_only : relevant = test ratings >= ``test.threshold`` (default), or every test rating.

    Returns
    -------
    dict with ``rmse``, ``rmse_scaled``, ``mae``, ``n_imputed`` (None unless ``model.kind == "explicit"``),
    ``auc_per_user``, ``precision_at_{k}``, ``recall_at_{k}``, ``map_at_{k}``, ``ndcg_at_{k}`` (None when no
    user can be ranked) over the items with a train interaction, each with its standard error over the users
    (``<name>_se``); ``auc_per_user_all_items`` and ``ndcg_at_{k}_all_items`` over the whole catalogue;
    ``auc_per_user_notebook`` (the whole catalogue, only the train positives excluded); ``auc_per_user_warm`` /
    ``_cold`` and ``ndcg_at_{k}_warm`` / ``_cold`` over the users with and without train history;
    ``n_users_cold``, ``n_items_ranked``, ``n_users_ranked`` (users with at least one relevant candidate), ``n_users_auc``,
    ``n_test_ratings`` and ``k``.
    """
    if train.n_items != test.n_items or train.n_users != test.n_users:
        raise ValueError(f"train ({train.n_users} users, {train.n_items} items) and test ({test.n_users} users, "
                         f"{test.n_items} items) must share one id space; take both from the same split")
    if not isinstance(batch_users, int | np.integer) or batch_users < 1:
        raise ValueError(f"batch_users must be a positive integer, got {batch_users!r}")
    result: dict = {"rmse": None, "rmse_scaled": None, "mae": None, "n_imputed": None}
    if model.kind == "explicit" and len(test):
        predicted = np.asarray(model.predict(test.user, test.item), dtype=np.float64)
        missing = np.isnan(predicted)
        if missing.any():
            predicted = np.where(missing, float(np.mean(train.rating, dtype=np.float64)), predicted)
        actual = test.rating.astype(np.float64)
        result.update(rmse=rmse(actual, predicted), rmse_scaled=rmse(test.scaled(actual), test.scaled(predicted)),
                      mae=mae(actual, predicted), n_imputed=int(missing.sum()))

    relevant = sp.csr_matrix(test.matrix(positives_only=positives_only))
    known = _known_interactions(train)
    # The candidates of the default figures: items with at least one train interaction (an item nobody rated
    # in train is ranked last by every model without features, which made a constant predictor look good).
    columns = np.flatnonzero(np.bincount(train.item, minlength=train.n_items) > 0)
    warm = np.bincount(train.user, minlength=train.n_users) > 0
    train_positives = sp.csr_matrix(train.matrix(positives_only=True))  # the triplet notebook's exclusions
    # Only users with a relevant test item that is not also a known item can be ranked; score only them.
    overlap = sp.csr_matrix(relevant.multiply(known))
    overlap.eliminate_zeros()
    users = np.flatnonzero(np.diff(relevant.indptr) > np.diff(overlap.indptr))
    passes: dict[str, list[UserRankingStats]] = {"rated": [], "all": [], "notebook": []}
    for start in range(0, len(users), batch_users):
        batch = users[start:start + batch_users]
        scores = model.score_users(batch)
        if scores.shape != (len(batch), train.n_items):
            raise ValueError(f"{type(model).__name__}.score_users returned shape {scores.shape}, expected "
                             f"({len(batch)}, {train.n_items}): the model must cover the data's whole catalogue")
        passes["rated"].append(user_ranking_stats(scores, relevant[batch][:, columns], known[batch][:, columns], k=k,
                                                  columns=columns))
        passes["all"].append(user_ranking_stats(scores, relevant[batch], known[batch], k=k))
        passes["notebook"].append(user_ranking_stats(scores, relevant[batch], train_positives[batch], k=1))
    fields = {"auc_per_user": "auc", f"precision_at_{k}": "precision", f"recall_at_{k}": "recall",
              f"map_at_{k}": "average_precision", f"ndcg_at_{k}": "ndcg"}
    result.update({key: None for name in fields for key in (name, f"{name}_se")})
    extra = {"auc_per_user_all_items": ("all", "auc", None), f"ndcg_at_{k}_all_items": ("all", "ndcg", None),
             "auc_per_user_notebook": ("notebook", "auc", None),
             "auc_per_user_warm": ("rated", "auc", True), f"ndcg_at_{k}_warm": ("rated", "ndcg", True),
             "auc_per_user_cold": ("rated", "auc", False), f"ndcg_at_{k}_cold": ("rated", "ndcg", False)}
    result.update(dict.fromkeys(extra))
    n_auc = 0
    if len(users):
        stats = {name: UserRankingStats.concatenate(parts) for name, parts in passes.items()}
        n_auc = int(np.count_nonzero(~np.isnan(stats["rated"].auc)))
        for key, field in fields.items():
            if not np.isnan(getattr(stats["rated"], field)).all():
                result[key], result[f"{key}_se"] = stats["rated"].mean(field), stats["rated"].standard_error(field)
        for key, (name, field, want_warm) in extra.items():
            values = getattr(stats[name], field)
            if want_warm is not None:
                values = np.where(warm[users] == want_warm, values, np.nan)
            if not np.isnan(values).all():
                result[key] = float(np.nanmean(values))
    result.update(n_users_ranked=int(len(users)), n_users_auc=n_auc, n_users_cold=int((~warm[users]).sum()),
                  n_items_ranked=int(len(columns)), n_test_ratings=int(len(test)), k=int(k))
    return result


def validation_user_auc_function(training, max_users: int = 2000):
    """The learning curve of a user-item model: mean per-user AUC on the validation ratings (at most
    ``max_users`` users, a fixed seeded sample), or None when the split has no validation part."""
    validation = training.validation
    if validation is None or len(validation) == 0:
        return None
    users = unique_sorted(validation.user)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(0).choice(users, max_users, replace=False))
        validation = validation.subset(np.isin(validation.user, users))

    train_only = replace(training, validation=None)  # else the validation items are excluded
    # What evaluate_user_model would rebuild at every evaluation, built once: the users it ranks, their
    # relevant items and known items over the candidate columns, in its batches. The figure is its
    # ``auc_per_user`` (the "rated" pass alone; AUC does not depend on k).
    batch_users = 1024
    relevant = sp.csr_matrix(validation.matrix(positives_only=True))
    known = _known_interactions(train_only)
    columns = np.flatnonzero(np.bincount(train_only.item, minlength=train_only.n_items) > 0)
    overlap = sp.csr_matrix(relevant.multiply(known))
    overlap.eliminate_zeros()
    ranked = np.flatnonzero(np.diff(relevant.indptr) > np.diff(overlap.indptr))
    batches = [(batch, relevant[batch][:, columns], known[batch][:, columns])
               for batch in (ranked[s:s + batch_users] for s in range(0, len(ranked), batch_users))]
    n_items = train_only.n_items

    def evaluate(model) -> float | None:
        if not batches:
            return None
        parts = []
        for batch, batch_relevant, batch_known in batches:
            scores = model.score_users(batch)
            if scores.shape != (len(batch), n_items):
                raise ValueError(f"{type(model).__name__}.score_users returned shape {scores.shape}, expected "
                                 f"({len(batch)}, {n_items}): the model must cover the data's whole catalogue")
            parts.append(user_ranking_stats(scores, batch_relevant, batch_known, k=1, columns=columns))
        stats = UserRankingStats.concatenate(parts)
        return None if np.isnan(stats.auc).all() else stats.mean("auc")

    return evaluate


def baseline_rmse(train, test, *, item_damping: float = 25.0, user_damping: float = 10.0) -> dict:
    """Rating error of two models that need no training, so every table has them.

    - ``global_mean``: every rating predicted as the train mean ``mu``.
    - ``user_item_bias``: ``mu + b_u + b_i`` with damped biases (Koren 2010, "Factor in the neighbors", section
      2.1): ``b_i = sum_{u in R(i)} (r_ui - mu) / (item_damping + |R(i)|)``, then
      ``b_u = sum_{i in R(u)} (r_ui - mu - b_i) / (user_damping + |R(u)|)``; a user or item absent from train
      gets bias 0; predictions are clipped to ``[rating_min, rating_max]``.

    Returns ``{"global_mean": {...}, "user_item_bias": {...}}``, each with ``rmse``, ``rmse_scaled`` and ``mae``
    over every test rating (scaled as in :func:`evaluate_user_model`).
    """
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"baseline_rmse needs train and test ratings, got {len(train)} and {len(test)}")
    rating = train.rating.astype(np.float64)
    mu = float(rating.mean())
    item_count = np.bincount(train.item, minlength=train.n_items)
    item_sum = np.bincount(train.item, weights=rating - mu, minlength=train.n_items)
    # where=: an item (user) without train ratings keeps bias 0, also with zero damping (no 0 / 0).
    item_bias = np.divide(item_sum, item_damping + item_count, out=np.zeros(train.n_items), where=item_count > 0)
    residual = rating - mu - item_bias[train.item]
    user_count = np.bincount(train.user, minlength=train.n_users)
    user_sum = np.bincount(train.user, weights=residual, minlength=train.n_users)
    user_bias = np.divide(user_sum, user_damping + user_count, out=np.zeros(train.n_users), where=user_count > 0)
    actual = test.rating.astype(np.float64)
    predictions = {
        "global_mean": np.full(len(test), mu),
        "user_item_bias": np.clip(mu + user_bias[test.user] + item_bias[test.item], test.rating_min,
                                  test.rating_max),
    }
    return {name: {"rmse": rmse(actual, p), "rmse_scaled": rmse(test.scaled(actual), test.scaled(p)),
                   "mae": mae(actual, p)} for name, p in predictions.items()}
