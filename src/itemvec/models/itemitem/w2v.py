"""`w2v-gensim`: gensim's Word2Vec on the same walks (or sessions) as `skipgram`, the reference study's
implementation 5. Skip-gram by default; ``architecture = "cbow"`` gives CBOW, which the reference study
used without saying so. Trained from a corpus file (gensim's fastest multi-worker path).
"""

from __future__ import annotations

import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import numpy as np
from numba import njit

from itemvec.config import (
    Choices,
    Dim,
    Epochs,
    Negatives,
    Range,
    Rate,
    Score,
    Seed,
    Source,
    Subsample,
    WalkBias,
    WalkLength,
    WalksPerNode,
    Window,
)
from itemvec.models.base import ItemModel, TrainingData
from itemvec.models.embedding import Embedding, EmbeddingModel
from itemvec.train import Trainer
from itemvec.tune import IntRange, LogUniform, OneOf, Space


@njit(cache=True)
def _format_sequences(tokens, offsets):
    """Space-separated decimal ids, one sequence per line, as bytes (negative tokens dropped)."""
    out = np.empty(len(tokens) * 12 + len(offsets), dtype=np.uint8)
    n = 0
    digits = np.empty(20, dtype=np.uint8)
    for s in range(len(offsets) - 1):
        first = True
        for pos in range(offsets[s], offsets[s + 1]):
            value = tokens[pos]
            if value < 0:
                continue
            if not first:
                out[n] = 32
                n += 1
            first = False
            k = 0
            while True:
                digits[k] = 48 + value % 10
                value //= 10
                k += 1
                if value == 0:
                    break
            for d in range(k - 1, -1, -1):
                out[n] = digits[d]
                n += 1
        out[n] = 10
        n += 1
    return out[:n]


def _stable_hash(text: str) -> int:
    """gensim seeds each vector from hash(word + seed); Python's str hash changes per process."""
    return zlib.crc32(text.encode())


class GensimWord2Vec(EmbeddingModel, ItemModel):
    name = "w2v-gensim"
    search_space: ClassVar[dict[str, Space]] = {"lr": LogUniform(0.005, 0.1), "epochs": IntRange(1, 5),
                                               "dim": OneOf((64, 128)), "window": IntRange(2, 10),
                                               "walks_per_node": IntRange(2, 10), "negatives": IntRange(2, 10)}

    @dataclass(frozen=True)
    class Config:
        architecture: Annotated[str, Choices(("skipgram", "cbow"))] = "skipgram"
        dim: Dim = 128
        window: Window = 5
        negatives: Negatives = 5
        subsample: Subsample = 1e-3
        lr: Rate = 0.025
        epochs: Epochs = 1
        source: Source = "walks"
        walks_per_node: WalksPerNode = 10
        walk_length: WalkLength = 40
        p: WalkBias = 1.0
        q: WalkBias = 1.0
        weighted: bool = True
        threads: Annotated[int, Range(1, 256)] = 2  # gensim workers
        score: Score = "dot"  # ½(in_a·out_b + in_b·out_a) with gensim's syn1neg as output vectors, or "cosine"
        seed: Seed = 0

    def _fit(self, data: TrainingData, trainer: Trainer) -> None:
        from itemvec.models.itemitem.skipgram import sequences_for

        tokens, offsets, self.sequence_info_ = sequences_for(data, self.config, data.n_items, seed=self.config.seed,
                                                             threads=self.config.threads)
        # gensim trains (its own loop, rate and threads); the trainer's part is the learning curve.
        self.fit_sequences(data, tokens, offsets, evaluate=trainer.evaluate_model)

    def fit_sequences(self, data: TrainingData, tokens: np.ndarray, offsets: np.ndarray, *,
                      evaluate=None) -> GensimWord2Vec:
        """Train on given sequences (flat int32 tokens, -1 ignored, split at int64 offsets)."""
        from gensim.models import Word2Vec
        from gensim.models.callbacks import CallbackAny2Vec

        c = self.config
        n = data.n_items
        model_ref = self

        class History(CallbackAny2Vec):
            def __init__(self):
                self.epoch = 0

            def on_epoch_end(self, model):
                self.epoch += 1
                if evaluate is not None:
                    model_ref._take_vectors(model, n)
                    model_ref.history_.append({"step": self.epoch, "epoch": float(self.epoch), "loss": None,
                                               "val_auc": evaluate(model_ref), "seconds": None})

        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "walks.txt"
            corpus.write_bytes(_format_sequences(tokens, offsets).tobytes())
            self.train_started_ = time.perf_counter()  # gensim's own training time, without the corpus file
            model = Word2Vec(corpus_file=str(corpus), vector_size=c.dim, window=c.window, negative=c.negatives,
                             sg=1 if c.architecture == "skipgram" else 0, epochs=c.epochs, workers=c.threads,
                             min_count=1, sample=c.subsample, alpha=c.lr, seed=c.seed, hashfxn=_stable_hash,
                             callbacks=[History()])
        self._take_vectors(model, n)
        return self

    def _take_vectors(self, model, n: int) -> None:
        keys = np.array([int(k) for k in model.wv.index_to_key], dtype=np.int64)
        vectors = np.zeros((n, model.wv.vector_size), dtype=np.float32)
        vectors[keys] = model.wv.vectors
        self.item_vectors_ = vectors
        output = np.zeros_like(vectors)
        output[keys] = model.syn1neg
        self.context_vectors_ = output
        self.known_items_ = np.zeros(n, dtype=bool)
        self.known_items_[keys] = True

    def embedding(self) -> Embedding:
        return Embedding(rule="two-role" if self.config.score == "dot" else "cosine", item_vectors=self.item_vectors_,
                         context_vectors=self.context_vectors_)

    def item_vectors(self) -> np.ndarray:
        return self.item_vectors_

    def _state(self):
        return {"item_vectors_": self.item_vectors_, "context_vectors_": self.context_vectors_}

    def _set_state(self, state):
        self.item_vectors_ = state["item_vectors_"]
        self.context_vectors_ = state["context_vectors_"]
