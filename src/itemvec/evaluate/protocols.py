"""The item-item evaluation protocol, the same for every model.

- Pairs: the test positives with as many uniform negatives (``auc``, ``ap``), and again with degree-matched
  negatives (``auc_degree``), from the split that `prepare` wrote.
- ``auc_seen``: only pairs whose two items are both in the train graph; ``auc_unseen``: only the others;
  ``auc_cold``: the cold-start slice proper, the pairs touching an item absent from training whose every such
  item has side information (product metadata, or session attributes): where a model like EGES can answer.
- Unseen items: a pair the model cannot score (NaN from ``score_pairs``: an item absent from training and no
  side information) gets the median of the model's scores over the pairs of the same evaluation set that it
  can score: label-free, neutral, and never a random vector. ``n_unseen_pairs`` counts pairs touching an
  item absent from the train graph; ``n_imputed_pairs`` counts those that received the median.
- Ranking over the whole catalogue: for test positives in a seeded random order, the query is an end seen in
  training and the target its partner; every other product is a candidate except the query and its other
  known partners (train, validation and test: the "filtered" setting). ``recall_at_10`` and ``ndcg_at_10``
  from the target's rank (ties pessimistic), each with its standard error (``*_se``); queries are ranked
  until both standard errors are under 0.002 or all are ranked (``ranking_queries`` of
  ``ranking_queries_available``). Unscorable candidates take the row's median score.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from itemvec.data.store import DataDir
from itemvec.data.types import EvalPairs
from itemvec.evaluate import metrics

POLICY = (
    "Test pairs are the held-out positives plus as many uniform negatives (AUC, AP) and, separately, as many "
    "degree-matched negatives (AUC degree-matched). AUC seen uses only pairs whose two items are in the train "
    "graph. A pair the model cannot score (an item unseen in training and no side information) gets the median "
    "of that model's scores over the pairs it can score; 'unseen pairs' counts the pairs touching an unseen item. "
    "Each AUC is shown with its standard error (DeLong). "
    "Recall@10 and NDCG@10 rank a held-out partner among all products for the other end (an item seen in "
    "training), excluding the query and its other known partners; ties count against the target. Test "
    "positives are ranked in a seeded random order until the standard errors of both are under 0.002, or all "
    "are ranked; each figure is shown with its standard error.")


def impute_unscorable(scores: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace NaN by the median of the finite scores (0.0 if none). Returns (scores, how many replaced)."""
    missing = np.isnan(scores)
    n = int(missing.sum())
    if n == 0:
        return scores, 0
    finite = scores[~missing]
    fill = float(np.median(finite)) if len(finite) else 0.0
    out = scores.copy()
    out[missing] = fill
    return out, n


def score_eval_pairs(model, pairs: EvalPairs) -> tuple[np.ndarray, int]:
    return impute_unscorable(model.score_pairs(pairs.item_a, pairs.item_b))


def validation_auc_function(model, validation: EvalPairs | None, max_pairs: int = 50000, seed: int = 0):
    """A function returning the model's validation AUC on a fixed subsample, for learning curves."""
    if validation is None or len(validation) == 0:
        return None
    rng = np.random.default_rng(seed)
    index = np.arange(len(validation))
    if len(index) > max_pairs:
        index = np.sort(rng.choice(index, max_pairs, replace=False))
    sample = EvalPairs(validation.item_a[index], validation.item_b[index], validation.label[index])
    if sample.label.min() == sample.label.max():
        return None

    def evaluate(m=model) -> float:
        scores, _ = score_eval_pairs(m, sample)
        return metrics.roc_auc(sample.label, scores)

    return evaluate


def _threshold_curve(model, labels: np.ndarray, scores: np.ndarray) -> dict:
    probability = model.probability(scores)
    if probability is not None:
        values, axis = probability, "probability (sigmoid of the score)"
    else:
        # No probability reading: thresholds on the score's percentile among the evaluated pairs.
        order = np.argsort(scores, kind="stable")
        values = np.empty(len(scores))
        values[order] = np.arange(len(scores)) / max(len(scores) - 1, 1)
        axis = "score percentile"
    thresholds = np.linspace(0.0, 1.0, 101)
    precision, recall = metrics.precision_recall_at_thresholds(labels, values, thresholds)
    return {"thresholds": thresholds, "precision": precision, "recall": recall, "axis": axis}


def _known_partners(data: DataDir) -> sp.csr_matrix:
    pairs = data.pairs()
    n = data.n_items
    ones = np.ones(2 * len(pairs), dtype=np.int8)
    return sp.csr_matrix((ones, (np.r_[pairs.item_a, pairs.item_b], np.r_[pairs.item_b, pairs.item_a])),
                         shape=(n, n))


TARGET_STANDARD_ERROR = 0.002  # Recall@10 and NDCG@10: rank queries until both standard errors are below this
MIN_RANKING_QUERIES = 1000
RANKING_ROUND = 2048  # queries ranked between two looks at the standard errors


def standard_error(values: np.ndarray) -> float:
    """The standard error of the mean of ``values`` (sample standard deviation / sqrt(n)); 0 for n < 2."""
    n = len(values)
    return float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def ranking_metrics(model, data: DataDir, train_degree: np.ndarray, *, part: str = "test", k: int = 10,
                    queries: int | None = None, seed: int = 0, batch: int = 64,
                    target_se: float = TARGET_STANDARD_ERROR) -> dict:
    """Recall@k and NDCG@k of held-out partners among all products (see the module docstring), each with its
    standard error. The test positives are ranked in a seeded random order, ``RANKING_ROUND`` at a time, until
    both standard errors are under ``target_se`` (after at least ``MIN_RANKING_QUERIES``) or every positive
    with a query seen in training has been ranked; ``queries`` caps the count (None: no cap)."""
    positives = data.pairs(part)
    rng = np.random.default_rng(seed)
    a, b = positives.item_a.astype(np.int64), positives.item_b.astype(np.int64)
    flip = rng.random(len(a)) < 0.5
    query, target = np.where(flip, b, a), np.where(flip, a, b)
    # The query must be an item seen in training: swap ends where only the other one was seen.
    swap = (train_degree[query] == 0) & (train_degree[target] > 0)
    query, target = np.where(swap, target, query), np.where(swap, query, target)
    usable = np.flatnonzero(train_degree[query] > 0)
    if len(usable) == 0:
        return {f"recall_at_{k}": None, f"recall_at_{k}_se": None, f"ndcg_at_{k}": None, f"ndcg_at_{k}_se": None,
                "ranking_queries": 0, "ranking_queries_available": 0}
    order = rng.permutation(usable)
    if queries is not None:
        order = order[:queries]
    known = _known_partners(data)
    ranks = np.empty(len(order), dtype=np.int64)
    done = 0
    while done < len(order):
        stop = min(done + RANKING_ROUND, len(order))
        for start in range(done, stop, batch):
            chosen = order[start:min(start + batch, stop)]
            ranks[start:start + len(chosen)] = _target_ranks(model, known, query[chosen], target[chosen])
        done = stop
        hits, gains = _hits_and_gains(ranks[:done], k)
        if done >= MIN_RANKING_QUERIES and max(standard_error(hits), standard_error(gains)) < target_se:
            break
    ranks = ranks[:done]
    hits, gains = _hits_and_gains(ranks, k)
    return {f"recall_at_{k}": float(hits.mean()), f"recall_at_{k}_se": standard_error(hits),
            f"ndcg_at_{k}": float(gains.mean()), f"ndcg_at_{k}_se": standard_error(gains),
            "ranking_queries": int(done), "ranking_queries_available": int(len(usable)),
            "median_rank": float(np.median(ranks))}


def _hits_and_gains(ranks: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    hits = (ranks < k).astype(np.float64)
    return hits, np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def _target_ranks(model, known: sp.csr_matrix, query: np.ndarray, target: np.ndarray) -> np.ndarray:
    """0-based rank of each target among all products for its query, ties pessimistic (as
    ``metrics.ranks_from_scores``), the query and its known partners other than the target left out, unscorable
    candidates (NaN) at the median of the row's finite scores (0 when it has none)."""
    scores = np.ascontiguousarray(model.score_all(query))
    n = len(query)
    # Who does not compete: the query, its known partners and the target itself (counted apart), one list per row.
    partners = known[query]
    rows = np.r_[np.repeat(np.arange(n), np.diff(partners.indptr)), np.arange(n), np.arange(n)]
    columns = np.r_[partners.indices, query, target]
    out = sp.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, columns)), shape=(n, scores.shape[1]))
    out.sum_duplicates()
    ranks = np.empty(n, dtype=np.int64)
    from itemvec.evaluate.rank_kernels import rank_rows  # numba, loaded by the first ranking

    rank_rows(scores, target.astype(np.int64), out.indptr.astype(np.int64), out.indices.astype(np.int64), ranks)
    return ranks


def _auc_error(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """The AUC's standard error (DeLong), None where it is undefined (fewer than two of a class)."""
    positives = int(np.count_nonzero(labels))
    if positives < 2 or len(labels) - positives < 2:
        return None
    return metrics.roc_auc_standard_error(labels, scores)


def side_information_mask(data: DataDir) -> np.ndarray | None:
    """(n_items,) bool: products with side information (a metadata record, or session attributes); None when
    the DATA_DIR records neither."""
    import pyarrow.parquet as pq

    columns = pq.read_schema(data.path / "products.parquet").names
    if "has_metadata" in columns:
        return np.asarray(data.products(columns=["has_metadata"])["has_metadata"].to_numpy(zero_copy_only=False),
                          dtype=bool)
    if "attributes" in columns:
        return ~np.asarray(data.products(columns=["attributes"])["attributes"].is_null().to_numpy(
            zero_copy_only=False), dtype=bool)
    return None


def evaluate_item_model(model, data: DataDir, *, part: str = "test", ranking_queries: int | None = None,
                        seed: int = 0) -> tuple[dict, dict]:
    """All item-item metrics of one model on one split part. Returns (metrics, curves)."""
    train = data.pairs("train")
    train_degree = np.bincount(np.r_[train.item_a, train.item_b], minlength=data.n_items)
    uniform = data.eval_pairs(part, "uniform")
    scores, imputed = score_eval_pairs(model, uniform)
    seen = (train_degree[uniform.item_a] > 0) & (train_degree[uniform.item_b] > 0)
    degree_pairs = data.eval_pairs(part, "degree")
    degree_scores, _ = score_eval_pairs(model, degree_pairs)
    unseen = ~seen
    side = side_information_mask(data)
    if side is not None:
        answerable = lambda items: (train_degree[items] > 0) | side[items]  # noqa: E731
        cold = unseen & answerable(uniform.item_a) & answerable(uniform.item_b)
    else:
        cold = np.zeros(len(uniform), dtype=bool)
    result = {
        "auc": metrics.roc_auc(uniform.label, scores),
        "auc_seen": (metrics.roc_auc(uniform.label[seen], scores[seen])
                     if 0 < uniform.label[seen].sum() < seen.sum() else None),
        # The cold-start slice: pairs touching an item absent from training. A model without side
        # information gives them all the same imputed score, so 0.5 exactly.
        "auc_unseen": (metrics.roc_auc(uniform.label[unseen], scores[unseen])
                       if 0 < uniform.label[unseen].sum() < unseen.sum() else None),
        "auc_cold": (metrics.roc_auc(uniform.label[cold], scores[cold])
                     if 0 < uniform.label[cold].sum() < cold.sum() else None),
        "auc_degree": metrics.roc_auc(degree_pairs.label, degree_scores),
        "ap": metrics.average_precision(uniform.label, scores),
        "auc_se": _auc_error(uniform.label, scores),
        "auc_seen_se": _auc_error(uniform.label[seen], scores[seen]),
        "auc_degree_se": _auc_error(degree_pairs.label, degree_scores),
        "n_test_pairs": int(len(uniform)),
        "n_seen_pairs": int(seen.sum()),
        "n_unseen_pairs": int((~seen).sum()),
        "n_cold_pairs": int(cold.sum()),
        "n_imputed_pairs": int(imputed),
    }
    result.update(ranking_metrics(model, data, train_degree, part=part, queries=ranking_queries, seed=seed))
    fpr, tpr, _ = metrics.roc_curve(uniform.label, scores)
    precision, recall, _ = metrics.precision_recall_curve(uniform.label, scores)
    curves = {
        "roc": {"fpr": fpr, "tpr": tpr, "auc": result["auc"]},
        "pr": {"precision": precision, "recall": recall, "ap": result["ap"]},
        "threshold": _threshold_curve(model, uniform.label, scores),
    }
    return result, curves
