"""Item-item models: they learn from product pairs (``prepare amazon``, ``edges``, ``sessions``) and answer
``score_pairs``, ``score_all`` and ``similar_items``. Each file is one family: heuristics (popularity,
Adamic-Adar), mf (MF, MF+bias, MF on walk windows), skipgram (skip-gram, node2vec, EGES), w2v (gensim)."""
