"""``deep-triplet``'s training step without torch, for its usual network (one hidden layer over [user, item], no
dropout, no product feature; the model is in ``triplet.py``): the same loss, negatives, minibatch and Adam as
the torch path, the gradients by hand.

With U, V the user and item tables, W = [W_u | W_i] the hidden layer (bias b1), w2 / b2 the output and β the
per-item bias, a pair's score is

    s(u, j) = w2 · relu(a_u + c_j) + b2 + β_j,    a_u = W_u U_u + b1,    c = V W_iᵀ (every item, once per step),

and a step's loss is the mean over its n positives (u, i) of max(0, margin − s(u, i) + s(u, j*)) against the
hardest of its k negatives j* (or summed over the k) plus l2 · (|U_u|² + |V_i|² + |V_j*|²) (the mean of |V_j|²
over the k when summed), as ``TorchRankingModel._triplet_loss``. Only the positive and the violated negatives
carry gradients: with z = a_u + c_j and g = ∂loss/∂s(u, j) (−1/n for the positive of a violated triplet,
+1/n for the negative), ∂loss/∂z = g · w2 ⊙ [z > 0], which is ∂loss/∂a_u and ∂loss/∂c_j; the rest is BLAS
(∂V = ∂c W_i, ∂W_i = ∂cᵀ V, ∂W_u = ∂aᵀ U_users, ∂U_users = ∂a W_u). ``adam`` is torch's Adam with its defaults
on a dense array (as torch updates an ``nn.Embedding`` without ``sparse=True``), in float32.

``triplet_forward`` scores each positive and its negatives, picks the hardest and returns the scores'
gradient coefficients (parallel over rows); ``triplet_backward`` turns them into ∂a, ∂c, ∂w2, ∂β and the l2
rows (one thread: its sums over rows that share an item or user run in row order, so the numbers do not depend
on the thread count). tests/test_deep_triplet_kernel.py holds the gradients to torch's autograd.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=True, cache=True)
def triplet_forward(user_part, item_part, out_weight, out_bias, item_bias, user_rows, positives, negatives, margin,
                    hardest, coef, chosen):  # pragma: no cover (numba)
    """Scores and hinge coefficients of one step. ``user_part`` (·, hidden): a_u, row ``user_rows[r]`` for the
    step's row r; ``item_part`` (items, hidden): c; ``item_bias`` (items,) (zeros without a bias); ``positives`` (n,),
    ``negatives`` (n, k). Fills ``coef`` (n, 1 + k) with ∂hinge/∂score of the positive and each negative
    (0 where a term is not violated or not the hardest) and ``chosen`` (n,) with the hardest negative's slot.
    Returns the summed hinge."""
    n, k = negatives.shape
    losses = np.zeros(n)
    for r in prange(n):  # (nothing allocated per row: an array per row made this loop about 20 times slower)
        at = user_rows[r]
        s_pos = _score(user_part, item_part, out_weight, at, positives[r]) + out_bias + item_bias[positives[r]]
        worst = 0
        s_worst = np.float32(-np.inf)
        for t in range(k + 1):
            coef[r, t] = 0.0
        for t in range(k):
            j = negatives[r, t]
            s = _score(user_part, item_part, out_weight, at, j) + out_bias + item_bias[j]
            if s > s_worst or t == 0:  # the first of equal scores, as torch's argmax
                worst, s_worst = t, s
            if not hardest:
                hinge = margin - np.float64(s_pos) + np.float64(s)
                if hinge > 0.0:
                    losses[r] += hinge
                    coef[r, 1 + t] = 1.0
                    coef[r, 0] -= 1.0
        chosen[r] = worst
        if hardest:
            hinge = margin - np.float64(s_pos) + np.float64(s_worst)
            if hinge > 0.0:
                losses[r] = hinge
                coef[r, 1 + worst] = 1.0
                coef[r, 0] = -1.0
    return losses.sum()


@njit(inline="always")
def _score(user_part, item_part, out_weight, r, j):
    a, c = user_part[r], item_part[j]
    s = np.float32(0.0)
    for h in range(a.shape[0]):
        z = a[h] + c[h]
        s += out_weight[h] * (z if z > 0 else np.float32(0.0))
    return s


@njit(fastmath=True, cache=True)
def triplet_backward(user_part, item_part, out_weight, user_rows, positives, negatives, coef, scale, grad_user_part,
                     grad_item_part, grad_out_weight, grad_item_bias, touched):  # pragma: no cover (numba)
    """Backprop of ``scale`` · Σ coef · score through the network's nonlinearity: adds ∂/∂a to
    ``grad_user_part`` (at ``user_rows[r]``, as ``user_part``), ∂/∂c (items, hidden) to ``grad_item_part``,
    ∂/∂w2 to ``grad_out_weight`` and ∂/∂β to ``grad_item_bias``, and sets ``touched[j]`` for each item j
    whose ∂/∂c row it added to (the others stay zero). Returns ∂/∂b2. One thread, rows in order (rows that
    share an item add up in the same order on any machine); only the violated terms cost anything."""
    n, k = negatives.shape
    hidden = user_part.shape[1]
    zero = np.float32(0.0)
    grad_out_bias = 0.0
    for r in range(n):
        a, ga = user_part[user_rows[r]], grad_user_part[user_rows[r]]
        for t in range(k + 1):
            g = coef[r, t]
            if g == 0.0:
                continue
            g = np.float32(g * scale)
            j = positives[r] if t == 0 else negatives[r, t - 1]
            grad_out_bias += g
            grad_item_bias[j] += g
            touched[j] = 1
            c, gc = item_part[j], grad_item_part[j]
            for h in range(hidden):  # branch-free (a select, not an if around the additions)
                z = a[h] + c[h]
                on = np.float32(1.0) if z > zero else zero
                grad_out_weight[h] += g * z * on
                gz = g * out_weight[h] * on
                ga[h] += gz
                gc[h] += gz
    return grad_out_bias


@njit(fastmath=True, cache=True)
def scatter_rows(grad, rows, values, table, decay):  # pragma: no cover (numba)
    """grad[rows[r]] += values[r] + decay · table[rows[r]] for each r in order (``values`` may be empty: the
    decay alone): the rows of ∂U and the per-row l2, in row order on one thread. Returns Σ_r |table[rows[r]]|²
    (float64), the l2 term's value."""
    dim = grad.shape[1]
    with_values = values.shape[0] > 0
    squares = 0.0
    for r in range(len(rows)):
        row = rows[r]
        for d in range(dim):
            x = table[row, d]
            squares += np.float64(x) * np.float64(x)
            add = decay * x
            if with_values:
                add += values[r, d]
            grad[row, d] += add
    return squares


@njit(parallel=True, fastmath=False, cache=True)
def adam(param, grad, exp_avg, exp_avg_sq, step_size, beta1, beta2, bias_correction2_sqrt, eps):  # pragma: no cover
    """torch.optim.Adam's update of one array in place (flat views of equal size, float32), as
    ``useritem.base.Adam``: m ← m + (1 − β1)(g − m); v ← β2 v + (1 − β2) g²;
    p ← p − step_size · m / (√v / √(1 − β2ᵗ) + eps), step_size = lr / (1 − β1ᵗ)."""
    one1 = np.float32(1.0 - beta1)
    b2 = np.float32(beta2)
    one2 = np.float32(1.0 - beta2)
    c2 = np.float32(bias_correction2_sqrt)
    e = np.float32(eps)
    s = np.float32(step_size)
    for x in prange(param.shape[0]):
        g = grad[x]
        m = exp_avg[x] + one1 * (g - exp_avg[x])
        v = b2 * exp_avg_sq[x] + one2 * g * g
        exp_avg[x] = m
        exp_avg_sq[x] = v
        param[x] -= s * (m / (np.sqrt(v) / c2 + e))
