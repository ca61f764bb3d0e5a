"""Choosing an embedder for a store and declaring the store's space, as every door does it.

A store's own embedder is found from what its space says new vectors must come from: the
space's *writing* model and index dimension (during a re-embed, the target's), the same pair
the memory layer checks every write and recall against. The MCP server's ``--embedder auto``
and the CLI's recall both ask :func:`own_embedder`, so they always agree.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import memory
from .._executor import Executor
from .._types import check_text
from ..memory._space import check_same

__all__ = ["DoorSpace", "fits", "own_embedder"]


def fits(embedder: memory.Embedder, space: memory.EmbeddingSpace) -> bool:
    """Whether ``embedder`` writes (and queries) the vectors ``space`` takes now."""
    return (embedder.model, embedder.dimension) == (space.writing_model, space.index_dimension)


def own_embedder(
    space: memory.EmbeddingSpace | None,
    *,
    missing: Callable[[str], None] | None = None,
    download: bool = True,
) -> memory.Embedder | None:
    """The embedder of a store whose space is ``space``: the built-in hashing embedder when
    the space is its own, a sentence-transformers model when the space names one that loads
    here (the ``local`` extra; from the Hub too unless ``download`` is false), else ``None``
    (recall falls back to full text). ``missing`` hears why a named model did not load. The
    caller checks the model's dimension (:func:`fits`) before it writes."""
    if space is None:
        return None
    hashing = memory.HashingEmbedder(space.index_dimension)
    if fits(hashing, space):
        return hashing
    try:
        return memory.SentenceTransformerEmbedder(
            space.writing_model, local_files_only=not download
        )
    except Exception as exc:  # the local extra missing, or the model not found
        if missing is not None:
            missing(" ".join(str(exc).split()) or type(exc).__name__)
        return None


class DoorSpace:
    """A door's view of the store's embedding space: declared from the door's ``model`` by its
    first write that brings vectors (or checked against the one declared), and read once by a
    search before any write. A space keeps its dimension once declared (a re-embed changes
    it, and the memory layer's own check catches that)."""

    def __init__(self, model: str | None) -> None:
        self.model = None if model is None else check_text(model, "model", limit=256)
        self.writing_model: str | None = None
        """The model the door's vectors are recorded under (``None``: not declared yet)."""
        self.dimension = 0
        """The space's index dimension (0: not known yet)."""
        self.read: memory.EmbeddingSpace | None = None
        """The space as a search read it (``None``: declared by this door, or not read)."""

    async def declare(self, db: Executor, dimension: int) -> memory.EmbeddingSpace | None:
        """Declare the space for vectors of ``dimension`` from the door's model (or check the
        one declared), once; ``None`` when done before."""
        if self.writing_model is not None:
            return None
        assert self.model is not None
        space = await memory.declare_space(db, model=self.model, dimension=dimension)
        self.writing_model, self.dimension = space.writing_model, space.index_dimension
        return space

    async def known_dimension(self, db: Executor) -> int:
        """The space's dimension, read once; 0 when the store has no space yet."""
        if not self.dimension:
            space = await memory.get_space(db)
            if space is not None:
                self.dimension = space.index_dimension
                self.read = space
        return self.dimension

    def check_query(self, dimension: int) -> None:
        """Refuse a query vector of ``dimension`` from the door's model unless the space it
        read (:meth:`known_dimension`) takes it, as a write's declaration would
        (:class:`EmbeddingSpaceError`): another model's vectors compare as noise."""
        if self.model is not None and self.read is not None:
            check_same(self.read, model=self.model, dimension=dimension)
