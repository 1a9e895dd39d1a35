"""Item-item models: planted structure, the registry contract, the schedule, resume, the unseen-item policy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from itemvec import registry
from itemvec.config import parse_sets, replace
from itemvec.data.types import EvalPairs, Pairs
from itemvec.errors import ConfigError
from itemvec.evaluate import metrics
from itemvec.evaluate.protocols import impute_unscorable, validation_auc_function
from itemvec.models.base import TrainingData, load_model
from itemvec.models.itemitem.mf import MF, alias_table
from itemvec.train import learning_rate

FAST = {"mf": {"epochs": 3, "dim": 8, "batch_size": 256, "threads": 1},
        "mf-bias": {"epochs": 3, "dim": 8, "batch_size": 256, "threads": 1},
        "skipgram": {"dim": 16, "threads": 1}, "eges": {"dim": 16, "threads": 1},
        "node2vec": {"dim": 16, "threads": 1}, "mf-seq": {"dim": 8, "threads": 1},
        "w2v-gensim": {"dim": 16, "threads": 1},
        "bpr": {"dim": 8, "epochs": 20, "batch_size": 256, "threads": 1},
        "als": {"dim": 8, "epochs": 5, "threads": 1}}


def two_cliques(size=20, holdout_every=4):
    """Two disjoint cliques of `size` items; every `holdout_every`-th within-clique pair is held out."""
    train, held = [], []
    for base in (0, size):
        k = 0
        for i in range(size):
            for j in range(i + 1, size):
                (held if k % holdout_every == 0 else train).append((base + i, base + j))
                k += 1
    train = np.array(train)
    pairs = Pairs(train[:, 0].astype(np.int32), train[:, 1].astype(np.int32), np.ones(len(train), np.float32),
                  np.ones(len(train), np.uint16), ["also_bought"])
    return TrainingData(n_items=2 * size + 2, train=pairs), np.array(held)  # 2 extra items never seen


def model_for(name, **extra):
    return registry.get(name)(**{**FAST.get(name, {}), **extra})


@pytest.mark.parametrize("name", ["bpr", "als", "rp3beta", "itemknn"])
def test_pair_models_separate_planted_cliques(name):
    data, held = two_cliques()
    model = model_for(name).fit(data, progress=False)
    within = model.score_pairs(held[:, 0], held[:, 1])
    rng = np.random.default_rng(0)
    cross = model.score_pairs(rng.integers(0, 20, 200), rng.integers(20, 40, 200))
    labels = np.r_[np.ones(len(within)), np.zeros(len(cross))]
    assert metrics.roc_auc(labels, np.r_[within, cross]) > 0.97


@pytest.mark.parametrize("name", ["mf", "mf-bias"])
@pytest.mark.parametrize("roles", [1, 2])
def test_mf_separates_planted_cliques(name, roles):
    data, held = two_cliques()
    model = model_for(name, roles=roles, epochs=20, negatives=3).fit(data, progress=False)
    within = model.score_pairs(held[:, 0], held[:, 1])
    rng = np.random.default_rng(0)
    cross = model.score_pairs(rng.integers(0, 20, 200), rng.integers(20, 40, 200))
    labels = np.r_[np.ones(len(within)), np.zeros(len(cross))]
    assert metrics.roc_auc(labels, np.r_[within, cross]) > 0.97


def test_every_item_model_has_contract_settings():
    assert set(FAST) | {"popularity", "adamic-adar", "itemknn", "rp3beta"} == set(registry.names("pairs"))


@pytest.mark.parametrize("name", registry.names("pairs"))  # every registered item-item model, not a list of ours
def test_registry_contract(name, tmp_path):
    data, held = two_cliques()
    model = model_for(name).fit(data, progress=False)
    a, b = held[:, 0], held[:, 1]
    scores = model.score_pairs(a, b)
    assert scores.shape == (len(a),) and np.isfinite(scores).all()
    # Save, load: same scores; no pickle in the weights.
    model.save(tmp_path / "run")
    with np.load(tmp_path / "run" / "weights.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    loaded = load_model(tmp_path / "run")
    np.testing.assert_allclose(loaded.score_pairs(a, b), scores, rtol=1e-6)
    # Same seed, same scores.
    again = model_for(name).fit(data, progress=False)
    np.testing.assert_allclose(again.score_pairs(a, b), scores, rtol=1e-6)
    # Unknown or unseen ids get NaN: the protocol decides, never a random vector.
    unseen = model.score_pairs(np.array([0, 40, -1, 10_000]), np.array([41, 1, 0, 1]))
    assert np.isnan(unseen).all()
    # score_all agrees with score_pairs; similar_items excludes the query and unseen items.
    all_scores = model.score_all(np.array([0, 21]))
    np.testing.assert_allclose(all_scores[0, 1:20], model.score_pairs(np.zeros(19, int), np.arange(1, 20)),
                               rtol=1e-4, atol=1e-5)
    assert np.isnan(all_scores[:, 40:]).all()
    top, top_scores = model.similar_items(np.array([0, 21]), k=5)
    assert top.shape == (2, 5) and 0 not in top[0] and 21 not in top[1]
    assert not np.isin(top, [40, 41]).any()
    assert (np.diff(top_scores, axis=1) <= 1e-9).all()
    if name != "popularity":  # popularity is the same ranking for every query
        assert (top[0] < 20).all() and (top[1] >= 20).all()


def test_cosine_restarts_schedule_golden():
    lr = 0.01
    assert learning_rate("cosine-restarts", lr, 0, 10, 3) == pytest.approx(lr)
    assert learning_rate("cosine-restarts", lr, 5, 10, 3) == pytest.approx(0.5 * (lr + lr * 1e-3))
    assert learning_rate("cosine-restarts", lr, 10, 10, 3) == pytest.approx(lr)  # restarts each epoch
    assert learning_rate("cosine-restarts", lr, 9.999999, 10, 3) == pytest.approx(lr * 1e-3, rel=1e-3)
    assert learning_rate("cosine", lr, 15, 10, 3) == pytest.approx(lr * 1e-3 + 0.5 * (lr - lr * 1e-3) * 1.0)
    assert learning_rate("cosine", lr, 30, 10, 3) == pytest.approx(lr * 1e-3)
    assert learning_rate("constant", lr, 17, 10, 3) == lr
    quarter = lr * 1e-3 + 0.5 * (lr - lr * 1e-3) * (1 + math.cos(math.pi / 4))
    assert learning_rate("cosine-restarts", lr, 12.5, 10, 3) == pytest.approx(quarter)
    assert learning_rate("linear", lr, 15, 10, 3) == pytest.approx(lr - (lr - lr * 1e-3) * 0.5)
    with pytest.raises(ValueError):
        learning_rate("exponential", lr, 0, 10, 3)


def test_resume_after_interruption_gives_the_same_model(tmp_path):
    data, held = two_cliques()
    settings = {"epochs": 4, "batch_size": 100}
    whole = model_for("mf", **settings).fit(data, progress=False)
    with pytest.raises(KeyboardInterrupt):
        model_for("mf", **settings).fit(data, progress=False, run_dir=tmp_path, stop_after_epochs=2)
    assert (tmp_path / "checkpoint.npz").exists()
    resumed = model_for("mf", **settings).fit(data, progress=False, run_dir=tmp_path)
    np.testing.assert_array_equal(resumed.item_vectors_, whole.item_vectors_)
    np.testing.assert_array_equal(resumed.context_vectors_, whole.context_vectors_)


def test_learning_curve_is_recorded(tmp_path):
    data, held = two_cliques()
    rng = np.random.default_rng(1)
    neg_a, neg_b = rng.integers(0, 20, len(held)), rng.integers(20, 40, len(held))
    data.validation = EvalPairs(np.r_[held[:, 0], neg_a], np.r_[held[:, 1], neg_b],
                                np.r_[np.ones(len(held)), np.zeros(len(held))].astype(np.int8))
    model = model_for("mf", epochs=6, eval_every=2)
    model.fit(data, progress=False, run_dir=tmp_path, evaluate=validation_auc_function(model, data.validation))
    history = model.history_
    steps_per_epoch = math.ceil(len(data.train) / 256)
    assert len(history) == (6 * steps_per_epoch) // 2
    assert history[-1]["val_auc"] > 0.9 and history[-1]["val_auc"] >= history[0]["val_auc"]
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == len(history)


def test_continuous_labels_and_settings():
    data, held = two_cliques()
    model = model_for("mf", labels="continuous", epochs=20).fit(data, progress=False)
    assert np.isfinite(model.score_pairs(held[:, 0], held[:, 1])).all()
    with pytest.raises(ConfigError):
        MF(labels="ordinal")
    with pytest.raises(ConfigError, match="unknown setting"):
        replace(MF.Config(), {"dimension": "3"})
    assert replace(MF.Config(), parse_sets(["dim=16", "lr=0.5"])).dim == 16
    with pytest.raises(ConfigError, match="expected int"):
        replace(MF.Config(), {"dim": "sixteen"})


def test_alias_table_draws_the_right_distribution():
    weights = np.array([0.0, 1.0, 2.0, 7.0])
    prob, alias = alias_table(weights)
    # The exact distribution implied by the table: item i gets prob[i]/n plus (1-prob[j])/n for j aliased to i.
    implied = prob / len(weights)
    np.add.at(implied, alias, (1 - prob) / len(weights))
    np.testing.assert_allclose(implied, weights / weights.sum(), atol=1e-12)


def test_unseen_policy_uses_the_median_of_scorable_pairs():
    scores = np.array([0.1, np.nan, 0.9, 0.5, np.nan])
    filled, n = impute_unscorable(scores)
    assert n == 2 and filled[1] == filled[4] == 0.5
    all_nan, n = impute_unscorable(np.array([np.nan, np.nan]))
    assert n == 2 and (all_nan == 0).all()


def test_itemknn_is_the_shrunk_cosine_neighbourhood_score_of_a_dense_oracle():
    """score(a, b) = ½((A S)_ab + (A S)_ba), S the cosine of adjacency rows shrunk and kept to the k largest
    per row, computed densely here; the model computes it in sparse chunks (a chunk smaller than the graph)."""
    import itertools

    data, _ = two_cliques()
    model = registry.get("itemknn")(neighbours=5, shrink=2.0, chunk=7).fit(data, progress=False)
    n = data.n_items
    adjacency = np.zeros((n, n))
    adjacency[data.train.item_a, data.train.item_b] = adjacency[data.train.item_b, data.train.item_a] = 1
    degree = adjacency.sum(axis=1)
    similarity = adjacency @ adjacency.T / (np.sqrt(np.outer(degree, degree)) + 2.0)
    np.fill_diagonal(similarity, 0.0)
    for row in similarity:
        row[np.argsort(-row, kind="stable")[5:]] = 0.0
    expected = adjacency @ similarity
    expected = 0.5 * (expected + expected.T)
    known = degree > 0
    a, b = np.array([(x, y) for x, y in itertools.product(range(n), range(n)) if known[x] and known[y]]).T
    np.testing.assert_allclose(model.score_pairs(a, b), expected[a, b], atol=1e-5)
    queries = np.flatnonzero(known)[:6]
    np.testing.assert_allclose(model.score_all(queries)[:, known], expected[queries][:, known], atol=1e-5)
    assert (np.diff(model.similarity_.indptr) <= 5).all()  # at most `neighbours` similarities per item


def test_rp3beta_is_the_penalised_three_step_walk_of_a_dense_oracle():
    """W = P(i→u)^α P(u→j)^α / deg(j)^β, diagonal dropped, k largest per row; score ½((A W)_ab + (A W)_ba) with A
    the 0/1 train graph, all computed densely here (the model in sparse chunks smaller than the graph)."""
    import itertools

    data, _ = two_cliques(size=8, holdout_every=3)
    alpha, beta, k = 0.8, 0.6, 4
    model = registry.get("rp3beta")(alpha=alpha, beta=beta, neighbours=k, chunk=5).fit(data, progress=False)
    n = data.n_items
    adjacency = np.zeros((n, n))
    adjacency[data.train.item_a, data.train.item_b] = adjacency[data.train.item_b, data.train.item_a] = 1
    degree = adjacency.sum(axis=1)
    step = np.divide(adjacency, degree[:, None], out=np.zeros_like(adjacency), where=degree[:, None] > 0) ** alpha
    walk = step @ step * np.where(degree > 0, np.maximum(degree, 1) ** -beta, 0.0)[None, :]
    np.fill_diagonal(walk, 0.0)
    for row in walk:
        row[np.argsort(-row, kind="stable")[k:]] = 0.0
    expected = adjacency @ walk
    expected = 0.5 * (expected + expected.T)
    known = degree > 0
    a, b = np.array([(x, y) for x, y in itertools.product(range(n), range(n)) if known[x] and known[y]]).T
    np.testing.assert_allclose(model.score_pairs(a, b), expected[a, b], rtol=1e-5, atol=1e-7)
    queries = np.flatnonzero(known)[:6]
    np.testing.assert_allclose(model.score_all(queries)[:, known], expected[queries][:, known], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("scaled", [False, True])
def test_als_half_step_with_enough_cg_steps_is_the_exact_weighted_least_squares_solve(scaled):
    """One half-iteration, given as many conjugate-gradient steps as dimensions, solves every row's normal
    equations (YᵀY + Yᵀ(C_u − I)Y + λI) x_u = Yᵀ C_u p_u exactly (a dense numpy solve here), and returns
    the objective Σ c (p − x·y)² + λ|x|² over every cell, computed densely here. ``scaled``: λ_u = reg × the
    row's entries (weighted-λ)."""
    import scipy.sparse as sp

    from itemvec.models.factor import als_half_step

    rng = np.random.default_rng(3)
    n_rows, n_cols, dim, reg, alpha = 7, 11, 4, 0.3, 5.0
    dense = (rng.random((n_rows, n_cols)) < 0.35) * rng.integers(1, 4, (n_rows, n_cols))
    dense[2] = 0  # a row without entries: its solution is 0
    matrix = sp.csr_matrix(dense.astype(np.float64))
    matrix.sort_indices()
    y = rng.standard_normal((n_cols, dim)).astype(np.float32)
    x = rng.standard_normal((n_rows, dim)).astype(np.float32)
    confidence = 1.0 + alpha * matrix.data
    y64 = y.astype(np.float64)
    loss = als_half_step(x, y, y64.T @ y64, matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64),
                         confidence, reg, dim, scaled)
    c = 1.0 + alpha * dense
    p = (dense > 0).astype(np.float64)
    for u in range(n_rows):
        if not dense[u].any():
            np.testing.assert_array_equal(x[u], 0.0)
            continue
        lam = reg * np.count_nonzero(dense[u]) if scaled else reg
        a = y64.T @ (c[u][:, None] * y64) + lam * np.eye(dim)
        np.testing.assert_allclose(x[u], np.linalg.solve(a, y64.T @ (c[u] * p[u])), rtol=1e-4, atol=1e-5)
    x64 = x.astype(np.float64)
    rows = dense.any(axis=1)
    lam = reg * np.count_nonzero(dense, axis=1) if scaled else np.full(n_rows, reg)
    expected = (c * (p - x64 @ y64.T) ** 2)[rows].sum() + (lam[rows] * (x64[rows] ** 2).sum(axis=1)).sum()
    assert loss == pytest.approx(expected, rel=1e-5)


def test_als_loss_falls_and_pair_bpr_uses_both_orientations():
    data, _ = two_cliques()
    als = model_for("als", epochs=6).fit(data, progress=False)
    losses = [row["loss"] for row in als.history_]
    assert all(later <= earlier * (1 + 1e-6) for earlier, later in zip(losses, losses[1:])), losses
    bpr = model_for("bpr").fit(data, progress=False)
    # Every seen item was trained on both tables: a row of each side plays the query and the candidate.
    seen = np.flatnonzero(data.degree() > 0)
    assert (np.abs(bpr.item_vectors_[seen]).sum(axis=1) > 0).all()
    assert (np.abs(bpr.context_vectors_[seen] - model_for("bpr", epochs=1).fit(data, progress=False)
                   .context_vectors_[seen]).sum(axis=1) > 0).all()
