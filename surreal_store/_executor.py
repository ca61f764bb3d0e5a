"""What domain functions run their queries on: a store, or anything that speaks like one."""

from __future__ import annotations

from types import EllipsisType
from typing import Any, Protocol, TypeVar

__all__ = ["Executor"]

T = TypeVar("T")


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
