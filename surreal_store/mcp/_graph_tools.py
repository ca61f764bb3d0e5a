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
and of the memory table. Every answer first looks at the feeds (one round trip; on an embedded
store none while nothing was written since the last, see :mod:`._graph_feed`); what changed
since is read again (the entities touched, with their facts and observations) before the
answer, so the view is never behind the database. A session that cannot read the feeds (an
agent's) reads the graph from the database on every call."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from .. import graph
from .._errors import ValidationError
from ..graph._create_observed import create_observed_entities
from ._fast import Answer, fast_tools
from ._graph_feed import Session, Views
from ._graph_own import register_own_graph_tools
from ._graph_view import Relation, graph_text

__all__ = ["register_graph_tools"]

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


def _result(part: Any, structured: dict[str, Any], text: str | None = None) -> Answer:
    """The reference's answer: ``structured`` content, and as text ``JSON.stringify(part,
    null, 2)`` (or ``text``)."""
    return Answer(graph_text(part) if text is None else text, structured)


def _done(message: str) -> Answer:
    return _result(None, {"success": True, "message": message}, message)


def _call_result(answer: Answer) -> CallToolResult:
    """An answer as the MCP library's result."""
    content = [TextContent(type="text", text=answer.text)]
    if answer.error:
        return CallToolResult(content=content, is_error=True)
    return CallToolResult(content=content, structured_content=answer.structured)


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


# -- the tools ------------------------------------------------------------------------------


def register_graph_tools(server: MCPServer[Any], session: Session) -> Views:
    """Serve the reference memory server's nine tools and ``memory://knowledge-graph`` on
    ``session``'s store, and the store's own graph tools; return the view they answer from
    (resource subscriptions follow it)."""
    views = Views(session)

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

    async def answer(tool_name: str, fn: Callable[[str], Awaitable[Answer]]) -> Answer:
        async def go() -> Answer:
            return await fn(await session.scope(None, tool_name))

        try:
            return await session.call(go)
        except ToolError as exc:
            # The error as the reference gives it: the message alone (raising would add the
            # MCP library's "Error executing tool NAME: " before it).
            return Answer(str(exc), error=True)

    async def run(tool_name: str, fn: Callable[[str], Awaitable[Answer]]) -> CallToolResult:
        return _call_result(await answer(tool_name, fn))

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
        async def go(scope: str) -> Answer:
            first: dict[str, EntityArg] = {}
            for e in entities:
                first.setdefault(e.name, e)
            wanted = [graph.NewEntity(name=e.name, type=e.entityType) for e in first.values()]
            observations = {
                e.name: list(dict.fromkeys(e.observations))
                for e in first.values()
                if e.observations
            }
            # One transaction: a reader (another client, a subscription) sees the entities
            # with their observations or neither, and a failure writes nothing.
            created, _ = await create_observed_entities(
                session.store, entities=wanted, observations=observations, scope=scope
            )
            made = {c.name for c in created}
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
        async def go(scope: str) -> Answer:
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
        async def go(scope: str) -> Answer:
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
        async def go(scope: str) -> Answer:
            # Names that are no entity (an empty one included) are skipped, as the reference
            # skips them.
            there = await existing(scope, entityNames)
            names = [n for n in dict.fromkeys(entityNames) if n in there]
            if names:
                await graph.delete_entities(session.store, names=names, scope=scope)
            return _done("Entities deleted successfully")

        return await run("delete_entities", go)

    @tool(
        "delete_observations",
        "Delete Observations",
        "Delete specific observations from entities in the knowledge graph",
        _mcp_annotations(False, True, True),
    )
    async def delete_observations(deletions: list[DeletionArg]) -> CallToolResult:
        async def go(scope: str) -> Answer:
            there = await existing(scope, [d.entityName for d in deletions])
            merged: dict[str, list[str]] = {}
            for d in deletions:
                if d.entityName in there:  # absent entities are skipped, as the reference does
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
        async def go(scope: str) -> Answer:
            # Every fact with that subject, predicate and object that the store holds and
            # whose valid time has not ended, whatever its value, hidden or not, and whether
            # it holds now or starts later: the relation the reference shows is gone, now and
            # when the clock reaches a later start. Facts that ended stay (history).
            now = dt.datetime.now(dt.UTC)
            ids: list[str] = []
            for a, b, p in dict.fromkeys(r.triple for r in relations):
                try:
                    found = await graph.fact_history(
                        session.store, subject=a, object=b, predicate=p, scope=scope
                    )
                except ValidationError:  # no entity or predicate has that name: absent
                    continue
                ids += [
                    f.id
                    for f in found
                    if f.retracted_at is None and (f.valid_until is None or f.valid_until > now)
                ]
            if ids:
                await graph.retract_facts(session.store, facts=ids, scope=scope)
            return _done("Relations deleted successfully")

        return await run("delete_relations", go)

    # The three reads are also answered by the stdio transport itself (._fast), when a call's
    # arguments are exactly theirs: the same functions, the same answers.
    fast = fast_tools(server)

    async def read_graph_answer() -> Answer:
        async def go(scope: str) -> Answer:
            data, text = (await views.current(scope)).read_graph()
            return _result(None, data, text)

        return await answer("read_graph", go)

    async def search_nodes_answer(query: str) -> Answer:
        async def go(scope: str) -> Answer:
            data = (await views.current(scope)).search_nodes(query)
            return _result(data, data)

        return await answer("search_nodes", go)

    async def open_nodes_answer(names: list[str]) -> Answer:
        async def go(scope: str) -> Answer:
            data = (await views.current(scope)).open_nodes(names)
            return _result(data, data)

        return await answer("open_nodes", go)

    @tool(
        "read_graph",
        "Read Graph",
        "Read the entire knowledge graph",
        _mcp_annotations(True, False, True),
    )
    async def read_graph() -> CallToolResult:
        return _call_result(await read_graph_answer())

    fast["read_graph"] = lambda args: read_graph_answer() if not args else None

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
        return _call_result(await search_nodes_answer(query))

    def search_nodes_fast(args: dict[str, Any]) -> Awaitable[Answer] | None:
        query = args.get("query")
        return search_nodes_answer(query) if len(args) == 1 and isinstance(query, str) else None

    fast["search_nodes"] = search_nodes_fast

    @tool(
        "open_nodes",
        "Open Nodes",
        "Open specific nodes in the knowledge graph by their names",
        _mcp_annotations(True, False, True),
    )
    async def open_nodes(
        names: Annotated[list[str], Field(description="An array of entity names to retrieve")],
    ) -> CallToolResult:
        return _call_result(await open_nodes_answer(names))

    def open_nodes_fast(args: dict[str, Any]) -> Awaitable[Answer] | None:
        names = args.get("names")
        if len(args) == 1 and isinstance(names, list) and all(isinstance(n, str) for n in names):
            return open_nodes_answer(names)
        return None

    fast["open_nodes"] = open_nodes_fast

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

        return await session.read(go)

    register_own_graph_tools(server, session)
    return views
