"""The last step of ``build_pairs`` in one pass (numba): sorted (pair, relation) keys to weighted pairs.

After the sort, the numpy path made a dozen passes over the 30 million keys of a Books-size catalogue (the
distinct keys, their relation and pair, the weighted ones, the pair starts, ``add.reduceat`` of the weights,
``bitwise_or.reduceat`` of the relation bits): about 4.5 s. Here two passes over the sorted keys do it, the
first counting, the second writing. A pair's weight is summed as ``np.add.reduceat`` sums a segment (its
first weight, plus numpy's pairwise sum of the rest), so the float32 weights are the same bits;
``tests/test_prepare.py`` checks that against the numpy path. The kernels release the GIL (the products
table is built by a thread meanwhile). numba is loaded only by a prepare.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _reduceat_sum(values, n):
    """``np.add.reduceat(values[:n], [0])[0]``: the first value plus numpy's pairwise sum of the rest (eight
    accumulators from eight values on; ``n`` is at most 16 here, one value per relation type)."""
    if n == 1:
        return values[0]
    rest = n - 1
    if rest < 8:
        total = -0.0
        for i in range(1, n):
            total += values[i]
        return values[0] + total
    acc = np.empty(8, np.float64)
    for j in range(8):
        acc[j] = values[1 + j]
    i = 8
    while i < rest - rest % 8:
        for j in range(8):
            acc[j] += values[1 + i + j]
        i += 8
    total = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
    while i < rest:
        total += values[1 + i]
        i += 1
    return values[0] + total


@njit(cache=True, nogil=True)
def merge_sorted(combo, n_types, type_weight, n_items, unique_per_relation, item_a, item_b, weight, relations,
                 write):
    """``combo``: sorted ``pair key * n_types + relation``. Returns the number of pairs with a weighted
    relation; with ``write`` false it counts each relation's distinct keys into ``unique_per_relation`` (the
    output arrays may be empty), with ``write`` true it fills the arrays it counted: ends, the sum of the
    pair's relations' weights (float32) and the bits of those relations."""
    values = np.empty(64, np.float64)
    n_values = 0
    p = -1
    last_key = -1
    for i in range(len(combo)):
        c = combo[i]
        if i > 0 and c == combo[i - 1]:
            continue
        relation = c % n_types
        if not write:
            unique_per_relation[relation] += 1
        w = type_weight[relation]
        if not w > 0:
            continue
        key = c // n_types
        if key != last_key:
            if write and p >= 0:
                weight[p] = np.float32(_reduceat_sum(values, n_values))
            p += 1
            last_key = key
            n_values = 0
            if write:
                item_a[p] = key // n_items
                item_b[p] = key % n_items
                relations[p] = np.uint16(1) << np.uint16(relation)
        elif write:
            relations[p] |= np.uint16(1) << np.uint16(relation)
        if write:
            values[n_values] = w
            n_values += 1
    if write and p >= 0:
        weight[p] = np.float32(_reduceat_sum(values, n_values))
    return p + 1
