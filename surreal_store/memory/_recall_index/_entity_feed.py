"""Following the entity table: the entity index (:mod:`._entity_index`) attached to a store,
built from the table and kept in step with the database's change feed (schema 025 gives the
entity table its feed), as :mod:`._feed` keeps the memory index.

The database stays the source of truth. The index is never saved: each connection builds it
from the table when a search first needs it, so there are no files to be restored, damaged,
or taken from another store; a restored copy of a database, or a new one at the same path, is
read as it is. Once built, it follows every change to the table, whoever made it, from the
versionstamp it reflects: a search reads the feed from there in the round trip that reads its
answer (:func:`look_and_read`), and applies what changed before answering again. A table
defined again (removed and made anew) is read again; an index that has not looked at the feed
for longer than the feed keeps changes is built again. Sessions that cannot read the feed
(agents) keep no index: their search compares in the database, within their permissions.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

from ..._feeds import look, table_of
from ._entity_index import ENTITY_INDEX_FIELDS, EntityIndex
from ._feed import MAX_AGE, apply_pages, may_write, now_versionstamp, read_feed
from ._index import key_of

__all__ = ["apply_page", "behind", "catch_up", "entity_index", "look_and_read"]

log = logging.getLogger("surreal_store.graph")

_PAGE: Final = 2000
_FIRST = f"SELECT {ENTITY_INDEX_FIELDS} FROM entity LIMIT {_PAGE};"
_NEXT = f"SELECT {ENTITY_INDEX_FIELDS} FROM entity WHERE id > $after LIMIT {_PAGE};"
_FEED_ROWS: Final = 2000
_FEED_MAX: Final = 1000


def entity_index(db: Any) -> EntityIndex | None:
    """The entity index attached to ``db``'s connection (empty until a catch-up builds it);
    ``None`` when ``db`` cannot hold one (an executor that is not a store)."""
    attached = getattr(db, "attached", None)
    if attached is None:
        return None
    # Sessions with the owner's rights share one; the others one of their own.
    name = "entity-index" if may_write(db) else "entity-index (another session)"
    index: EntityIndex = attached(name, EntityIndex)
    return index


async def _build(db: Any, index: EntityIndex) -> None:
    """Fill an empty index from the table, in pages by id, from a versionstamp before the
    first page (the feed from there is replayed: its changes are idempotent)."""
    t0 = time.perf_counter()
    await read_feed(db, look(0, 1))  # a session that cannot read the feed is told first
    read_from = index.read_from
    index.reset()  # what a build that failed part way took in is not kept
    start = max(await now_versionstamp(db), read_from)
    index.read_from = start

    async def read_after(last: dict[str, Any]) -> list[dict[str, Any]]:
        page: list[dict[str, Any]] = await db.query(_NEXT, dict, idempotent=True, after=last["id"])
        return page

    await apply_pages(await db.query(_FIRST, dict, idempotent=True), index.apply, read_after, _PAGE)
    index.versionstamp = start
    log.info("built the entity index: %d entities in %.1fs", index.size, time.perf_counter() - t0)


def apply_page(index: EntityIndex, entries: list[dict[str, Any]]) -> bool:
    """Apply a page of the database's feed (the entity table's changes in it) and move the
    index's versionstamp past it; ``False`` if the table was defined again since the index
    read it (then the index is emptied, to be built again)."""
    pending: dict[str, dict[str, Any]] = {}
    for entry in entries:
        for change in entry.get("changes", ()):
            if table_of(change) != "entity":
                continue
            if "update" in change:
                record = change["update"]
                key = key_of(record.get("id"))
                if key is not None:
                    pending.pop(key, None)
                    pending[key] = record
            elif "delete" in change:
                key = key_of(change["delete"].get("id"))
                if key is not None:
                    index.apply(pending.values())
                    pending.clear()
                    index.apply((), (key,))
            elif "define_table" in change and int(entry["versionstamp"]) > index.read_from:
                log.info("the entity table was defined again; rebuilding the entity index")
                read_from = int(entry["versionstamp"])
                index.reset()
                index.read_from = read_from  # the removed table's changes are not replayed
                return False
    index.apply(pending.values())
    if entries:
        index.versionstamp = int(entries[-1]["versionstamp"])
        changes = sum(len(e.get("changes", ())) for e in entries)
        index.feed_limit = max(1, min(_FEED_MAX, _FEED_ROWS * len(entries) // max(1, changes)))
    index.followed_at = time.monotonic()
    return True


def behind(index: EntityIndex) -> bool:
    """Whether ``index`` must catch up before it chooses: never built, or not following the
    feed for longer than the feed keeps changes (then it is built again)."""
    if index.versionstamp < 0:
        return True
    return time.monotonic() - index.followed_at > MAX_AGE.total_seconds()


async def catch_up(db: Any, index: EntityIndex) -> None:
    """Bring ``index`` up to the table's present, building it if it never was (or has not
    followed the feed for longer than the feed keeps). Call with ``index.lock`` held. Raises
    :class:`._failures.FeedUnavailable` when this session cannot read the feed."""
    if index.versionstamp >= 0 and behind(index):
        index.reset()
    while True:
        if index.versionstamp < 0:
            await _build(db, index)
        limit = index.feed_limit
        rows = await read_feed(db, look(index.versionstamp + 1, limit))
        entries = rows[0] if rows and isinstance(rows[0], list) else []
        if not apply_page(index, entries):
            continue
        if len(entries) < limit:
            return


async def look_and_read(
    db: Any, index: EntityIndex, since: int, limit: int, statement: str, **params: Any
) -> tuple[list[dict[str, Any]], Any]:
    """A page of the feed from after ``since`` (what the index reflected when it chose what
    ``statement`` reads), ``limit`` transactions at most, and the result of ``statement``'s
    last statement, in one round trip."""
    rows = await read_feed(db, look(since + 1, limit) + statement, **params)
    entries = rows[0] if rows and isinstance(rows[0], list) else []
    if not entries and since == index.versionstamp:
        index.followed_at = time.monotonic()
    return entries, rows[-1] if len(rows) > 1 else None
