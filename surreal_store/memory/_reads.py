"""Reading memories: by id, and by key (within a branch's history when asked)."""

from __future__ import annotations

from .. import commits as _commits
from .._api import public
from .._executor import Executor, present
from .._ids import memory_key
from .._types import RecordId, check_text
from ._models import DEFAULT_SCOPE, FIELDS, Memory

__all__ = ["by_key", "get", "latest_by_key", "visible_commits"]


_GET = f"SELECT {FIELDS} FROM ONLY $id;"
_GET_WITH_EMBEDDING = f"SELECT {FIELDS}, embedding FROM ONLY $id;"


@public
async def get(db: Executor, *, memory: str, with_embedding: bool = False) -> Memory:
    """The memory with id ``memory``; :class:`NotFoundError` if there is none."""
    key = memory_key(memory)
    return present(
        await db.query_single(
            _GET_WITH_EMBEDDING if with_embedding else _GET, Memory, id=RecordId("memory", key)
        ),
        f"no memory {key}",
    )


async def visible_commits(
    db: Executor, *, commit: str | None, branch: str | None
) -> list[RecordId] | None:
    """The commits of ``commit``'s or ``branch``'s history; ``None`` when neither is given."""
    if commit is None and branch is None:
        return None
    history = await _commits.log(db, commit=commit, branch=branch)
    return [RecordId("commit", c.id) for c in history]


def _by_key_query(*, every_key: bool, visible: bool, include_invalidated: bool) -> str:
    """Memories of one key (``$key``) or of every key in ``$scope``, newest first."""
    key = "key != NONE" if every_key else "key = $key"
    history = " AND commit IN $commits" if visible else ""
    live = "" if include_invalidated else " AND invalidated_at = NONE"
    return (
        f"SELECT {FIELDS} FROM memory WHERE scope = $scope AND {key}{history}{live} "
        "ORDER BY valid_from DESC, created_at DESC;"
    )


@public
async def by_key(
    db: Executor,
    *,
    key: str,
    scope: str = DEFAULT_SCOPE,
    commit: str | None = None,
    branch: str | None = None,
    include_invalidated: bool = False,
) -> list[Memory]:
    """Every memory under ``key`` (visible at ``commit`` / ``branch`` when given), newest
    first."""
    visible = await visible_commits(db, commit=commit, branch=branch)
    text = _by_key_query(
        every_key=False, visible=visible is not None, include_invalidated=include_invalidated
    )
    return await db.query(
        text, Memory, scope=check_text(scope, "scope"), key=check_text(key, "key"), commits=visible
    )


@public
async def latest_by_key(
    db: Executor,
    *,
    scope: str = DEFAULT_SCOPE,
    commit: str | None = None,
    branch: str | None = None,
    include_invalidated: bool = False,
) -> dict[str, Memory]:
    """The newest memory of every key in ``scope`` (within a branch's history when given)."""
    visible = await visible_commits(db, commit=commit, branch=branch)
    text = _by_key_query(
        every_key=True, visible=visible is not None, include_invalidated=include_invalidated
    )
    out: dict[str, Memory] = {}
    for m in await db.query(text, Memory, scope=check_text(scope, "scope"), commits=visible):
        if m.key is not None:
            out.setdefault(m.key, m)
    return out
