"""What the memory layer reads and writes: the models, a memory's id and its columns."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import cbor2
from pydantic import BeforeValidator, ConfigDict, Field

from .._api import public
from .._types import Key, Model, RecordId

__all__ = [
    "DEFAULT_SCOPE",
    "FIELDS",
    "SPACE_ID",
    "EmbeddingSpace",
    "ForgetReceipt",
    "IndexStatus",
    "Memory",
    "NewMemory",
    "RecallHit",
    "ReembedReport",
    "RememberManyResult",
    "check_index_params",
    "memory_id",
]

DEFAULT_SCOPE: Final = "default"

# The columns a memory is read with (recall, get; the benchmarks' raw queries read the same).
FIELDS: Final = (
    "id, scope, agent, key, kind, content, content_hash, tags, metadata, commit, "
    "embedding_model, created_at, valid_from, valid_until, invalidated_at, invalidated_reason, "
    "invalidated_by, invalidated_causes"
)


SPACE_ID = RecordId("embedding_space", "active")


class EmbeddingSpace(Model):
    """The model and dimension every stored embedding belongs to, and the index's parameters.

    ``index_kind`` and its parameters are recorded as declared; recall's index, derived beside
    the store, does not use them. ``indexed`` and ``unindexed`` are kept but not read.
    ``status`` is ``"reembedding"`` while :func:`surreal_store.memory.reembed` moves the store to
    ``target_model`` / ``target_dimension``.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    dimension: int
    metric: Literal["cosine"] = "cosine"
    index_kind: Literal["diskann", "hnsw"] = "hnsw"
    hnsw_m: int = 12
    hnsw_efc: int = 150
    diskann_degree: int = 64
    diskann_l_build: int = 100
    status: Literal["ready", "reembedding"] = "ready"
    target_model: str | None = None
    target_dimension: int | None = None
    indexed: int = 0
    unindexed: int = 0
    built_at: dt.datetime | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None

    @property
    def index_dimension(self) -> int:
        """The dimension the vector index is built for now (the target's, during a re-embed)."""
        if self.status == "reembedding" and self.target_dimension is not None:
            return self.target_dimension
        return self.dimension

    @property
    def writing_model(self) -> str:
        """The model new embeddings must come from now."""
        if self.status == "reembedding" and self.target_model is not None:
            return self.target_model
        return self.model


def check_index_params(space: EmbeddingSpace) -> None:
    """Refuse index parameters out of their recorded ranges (before the database would)."""
    checks = [
        ("hnsw_m", space.hnsw_m, 4, 128),
        ("hnsw_efc", space.hnsw_efc, 10, 2000),
        ("diskann_degree", space.diskann_degree, 8, 256),
        ("diskann_l_build", space.diskann_l_build, 16, 2000),
    ]
    for name, value, lo, hi in checks:
        if type(value) is not int or not lo <= value <= hi:
            raise ValueError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")


@public
def memory_id(scope: str, content: str) -> str:
    """The id of ``content`` in ``scope``: SHA-256 over the scope's length, the scope and the
    content, so ``("ab", "c")`` and ``("a", "bc")`` differ. The database checks it too."""
    return hashlib.sha256(f"{len(scope)}:{scope}{content}".encode()).hexdigest()


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


def vector_of(value: Any) -> Any:
    """A stored vector as a list of floats: the database keeps it as CBOR bytes (schema 019)."""
    return cbor2.loads(value) if isinstance(value, bytes) else value


class Memory(Model):
    """A stored memory. ``id`` is the 64-hex key of ``memory:<id>``; ``embedding`` is only
    filled when asked for (``get(..., with_embedding=True)``)."""

    model_config = ConfigDict(frozen=True)

    id: Key
    scope: str
    agent: Key | None = None
    key: str | None = None
    kind: str
    content: str
    content_hash: str
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    commit: Key | None = None
    embedding_model: str | None = None
    embedding: Annotated[list[float] | None, BeforeValidator(vector_of)] = None
    created_at: dt.datetime
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    invalidated_at: dt.datetime | None = None
    invalidated_reason: str | None = None
    invalidated_by: str | None = None
    # Memories written before schema 013 and never hidden have no such field (NONE).
    invalidated_causes: Annotated[list[RecordId], BeforeValidator(_none_is_empty)] = Field(
        default_factory=list
    )
    """What keeps it hidden: distrusted sources and memories upstream of it (or itself),
    each recorded in ``source_invalidation``. Empty exactly when it is visible."""

    @property
    def invalidated(self) -> bool:
        return self.invalidated_at is not None


class NewMemory(Model):
    """One memory to store with :func:`remember_many`."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    content: str
    scope: str = DEFAULT_SCOPE
    key: str | None = None
    kind: str = "note"
    tags: Sequence[str] = ()
    metadata: Mapping[str, Any] | None = None
    embedding: Sequence[float] | None = None
    commit: str | None = None
    agent: str | None = None
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


class RecallHit(Model):
    """One recalled memory with its fused ``score`` and the score of each signal.

    ``score`` is the cosine similarity in vector mode, the BM25 score in full-text mode and the
    reciprocal-rank-fusion score in hybrid mode. Ranks are 1-based within each signal's list.
    """

    model_config = ConfigDict(frozen=True)

    memory: Memory
    score: float
    vector_score: float | None = None
    text_score: float | None = None
    vector_rank: int | None = None
    text_rank: int | None = None


class RememberManyResult(Model):
    """The ids of the memories, in input order, and how many of them were new."""

    model_config = ConfigDict(frozen=True)

    ids: list[str]
    inserted: int


class ForgetReceipt(Model):
    """What :func:`forget` removed (or, with ``purge=False``, invalidated)."""

    model_config = ConfigDict(frozen=True)

    memories: list[str]
    edges: list[str]
    purged: bool


class ReembedReport(Model):
    """The outcome of :func:`reembed`: the space now in force and how many memories moved."""

    model_config = ConfigDict(frozen=True)

    space: EmbeddingSpace
    embedded: int
    resumed: bool


# -- identity and input checks ---------------------------------------------------------------


@dataclass(frozen=True)
class IndexStatus:
    """What a store's recall index reflects (:func:`surreal_store.memory.index_status`)."""

    origin: Literal["built", "loaded", "new"]
    """How it came to be in this process: built from the table, loaded from disk, or new
    (an empty table)."""
    memories: int
    """Memories it holds (live and invalidated)."""
    vectors: int
    """Of those, with a vector."""
    versionstamp: int
    """The last change of the memory table it reflects."""
    caught_up: int
    """Changes applied from the feed since it was built or loaded."""
    path: Path | None
    """The folder it is saved in (``None``: kept in memory only: ``mem://``, a server, or a
    session without the owner's rights, which may load what the owner saved but never
    writes beside the store)."""
    build_s: float
    """Seconds its build or load took."""
