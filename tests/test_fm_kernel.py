"""The factorisation machine's numba kernel (``fm.fm_step``) against an oracle of Rendle's equation, its scores,
resume and its imports (no torch)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from itemvec.models.useritem import fm
from itemvec.models.useritem.fm import FactorizationMachine

sys.path.insert(0, str(Path(__file__).parent))
from test_implicit_models import FAST, GROUP, checkerboard  # noqa: E402


def fm_equation(factors, weights, features, values):
    """Rendle's eq. 1 (without w_0) over the active features, by its double sum (no O(k·n) rewrite)."""
    y = 0.0
    for a, (f, x) in enumerate(zip(features, values)):
        y += weights[f] * x
        for g, z in zip(features[a + 1:], values[a + 1:]):
            y += float(np.dot(factors[f].astype(np.float64), factors[g])) * x * z
    return y


def pair_features(model, user, item):
    index = np.r_[model.user_index_[user], model.item_index_[item]]
    value = np.r_[model.user_value_[user], model.item_value_[item]]
    keep = value != 0
    return index[keep], value[keep]


def test_fm_step_is_one_sgd_step_of_the_bpr_loss():
    """One positive (u, i) and one possible negative j; SGD. The kernel's update equals the gradient of
    −ln σ(y(u, i) − y(u, j)) + ½ l2 Σ |θ|² over the present features (the FM equation differentiated
    numerically), with distinct features in i and j."""
    rng = np.random.default_rng(3)
    n_features, dim, lr, l2 = 9, 4, 0.05, 0.01
    factors = (rng.standard_normal((n_features, dim)) * 0.5).astype(np.float32)
    weights = (rng.standard_normal(n_features) * 0.5).astype(np.float32)
    # user 0: features 0 (one-hot) and 1 (side, value 0.5); item 0: 2, 3, 4; item 1: 5, 6 (one padding slot)
    user_index, user_value = np.array([[0, 1]]), np.array([[1.0, 0.5]], np.float32)
    item_index = np.array([[2, 3, 4], [5, 6, 0]])
    item_value = np.array([[1.0, 1.0, 2.0], [1.0, 0.7, 0.0]], np.float32)
    present = {0: 1.0, 1: 0.5, 2: 1.0, 3: 1.0, 4: 2.0, 5: 1.0, 6: 0.7}

    def loss(f, w):
        pos = fm_equation(f, w, [0, 1, 2, 3, 4], [1.0, 0.5, 1.0, 1.0, 2.0])
        neg = fm_equation(f, w, [0, 1, 5, 6], [1.0, 0.5, 1.0, 0.7])
        penalty = sum((f[k].astype(np.float64) ** 2).sum() + w[k] ** 2 for k in present if k > 1)
        penalty += sum((f[k].astype(np.float64) ** 2).sum() for k in (0, 1))  # user weights: not in the score
        return np.logaddexp(0.0, -(pos - neg)) + 0.5 * l2 * penalty

    f64, w64 = factors.astype(np.float64), weights.astype(np.float64)
    eps = 1e-6
    grad_f, grad_w = np.zeros_like(f64), np.zeros_like(w64)
    for k in range(n_features):
        for d in range(dim):
            up, down = f64.copy(), f64.copy()
            up[k, d] += eps
            down[k, d] -= eps
            grad_f[k, d] = (loss(up, w64) - loss(down, w64)) / (2 * eps)
        if k > 1:
            up, down = w64.copy(), w64.copy()
            up[k] += eps
            down[k] -= eps
            grad_w[k] = (loss(f64, up) - loss(f64, down)) / (2 * eps)
    expected_loss = np.logaddexp(0.0, -(fm_equation(f64, w64, [0, 1, 2, 3, 4], [1, 0.5, 1, 1, 2])
                                        - fm_equation(f64, w64, [0, 1, 5, 6], [1, 0.5, 1, 0.7])))
    new_f, new_w = factors.copy(), weights.copy()
    total, count = fm.fm_step(new_f, new_w, np.zeros_like(factors), np.zeros_like(weights), user_index, user_value,
                              item_index, item_value, np.array([0]), np.array([0]), np.array([0, 1]),
                              np.array([0]), np.array([0, 1]), lr, lr, l2, 1, 0.0, 5, 1)
    assert count == 1
    assert total == pytest.approx(expected_loss, rel=1e-4)
    np.testing.assert_allclose(new_f, f64 - lr * grad_f, atol=2e-5)
    np.testing.assert_allclose(new_w, w64 - lr * grad_w, atol=2e-5)
    assert new_f[7:].tolist() == factors[7:].tolist()  # features no triplet has: untouched
    assert new_w[:2].tolist() == weights[:2].tolist()  # the user's weights cancel in the loss: untouched


def test_fm_scores_are_the_fm_equation_less_the_users_own_terms():
    """predict(u, i) − predict(u, j) is y(x_ui) − y(x_uj) of Rendle's equation (the user's own terms cancel),
    for trained and for cold items (scored from their side features)."""
    data, _ = checkerboard(features=True)
    model = FactorizationMachine(**FAST["fm"]).fit(data, progress=False)
    users = np.array([0, 5, 13, 20])
    items = np.array([1, 7, 15, 2 * GROUP])  # the last: no train rating, group A's feature
    scores = model.predict(np.repeat(users, len(items)), np.tile(items, len(users))).reshape(len(users), -1)
    for a, u in enumerate(users):
        full = [fm_equation(model.factors_, model.weights_, *pair_features(model, u, i)) for i in items]
        np.testing.assert_allclose(scores[a] - scores[a, 0], np.array(full) - full[0], atol=1e-4)


def test_fm_resume_gives_the_uninterrupted_result(tmp_path):
    data, _ = checkerboard(features=True)
    settings = {**FAST["fm"], "epochs": 4, "batch_size": 32}
    whole = FactorizationMachine(**settings).fit(data, progress=False)
    with pytest.raises(KeyboardInterrupt):
        FactorizationMachine(**settings).fit(data, progress=False, run_dir=tmp_path, stop_after_epochs=2)
    assert (tmp_path / "checkpoint.npz").exists()
    resumed = FactorizationMachine(**settings).fit(data, progress=False, run_dir=tmp_path)
    np.testing.assert_array_equal(resumed.factors_, whole.factors_)
    np.testing.assert_array_equal(resumed.weights_, whole.weights_)


def test_a_run_saved_by_the_torch_fm_loads(tmp_path):
    """Its state named the two tables after the torch module: net.factors.weight, net.weights.weight (n, 1)."""
    data, _ = checkerboard(features=True)
    model = FactorizationMachine(**FAST["fm"]).fit(data, progress=False)
    state = model._state()
    old = {k: v for k, v in state.items() if k not in ("factors_", "weights_")}
    old["net.factors.weight"], old["net.weights.weight"] = state["factors_"], state["weights_"][:, None]
    loaded = FactorizationMachine(**FAST["fm"])
    loaded.known_users_, loaded.known_items_ = model.known_users_, model.known_items_
    loaded._set_state(old)
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))


def test_feature_rows_pad_with_zero_values():
    features = sp.csr_matrix(np.array([[0, 1, 1], [0, 0, 0], [2, 0, 0]], np.float32))
    index, value = fm.feature_rows(3, np.array([True, False, True]), features, 10, 20)
    assert index.tolist() == [[10, 21, 22], [11, 0, 0], [12, 20, 0]]
    assert value.tolist() == [[1, 1, 1], [0, 0, 0], [1, 2, 0]]
