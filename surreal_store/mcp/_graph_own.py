"""The MCP server's own knowledge-graph tools, beside the reference server's nine
(:mod:`._graph_tools`): the graph as of a time, facts with their times, where a fact came from,
asserting facts with a source and valid time, declaring predicates, and distrusting a source
(which hides what was derived from it)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from .. import graph, provenance
from .._types import RecordId
from ._graph_feed import Session
from ._graph_view import GraphView, entities_of, relations_of

__all__ = ["register_own_graph_tools"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="ignore")


_READ: Final = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
_WRITE: Final = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)

Scope = Annotated[
    str | None,
    Field(description="The graph's scope (default: 'default'; for an agent, its granted scope)."),
]
ValidAt = Annotated[
    dt.datetime | None,
    Field(description="What was true in the world at this time (ISO 8601; default: now)."),
]
KnownAt = Annotated[
    dt.datetime | None,
    Field(description="As the store knew it at this time (ISO 8601; default: now)."),
]


class FactArg(_Args):
    subject: str = Field(description="The entity the fact is about (its name).")
    predicate: str = Field(description="The relation, in active voice (works_at).")
    object: str = Field(description="The other entity (its name).")
    value: Any = Field(None, description="Any JSON value the fact carries (optional).")
    valid_from: dt.datetime | None = Field(None, description="True from (default: now).")
    valid_until: dt.datetime | None = Field(None, description="True until (default: open).")


# Where a fact came from: its source edges and what they point at, one query.
_FACT_SOURCES: Final = """
SELECT <string>out AS source, record::tb(out) AS kind, how, created_at,
    (IF record::tb(out) = 'run_event' { out.{kind, payload, timestamp} }
     ELSE IF record::tb(out) = 'memory' { out.{content, kind} }
     ELSE IF record::tb(out) = 'annotation' { out.{user, note} }
     ELSE { NONE }) AS detail
FROM fact_source WHERE in = $fact ORDER BY created_at, source;
"""
# The facts a source is behind (directly), with whether each is hidden now.
_SOURCED_FACTS: Final = """
SELECT record::id(id) AS id, in.name AS subject, predicate, out.name AS object,
    invalidated_at != NONE AS hidden
FROM array::distinct((SELECT VALUE <-fact_source<-fact FROM ONLY $source) ?? []);
"""


def _fact_out(f: graph.Fact) -> dict[str, Any]:
    return f.model_dump(mode="json")


def register_own_graph_tools(server: MCPServer[Any], session: Session) -> None:
    """Tools the reference server has no word for: the graph as of a time, facts with their
    times, where a fact came from, asserting facts with a source and valid time, and
    distrusting a source (which hides what was derived from it)."""

    @server.tool(annotations=_READ)
    async def graph_as_of(
        valid_at: ValidAt = None,
        known_at: KnownAt = None,
        names: Annotated[
            list[str] | None, Field(description="As open_nodes: these entities (default: all).")
        ] = None,
        query: Annotated[
            str | None, Field(description="As search_nodes: entities matching this.")
        ] = None,
        include_invalidated: Annotated[
            bool, Field(description="Show facts and observations from distrusted sources too.")
        ] = False,
        scope: Scope = None,
    ) -> dict[str, Any]:
        """The knowledge graph in the shape read_graph, open_nodes and search_nodes give, as
        it was true at ``valid_at`` and as the store knew it at ``known_at``."""

        async def go() -> dict[str, Any]:
            s = await session.scope(scope, "graph_as_of")
            if names is not None:
                sub = await graph.open_nodes(
                    session.store, names=names, scope=s, valid_at=valid_at, known_at=known_at,
                    include_invalidated=include_invalidated,
                )  # fmt: skip
            else:
                sub = await graph.read_graph(
                    session.store, scope=s, valid_at=valid_at, known_at=known_at,
                    include_invalidated=include_invalidated,
                )  # fmt: skip
            view = GraphView()
            view.replace((), entities_of(sub), relations_of(sub))
            if query is not None:
                return view.search_nodes(query)
            if names is not None:
                return view.open_nodes(names)
            return view.read_graph()[0]

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def entity_facts(
        entity: Annotated[str, Field(description="The entity's name.")],
        predicate: str | None = None,
        valid_at: ValidAt = None,
        known_at: KnownAt = None,
        include_invalidated: bool = False,
        history: Annotated[
            bool,
            Field(description="Every version ever recorded (retracted, superseded, hidden)."),
        ] = False,
        scope: Scope = None,
    ) -> dict[str, Any]:
        """The facts with ``entity`` at either end, with their ids, values, valid time
        (valid_from, valid_until), transaction time (recorded_at, retracted_at), supersession
        and whether a distrusted source hides them."""

        async def go() -> dict[str, Any]:
            s = await session.scope(scope, "entity_facts")
            if history:
                found = await graph.fact_history(
                    session.store, entity=entity, predicate=predicate, scope=s
                )
            else:
                found = await graph.facts(
                    session.store, entity=entity, predicate=predicate, scope=s,
                    valid_at=valid_at, known_at=known_at,
                    include_invalidated=include_invalidated,
                )  # fmt: skip
            return {"facts": [_fact_out(f) for f in found]}

        return await session.call(go)

    @server.tool(annotations=_READ)
    async def fact_sources(
        fact_id: Annotated[str, Field(description="A fact's id (from entity_facts).")],
    ) -> dict[str, Any]:
        """Where a fact came from: each source (a run event, a memory, a commit, a snapshot,
        an annotation) with what it holds (an imported file's line, a memory's content)."""

        async def go() -> dict[str, Any]:
            key = fact_id.removeprefix("fact:")
            if not key or not all(c.isalnum() or c in "-_" for c in key):
                raise ToolError(f"not a fact id: {fact_id!r}")
            rows = await session.store.query(
                _FACT_SOURCES, dict, idempotent=True, fact=RecordId("fact", key)
            )
            return {"fact": key, "sources": [_jsonable(r) for r in rows]}

        return await session.call(go)

    @server.tool(annotations=_WRITE)
    async def assert_facts(
        facts: list[FactArg],
        source: Annotated[
            str | None,
            Field(
                description="Where they came from: RUN:SEQ (a run's event), a memory id, or a "
                "record id (run_event:[...], commit:...)."
            ),
        ] = None,
        scope: Scope = None,
    ) -> dict[str, Any]:
        """Record facts between existing entities, with valid time and a source. A fact already
        current is not recorded again; a predicate declared single-valued supersedes the
        subject's other current values (they are kept, with their valid time closed)."""

        async def go() -> dict[str, Any]:
            s = await session.scope(scope, "assert_facts")
            # A FactArg holds NewFact's fields (with the descriptions the tool shows).
            new = [graph.NewFact.model_validate(f, from_attributes=True) for f in facts]
            recorded = await graph.assert_facts(session.store, facts=new, scope=s, source=source)
            return {"facts": [_fact_out(f) for f in recorded]}

        return await session.call(go)

    @server.tool(annotations=_WRITE)
    async def retract_facts(
        fact_ids: Annotated[list[str], Field(description="Ids of the facts to retract.")],
        scope: Scope = None,
    ) -> dict[str, Any]:
        """Retract facts: they stop being current, and reads as of an earlier known_at still
        see them."""

        async def go() -> dict[str, Any]:
            s = await session.scope(scope, "retract_facts")
            ids = [i.removeprefix("fact:") for i in fact_ids]
            done = await graph.retract_facts(session.store, facts=ids, scope=s)
            return {"retracted": [_fact_out(f) for f in done]}

        return await session.call(go)

    @server.tool(annotations=_WRITE)
    async def declare_predicate(
        name: str,
        single_valued: Annotated[
            bool, Field(description="A new value supersedes the old (works_at, lives_in).")
        ],
        scope: Scope = None,
    ) -> dict[str, Any]:
        """Declare a predicate single-valued (or not) in a scope."""

        async def go() -> dict[str, Any]:
            s = await session.scope(scope, "declare_predicate")
            p = await graph.declare_predicate(
                session.store, name=name, single_valued=single_valued, scope=s
            )
            return p.model_dump(mode="json")

        return await session.call(go)

    @server.tool(annotations=_WRITE)
    async def distrust_source(
        source: Annotated[
            str,
            Field(
                description="RUN:SEQ (a run's event, e.g. a line of an imported file), a memory "
                "id, or a record id (run_event:[...], commit:..., snapshot:...)."
            ),
        ],
        reason: Annotated[str, Field(description="Why it is no longer trusted.")],
        by: str | None = None,
    ) -> dict[str, Any]:
        """Distrust a source: the memories (observations among them) and facts derived from it
        are hidden from every answer; reversible with trust_source."""

        async def go() -> dict[str, Any]:
            r = await provenance.invalidate(session.store, source=source, reason=reason, by=by)
            return {"cause": r.cause, "memories": r.memories, "facts": await _sourced(r.cause)}

        return await session.call(go)

    @server.tool(annotations=_WRITE)
    async def trust_source(
        source: Annotated[str, Field(description="A source given to distrust_source.")],
    ) -> dict[str, Any]:
        """Undo distrust_source: what it hid comes back (unless another distrusted source
        still hides it)."""

        async def go() -> dict[str, Any]:
            restored = await provenance.restore(session.store, source=source)
            return {"restored": list(restored), "facts": restored.facts}

        return await session.call(go)

    async def _sourced(cause: str) -> list[dict[str, Any]]:
        """The facts recorded from ``cause`` directly, and whether each is hidden now."""
        try:
            rid = RecordId.parse(cause)
        except Exception:  # a memory's cause, or a form without facts
            return []
        if rid.table == "memory":
            return []
        rows = await session.store.query(_SOURCED_FACTS, dict, idempotent=True, source=rid)
        return [_jsonable(r) for r in rows]


def _jsonable(value: Any) -> Any:
    """A row as JSON: record ids and times as strings."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, RecordId):
        return str(value)
    return value
