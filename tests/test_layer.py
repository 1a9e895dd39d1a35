"""The one model layer: the trainer's settings block, early stopping, the embedding layer's scoring rules,
similar_items for every model of both kinds, and runs saved under the earlier array names."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from itemvec import registry
from itemvec.config import ConfigError, replace, setting_names, settings_for, toml_text
from itemvec.models.embedding import Embedding
from itemvec.models.itemitem.mf import MF, MFSeq
from itemvec.train import Trainer, TrainSettings

sys.path.insert(0, str(Path(__file__).parent))
from test_implicit_models import GROUP, checkerboard  # noqa: E402
from test_models import two_cliques  # noqa: E402

TINY_RATINGS = {"dim": 8, "epochs": 2, "threads": 1}


# ---------------------------------------------------------------- the settings block


def test_the_trainer_settings_are_one_block_set_flat_dotted_or_as_a_table():
    assert MF.Config().train.lr == 0.15 and MFSeq.Config().train.epochs == 1  # each model's measured defaults
    flat = replace(MF.Config(), {"epochs": "3", "dim": "8"})
    assert flat.train.epochs == 3 and flat.dim == 8 and flat.train.lr == 0.15  # the rest of the block kept
    assert replace(MF.Config(), {"train.epochs": 3}) == flat.__class__(dim=64, train=flat.train)
    assert replace(MF.Config(), {"train": {"epochs": 3}}).train == flat.train
    with pytest.raises(ConfigError, match="epochs=0 is out of range"):
        replace(MF.Config(), {"epochs": 0})
    with pytest.raises(ConfigError, match="unknown setting 'epoch'"):
        replace(MF.Config(), {"epoch": 3})
    assert {"epochs", "train.epochs", "dim"} <= setting_names(MF.Config)
    # compare's lenient selection takes the block's keys too, and config.toml holds the block as a table
    assert settings_for("mf", None, {"epochs": "2", "mf.patience": "1"}, MF.Config, strict_unprefixed=False) == \
        {"epochs": "2", "patience": "1"}
    assert "[mf.train]" in toml_text("mf", flat)


def test_every_trained_model_declares_no_trainer_setting_of_its_own():
    block = {name for name in TrainSettings.__dataclass_fields__}
    for kind in registry.KINDS:
        for name in registry.names(kind):
            fields = registry.get(name, kind).Config.__dataclass_fields__
            if "train" in fields:
                assert not block & (set(fields) - {"train"}), (kind, name)


# ---------------------------------------------------------------- early stopping


class Counter:
    """A Trainable whose state is the number of steps taken."""

    def __init__(self):
        self.w = np.zeros(1)

    def steps_per_epoch(self):
        return 1

    def begin_epoch(self, epoch, seed):
        pass

    def train_step(self, step, lr_start, lr_end, seed):
        self.w += 1
        return 0.0, 1

    def state(self):
        return {"w": self.w}

    def set_state(self, state):
        self.w[:] = state["w"]


@dataclasses.dataclass(frozen=True)
class CounterConfig:
    train: TrainSettings = TrainSettings()


class Owner:
    name = "counter"
    data_fingerprint = None

    def __init__(self, **train):
        self.config = CounterConfig(TrainSettings(epochs=20, **train))


def test_early_stopping_stops_after_patience_and_restores_the_best_state(tmp_path):
    figures = iter([0.5, 0.7, 0.9, 0.8, 0.85, 0.6, 0.95, 0.99])  # best 0.9 after 3 steps, then 3 worse
    trainable = Counter()
    history = Trainer(evaluate=lambda model: next(figures), progress=False,
                      run_dir=tmp_path).train(Owner(patience=3), trainable)
    assert [row["val_auc"] for row in history] == [0.5, 0.7, 0.9, 0.8, 0.85, 0.6]
    assert "stopped" in history[-1] and trainable.w[0] == 3  # the state of the best figure, not the last
    kept = Counter()
    Trainer(evaluate=lambda model: 0.5, progress=False).train(Owner(patience=2, restore_best=False), kept)
    assert kept.w[0] == 3  # stopped after two evaluations without improvement, last state kept


def test_a_run_that_ends_below_its_best_figure_is_restored_to_the_best_state():
    figures = iter([0.5, 0.9, 0.8, 0.7])  # the epochs run out before patience does
    trainable = Counter()
    owner = Owner(patience=5)
    owner.config = CounterConfig(TrainSettings(epochs=4, patience=5))
    history = Trainer(evaluate=lambda model: next(figures), progress=False).train(owner, trainable)
    assert len(history) == 4 and trainable.w[0] == 2 and "restored" in history[-1]["stopped"]


def test_early_stopping_is_off_by_default():
    trainable = Counter()
    history = Trainer(evaluate=lambda model: 0.5, progress=False).train(Owner(), trainable)
    assert len(history) == 20 and trainable.w[0] == 20


def test_a_resumed_run_remembers_its_best_state(tmp_path):
    figures = [0.5, 0.9, 0.8, 0.7, 0.6, 0.5]
    whole = Counter()
    Trainer(evaluate=lambda m: figures[int(whole.w[0]) - 1], progress=False).train(Owner(patience=3), whole)
    part = Counter()
    with pytest.raises(KeyboardInterrupt):
        Trainer(evaluate=lambda m: figures[int(part.w[0]) - 1], progress=False, run_dir=tmp_path,
                stop_after_epochs=3).train(Owner(patience=3), part)
    resumed = Counter()
    Trainer(evaluate=lambda m: figures[int(resumed.w[0]) - 1], progress=False,
            run_dir=tmp_path).train(Owner(patience=3), resumed)
    assert resumed.w[0] == whole.w[0] == 2


# ---------------------------------------------------------------- the embedding layer


def test_the_scoring_rules_against_their_formulas():
    rng = np.random.default_rng(0)
    q, c, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4)), rng.normal(size=6)
    a, bb = np.array([0, 1, 2, 5]), np.array([3, 4, 5, 0])
    two = Embedding("two-role", q, c, item_bias=b, global_bias=0.25)
    expected = 0.5 * ((q[a] * c[bb]).sum(1) + (q[bb] * c[a]).sum(1)) + b[a] + b[bb] + 0.25
    np.testing.assert_allclose(two.score_pairs(a, bb), expected)
    np.testing.assert_allclose(two.score_all(a)[np.arange(4), bb], expected)
    unit = q / np.linalg.norm(q, axis=1, keepdims=True)
    cosine = Embedding("cosine", q)
    np.testing.assert_allclose(cosine.score_pairs(a, bb), (unit[a] * unit[bb]).sum(1))
    np.testing.assert_allclose(Embedding("dot", q).score_all(a), q[a] @ q.T)
    users = Embedding("dot", q, item_bias=b, user_vectors=c, user_bias=b[::-1].copy(), global_bias=1.0)
    np.testing.assert_allclose(users.predict(a, bb), (c[a] * q[bb]).sum(1) + b[bb] + b[::-1][a] + 1.0)
    np.testing.assert_allclose(users.score_users(a)[np.arange(4), bb], users.predict(a, bb), rtol=1e-6)
    with pytest.raises(ValueError):
        Embedding("two-role", q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_queries", [0, 1, 2, 70])
def test_the_two_role_scores_of_every_item_are_summed_by_blas_as_the_formula_says(dtype, n_queries):
    rng = np.random.default_rng(n_queries)
    q, c, b = (rng.normal(size=(300, 16)).astype(dtype), rng.normal(size=(300, 16)).astype(dtype),
               rng.normal(size=300).astype(dtype))
    queries = rng.integers(0, 300, n_queries)
    expected = (0.5 * (q[queries].astype(np.float64) @ c.T.astype(np.float64) + c[queries] @ q.T.astype(np.float64))
                + b[queries][:, None] + b[None, :] + 0.5)
    view_expected = (0.5 * (q[queries, :12].astype(np.float64) @ c[:, :12].T.astype(np.float64)
                            + c[queries, :12] @ q[:, :12].T.astype(np.float64)) + b[queries][:, None] + b[None, :] + 0.5)
    # C-ordered tables (BLAS adds into its output from two queries on), and views (the formula's path)
    for table, context, wanted in ((q, c, expected), (q[:, :12], c[:, :12], view_expected)):
        scores = Embedding("two-role", table, context, item_bias=b, global_bias=0.5).score_all(queries)
        assert scores.shape == (n_queries, 300) and scores.dtype == dtype and scores.flags.c_contiguous
        np.testing.assert_allclose(scores, wanted, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_the_two_role_scores_of_many_queries_take_no_second_array_of_their_size():
    import tracemalloc

    rng = np.random.default_rng(0)
    q, c = rng.normal(size=(20000, 16)).astype(np.float32), rng.normal(size=(20000, 16)).astype(np.float32)
    queries = rng.integers(0, 20000, 70)
    embedding = Embedding("two-role", q, c, item_bias=rng.normal(size=20000).astype(np.float32))
    tracemalloc.start()
    try:
        scores = embedding.score_all(queries)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1.25 * scores.nbytes  # the formula's sum and half were three more (queries, n_items) arrays


@pytest.mark.parametrize("name", ["mf", "mf-bias", "skipgram", "w2v-gensim"])
def test_an_item_item_embedding_model_scores_by_its_embedding(name):
    data, _ = two_cliques()
    model = registry.get(name)(dim=8, threads=1).fit(data, progress=False)
    a, b = np.array([0, 1, 2]), np.array([5, 25, 3])
    np.testing.assert_allclose(model.score_pairs(a, b), model.embedding().score_pairs(a, b), rtol=1e-6)
    assert model.item_vectors_.shape == (data.n_items, 8)


@pytest.mark.parametrize("name", registry.names("ratings"))
def test_every_user_item_model_answers_similar_items(name):
    data, _ = checkerboard(features=name == "fm")
    cls = registry.get(name, "ratings")
    settings = {key: value for key, value in TINY_RATINGS.items() if key in setting_names(cls.Config)}
    model = cls(**settings).fit(data, progress=False)
    ids, scores = model.similar_items([0, 1, data.n_items - 1, -1], k=5)
    assert ids.shape == scores.shape == (4, 5)
    assert 0 not in ids[0] and 1 not in ids[1]  # never the query itself
    assert (ids[3] == -1).all() and np.isnan(scores[3]).all()  # an unknown id: padding only
    unscorable = ~model._scorable_items()
    assert not np.isin(ids[:3][ids[:3] >= 0], np.flatnonzero(unscorable)).any()
    finite = scores[0][np.isfinite(scores[0])]
    assert (np.diff(finite) <= 1e-6).all()  # best first


def test_user_item_embedding_models_rank_their_own_group_first():
    data, _ = checkerboard()
    model = registry.get("bpr", "ratings")(dim=8, epochs=20, threads=1).fit(data, progress=False)
    ids, _ = model.similar_items([0], k=3)
    assert all(i < GROUP for i in ids[0]), ids  # item 0's group: items 0..GROUP-1


def test_a_run_saved_under_the_earlier_array_names_loads(tmp_path):
    data, _ = two_cliques()
    model = MF(dim=8, epochs=2, threads=1).fit(data, progress=False)
    run = model.save(tmp_path / "run")
    with np.load(run / "weights.npz") as npz:
        state = dict(npz)
    old = {"item_vectors_": "query_", "context_vectors_": "candidate_", "item_bias_": "bias_"}
    np.savez(run / "weights.npz", **{old.get(k, k): v for k, v in state.items()})
    meta = (run / "model.json").read_text()
    for new, earlier in old.items():
        meta = meta.replace(f'"{new}"', f'"{earlier}"')
    (run / "model.json").write_text(meta)
    loaded = MF.load(run)
    np.testing.assert_array_equal(loaded.score_all([0, 1]), model.score_all([0, 1]))
