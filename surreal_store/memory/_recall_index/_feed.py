"""Following the memory table: the index attached to a store, loaded from its saved
generation or built from the table, and kept in step with the table's change feed.

The database stays the source of truth: the index answers a recall only once a look at the
table's change feed has shown that it reflects the table as it is. It follows every change to
the table, whoever made it (our API, raw SurrealQL, another client of a server):

* it records the versionstamp it reflects, and each recall reads the feed from there
  (``SHOW CHANGES FOR TABLE memory``) in one round trip (:func:`read_if_current`), which
  also reads the rows it does not keep, if any; if anything changed, the index applies each
  change (an ``update`` carries the whole record, a ``delete`` its id; both are idempotent, so
  replaying a range is harmless) and the recall chooses its candidates again;
* it is saved beside an embedded store (:mod:`._persist`, :mod:`._files`: a generation
  published whole, named by the database's ``memory_index:identity`` record, which each save
  moves on) on close and after large catch-ups; reopening loads the generation the database
  names, once every file checks out, and replays the feed from its versionstamp, so a crash
  costs the changes since the last save, not a rebuild; a restored older copy of the
  database, a new database at the same path or another store's files never match;
* with no usable saved generation, or one older than the feed keeps (``FEED_RETENTION``), it
  is built from the table itself, in pages, and then replays the feed from the build's start.

Only a session with the owner's rights (an embedded store opened without credentials, a
root user, an OWNER) writes or removes files; another keeps what it loads or builds in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..._errors import PermissionDeniedError, QueryError, StoreError
from ..._feeds import look, table_of
from ..._types import RecordId
from .._models import FIELDS
from ._failures import FeedUnavailable, Stale
from ._files import (
    Identity,
    Unusable,
    database_folder,
    legacy_folder,
    new_token,
    remove_legacy,
    sweep,
)
from ._index import DerivedIndex, key_of
from ._persist import load, save

__all__ = [
    "FEED_RETENTION",
    "MAX_AGE",
    "DerivedIndex",
    "apply_pages",
    "catch_up",
    "derived_index",
    "may_write",
    "now_versionstamp",
    "publish",
    "read_feed",
    "read_if_current",
    "touches",
]

log = logging.getLogger("surreal_store.memory")

FEED_RETENTION: Final = dt.timedelta(days=30)
"""How long the memory table's change feed keeps a change (schema 018)."""
# A saved index older than this is rebuilt rather than caught up: the feed may have lost the
# changes since (a day's margin under the retention).
MAX_AGE: Final = FEED_RETENTION - dt.timedelta(days=1)
# The feed pages by transactions, and one bulk write carries up to 1,000 memories, so a page
# of many transactions can carry very many whole records. A page asks for about _FEED_ROWS
# changes, by the transactions' size so far.
_FEED_ROWS: Final = 2000
_FEED_MAX: Final = 1000
_BUILD_PAGE: Final = 2000
_SAVE_AFTER: Final = 5000  # changes applied since the last save
# A saved index whose versionstamp is later than the database's clock by more than this is
# newer than the database it is beside (a restored older copy): not used.
_CLOCK_SLACK_MS: Final = 2_000
# What a rebuild reads: the row and the vector.
_BUILD_FIELDS: Final = f"{FIELDS}, embedding, embedding_stash"
# Pages follow the table's key order, each starting where the last ended: `WHERE id > $after`
# reads the page only, where a record range with a LIMIT reads on to the table's end
# (docs/design.md, "Engine notes").
_BUILD_FIRST = f"SELECT {_BUILD_FIELDS} FROM memory LIMIT {_BUILD_PAGE};"
_BUILD_NEXT = f"SELECT {_BUILD_FIELDS} FROM memory WHERE id > $after LIMIT {_BUILD_PAGE};"


def _place(db: Any) -> Path | None:
    settings: Any = getattr(db, "settings", None)
    path = getattr(settings, "path", None)
    if settings is None or path is None:
        return None
    return database_folder(Path(path), settings.namespace, settings.database)


def may_write(db: Any) -> bool:
    """Whether ``db``'s session has the owner's rights over its database (so over the files
    of its recall index): an embedded store opened without credentials, a root user, an
    OWNER. Checked before any file is touched."""
    who: Any = getattr(db, "signed_in_as", None)
    if who is None:
        return False
    return bool(who.kind in ("anonymous", "root") or who.role == "OWNER")


class _Attached(DerivedIndex):
    """A store's recall index, as attached to its connection: saved when the store lets go."""

    async def aclose(self, db: Any = None) -> None:
        """When its store lets go of the connection (``db``, still open): save (if it has a
        place and its session may write there), and let go of the text index, for the next
        store on these files (in this process or another) to load the index rather than
        rebuild it."""
        async with self.lock:
            if db is not None and (self.unsaved or self.text_dirty):
                await publish(db, self)
            self.drop_text()


def derived_index(db: Any) -> DerivedIndex | None:
    """The derived index attached to ``db``'s connection, made on first use (empty: the first
    catch-up loads or builds it); ``None`` when ``db`` cannot hold one (an executor that is
    not a store)."""
    attached = getattr(db, "attached", None)
    if attached is None:
        return None

    owner = may_write(db)

    def make() -> DerivedIndex:
        index = _Attached(_place(db), owner=owner, text=False)
        index.versionstamp = -1  # not loaded or built yet
        return index

    # Stores of several sign-ins can share a connection: sessions with the owner's rights
    # share the index that writes the files, the others one that never does.
    name = "memory-recall-index" if owner else "memory-recall-index (read-only)"
    index: DerivedIndex = attached(name, make)
    return index


# -- the database's identity and the saved generations --------------------------------------

_IDENTITY = "SELECT database, epoch FROM ONLY memory_index:identity;"
# Made once; a concurrent maker's record wins (INSERT IGNORE), and is what is read back.
_NEW_IDENTITY = """
INSERT IGNORE INTO memory_index {id: memory_index:identity, database: $database, epoch: $epoch}
    RETURN NONE;
SELECT database, epoch FROM ONLY memory_index:identity;
"""
# The engine's clock, in the milliseconds versionstamps count in (shifted by 16 bits).
_CLOCK = "RETURN time::millis(time::now());"
# Moves the epoch on to a generation just published, unless another save moved it meanwhile.
_MOVE_EPOCH = """
UPDATE memory_index:identity SET epoch = $new WHERE database = $database AND epoch = $old
    RETURN VALUE epoch;
"""


async def _identity(db: Any, *, create: bool) -> Identity | None:
    """The database's identity (made, when ``create`` and it has none yet); ``None`` if it
    has none or this session cannot read it (then no saved file is used)."""
    try:
        row = (await db.execute(_IDENTITY, idempotent=True) or [None])[0]
        if row is None and create:  # a write only the first time
            rows = await db.execute(_NEW_IDENTITY, database=new_token(), epoch=new_token())
            row = rows[-1] if rows else None
    except StoreError as exc:
        log.info("the database's recall index identity is unavailable (%s)", exc)
        return None
    return Identity.parse(row)


def _sweep_folder(index: DerivedIndex, keep: Path | None = None) -> None:
    """Remove from the database's folder everything but ``keep`` and the working copy."""
    if index.owner and index.path is not None:
        sweep(index.path, {p for p in (keep, index.work) if p is not None})


async def _restore(db: Any, index: DerivedIndex) -> bool:
    """Load the generation the database's identity names into ``index``; ``False`` (and the
    index ready to be built, under the identity an owner's save will move on) when there is
    none that may be used: absent, damaged, of another database, newer than the database's
    present, or older than its feed keeps."""
    place, owner = index.path, index.owner
    if place is None:
        return False
    identity = await _identity(db, create=owner)
    index.identity = identity
    if owner:
        settings: Any = db.settings
        await anyio.to_thread.run_sync(
            remove_legacy, legacy_folder(Path(settings.path), settings.namespace, settings.database)
        )
    if identity is None:
        return False
    # A removed table has no feed to say so: nothing saved answers for it (the build that
    # follows raises the database's own NotFoundError). The clock, in the same round trip.
    checked = await db.execute(f"SELECT VALUE id FROM memory LIMIT 0;\n{_CLOCK}", idempotent=True)
    now_ms = int(checked[-1])
    t0 = time.perf_counter()
    try:
        loaded = await anyio.to_thread.run_sync(lambda: load(place, identity, owner=owner))
    except Unusable as exc:
        log.info("the saved recall index at %s is not used: %s; rebuilding", place, exc)
        await anyio.to_thread.run_sync(_sweep_folder, index)
        return False
    age_ms = now_ms - (loaded.versionstamp >> 16)
    why = None
    if age_ms > MAX_AGE.total_seconds() * 1000:
        why = "it is older than the change feed keeps"
    elif age_ms < -_CLOCK_SLACK_MS:
        why = "it is newer than the database's present"
    if why is not None:
        log.info("the saved recall index at %s is not used: %s; rebuilding", place, why)
        loaded.drop_text()
        await anyio.to_thread.run_sync(_sweep_folder, index)
        return False
    loaded.build_s = time.perf_counter() - t0
    gen = place / f"gen-{identity.epoch}"
    keep = {"lock", "incarnation"}
    index.__dict__.update({k: v for k, v in loaded.__dict__.items() if k not in keep})
    index.incarnation += 1
    await anyio.to_thread.run_sync(_sweep_folder, index, gen)
    return True


async def publish(db: Any, index: DerivedIndex) -> bool:
    """Save ``index`` as a new generation and move its database's epoch on to it (call with
    ``index.lock`` held). Only where the session may write; a failure is logged and loses
    nothing (the next open catches up from the last generation, or rebuilds). Returns whether
    it was saved."""
    old = index.identity
    if not index.owner or index.path is None or index.work is None or old is None:
        return False
    new = Identity(old.database, new_token())
    try:
        gen = await anyio.to_thread.run_sync(save, index, new)
    except Exception as exc:
        log.warning("could not save the recall index at %s: %s", index.path, exc)
        return False
    try:
        moved = await db.query(
            _MOVE_EPOCH, str, database=old.database, old=old.epoch, new=new.epoch
        )
    except StoreError as exc:
        moved = []
        log.warning("could not record the saved recall index in the database: %s", exc)
    if moved != [new.epoch]:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(gen, ignore_errors=True))
        return False
    index.identity = new
    index.unsaved = 0
    await anyio.to_thread.run_sync(_sweep_folder, index, gen)
    return True


_SPACE: Final = "SELECT * OMIT id FROM ONLY embedding_space:active;\n"
# Whether the embedding space has its change feed (schema 030): a table's definition names it.
_TABLES: Final = "INFO FOR DB;"
_HAS_FEED: Final = re.compile(r"\bCHANGEFEED\s+\d")


def touches(entries: list[dict[str, Any]], table: str) -> bool:
    """Whether a page of the database's feed changes ``table``."""
    return any(table_of(c) == table for e in entries for c in e.get("changes", ()))


async def read_feed(db: Any, text: str, **params: Any) -> list[Any]:
    """``text``'s results (a read of the feed), a session that may not read it told by
    :class:`FeedUnavailable`."""
    try:
        rows: list[Any] = await db.execute(text, idempotent=True, **params)
    except PermissionDeniedError as exc:
        raise FeedUnavailable(str(exc)) from None
    except QueryError as exc:
        if "not allowed" in str(exc).lower() or "permission" in str(exc).lower():
            raise FeedUnavailable(str(exc)) from None
        raise
    return rows


def _changes(row: Any) -> list[dict[str, Any]]:
    return row if isinstance(row, list) else []


async def _feed(
    db: Any,
    index: DerivedIndex,
    since: int,
    limit: int,
    *,
    then: str | None = None,
    **params: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None, Any]:
    """A page of the database's feed from ``since`` (every table's changes: the memory
    table's are the caller's to pick), the embedding space (``embedding_space:active``
    without its id; recall checks the query's dimension and a re-embed against it; read
    after the page, so it reflects at least the page's changes to it) and the result of
    ``then`` (a read) when given, in one round trip."""
    rows = await read_feed(db, look(since, limit) + _SPACE + (then or ""), **params)
    space = rows[1] if len(rows) > 1 and isinstance(rows[1], dict) else None
    return _changes(rows[0] if rows else []), space, (rows[2] if len(rows) > 2 else None)


async def _follow_space(db: Any, index: DerivedIndex) -> None:
    """Whether the embedding space has its change feed (schema 030), so that a look learns
    of its changes from the database's feed rather than by reading it (a database not yet
    migrated, or whose feed was removed, is read the long way)."""
    try:
        info = (await db.execute(_TABLES, idempotent=True))[0]
    except StoreError as exc:
        log.info("cannot tell whether the embedding space has a change feed (%s)", exc)
        index.space_feed = False
        return
    tables = info.get("tables") if isinstance(info, dict) else None
    definition = tables.get("embedding_space") if isinstance(tables, dict) else None
    index.space_feed = isinstance(definition, str) and _HAS_FEED.search(definition) is not None


async def read_if_current(
    db: Any,
    index: DerivedIndex,
    state: tuple[int, dict[str, Any] | None],
    text: str | None,
    **params: Any,
) -> Any:
    """The result of the read ``text`` (if any), run in one round trip with a look at the
    feed: raises :class:`Stale` unless nothing has changed since ``state`` (the versionstamp
    and the embedding space that ``index`` reflected when it chose what to read, or what it
    keeps of the memories it returns, :meth:`DerivedIndex.kept`). A change committed after
    the look is one made after this read began, which a read need not see; every filter is
    in ``text``, so a memory invalidated meanwhile is still refused.

    Any change since counts, to any table with a feed: the index then catches up from the
    look's page (its versionstamp moves past the other tables' changes too, so that the next
    look reads only what is new). Where the space has its own feed, the page says whether
    the space changed (any change to it counts); otherwise the look reads the space."""
    known, space = state
    limit = index.feed_limit
    if known < 0:
        raise Stale(known, limit, [], None)
    # Taken before the look: if it is the same at a later look, nothing has changed since.
    mark = _write_mark(db)
    if text is None and mark is not None and index.quiet == (known, mark, space):
        # A look found nothing after `known`, and nothing was written since. The event loop
        # still gets its turn, as it would during the look: a task recalling in a loop must
        # not starve the others.
        await anyio.lowlevel.checkpoint()
        return None
    if index.space_feed is True:
        rows = await read_feed(db, look(known + 1, limit) + (text or ""), **params)
        entries = _changes(rows[0] if rows else [])
        if entries:
            moved = touches(entries, "embedding_space")
            raise Stale(known, limit, entries, None if moved else space, space_read=not moved)
        result = rows[1] if len(rows) > 1 else None
    else:
        entries, now, result = await _feed(db, index, known + 1, limit, then=text, **params)
        if entries or now != space:
            raise Stale(known, limit, entries, now)
    if mark is not None:
        index.quiet = (known, mark, space)
    return result


def _write_mark(db: Any) -> int | None:
    """``db``'s :meth:`~surreal_store.Store.write_mark`, ``None`` for an executor without
    one."""
    mark = getattr(db, "write_mark", None)
    return mark() if callable(mark) else None


async def now_versionstamp(db: Any) -> int:
    """A versionstamp at or before every change committed from now on (they are the commit's
    milliseconds shifted by 16 bits); a second early, for clocks that step."""
    ms = await db.query_required_single(_CLOCK, int, idempotent=True)
    return max(0, (int(ms) - 1000) << 16)


_Page = list[dict[str, Any]]


async def apply_pages(
    page: _Page,
    apply: Callable[[_Page], object],
    read_after: Callable[[dict[str, Any]], Awaitable[_Page]],
    size: int,
    each: Callable[[], None] | None = None,
) -> None:
    """Apply ``page`` and the pages after it, each in a worker thread while the engine reads
    the next (``read_after`` its last row, when it holds a full ``size``): a build costs about
    the longer of the two. ``each`` is called after each page is applied; an error of the
    read or the apply is raised as itself, not inside a task group's exception group."""
    while page:
        following: list[_Page] = []
        failure: list[Exception] = []
        async with anyio.create_task_group() as tg:
            if len(page) == size:
                tg.start_soon(_read_page, read_after, page[-1], following, failure)
            try:
                await anyio.to_thread.run_sync(apply, page)
            except Exception as exc:
                failure.append(exc)
                tg.cancel_scope.cancel()
        if failure:
            raise failure[0]
        if each is not None:
            each()
        page = following[0] if following else []


async def _read_page(
    read_after: Callable[[dict[str, Any]], Awaitable[_Page]],
    last: dict[str, Any],
    into: list[_Page],
    failure: list[Exception],
) -> None:
    """The page after ``last``, appended to ``into`` (an error to ``failure``)."""
    try:
        into.append(await read_after(last))
    except Exception as exc:
        failure.append(exc)


async def _build(
    db: Any, index: DerivedIndex, progress: Callable[[int], None] | None = None
) -> None:
    """Fill an empty index from the table, in pages by id, then replay the feed from before
    the first page (so changes made during the build are applied too)."""
    t0 = time.perf_counter()
    # Never before a definition of the table that made this build necessary (read_from).
    start = max(await now_versionstamp(db), index.read_from)
    index.read_from = start  # a definition after this may not be in what the build reads

    async def read_after(last: dict[str, Any]) -> _Page:
        after = key_of(last["id"])
        if after is None:
            return []
        page: _Page = await db.query(
            _BUILD_NEXT, dict, idempotent=True, after=RecordId("memory", after)
        )
        return page

    # The HNSW graph's insertions release the GIL, so the next page's read overlaps them.
    await apply_pages(
        await db.query(_BUILD_FIRST, dict, idempotent=True),
        index.apply,
        read_after,
        _BUILD_PAGE,
        None if progress is None else lambda: progress(index.size),
    )
    index.commit_text()
    index.versionstamp = start
    index.origin = "built" if index.size else "new"
    index.build_s = time.perf_counter() - t0
    log.info("built the recall index: %d memories in %.1fs", index.size, index.build_s)


async def _start(db: Any, index: DerivedIndex, progress: Callable[[int], None] | None) -> None:
    """Load the saved generation into an index that is neither loaded nor built, or build
    it from the table."""
    if index.loadable:
        if await _restore(db, index):
            return
    elif index.identity is None and index.owner and index.path is not None:
        index.identity = await _identity(db, create=True)  # _restore's, when it ran
    index.open_text(None)
    await _build(db, index, progress)


async def catch_up(
    db: Any,
    index: DerivedIndex,
    *,
    progress: Callable[[int], None] | None = None,
    seen: Stale | None = None,
) -> int:
    """Bring ``index`` up to the table's present: build it if it never was (or its feed has
    expired), then apply the feed since its versionstamp, starting with the page a recall's
    look already read (``seen``) if the index has not moved since. Call with ``index.lock``
    held. Raises :class:`FeedUnavailable` when this session cannot read the feed."""
    if index.versionstamp < 0:
        # Reading the feed first: a session that cannot is told before a build it cannot use.
        _, index.space, _ = await _feed(db, index, 0, limit=1)
        await _start(db, index, progress)
        await _follow_space(db, index)
    applied = 0
    if seen is not None and seen.since == index.versionstamp and seen.space_read:
        entries, index.space, limit = seen.entries, seen.space, seen.limit
    else:  # another task caught it up meanwhile: the look's page may be older than the index
        limit = index.feed_limit
        entries, index.space, _ = await _feed(db, index, index.versionstamp + 1, limit)
    while True:
        changes = sum(len(entry.get("changes", ())) for entry in entries)
        if entries:
            index.feed_limit = max(1, min(_FEED_MAX, _FEED_ROWS * len(entries) // max(1, changes)))
        pending: dict[str, dict[str, Any]] = {}
        for entry in entries:
            for change in entry.get("changes", ()):
                if table_of(change) != "memory":
                    continue  # another table's (the page is the database's)
                if "update" in change:
                    record = change["update"]
                    key = key_of(record.get("id"))
                    if key is not None:
                        pending.pop(key, None)  # its last state is what counts
                        pending[key] = record
                elif "delete" in change:
                    key = key_of(change["delete"].get("id"))
                    if key is not None:
                        # In order: what came before the deletion, then the deletion.
                        applied += index.apply(pending.values())
                        pending.clear()
                        applied += index.apply((), (key,))
                elif "define_table" in change and int(entry["versionstamp"]) > index.read_from:
                    # The table was defined again after the index read it (removed and made
                    # anew, or redefined): what it holds is read again, not followed.
                    log.info("the memory table was defined again; rebuilding the recall index")
                    index.reset()
                    # The feed keeps the removed table's changes: none before this is replayed.
                    index.read_from = int(entry["versionstamp"])
                    return await catch_up(db, index, progress=progress)
        applied += index.apply(pending.values())
        if entries:
            index.versionstamp = int(entries[-1]["versionstamp"])
        if len(entries) < limit:
            break
        limit = index.feed_limit
        entries, index.space, _ = await _feed(db, index, index.versionstamp + 1, limit)
    index.commit_text()
    index.caught_up += applied
    if index.origin == "new" and index.size:
        index.origin = "built"
    if index.unsaved >= _SAVE_AFTER:
        await publish(db, index)
    return applied
