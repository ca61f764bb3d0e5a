"""A LangChain ``GraphStore`` on the knowledge graph (:mod:`surreal_store.graph`): the
``GraphDocument``s that LangChain's ``LLMGraphTransformer`` produces go in as they are, and
LangChain's graph chains read the schema and query the graph in SurrealQL."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar

from langchain_core.documents import Document

from .. import graph, memory
from .._api import public
from .._client import Store
from .._doors import Home, current_loop, sync_opener
from .._errors import ValidationError
from .._types import check_text
from ..graph._extract import PreparedWrite, prepare_extraction, write_prepared
from ._readonly import WriteQueryError, checked_query

T = TypeVar("T")

__all__ = [
    "GraphTransformerExtractor",
    "SurrealGraphStore",
    "WriteQueryError",
    "graph_document_extraction",
]

log = logging.getLogger("surreal_store.langchain")

_TYPE_NAMES: Final = {
    "string": "STRING",
    "int": "INTEGER",
    "float": "FLOAT",
    "decimal": "FLOAT",
    "number": "FLOAT",
    "bool": "BOOLEAN",
    "array": "LIST",
    "object": "MAP",
    "datetime": "DATE_TIME",
    "null": "NULL",
}
_UNTYPED: Final = "(untyped)"

# The shape of the graph in one round trip: entity types with their attribute keys and value
# types, predicates with those of their values, and the (subject type, predicate, object
# type) patterns. Current rows only: entities not deleted, facts not retracted nor hidden.
_SCHEMA: Final = """
LET $types = (SELECT type, array::group(attributes.entries().map(
        |$e| [$e[0], type::of($e[1])])) AS props
    FROM entity WHERE scope = $scope AND retracted_at = NONE GROUP BY type);
LET $predicates = (SELECT predicate, array::group(
        IF type::is_object(value) { value.entries().map(|$e| [$e[0], type::of($e[1])]) }
        ELSE IF value = NONE { [] } ELSE { [['value', type::of(value)]] }) AS props
    FROM fact WHERE scope = $scope AND retracted_at = NONE AND invalidated_at = NONE
    GROUP BY predicate);
LET $patterns = (SELECT in.type AS start, predicate AS type, out.type AS end
    FROM fact WHERE scope = $scope AND retracted_at = NONE AND invalidated_at = NONE
    GROUP BY start, type, end);
RETURN { types: $types, predicates: $predicates, patterns: $patterns };
"""


def _properties(groups: Iterable[Any]) -> list[dict[str, str]]:
    """``[{"property": key, "type": TYPE}]`` from the engine's groups of ``[key, type]``
    pairs, sorted by key (a key seen with several types: each)."""
    seen: set[tuple[str, str]] = set()
    for group in groups:
        for key, kind in group or []:
            seen.add((str(key), _TYPE_NAMES.get(str(kind), str(kind).upper())))
    return [{"property": k, "type": t} for k, t in sorted(seen)]


def _structured(raw: Mapping[str, Any]) -> dict[str, Any]:
    node_props: dict[str, list[dict[str, str]]] = {}
    for row in raw.get("types") or []:
        props = _properties(row.get("props") or [])
        node_props[str(row.get("type") or "")] = [{"property": "name", "type": "STRING"}, *props]
    rel_props = {
        str(row["predicate"]): _properties(row.get("props") or [])
        for row in raw.get("predicates") or []
    }
    relationships = sorted(
        (
            {
                "start": str(r.get("start") or ""),
                "type": str(r["type"]),
                "end": str(r.get("end") or ""),
            }
            for r in raw.get("patterns") or []
        ),
        key=lambda r: (r["start"], r["type"], r["end"]),
    )
    return {
        "node_props": dict(sorted(node_props.items())),
        "rel_props": dict(sorted(rel_props.items())),
        "relationships": relationships,
        "metadata": {"constraint": [], "index": []},
    }


def _label(kind: str) -> str:
    return kind or _UNTYPED


def _schema_text(structured: Mapping[str, Any], scope: str) -> str:
    def props(items: list[dict[str, str]]) -> str:
        return ", ".join(f"{p['property']}: {p['type']}" for p in items)

    nodes = [f"{_label(k)} {{{props(v)}}}" for k, v in structured["node_props"].items()]
    rels = [f"{k} {{{props(v)}}}" for k, v in structured["rel_props"].items() if v]
    patterns = [
        f"(:{_label(r['start'])})-[:{r['type']}]->(:{_label(r['end'])})"
        for r in structured["relationships"]
    ]
    return "\n".join(
        [
            f"A knowledge graph in SurrealDB (scope {scope!r}), queried in SurrealQL with "
            "$parameters for every value; $scope is this scope.",
            "Tables:",
            "- entity: a node. name (string, unique within its scope), type (string: the node "
            "label below), aliases (array<string>), summary (string), attributes (object: the "
            "node properties below), scope, retracted_at (NONE while the entity exists).",
            "- fact: a relationship, TYPE RELATION entity -> entity (in: the subject entity, "
            "out: the object entity). predicate (string: the relationship type below), value "
            "(the relationship properties below as an object, or NONE), valid_from / "
            "valid_until (datetime: when it holds in the world; valid_until NONE: still "
            "holds), recorded_at / retracted_at (when the store learned and unlearned it), "
            "invalidated_at (set while its source is distrusted), scope.",
            "Current facts have retracted_at = NONE AND invalidated_at = NONE. Example: "
            "SELECT in.name AS subject, predicate, out.name AS object, value FROM fact WHERE "
            "scope = $scope AND retracted_at = NONE AND invalidated_at = NONE AND in.name = "
            "$name;",
            "Node properties (name, and the keys of attributes):",
            *nodes,
            "Relationship properties (the keys of value):",
            *rels,
            "The relationships:",
            *patterns,
        ]
    )


# -- graph documents -----------------------------------------------------------------------


def _attr(obj: Any, name: str, what: str) -> Any:
    try:
        return getattr(obj, name)
    except AttributeError:
        raise ValidationError(f"{what} has no {name!r}: not a LangChain graph document") from None


def _node_name(node: Any, what: str) -> str:
    ident = _attr(node, "id", what)
    if isinstance(ident, int) and not isinstance(ident, bool):
        return str(ident)
    if not isinstance(ident, str):
        raise ValidationError(f"{what}: a node's id is a string or an int, not {ident!r}")
    return check_text(ident, f"{what}'s id", limit=1024)


def _node_type(node: Any, what: str) -> str:
    kind = _attr(node, "type", what)
    if kind is None:
        return ""
    return check_text(kind, f"{what}'s type", empty=True, limit=256)


def _props(obj: Any, what: str) -> dict[str, Any]:
    props = _attr(obj, "properties", what)
    if props is None:
        return {}
    if not isinstance(props, Mapping):
        raise ValidationError(f"{what}: properties must be a mapping, not {props!r}")
    return dict(props)


_PARTIAL_DATE: Final = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


def _when(value: Any, what: str) -> dt.datetime:
    """A time from a property: a datetime, a date (midnight UTC) or ISO 8601 text of either
    (a year, ``YYYY-MM``: its first day); without a zone, UTC."""
    when: dt.datetime | dt.date
    if isinstance(value, str):
        partial = _PARTIAL_DATE.match(value.strip())
        try:
            if partial:
                when = dt.date(int(partial[1]), int(partial[2] or 1), 1)
            else:
                when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(f"{what} is not an ISO 8601 date or time: {value!r}") from None
    elif isinstance(value, dt.date):
        when = value
    else:
        raise ValidationError(f"{what} is not a date or time: {value!r}")
    if not isinstance(when, dt.datetime):
        return dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


@public
def graph_document_extraction(
    document: Any,
    *,
    valid_from_property: str | None = None,
    valid_until_property: str | None = None,
) -> graph.Extraction:
    """A LangChain ``GraphDocument`` (``langchain_neo4j`` or ``langchain_community``'s, or
    anything of its shape) as an :class:`~surreal_store.graph.Extraction`.

    A node is an entity: its ``id`` the name (exact; an int id as its digits), its ``type``
    the entity's type, its ``properties`` the entity's attributes. A relationship is a fact
    ``source -type-> target``; its ``properties`` are the fact's value (an object; ``None``
    when it has none). ``valid_from_property`` / ``valid_until_property`` name relationship
    properties (ISO 8601 dates or times, as ``LLMGraphTransformer`` is asked to give them)
    that become the fact's valid time instead of part of its value.
    """
    if valid_from_property is not None and valid_from_property == valid_until_property:
        raise ValidationError("valid_from_property and valid_until_property are one name")
    nodes = _attr(document, "nodes", "a graph document")
    rels = _attr(document, "relationships", "a graph document")
    if not isinstance(nodes, Sequence) or not isinstance(rels, Sequence):
        raise ValidationError("a graph document's nodes and relationships must be lists")
    entities: list[graph.NewEntity] = []
    for i, node in enumerate(nodes):
        what = f"node {i}"
        name = _node_name(node, what)
        entities.append(
            graph.NewEntity(
                name=name, type=_node_type(node, what), attributes=_props(node, f"node {name!r}")
            )
        )
    facts: list[graph.NewFact] = []
    for i, rel in enumerate(rels):
        what = f"relationship {i}"
        ends = []
        for side in ("source", "target"):
            end = _attr(rel, side, what)
            name = _node_name(end, f"{what}'s {side}")
            ends.append(name)
            # An end that is not among the nodes is an entity all the same, with its type.
            entities.append(graph.NewEntity(name=name, type=_node_type(end, f"{what}'s {side}")))
        predicate = check_text(_attr(rel, "type", what), f"{what}'s type", limit=256)
        props = _props(rel, what)
        times: dict[str, dt.datetime | None] = {}
        for key in (valid_from_property, valid_until_property):
            if key is not None:
                raw = props.pop(key, None)
                times[key] = _when(raw, f"{what}'s {key}") if raw is not None else None
        facts.append(
            graph.NewFact(
                subject=ends[0],
                predicate=predicate,
                object=ends[1],
                value=props or None,
                valid_from=times.get(valid_from_property or ""),
                valid_until=times.get(valid_until_property or ""),
            )
        )
    return graph.Extraction(entities=entities, facts=facts)


def _source_memory(
    document: Any, *, scope: str, kind: str, tags: Sequence[str], what: str = "the document"
) -> memory.NewMemory:
    source = _attr(document, "source", what)
    if source is None:
        raise ValidationError(f"include_source=True, but {what} has no source")
    content = _attr(source, "page_content", f"{what}'s source")
    metadata = _attr(source, "metadata", f"{what}'s source")
    doc_id = getattr(source, "id", None)
    check_text(content, f"{what}'s source text", empty=True)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValidationError(f"{what}'s source metadata must be a mapping")
    return memory.NewMemory(
        content=content,
        scope=scope,
        key=check_text(doc_id, f"{what}'s source id", limit=512) if doc_id is not None else None,
        kind=kind,
        tags=tuple(tags),
        metadata=dict(metadata or {}),
    )


class GraphTransformerExtractor:
    """LangChain's ``LLMGraphTransformer`` (or anything with ``aconvert_to_graph_documents``)
    as a :class:`~surreal_store.graph.Extractor`, for :func:`surreal_store.graph.ingest`."""

    def __init__(
        self,
        transformer: Any,
        *,
        valid_from_property: str | None = None,
        valid_until_property: str | None = None,
    ) -> None:
        if not callable(getattr(transformer, "aconvert_to_graph_documents", None)):
            raise ValidationError(
                "GraphTransformerExtractor wraps an LLMGraphTransformer (something with "
                "aconvert_to_graph_documents)"
            )
        self.transformer = transformer
        self.valid_from_property = valid_from_property
        self.valid_until_property = valid_until_property

    async def extract(self, text: str) -> graph.Extraction:
        """The transformer's graph of ``text``."""
        documents = await self.transformer.aconvert_to_graph_documents(
            [Document(page_content=text)]
        )
        entities: list[graph.NewEntity] = []
        facts: list[graph.NewFact] = []
        for d in documents:
            one = graph_document_extraction(
                d,
                valid_from_property=self.valid_from_property,
                valid_until_property=self.valid_until_property,
            )
            entities += one.entities
            facts += one.facts
        return graph.Extraction(entities=entities, facts=facts)


# -- the graph store -------------------------------------------------------------------------


class SurrealGraphStore:
    """LangChain's ``GraphStore`` on an open :class:`~surreal_store.Store`'s knowledge graph
    (one ``scope`` of it).

    ::

        async with Store() as store:
            graph_store = SurrealGraphStore(store)
            docs = await LLMGraphTransformer(llm=llm).aconvert_to_graph_documents(documents)
            await graph_store.aadd_graph_documents(docs, include_source=True)
            rows = await graph_store.aquery(
                "SELECT out.name AS employer FROM fact WHERE in.name = $name "
                "AND predicate = 'WORKS_AT' AND retracted_at = NONE", {"name": "Marie Curie"})

    :meth:`add_graph_documents` writes nodes as entities (type and properties as type and
    attributes) and relationships as facts (see :func:`graph_document_extraction`); with
    ``include_source=True`` each document's source becomes a memory (kind ``source_kind``, its
    id the memory's key, its metadata the memory's) that its facts are sourced from, so
    distrusting it hides them. :meth:`query` runs SurrealQL; :attr:`get_schema` and
    :attr:`get_structured_schema` describe the graph as LangChain's graph QA chains expect.

    It satisfies ``langchain_neo4j``'s ``GraphStore`` protocol. The async methods are the real
    ones; the sync ones run them on the store's event loop from another thread
    (:meth:`from_url_sync` makes such a store).
    """

    def __init__(
        self,
        store: Store,
        *,
        scope: str = graph.DEFAULT_SCOPE,
        source_kind: str = graph.SOURCE_KIND,
        tags: Iterable[str] = (),
        valid_from_property: str | None = None,
        valid_until_property: str | None = None,
        embedder: memory.Embedder | None = None,
        allow_writes: bool = False,
    ) -> None:
        if not isinstance(store, Store):
            raise ValidationError("SurrealGraphStore needs an open surreal_store.Store")
        if embedder is not None and not isinstance(embedder, memory.Embedder):
            raise ValidationError("embedder must be a surreal_store.memory.Embedder")
        self.store = store
        self.scope = check_text(scope, "scope", limit=512)
        self.source_kind = check_text(source_kind, "source_kind", limit=128)
        if isinstance(tags, str):
            raise ValidationError("tags must be a list of strings, not one string")
        self.tags = [check_text(t, "a tag", limit=256) for t in tags]
        for name in (valid_from_property, valid_until_property):
            if name is not None:
                check_text(name, "a property name", limit=256)
        if valid_from_property is not None and valid_from_property == valid_until_property:
            raise ValidationError("valid_from_property and valid_until_property are one name")
        self.valid_from_property = valid_from_property
        self.valid_until_property = valid_until_property
        self.embedder = embedder
        if not isinstance(allow_writes, bool):
            raise ValidationError("allow_writes must be True or False")
        self.allow_writes = allow_writes
        self._home = Home(store, "graph store")
        self._structured: dict[str, Any] | None = None
        self._stale = True

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        /,
        url: str | None = None,
        *,
        scope: str = graph.DEFAULT_SCOPE,
        source_kind: str = graph.SOURCE_KIND,
        tags: Iterable[str] = (),
        valid_from_property: str | None = None,
        valid_until_property: str | None = None,
        embedder: memory.Embedder | None = None,
        allow_writes: bool = False,
        **settings: Any,
    ) -> AsyncIterator[SurrealGraphStore]:
        """Open a store at ``url`` (the settings' default when ``None``; ``settings`` as
        :class:`~surreal_store.Store` takes them), migrated, and yield a graph store on it
        (keyword arguments as the constructor's), its schema read; the store is closed on
        exit."""
        async with Store(url, migrate=True, **settings) as store:
            graph_store = cls(
                store, scope=scope, source_kind=source_kind, tags=tags,
                valid_from_property=valid_from_property,
                valid_until_property=valid_until_property, embedder=embedder,
                allow_writes=allow_writes,
            )  # fmt: skip
            await graph_store.arefresh_schema()
            yield graph_store

    from_url_sync = sync_opener(
        from_url,
        """For synchronous code: open a store at ``url`` on an event loop of its own in a
        background thread and yield a graph store whose sync methods run there (arguments as
        :meth:`from_url`'s), its schema read. The store closes on exit.""",
    )

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._home.wait(coro)

    # -- writes ------------------------------------------------------------------------------

    @public
    async def aadd_graph_documents(
        self, graph_documents: Sequence[Any], include_source: bool = False
    ) -> list[graph.Ingested]:
        """Write ``graph_documents`` (LangChain ``GraphDocument``s) and return what each
        wrote. Every document is checked before the first is written; each is written in one
        transaction (its source memory, its entities, its facts). A node that is an existing
        entity keeps its type and attribute values and gains the keys it lacks; a fact already
        current is not recorded again, so adding the same documents twice writes nothing
        more."""
        if not isinstance(include_source, bool):
            raise ValidationError("include_source must be True or False")
        if not isinstance(graph_documents, Sequence) or isinstance(graph_documents, str):
            raise ValidationError("graph_documents must be a list of GraphDocuments")
        work: list[PreparedWrite] = []
        for i, doc in enumerate(graph_documents):
            try:
                extraction = graph_document_extraction(
                    doc,
                    valid_from_property=self.valid_from_property,
                    valid_until_property=self.valid_until_property,
                )
                source = (
                    _source_memory(doc, scope=self.scope, kind=self.source_kind, tags=self.tags)
                    if include_source
                    else None
                )
                work.append(
                    prepare_extraction(extraction=extraction, scope=self.scope, source=source)
                )
            except ValidationError as exc:
                raise ValidationError(f"graph document {i}: {exc}") from None
        return await self._home.run(self._write(work))

    async def _write(self, work: list[PreparedWrite]) -> list[graph.Ingested]:
        out: list[graph.Ingested] = []
        try:
            for prepared in work:
                out.append(await write_prepared(self.store, prepared, embedder=self.embedder))
        finally:
            self._stale = True
        return out

    def add_graph_documents(
        self, graph_documents: Sequence[Any], include_source: bool = False
    ) -> list[graph.Ingested]:
        """Sync :meth:`aadd_graph_documents`."""
        done: list[graph.Ingested] = self._sync(
            self.aadd_graph_documents(graph_documents, include_source)
        )
        return done

    # -- queries -----------------------------------------------------------------------------

    @public
    async def aquery(
        self, query: str, params: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Run SurrealQL ``query`` with ``params`` (every value a ``$parameter``; ``$scope``
        is the graph store's scope unless ``params`` gives one) and return the rows of its
        last statement: each an object, or ``{"value": v}`` for a value that is not one.

        **Reading only** unless the graph store has ``allow_writes=True``: a query that could
        write (a write, definition or session keyword anywhere, subqueries included; a
        ``fn::`` call) is refused before it is sent, :class:`WriteQueryError` naming the word.
        **Scope**: ``$scope`` does not confine a query (it can name any scope); the sign-in
        does. On a store signed in as an agent (``Store(agent=...)``) the database shows it
        only its granted scopes, whatever the query asks; an owner's store reads them all."""
        values = checked_query(query, params, allow_writes=self.allow_writes)
        values.setdefault("scope", self.scope)
        rows = await self._home.run(self.store.query(query, object, **values))
        return [r if isinstance(r, dict) else {"value": r} for r in rows]

    def query(self, query: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Sync :meth:`aquery`."""
        rows: list[dict[str, Any]] = self._sync(self.aquery(query, params))
        return rows

    # -- schema ------------------------------------------------------------------------------

    @public
    async def arefresh_schema(self) -> None:
        """Read the graph's schema again (:attr:`get_structured_schema`)."""
        raw = await self._home.run(
            self.store.query_required_single(_SCHEMA, dict, scope=self.scope)
        )
        self._structured = _structured(raw)
        self._stale = False

    def refresh_schema(self) -> None:
        """Sync :meth:`arefresh_schema`."""
        self._sync(self.arefresh_schema())

    async def aget_structured_schema(self) -> dict[str, Any]:
        """:attr:`get_structured_schema`, read again first if this graph store has written
        since it was read."""
        if self._stale or self._structured is None:
            await self.arefresh_schema()
        assert self._structured is not None
        return self._structured

    async def aget_schema(self) -> str:
        """:attr:`get_schema`, read again first if this graph store has written since."""
        return _schema_text(await self.aget_structured_schema(), self.scope)

    def _current(self) -> dict[str, Any]:
        if self._stale or self._structured is None:
            if current_loop() is not self._home.loop:
                self.refresh_schema()
            else:
                # A property cannot wait on the loop it runs on: what was read last (nothing
                # yet: an empty schema), said in the log.
                log.warning(
                    "the graph's schema is read on the store's event loop before it is current: "
                    "await arefresh_schema() (or aget_schema()) first"
                )
        return self._structured if self._structured is not None else _structured({})

    @property
    def get_structured_schema(self) -> dict[str, Any]:
        """The graph's schema as LangChain's graph chains take it: ``node_props`` (entity
        type -> ``[{"property", "type"}]``: ``name`` and the attribute keys), ``rel_props``
        (predicate -> the keys of its facts' values; ``value`` for a value that is not an
        object), ``relationships`` (``[{"start", "type", "end"}]``: subject type, predicate,
        object type) and ``metadata``. Read again first when this graph store has written
        since (:meth:`refresh_schema` reads it again after writes by others); on the store's
        own event loop, where a property cannot wait, it is what was read last: await
        :meth:`arefresh_schema` or :meth:`aget_structured_schema` there."""
        return self._current()

    @property
    def get_schema(self) -> str:
        """:attr:`get_structured_schema` as text for a prompt: the tables to query in
        SurrealQL, then the node properties, relationship properties and relationships."""
        return _schema_text(self._current(), self.scope)
