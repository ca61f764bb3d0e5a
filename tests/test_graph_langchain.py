"""The LangChain GraphStore on the knowledge graph: GraphDocuments exactly as LangChain's own
LLMGraphTransformer builds them (driven by a scripted chat model, no real one), in and out
through the graph, the schema LangChain's graph chains read, SurrealQL queries with
parameters, the sync door, and bad input that writes nothing.

LangChain ships no conformance tests for graph stores (langchain-tests has none), so the
GraphStore protocol of langchain_neo4j is checked structurally, and one of its graph QA
chains is run on the store end to end."""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_neo4j")

from _graph_llm import ScriptedGraphModel, node, prop, rel
from _hostile_values import hostile_texts, hostile_values
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_neo4j.graph_transformers.llm import LLMGraphTransformer
from langchain_neo4j.graphs.graph_document import GraphDocument, Node, Relationship
from langchain_neo4j.graphs.graph_store import GraphStore

from surreal_store import (
    QueryError,
    Store,
    ValidationError,
    access,
    agents,
    graph,
    memory,
)
from surreal_store.langchain import (
    GraphTransformerExtractor,
    SurrealGraphStore,
    WriteQueryError,
    graph_document_extraction,
)

pytestmark = pytest.mark.anyio

CURIE = "Marie Curie worked at the University of Paris. She was married to Pierre Curie."
GLOBEX = "Alice joined Globex in 2021, after working at Acme since 2015."
SCRIPT: dict[str, dict[str, Any]] = {
    CURIE: {
        "nodes": [
            node(
                "marie curie", "person", prop("born", "1867-11-07"), prop("birth place", "Warsaw")
            ),
            node("university of paris", "organization"),
        ],
        "relationships": [
            rel(
                ("marie curie", "person"),
                "works at",
                ("university of paris", "organization"),
                prop("start date", "1906"),
            ),
            rel(("marie curie", "person"), "spouse", ("pierre curie", "person")),
        ],
    },
    GLOBEX: {
        "nodes": [node("alice", "person"), node("acme", "company"), node("globex", "company")],
        "relationships": [
            rel(("alice", "person"), "works at", ("acme", "company"), prop("start date", "2015")),
            rel(("alice", "person"), "works at", ("globex", "company"), prop("start date", "2021")),
        ],
    },
}


def transformer(**kwargs: Any) -> LLMGraphTransformer:
    return LLMGraphTransformer(
        llm=ScriptedGraphModel(answers=SCRIPT),
        node_properties=True,
        relationship_properties=True,
        **kwargs,
    )


def curie_documents() -> list[GraphDocument]:
    source = Document(id="curie-1", page_content=CURIE, metadata={"source": "wiki", "page": 3})
    return transformer().convert_to_graph_documents([source])


async def _count(store: Store, table: str) -> int:
    rows = await store.query(f"SELECT count() AS n FROM {table} GROUP ALL;", dict)
    return int(rows[0]["n"]) if rows else 0


async def _sources_of(store: Store, fact_id: str) -> list[str]:
    return await store.query(
        "SELECT VALUE <string>out FROM fact_source WHERE in = type::record('fact', $id);",
        str,
        id=fact_id,
    )


def test_the_transformer_shapes_documents_as_expected() -> None:
    # What the store is given: LangChain's own normalisation of the model's answer.
    (doc,) = curie_documents()
    assert [(n.id, n.type, n.properties) for n in doc.nodes] == [
        ("Marie Curie", "Person", {"born": "1867-11-07", "birthPlace": "Warsaw"}),
        ("University Of Paris", "Organization", {}),
    ]
    assert [(r.source.id, r.type, r.target.id, r.properties) for r in doc.relationships] == [
        ("Marie Curie", "WORKS_AT", "University Of Paris", {"startDate": "1906"}),
        ("Marie Curie", "SPOUSE", "Pierre Curie", {}),
    ]
    assert doc.source is not None and doc.source.id == "curie-1"


async def test_graph_documents_with_their_source(store: Store) -> None:
    gs = SurrealGraphStore(store)
    assert isinstance(gs, GraphStore)  # langchain_neo4j's runtime-checkable protocol
    (done,) = await gs.aadd_graph_documents(curie_documents(), include_source=True)
    m = done.memory
    assert m is not None
    assert (m.content, m.kind, m.key, m.metadata) == (
        CURIE,
        "document",
        "curie-1",
        {"source": "wiki", "page": 3},
    )
    assert [(e.name, e.type, e.attributes) for e in done.entities] == [
        ("Marie Curie", "Person", {"born": "1867-11-07", "birthPlace": "Warsaw"}),
        ("University Of Paris", "Organization", {}),
        ("Pierre Curie", "Person", {}),  # a relationship's end that is not among the nodes
    ]
    assert [(f.subject, f.predicate, f.object, f.value) for f in done.facts] == [
        ("Marie Curie", "WORKS_AT", "University Of Paris", {"startDate": "1906"}),
        ("Marie Curie", "SPOUSE", "Pierre Curie", None),
    ]
    for f in done.facts:
        assert await _sources_of(store, f.id) == [f"memory:{m.id}"]
    stored = await graph.read_graph(store)
    assert sorted(done.facts, key=lambda f: f.id) == sorted(stored.facts, key=lambda f: f.id)
    assert sorted(done.entities, key=lambda e: e.id) == sorted(stored.entities, key=lambda e: e.id)
    view = await graph.entity(store, name="Marie Curie")
    assert view is not None and len(view.facts) == 2
    # The document's memory is an ordinary memory: recall finds it by its words.
    hits = await memory.recall(store, text="married Pierre", k=1, mode="fulltext")
    assert [h.memory.id for h in hits] == [m.id]


async def test_without_the_source_nothing_cites_it(store: Store) -> None:
    gs = SurrealGraphStore(store)
    (done,) = await gs.aadd_graph_documents(curie_documents())
    assert done.memory is None
    assert len(done.facts) == 2
    assert await _count(store, "memory") == 0
    assert await _count(store, "fact_source") == 0


async def test_adding_twice_writes_nothing_more(store: Store) -> None:
    gs = SurrealGraphStore(store)
    docs = curie_documents()
    await gs.aadd_graph_documents(docs, include_source=True)
    (again,) = await gs.aadd_graph_documents(docs, include_source=True)
    assert (again.entities, again.facts) == ([], [])
    assert (await _count(store, "fact"), await _count(store, "memory")) == (2, 1)


async def test_the_prompt_based_transformer_and_community_documents(store: Store) -> None:
    # Without tool calling the transformer asks for JSON triples: no properties.
    plain = LLMGraphTransformer(llm=ScriptedGraphModel(answers=SCRIPT), ignore_tool_usage=True)
    docs = await plain.aconvert_to_graph_documents([Document(page_content=CURIE)])
    gs = SurrealGraphStore(store, scope="plain")
    (done,) = await gs.aadd_graph_documents(docs, include_source=True)
    assert sorted((f.subject, f.predicate, f.object) for f in done.facts) == [
        ("marie curie", "spouse", "pierre curie"),
        ("marie curie", "works at", "university of paris"),
    ]
    assert done.memory is not None and done.memory.key is None  # the source had no id
    # langchain_community's GraphDocument (the transformer's earlier home) goes in the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        community = pytest.importorskip("langchain_community.graphs.graph_document")
    a = community.Node(id=7, type="Number", properties={"even": False})
    b = community.Node(id="eight", type="Number")
    old = community.GraphDocument(
        nodes=[a, b],
        relationships=[community.Relationship(source=a, target=b, type="BEFORE")],
        source=Document(page_content="seven before eight"),
    )
    (done,) = await SurrealGraphStore(store, scope="community").aadd_graph_documents([old])
    assert [(e.name, e.attributes) for e in done.entities] == [
        ("7", {"even": False}),
        ("eight", {}),
    ]
    assert [(f.subject, f.object) for f in done.facts] == [("7", "eight")]


async def test_valid_time_from_relationship_properties(store: Store) -> None:
    await graph.declare_predicate(store, name="WORKS_AT", single_valued=True)
    gs = SurrealGraphStore(store, valid_from_property="startDate")
    docs = await transformer().aconvert_to_graph_documents([Document(page_content=GLOBEX)])
    (done,) = await gs.aadd_graph_documents(docs, include_source=True)
    assert [(f.object, f.value, f.valid_from.year) for f in done.facts] == [
        ("Acme", None, 2015),
        ("Globex", None, 2021),
    ]
    # A single-valued predicate: Globex from 2021 closed Acme at 2021, kept as history.
    now = await graph.facts(store, subject="Alice", predicate="WORKS_AT")
    assert [f.object for f in now] == ["Globex"]
    in_2018 = await graph.facts(
        store, subject="Alice", valid_at=dt.datetime(2018, 6, 1, tzinfo=dt.UTC)
    )
    assert [(f.object, f.valid_until) for f in in_2018] == [
        ("Acme", dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
    ]


async def test_structured_schema_and_schema_text(store: Store) -> None:
    gs = SurrealGraphStore(store)
    await gs.aadd_graph_documents(curie_documents(), include_source=True)
    await graph.create_entities(
        store, entities=[graph.NewEntity(name="untyped", attributes={"n": 1.5})]
    )
    await gs.arefresh_schema()
    assert gs.get_structured_schema == {
        "node_props": {
            "": [{"property": "name", "type": "STRING"}, {"property": "n", "type": "FLOAT"}],
            "Organization": [{"property": "name", "type": "STRING"}],
            "Person": [
                {"property": "name", "type": "STRING"},
                {"property": "birthPlace", "type": "STRING"},
                {"property": "born", "type": "STRING"},
            ],
        },
        "rel_props": {"SPOUSE": [], "WORKS_AT": [{"property": "startDate", "type": "STRING"}]},
        "relationships": [
            {"start": "Person", "type": "SPOUSE", "end": "Person"},
            {"start": "Person", "type": "WORKS_AT", "end": "Organization"},
        ],
        "metadata": {"constraint": [], "index": []},
    }
    text = gs.get_schema
    assert "Person {name: STRING, birthPlace: STRING, born: STRING}" in text
    assert "(untyped) {name: STRING, n: FLOAT}" in text
    assert "WORKS_AT {startDate: STRING}" in text
    assert "(:Person)-[:WORKS_AT]->(:Organization)" in text
    assert text.index("Node properties") < text.index("Relationship properties")
    assert text.index("Relationship properties") < text.index("The relationships")
    # Another scope's graph is not this one's schema.
    other = SurrealGraphStore(store, scope="other")
    await other.arefresh_schema()
    assert other.get_structured_schema["node_props"] == {}


async def test_the_schema_follows_this_stores_writes(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    gs = SurrealGraphStore(store)
    # Not read yet, and a property cannot wait on the store's loop: empty, and said so.
    with caplog.at_level(logging.WARNING, "surreal_store.langchain"):
        assert gs.get_structured_schema["node_props"] == {}
    assert "await arefresh_schema()" in caplog.text
    assert (await gs.aget_structured_schema())["relationships"] == []
    await gs.aadd_graph_documents(curie_documents())
    caplog.clear()
    with caplog.at_level(logging.WARNING, "surreal_store.langchain"):
        assert gs.get_structured_schema["relationships"] == []  # what was read last
    assert "await arefresh_schema()" in caplog.text
    assert len((await gs.aget_structured_schema())["relationships"]) == 2
    assert "WORKS_AT" in await gs.aget_schema()
    assert len(gs.get_structured_schema["relationships"]) == 2  # current now
    # Retracted and hidden facts are not the graph's shape any more.
    await graph.retract_facts(
        store,
        facts=[graph.NewFact(subject="Marie Curie", predicate="SPOUSE", object="Pierre Curie")],
    )
    await gs.arefresh_schema()
    assert [r["type"] for r in gs.get_structured_schema["relationships"]] == ["WORKS_AT"]


async def test_query_takes_values_as_parameters(store: Store) -> None:
    gs = SurrealGraphStore(store)
    await gs.aadd_graph_documents(curie_documents(), include_source=True)
    rows = await gs.aquery(
        "SELECT out.name AS employer, value.startDate AS since FROM fact WHERE scope = $scope "
        "AND in.name = $name AND predicate = $predicate AND retracted_at = NONE;",
        {"name": "Marie Curie", "predicate": "WORKS_AT"},
    )
    assert rows == [{"employer": "University Of Paris", "since": "1906"}]
    # Rows that are not objects come back as {"value": ...}; NONE as no row.
    assert await gs.aquery(
        "SELECT VALUE name FROM entity WHERE type = $t ORDER BY name;", {"t": "Person"}
    ) == [
        {"value": "Marie Curie"},
        {"value": "Pierre Curie"},
    ]
    assert await gs.aquery("RETURN NONE;") == []
    assert await gs.aquery("RETURN $scope;") == [{"value": "default"}]
    # A hostile value is a value, never SurrealQL.
    hostile = "x'; DELETE entity; --"
    assert await gs.aquery("SELECT * FROM entity WHERE name = $n;", {"n": hostile}) == []
    assert await _count(store, "entity") == 3
    for bad in ({"a-b": 1}, {"": 1}, {"idempotent": True}, {1: 2}):
        with pytest.raises(ValidationError):
            await gs.aquery("RETURN 1;", bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await gs.aquery("")
    with pytest.raises(QueryError):
        await gs.aquery("SELEKT nonsense;")


async def test_a_bad_document_writes_nothing(store: Store) -> None:
    gs = SurrealGraphStore(store)
    good = curie_documents()[0]
    bad_nodes = [
        Node(id="", type="Person"),
        Node(id="x", type="t" * 300),
        Node(id="x", properties={"nan": float("nan")}),
        Node(id="x", properties={"when": dt.datetime.now(dt.UTC)}),
    ]
    for bad in bad_nodes:
        doc = GraphDocument(nodes=[bad], relationships=[], source=Document(page_content="s"))
        with pytest.raises(ValidationError, match="graph document 1"):
            await gs.aadd_graph_documents([good, doc], include_source=True)
    sourceless = GraphDocument.model_construct(nodes=[], relationships=[], source=None)
    with pytest.raises(ValidationError, match="no source"):
        await gs.aadd_graph_documents([good, sourceless], include_source=True)
    with pytest.raises(ValidationError, match="not a LangChain graph document"):
        await gs.aadd_graph_documents([good, {"nodes": []}])
    a, b = Node(id="a"), Node(id="b")
    dated = SurrealGraphStore(store, valid_from_property="since")
    odd = GraphDocument(
        nodes=[a, b],
        relationships=[Relationship(source=a, target=b, type="R", properties={"since": "soon"})],
        source=Document(page_content="s"),
    )
    with pytest.raises(ValidationError, match="since is not an ISO 8601"):
        await dated.aadd_graph_documents([good, odd])
    with pytest.raises(ValidationError):
        await gs.aadd_graph_documents(good)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await gs.aadd_graph_documents([good], include_source="yes")  # type: ignore[arg-type]
    for table in ("memory", "entity", "fact"):
        assert await _count(store, table) == 0, table
    with pytest.raises(ValidationError):
        SurrealGraphStore("mem://")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SurrealGraphStore(store, scope="")
    with pytest.raises(ValidationError, match="one name"):
        SurrealGraphStore(store, valid_from_property="d", valid_until_property="d")


def test_graph_document_extraction_maps_exactly() -> None:
    a = Node(id="A", type="T", properties={"k": [1, {"x": None}]})
    b = Node(id=2, type="")
    doc = GraphDocument(
        nodes=[a],
        relationships=[
            Relationship(
                source=a,
                target=b,
                type="R",
                properties={"from": "2020-02", "until": "2021-03-04T05:06:07+02:00", "w": 1},
            )
        ],
        source=Document(page_content=""),
    )
    got = graph_document_extraction(doc, valid_from_property="from", valid_until_property="until")
    assert got == graph.Extraction(
        entities=[
            graph.NewEntity(name="A", type="T", attributes={"k": [1, {"x": None}]}),
            graph.NewEntity(name="A", type="T"),
            graph.NewEntity(name="2", type=""),
        ],
        facts=[
            graph.NewFact(
                subject="A",
                predicate="R",
                object="2",
                value={"w": 1},
                valid_from=dt.datetime(2020, 2, 1, tzinfo=dt.UTC),
                valid_until=dt.datetime(2021, 3, 4, 3, 6, 7, tzinfo=dt.UTC),
            )
        ],
    )


async def test_the_transformer_as_an_extractor_for_ingest(store: Store) -> None:
    extractor = GraphTransformerExtractor(transformer(), valid_from_property="startDate")
    assert isinstance(extractor, graph.Extractor)
    done = await graph.ingest(store, text=GLOBEX, extractor=extractor, key="hr-note")
    assert done.memory is not None and done.memory.key == "hr-note"
    assert [(f.subject, f.predicate, f.object, f.valid_from.year) for f in done.facts] == [
        ("Alice", "WORKS_AT", "Acme", 2015),
        ("Alice", "WORKS_AT", "Globex", 2021),
    ]
    with pytest.raises(ValidationError):
        GraphTransformerExtractor(object())


async def test_a_langchain_graph_qa_chain_on_the_store(store: Store) -> None:
    # langchain_neo4j's GraphCypherQAChain takes any GraphStore: here the "Cypher" its model
    # writes is SurrealQL, which the chain runs through query() and answers from.
    from langchain_neo4j import GraphCypherQAChain

    gs = SurrealGraphStore(store)
    await gs.aadd_graph_documents(curie_documents(), include_source=True)
    await gs.arefresh_schema()
    surql = (
        "SELECT out.name AS employer FROM fact WHERE scope = $scope AND predicate = 'WORKS_AT' "
        "AND in.name = 'Marie Curie' AND retracted_at = NONE;"
    )
    llm = FakeListChatModel(responses=[surql, "She worked at the University Of Paris."])
    chain = GraphCypherQAChain.from_llm(
        llm=llm, graph=gs, allow_dangerous_requests=True, return_intermediate_steps=True
    )
    out = await chain.ainvoke({"query": "Where did Marie Curie work?"})
    assert out["result"] == "She worked at the University Of Paris."
    steps = out["intermediate_steps"]
    assert steps[0]["query"] == surql
    assert steps[1]["context"] == [{"employer": "University Of Paris"}]


@pytest.fixture
def sync_store(tmp_path: Path) -> Iterator[SurrealGraphStore]:
    url = f"surrealkv://{tmp_path / 'g'}"
    with SurrealGraphStore.from_url_sync(
        url, scope="notes", embedder=memory.HashingEmbedder(16)
    ) as gs:
        yield gs


def test_the_sync_door(sync_store: SurrealGraphStore, tmp_path: Path) -> None:
    gs = sync_store
    assert gs.get_structured_schema["node_props"] == {}  # read on opening
    (done,) = gs.add_graph_documents(curie_documents(), include_source=True)
    assert len(done.facts) == 2 and {f.scope for f in done.facts} == {"notes"}
    assert done.memory is not None and done.memory.embedding_model is not None
    assert "(:Person)-[:SPOUSE]->(:Person)" in gs.get_schema  # read again after the write
    rows = gs.query("SELECT VALUE name FROM entity WHERE name = $n;", {"n": "Pierre Curie"})
    assert rows == [{"value": "Pierre Curie"}]
    gs.refresh_schema()
    assert len(gs.get_structured_schema["relationships"]) == 2


async def test_from_url_passes_the_options(tmp_path: Path) -> None:
    url = f"surrealkv://{tmp_path / 'g'}"
    async with SurrealGraphStore.from_url(
        url, scope="hr", source_kind="hr-note", tags=["hr"], valid_from_property="startDate"
    ) as gs:
        docs = await transformer().aconvert_to_graph_documents([Document(page_content=GLOBEX)])
        (done,) = await gs.aadd_graph_documents(docs, include_source=True)
        assert done.memory is not None
        assert (done.memory.scope, done.memory.kind, done.memory.tags) == ("hr", "hr-note", ["hr"])
        assert [f.valid_from.year for f in done.facts] == [2015, 2021]
    async with SurrealGraphStore.from_url(url, scope="hr") as again:  # persisted, schema read
        assert [r["end"] for r in again.get_structured_schema["relationships"]] == ["Company"]


# -- random graph documents against a model of what the store should hold ----------------------

_NAMES = st.sampled_from(
    ["Alice", "alice", "Bob", " Bob", "Café", "Cafe\u0301", "1", 1, "'; DELETE entity; --"]
)
_BAD_NAMES = st.sampled_from(["", "   ", "\ud800", "x" * 1100, 2.5, None])
_TYPES = st.sampled_from(["", "Person", "Node", "Organization"])
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.lists(st.integers(min_value=0, max_value=9), max_size=2),
)
_PROPS = st.dictionaries(st.sampled_from(["a", "b", "startDate"]), _VALUES, max_size=2)
_HOSTILE = hostile_values(hostile_texts("$scope"))


@st.composite
def _documents(draw: st.DrawFn) -> GraphDocument:
    hostile = draw(st.integers(0, 9)) == 0  # one document in ten carries a bad value

    def name() -> Any:
        return draw(_BAD_NAMES) if hostile and draw(st.booleans()) else draw(_NAMES)

    def props() -> Any:
        if hostile and draw(st.booleans()):
            return {"a": draw(_HOSTILE)}
        return draw(_PROPS)

    def a_node(with_props: bool) -> Node:
        return Node.model_construct(
            id=name(), type=draw(_TYPES), properties=props() if with_props else {}
        )

    nodes = [a_node(True) for _ in range(draw(st.integers(0, 3)))]
    rels = [
        Relationship.model_construct(
            source=a_node(False),
            target=a_node(False),
            type=draw(st.sampled_from(["KNOWS", "WORKS_AT"])),
            properties=props(),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    text = draw(st.sampled_from(["one text", "another text", ""]))
    return GraphDocument.model_construct(
        nodes=nodes, relationships=rels, source=Document(page_content=text)
    )


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


async def _held(store: Store, scope: str) -> tuple[dict[str, Any], set[tuple[str, ...]]]:
    g = await graph.read_graph(store, scope=scope)
    return (
        {e.name: (e.type, e.attributes) for e in g.entities},
        {(f.subject, f.predicate, f.object, _canon(f.value)) for f in g.facts},
    )


def _apply(model: tuple[dict[str, Any], set[tuple[str, ...]]], doc: GraphDocument) -> None:
    """What one accepted document does, as the GraphStore documents it."""
    entities, facts = model
    seen: dict[str, tuple[str, dict[str, Any]]] = {}
    occurrences = [(n, n.properties) for n in doc.nodes]
    for r in doc.relationships:
        occurrences += [(r.source, {}), (r.target, {})]
    for n, props in occurrences:
        key = str(n.id)
        if key not in seen:
            seen[key] = (n.type, dict(props))
        else:
            kind, attrs = seen[key]
            seen[key] = (kind or n.type, {**props, **attrs})
    for key, (kind, attrs) in seen.items():
        if key not in entities:
            entities[key] = (kind, attrs)
        else:
            have_kind, have_attrs = entities[key]
            entities[key] = (have_kind or kind, {**attrs, **have_attrs})
    for r in doc.relationships:
        facts.add((str(r.source.id), r.type, str(r.target.id), _canon(r.properties or None)))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(st.lists(_documents(), min_size=1, max_size=2), min_size=1, max_size=3),
    include_source=st.booleans(),
)
def test_random_documents_against_a_model(
    steps: list[list[GraphDocument]], include_source: bool
) -> None:
    """Random batches of graph documents (look-alike names, int ids, every JSON value, now and
    then a bad one): the store's graph equals a model of the documented mapping after every
    accepted batch, and a refused batch changes nothing."""

    async def walk() -> None:
        async with Store("mem://") as store:
            gs = SurrealGraphStore(store, scope="s")
            model: tuple[dict[str, Any], set[tuple[str, ...]]] = ({}, set())
            for docs in steps:
                before = await _held(store, "s")
                try:
                    await gs.aadd_graph_documents(docs, include_source=include_source)
                except ValidationError:
                    event("a batch refused")
                    assert await _held(store, "s") == before
                    continue
                event("a batch accepted")
                for doc in docs:
                    _apply(model, doc)
                assert await _held(store, "s") == model

    anyio.run(walk, backend="asyncio")


# -- query() only reads (unless allow_writes=True) ---------------------------------------------

# (query, the word refused): every way a model-written query could write, hidden or not.
WRITES = [
    ("DELETE entity;", "DELETE"),
    ("delete entity", "DELETE"),
    ("DeLeTe fact WHERE true;", "DELETE"),
    ("UPDATE entity SET summary = 'x';", "UPDATE"),
    ("SELECT * FROM (UPDATE entity SET summary = 'x');", "UPDATE"),
    ("SELECT * FROM entity WHERE id IN (SELECT VALUE id FROM (DELETE fact RETURN BEFORE));",
     "DELETE"),
    ("LET $x = (DELETE entity); RETURN $x;", "DELETE"),
    ("RETURN (UPSERT entity:x SET scope = 'default');", "UPSERT"),
    ("CREATE entity SET name = 'x';", "CREATE"),
    ("INSERT INTO entity { name: 'x' };", "INSERT"),
    ("RELATE entity:a->fact->entity:b;", "RELATE"),
    ("DEFINE TABLE pwned;", "DEFINE"),
    ("DEFINE FUNCTION fn::x() { DELETE entity };", "DEFINE"),
    ("REMOVE TABLE entity;", "REMOVE"),
    ("ALTER TABLE entity PERMISSIONS FULL;", "ALTER"),
    ("REBUILD INDEX fact_key ON fact;", "REBUILD"),
    ("RETURN fn::fact_recompute([]);", "fn::"),
    ("RETURN fn :: fact_recompute([]);", "fn::"),
    ("RETURN fn/* hidden */::fact_recompute([]);", "fn::"),
    ("RETURN http::post('http://example.invalid', {});", "http::"),
    ("RETURN sequence::nextval('s');", "sequence::"),
    ("USE NS other DB other;", "USE"),
    ("BEGIN; SELECT * FROM entity; COMMIT;", "BEGIN"),
    ("KILL u'0189a8f6-2c7d-7bb7-8c3a-9e6b1f2a3c4d';", "KILL"),
    ("FOR $e IN (SELECT * FROM entity) { DELETE $e.id; };", "DELETE"),
    ("IF true { UPDATE entity SET type = 'x' };", "UPDATE"),
    ("SELECT * FROM entity; -- a comment\nDELETE entity;", "DELETE"),
    ("SELECT * FROM entity; # a comment\rDELETE entity;", "DELETE"),
    ("SELECT * FROM entity; -- a comment\u2028DELETE entity;", "DELETE"),
    ("SELECT * FROM entity /* a comment */; DELETE entity;", "DELETE"),
    ("SELECT * FROM entity WHERE name = 'it\\'s'; DELETE entity; RETURN '';", "DELETE"),
    ("SELECT * FROM entity WHERE name = \"a\\\"\"; DELETE entity;", "DELETE"),
    ("SELECT * FROM `a\\`b`; DELETE entity; RETURN '`';", "DELETE"),
    ("SELECT * FROM `it's`; DELETE entity; RETURN '';", "DELETE"),
    ("SELECT * FROM entity WHERE name = 'x", "'"),
    ("SELECT * FROM entity /* DELETE entity", "/*"),
    ("SELECT * FROM \u27e8a\\\u27e9; DELETE entity; \u27e9", "\\"),
    ("SELECT * FROM entity;\u00a0DELETE\u00a0entity;", "DELETE"),
    ("SELECT * FROM entity;DELETE\u00e9 entity;", "DELETE"),
    ("RETURN <future> { DELETE entity };", "DELETE"),
    ("OPTION IMPORT; SELECT * FROM entity;", "OPTION"),
    ("SLEEP 10s;", "SLEEP"),
]  # fmt: skip

# Reads that hold those words only where they are not code.
READS = [
    "SELECT * FROM entity WHERE name = 'DELETE entity; UPDATE fact';",
    'SELECT * FROM entity WHERE summary = "fn::x() -- INSERT";',
    "SELECT * FROM entity -- we never DELETE here\n WHERE scope = $scope;",
    "SELECT * FROM entity /* not an UPDATE */ WHERE scope = $scope;",
    "SELECT count() FROM fact WHERE scope = $scope AND predicate = $delete GROUP ALL;",
    "SELECT updated_at, created_at FROM entity WHERE scope = $scope;",
    "RETURN array::insert([1], 2, 0);",
    "RETURN string::len('x');",
]


async def _everything(store: Store) -> str:
    return repr(
        await store.execute(
            "SELECT * FROM entity ORDER BY id; SELECT * FROM fact ORDER BY id; "
            "SELECT * FROM memory ORDER BY id; INFO FOR DB;"
        )
    )


async def test_query_only_reads_and_names_what_it_refuses(store: Store) -> None:
    gs = SurrealGraphStore(store)
    await gs.aadd_graph_documents(curie_documents(), include_source=True)
    before = await _everything(store)
    assert len(WRITES) >= 20
    for text, word in WRITES:
        with pytest.raises(WriteQueryError) as refused:
            await gs.aquery(text)
        assert refused.value.word == word, text
        assert word in str(refused.value) and "nothing was sent" in str(refused.value)
        assert isinstance(refused.value, ValidationError)
    assert await _everything(store) == before
    for text in READS:
        await gs.aquery(text, {"delete": "x"})
    assert await _everything(store) == before
    rows = await gs.aquery("SELECT VALUE name FROM entity WHERE name = 'DELETE entity';")
    assert rows == []
    # The sync door refuses the same way.
    with pytest.raises(WriteQueryError):
        await anyio.to_thread.run_sync(lambda: gs.query("DELETE entity;"))
    # The opt-in runs writes.
    writer = SurrealGraphStore(store, allow_writes=True)
    await writer.aquery("UPDATE entity SET summary = 'edited' WHERE name = 'Pierre Curie';")
    assert await _everything(store) != before
    with pytest.raises(ValidationError):
        SurrealGraphStore(store, allow_writes="yes")  # type: ignore[arg-type]


async def test_a_graph_store_on_an_agents_store_sees_only_its_scopes(kv_url: str) -> None:
    async with Store(kv_url) as root:
        await agents.register(root, name="a", kind="bot", agent_id="a")
        await access.grant_agent(root, agent_id="a", secret="secret-of-a-1", scopes=["team-a"])
        for scope, names in (("team-a", ["Ada", "Acme"]), ("team-b", ["Bea", "Secret"])):
            await graph.create_entities(
                root, entities=[graph.NewEntity(name=n) for n in names], scope=scope
            )
            await graph.assert_facts(
                root,
                facts=[graph.NewFact(subject=names[0], predicate="knows", object=names[1])],
                scope=scope,
            )
    async with Store(kv_url, agent="a", agent_secret="secret-of-a-1") as a:
        gs = SurrealGraphStore(a, scope="team-a")
        asked = [
            "SELECT VALUE name FROM entity;",
            "SELECT VALUE name FROM entity WHERE scope = 'team-b';",
            "SELECT VALUE name FROM entity WHERE scope = $other;",
            "SELECT VALUE [in.name, out.name] FROM fact;",
            "RETURN (SELECT VALUE name FROM entity WHERE scope != $scope);",
        ]
        seen = [await gs.aquery(q, {"other": "team-b"}) for q in asked]
        text = repr(seen)
        assert "Bea" not in text and "Secret" not in text
        assert {"value": "Ada"} in seen[0]
        async_rows = await gs.aquery("SELECT VALUE scope FROM entity;")
        assert {r["value"] for r in async_rows} == {"team-a"}
    # The second line: on a viewer's store even an allowed write is the database's refusal.
    async with Store(kv_url) as root:
        await access.add_user(root, name="vic", password="vic-password-1", role="viewer")
        before = await _everything(root)
    async with Store(kv_url, username="vic", password="vic-password-1") as viewer:
        gs = SurrealGraphStore(viewer, scope="team-a", allow_writes=True)
        assert len(await gs.aquery("SELECT * FROM entity;")) == 4  # a viewer reads all
        with pytest.raises(QueryError):
            await gs.aquery("DELETE entity;")
    async with Store(kv_url) as root:
        assert await _everything(root) == before
