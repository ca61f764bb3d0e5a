"""The vector index's graph: when it needs rebuilding, and rebuilding it."""

from __future__ import annotations

from typing import Final

from .._api import public
from .._errors import EmbeddingSpaceError
from .._executor import Executor
from .._space import INDEX_NAME, SPACE_ID, EmbeddingSpace, get_space

__all__ = ["needs_rebuild", "rebuild_index"]

_REBUILD_MIN: Final = 1000

_REBUILD = f"""
REBUILD INDEX IF EXISTS {INDEX_NAME} ON memory;
UPDATE ONLY $space SET indexed = count(SELECT id FROM memory WHERE embedding != NONE),
    unindexed = 0, built_at = time::now() RETURN NONE;
"""


# The engine (3.2.4 on surrealkv) can stop answering during a rebuild over 100,000 384-d
# vectors (seen twice; at 40,000 it takes 36 s and completes), so automatic rebuilds stay
# below that; past it, rebuild_index is the caller's explicit choice.
_AUTO_REBUILD_MAX: Final = 50_000


async def needs_rebuild(db: Executor) -> bool:
    """Whether the vectors written since the index's last build outnumber a quarter of those
    in it (a bulk load or an import then rebuilds it). Never for an agent's session: a
    rebuild is a definition, the owner's to run; its writes only count toward the next one."""
    signin = getattr(db, "signed_in_as", None)
    if signin is not None and signin.kind == "agent":
        return False
    space = await get_space(db)
    if space is None or space.indexed + space.unindexed > _AUTO_REBUILD_MAX:
        return False
    return space.unindexed >= max(_REBUILD_MIN, space.indexed // 4)


@public
async def rebuild_index(db: Executor, *, timeout_s: float | None = None) -> EmbeddingSpace:
    """Rebuild the vector index's graph over every stored vector and return the space.

    Vectors written after the graph was built are found by comparing the query with each of
    them (exact, but the cost grows with their number), so after a bulk load the graph should
    be rebuilt; :func:`remember_many` does this itself. Takes about as long as indexing every
    vector once (superlinear in their number: 36 s for 40,000 384-d vectors here); embedded
    writes wait for it. ``timeout_s``: ``None`` waits as long as it takes. On SurrealDB 3.2.4
    a rebuild over 100,000 vectors can hang the engine; set a timeout there.
    """
    await db.execute(_REBUILD, space=SPACE_ID, timeout_s=timeout_s)
    space = await get_space(db)
    if space is None:
        raise EmbeddingSpaceError("no embedding space is declared")
    return space
