"""The embedding space of a store, and declaring it.

Below the client (which declares the space named by the settings on open) and the memory module
(which re-exports ``declare_space`` and ``get_space``). Since schema 018 the engine holds no
vector index: recall's index is derived beside the store (``memory._derived``).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict
from pydantic import ValidationError as PydanticValidationError

from . import _retry
from ._api import public
from ._errors import AlreadyExistsError, ConflictError, EmbeddingSpaceError, ValidationError
from ._executor import Executor
from ._types import Model, RecordId, check_text

__all__ = [
    "SPACE_ID",
    "EmbeddingSpace",
    "check_index_params",
    "check_same",
    "declare_space",
    "get_space",
]

SPACE_ID = RecordId("embedding_space", "active")


class EmbeddingSpace(Model):
    """The model and dimension every stored embedding belongs to, and the index's parameters.

    ``index_kind`` and its parameters record what was asked of the engine's vector index
    before schema 018 (which replaced it with the derived recall index); ``indexed`` and
    ``unindexed`` are its old counters, no longer read.
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


# -- declaring it ----------------------------------------------------------------------------

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
