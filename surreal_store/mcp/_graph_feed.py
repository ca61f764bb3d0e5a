"""Keeping the MCP graph tools' view (:class:`~._graph_view.GraphView`) in step with the
store: built by one read of a scope's graph, then, before every answer, one look at the change
feeds of the graph's tables (schema 025) and of the memory table (observation contents); the
entities a change touches are read again (with their facts and observations), and the whole
graph when a change cannot be placed or too many entities changed. Facts whose valid time
begins or ends later change the graph without a write: the view remembers the earliest such
time and is read again once the engine's clock passes it. A session that cannot read the
feeds (an agent's) reads the graph from the database on every call.

On an embedded store the look is skipped while no query that may write was sent on its
connection since before the last look (``Store.write_mark``: every store of the process on
those files shares the connection, and no other process can open them), unless a valid-time
boundary is near; a write abandoned while the engine may still commit it ends the skipping for
good."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import anyio

from .. import graph
from .._errors import PermissionDeniedError, QueryError
from .._feeds import look, tables_of
from .._types import RecordId
from ._graph_view import GraphView, entities_of, relations_of

if TYPE_CHECKING:
    from .._client import Store

__all__ = ["Session", "Views"]

T = TypeVar("T")


class Session(Protocol):
    """What the graph tools need of the server they are part of: its store, the scope a call
    means, and ways to run a call whose store errors become the client's tool errors (or
    resource errors)."""

    store: Store

    async def scope(self, given: str | None, tool: str) -> str: ...

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T: ...

    async def read(self, fn: Callable[[], Awaitable[T]]) -> T: ...


log = logging.getLogger("surreal_store.mcp")

# -- the derived view -----------------------------------------------------------------------

# The feeds looked at, one query: the graph's tables (025) and the memories that hold
# observation contents (018), and the engine's clock (facts whose valid time begins or ends
# change the graph without a write).
_FEED_TABLES: Final = ("entity", "fact", "observation", "memory")
_FEED_PAGE: Final = 256
# More entities changed than this since the last look: the whole graph is read again.
_REREAD_LIMIT: Final = 2_000
# Valid times that begin or end after now, among current facts (of the scope, or touching
# $ids): the earliest is when the view must be read again.
_NEXT_BOUNDARY_SCOPE: Final = """
LET $now = time::now();
RETURN array::min(array::flatten((SELECT VALUE [valid_from, valid_until] FROM fact
    WHERE scope = $scope AND retracted_at = NONE
    AND (valid_from > $now OR (valid_until != NONE AND valid_until > $now))))
    .filter(|$t| $t != NONE AND $t > $now));
"""
_NEXT_BOUNDARY_IDS: Final = """
LET $now = time::now();
LET $edges = array::distinct(array::flatten(
    (SELECT VALUE array::concat(->fact, <-fact) FROM $ids)));
RETURN array::min(array::flatten((SELECT VALUE [valid_from, valid_until] FROM $edges
    WHERE retracted_at = NONE
    AND (valid_from > $now OR (valid_until != NONE AND valid_until > $now))))
    .filter(|$t| $t != NONE AND $t > $now));
"""
# The engine's clock in versionstamp units (milliseconds shifted by 16 bits), as the recall
# index reads it.
_CLOCK: Final = "RETURN time::millis(time::now());"


# A valid time this close to the clock is looked at in the database (its clock decides).
_BOUNDARY_MARGIN: Final = dt.timedelta(seconds=1)


def _near(boundary: dt.datetime | None) -> bool:
    """Whether the view's next valid-time boundary is reached, or nearly, by this process's
    clock (an embedded engine's clock is the same)."""
    return boundary is not None and dt.datetime.now(dt.UTC) + _BOUNDARY_MARGIN >= boundary


class _FeedUnavailable(Exception):
    """This session cannot read the change feeds (an agent's): no view."""


def _key(value: Any) -> str | None:
    if isinstance(value, RecordId):
        return str(value.key)
    if isinstance(value, str) and ":" in value:
        return value.split(":", 1)[1].strip("`⟨⟩")
    return None


@dataclass
class _ScopeView:
    """A scope's view, the versionstamp it reflects and what tells which entities a change
    touches."""

    scope: str
    view: GraphView = field(default_factory=GraphView)
    versionstamp: int = -1
    boundary: dt.datetime | None = None
    # The store's write mark read before the last look that reached the present (-1: none):
    # while it is unchanged, nothing was written since.
    writes: int = -1
    ids: dict[str, str] = field(default_factory=dict)  # entity key -> name
    generation: int = 0  # how many changes the view took in (resource subscriptions)
    memories: dict[str, set[str]] = field(default_factory=dict)  # memory key -> names
    lock: anyio.Lock = field(default_factory=anyio.Lock)

    def note(self, sub: graph.Subgraph, replaced: Iterable[str]) -> None:
        for name in replaced:
            self.ids.pop(graph.entity_id(self.scope, name), None)
        for e in sub.entities:
            self.ids[e.id] = e.name
        for name, obs in sub.observations.items():
            for o in obs:
                self.memories.setdefault(o.memory, set()).add(name)


class Views:
    """The views of the scopes this server answers for."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.scopes: dict[str, _ScopeView] = {}
        self.usable = True

    async def current(self, scope: str) -> GraphView:
        """The view of ``scope``, in step with the database as of this call."""
        if not self.usable:
            return await self._read_whole(scope)
        sv = self.scopes.get(scope)
        if sv is None:
            sv = self.scopes[scope] = _ScopeView(scope=scope)
        async with sv.lock:
            try:
                await self._catch_up(sv)
            except _FeedUnavailable as exc:
                log.info("surreal-store mcp: graph answers read the database each time: %s", exc)
                self.usable = False
                self.scopes.clear()
                return await self._read_whole(scope)
            return sv.view

    def generation(self, scope: str) -> int:
        """How many changes the view of ``scope`` has taken in (-1: none is kept)."""
        sv = self.scopes.get(scope)
        return sv.generation if sv is not None else -1

    async def _read_whole(self, scope: str) -> GraphView:
        sub = await graph.read_graph(self.session.store, scope=scope)
        view = GraphView()
        view.replace((), entities_of(sub), relations_of(sub))
        return view

    async def _look(
        self, since: int, clock: bool = False
    ) -> tuple[list[list[dict[str, Any]]], int | None, bool, dt.datetime | None]:
        """The changes to the graph's tables since ``since`` (a page of the database's
        feed, one list per table), the last versionstamp the page read (``None``: none),
        whether the page was full (more may follow) and, with ``clock``, the engine's time,
        in one round trip."""
        text = look(since, _FEED_PAGE) + ("RETURN time::now();" if clock else "")
        try:
            rows = await self.session.store.execute(text, idempotent=True)
        except PermissionDeniedError as exc:
            raise _FeedUnavailable(str(exc)) from None
        except QueryError as exc:
            low = str(exc).lower()
            if "not allowed" in low or "permission" in low or "changefeed" in low:
                raise _FeedUnavailable(str(exc)) from None
            raise
        entries = rows[0] if rows and isinstance(rows[0], list) else []
        last = max((int(e["versionstamp"]) for e in entries), default=None)
        now = rows[1] if clock else None
        return tables_of(entries, _FEED_TABLES), last, len(entries) >= _FEED_PAGE, now

    async def _rebuild(self, sv: _ScopeView) -> None:
        db = self.session.store
        ms = await db.query_required_single(_CLOCK, int, idempotent=True)
        start = max(0, (int(ms) - 1000) << 16)  # a second early, for clocks that step
        sub = await graph.read_graph(db, scope=sv.scope)
        boundary = await db.query_single(
            _NEXT_BOUNDARY_SCOPE, dt.datetime, idempotent=True, scope=sv.scope
        )
        sv.view = GraphView()
        sv.ids.clear()
        sv.memories.clear()
        sv.view.replace((), entities_of(sub), relations_of(sub))
        sv.note(sub, ())
        sv.versionstamp = start
        sv.boundary = boundary
        sv.generation += 1

    async def _catch_up(self, sv: _ScopeView) -> None:
        # Read before any look: a write answered after this is counted after it.
        writes = self.session.store.write_mark()
        if writes is not None and writes == sv.writes and not _near(sv.boundary):
            return  # an embedded store nothing wrote to since the view was in step
        await self._look_up(sv)
        sv.writes = -1 if writes is None else writes

    async def _look_up(self, sv: _ScopeView) -> None:
        if sv.versionstamp < 0:
            await self._look(0)  # a session that cannot read the feeds is told before a build
            await self._rebuild(sv)
        while True:
            feeds, last, full, now = await self._look(
                sv.versionstamp + 1, clock=sv.boundary is not None
            )
            if sv.boundary is not None and now is not None and now >= sv.boundary:
                await self._rebuild(sv)
                continue
            if last is None:
                return
            names, whole = self._touched(sv, feeds)
            if whole or len(names) > _REREAD_LIMIT:
                await self._rebuild(sv)
                sv.versionstamp = max(sv.versionstamp, last)
                continue
            if names:
                await self._reread(sv, names)
            sv.versionstamp = max(sv.versionstamp, last)
            if not full:
                return

    def _touched(self, sv: _ScopeView, feeds: list[list[dict[str, Any]]]) -> tuple[set[str], bool]:
        """The names of the entities of ``sv``'s scope that the feeds' changes touch, and
        whether a change cannot be placed (then the whole graph is read again)."""
        names: set[str] = set()
        entity_feed, fact_feed, observation_feed, memory_feed = feeds
        for table, feed in (
            ("entity", entity_feed),
            ("fact", fact_feed),
            ("observation", observation_feed),
            ("memory", memory_feed),
        ):
            for entry in feed:
                for change in entry.get("changes", ()):
                    if "define_table" in change:
                        return names, True
                    gone = change.get("delete")
                    if isinstance(gone, dict) and "original" not in gone:
                        # A removal names only the record: a memory (forgotten) or an
                        # observation link (id [memory, entity, position]) is placed by its id;
                        # anything else is read again whole.
                        placed = self._removed(sv, table, gone.get("id"))
                        if placed is None:
                            return names, True
                        names |= placed
                        continue
                    record = change.get("update") or (gone or {}).get("original")
                    if not isinstance(record, dict):
                        return names, True
                    if table == "memory":
                        names |= sv.memories.get(_key(record.get("id")) or "", set())
                        continue
                    if record.get("scope") != sv.scope:
                        continue
                    if table == "entity":
                        names.add(record["name"])
                        key = _key(record.get("id"))
                        if key is not None:  # facts to it, in the same look, are placed
                            sv.ids[key] = record["name"]
                        continue
                    ends = ("in", "out") if table == "fact" else ("out",)
                    for end in ends:
                        name = sv.ids.get(_key(record.get(end)) or "")
                        if name is None:
                            return names, True
                        names.add(name)
                    if table == "observation":
                        key = _key(record.get("in"))
                        if key is not None:
                            sv.memories.setdefault(key, set()).add(
                                sv.ids[_key(record["out"]) or ""]
                            )
        return names, False

    @staticmethod
    def _removed(sv: _ScopeView, table: str, rid: Any) -> set[str] | None:
        """The entities of ``sv`` that the removal of record ``rid`` of ``table`` touches, or
        ``None`` when it cannot be placed."""
        if table == "memory":
            return set(sv.memories.get(_key(rid) or "", set()))
        if table == "observation" and isinstance(rid, RecordId) and isinstance(rid.key, list):
            parts = rid.key
            name = sv.ids.get(str(parts[1])) if len(parts) == 3 else None
            # An entity of another scope (or none this view holds) is not this view's.
            return {name} if name is not None else set()
        return None

    async def _reread(self, sv: _ScopeView, names: set[str]) -> None:
        db = self.session.store
        ordered = sorted(names)
        sub = await graph.open_nodes(db, names=ordered, scope=sv.scope)
        ids = [RecordId("entity", graph.entity_id(sv.scope, n)) for n in ordered]
        boundary = await db.query_single(_NEXT_BOUNDARY_IDS, dt.datetime, idempotent=True, ids=ids)
        if boundary is not None and (sv.boundary is None or boundary < sv.boundary):
            sv.boundary = boundary
        # Facts reach entities not re-read: those ends are kept as they are.
        sv.view.replace(ordered, entities_of(sub), relations_of(sub))
        sv.note(sub, ordered)
        sv.generation += 1
