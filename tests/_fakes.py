"""The tests' one embedder: deterministic vectors with no model to download.

:class:`FakeEmbedder` is at once a surreal_store ``Embedder`` (``model``, ``dimension``,
``async embed``) and a LangChain ``Embeddings`` (``embed_documents``, ``embed_query``), so the
memory layer, the LangChain and the LangGraph doors and LangGraph's ported tests share it.
Texts that share words (``by="words"``) or characters (``by="chars"``) get close vectors; a
``table`` gives chosen vectors for chosen texts (brute-force comparisons)."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings as _Base
else:
    try:
        from langchain_core.embeddings import Embeddings as _Base
    except ImportError:  # the core install: only the Embedder side is used
        _Base = object

__all__ = ["FakeEmbedder"]


class FakeEmbedder(_Base):
    """Deterministic vectors of ``dimension`` numbers, named ``model``.

    - ``by="words"``: each word (lowercased, split at spaces) hashed with the model's name into
      one bucket, L2-normalised: texts sharing words are close, and another model gives other
      vectors for the same text.
    - ``by="chars"``: character counts projected at random, seeded per character (LangGraph's
      CharacterEmbeddings, except that a text's vector does not depend on what was embedded
      before).
    - ``table``: the vector for a text found in it, whatever ``by`` says.

    ``calls`` counts ``embed`` calls; with ``fail_after`` set, the calls after that many raise
    (an embedding service going away)."""

    def __init__(
        self,
        model: str = "words-v1",
        dimension: int = 16,
        *,
        by: Literal["words", "chars"] = "words",
        table: Mapping[str, list[float]] | None = None,
    ) -> None:
        self._model, self._dimension, self._by = model, dimension, by
        self._table = dict(table or {})
        self.calls = 0
        self.fail_after: int | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def dims(self) -> int:
        """The dimension under LangGraph's name for it."""
        return self._dimension

    def vector(self, text: str) -> list[float]:
        if text in self._table:
            return list(self._table[text])
        return self._chars(text) if self._by == "chars" else self._words(text)

    async def embed(self, texts: Sequence[str], /) -> list[list[float]]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("embedding service unavailable")
        return [self.vector(t) for t in texts]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.vector(text)

    def _words(self, text: str) -> list[float]:
        v = [0.0] * self._dimension
        for word in text.lower().split():
            h = hashlib.sha256(f"{self._model}:{word}".encode()).digest()
            v[h[0] % self._dimension] += 1.0 + h[1] / 255
        norm = math.sqrt(sum(x * x for x in v))
        return [x / norm for x in v] if norm else [1.0] + [0.0] * (self._dimension - 1)

    def _chars(self, text: str) -> list[float]:
        v = [0.0] * self._dimension
        for char, n in Counter(text).items():
            rng = random.Random(f"{char}/{self._dimension}")
            for i in range(self._dimension):
                v[i] += n * rng.gauss(0, 1)
        norm = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / norm for x in v]
