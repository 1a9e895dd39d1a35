"""Sequence models: skip-gram, node2vec, EGES, gensim word2vec and MF on walk windows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from itemvec import registry
from itemvec.data.store import DataDir, write_negatives, write_pairs
from itemvec.data.types import Pairs
from itemvec.evaluate import metrics
from itemvec.models.base import TrainingData
from itemvec.models.itemitem.mf import window_pairs
from itemvec.models.itemitem.skipgram import EGES, SkipGram
from itemvec.models.itemitem.w2v import _format_sequences

SEQUENCE_MODELS = ["skipgram", "node2vec", "eges", "w2v-gensim", "mf-seq"]
SMALL = {"dim": 16, "walks_per_node": 10, "walk_length": 10, "threads": 1, "epochs": 2, "subsample": 0.0, "lr": 0.05}


def communities(n_groups=2, size=15, seed=0):
    """Dense random communities joined by a single bridge edge; returns TrainingData and a held-out split."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for g in range(n_groups):
        for i in range(size):
            for j in range(i + 1, size):
                if rng.random() < 0.6:
                    a.append(g * size + i)
                    b.append(g * size + j)
    a.append(0)
    b.append(size)  # one bridge
    pairs = Pairs(np.array(a, np.int32), np.array(b, np.int32), np.ones(len(a), np.float32),
                  np.ones(len(a), np.uint16), ["also_bought"])
    return TrainingData(n_items=n_groups * size + 1, train=pairs)  # the last item is never seen


def separation(model, size=15):
    rng = np.random.default_rng(1)
    i, j = rng.integers(0, size, 300), rng.integers(0, size, 300)
    keep = i != j
    within = model.score_pairs(i[keep], j[keep])
    cross = model.score_pairs(rng.integers(0, size, 300), rng.integers(size, 2 * size, 300))
    labels = np.r_[np.ones(len(within)), np.zeros(len(cross))]
    return metrics.roc_auc(labels, np.r_[within, cross])


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_models_separate_planted_communities(name, tmp_path):
    data = communities()
    settings = {**SMALL, "epochs": 5 if name != "w2v-gensim" else 10}
    if name == "mf-seq":
        settings = {"dim": 16, "walks_per_node": 10, "walk_length": 10, "threads": 1, "epochs": 5}
    model = registry.get(name)(**settings).fit(data, progress=False)
    assert separation(model) > 0.9
    assert np.isnan(model.score_pairs([0], [30])).all()  # never seen, no side information
    # Save, load, same scores; refit with the same seed, same scores.
    model.save(tmp_path / name)
    loaded = registry.get(name).load(tmp_path / name)
    a, b = np.arange(0, 14), np.arange(1, 15)
    np.testing.assert_allclose(loaded.score_pairs(a, b), model.score_pairs(a, b), rtol=1e-5, atol=1e-6)
    again = registry.get(name)(**settings).fit(data, progress=False)
    np.testing.assert_allclose(again.score_pairs(a, b), model.score_pairs(a, b), rtol=1e-5, atol=1e-6)


def test_window_pairs_and_corpus_format():
    tokens = np.array([1, 2, 3, -1, 4, 5], dtype=np.int64)
    offsets = np.array([0, 3, 6], dtype=np.int64)
    left, right = window_pairs(tokens, offsets, np.array([0, 1]), 1)
    got = sorted(zip(left.tolist(), right.tolist()))
    assert got == sorted([(1, 2), (2, 1), (2, 3), (3, 2), (4, 5), (5, 4)])
    left, right = window_pairs(tokens, offsets, np.array([0]), 5)
    assert sorted(zip(left.tolist(), right.tolist())) == sorted([(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1)])
    text = _format_sequences(np.array([10, 0, 7, -1, 123], np.int32), np.array([0, 2, 5], np.int64)).tobytes()
    assert text == b"10 0\n7 123\n"


def eges_data(tmp_path, size=15):
    """Two communities whose products carry a brand per community; item 30 is unseen but has a brand."""
    data = communities(size=size)
    n = data.n_items
    brands = ["A"] * size + ["B"] * size + ["A"]
    table = pa.table({"id": pa.array(np.arange(n, dtype=np.int32)), "asin": [f"P{i}" for i in range(n)],
                      "has_metadata": [True] * n, "brand": brands,
                      "categories": pa.array([[["Root", "Y" if size <= i < 2 * size else "X"]] for i in range(n)]),
                      "price": pa.array([float(i % 7) + 1 for i in range(n)])})
    root = tmp_path / "data"
    (root / "split").mkdir(parents=True)
    pq.write_table(table, root / "products.parquet")
    pq.write_table(table.select(["id", "asin"]), root / "id_map.parquet")
    for name in ("pairs", "split/train", "split/validation", "split/test"):
        write_pairs(root / f"{name}.parquet", data.train)
    for name in ("validation_negatives", "validation_negatives_degree", "test_negatives", "test_negatives_degree"):
        write_negatives(root / "split" / f"{name}.parquet", np.zeros(0, np.int32), np.zeros(0, np.int32))
    (root / "manifest.json").write_text(f'{{"n_items": {n}, "relation_bits": {{"also_bought": 1}}}}')
    return DataDir(root).training()


def test_eges_weights_are_a_softmax_and_cold_start_uses_side_information(tmp_path):
    data = eges_data(tmp_path)
    model = EGES(**SMALL).fit(data, progress=False)
    assert model.field_rows_.shape == (31, 4)  # item, brand, category, price
    weights = model.field_weights(np.arange(31))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    assert (weights >= 0).all() and not np.allclose(weights[:30], 0.25)  # learned, not uniform
    # The unseen item 30 (brand A, category X) has a vector from side information only ...
    assert model.known_items_[30] and not model.trained_items_[30]
    vectors = model.item_vectors()
    brand, category, price = model.field_rows_[30, 1:]
    expected = (model.field_vectors_[brand] + model.field_vectors_[category] + model.field_vectors_[price]) / 3
    np.testing.assert_allclose(vectors[30], expected, rtol=1e-5, atol=1e-6)
    # ... which places it with its brand's community: its cold-start scores favour community A.
    to_a = model.score_pairs(np.full(15, 30), np.arange(15)).mean()
    to_b = model.score_pairs(np.full(15, 30), np.arange(15, 30)).mean()
    assert to_a > to_b
    plain = SkipGram(**SMALL).fit(data, progress=False)
    assert np.isnan(plain.score_pairs([30], [0]))[0]


@pytest.mark.parametrize("chunk", [1, 7])
def test_item_vectors_composed_a_few_rows_at_a_time_are_the_whole_table_at_once(tmp_path, monkeypatch, chunk):
    from itemvec.models.itemitem import skipgram

    data = eges_data(tmp_path)
    for model in (EGES(**SMALL).fit(data, progress=False), SkipGram(**SMALL).fit(data, progress=False)):
        whole = model._compute_vectors()
        assert (np.abs(whole).sum(axis=1) > 0).all()  # every item's vector written (the cold item from its fields)
        monkeypatch.setattr(skipgram, "VECTOR_ROWS", chunk)
        assert np.array_equal(model._compute_vectors(), whole)
        monkeypatch.undo()
        if model.field_rows_.shape[1] == 1:  # one field: each item's own vector, exactly
            np.testing.assert_array_equal(whole, model.field_vectors_[model.field_rows_[:, 0]])


def _one_window_update(emb_in, emb_out, seq, negative, lr):
    """The shared-negatives update by hand, window 1, no subsampling, one negative item: at each position i
    in turn, the neighbours are the inputs, seq[i] (label 1) and ``negative`` (label 0) the outputs; every
    input meets every output with the tables as they were at the window's start; the sums are applied at its
    end, the outputs first."""
    emb_in, emb_out = emb_in.astype(np.float64), emb_out.astype(np.float64)
    for i in range(len(seq)):
        inputs = [seq[j] for j in (i - 1, i + 1) if 0 <= j < len(seq)]
        outputs = [(seq[i], 1.0)] + ([(negative, 0.0)] if negative != seq[i] else [])
        neu = np.zeros((len(inputs), emb_in.shape[1]))
        for out, label in outputs:
            grad = np.zeros(emb_in.shape[1])
            for a, row in enumerate(inputs):
                g = (label - 1.0 / (1.0 + np.exp(-emb_in[row] @ emb_out[out]))) * lr
                neu[a] += g * emb_out[out]
                grad += g * emb_in[row]
            emb_out[out] += grad
        for a, row in enumerate(inputs):
            emb_in[row] += neu[a]
    return emb_in, emb_out


def test_the_shared_negatives_kernel_is_the_window_update_by_hand():
    from itemvec.models.itemitem.skipgram import _sgns_window_step
    from itemvec.rng import alias_table

    rng = np.random.default_rng(0)
    emb_in = rng.standard_normal((5, 4)).astype(np.float32) * 0.5
    emb_out = rng.standard_normal((5, 4)).astype(np.float32) * 0.5
    seq = [0, 1, 2, 1]
    prob, alias = alias_table(np.array([0.0, 0.0, 0.0, 1.0, 0.0]))  # every negative is item 3
    want_in, want_out = _one_window_update(emb_in, emb_out, seq, 3, 0.1)
    loss, pairs = _sgns_window_step(emb_in, emb_out, np.array(seq, np.int32), np.array([0, 4], np.int64),
                                    np.array([0], np.int64), np.ones(5), prob, alias, 1, 1, 0.1, 0.1, 7, 1)
    assert pairs == 6  # 1 + 2 + 2 + 1 neighbours
    np.testing.assert_allclose(emb_in, want_in, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb_out, want_out, rtol=1e-5, atol=1e-6)
    assert np.isfinite(loss) and loss > 0


@pytest.mark.parametrize("shared", [True, False])
def test_both_kernels_separate_communities(shared):
    data = communities()
    model = SkipGram(**{**SMALL, "epochs": 5}, shared_negatives=shared).fit(data, progress=False)
    assert separation(model) > 0.9


def test_both_kernels_train_the_same_pairs():
    from itemvec.models.itemitem.skipgram import _sgns_step, _sgns_window_step
    from itemvec.rng import alias_table

    # Window 1 without subsampling: each sequence of length L gives 2 (L - 1) pairs, whichever kernel.
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 12, 50)
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    tokens = rng.integers(0, 20, offsets[-1]).astype(np.int32)
    order = np.arange(50, dtype=np.int64)
    prob, alias = alias_table(np.ones(20))
    tables = lambda: (np.full((20, 4), 0.01, np.float32), np.zeros((20, 4), np.float32))  # noqa: E731
    _, shared = _sgns_window_step(*tables(), tokens, offsets, order, np.ones(20), prob, alias, 1, 3, 0.05, 0.05,
                                  1, 1)
    _, per_pair = _sgns_step(*tables(), np.arange(20, dtype=np.int64)[:, None], np.zeros((20, 1), np.float32),
                             tokens, offsets, order, np.ones(20), prob, alias, 1, 3, 0.05, 0.05, False, 1, 1)
    assert shared == per_pair == int((2 * (lengths - 1)).sum())
