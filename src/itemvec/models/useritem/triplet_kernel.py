"""The ``triplet`` model's training step as one fused numba kernel (the model is in ``triplet.py``).

score(u, i) = cos(p_u, q_i); per positive (u, i), ``negatives`` items j are drawn among the candidates and not
among u's positives, and the margin loss max(0, margin − s_ui + s_uj) is taken against the highest-scoring
of them (``hardest``) or summed over all. With a = p_u / |p_u| and b = q_i / |q_i|, the gradients of s = a · b
are ∂s/∂p_u = (b − s a) / |p_u| and ∂s/∂q_i = (a − s b) / |q_i|: a step moves each vector only across its
own direction, never along it. The updates are sparse, per-coordinate Adagrad or SGD (``kernels.step_row``),
Hogwild across cores in ``N_BLOCKS`` fixed blocks with a per-block splitmix64 generator (as ``factor.ranking_step``),
so that one thread gives the same numbers on any machine.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from itemvec.models.factor import N_BLOCKS, _draw_negative
from itemvec.models.kernels import lane_rate, step_row

EPS = 1e-8  # torch's cosine_similarity floor on a norm


@njit(inline="always")
def _norm(table, row, dim):
    s = np.float32(0.0)  # float32 sums, as the tables: the loops vectorise
    for d in range(dim):
        s += table[row, d] * table[row, d]
    return max(np.sqrt(np.float64(s)), EPS)


@njit(inline="always")
def _cosine(user_f, item_f, u, nu, j, dim):
    """(cos(p_u, q_j), |q_j|) given |p_u| = ``nu``."""
    dot = np.float32(0.0)
    sq = np.float32(0.0)
    for d in range(dim):
        dot += user_f[u, d] * item_f[j, d]
        sq += item_f[j, d] * item_f[j, d]
    nj = max(np.sqrt(np.float64(sq)), EPS)
    return np.float64(dot) / (nu * nj), nj


@njit(parallel=True, fastmath=True, cache=True)
def triplet_step(user_f, item_f, acc_u, acc_i, users, items, indptr, indices, candidates, prob, alias,
                 lr0, lr1, l2, negatives, hardest, margin, adagrad, seed, n_lanes):  # pragma: no cover (numba)
    """One trainer step over the positives ``users/items``. Returns (summed loss, positives).

    ``l2``: 2 · l2 · row added to the gradient of every row a violated triplet updates (the gradient of
    l2 · |row|²). ``adagrad``: the squared gradient's weight in the accumulators (0: plain SGD)."""
    n = len(users)
    dim = user_f.shape[1]
    block = (n + N_BLOCKS - 1) // N_BLOCKS
    losses = np.zeros(N_BLOCKS)
    clock = np.zeros((n_lanes, 8), dtype=np.int64)
    decay = np.float32(2.0 * l2)
    weight = np.float32(adagrad)  # float32, as the accumulators
    for lane in prange(n_lanes):
        done = 0
        others = 0
        for blk in range(lane, N_BLOCKS, n_lanes):
            state = np.uint64(seed) + np.uint64(blk) * np.uint64(0x632BE59BD9B4E019)
            drawn = np.empty(negatives, dtype=np.int64)
            s_neg = np.empty(negatives)
            n_neg = np.empty(negatives)
            grad_u = np.empty(dim, dtype=np.float32)
            grad_v = np.empty(dim, dtype=np.float32)
            loss = 0.0
            for e in range(blk * block, min(n, (blk + 1) * block)):
                rate, others = lane_rate(clock, lane, done, others, lr0, lr1, n)
                lr = np.float32(rate)
                done += 1
                u = users[e]
                i = items[e]
                nu = _norm(user_f, u, dim)
                s_pos, n_pos = _cosine(user_f, item_f, u, nu, i, dim)
                worst = 0
                for t in range(negatives):
                    state, j = _draw_negative(state, candidates, prob, alias, indptr, indices, u)
                    drawn[t] = j
                    s_neg[t], n_neg[t] = _cosine(user_f, item_f, u, nu, j, dim)
                    if s_neg[t] > s_neg[worst]:
                        worst = t
                # The violated negatives: the hardest alone, or every one inside the margin. Every gradient
                # below is taken at the vectors before this positive's updates.
                for d in range(dim):
                    grad_u[d] = decay * user_f[u, d]
                violated = 0.0  # how many hinge terms push the positive up
                for t in range(negatives):
                    if hardest and t != worst:
                        continue
                    hinge = margin - s_pos + s_neg[t]
                    if hinge <= 0.0:
                        continue
                    loss += hinge
                    violated += 1.0
                    j = drawn[t]
                    # d s_j / d p_u = q_j / (|q_j| |p_u|) − s_j p_u / |p_u|²;  d s_j / d q_j = p_u / (|p_u| |q_j|) − s_j q_j / |q_j|²
                    cross = np.float32(1.0 / (nu * n_neg[t]))
                    own_u = np.float32(s_neg[t] / (nu * nu))
                    own_j = np.float32(s_neg[t] / (n_neg[t] * n_neg[t]))
                    for d in range(dim):
                        grad_u[d] += cross * item_f[j, d] - own_u * user_f[u, d]
                        grad_v[d] = cross * user_f[u, d] - own_j * item_f[j, d] + decay * item_f[j, d]
                    step_row(item_f, acc_i, j, grad_v, lr, weight)
                if violated > 0.0:
                    cross = np.float32(violated / (nu * n_pos))
                    own_u = np.float32(violated * s_pos / (nu * nu))
                    own_i = np.float32(violated * s_pos / (n_pos * n_pos))
                    for d in range(dim):
                        grad_u[d] -= cross * item_f[i, d] - own_u * user_f[u, d]
                        grad_v[d] = -(cross * user_f[u, d] - own_i * item_f[i, d]) + decay * item_f[i, d]
                    step_row(item_f, acc_i, i, grad_v, lr, weight)
                    step_row(user_f, acc_u, u, grad_u, lr, weight)
            losses[blk] = loss
    return losses.sum(), n


@njit(parallel=True, fastmath=True, cache=True)
def one_layer_scores(user_part, item_part, weight, bias, out):  # pragma: no cover (numba)
    """``deep-triplet``'s scores with one hidden layer, fused: out[r, i] = weight · relu(user_part[r] +
    item_part[i]) + bias, without the (users, items, hidden) tensor torch would build (a pass over it per
    operation). float32 throughout. Users go four at a time, so that each item's row is read once for four
    (1.6x faster at MovieLens latest-small size)."""
    hidden = user_part.shape[1]
    n_users = user_part.shape[0]
    zero = np.float32(0.0)
    for block in prange((n_users + 3) // 4):
        r = 4 * block
        if r + 4 <= n_users:
            for i in range(item_part.shape[0]):
                s0 = s1 = s2 = s3 = zero
                for h in range(hidden):
                    c, w = item_part[i, h], weight[h]
                    s0 += w * max(user_part[r, h] + c, zero)
                    s1 += w * max(user_part[r + 1, h] + c, zero)
                    s2 += w * max(user_part[r + 2, h] + c, zero)
                    s3 += w * max(user_part[r + 3, h] + c, zero)
                out[r, i] = s0 + bias
                out[r + 1, i] = s1 + bias
                out[r + 2, i] = s2 + bias
                out[r + 3, i] = s3 + bias
        else:
            for u in range(r, n_users):
                for i in range(item_part.shape[0]):
                    s = zero
                    for h in range(hidden):
                        s += weight[h] * max(user_part[u, h] + item_part[i, h], zero)
                    out[u, i] = s + bias
