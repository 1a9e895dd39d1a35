"""itemvec: item embeddings and recommendations from product graphs, sessions and ratings."""

__version__ = "0.1.0"
