"""Graphs of items (CSR arrays) and the random walks DeepWalk and node2vec train on."""

from itemvec.graph.csr import CSRGraph
from itemvec.graph.walks import random_walks, sample_next_steps, walk_transition_probabilities

__all__ = ["CSRGraph", "random_walks", "sample_next_steps", "walk_transition_probabilities"]
