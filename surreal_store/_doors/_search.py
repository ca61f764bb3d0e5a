"""Search as the doors do it: the memory layer's recall, narrowed to the memories of one
collection (a tag), and one limit on how many results a search asks for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from .._errors import ValidationError
from .._executor import Executor
from ..memory._recall import Found, recall_found

__all__ = ["AGENT_MAX_K", "MAX_K", "Found", "check_k", "tagged_recall"]

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
    kept: Callable[[Found], bool] | None = None,
    **recall: Any,
) -> list[Found]:
    """:func:`surreal_store.memory.recall` of the memories carrying ``tag`` (and every one of
    ``tags``; ``tag`` ``None``: no narrowing), ``k`` at most, each hit as the doors read it
    (:class:`~surreal_store.memory._recall.Found`). A ``vector=`` is one that
    :func:`~surreal_store.memory._checks.check_vector` made (the door's check is recall's).

    The tag is one of recall's filters, applied inside the index search. ``kept`` (a vector
    search only, with no filter but those ``kept`` checks) asks for a recall over the whole
    store first, whose hits ``kept`` admits: when at least ``k`` are admitted, or the store
    holds fewer than ``k``, they are exactly the filtered result (a vector score does not
    depend on what else is ranked); otherwise the filtered recall follows. That pays only
    where a search carries several filters and its collection is most of the store
    (``docs/doors.md``): the LangGraph store asks for it, the LangChain store does not."""
    if kept is not None:
        hits = await recall_found(db, checked=True, vector=recall["vector"], k=k)
        admitted = [h for h in hits if kept(h)]
        if len(admitted) >= k or len(hits) < k:
            return admitted
    wanted = [tag, *tags] if tag is not None else list(tags)
    return await recall_found(db, checked=True, k=k, tags=wanted or None, **recall)
