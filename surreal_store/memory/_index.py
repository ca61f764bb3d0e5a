"""The derived recall index as the public API shows it: its status, catching it up, rebuilding it.

How it works is in :mod:`._derived` (and the README, "How recall works").
"""

from __future__ import annotations

from collections.abc import Callable

from .._api import public
from .._errors import StoreStateError
from .._executor import Executor
from ._derived import (
    DerivedIndex,
    FeedUnavailable,
    IndexStatus,
    Stale,
    catch_up,
    derived_index,
)

__all__ = ["IndexStatus", "index_status", "rebuild_index", "refresh_index"]


async def refresh_index(db: Executor, *, seen: Stale | None = None) -> DerivedIndex | None:
    """Catch the recall index of ``db`` up with the table, when this session has one (an
    agent's or a viewer's cannot read the change feed: their recall scans the database);
    ``seen``: the feed's page a look has already read."""
    index = derived_index(db)
    if index is None:
        return None
    async with index.lock:
        try:
            await catch_up(db, index, seen=seen)
        except FeedUnavailable:
            return None
    return index


@public
async def index_status(db: Executor) -> IndexStatus:
    """What the store's recall index reflects, after catching it up with the memory table.

    Raises :class:`StoreStateError` for a session that cannot keep one (an agent's or a
    viewer's, which cannot read the change feed: their recall compares in the database)."""
    index = await refresh_index(db)
    if index is None:
        raise StoreStateError(
            "this session keeps no recall index (it cannot read the memory table's change "
            "feed); its recall scans the database"
        )
    return index.status()


@public
async def rebuild_index(
    db: Executor, *, progress: Callable[[int], None] | None = None
) -> IndexStatus:
    """Discard the store's recall index and build it again from the memory table.

    Never needed for correctness: the index follows the table's change feed, and is rebuilt
    by itself when its saved state is older than the feed keeps. For a damaged index file, or
    to compact one after many deletions. ``progress(done)`` is called after each page of
    memories read."""
    index = derived_index(db)
    if index is None:
        raise StoreStateError("only a store keeps a recall index")
    async with index.lock:
        index.reset()
        try:
            await catch_up(db, index, progress=progress)
        except FeedUnavailable:
            raise StoreStateError(
                "this session cannot read the memory table's change feed, so it keeps no "
                "recall index (its recall scans the database)"
            ) from None
        index.save()
        return index.status()
