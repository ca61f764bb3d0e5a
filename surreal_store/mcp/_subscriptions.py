"""Resource subscriptions: ``notifications/resources/updated`` for ``memory://knowledge-graph``
after the graph changes, and for ``memory://{id}`` after that memory changes, whoever writes.

The reference memory server offers ``resources/subscribe`` for its graph resource and notifies
after each of its own write tools. Here the store is watched instead, so a write by anyone
(this server's tools, the Python API, raw SurrealQL, another process on a server) is told:

- the graph: the server's view of the session's scope (:class:`~._graph_feed.Views`, kept in
  step by the change feeds) is brought up to date, and a change it took in is told; a session
  that cannot read the feeds (an agent's) compares the graph it reads each time instead;
- memories: the memory table's change feed (schema 018) names the memories written.

Both protocol eras are served: handshake-era clients ``resources/subscribe`` (each connection
told of its own URIs), 2026-07-28 clients ``subscriptions/listen`` (the server's bus; the
listen handler keeps to each stream's filter). The store is watched only while someone is
subscribed: a look every :data:`POLL_S` seconds (one round trip when nothing changed).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import mcp_types as types
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ServerEvent

from .._errors import PermissionDeniedError, QueryError
from .._types import RecordId

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.mcpserver import MCPServer

    from ._graph_feed import Session, Views

__all__ = ["GRAPH_URI", "POLL_S", "ListenerBus", "Subscriptions"]

log = logging.getLogger("surreal_store.mcp")

GRAPH_URI: Final = "memory://knowledge-graph"
POLL_S: Final = 0.25
"""How often the store is looked at while someone is subscribed."""
_SLOW_POLL_S: Final = 1.0  # a session that reads the whole graph to compare it
_MEMORY_PAGE: Final = 256
_CLOCK: Final = "RETURN time::millis(time::now());"


class ListenerBus(InMemorySubscriptionBus):
    """The server's ``subscriptions/listen`` bus, counting its open streams so that the store
    is watched only while one is open."""

    def __init__(self) -> None:
        super().__init__()
        self.listeners = 0

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        undo = super().subscribe(listener)
        self.listeners += 1
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if not done:
                done = True
                self.listeners -= 1
            undo()

        return unsubscribe


class Subscriptions:
    """Who is subscribed to what, and the task that watches the store for them."""

    def __init__(self, session: Session, views: Views, bus: ListenerBus) -> None:
        self.session = session
        self.views = views
        self.bus = bus
        # A handshake-era connection -> (a session to send on, its URIs).
        self.legacy: dict[int, tuple[Any, set[str]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._graph: Any = None
        self._memories: int | None = None

    def install(self, server: MCPServer[Any]) -> None:
        low = server._lowlevel_server
        listen = low.get_request_handler("subscriptions/listen")
        if listen is not None:
            serve = listen.handler

            # What was there when the client is acknowledged is what later changes are
            # told against: the store is looked at before the stream opens.
            async def listen_after_a_look(ctx: ServerRequestContext[Any, Any], params: Any) -> Any:
                await self._arm()
                return await serve(ctx, params)

            low.add_request_handler("subscriptions/listen", listen.params_type, listen_after_a_look)
        low.add_request_handler(
            "resources/subscribe", types.SubscribeRequestParams, self._on_subscribe
        )
        low.add_request_handler(
            "resources/unsubscribe", types.UnsubscribeRequestParams, self._on_unsubscribe
        )

    # -- handshake-era requests ---------------------------------------------------------------

    async def _on_subscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        connection = getattr(ctx.session, "_connection", ctx.session)
        key = id(connection)
        if key not in self.legacy:
            self.legacy[key] = (ctx.session, set())
            stack = getattr(connection, "exit_stack", None)
            if stack is not None:  # the connection's end ends its subscriptions
                stack.callback(self.legacy.pop, key, None)
        self.legacy[key][1].add(str(params.uri))
        await self._arm()
        return types.EmptyResult()

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        connection = getattr(ctx.session, "_connection", ctx.session)
        entry = self.legacy.get(id(connection))
        if entry is not None:
            entry[1].discard(str(params.uri))
            if not entry[1]:
                self.legacy.pop(id(connection), None)
        return types.EmptyResult()

    # -- watching ------------------------------------------------------------------------------

    def _wanted(self) -> bool:
        return self.bus.listeners > 0 or any(uris for _, uris in self.legacy.values())

    async def _arm(self) -> None:
        """Start watching, from what the store holds now, unless a watch runs (its look is
        current). The watch looks first after a pause, by when the subscription that armed
        it is registered (nothing awaits in between)."""
        if self._task is not None and not self._task.done():
            return
        try:
            self._graph = await self._graph_mark()
            self._memories = await self._clock()
        except Exception as exc:  # a subscription is still taken: nothing is told
            log.warning("surreal-store mcp: resource subscriptions are not told: %s", exc)
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        try:
            while True:
                await asyncio.sleep(POLL_S if self.views.usable else _SLOW_POLL_S)
                if not self._wanted():
                    break
                changed: list[str] = []
                mark = await self._graph_mark()
                if mark != self._graph:
                    self._graph = mark
                    changed.append(GRAPH_URI)
                if self._memories is not None:
                    self._memories, ids = await self._memory_changes(self._memories)
                    changed += [f"memory://{i}" for i in sorted(ids)]
                for uri in changed:
                    await self._notify(uri)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store closed under it, or the session ended
            log.info("surreal-store mcp: resource subscriptions stopped: %s", exc)

    async def _graph_mark(self) -> Any:
        """What changes when the graph of the session's scope does."""
        try:
            scope = await self.session.scope(None, GRAPH_URI)
        except Exception:  # an agent of several scopes: the resource has none to follow
            return None
        view = await self.views.current(scope)
        if self.views.usable:
            return self.views.generation(scope)
        return hashlib.sha256(view.read_graph()[1].encode()).hexdigest()

    async def _clock(self) -> int | None:
        """Where the memory feed is read from (now), or ``None``: this session cannot."""
        try:
            ms = await self.session.store.query_required_single(_CLOCK, int, idempotent=True)
            await self._memory_changes(int(ms) << 16)
        except (PermissionDeniedError, QueryError) as exc:
            log.info("surreal-store mcp: memory://{id} subscriptions are not told: %s", exc)
            return None
        return int(ms) << 16

    async def _memory_changes(self, since: int) -> tuple[int, set[str]]:
        """The memories written since versionstamp ``since`` and where to look next."""
        ids: set[str] = set()
        while True:
            rows = await self.session.store.execute(
                f"SHOW CHANGES FOR TABLE memory SINCE {int(since)} LIMIT {_MEMORY_PAGE};",
                idempotent=True,
            )
            feed = rows[0] if rows and isinstance(rows[0], list) else []
            for entry in feed:
                since = max(since, int(entry["versionstamp"]) + 1)
                for change in entry.get("changes", ()):
                    record = change.get("update") or change.get("delete") or {}
                    rid = record.get("id") if isinstance(record, dict) else None
                    if isinstance(rid, RecordId):
                        ids.add(str(rid.key))
            if len(feed) < _MEMORY_PAGE:
                return since, ids

    async def _notify(self, uri: str) -> None:
        await self.bus.publish(ResourceUpdated(uri=uri))
        for key, (session, uris) in list(self.legacy.items()):
            if uri not in uris:
                continue
            try:
                await session.send_resource_updated(uri)
            except Exception:  # the connection is gone
                self.legacy.pop(key, None)
