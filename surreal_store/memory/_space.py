"""The store's embedding space: declaring it (by hand, by the first write that brings an
embedder, or when a store opens with ``SURREAL_STORE_EMBEDDING_MODEL`` and ``..._DIMENSION``),
requiring one, and moving every memory to another (re-embed).

The space is recorded in the database (``embedding_space:active``); recall's vector index is
derived beside the store (:mod:`._recall_index`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from .. import _retry
from .._api import public
from .._client import Store, on_open
from .._errors import (
    AlreadyExistsError,
    ConflictError,
    EmbeddingSpaceError,
    ValidationError,
)
from .._executor import Executor
from .._types import RecordId, check_text
from ._checks import MAX_BATCH, check_positive
from ._embedders import Embedder, check_embedder, embed_texts
from ._models import SPACE_ID, EmbeddingSpace, ReembedReport, check_index_params
from ._recall_index import refresh_index

__all__ = [
    "check_same",
    "declare_space",
    "get_space",
    "reembed",
    "required_space",
    "writing_space",
]

_GET_SPACE = "SELECT * OMIT id FROM ONLY $space;"

_DECLARE_SPACE = "CREATE ONLY $space CONTENT $content RETURN NONE;"


@public
async def get_space(db: Executor) -> EmbeddingSpace | None:
    """The store's embedding space, or ``None`` if none is declared yet."""
    return await db.query_single(_GET_SPACE, EmbeddingSpace, space=SPACE_ID)


@public
async def declare_space(
    db: Executor,
    *,
    model: str,
    dimension: int,
    index: Literal["diskann", "hnsw"] = "diskann",
    hnsw_m: int = 12,
    hnsw_efc: int = 150,
    diskann_degree: int = 64,
    diskann_l_build: int = 100,
) -> EmbeddingSpace:
    """Declare the store's embedding space, or check that it is the one already declared.

    The first declaration records the space. Later declarations must name the same model
    and dimension: anything else raises :class:`EmbeddingSpaceError` (change model with
    :func:`reembed`). ``index`` and its parameters are checked and recorded, for stores that
    predate schema 018; recall's own index is derived beside the store.
    """
    check_text(model, "model", limit=256)
    if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= 16384:
        raise ValidationError(f"dimension must be an integer from 1 to 16384, not {dimension!r}")
    if index not in ("diskann", "hnsw"):
        raise ValidationError(f"index must be 'diskann' or 'hnsw', not {index!r}")
    content = {
        "model": model,
        "dimension": dimension,
        "index_kind": index,
        "hnsw_m": hnsw_m,
        "hnsw_efc": hnsw_efc,
        "diskann_degree": diskann_degree,
        "diskann_l_build": diskann_l_build,
    }
    try:
        check_index_params(EmbeddingSpace.model_validate(content))
    except (ValueError, PydanticValidationError) as exc:
        raise ValidationError(str(exc)) from None

    async def get_or_declare() -> EmbeddingSpace:
        current = await get_space(db)
        if current is None:
            await db.execute(_DECLARE_SPACE, space=SPACE_ID, content=content)
            current = await get_space(db)
            assert current is not None
        check_same(current, model=model, dimension=dimension)
        return current

    # Another declarer may win the race: the second try compares with theirs.
    return await _retry.again(get_or_declare, on=(AlreadyExistsError, ConflictError), attempts=2)


def check_same(space: EmbeddingSpace, *, model: str, dimension: int) -> None:
    if space.status == "reembedding":
        if (space.target_model, space.target_dimension) == (model, dimension):
            return
        raise EmbeddingSpaceError(
            f"the store is being re-embedded from {space.model} ({space.dimension}-d) to "
            f"{space.target_model} ({space.target_dimension}-d), not to {model} ({dimension}-d); "
            f"finish that re-embed first"
        )
    if (space.model, space.dimension) != (model, dimension):
        raise EmbeddingSpaceError(
            f"the store's embedding space is {space.model} ({space.dimension}-d), not {model} "
            f"({dimension}-d); to change model, run memory.reembed with the new embedder"
        )


async def _declare_from_settings(store: Store) -> None:
    """The space a store's settings name (``embedding_model`` and ``embedding_dimension``),
    declared, or checked against the one declared, when the store opens."""
    s = store.settings
    if s.embedding_model is not None and s.embedding_dimension is not None:
        await declare_space(store, model=s.embedding_model, dimension=s.embedding_dimension)


on_open(_declare_from_settings)


async def required_space(db: Executor) -> EmbeddingSpace:
    """The store's embedding space; :class:`EmbeddingSpaceError` when none is declared."""
    space = await get_space(db)
    if space is None:
        raise EmbeddingSpaceError(
            "no embedding space is declared; call memory.declare_space(model=..., dimension=...)"
            " or set SURREAL_STORE_EMBEDDING_MODEL and SURREAL_STORE_EMBEDDING_DIMENSION"
        )
    return space


async def writing_space(db: Executor, embedder: Embedder) -> EmbeddingSpace:
    """The space ``embedder`` writes into: the store's, which must be the embedder's model and
    dimension; on a store with none yet, the embedder's, declared now. The first write that
    brings an embedder declares the space, as the LangChain and LangGraph doors do."""
    if not isinstance(embedder, Embedder):
        raise ValidationError("embedder must have model, dimension and an async embed()")
    space = await get_space(db)
    if space is None:
        space = await declare_space(db, model=embedder.model, dimension=embedder.dimension)
    check_embedder(embedder, space)
    return space


_BEGIN_REEMBED = """
BEGIN;
UPDATE ONLY $space SET status = 'reembedding', target_model = $model,
    target_dimension = $dimension RETURN NONE;
UPDATE memory SET embedding = NONE, embedding_stash = NONE, embedding_model = NONE
    WHERE embedding_model != NONE RETURN NONE;
COMMIT;
"""

_PENDING = """
SELECT VALUE { id: id, content: content } FROM memory
WHERE embedding_model = NONE OR embedding_model != $model LIMIT $limit;
"""

# Replayed after a lost answer, it writes the same vectors again.
_SET_EMBEDDINGS = """
BEGIN;
FOR $r IN $rows {
    UPDATE ONLY $r.id SET embedding = $r.embedding, embedding_model = $model
        WHERE invalidated_at = NONE RETURN NONE;
    UPDATE ONLY $r.id SET embedding_stash = $r.embedding, embedding_model = $model
        WHERE invalidated_at != NONE RETURN NONE;
};
COMMIT;
"""

# Only while re-embedding: a replay after it finished would copy the (cleared) target.
_FINISH_REEMBED = """
UPDATE ONLY $space SET model = target_model, dimension = target_dimension, status = 'ready',
    target_model = NONE, target_dimension = NONE WHERE status = 'reembedding' RETURN NONE;
"""


class _Pending(BaseModel):
    id: RecordId
    content: str


@public
async def reembed(
    db: Executor,
    *,
    embedder: Embedder,
    batch_size: int = 256,
    progress: Callable[[int], Awaitable[None] | None] | None = None,
) -> ReembedReport:
    """Move every memory to ``embedder``'s space: embed the memories that have no vector from
    its model, in batches, and make its space the store's.

    Changing model clears the old vectors and the recall index follows (vector
    recall raises :class:`StoreStateError` until the re-embed finishes; full-text recall keeps
    working). The work is resumable: run ``reembed`` again with the same embedder after an
    interruption and it continues where it stopped. With the store's own model it embeds the
    memories stored without a vector. ``progress(done)`` is called after each batch.
    """
    if not isinstance(embedder, Embedder):
        raise ValidationError("embedder must have model, dimension and an async embed()")
    check_positive(batch_size, "batch_size", limit=MAX_BATCH)
    model, dimension = check_text(embedder.model, "model", limit=256), embedder.dimension
    check_positive(dimension, "dimension", limit=16384)
    space = await get_space(db)
    resumed = False
    if space is None:
        space = await declare_space(db, model=model, dimension=dimension)
    elif space.status == "reembedding":
        check_same(space, model=model, dimension=dimension)
        resumed = True
    elif (space.model, space.dimension) != (model, dimension):
        target = space.model_copy(
            update={"status": "reembedding", "target_model": model, "target_dimension": dimension}
        )
        await db.execute(_BEGIN_REEMBED, space=SPACE_ID, model=model, dimension=dimension)
        space = target
    done = 0
    while True:
        batch = await db.query(_PENDING, _Pending, model=model, limit=batch_size)
        if not batch:
            break
        vectors = await embed_texts(embedder, [p.content for p in batch], dimension)
        rows = [{"id": p.id, "embedding": v} for p, v in zip(batch, vectors, strict=True)]
        await db.execute(_SET_EMBEDDINGS, rows=rows, model=model, idempotent=True)
        done += len(batch)
        if progress is not None:
            maybe = progress(done)
            if maybe is not None:
                await maybe
    current = await get_space(db)
    assert current is not None
    if current.status == "reembedding":
        await db.execute(_FINISH_REEMBED, space=SPACE_ID, idempotent=True)
    if done:
        await refresh_index(db)
    current = await get_space(db)
    assert current is not None
    return ReembedReport(space=current, embedded=done, resumed=resumed)
