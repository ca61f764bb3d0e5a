"""The derived recall index as the public API shows it: its status, catching it up, rebuilding it.

How it works is in :mod:`._derived` (and the README, "How recall works").
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .._api import public
from .._errors import RecallIndexError, StoreStateError
from .._executor import Executor
from ._derived import (
    Broken,
    DerivedIndex,
    FeedUnavailable,
    IndexStatus,
    Stale,
    catch_up,
    derived_index,
    guarded,
    publish,
)

__all__ = ["IndexStatus", "index_status", "rebuild_broken", "rebuild_index", "refresh_index"]

log = logging.getLogger("surreal_store.memory")


async def refresh_index(db: Executor, *, seen: Stale | None = None) -> DerivedIndex | None:
    """Catch the recall index of ``db`` up with the table, when this session has one (an
    agent's cannot read the change feed: its recall scans the database);
    ``seen``: the feed's page a look has already read."""
    index = derived_index(db)
    if index is None:
        return None
    async with index.lock:
        try:
            with guarded():
                await catch_up(db, index, seen=seen)
        except FeedUnavailable:
            return None
        except Broken as exc:
            await _rebuild_failed(db, index, exc)
    return index


async def rebuild_broken(db: Executor, why: Broken) -> DerivedIndex:
    """Rebuild the recall index of ``db`` from the table after it failed (``why``); raise
    :class:`RecallIndexError` if the rebuild fails too."""
    index = derived_index(db)
    if index is None:
        raise RecallIndexError(f"the recall index failed: {why}")
    async with index.lock:
        await _rebuild_failed(db, index, why)
    return index


async def _rebuild_failed(db: Executor, index: DerivedIndex, why: Broken) -> None:
    log.warning("the recall index failed (%s); rebuilding it from the memory table", why)
    try:
        await _rebuild(db, index, why=why)
    except FeedUnavailable:
        raise RecallIndexError(f"the recall index failed: {why}") from None


async def _rebuild(
    db: Executor,
    index: DerivedIndex,
    *,
    why: Broken | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Empty ``index``, build it again from the table and save it (call with its lock held);
    :class:`RecallIndexError` if the build fails (``why``: the failure that made it needed),
    :class:`FeedUnavailable` for a session that cannot keep one."""
    index.reset()
    try:
        with guarded():
            await catch_up(db, index, progress=progress)
    except Broken as again:
        index.reset()
        if why is None:
            raise RecallIndexError(f"rebuilding the recall index failed: {again}") from None
        raise RecallIndexError(
            f"the recall index failed ({why}) and rebuilding it failed too ({again})"
        ) from None
    await publish(db, index)


@public
async def index_status(db: Executor) -> IndexStatus:
    """What the store's recall index reflects, after catching it up with the memory table.

    Raises :class:`StoreStateError` for a session that cannot keep one (an agent's, which
    cannot read the change feed: its recall compares in the database)."""
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
    by itself when its saved state cannot be used (damaged, of another database, older than
    the feed keeps). To compact one after many deletions. The saved index is replaced only
    once the new one is whole (a kill meanwhile leaves the old one), and only by a session
    with the owner's rights; another's rebuild is kept in memory. ``progress(done)`` is
    called after each page of memories read."""
    index = derived_index(db)
    if index is None:
        raise StoreStateError("only a store keeps a recall index")
    async with index.lock:
        try:
            await _rebuild(db, index, progress=progress)
        except FeedUnavailable:
            raise StoreStateError(
                "this session cannot read the memory table's change feed, so it keeps no "
                "recall index (its recall scans the database)"
            ) from None
        return index.status()
