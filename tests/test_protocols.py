"""The protocol objects of the two data kinds (itemvec.evaluate.protocol): lookup, what runs.py and the report
read from them, and that evaluate writes metrics.json as it always has. Fakes stand in for models and DATA_DIRs
(the kinds end to end: test_cli_compare.py and test_ratings_cli.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")

from itemvec import registry  # noqa: E402  (after the importorskip on purpose)
from itemvec.data.types import Interactions  # noqa: E402
from itemvec.errors import InputError  # noqa: E402
from itemvec.evaluate.protocol import ITEM_ITEM, PROTOCOLS, USER_ITEM, protocol  # noqa: E402
from itemvec.evaluate.protocols import POLICY  # noqa: E402
from itemvec.evaluate.ranking import RANKING_POLICY, evaluate_user_model, validation_user_auc_function  # noqa: E402
from itemvec.evaluate.report import write_report  # noqa: E402
from itemvec.runs import table_lines  # noqa: E402


def test_one_protocol_per_kind():
    assert [p.kind for p in PROTOCOLS] == list(registry.KINDS)
    assert protocol("pairs") is ITEM_ITEM and protocol("ratings") is USER_ITEM
    with pytest.raises(ValueError, match="unknown data kind 'graphs'"):
        protocol("graphs")
    assert (ITEM_ITEM.model_words, ITEM_ITEM.command, ITEM_ITEM.data_words) == ("item-item", "similar", "product pairs")
    assert (USER_ITEM.model_words, USER_ITEM.command, USER_ITEM.data_words) == ("user-item", "recommend", "ratings")
    assert ITEM_ITEM.policy is POLICY and USER_ITEM.policy is RANKING_POLICY


def test_the_command_line_table_has_the_reports_metric_columns():
    assert ITEM_ITEM.table_columns == ["auc", "auc_seen", "auc_unseen", "auc_cold", "auc_degree", "ap",
                                       "recall_at_10", "ndcg_at_10"]
    assert USER_ITEM.table_columns == ["rmse", "rmse_scaled", "mae", "auc_per_user", "auc_per_user_all_items",
                                       "auc_per_user_notebook", "precision_at_10", "recall_at_10", "map_at_10",
                                       "ndcg_at_10", "ndcg_at_10_cold"]
    # The kind of a metrics row: user-item rows record the model's kind, as model.json does.
    for rows, columns in (([{"model": "bpr", "kind": "implicit"}], USER_ITEM.table_columns),
                          ([{"model": "mf", "auc": 0.9}], ITEM_ITEM.table_columns), ([], ITEM_ITEM.table_columns)):
        assert table_lines(rows)[0].split()[1:-4] == columns
    # A figure with a standard error is printed with it.
    line = table_lines([{"model": "mf", "recall_at_10": 0.25, "recall_at_10_se": 0.0019, "auc": 0.9}])[1]
    assert "0.2500±0.0019" in line and "0.9000" in line and "0.9000±" not in line


@dataclass
class Settings:
    dim: int = 4


class Duck:
    """A user-item model as evaluate_user_model reads one: kind, predict and score_users over a fixed table."""

    name = "duck"
    kind = "explicit"
    config = Settings()

    def __init__(self, table):
        self.table = np.asarray(table, dtype=np.float64)
        self.n_users, self.n_items = self.table.shape

    def predict(self, users, items):
        return self.table[users, items]

    def score_users(self, users):
        return self.table[users]


def interactions(triples, **extra) -> Interactions:
    triples = np.array(triples, dtype=np.float64).reshape(-1, 3)
    return Interactions(n_users=3, n_items=4, user=triples[:, 0].astype(np.int64),
                        item=triples[:, 1].astype(np.int64), rating=triples[:, 2].astype(np.float32),
                        timestamp=np.zeros(len(triples), dtype=np.int64), **extra)


TABLE = [[4.0, 4.5, 3.0, 1.0], [2.0, 1.0, 2.5, 5.0], [1.0, 4.0, 3.0, 2.0]]
TRAIN, VALIDATION = [(0, 0, 5), (1, 1, 3), (2, 0, 1), (2, 2, 4)], [(0, 2, 2), (1, 3, 5), (2, 1, 4)]
TEST = [(0, 1, 4), (0, 3, 5), (1, 2, 2), (2, 1, 5)]


class Ratings:
    """A ratings DATA_DIR as the user-item protocol reads one."""

    path = Path("/data/ratings")
    fingerprint = "f" * 32
    n_users, n_items = 3, 4

    def training(self, features=True):
        return interactions(TRAIN, validation=interactions(VALIDATION))

    def interactions(self, part, features=True):
        return interactions({"train": TRAIN, "validation": VALIDATION, "test": TEST}[part])


class Products:
    """A product-pair DATA_DIR as the item-item protocol reads one (its evaluation is faked below)."""

    path = Path("/data/small")
    fingerprint = "e" * 32
    n_items = 6


EVAL_COSTS = ["eval_seconds", "eval_cpu_seconds", "eval_peak_rss_mb", "eval_load_average"]


def test_user_item_metrics_json_is_written_as_before():
    recorded = {"train_seconds": 1.5, "peak_rss_mb": 200.0, "epochs": None}
    metrics, curves = USER_ITEM.evaluate(Duck(TABLE), Ratings(), recorded=recorded)
    expected = evaluate_user_model(Duck(TABLE), Ratings().training(features=False), interactions(TEST), k=10)
    assert curves == {}
    assert list(metrics) == ["model", "kind", *expected, *recorded, *EVAL_COSTS, "data_dir", "data_fingerprint",
                             "policy", "config"]
    assert {key: metrics[key] for key in expected} == expected
    assert metrics["model"] == "duck" and metrics["kind"] == "explicit" and metrics["config"] == {"dim": 4}
    assert metrics["data_dir"] == "/data/ratings" and metrics["policy"] == RANKING_POLICY


def test_item_item_metrics_json_is_written_as_before(monkeypatch):
    import itemvec.evaluate.protocols as item_item

    result = {"auc": 0.8, "ap": 0.7}
    curves = {"roc": {"fpr": [0, 1], "tpr": [0, 1], "auc": 0.8}, "threshold": {"axis": "score percentile"}}
    monkeypatch.setattr(item_item, "evaluate_item_model", lambda model, data, **kwargs: (result, curves))
    metrics, saved = ITEM_ITEM.evaluate(Duck(TABLE), Products(), recorded={"train_seconds": 2.0})
    assert saved is curves
    assert list(metrics) == ["model", "auc", "ap", "train_seconds", *EVAL_COSTS, "threshold_axis", "data_dir",
                             "data_fingerprint", "config"]
    assert metrics["eval_peak_rss_mb"] > 0 and metrics["eval_cpu_seconds"] >= 0
    assert metrics["threshold_axis"] == "score percentile" and metrics["data_dir"] == "/data/small"


def test_the_user_item_learning_curve_scores_validation_against_train_only():
    training = Ratings().training()
    evaluate = USER_ITEM.validation_function(Duck(TABLE), training, config=None)
    train_only = interactions(TRAIN)
    assert evaluate(Duck(TABLE)) == evaluate_user_model(Duck(TABLE), train_only, training.validation,
                                                        k=10)["auc_per_user"]
    assert validation_user_auc_function(interactions(TRAIN)) is None  # no validation part, no learning curve


def test_the_learning_curve_is_evaluate_user_models_auc_over_several_batches():
    # 1,500 users (two batches of the curve's 1,024), items no user rated in train, users whose validation
    # items are all train items, ties: the curve built once must give evaluate_user_model's figure each time.
    rng = np.random.default_rng(3)
    n_users, n_items = 1500, 60

    def part(n):
        return Interactions(n_users=n_users, n_items=n_items, user=rng.integers(0, n_users, n).astype(np.int64),
                            item=rng.integers(0, n_items - 5, n).astype(np.int64),
                            rating=rng.choice([1.0, 4.0, 5.0], n).astype(np.float32), timestamp=np.zeros(n, np.int64))

    train, validation = part(9000), part(3000)
    evaluate = validation_user_auc_function(replace(train, validation=validation))
    for seed in (0, 1):
        model = Duck(np.round(np.random.default_rng(seed).random((n_users, n_items)), 1))
        model.kind = "implicit"
        assert evaluate(model) == pytest.approx(evaluate_user_model(model, train, validation, k=10)["auc_per_user"],
                                                abs=1e-12)


def test_a_run_of_another_size_is_refused():
    with pytest.raises(InputError, match=re.escape("/runs/mf was trained on 4 products but /data/small has 6")):
        ITEM_ITEM.check_size(Duck(TABLE), Products(), Path("/runs/mf"))
    ITEM_ITEM.check_size(Duck([[0.0] * 6]), Products(), Path("/runs/mf"))
    bigger = Duck([[0.0] * 4] * 5)
    with pytest.raises(InputError, match=re.escape("/runs/bpr was trained on 5 users × 4 items but "
                                                   "/data/ratings has 3 × 4")):
        USER_ITEM.check_size(bigger, Ratings(), Path("/runs/bpr"))
    USER_ITEM.check_size(Duck(TABLE), Ratings(), Path("/runs/bpr"))


def test_a_user_item_report(tmp_path):
    manifest = {"kind": "ratings", "n_users": 943, "n_items": 1682, "n_ratings": 100000, "rating_min": 1.0,
                "rating_max": 5.0, "threshold": 4.0, "parts": {"train": 90570, "validation": 0, "test": 9430}}
    assert USER_ITEM.summary_lines(manifest) == [
        "Users: 943, items: 1,682, ratings: 100,000 (scale 1.0 to 5.0; positives at 4.0 or above)",
        "Ratings per part: train 90,570, validation 0, test 9,430"]
    rows = [{"model": "global-mean", "rmse": 1.12, "auc_per_user": 0.5, "train_seconds": 0.1},
            {"model": "mf-explicit", "rmse": 0.91, "auc_per_user": 0.8, "train_seconds": 3.0}]
    md = write_report(tmp_path, rows, {}, {"manifest": manifest}, protocol=USER_ITEM)["markdown"].read_text()
    assert "| model | RMSE | RMSE [0,1] | MAE | AUC per user |" in md
    assert "**0.9100**" in md and "**1.1200**" not in md  # the lowest error is the best
    assert "Users: 943" in md and "Products" not in md
    assert "AUC per user: the probability" in md and RANKING_POLICY in md and USER_ITEM.baseline_note in md


@pytest.mark.parametrize("seed", range(6))
def test_item_ranks_match_the_median_imputed_oracle(seed):
    """The ranking kernel against the plain recipe: NaN scores replaced by the row's median finite score, then
    ``metrics.ranks_from_scores`` with the query and its known partners (not the target) left out. Scores on a
    coarse grid so that ties, NaN targets, even and odd counts of finite scores all occur."""
    import scipy.sparse as sp

    from itemvec.evaluate import metrics
    from itemvec.evaluate.protocols import _target_ranks

    rng = np.random.default_rng(seed)
    n_items, n_queries = 31 + seed, 40
    scores = rng.integers(0, 6, (n_queries, n_items)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = np.nan
    scores[0] = np.nan  # a row without a finite score: its NaNs take 0
    query = rng.integers(0, n_items, n_queries)
    target = (query + 1 + rng.integers(0, n_items - 1, n_queries)) % n_items
    dense = rng.random((n_items, n_items)) < 0.15
    dense[query, target] = True  # the target is a known partner, as in the protocol
    dense = dense | dense.T
    np.fill_diagonal(dense, False)
    known = sp.csr_matrix(dense.astype(np.int8))

    class Fixed:
        def score_all(self, q):
            assert np.array_equal(q, query)
            return scores.copy()

    got = _target_ranks(Fixed(), known, query, target)
    filled = scores.astype(np.float64)
    for row in filled:
        finite = row[~np.isnan(row)]
        row[np.isnan(row)] = np.median(finite) if len(finite) else 0.0
    exclude = [np.r_[np.setdiff1d(np.flatnonzero(dense[q]), [t]), q] for q, t in zip(query, target)]
    np.testing.assert_array_equal(got, metrics.ranks_from_scores(filled, target, exclude))
