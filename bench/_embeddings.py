"""Embeddings for the framework benchmarks (LangGraph, LangChain)."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from ._data import clustered, texts

__all__ = ["Lookup", "corpus_and_queries"]


class Lookup(Embeddings):
    """Precomputed vectors by text: embedding costs nothing and is the same for both sides.
    Natively async, as real providers are (LangChain's default runs the sync one in a thread)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)


def corpus_and_queries(n: int, dim: int) -> tuple[list[str], list[str], dict[str, list[float]]]:
    """``n`` texts and 200 queries, each with a clustered vector (the queries' from another
    seed), and the lookup from text to vector."""
    corpus = texts(n)
    queries = [f"query {i}" for i in range(200)]
    lookup = {t: v.tolist() for t, v in zip(corpus, clustered(n, dim=dim), strict=True)}
    qvectors = clustered(len(queries), dim=dim, seed=1)
    lookup.update({q: v.tolist() for q, v in zip(queries, qvectors, strict=True)})
    return corpus, queries, lookup
