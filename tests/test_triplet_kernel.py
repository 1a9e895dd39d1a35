"""The triplet models' numba pieces: ``triplet_step``'s update against torch's autograd of the same hinge
(the gradient of a cosine by hand), the sampler's rule (never a positive), ``one_layer_scores`` against the
torch network it fuses, resume, a torch triplet's saved run, and that fitting ``triplet`` loads no torch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from itemvec.models.useritem.triplet import DeepTriplet, Triplet
from itemvec.models.useritem.triplet_kernel import one_layer_scores, triplet_step

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from test_implicit_models import FAST, checkerboard  # noqa: E402

EMPTY_PROB, EMPTY_ALIAS = np.zeros(0), np.zeros(0, dtype=np.int32)


def _step(user_f, item_f, users, items, indptr, indices, candidates, *, lr=0.1, l2=0.0, negatives=1,
          hardest=True, margin=0.5, adagrad=0.0, seed=3):
    acc_u, acc_i = np.zeros_like(user_f), np.zeros_like(item_f)
    return triplet_step(user_f, item_f, acc_u, acc_i, np.asarray(users, np.int64), np.asarray(items, np.int64),
                        indptr, indices, candidates, EMPTY_PROB, EMPTY_ALIAS, lr, lr, l2, negatives, hardest,
                        margin, adagrad, seed, 1)


@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_one_sgd_step_is_torchs_gradient_of_the_hinge(l2):
    rng = np.random.default_rng(0)
    user_f = rng.standard_normal((1, 6)).astype(np.float32)
    item_f = rng.standard_normal((3, 6)).astype(np.float32)
    untouched = item_f[2].copy()
    # User 0's one positive is item 0; the candidates are items 0 and 1, so the negative must be item 1.
    indptr, indices = np.array([0, 1], np.int64), np.array([0], np.int64)
    candidates = np.array([0, 1], np.int64)
    p = torch.tensor(user_f[0], dtype=torch.float64, requires_grad=True)
    q = torch.tensor(item_f, dtype=torch.float64, requires_grad=True)
    cos = torch.nn.functional.cosine_similarity
    margin = 2.5  # above any 1 − cos + cos: the hinge is active
    loss = margin - cos(p, q[0], dim=0) + cos(p, q[1], dim=0)
    loss = loss + l2 * ((p ** 2).sum() + (q[0] ** 2).sum() + (q[1] ** 2).sum())
    loss.backward()
    lr = 0.1
    got_loss, count = _step(user_f, item_f, [0], [0], indptr, indices, candidates, lr=lr, l2=l2, margin=margin)
    assert count == 1
    hinge = margin - float(cos(p, q[0], dim=0).detach()) + float(cos(p, q[1], dim=0).detach())
    assert got_loss == pytest.approx(hinge, rel=1e-5)
    np.testing.assert_allclose(user_f[0], (p - lr * p.grad).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(item_f[:2], (q - lr * q.grad).detach().numpy()[:2], rtol=1e-5, atol=1e-6)
    assert np.array_equal(item_f[2], untouched)


def test_a_met_margin_changes_nothing():
    user_f = np.array([[1.0, 0.0]], np.float32)
    item_f = np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32)  # cos 1 for the positive, −1 for the negative
    before = (user_f.copy(), item_f.copy())
    loss, _ = _step(user_f, item_f, [0], [0], np.array([0, 1], np.int64), np.array([0], np.int64),
                    np.array([0, 1], np.int64), margin=0.5)
    assert loss == 0.0
    assert np.array_equal(user_f, before[0]) and np.array_equal(item_f, before[1])


def test_negatives_are_never_the_users_positives():
    # Every item but 7 is a positive of user 0: each of the 40 negatives is 7, so only rows 0 and 7 move.
    rng = np.random.default_rng(1)
    user_f = rng.standard_normal((1, 4)).astype(np.float32)
    item_f = rng.standard_normal((8, 4)).astype(np.float32)
    before = item_f.copy()
    indices = np.array([0, 1, 2, 3, 4, 5, 6], np.int64)
    _step(user_f, item_f, [0], [0], np.array([0, 7], np.int64), indices, np.arange(8, dtype=np.int64),
          negatives=40, hardest=False, margin=5.0)
    moved = np.flatnonzero((item_f != before).any(axis=1))
    assert moved.tolist() == [0, 7]


def test_deep_triplets_fused_scores_are_its_torch_networks():
    data, _ = checkerboard()
    model = DeepTriplet(**FAST["deep-triplet"]).fit(data, progress=False)
    users = np.arange(data.n_users)
    fused = model.score_users(users)
    u, i = np.meshgrid(users, np.arange(data.n_items), indexing="ij")
    known = model.known_items_[i.ravel()]
    np.testing.assert_allclose(model.predict(u.ravel(), i.ravel())[known], fused.ravel()[known], rtol=1e-4,
                               atol=1e-4)
    a = np.array([[0.5, -1.0]], np.float32)
    b = np.array([[1.0, 2.0], [-1.0, 0.5]], np.float32)
    out = np.empty((1, 2), np.float32)
    one_layer_scores(a, b, np.array([2.0, 3.0], np.float32), np.float32(0.25), out)
    np.testing.assert_allclose(out, [[2 * 1.5 + 3 * 1.0 + 0.25, 0 + 0 + 0.25]])


@pytest.mark.parametrize("n_users", [1, 4, 11])
def test_one_layer_scores_is_the_formula_for_blocks_of_four_and_the_rest(n_users):
    rng = np.random.default_rng(n_users)
    a, b = rng.standard_normal((n_users, 7)).astype(np.float32), rng.standard_normal((13, 7)).astype(np.float32)
    weight = rng.standard_normal(7).astype(np.float32)
    out = np.empty((n_users, 13), np.float32)
    one_layer_scores(a, b, weight, np.float32(-0.5), out)
    expected = np.maximum(a[:, None, :].astype(np.float64) + b[None, :, :], 0) @ weight - 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_triplet_resumes_to_the_uninterrupted_result(tmp_path):
    from itemvec.errors import Interrupted
    from itemvec.train import Trainer

    data, _ = checkerboard()
    whole = Triplet(**FAST["triplet"]).fit(data, progress=False)
    with pytest.raises((Interrupted, KeyboardInterrupt)):
        Triplet(**FAST["triplet"]).fit(data, Trainer(run_dir=tmp_path, stop_after_epochs=11, progress=False))
    resumed = Triplet(**FAST["triplet"]).fit(data, Trainer(run_dir=tmp_path, progress=False))
    np.testing.assert_array_equal(resumed.user_vectors_, whole.user_vectors_)
    np.testing.assert_array_equal(resumed.item_vectors_, whole.item_vectors_)


def test_a_run_saved_by_the_torch_triplet_loads():
    data, _ = checkerboard()
    model = Triplet(**FAST["triplet"]).fit(data, progress=False)
    loaded = Triplet(**FAST["triplet"])
    loaded.known_users_, loaded.known_items_ = model.known_users_, model.known_items_
    loaded.item_popularity_ = model.item_popularity_
    loaded._set_state({"net.user.weight": model.user_vectors_, "net.item.weight": model.item_vectors_})
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))
