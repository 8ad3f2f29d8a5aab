"""A bounded memo for pure functions of a hashable key, shared by the stages that re-match the same texts.

Retrieval re-matches the same code descriptions and queries many times a note, and relatedness re-stems the
same words; both keep the results in a plain dict that is emptied when it reaches its size, so a long-running
process (the copilot, a batch worker) holds a bounded amount of memory. Not a cache with eviction order: the
keys are texts seen again within a note or a batch, and starting over is cheap.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["remember"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` (emptying ``memo`` first if it holds ``limit`` entries) and return it.

    Raises ValueError if ``limit`` is not positive.
    """
    if limit <= 0:
        raise ValueError(f"memo limit must be positive, got {limit}")
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value
