"""The embedding space of a store and the vector index defined from it.

Shared by the memory module (which declares the space) and the migrator (whose drift check
rebuilds the run-time index from the recorded space, so the index counts as schema, not drift).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ._types import RecordId

__all__ = ["INDEX_NAME", "SPACE_ID", "EmbeddingSpace", "index_ddl", "remove_index_ddl"]

SPACE_ID = RecordId("embedding_space", "active")
INDEX_NAME = "memory_embedding"


class EmbeddingSpace(BaseModel):
    """The model and dimension every stored embedding belongs to, and the index's parameters.

    ``indexed`` vectors were in the index's graph when it was last built (``built_at``);
    ``unindexed`` were written since, and are compared with a query one by one.
    ``status`` is ``"reembedding"`` while :func:`surreal_store.memory.reembed` moves the store to
    ``target_model`` / ``target_dimension``.
    """

    model_config = ConfigDict(frozen=True)

    model: str
    dimension: int
    metric: Literal["cosine"] = "cosine"
    hnsw_m: int
    hnsw_efc: int
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


def index_ddl(space: EmbeddingSpace, *, if_not_exists: bool = False) -> str:
    """The HNSW index for ``space``.

    DDL takes no parameters here (the grammar wants integer literals), so the values are
    formatted in; they are ints, checked by type and range before they get here."""
    for name, value, lo, hi in (
        ("dimension", space.index_dimension, 1, 16384),
        ("hnsw_m", space.hnsw_m, 4, 128),
        ("hnsw_efc", space.hnsw_efc, 10, 2000),
    ):
        if type(value) is not int or not lo <= value <= hi:
            raise ValueError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    mode = "IF NOT EXISTS" if if_not_exists else "OVERWRITE"
    return (
        f"DEFINE INDEX {mode} {INDEX_NAME} ON memory FIELDS embedding HNSW "
        f"DIMENSION {space.index_dimension} DIST COSINE TYPE F32 "
        f"EFC {space.hnsw_efc} M {space.hnsw_m};"
    )


def remove_index_ddl() -> str:
    return f"REMOVE INDEX IF EXISTS {INDEX_NAME} ON memory;"
