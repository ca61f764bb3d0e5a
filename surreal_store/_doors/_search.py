"""Search as the doors do it: the memory layer's recall, narrowed to the memories of one
collection (a tag), and one limit on how many results a search asks for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .. import memory
from .._errors import ValidationError
from .._executor import Executor

__all__ = ["AGENT_MAX_K", "MAX_K", "check_k", "tagged_recall"]

MAX_K: Final = 1000
"""The most results one search asks for: :func:`surreal_store.memory.recall`'s largest ``k``
(a test keeps the two equal)."""
AGENT_MAX_K: Final = 100
"""The most memories the MCP server's ``recall`` tool answers with: an agent reads every one
into its context, where a hundred is already more than it uses."""


def check_k(value: Any, what: str = "k", *, limit: int = MAX_K) -> int:
    """``value`` as a result count in ``[1, limit]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValidationError(f"{what} must be an int in [1, {limit}], not {value!r}")
    return value


async def tagged_recall(
    db: Executor,
    *,
    tag: str | None,
    k: int,
    tags: Sequence[str] = (),
    **recall: Any,
) -> list[memory.RecallHit]:
    """:func:`surreal_store.memory.recall` of the memories carrying ``tag`` (and every one of
    ``tags``; ``tag`` ``None``: no narrowing), ``k`` at most.

    The tag is one of recall's filters, applied inside the index search: a recall over the
    whole store whose hits are filtered here afterwards is no faster at any size measured
    (``docs/doors.md``), and needs a second recall whenever the collection is not the whole
    store."""
    wanted = [tag, *tags] if tag is not None else list(tags)
    return await memory.recall(db, k=k, tags=wanted or None, **recall)
