"""CSR graphs and random walks: construction, golden walks, determinism, validity, and the node2vec
distribution against its definition (`walk_transition_probabilities`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from itemvec.errors import ConfigError
from itemvec.graph import CSRGraph, random_walks, sample_next_steps, walk_transition_probabilities
from itemvec.graph import walks as walks_module

# A fixed 5-node weighted graph for the golden walks: a square 0-1-3-2 with the diagonal 1-2 and a tail 3-4.
GOLDEN_EDGES = [(0, 1, 1.0), (0, 2, 2.0), (1, 2, 1.0), (1, 3, 3.0), (2, 3, 1.0), (3, 4, 0.5)]

# A triangle 0-1-2 with a tail 2-3-4-5 and a second path 2-6-3, 6-7: contexts with return, common-neighbour
# and outward moves.
STAT_EDGES = [(0, 1, 1.0), (0, 2, 2.0), (1, 2, 1.5), (2, 3, 1.0), (2, 6, 0.5), (3, 4, 2.0), (4, 5, 1.0),
              (3, 6, 1.0), (6, 7, 3.0)]


def graph_of(edges, n_nodes=None):
    a, b, w = zip(*edges, strict=True)
    return CSRGraph.from_pairs(np.array(a), np.array(b), np.array(w), n_nodes=n_nodes)


def edge_set(graph):
    rows = np.repeat(np.arange(graph.n_nodes), graph.degree)
    return set(zip(rows.tolist(), graph.indices.tolist(), strict=True))


def assert_valid_walks(graph, walks):
    edges = edge_set(graph)
    for walk in walks.tolist():
        end = walk.index(-1) if -1 in walk else len(walk)
        assert all(x == -1 for x in walk[end:])
        for x, y in zip(walk[:end - 1], walk[1:end], strict=True):
            assert (x, y) in edges
        if end < len(walk):  # padding only after a node without neighbours
            assert graph.degree[walk[end - 1]] == 0


# ---------------------------------------------------------------- CSR


def test_csr_from_pairs_symmetric_summed_sorted_without_self_loops():
    a = np.array([3, 0, 1, 0, 2, 2, 4], dtype=np.int32)
    b = np.array([0, 3, 0, 2, 2, 1, 1], dtype=np.int32)
    w = np.array([1.0, 2.0, 0.5, 1.5, 9.0, 1.0, 4.0], dtype=np.float32)
    g = CSRGraph.from_pairs(a, b, w, n_nodes=6)
    assert g.indptr.dtype == np.int64 and g.indices.dtype == np.int32 and g.weights.dtype == np.float32
    assert g.n_nodes == 6
    assert g.degree.tolist() == [3, 3, 2, 1, 1, 0]
    assert g.degree.dtype == np.int64
    expected = {0: {1: 0.5, 2: 1.5, 3: 3.0}, 1: {0: 0.5, 2: 1.0, 4: 4.0}, 2: {0: 1.5, 1: 1.0},
                3: {0: 3.0}, 4: {1: 4.0}, 5: {}}
    for node, neighbours in expected.items():
        idx, wt = g.neighbours(node)
        assert idx.tolist() == sorted(neighbours)  # rows ascending: binary search relies on it
        assert wt.tolist() == [neighbours[x] for x in sorted(neighbours)]
    # Symmetric: the weight of (x, y) equals the weight of (y, x).
    for x in range(g.n_nodes):
        for y, wt in zip(*g.neighbours(x), strict=True):
            idx, wy = g.neighbours(int(y))
            assert wy[np.searchsorted(idx, x)] == wt


def test_csr_defaults_and_errors():
    g = CSRGraph.from_pairs([0, 1], [1, 2])
    assert g.n_nodes == 3 and g.weights.tolist() == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ConfigError):
        CSRGraph.from_pairs([0], [1], [-1.0])
    with pytest.raises(ConfigError):
        CSRGraph.from_pairs([0], [5], n_nodes=3)
    with pytest.raises(IndexError):
        g.neighbours(3)


# ---------------------------------------------------------------- golden walks

# Checked by hand: every step follows an edge of GOLDEN_EDGES; rows 0-4 and 5-9 each start at every node once.
GOLDEN_DEEPWALK = [
    [2, 3, 1, 2, 0, 2, 0, 2], [0, 1, 3, 1, 3, 1, 0, 1], [4, 3, 2, 0, 1, 3, 1, 0], [1, 2, 1, 2, 0, 1, 3, 1],
    [3, 1, 3, 1, 3, 1, 3, 2], [0, 1, 2, 0, 1, 3, 2, 0], [1, 2, 0, 2, 0, 2, 0, 2], [4, 3, 4, 3, 1, 3, 1, 3],
    [3, 4, 3, 4, 3, 1, 3, 4], [2, 1, 3, 2, 0, 1, 3, 1],
]
# p = 0.5 (returns favoured): back-and-forth runs such as 3-4-3-4 and 1-3-1-3 dominate.
GOLDEN_NODE2VEC = [
    [2, 3, 2, 3, 2, 3, 1, 2], [0, 1, 0, 1, 0, 2, 0, 2], [4, 3, 1, 3, 1, 3, 1, 3], [1, 2, 1, 3, 1, 3, 1, 3],
    [3, 1, 3, 1, 3, 4, 3, 1], [0, 1, 3, 2, 1, 3, 1, 3], [1, 2, 3, 1, 3, 1, 3, 2], [4, 3, 1, 2, 1, 3, 1, 0],
    [3, 4, 3, 4, 3, 4, 3, 4], [2, 1, 3, 1, 3, 1, 3, 1],
]


def test_golden_walks():
    g = graph_of(GOLDEN_EDGES)
    deepwalk = random_walks(g, walks_per_node=2, walk_length=8, seed=7, threads=1)
    node2vec = random_walks(g, walks_per_node=2, walk_length=8, p=0.5, q=2.0, seed=7, threads=1)
    assert_valid_walks(g, deepwalk)
    assert_valid_walks(g, node2vec)
    assert deepwalk.tolist() == GOLDEN_DEEPWALK
    assert node2vec.tolist() == GOLDEN_NODE2VEC


# ---------------------------------------------------------------- determinism and validity


def random_graph(n_nodes=300, n_pairs=900, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_nodes - 20, n_pairs)  # the last 20 nodes stay isolated
    b = rng.integers(0, n_nodes - 20, n_pairs)
    return CSRGraph.from_pairs(a, b, rng.uniform(0.1, 3.0, n_pairs).astype(np.float32), n_nodes=n_nodes)


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (0.25, 4.0)])
def test_same_seed_same_walks_whatever_the_threads(p, q, monkeypatch):
    g = random_graph()
    one = random_walks(g, walks_per_node=3, walk_length=20, p=p, q=q, seed=3, threads=1)
    two = random_walks(g, walks_per_node=3, walk_length=20, p=p, q=q, seed=3, threads=2)
    np.testing.assert_array_equal(one, two)
    monkeypatch.setattr(walks_module, "PROGRESS_CHUNK", 100)  # rows in chunks: the same walks
    chunked = random_walks(g, walks_per_node=3, walk_length=20, p=p, q=q, seed=3, progress=True)
    np.testing.assert_array_equal(one, chunked)
    other = random_walks(g, walks_per_node=3, walk_length=20, p=p, q=q, seed=4, threads=1)
    assert (one != other).mean() > 0.5


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (4.0, 0.25)])
def test_walks_follow_edges_in_round_order(p, q, weighted):
    g = random_graph()
    walks = random_walks(g, walks_per_node=4, walk_length=15, p=p, q=q, weighted=weighted, seed=1)
    starts = np.flatnonzero(g.degree > 0)
    assert walks.shape == (4 * len(starts), 15) and walks.dtype == np.int32
    assert_valid_walks(g, walks)
    assert (walks != -1).all()  # undirected and no isolated start: a walk can always go back
    for r in range(4):  # round r holds every start node once, in a shuffled order
        column = walks[r * len(starts):(r + 1) * len(starts), 0]
        assert sorted(column.tolist()) == starts.tolist()
        assert column.tolist() != starts.tolist()


def test_padding_for_isolated_starts_and_dead_ends():
    g = CSRGraph.from_pairs([0, 1], [1, 2], n_nodes=4)
    walks = random_walks(g, walks_per_node=1, walk_length=5, start_nodes=np.array([3, 0]), seed=0)
    assert walks[0].tolist() == [3, -1, -1, -1, -1]
    assert_valid_walks(g, walks[1:])
    # A directed graph built by hand: 0 → 1 → 2, and 2 has no way on.
    directed = CSRGraph(np.array([0, 1, 2, 2], np.int64), np.array([1, 2], np.int32), np.ones(2, np.float32))
    for p, q in [(1.0, 1.0), (0.5, 2.0)]:
        walks = random_walks(directed, walks_per_node=1, walk_length=5, p=p, q=q, start_nodes=np.array([0]))
        assert walks.tolist() == [[0, 1, 2, -1, -1]]


def test_empty_and_bad_settings():
    g = graph_of(GOLDEN_EDGES)
    assert random_walks(g, walks_per_node=0).shape == (0, 40)
    assert random_walks(g, walks_per_node=1, walk_length=1).shape == (5, 1)
    with pytest.raises(ConfigError):
        random_walks(g, p=0.0)
    with pytest.raises(ConfigError):
        random_walks(g, start_nodes=np.array([5]))


# ---------------------------------------------------------------- the distribution


def test_reference_probabilities_by_hand():
    g = graph_of(STAT_EDGES)
    # From 0 at 2 with p = 0.5, q = 2: back to 0 (w 2, alpha 2), to 1 (w 1.5, a neighbour of 0: alpha 1),
    # to 3 (w 1, alpha 1/2), to 6 (w 0.5, alpha 1/2): unnormalised 4, 1.5, 0.5, 0.25.
    probs = walk_transition_probabilities(g, 0, 2, p=0.5, q=2.0)
    expected = {0: 4 / 6.25, 1: 1.5 / 6.25, 3: 0.5 / 6.25, 6: 0.25 / 6.25}
    assert probs.keys() == expected.keys()
    assert all(abs(probs[k] - expected[k]) < 1e-12 for k in expected)


def assert_matches(samples, probs):
    nodes = sorted(probs)
    counts = np.array([np.count_nonzero(samples == x) for x in nodes])
    assert counts.sum() == len(samples)  # never a node outside the row
    expected = np.array([probs[x] for x in nodes])
    assert np.abs(counts / len(samples) - expected).max() < 0.01
    assert stats.chisquare(counts, expected * len(samples)).pvalue > 1e-4


@pytest.mark.parametrize("weighted", [True, False])
@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25), (0.5, 2.0)])
@pytest.mark.parametrize("previous,current", [(0, 2), (2, 3), (3, 2), (7, 6)])
def test_second_order_frequencies_match_node2vec(previous, current, p, q, weighted):
    g = graph_of(STAT_EDGES)
    samples = sample_next_steps(g, previous, current, 200_000, p=p, q=q, weighted=weighted, seed=11)
    assert_matches(samples, walk_transition_probabilities(g, previous, current, p, q, weighted=weighted))


def test_first_order_frequencies_follow_weights():
    g = graph_of(STAT_EDGES)
    nodes, w = g.neighbours(2)
    w = w.astype(np.float64)
    probs = dict(zip(nodes.tolist(), (w / w.sum()).tolist(), strict=True))
    assert_matches(sample_next_steps(g, -1, 2, 200_000, seed=5), probs)
    # The walk kernel itself: the second column of walks started at node 2.
    walks = random_walks(g, walks_per_node=200_000, walk_length=2, start_nodes=np.array([2]), seed=5)
    assert_matches(walks[:, 1], probs)
    # And node2vec's first step is first order too.
    walks = random_walks(g, walks_per_node=200_000, walk_length=2, p=0.25, q=4.0, start_nodes=np.array([2]))
    assert_matches(walks[:, 1], probs)
