"""Reciprocal-rank fusion: one ranking from several, by rank alone."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Final, TypeVar

__all__ = ["RRF_K", "rrf"]

K = TypeVar("K", bound=Hashable)

# The constant of the original paper: it damps the weight of the first few ranks.
RRF_K: Final = 60


def rrf(*rankings: Iterable[K]) -> dict[K, float]:
    """Each key of ``rankings`` (best first) scored the sum of ``1 / (RRF_K + rank)`` over
    the rankings it is in (ranks from 1)."""
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return scores
