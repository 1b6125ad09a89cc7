"""Embeddings and the LanceDB vector index: near-duplicate issues at intake, issue memory later.

`make_embedder(settings.embeddings)` gives an `Embedder`; `VectorIndex` keeps one table of
texts with their vectors per purpose (`open_issues`, `memory`) under the data home.
"""

from bot.vectors.embedders import Embedder, HashingEmbedder, MiniLMEmbedder, make_embedder
from bot.vectors.index import Hit, VectorIndex, open_index, vectors_dir

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "Hit",
    "MiniLMEmbedder",
    "VectorIndex",
    "make_embedder",
    "open_index",
    "vectors_dir",
]
