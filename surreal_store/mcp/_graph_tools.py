"""The MCP reference memory server's nine tools and its ``memory://knowledge-graph`` resource,
on the store's knowledge graph, plus the store's own graph tools (the graph as of a time,
facts with their times and sources).

The nine take the reference's arguments and give its answers: the same names, argument
schemas, result shapes (``structuredContent`` and the same text beside it), and the same
error text for an unknown entity. Where the reference is defective (docs/mcp-memory-compat.md)
they do what its documentation means: repeats within one call count once, a relation whose
end is not an entity is refused, concurrent writes are all kept.

Reads (``read_graph``, ``search_nodes``, ``open_nodes``, the resource) are answered from a
:class:`~._graph_view.GraphView` of the session's scope, derived from the store: it is built by
one read of the graph and kept in step by the change feeds of the graph's tables (schema 025)
and of the memory table. Every answer first looks at the feeds (one round trip); what changed
since is read again (the entities touched, with their facts and observations) before the
answer, so the view is never behind the database. A session that cannot read the feeds (an
agent's) reads the graph from the database on every call."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Final

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from .. import graph
from .._errors import PermissionDeniedError, QueryError, StoreError
from .._types import RecordId
from ._graph_view import GraphView, Relation, ViewEntity, graph_text

if TYPE_CHECKING:
    from ._server import _Session

__all__ = ["register_graph_tools"]

log = logging.getLogger("surreal_store.mcp")

# -- the reference's arguments ----------------------------------------------------------------


class _Args(BaseModel):
    # Unknown keys are dropped, as the reference's schema library does.
    model_config = ConfigDict(extra="ignore", populate_by_name=False)


class EntityArg(_Args):
    name: str = Field(description="The name of the entity")
    entityType: str = Field(description="The type of the entity")
    observations: list[str] = Field(
        description="An array of observation contents associated with the entity"
    )


class RelationArg(_Args):
    from_: str = Field(alias="from", description="The name of the entity where the relation starts")
    to: str = Field(description="The name of the entity where the relation ends")
    relationType: str = Field(description="The type of the relation")

    @property
    def triple(self) -> Relation:
        return (self.from_, self.to, self.relationType)


class ObservationArg(_Args):
    entityName: str = Field(description="The name of the entity to add the observations to")
    contents: list[str] = Field(description="An array of observation contents to add")


class DeletionArg(_Args):
    entityName: str = Field(description="The name of the entity containing the observations")
    observations: list[str] = Field(description="An array of observations to delete")


# -- the reference's results ------------------------------------------------------------------

_ENTITY_OUT: Final = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "The name of the entity"},
        "entityType": {"type": "string", "description": "The type of the entity"},
        "observations": {
            "type": "array",
            "items": {"type": "string"},
            "description": "An array of observation contents associated with the entity",
        },
    },
    "required": ["name", "entityType", "observations"],
    "additionalProperties": False,
}
_RELATION_OUT: Final = {
    "type": "object",
    "properties": {
        "from": {
            "type": "string",
            "description": "The name of the entity where the relation starts",
        },
        "to": {"type": "string", "description": "The name of the entity where the relation ends"},
        "relationType": {"type": "string", "description": "The type of the relation"},
    },
    "required": ["from", "to", "relationType"],
    "additionalProperties": False,
}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_GRAPH_OUT: Final = _object(
    {
        "entities": {"type": "array", "items": _ENTITY_OUT},
        "relations": {"type": "array", "items": _RELATION_OUT},
    }
)
_DONE_OUT: Final = _object({"success": {"type": "boolean"}, "message": {"type": "string"}})
_OUTPUT: Final = {
    "create_entities": _object({"entities": {"type": "array", "items": _ENTITY_OUT}}),
    "create_relations": _object({"relations": {"type": "array", "items": _RELATION_OUT}}),
    "add_observations": _object(
        {
            "results": {
                "type": "array",
                "items": _object(
                    {
                        "entityName": {"type": "string"},
                        "addedObservations": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            }
        }
    ),
    "delete_entities": _DONE_OUT,
    "delete_observations": _DONE_OUT,
    "delete_relations": _DONE_OUT,
    "read_graph": _GRAPH_OUT,
    "search_nodes": _GRAPH_OUT,
    "open_nodes": _GRAPH_OUT,
}


def _result(part: Any, structured: dict[str, Any], text: str | None = None) -> CallToolResult:
    """The reference's answer: ``structured`` content, and as text ``JSON.stringify(part,
    null, 2)`` (or ``text``)."""
    return CallToolResult(
        content=[TextContent(type="text", text=graph_text(part) if text is None else text)],
        structured_content=structured,
    )


def _done(message: str) -> CallToolResult:
    return _result(None, {"success": True, "message": message}, message)


def _not_found(name: str) -> ToolError:
    # The reference's own words (its add_observations), for every tool that needs an entity.
    return ToolError(f"Entity with name {name} not found")


def _mcp_annotations(read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=False,
    )


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


class _FeedUnavailable(Exception):
    """This session cannot read the change feeds (an agent's): no view."""


def _key(value: Any) -> str | None:
    if isinstance(value, RecordId):
        return str(value.key)
    if isinstance(value, str) and ":" in value:
        return value.split(":", 1)[1].strip("`⟨⟩")
    return None


def _entities_of(sub: graph.Subgraph) -> list[ViewEntity]:
    return [
        ViewEntity(
            name=e.name,
            type=e.type,
            observations=list(dict.fromkeys(sub.contents(e.name))),
            order=(e.recorded_at, e.name),
        )
        for e in sub.entities
    ]


def _relations_of(sub: graph.Subgraph) -> list[tuple[Relation, tuple[Any, ...]]]:
    return [((f.subject, f.object, f.predicate), (f.recorded_at, f.id)) for f in sub.facts]


@dataclass
class _ScopeView:
    """A scope's view, the versionstamp it reflects and what tells which entities a change
    touches."""

    scope: str
    view: GraphView = field(default_factory=GraphView)
    versionstamp: int = -1
    boundary: dt.datetime | None = None
    ids: dict[str, str] = field(default_factory=dict)  # entity key -> name
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


class _Views:
    """The views of the scopes this server answers for."""

    def __init__(self, session: _Session) -> None:
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

    async def _read_whole(self, scope: str) -> GraphView:
        sub = await graph.read_graph(self.session.store, scope=scope)
        view = GraphView()
        view.replace((), _entities_of(sub), _relations_of(sub))
        return view

    async def _look(self, since: int) -> tuple[list[list[dict[str, Any]]], dt.datetime]:
        text = "".join(
            f"SHOW CHANGES FOR TABLE {t} SINCE {int(since)} LIMIT {_FEED_PAGE};\n"
            for t in _FEED_TABLES
        )
        try:
            rows = await self.session.store.execute(text + "RETURN time::now();", idempotent=True)
        except PermissionDeniedError as exc:
            raise _FeedUnavailable(str(exc)) from None
        except QueryError as exc:
            low = str(exc).lower()
            if "not allowed" in low or "permission" in low or "changefeed" in low:
                raise _FeedUnavailable(str(exc)) from None
            raise
        feeds = [r if isinstance(r, list) else [] for r in rows[: len(_FEED_TABLES)]]
        now = rows[len(_FEED_TABLES)]
        return feeds, now

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
        sv.view.replace((), _entities_of(sub), _relations_of(sub))
        sv.note(sub, ())
        sv.versionstamp = start
        sv.boundary = boundary

    async def _catch_up(self, sv: _ScopeView) -> None:
        if sv.versionstamp < 0:
            await self._look(0)  # a session that cannot read the feeds is told before a build
            await self._rebuild(sv)
        while True:
            feeds, now = await self._look(sv.versionstamp + 1)
            if sv.boundary is not None and now >= sv.boundary:
                await self._rebuild(sv)
                continue
            if not any(feeds):
                return
            names, whole = self._touched(sv, feeds)
            last = max(int(entry["versionstamp"]) for feed in feeds for entry in feed)
            if whole or len(names) > _REREAD_LIMIT:
                await self._rebuild(sv)
                sv.versionstamp = max(sv.versionstamp, last)
                continue
            if names:
                await self._reread(sv, names)
            sv.versionstamp = last
            if all(len(feed) < _FEED_PAGE for feed in feeds):
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
                    record = change.get("update") or (change.get("delete") or {}).get("original")
                    if not isinstance(record, dict):
                        return names, True
                    if table == "memory":
                        names |= sv.memories.get(_key(record.get("id")) or "", set())
                        continue
                    if record.get("scope") != sv.scope:
                        continue
                    if table == "entity":
                        names.add(record["name"])
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

    async def _reread(self, sv: _ScopeView, names: set[str]) -> None:
        db = self.session.store
        ordered = sorted(names)
        sub = await graph.open_nodes(db, names=ordered, scope=sv.scope)
        ids = [RecordId("entity", graph.entity_id(sv.scope, n)) for n in ordered]
        boundary = await db.query_single(_NEXT_BOUNDARY_IDS, dt.datetime, idempotent=True, ids=ids)
        if boundary is not None and (sv.boundary is None or boundary < sv.boundary):
            sv.boundary = boundary
        # Facts reach entities not re-read: those ends are kept as they are.
        sv.view.replace(ordered, _entities_of(sub), _relations_of(sub))
        sv.note(sub, ordered)


# -- the tools ------------------------------------------------------------------------------


def register_graph_tools(server: MCPServer[Any], session: _Session) -> None:
    """Serve the reference memory server's nine tools and ``memory://knowledge-graph`` on
    ``session``'s store, and the store's own graph tools."""
    views = _Views(session)

    def tool(
        name: str, title: str, description: str, hints: ToolAnnotations
    ) -> Callable[[Callable[..., Awaitable[CallToolResult]]], Any]:
        def wrap(fn: Callable[..., Awaitable[CallToolResult]]) -> Any:
            server.add_tool(fn, name=name, title=title, description=description, annotations=hints)
            # The reference's output schema, published as is; the result is built to it.
            registered = server._tool_manager.get_tool(name)
            assert registered is not None
            registered.fn_metadata.output_schema = _OUTPUT[name]
            return fn

        return wrap

    async def run(tool_name: str, fn: Callable[[str], Awaitable[CallToolResult]]) -> CallToolResult:
        async def go() -> CallToolResult:
            return await fn(await session.scope(None, tool_name))

        try:
            return await session.call(go)
        except ToolError as exc:
            # The error as the reference gives it: the message alone (raising would add the
            # MCP library's "Error executing tool NAME: " before it).
            return CallToolResult(content=[TextContent(type="text", text=str(exc))], is_error=True)

    async def existing(scope: str, names: Sequence[str]) -> set[str]:
        view = await views.current(scope)
        return {n for n in names if n in view.entities}

    @tool(
        "create_entities",
        "Create Entities",
        "Create multiple new entities in the knowledge graph",
        _mcp_annotations(False, False, False),
    )
    async def create_entities(entities: list[EntityArg]) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            first: dict[str, EntityArg] = {}
            for e in entities:
                first.setdefault(e.name, e)
            wanted = [graph.NewEntity(name=e.name, type=e.entityType) for e in first.values()]
            observations = {
                e.name: list(dict.fromkeys(e.observations))
                for e in first.values()
                if e.observations
            }
            created = await graph.create_entities(session.store, entities=wanted, scope=scope)
            made = {c.name for c in created}
            todo = {n: c for n, c in observations.items() if n in made}
            if todo:
                try:
                    await graph.add_observations_many(session.store, observations=todo, scope=scope)
                except BaseException:
                    # Nothing half-way: the entities this call made go again.
                    with anyio.CancelScope(shield=True):
                        await graph.delete_entities(session.store, names=sorted(made), scope=scope)
                    raise
            out = [
                {
                    "name": n,
                    "entityType": first[n].entityType,
                    "observations": observations.get(n, []),
                }
                for n in first
                if n in made
            ]
            return _result(out, {"entities": out})

        return await run("create_entities", go)

    @tool(
        "create_relations",
        "Create Relations",
        "Create multiple new relations between entities in the knowledge graph. Relations "
        "should be in active voice",
        _mcp_annotations(False, False, False),
    )
    async def create_relations(relations: list[RelationArg]) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            triples = list(dict.fromkeys(r.triple for r in relations))
            ends = list(dict.fromkeys(n for t in triples for n in t[:2]))
            there = await existing(scope, ends)
            for t in triples:
                for end in t[:2]:
                    if end not in there:
                        raise _not_found(end)
            facts = [graph.NewFact(subject=a, predicate=p, object=b) for a, b, p in triples]
            recorded = await graph.assert_facts(session.store, facts=facts, scope=scope)
            new = {(f.subject, f.object, f.predicate) for f in recorded}
            out = [
                {"from": a, "to": b, "relationType": p} for a, b, p in triples if (a, b, p) in new
            ]
            return _result(out, {"relations": out})

        return await run("create_relations", go)

    @tool(
        "add_observations",
        "Add Observations",
        "Add new observations to existing entities in the knowledge graph",
        _mcp_annotations(False, False, False),
    )
    async def add_observations(observations: list[ObservationArg]) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            there = await existing(scope, [o.entityName for o in observations])
            for o in observations:
                if o.entityName not in there:
                    raise _not_found(o.entityName)
            merged: dict[str, list[str]] = {}
            for o in observations:
                merged.setdefault(o.entityName, []).extend(o.contents)
            added = await graph.add_observations_many(
                session.store, observations=merged, scope=scope
            )
            # Each item reports what it added: a content repeated by a later item of the same
            # entity was added by the first.
            left = {name: list(contents) for name, contents in added.items()}
            out = []
            for o in observations:
                mine = []
                for c in dict.fromkeys(o.contents):
                    if c in left[o.entityName]:
                        left[o.entityName].remove(c)
                        mine.append(c)
                out.append({"entityName": o.entityName, "addedObservations": mine})
            return _result(out, {"results": out})

        return await run("add_observations", go)

    @tool(
        "delete_entities",
        "Delete Entities",
        "Delete multiple entities and their associated relations from the knowledge graph",
        _mcp_annotations(False, True, True),
    )
    async def delete_entities(
        entityNames: Annotated[list[str], Field(description="An array of entity names to delete")],
    ) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            if entityNames:
                await graph.delete_entities(session.store, names=entityNames, scope=scope)
            return _done("Entities deleted successfully")

        return await run("delete_entities", go)

    @tool(
        "delete_observations",
        "Delete Observations",
        "Delete specific observations from entities in the knowledge graph",
        _mcp_annotations(False, True, True),
    )
    async def delete_observations(deletions: list[DeletionArg]) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            merged: dict[str, list[str]] = {}
            for d in deletions:
                merged.setdefault(d.entityName, []).extend(d.observations)
            if merged:
                await graph.delete_observations_many(
                    session.store, observations=merged, scope=scope
                )
            return _done("Observations deleted successfully")

        return await run("delete_observations", go)

    @tool(
        "delete_relations",
        "Delete Relations",
        "Delete multiple relations from the knowledge graph",
        _mcp_annotations(False, True, True),
    )
    async def delete_relations(
        relations: Annotated[
            list[RelationArg], Field(description="An array of relations to delete")
        ],
    ) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            triples = {r.triple for r in relations}
            view = await views.current(scope)
            present = [t for t in triples if t in view.relations]
            if present:
                # Every current fact with that subject, predicate and object, whatever its
                # value: the relation the reference shows is gone.
                ids: list[str] = []
                for a, b, p in present:
                    found = await graph.facts(
                        session.store, subject=a, object=b, predicate=p, scope=scope
                    )
                    ids += [f.id for f in found]
                if ids:
                    await graph.retract_facts(session.store, facts=ids, scope=scope)
            return _done("Relations deleted successfully")

        return await run("delete_relations", go)

    @tool(
        "read_graph",
        "Read Graph",
        "Read the entire knowledge graph",
        _mcp_annotations(True, False, True),
    )
    async def read_graph() -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            data, text = (await views.current(scope)).read_graph()
            return _result(None, data, text)

        return await run("read_graph", go)

    @tool(
        "search_nodes",
        "Search Nodes",
        "Search for nodes in the knowledge graph based on a query",
        _mcp_annotations(True, False, True),
    )
    async def search_nodes(
        query: Annotated[
            str,
            Field(
                description="The search query to match against entity names, types, and "
                "observation content"
            ),
        ],
    ) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            data = (await views.current(scope)).search_nodes(query)
            return _result(data, data)

        return await run("search_nodes", go)

    @tool(
        "open_nodes",
        "Open Nodes",
        "Open specific nodes in the knowledge graph by their names",
        _mcp_annotations(True, False, True),
    )
    async def open_nodes(
        names: Annotated[list[str], Field(description="An array of entity names to retrieve")],
    ) -> CallToolResult:
        async def go(scope: str) -> CallToolResult:
            data = (await views.current(scope)).open_nodes(names)
            return _result(data, data)

        return await run("open_nodes", go)

    @server.resource(
        "memory://knowledge-graph",
        name="knowledge-graph",
        title="Knowledge Graph",
        description="The full knowledge graph with all entities and relations",
        mime_type="application/json",
    )
    async def knowledge_graph() -> str:
        async def go() -> str:
            view = await views.current(await session.scope(None, "memory://knowledge-graph"))
            return view.read_graph()[1]

        try:
            return await session.call(go)
        except ToolError as exc:  # a resource fails as a resource, with the same words
            raise StoreError(str(exc)) from exc
