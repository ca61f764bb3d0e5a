"""The embedding space of a store and the vector index defined from it.

Shared by the memory module (which declares the space) and the migrator (whose drift check
rebuilds the run-time index from the recorded space, so the index counts as schema, not drift).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict

from ._types import Model, RecordId

__all__ = ["INDEX_NAME", "SPACE_ID", "EmbeddingSpace", "index_ddl", "remove_index_ddl"]

SPACE_ID = RecordId("embedding_space", "active")
INDEX_NAME = "memory_embedding"


class EmbeddingSpace(Model):
    """The model and dimension every stored embedding belongs to, and the index's parameters.

    ``index_kind`` is the vector index: ``"diskann"`` (the default for new spaces) or
    ``"hnsw"`` (spaces declared before schema 009 keep it); only its own parameters apply.

    ``indexed`` vectors were in the index's graph when it was last built (``built_at``);
    ``unindexed`` were written since, and are compared with a query one by one.
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


def index_ddl(space: EmbeddingSpace, *, if_not_exists: bool = False) -> str:
    """The vector index for ``space``.

    DDL takes no parameters here (the grammar wants integer literals), so the values are
    formatted in; they are ints, checked by type and range before they get here."""
    checks = [("dimension", space.index_dimension, 1, 16384)]
    if space.index_kind == "hnsw":
        checks += [("hnsw_m", space.hnsw_m, 4, 128), ("hnsw_efc", space.hnsw_efc, 10, 2000)]
    elif space.index_kind == "diskann":
        checks += [
            ("diskann_degree", space.diskann_degree, 8, 256),
            ("diskann_l_build", space.diskann_l_build, 16, 2000),
        ]
    else:  # pragma: no cover - the model's Literal allows nothing else
        raise ValueError(f"unknown index kind {space.index_kind!r}")
    for name, value, lo, hi in checks:
        if type(value) is not int or not lo <= value <= hi:
            raise ValueError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    mode = "IF NOT EXISTS" if if_not_exists else "OVERWRITE"
    head = f"DEFINE INDEX {mode} {INDEX_NAME} ON memory FIELDS embedding"
    if space.index_kind == "hnsw":
        return (
            f"{head} HNSW DIMENSION {space.index_dimension} DIST COSINE TYPE F32 "
            f"EFC {space.hnsw_efc} M {space.hnsw_m};"
        )
    return (
        f"{head} DISKANN DIMENSION {space.index_dimension} DIST COSINE TYPE F32 "
        f"DEGREE {space.diskann_degree} L_BUILD {space.diskann_l_build};"
    )


def remove_index_ddl() -> str:
    return f"REMOVE INDEX IF EXISTS {INDEX_NAME} ON memory;"
