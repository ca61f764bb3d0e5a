"""What domain functions run their queries on (a store, or anything that speaks like one), and
the small interface a store hands its migrator."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio

from ._errors import NotFoundError

if TYPE_CHECKING:
    from ._config import Settings

__all__ = ["Executor", "MigrationTarget", "SchemaAccess", "ScratchStore", "present"]

T = TypeVar("T")


def present(found: T | None, missing: str) -> T:
    """What a ``query_single`` found, or :class:`NotFoundError` saying ``missing`` (``"no
    agent 'x'"``) when it found nothing: every getter's answer to an absent record."""
    if found is None:
        raise NotFoundError(missing)
    return found


class Executor(Protocol):
    """What domain functions need: a store, or anything that speaks like one."""

    async def query(
        self, text: str, into: type[T], /, *, idempotent: bool = False, **params: Any
    ) -> list[T]: ...

    async def query_single(
        self, text: str, into: type[T], /, *, idempotent: bool = False, **params: Any
    ) -> T | None: ...

    async def query_required_single(
        self, text: str, into: type[T], /, *, idempotent: bool = False, **params: Any
    ) -> T: ...

    async def execute(
        self,
        text: str,
        /,
        *,
        idempotent: bool = False,
        timeout_s: float | EllipsisType | None = ...,
        **params: Any,
    ) -> list[Any]: ...


class ScratchStore(Executor, Protocol):
    """An empty in-memory store with the same settings, for building expected definitions."""

    @property
    def engine_version(self) -> str: ...


class SchemaAccess(Protocol):
    """What a migrator needs of a store beyond its queries."""

    @property
    def lock(self) -> anyio.Lock:
        """Held by one migrator of this store at a time."""
        ...

    async def renew(self, text: str, into: type[T], /, **params: Any) -> list[T]:
        """A write that is not queued behind the store's own write lock (which a migration
        holds while a long statement runs): only for the schema lock's record, which no
        serialised write touches meanwhile. Retried as idempotent."""
        ...

    def scratch(self) -> AbstractAsyncContextManager[ScratchStore]:
        """An empty in-memory store with the same settings, closed on exit."""
        ...


class MigrationTarget(Executor, Protocol):
    """A store as the migrator sees it."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine_version(self) -> str: ...

    def schema_access(self) -> SchemaAccess: ...
