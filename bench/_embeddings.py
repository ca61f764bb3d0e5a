"""Embeddings for the framework benchmarks (LangGraph, LangChain)."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

__all__ = ["Lookup"]


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
