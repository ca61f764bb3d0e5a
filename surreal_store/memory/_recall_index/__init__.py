"""The recall index: an in-process HNSW graph (hnswlib) and BM25 index (tantivy) over the
memory table, derived from it and kept in step with its change feed, and what the memory layer
asks of it (this module: catching it up, its status, rebuilding it).

One idea a module:

- :mod:`._analysis`: text analysis, as the schema's analyzer does it;
- :mod:`._rows`: each memory's row as a read returns it, kept in CBOR;
- :mod:`._index`: the index in memory and its search (filter masks, nearest vectors, BM25);
- :mod:`._files`: the saved generations' layout, manifests and checks;
- :mod:`._persist`: saving an index as a generation and loading one;
- :mod:`._vectors`: a loaded generation's exact vectors, read when first used;
- :mod:`._feed`: the index attached to a store, built, loaded and following the change feed;
- :mod:`._failures`: how it fails (stale, unavailable to a session, broken);
- :mod:`._entity_index`, :mod:`._entity_feed`: the same machinery over the graph's entity
  table (their own words and embeddings, for ``graph.search_entities``), kept in memory.

Nothing but :mod:`._feed`, :mod:`._entity_feed` and this module talks to the database. The
modules that load numpy, hnswlib and tantivy are imported when a store first uses its index,
so that importing the package does not load them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..._api import public
from ..._errors import RecallIndexError, StoreStateError
from ..._executor import Executor
from .._models import IndexStatus
from ._failures import Broken, FeedUnavailable, Stale, guarded

if TYPE_CHECKING:
    from ._index import DerivedIndex

__all__ = [
    "derived_index",
    "index_status",
    "rebuild_broken",
    "rebuild_index",
    "refresh_index",
]

log = logging.getLogger("surreal_store.memory")


def derived_index(db: Executor) -> DerivedIndex | None:
    """The recall index attached to ``db``'s connection (:func:`._feed.derived_index`)."""
    from ._feed import derived_index

    return derived_index(db)


async def refresh_index(db: Executor, *, seen: Stale | None = None) -> DerivedIndex | None:
    """Catch the recall index of ``db`` up with the table, when this session has one (an
    agent's cannot read the change feed: its recall scans the database);
    ``seen``: the feed's page a look has already read."""
    from ._feed import catch_up

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
    from ._feed import catch_up, publish

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
