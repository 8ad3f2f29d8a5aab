"""Stage 2: retrieval. Clinical text -> ranked candidate codes (dense + lexical)."""

from retrieval._embedder import Embedder, get_embedder

__all__ = ["Embedder", "get_embedder"]
