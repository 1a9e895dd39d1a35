"""The embedding layer: every model with learned vectors names them the same way and is scored here, once.

A model supplies its vectors through ``embedding()`` as an :class:`Embedding`:

- ``item_vectors`` (n_items, dim): the item's own (query-side) vector; for EGES the side-information mix H,
- ``context_vectors`` (n_items, dim) or None: the candidate-side vector of a two-role model (skip-gram's
  output table, MF's candidate table),
- ``item_bias`` (n_items,) and ``global_bias``: where the model has them,
- ``user_vectors`` (n_users, dim) and ``user_bias`` (n_users,): for user-item models,

and the rule that scores a pair of items:

- ``dot``: q_a · q_b (one table), plus biases;
- ``two-role``: ½ (q_a · c_b + q_b · c_a), symmetric, plus biases (b_a + b_b + g);
- ``cosine``: q_a · q_b / (|q_a| |q_b|) (gensim's ``most_similar``).

Export, an index and an API read the same ``Embedding``; the attribute names on the models are the same
(``item_vectors_``, ``context_vectors_``, ``item_bias_``, ``global_bias_``, ``user_vectors_``, ``user_bias_``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

if TYPE_CHECKING:
    from itemvec.models.base import Model

RULES = ("dot", "two-role", "cosine")


def _half_sum_of_products(q: np.ndarray, c: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """½ (q[queries] @ c.T + c[queries] @ q.T), the two-role rule's (len(queries), n_items) scores, with the second
    product added by BLAS into the first (gemm's ``beta = 1``) instead of three more (queries, n_items) arrays
    for it, the sum and the half: at Books size (2 M items, 128 dims) 1.6 -> 0.7 s for 64 queries, the ranking's
    batch (faster from two queries on). Halving is exact, so ½a + ½b rounds as ½(a + b) does; the products may
    differ from numpy's in the last bits (another order of the sums where numpy chooses another BLAS routine)."""
    q_rows, c_rows = q[queries], c[queries]
    if (len(queries) < 2 or not (q.flags.c_contiguous and c.flags.c_contiguous)
            or q.dtype != c.dtype or q.dtype not in (np.float32, np.float64)):
        # One query: numpy's matrix-vector product is 4-6 times faster than gemm's one-column case (a service's
        # request); a view, or tables of two types: gemm would copy a whole table first.
        return 0.5 * (q_rows @ c.T + c_rows @ q.T)
    # imported here: a service's one-query answers need not load scipy.linalg
    from scipy.linalg.blas import get_blas_funcs

    gemm = get_blas_funcs("gemm", (q, c))
    # BLAS is column-major: the C-ordered (queries, n_items) result is the Fortran-ordered (n_items, queries) one,
    # c @ q[queries].T, so every operand is a transposed view and nothing is copied.
    out = np.empty((len(c), len(queries)), dtype=gemm.dtype, order="F")
    out = gemm(0.5, c.T, q_rows.T, beta=0.0, c=out, trans_a=True, overwrite_c=True)
    out = gemm(0.5, q.T, c_rows.T, beta=1.0, c=out, trans_a=True, overwrite_c=True)
    return out.T


@dataclass
class Embedding:
    rule: str
    item_vectors: np.ndarray
    context_vectors: np.ndarray | None = None
    item_bias: np.ndarray | None = None
    global_bias: float = 0.0
    user_vectors: np.ndarray | None = None
    user_bias: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ValueError(f"unknown scoring rule {self.rule!r}; expected one of {RULES}")
        if self.rule == "two-role" and self.context_vectors is None:
            raise ValueError("the two-role rule needs context vectors")

    def unit_vectors(self) -> np.ndarray:
        """Item vectors scaled to length 1 (zero vectors stay zero)."""
        norms = np.linalg.norm(self.item_vectors, axis=1, keepdims=True)
        return self.item_vectors / np.maximum(norms, 1e-12)

    # ---------------------------------------------------------------- item-item

    def score_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """(n,) float64 scores of the item pairs (a[i], b[i])."""
        if self.rule == "cosine":
            v = self.unit_vectors()
            return np.einsum("ij,ij->i", v[a], v[b]).astype(np.float64)
        q = self.item_vectors
        c = q if self.context_vectors is None else self.context_vectors
        out = np.empty(len(a), dtype=np.float64)
        step = 1 << 18
        for s in range(0, len(a), step):
            a_s, b_s = a[s:s + step], b[s:s + step]
            dot = np.einsum("ij,ij->i", q[a_s], c[b_s])
            if self.rule == "two-role":
                dot = 0.5 * (dot + np.einsum("ij,ij->i", q[b_s], c[a_s]))
            out[s:s + step] = dot
        if self.item_bias is not None:
            out += self.item_bias[a] + self.item_bias[b] + self.global_bias
        return out

    def score_all(self, queries: np.ndarray) -> np.ndarray:
        """(q, n_items) scores of every item against each query."""
        if self.rule == "cosine":
            v = self.unit_vectors()
            return v[queries] @ v.T
        q = self.item_vectors
        c = q if self.context_vectors is None else self.context_vectors
        scores = _half_sum_of_products(q, c, queries) if self.rule == "two-role" else q[queries] @ c.T
        if self.item_bias is not None:
            for row, query in enumerate(queries):  # in place, row by row: no second (q, n_items) array
                scores[row] += (self.item_bias[query] + self.item_bias) + self.global_bias
        return scores

    def item_similarity(self, queries: np.ndarray) -> np.ndarray:
        """(q, n_items) cosine of the item vectors: ``similar_items`` of a user-item model."""
        v = self.unit_vectors()
        return v[queries] @ v.T

    # ---------------------------------------------------------------- user-item

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n,) float64: u · v_i + b_u + b_i + g."""
        assert self.user_vectors is not None, "a user-item model's embedding has user vectors"
        out = np.einsum("ij,ij->i", self.user_vectors[users], self.item_vectors[items])
        if self.item_bias is not None:
            out = out + self.item_bias[items]
        if self.user_bias is not None:
            out = out + self.user_bias[users]
        return (out + self.global_bias if self.global_bias else out).astype(np.float64)

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """(u, n_items): the same over the whole catalogue."""
        assert self.user_vectors is not None, "a user-item model's embedding has user vectors"
        scores = self.user_vectors[users] @ self.item_vectors.T
        if self.item_bias is not None:
            scores = scores + self.item_bias[None, :]
        if self.user_bias is not None:
            scores = scores + self.user_bias[users][:, None]
        return scores + self.global_bias if self.global_bias else scores


if TYPE_CHECKING:
    _ModelBase = Model  # what EmbeddingModel is mixed into (before ItemModel or UserItemModel)
else:
    _ModelBase = object


class EmbeddingModel(_ModelBase):
    """The layer's side of a model class: mix it in before ``ItemModel`` or ``UserItemModel`` and implement
    ``embedding()``; scoring, ``similar_items`` and (for user-item models) ``predict`` / ``score_users`` come
    from the ``Embedding``. A model whose rule needs more (a rating scale to clip to) overrides that query."""

    has_embedding: ClassVar[bool] = True

    def embedding(self) -> Embedding:
        raise NotImplementedError

    # item-item
    def _score_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.embedding().score_pairs(a, b)

    def _score_all(self, queries: np.ndarray) -> np.ndarray:
        return self.embedding().score_all(queries)

    # user-item
    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.embedding().predict(users, items)

    def _score_users(self, users: np.ndarray) -> np.ndarray:
        return self.embedding().score_users(users)

    def _similar_scores(self, queries: np.ndarray) -> np.ndarray:
        if self.data_kind == "pairs":
            return super()._similar_scores(queries)
        scores = self.embedding().item_similarity(queries).astype(np.float32, copy=False)
        scores[:, ~self.known_items_] = np.nan
        return scores
