"""Extraction is pluggable: the Extractor protocol, the deterministic PatternExtractor, and
ingest (the text a memory, the entities and facts sourced from it, one transaction), on the
real engine."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from surreal_store import (
    InvariantError,
    NotFoundError,
    Store,
    ValidationError,
    graph,
    memory,
    runs,
)
from surreal_store.provenance import RunTrace
from surreal_store.provenance import invalidate as distrust

pytestmark = pytest.mark.anyio

WORKS_AT = graph.Pattern(
    r"(?P<subject>[A-Z]\w+) works at (?P<object>[A-Z]\w+)",
    "works_at",
    subject_type="person",
    object_type="organization",
)
LIVES_IN = graph.Pattern(
    r"(?P<subject>[A-Z]\w+) lives in (?P<object>[A-Z]\w+)", "lives_in", "person", "place"
)
AGED = graph.Pattern(r"(?P<subject>[A-Z]\w+) is (?P<value>\d+) years old(?P<object>)", "age")
EXTRACTOR = graph.PatternExtractor([WORKS_AT, LIVES_IN])
TEXT = "Alice works at Acme. Bob works at Acme. Alice lives in Paris. Alice works at Acme."


class Fixed:
    """An extractor that returns what it is given, whatever the text."""

    def __init__(self, extraction: Any) -> None:
        self.extraction = extraction

    async def extract(self, text: str) -> Any:
        return self.extraction


async def _count(store: Store, table: str) -> int:
    rows = await store.query(f"SELECT count() AS n FROM {table} GROUP ALL;", dict)
    return int(rows[0]["n"]) if rows else 0


async def _sources(store: Store, fact_id: str) -> list[str]:
    return await store.query(
        "SELECT VALUE <string>out FROM fact_source WHERE in = type::record('fact', $id);",
        str,
        id=fact_id,
    )


async def test_pattern_extractor_is_deterministic() -> None:
    assert isinstance(EXTRACTOR, graph.Extractor)
    got = await EXTRACTOR.extract(TEXT)
    assert got == graph.Extraction(
        entities=[
            graph.NewEntity(name="Alice", type="person"),
            graph.NewEntity(name="Acme", type="organization"),
            graph.NewEntity(name="Bob", type="person"),
            graph.NewEntity(name="Paris", type="place"),
        ],
        facts=[
            graph.NewFact(subject="Alice", predicate="works_at", object="Acme"),
            graph.NewFact(subject="Bob", predicate="works_at", object="Acme"),
            graph.NewFact(subject="Alice", predicate="lives_in", object="Paris"),
        ],
    )
    assert await EXTRACTOR.extract(TEXT) == got
    assert await EXTRACTOR.extract("nothing here") == graph.Extraction()


async def test_pattern_values_and_compiled_patterns() -> None:
    aged = graph.Pattern(
        re.compile(r"(?P<subject>[A-Z]\w+) is (?P<value>\d+) years old with (?P<object>\w+)"),
        "age_with",
    )
    got = await graph.PatternExtractor([aged]).extract("Alice is 31 years old with Bob.")
    assert got.facts == [
        graph.NewFact(subject="Alice", predicate="age_with", object="Bob", value="31")
    ]
    # An empty object group matches nothing worth a fact.
    assert (await graph.PatternExtractor([AGED]).extract("Alice is 31 years old")).facts == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("(unclosed", "p"), "not a regular expression"),
        ((r"(?P<subject>\w+)", "p"), "names no group object"),
        ((r"(?P<subject>\w+) (?P<object>\w+)", ""), "must not be empty"),
        ((r"(?P<subject>\w+) (?P<object>\w+)", "p", "x" * 257), "longer than 256"),
    ],
)
def test_bad_patterns_are_refused(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        graph.Pattern(*args)
    with pytest.raises(ValidationError, match="takes Patterns"):
        graph.PatternExtractor(["not a pattern"])  # type: ignore[list-item]


async def test_ingest_writes_the_text_entities_and_sourced_facts(store: Store) -> None:
    done = await graph.ingest(
        store, text=TEXT, extractor=EXTRACTOR, key="note-1", tags=["inbox"], metadata={"n": 1}
    )
    assert done.memory is not None
    m = done.memory
    assert (m.content, m.kind, m.key, m.tags, m.metadata) == (
        TEXT,
        graph.SOURCE_KIND,
        "note-1",
        ["inbox"],
        {"n": 1},
    )
    assert m.id == memory.memory_id(graph.DEFAULT_SCOPE, TEXT)
    assert [(e.name, e.type) for e in done.entities] == [
        ("Alice", "person"),
        ("Acme", "organization"),
        ("Bob", "person"),
        ("Paris", "place"),
    ]
    assert [(f.subject, f.predicate, f.object) for f in done.facts] == [
        ("Alice", "works_at", "Acme"),
        ("Bob", "works_at", "Acme"),
        ("Alice", "lives_in", "Paris"),
    ]
    for f in done.facts:
        assert await _sources(store, f.id) == [f"memory:{m.id}"]
    # What ingest returns is what is stored.
    stored = await graph.read_graph(store)
    assert sorted(done.facts, key=lambda f: f.id) == sorted(stored.facts, key=lambda f: f.id)
    assert sorted(done.entities, key=lambda e: e.id) == sorted(stored.entities, key=lambda e: e.id)
    # The graph reads see them as any other write's.
    view = await graph.entity(store, name="Alice")
    assert view is not None
    assert sorted((f.predicate, f.object) for f in view.facts) == [
        ("lives_in", "Paris"),
        ("works_at", "Acme"),
    ]


async def test_ingest_twice_writes_nothing_more(store: Store) -> None:
    first = await graph.ingest(store, text=TEXT, extractor=EXTRACTOR)
    again = await graph.ingest(store, text=TEXT, extractor=EXTRACTOR)
    assert again.memory == first.memory
    assert (again.entities, again.facts) == ([], [])
    assert await _count(store, "fact") == 3
    assert await _count(store, "memory") == 1
    # Another text stating one known fact and one new one: only the new one is recorded,
    # sourced from the new text.
    more = await graph.ingest(
        store, text="Bob works at Acme. Carol works at Acme.", extractor=EXTRACTOR
    )
    assert [(f.subject, f.object) for f in more.facts] == [("Carol", "Acme")]
    assert [e.name for e in more.entities] == ["Carol"]
    assert more.memory is not None
    assert await _sources(store, more.facts[0].id) == [f"memory:{more.memory.id}"]


async def test_existing_entities_keep_their_values_and_gain_keys(store: Store) -> None:
    await graph.create_entities(
        store,
        entities=[
            graph.NewEntity(name="Alice", type="", attributes={"age": 30}),
            graph.NewEntity(name="Acme", type="company", attributes={"founded": 1901}),
        ],
    )
    before = await graph.entity(store, name="Acme")
    extraction = graph.Extraction(
        entities=[
            graph.NewEntity(name="Alice", type="person", attributes={"age": 31, "city": "Paris"}),
            graph.NewEntity(name="Acme", type="organization", attributes={"founded": 1901}),
        ]
    )
    done = await graph.ingest(store, text="about Alice", extractor=Fixed(extraction))
    assert done.entities == []  # none created
    alice = await graph.entity(store, name="Alice")
    acme = await graph.entity(store, name="Acme")
    assert alice is not None and acme is not None
    assert (alice.entity.type, alice.entity.attributes) == ("person", {"age": 30, "city": "Paris"})
    assert (acme.entity.type, acme.entity.attributes) == ("company", {"founded": 1901})
    assert before is not None
    assert acme.entity.updated_at == before.entity.updated_at  # nothing to change: untouched


async def test_one_name_several_times_in_an_extraction(store: Store) -> None:
    extraction = graph.Extraction(
        entities=[
            graph.NewEntity(name="Alice", attributes={"a": 1}),
            graph.NewEntity(name="Alice", type="person", attributes={"a": 2, "b": 3}),
        ],
        facts=[
            graph.NewFact(subject="Alice", predicate="knows", object="Bob"),
            graph.NewFact(subject="Alice", predicate="knows", object="Bob"),
        ],
    )
    done = await graph.ingest(store, text="t", extractor=Fixed(extraction))
    assert [(e.name, e.type, e.attributes) for e in done.entities] == [
        ("Alice", "person", {"a": 1, "b": 3}),
        ("Bob", "", {}),
    ]
    assert len(done.facts) == 1


async def test_ingest_is_one_transaction(store: Store) -> None:
    # The last statement of the transaction refuses (a fact valid until before it is
    # asserted): neither the memory nor the entities stay.
    extraction = graph.Extraction(
        entities=[graph.NewEntity(name="Alice", type="person")],
        facts=[
            graph.NewFact(subject="Alice", predicate="p", object="Bob"),
            graph.NewFact(
                subject="Alice",
                predicate="q",
                object="Carol",
                valid_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            ),
        ],
    )
    with pytest.raises(InvariantError, match="valid until"):
        await graph.ingest(store, text="doomed", extractor=Fixed(extraction))
    for table in ("memory", "entity", "fact", "fact_source"):
        assert await _count(store, table) == 0, table
    # A source that does not exist: refused in the same way.
    with pytest.raises(NotFoundError, match="does not exist"):
        await graph.ingest(
            store, text=TEXT, extractor=EXTRACTOR, provenance=[RunTrace(run_id="nope", seq=1)]
        )
    for table in ("memory", "entity", "fact"):
        assert await _count(store, table) == 0, table


async def test_a_text_from_a_distrusted_run_gives_hidden_facts(store: Store) -> None:
    await runs.create_run(store, spec_digest="a" * 64, agent_name="bot", run_id="r1")
    await runs.append_event(store, run_id="r1", kind="tool_called", payload={})
    await runs.append_event(store, run_id="r1", kind="tool_called", payload={})
    trusted = await graph.ingest(
        store, text="Alice works at Acme.", extractor=EXTRACTOR,
        provenance=[RunTrace(run_id="r1", seq=1)],
    )  # fmt: skip
    await distrust(store, source=RunTrace(run_id="r1", seq=2), reason="hallucinated")
    tainted = await graph.ingest(
        store, text="Bob works at Globex.", extractor=EXTRACTOR,
        provenance=[RunTrace(run_id="r1", seq=2)],
    )  # fmt: skip
    assert trusted.memory is not None and tainted.memory is not None
    assert not trusted.memory.invalidated and tainted.memory.invalidated
    assert [f.invalidated for f in trusted.facts] == [False]
    lineage = await store.query(
        "SELECT VALUE <string>out FROM sourced_from WHERE in = type::record('memory', $id);",
        str,
        id=tainted.memory.id,
    )
    assert lineage == ["run_event:['r1', 2]"]


async def test_facts_from_a_text_of_a_distrusted_run_are_hidden(store: Store) -> None:
    await runs.create_run(store, spec_digest="a" * 64, agent_name="bot", run_id="r1")
    await runs.append_event(store, run_id="r1", kind="tool_called", payload={})
    await distrust(store, source=RunTrace(run_id="r1", seq=1), reason="hallucinated")
    tainted = await graph.ingest(
        store, text="Bob works at Globex.", extractor=EXTRACTOR,
        provenance=[RunTrace(run_id="r1", seq=1)],
    )  # fmt: skip
    assert [f.invalidated for f in tainted.facts] == [True]


async def test_scopes_are_apart(store: Store) -> None:
    a = await graph.ingest(store, text=TEXT, extractor=EXTRACTOR, scope="a")
    b = await graph.ingest(store, text=TEXT, extractor=EXTRACTOR, scope="b")
    assert len(a.facts) == len(b.facts) == 3
    assert a.memory is not None and b.memory is not None and a.memory.id != b.memory.id
    assert {f.scope for f in b.facts} == {"b"}
    assert await graph.entity(store, name="Alice") is None  # nothing in the default scope


async def test_bad_input_writes_nothing(store: Store) -> None:
    with pytest.raises(ValidationError, match="extractor must have"):
        await graph.ingest(store, text="t", extractor=object())  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="returns an Extraction"):
        await graph.ingest(store, text="t", extractor=Fixed({"entities": []}))
    bad_value = graph.Extraction(
        facts=[graph.NewFact(subject="A", predicate="p", object="B", value=float("nan"))]
    )
    with pytest.raises(ValidationError):
        await graph.ingest(store, text="t", extractor=Fixed(bad_value))
    bad_type = graph.Extraction(entities=[graph.NewEntity(name="A", type="t" * 300)])
    with pytest.raises(ValidationError, match="entity 0"):
        await graph.ingest(store, text="t", extractor=Fixed(bad_type))
    with pytest.raises(ValidationError):
        await graph.ingest(store, text="t", extractor=EXTRACTOR, scope="")
    with pytest.raises(ValidationError, match="provenance"):
        await graph.ingest(store, text="t", extractor=EXTRACTOR, provenance="r1:1")
    for table in ("memory", "entity", "fact"):
        assert await _count(store, table) == 0, table


async def test_the_text_can_be_embedded(store: Store) -> None:
    embedder = memory.HashingEmbedder(32)
    done = await graph.ingest(store, text=TEXT, extractor=EXTRACTOR, embedder=embedder)
    assert done.memory is not None and done.memory.embedding_model == embedder.model
    hits = await memory.recall(store, text="Alice", vector=embedder.vector("Alice works"), k=1)
    assert [h.memory.id for h in hits] == [done.memory.id]
