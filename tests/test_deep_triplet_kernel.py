"""``deep-triplet``'s numba training step (``deep_triplet_kernel``): its gradients against torch's autograd of the
torch path's loss on a tiny random net (hardest and summed negatives, with and without the item bias), its Adam
against torch's, a run saved by the torch path loading with the same scores, resume, the torch path still
training the configs the kernel does not cover, and that fitting the default config loads no torch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from itemvec.models.useritem.base import Adam, set_torch_state, torch_state
from itemvec.models.useritem.deep_triplet_kernel import adam
from itemvec.models.useritem.triplet import DeepTriplet, _DeepTripletSteps

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).parent))
from test_implicit_models import FAST, checkerboard  # noqa: E402


def _tiny(n_items=9, **config):
    """A model with a random tiny net (5 users, ``n_items`` items), its weights and a torch module holding the
    same."""
    model = DeepTriplet(dim=6, user_dim=4, hidden=5, **config)
    weights = model._initial_weights(5, n_items, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    for key in ("net.hidden.0.bias", "net.out.bias") + (("net.bias.weight",) if model.config.item_bias else ()):
        weights[key] = rng.standard_normal(weights[key].shape).astype(np.float32)  # not zero: their gradients too
    weights["net.user.weight"] *= 20  # rows large enough that some hinges are met and some not
    weights["net.item.weight"] *= 20
    model._build(5, n_items, torch.Generator().manual_seed(0))
    set_torch_state(model.net_, weights)
    return model, weights


# More rows than the 5 users (the user half once per user) or fewer (once per row); 9 items (most of them in a
# violated triplet: the item products over every item) or 60 (at most 24 of them with the hardest negative:
# the products over those items' rows alone).
@pytest.mark.parametrize("rows, n_items", [(12, 9), (4, 9), (12, 60)])
@pytest.mark.parametrize("config", [{}, {"hardest": False}, {"item_bias": False, "l2": 0.0},
                                    {"hardest": False, "l2": 0.05, "margin": 0.3}])
def test_the_kernels_gradients_are_torchs_autograd_of_the_loss(config, rows, n_items):
    model, weights = _tiny(n_items, **{"l2": 0.01, "negatives": 3, **config})
    rng = np.random.default_rng(2)
    users = rng.integers(0, 5, rows).astype(np.int64)  # users and items repeat: gradients sum over rows
    if rows < 12:
        users[:2] = users[2]  # (a user on several rows in this case too)
    positives = rng.integers(0, n_items, rows).astype(np.int64)
    negatives = rng.integers(0, n_items, (rows, 3)).astype(np.int64)
    if n_items > 9:
        positives[1] = positives[0]  # (an item on several rows)
        negatives[2, 0] = negatives[3, 1]
    loss = model._triplet_loss(torch.from_numpy(users), torch.from_numpy(positives), torch.from_numpy(negatives),
                               torch.Generator())
    loss.mean().backward()
    with torch.no_grad():
        margins = (model.config.margin - model._pair_scores(torch.from_numpy(users), torch.from_numpy(positives))[:, None]
                   + model._negative_scores(torch.from_numpy(users), torch.from_numpy(negatives), None))
    assert 0 < int((margins > 0).sum()) < margins.numel()  # met and violated hinges both in the check
    steps = _DeepTripletSteps(weights, users, positives, None, None, None, None, model.config)
    got_loss, grads = steps._gradients(users, positives, negatives)
    assert got_loss == pytest.approx(float(loss.detach().sum()), rel=1e-5)
    params = dict(model.net_.named_parameters())
    assert set(grads) == {f"net.{name}" for name in params}
    for name, param in params.items():
        np.testing.assert_allclose(grads[f"net.{name}"], param.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_the_kernels_adam_is_torchs():
    rng = np.random.default_rng(3)
    param = rng.standard_normal(50).astype(np.float32)
    reference = torch.tensor(param.copy(), requires_grad=True)
    optimiser = Adam([reference], lr=0.01)
    exp_avg, exp_avg_sq = np.zeros_like(param), np.zeros_like(param)
    for t in range(1, 6):
        grad = rng.standard_normal(50).astype(np.float32)
        reference.grad = torch.from_numpy(grad.copy())
        optimiser.step()
        adam(param, grad, exp_avg, exp_avg_sq, 0.01 / (1 - 0.9 ** t), 0.9, 0.999, (1 - 0.999 ** t) ** 0.5, 1e-8)
    np.testing.assert_allclose(param, reference.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_a_run_saved_by_the_torch_path_scores_the_same():
    data, _ = checkerboard()
    torch_model = DeepTriplet(**FAST["deep-triplet"], dropout=0.1).fit(data, progress=False)  # the torch path
    state = torch_state(torch_model.net_)
    loaded = DeepTriplet(**FAST["deep-triplet"])
    loaded.known_users_, loaded.known_items_ = torch_model.known_users_, torch_model.known_items_
    loaded.item_popularity_ = torch_model.item_popularity_
    loaded._set_state(state)
    assert loaded._fused and not hasattr(loaded, "net_")
    users = np.arange(data.n_users)
    u, i = np.meshgrid(users, np.arange(data.n_items), indexing="ij")
    known = torch_model.known_items_[i.ravel()]
    np.testing.assert_allclose(loaded.score_users(users), torch_model.score_users(users), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(loaded.predict(u.ravel(), i.ravel())[known],
                               torch_model.predict(u.ravel(), i.ravel())[known], rtol=1e-5, atol=1e-5)
    assert set(loaded._state()) == set(state)


def test_save_and_load_round_trip(tmp_path):
    data, _ = checkerboard()
    model = DeepTriplet(**FAST["deep-triplet"]).fit(data, progress=False)
    loaded = DeepTriplet.load(model.save(tmp_path / "run"))
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(loaded.score_users(users), model.score_users(users))


def test_deep_triplet_resumes_to_the_uninterrupted_result(tmp_path):
    from itemvec.errors import Interrupted
    from itemvec.train import Trainer

    data, _ = checkerboard()
    whole = DeepTriplet(**FAST["deep-triplet"]).fit(data, progress=False)
    with pytest.raises((Interrupted, KeyboardInterrupt)):
        DeepTriplet(**FAST["deep-triplet"]).fit(data, Trainer(run_dir=tmp_path, stop_after_epochs=11, progress=False))
    resumed = DeepTriplet(**FAST["deep-triplet"]).fit(data, Trainer(run_dir=tmp_path, progress=False))
    for key, value in whole.weights_.items():
        np.testing.assert_array_equal(resumed.weights_[key], value, err_msg=key)


@pytest.mark.parametrize("config", [{"hardest": False}, {"negative_power": 0.5}, {"item_bias": False}])
def test_the_kernel_covers_more_than_the_default(config):
    data, held = checkerboard()
    model = DeepTriplet(**{**FAST["deep-triplet"], **config}).fit(data, progress=False)
    assert model._fused
    scores = model.score_users(np.arange(data.n_users))
    aucs = [np.mean(scores[u, i] > scores[u, np.arange(12) + (1 - u // 12) * 12]) for u, i in held]
    assert np.mean(aucs) > 0.97, aucs  # the held-out item above the other group's (test_planted_checkerboard)
