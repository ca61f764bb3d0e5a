"""Embedders: what turns texts into vectors, and the checks on what one returns."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .._errors import DimensionError, EmbeddingSpaceError, ValidationError
from ._checks import check_positive, check_vector
from ._models import EmbeddingSpace

__all__ = [
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "check_embedder",
    "embed_texts",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``model`` and ``dimension`` must match the store's space."""

    @property
    def model(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str], /) -> Sequence[Sequence[float]]: ...


class HashingEmbedder:
    """A dependency-free :class:`Embedder`: words (lowercased, stripped of punctuation) and
    word pairs hashed into ``dimension`` signed buckets, L2-normalised (the hashing trick).

    It captures shared words, not meaning; it exists so that the demo, tests and offline tools
    have vectors without a model download. Use a real model for real recall."""

    def __init__(self, dimension: int = 256) -> None:
        check_positive(dimension, "dimension", limit=16384)
        self._dimension = dimension

    @property
    def model(self) -> str:
        return f"surreal-store/hashing-v1-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def vector(self, text: str) -> list[float]:
        words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        v = [0.0] * self._dimension
        for f in features:
            h = hashlib.blake2b(f.encode(), digest_size=8).digest()
            i = int.from_bytes(h[:4], "little") % self._dimension
            v[i] += 1.0 if h[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in v))
        if norm == 0:
            v[0], norm = 1.0, 1.0
        return [x / norm for x in v]

    async def embed(self, texts: Sequence[str], /) -> list[list[float]]:
        return [self.vector(t) for t in texts]


class SentenceTransformerEmbedder:
    """A local :class:`Embedder` on sentence-transformers (``pip install
    'surreal-store[local]'``), e.g. ``all-MiniLM-L6-v2`` (384-d). Encoding runs in a worker
    thread, so the event loop stays free. ``model`` is the name recorded in the store.
    ``local_files_only`` loads the model from this machine's cache only, never from the Hub."""

    def __init__(
        self,
        name: str = "all-MiniLM-L6-v2",
        *,
        device: str | None = None,
        local_files_only: bool = False,
    ) -> None:
        try:
            from sentence_transformers import (  # type: ignore[import-not-found, unused-ignore]
                SentenceTransformer,
            )
        except ImportError as exc:
            raise ImportError(
                "SentenceTransformerEmbedder needs sentence-transformers: "
                "pip install 'surreal-store[local]'"
            ) from exc
        self._model = SentenceTransformer(name, device=device, local_files_only=local_files_only)
        self._name = name
        dim = self._model.get_sentence_embedding_dimension()
        self._dimension = int(dim) if dim is not None else len(self._model.encode(["x"])[0])

    @property
    def model(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str], /) -> list[list[float]]:
        import anyio.to_thread

        vectors = await anyio.to_thread.run_sync(
            lambda: self._model.encode(list(texts), normalize_embeddings=True)
        )
        return [list(map(float, v)) for v in vectors]


def check_embedder(embedder: Embedder, space: EmbeddingSpace) -> None:
    """Refuse an embedder that is not one, or whose model or dimension is not the space's."""
    if not isinstance(embedder, Embedder):
        raise ValidationError("embedder must have model, dimension and an async embed()")
    if (embedder.model, embedder.dimension) != (space.writing_model, space.index_dimension):
        raise EmbeddingSpaceError(
            f"the embedder is {embedder.model} ({embedder.dimension}-d) but the store's space is "
            f"{space.writing_model} ({space.index_dimension}-d)"
        )


async def embed_texts(
    embedder: Embedder, texts: Sequence[str], dimension: int
) -> list[list[float]]:
    """``embedder``'s vectors for ``texts``, each checked to be finite and ``dimension`` long."""
    vectors = list(await embedder.embed(list(texts)))
    if len(vectors) != len(texts):
        raise ValidationError(
            f"the embedder returned {len(vectors)} vectors for {len(texts)} texts"
        )
    out = [check_vector(v, "an embedder's vector") for v in vectors]
    for v in out:
        if len(v) != dimension:
            raise DimensionError(
                f"the embedder returned a {len(v)}-d vector; the space is {dimension}-d"
            )
    return out
