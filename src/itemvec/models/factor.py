"""Factor-model kernels shared by both data kinds (item pairs and users × items).

- ``ranking_step``: one fused numba step of BPR (Rendle et al. 2009) or WARP (Weston et al. 2011) over
  (row, positive column) examples with negatives drawn uniformly among ``candidates`` and not among the row's
  positives (the sorted CSR rows ``indptr`` / ``indices``). The user-item ``bpr`` / ``warp`` train it on
  users × items; the item-pair ``bpr`` on the train graph, an item's partners playing a user's positives.
- ``als_half_step``: one half-iteration of weighted implicit-feedback ALS (Hu, Koren & Volinsky 2008,
  "Collaborative Filtering for Implicit Feedback Datasets"), each row's normal equations solved by a few
  steps of conjugate gradient warm-started at the current row (Takács, Pilászy & Tikk 2011), as `implicit`
  does. Used by ``als`` on both kinds.

The blocks are fixed (``N_BLOCKS``) so that one thread gives the same numbers on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from itemvec.config import Choices, Dim, InitStd, Range, Regularisation
from itemvec.lookup import find_sorted
from itemvec.models.kernels import lane_rate, lanes, sigmoid
from itemvec.rng import alias_draw, alias_table, splitmix_next
from itemvec.train import RowSteps, TrainSettings
from itemvec.tune import IntRange, LogUniform, OneOf, Space

Alpha = Annotated[float, Range(0, 1e6)]
# `compare --tune`'s search space of `als`, on both kinds
ALS_SPACE: dict[str, Space] = {"dim": OneOf((32, 64, 128)), "alpha": LogUniform(1.0, 100.0), "reg": LogUniform(0.1, 20.0),
                               "epochs": IntRange(5, 30)}
CGSteps = Annotated[int, Range(1, 100)]

N_BLOCKS = 16  # fixed work split per step: results do not depend on the number of threads (given one thread)


@njit(inline="always")
def _warp_weight(n_items, tries):
    return np.log(max(1.0, np.floor((n_items - 1) / tries)))


@njit(inline="always")
def _is_positive(indices, start, end, item):
    """Whether ``item`` is in the sorted slice ``indices[start:end]`` (a binary search)."""
    return find_sorted(indices, start, end, item) >= 0


@njit(inline="always")
def _draw_negative(state, candidates, prob, alias, indptr, indices, user):
    """A candidate that is not among ``user``'s positives: uniform over ``candidates`` (``prob`` empty) or drawn
    through the alias table ``prob`` / ``alias`` over them (``rng.alias_table``)."""
    start, end = indptr[user], indptr[user + 1]
    n = np.uint64(len(candidates))
    j = np.int64(-1)
    for _ in range(64):  # rejection; a user who likes (nearly) everything keeps the last draw
        if len(prob):
            state, slot = alias_draw(state, prob, alias)
            j = candidates[slot]
        else:
            state, z = splitmix_next(state)
            j = candidates[np.int64((z >> np.uint64(11)) % n)]
        if not _is_positive(indices, start, end, j):
            break
    return state, j


@njit(inline="always")
def _step_coord(table, acc, row, d, grad, lr, adagrad):
    if adagrad:  # 0: SGD; else the squared gradient's weight in the accumulator (train.Shard.accumulate)
        acc[row, d] += adagrad * grad * grad
        table[row, d] -= lr * grad / np.sqrt(acc[row, d] + 1e-8)
    else:
        table[row, d] -= lr * grad


@njit(parallel=True, fastmath=True, cache=True)
def ranking_step(user_f, item_f, item_b, acc_u, acc_i, acc_b, users, items, indptr, indices, candidates,
                 prob, alias, lr0, lr1, l2, warp, negatives, max_sampled, margin, adagrad, seed, n_lanes):
    """One trainer step over the positives ``users/items`` (one chunk). Returns (summed loss, updates).

    Negatives: uniform among ``candidates``, or through the alias table ``prob`` / ``alias`` over them when
    ``prob`` is not empty (``negative_sampler``).
    warp = False: BPR, ``negatives`` draws per positive, each an update of −ln σ(x_ui − x_uj).
    warp = True: WARP, draws until a margin violator (at most ``max_sampled``), one weighted hinge update.
    The blocks run in ``n_lanes`` lanes; the rate follows the step's progress over all lanes (``kernels.lanes``).
    """
    n = len(users)
    dim = user_f.shape[1]
    n_cand = len(candidates)
    block = (n + N_BLOCKS - 1) // N_BLOCKS
    losses = np.zeros(N_BLOCKS)
    counts = np.zeros(N_BLOCKS, dtype=np.int64)
    clock = np.zeros((n_lanes, 8), dtype=np.int64)
    for lane in prange(n_lanes):
        done = 0
        others = 0
        for blk in range(lane, N_BLOCKS, n_lanes):
            state = np.uint64(seed) + np.uint64(blk) * np.uint64(0x632BE59BD9B4E019)
            pu = np.empty(dim)
            loss = 0.0
            count = 0
            for e in range(blk * block, min(n, (blk + 1) * block)):
                lr, others = lane_rate(clock, lane, done, others, lr0, lr1, n)  # kernels.lanes
                done += 1
                u = users[e]
                i = items[e]
                s_pos = item_b[i]
                for d in range(dim):
                    s_pos += user_f[u, d] * item_f[i, d]
                rounds = max_sampled if warp else negatives
                for t in range(1, rounds + 1):
                    state, j = _draw_negative(state, candidates, prob, alias, indptr, indices, u)
                    s_neg = item_b[j]
                    for d in range(dim):
                        s_neg += user_f[u, d] * item_f[j, d]
                    if warp:
                        if s_neg <= s_pos - margin:
                            continue
                        g = _warp_weight(n_cand, t)  # d loss / d s_neg; d loss / d s_pos = -g
                        loss += g * (margin - s_pos + s_neg)
                    else:
                        x = s_pos - s_neg
                        loss -= np.log(max(sigmoid(x), 1e-12))
                        g = sigmoid(-x)  # -d ln σ(x) / dx, applied as d loss / d s_neg
                    count += 1
                    for d in range(dim):
                        pu[d] = user_f[u, d]
                    for d in range(dim):
                        _step_coord(user_f, acc_u, u, d, g * (item_f[j, d] - item_f[i, d]) + l2 * pu[d], lr, adagrad)
                        _step_coord(item_f, acc_i, i, d, -g * pu[d] + l2 * item_f[i, d], lr, adagrad)
                        _step_coord(item_f, acc_i, j, d, g * pu[d] + l2 * item_f[j, d], lr, adagrad)
                    gi = -g + l2 * item_b[i]
                    gj = g + l2 * item_b[j]
                    if adagrad:
                        acc_b[i] += adagrad * gi * gi
                        acc_b[j] += adagrad * gj * gj
                        item_b[i] -= lr * gi / np.sqrt(acc_b[i] + 1e-8)
                        item_b[j] -= lr * gj / np.sqrt(acc_b[j] + 1e-8)
                    else:
                        item_b[i] -= lr * gi
                        item_b[j] -= lr * gj
                    if warp:
                        break
                    # BPR: the positive's score moved with this update; refresh it for the next negative.
                    s_pos = item_b[i]
                    for d in range(dim):
                        s_pos += user_f[u, d] * item_f[i, d]
            losses[blk] = loss
            counts[blk] = count
    return losses.sum(), counts.sum()


@njit(parallel=True, fastmath=True, cache=True)
def als_half_step(x, y, yty, indptr, indices, confidence, reg, cg_steps, scaled):
    """Solve every row ``u`` of ``x`` (float32, updated in place) for fixed ``y``: minimise
    Σ_i c_ui (p_ui − x_u·y_i)² + λ_u |x_u|² over all columns i (λ_u = reg, or reg × the row's entries when
    ``scaled``), with p_ui = 1 and c_ui = ``confidence`` on the
    row's CSR entries (``indptr`` / ``indices``) and p = 0, c = 1 elsewhere. The normal equations
    (YᵀY + Yᵀ(C_u − I)Y + λ_u I) x_u = Yᵀ C_u p_u are solved by ``cg_steps`` conjugate-gradient steps from the
    current x_u (``yty`` = YᵀY, float64). A row without entries is set to 0, its exact solution.
    Returns the loss Σ_u [Σ_i c_ui (p_ui − s_ui)² + λ_u |x_u|²] after the solve (the unobserved part through
    YᵀY, as implicit's calculate_loss), which needs no pass over the zeros."""
    n, dim = x.shape
    losses = np.zeros(n)
    for u in prange(n):
        start, end = indptr[u], indptr[u + 1]
        if start == end:
            for d in range(dim):
                x[u, d] = 0.0
            continue
        xu = np.empty(dim)
        for d in range(dim):
            xu[d] = x[u, d]
        lam = reg * (end - start) if scaled else reg
        # r = b − A x
        r = -(yty @ xu) - lam * xu
        for k in range(start, end):
            i = indices[k]
            c = confidence[k]
            s = 0.0
            for d in range(dim):
                s += y[i, d] * xu[d]
            w = c - (c - 1.0) * s
            for d in range(dim):
                r[d] += w * y[i, d]
        p = r.copy()
        rs_old = 0.0
        for d in range(dim):
            rs_old += r[d] * r[d]
        for _ in range(cg_steps):
            if rs_old < 1e-20:
                break
            ap = yty @ p + lam * p
            for k in range(start, end):
                i = indices[k]
                s = 0.0
                for d in range(dim):
                    s += y[i, d] * p[d]
                s *= confidence[k] - 1.0
                for d in range(dim):
                    ap[d] += s * y[i, d]
            pap = 0.0
            for d in range(dim):
                pap += p[d] * ap[d]
            if pap <= 0.0:
                break
            alpha = rs_old / pap
            rs_new = 0.0
            for d in range(dim):
                xu[d] += alpha * p[d]
                r[d] -= alpha * ap[d]
                rs_new += r[d] * r[d]
            beta = rs_new / rs_old
            for d in range(dim):
                p[d] = r[d] + beta * p[d]
            rs_old = rs_new
        # loss of the row: x YᵀY x (every column as a zero) corrected on the entries, plus the penalty
        loss = xu @ (yty @ xu) + lam * (xu @ xu)
        for k in range(start, end):
            i = indices[k]
            s = 0.0
            for d in range(dim):
                s += y[i, d] * xu[d]
            loss += confidence[k] * (1.0 - s) * (1.0 - s) - s * s
        losses[u] = loss
        for d in range(dim):
            x[u, d] = xu[d]
    return losses.sum()


class ALSSteps:
    """Weighted ALS for the trainer: one epoch is one iteration, one step solving ``x`` then ``y`` (each for the
    other fixed) on ``matrix`` (rows of x against columns of y) and its transpose. The loss is the objective per
    stored entry after the iteration."""

    def __init__(self, x: np.ndarray, y: np.ndarray, matrix: sp.csr_matrix, alpha: float, reg: float,
                 cg_steps: int, scaled: bool = False) -> None:
        self.x, self.y = x, y
        self.scaled = scaled
        self.reg, self.cg_steps = reg, cg_steps
        self.rows = (matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64),
                     1.0 + alpha * matrix.data.astype(np.float64))
        t = matrix.T.tocsr()
        t.sort_indices()
        self.columns = (t.indptr.astype(np.int64), t.indices.astype(np.int64), 1.0 + alpha * t.data.astype(np.float64))
        self.nnz = matrix.nnz

    def steps_per_epoch(self) -> int:
        return 1

    def begin_epoch(self, epoch: int, seed: int) -> None:
        pass

    def train_step(self, step: int, lr_start: float, lr_end: float, seed: int) -> tuple[float, int]:
        y64 = self.y.astype(np.float64)
        als_half_step(self.x, self.y, y64.T @ y64, *self.rows, self.reg, self.cg_steps, self.scaled)
        x64 = self.x.astype(np.float64)
        loss = als_half_step(self.y, self.x, x64.T @ x64, *self.columns, self.reg, self.cg_steps, self.scaled)
        return float(loss), self.nnz

    def state(self) -> dict[str, np.ndarray]:
        return {"x": self.x, "y": self.y}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        self.x[:] = state["x"]
        self.y[:] = state["y"]


class ALSSettings:
    """The settings ``als`` has on both data kinds (item pairs add ``weighted``)."""

    @dataclass(frozen=True)
    class Config:
        dim: Dim = 64
        alpha: Alpha = 10.0  # confidence 1 + alpha · weight on an observed entry
        # L2 on a factor row: reg × the row's entries ("count": the weighted-λ of Zhou et al. 2008, as Spark's
        # ALS), or reg alone ("none", as implicit). Measured: "none" overfits a small data set (the planted
        # ratings of the tests: per-user AUC 0.55 against 0.76) and is not better on the demo catalogue's
        # validation pairs (AUC 0.9222 against 0.9285, Recall@10 0.162 against 0.163).
        reg: Regularisation = 2.0
        reg_scaling: Annotated[str, Choices(("none", "count"))] = "count"
        cg_steps: CGSteps = 3  # conjugate-gradient steps per row and half-iteration (implicit's default)
        init_std: InitStd = 0.01
        # epochs: ALS iterations; lr, schedule and batch_size are not used (ALS has no rate)
        train: TrainSettings = TrainSettings(epochs=15, schedule="constant", batch_size=1)


def negative_sampler(counts: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray]:
    """The alias table (prob, alias) for drawing candidate k ∝ ``counts[k] ** power`` (each count taken as at
    least 1), or two empty arrays (uniform draws) when ``power`` is 0. ``power`` 1 with the train degrees is
    `implicit`'s BPR (a negative is the column of a random stored entry); word2vec's 0.75 lies between."""
    if power == 0 or len(counts) == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int32)
    return alias_table(np.maximum(np.asarray(counts, dtype=np.float64), 1.0) ** power)


class PositiveSteps(RowSteps):
    """Steps of a fused kernel over (row, positive column) examples for the trainer: a shuffled pass over
    ``rows`` / ``columns`` each epoch, ``config.train.batch_size`` per step, negatives drawn among
    ``candidates`` and not among a row's positives (the sorted CSR rows ``indptr`` / ``indices``), on
    ``tables`` (under the names a checkpoint stores them by, in the order the kernel takes them). Subclasses
    run their kernel on one step's examples in ``_step``."""

    def __init__(self, tables: dict[str, np.ndarray], rows: np.ndarray, columns: np.ndarray, indptr: np.ndarray,
                 indices: np.ndarray, candidates: np.ndarray, config: Any) -> None:
        super().__init__(len(rows), config.train.batch_size)
        self.tables, self.config = tables, config
        self.rows, self.columns = rows, columns
        self.indptr, self.indices, self.candidates = indptr, indices, candidates

    def _step(self, rows: np.ndarray, columns: np.ndarray, lr_start: float, lr_end: float, seed: int,
              ) -> tuple[float, int]:
        raise NotImplementedError

    def train_step(self, step: int, lr_start: float, lr_end: float, seed: int) -> tuple[float, int]:
        chunk = self.chunk(step)
        if len(chunk) == 0:
            return 0.0, 0
        loss, count = self._step(self.rows[chunk], self.columns[chunk], lr_start, lr_end, seed)
        return float(loss), int(count)

    def state(self) -> dict[str, np.ndarray]:
        return dict(self.tables)

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        for key, target in self.tables.items():
            target[:] = state[key]


class RankingSteps(PositiveSteps):
    """BPR / WARP steps for the trainer, on ``tables``: the row factors, the column factors, the column bias
    and their three Adagrad accumulators, in that order. ``config``: the model's settings (``l2``,
    ``optimizer``, ``negatives`` or WARP's ``max_sampled`` and ``margin``, and ``negative_power``: negatives
    drawn ∝ a candidate's count among the rows' positives ** power, uniform without it). ``counts``: those
    counts per candidate when ``indices`` are not every positive (a distributed rank's own rows: their counts
    over every rank's); else counted from ``indices``."""

    def __init__(self, tables: dict[str, np.ndarray], rows: np.ndarray, columns: np.ndarray, indptr: np.ndarray,
                 indices: np.ndarray, candidates: np.ndarray, config: Any, warp: bool = False,
                 counts: np.ndarray | None = None) -> None:
        super().__init__(tables, rows, columns, indptr, indices, candidates, config)
        self.warp = warp
        power = getattr(config, "negative_power", 0.0)
        if power and counts is None:
            counts = np.bincount(indices, minlength=int(candidates.max(initial=-1)) + 1)[candidates]
        self.prob, self.alias = negative_sampler(candidates if counts is None else counts, power)

    def _step(self, rows, columns, lr_start, lr_end, seed):
        c = self.config
        rows_f, columns_f, bias, acc_rows, acc_columns, acc_bias = self.tables.values()
        return ranking_step(
            rows_f, columns_f, bias, acc_rows, acc_columns, acc_bias, rows, columns, self.indptr, self.indices, self.candidates, self.prob, self.alias,
            lr_start, lr_end, c.l2, self.warp, getattr(c, "negatives", 1), getattr(c, "max_sampled", 1),
            getattr(c, "margin", 1.0), self.accumulate(c.optimizer == "adagrad"), seed, lanes(N_BLOCKS))
