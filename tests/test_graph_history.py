"""Transaction time is the store's (#35 H1): no session (an agent, an editor, the owner through
raw SurrealQL) rewrites an entity's lives, recorded_at or retracted_at, or deletes an
observation link; the API's deletes, re-creations, merges, retractions and forgetting still
work. Schema 028."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from surreal_store import (
    ImmutableError,
    InvariantError,
    PermissionDeniedError,
    RecordId,
    Store,
    StoreError,
    ValidationError,
    access,
    agents,
    graph,
    memory,
)

pytestmark = pytest.mark.anyio

SCOPE = "team"
AGENT = ("a", "secret-of-agent-a")
EDITOR = ("ed", "editor-password")
VIEWER = ("vic", "viewer-password")


async def _world(tmp_path: Path) -> str:
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url) as root:
        await agents.register(root, name=AGENT[0], kind="bot", agent_id=AGENT[0])
        await access.grant_agent(root, agent_id=AGENT[0], secret=AGENT[1], scopes=[SCOPE])
        await access.add_user(root, name=EDITOR[0], password=EDITOR[1], role="editor")
        await access.add_user(root, name=VIEWER[0], password=VIEWER[1], role="viewer")
        await graph.create_entities(
            root, entities=[graph.NewEntity(name=n) for n in ("Alive", "Reborn")], scope=SCOPE
        )
        await graph.add_observations(root, entity="Alive", contents=["one", "two"], scope=SCOPE)
        await graph.delete_observations(root, entity="Alive", contents=["two"], scope=SCOPE)
        # Reborn: deleted, then created again (one earlier life).
        await graph.delete_entities(root, names=["Reborn"], scope=SCOPE)
        await graph.create_entities(root, entities=[graph.NewEntity(name="Reborn")], scope=SCOPE)
        await graph.create_entities(root, entities=[graph.NewEntity(name="Gone")], scope=SCOPE)
        await graph.delete_entities(root, names=["Gone"], scope=SCOPE)
    return url


@asynccontextmanager
async def _session(url: str, who: str) -> AsyncIterator[Store]:
    if who == "agent":
        async with Store(url, agent=AGENT[0], agent_secret=AGENT[1]) as s:
            yield s
    elif who in ("editor", "viewer"):
        user = EDITOR if who == "editor" else VIEWER
        async with Store(url, username=user[0], password=user[1]) as s:
            yield s
    else:
        async with Store(url) as s:
            yield s


_HISTORY = """
SELECT id, recorded_at, retracted_at, lives, observed FROM entity ORDER BY id;
SELECT * FROM observation ORDER BY id;
"""


def _e(name: str) -> str:
    return f"entity:`{graph.entity_id(SCOPE, name)}`"


FORGERIES = [
    # lives: rewritten, appended, removed
    f"UPDATE {_e('Reborn')} SET lives[0].recorded_at = d'2001-01-01T00:00:00Z'",
    f"UPDATE {_e('Reborn')} SET lives = [{{ recorded_at: d'2001-01-01T00:00:00Z', "
    "retracted_at: d'2001-02-01T00:00:00Z' }]",
    f"UPDATE {_e('Alive')} SET lives += {{ recorded_at: d'2001-01-01T00:00:00Z', "
    "retracted_at: d'2001-02-01T00:00:00Z' }",
    f"UPDATE {_e('Reborn')} SET lives = []",
    # recorded_at: back-dated, moved to the future, changed with a fake new life
    f"UPDATE {_e('Alive')} SET recorded_at = d'2001-01-01T00:00:00Z'",
    f"UPDATE {_e('Alive')} SET recorded_at = time::now() + 1d",
    f"UPDATE {_e('Gone')} SET lives += {{ recorded_at: recorded_at, retracted_at: retracted_at }},"
    " recorded_at = d'2001-01-01T00:00:00Z', retracted_at = NONE",
    f"UPDATE {_e('Gone')} SET lives += {{ recorded_at: recorded_at, retracted_at: retracted_at }},"
    " recorded_at = time::now() + 1d, retracted_at = NONE",
    # retracted_at: moved, cleared (undeleting without a new life), set in the future
    f"UPDATE {_e('Gone')} SET retracted_at = time::now()",
    f"UPDATE {_e('Gone')} SET retracted_at = NONE",
    f"UPDATE {_e('Alive')} SET retracted_at = time::now() + 1d",
    # observations: deleted, un-retracted, retracted in the future
    "DELETE observation",
    f"DELETE observation WHERE out = {_e('Alive')}",
    "UPDATE observation SET retracted_at = NONE",
    "UPDATE observation SET retracted_at = time::now() + 1d WHERE retracted_at = NONE",
]


@pytest.mark.parametrize("who", ["agent", "viewer", "editor", "owner"])
async def test_no_session_forges_transaction_time(tmp_path: Path, who: str) -> None:
    url = await _world(tmp_path)
    async with Store(url) as root:
        before = repr(await root.execute(_HISTORY))
    async with _session(url, who) as s:
        for text in FORGERIES:
            with pytest.raises(StoreError) as caught:
                await s.execute(text)
            assert isinstance(
                caught.value, ImmutableError | InvariantError | PermissionDeniedError
            ), (text, caught.value)
    async with Store(url) as root:
        assert repr(await root.execute(_HISTORY)) == before


async def test_an_agent_creates_no_back_dated_history(tmp_path: Path) -> None:
    """A user may bring history in (a bundle); an agent's new entity or observation link
    starts now, and a new entity has no earlier life."""
    url = await _world(tmp_path)
    fresh = f"entity:`{graph.entity_id(SCOPE, 'Fresh')}`"
    mine = f"memory:`{graph.observation_memory_id(SCOPE, 'Alive', 'mine')}`"
    alive = graph.entity_id(SCOPE, "Alive")
    base = f"CREATE {fresh} SET scope = '{SCOPE}', name = 'Fresh', name_key = 'fresh'"
    async with Store(url) as root:
        before = repr(await root.execute(_HISTORY))
    async with _session(url, "agent") as a:
        await a.execute(
            f"CREATE {mine} SET scope = '{SCOPE}', kind = 'observation', key = 'Alive', "
            "content = 'mine', content_hash = crypto::sha256('mine')"
        )
        for text in (
            f"{base}, recorded_at = d'2001-01-01T00:00:00Z'",
            f"{base}, lives = [{{ recorded_at: d'2001-01-01T00:00:00Z', "
            "retracted_at: d'2001-02-01T00:00:00Z' }]",
            f"RELATE {mine}->observation->entity:`{alive}` CONTENT {{ "
            f"id: observation:[record::id({mine}), '{alive}', 9], scope: '{SCOPE}', "
            "position: 9, recorded_at: d'2001-01-01T00:00:00Z' }",
        ):
            with pytest.raises(InvariantError, match="an agent records a new"):
                await a.execute(text)
        await a.execute(f"DELETE {mine}")
    async with Store(url) as root:
        assert repr(await root.execute(_HISTORY)) == before


async def test_the_api_still_deletes_creates_again_merges_and_forgets(tmp_path: Path) -> None:
    url = await _world(tmp_path)
    async with _session(url, "agent") as a:
        # Deleting and creating again, twice: one more life each time, in order.
        for _ in range(2):
            assert await graph.delete_entities(a, names=["Reborn"], scope=SCOPE)
            (made,) = await graph.create_entities(
                a, entities=[graph.NewEntity(name="Reborn")], scope=SCOPE
            )
        rows = await a.query("SELECT VALUE lives FROM ONLY $e", dict, e=RecordId("entity", made.id))
        assert len(rows) == 3
        times = [t for life in rows for t in (life["recorded_at"], life["retracted_at"])]
        assert times == sorted(times) and times[-1] <= made.recorded_at
        # Removing an observation retracts it; forgetting its memory purges the link with it.
        await graph.add_observations(a, entity="Reborn", contents=["kept", "purged"], scope=SCOPE)
        await graph.delete_observations(a, entity="Reborn", contents=["kept"], scope=SCOPE)
        links = await a.query(
            "SELECT in.content AS c, retracted_at FROM observation WHERE out = $e ORDER BY c",
            dict,
            e=RecordId("entity", made.id),
        )
        assert [(r["c"], r["retracted_at"] is not None) for r in links] == [
            ("kept", True),
            ("purged", False),
        ]
        view = await graph.entity(a, name="Reborn", scope=SCOPE)
        assert view is not None and view.contents == ["purged"]
        (purged,) = [o.memory for o in view.observations]
        receipt = await memory.forget(a, memory=purged, scope=SCOPE)
        assert receipt.memories == [purged] and len(receipt.edges) == 1
        view = await graph.entity(a, name="Reborn", scope=SCOPE)
        assert view is not None and view.contents == []
    async with _session(url, "editor") as ed:
        # An editor forgets too: "one" of Alive goes with its link.
        one = graph.observation_memory_id(SCOPE, "Alive", "one")
        assert (await memory.forget(ed, memory=one, scope=SCOPE)).memories == [one]
        alive = await graph.entity(ed, name="Alive", scope=SCOPE)
        assert alive is not None and alive.contents == []
    async with Store(url) as root:
        # No link is left behind pointing at a forgotten memory.
        dangling = "SELECT VALUE id FROM observation WHERE !record::exists(in)"
        assert await root.query(dangling, RecordId) == []
        merged = await graph.merge(
            root, keep="Alive", absorb="Reborn", reason="the same thing", scope=SCOPE
        )
        assert merged.absorbed.retracted_at is not None
        # The owner deletes an entity outright: its links go with it.
        await root.execute("DELETE $e", e=RecordId("entity", graph.entity_id(SCOPE, "Gone")))


async def test_the_same_words_on_two_entities_are_two_memories(store: Store) -> None:
    """#35 M5: distrusting the source of A's observation hides nothing of B's same words."""
    from mcp import Client

    from surreal_store import provenance
    from surreal_store.mcp import create_server

    doc_a = await memory.remember(store, content="a document about A")
    doc_b = await memory.remember(store, content="a document about B")
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in "AB"])
    await graph.add_observations(store, entity="A", contents=["likes green tea"], source=doc_a.id)
    await graph.add_observations(store, entity="B", contents=["likes green tea"], source=doc_b.id)
    await graph.add_observations(store, entity="B", contents=["plays chess"])
    await provenance.invalidate(store, memory=doc_a.id, reason="a poisoned document")
    a, b = [await graph.entity(store, name=n) for n in "AB"]
    assert a is not None and a.contents == []
    assert b is not None and b.contents == ["likes green tea", "plays chess"]
    ids = {n: graph.observation_memory_id("default", n, "likes green tea") for n in "AB"}
    assert ids["A"] != ids["B"]
    assert (await memory.get(store, memory=ids["B"])).key == "B"
    found = await memory.recall(store, text="green tea", kind=graph.OBSERVATION_KIND)
    assert [h.memory.id for h in found] == [ids["B"]]
    hits = await graph.search_entities(store, text="green tea")
    assert [h.entity.name for h in hits] == ["B"]
    async with Client(create_server(store)) as c:
        got = await c.call_tool("open_nodes", {"names": ["A", "B"]})
        assert isinstance(got.structured_content, dict)
        shown = {e["name"]: e["observations"] for e in got.structured_content["entities"]}
        assert shown == {"A": [], "B": ["likes green tea", "plays chess"]}
    # Restoring the document brings A's back; B's never moved.
    await provenance.restore(store, memory=doc_a.id)
    a = await graph.entity(store, name="A")
    assert a is not None and a.contents == ["likes green tea"]


async def test_observations_written_before_per_entity_memories_still_count(store: Store) -> None:
    """A link from a memory keyed by scope and content alone (as observations were before
    schema 028) holds its content: adding it again adds nothing, deleting it retracts it."""
    await graph.create_entities(store, entities=[graph.NewEntity(name="A")])
    old = memory.memory_id("default", "an old observation")
    await store.execute(
        "CREATE $m CONTENT { scope: 'default', kind: 'observation', content: $c, "
        "content_hash: crypto::sha256($c) };"
        "RELATE $m->observation->$e CONTENT { id: observation:[$k, $ek, 0], scope: 'default', "
        "position: 0, recorded_at: time::now() };"
        "UPDATE $e SET observed = 1;",
        m=RecordId("memory", old),
        c="an old observation",
        e=RecordId("entity", graph.entity_id("default", "A")),
        k=old,
        ek=graph.entity_id("default", "A"),
    )
    assert await graph.add_observations(
        store, entity="A", contents=["an old observation", "a new one"]
    ) == ["a new one"]
    await graph.delete_observations(store, entity="A", contents=["an old observation"])
    a = await graph.entity(store, name="A")
    assert a is not None and a.contents == ["a new one"]


async def test_a_large_call_is_split_into_transactions_and_keeps_its_order(store: Store) -> None:
    """#35 M6: a call of more observations than a transaction takes (250) is linear; the
    positions run on across batches, repeats and held contents are skipped."""
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in "AB"])
    await graph.add_observations(store, entity="A", contents=["o 7", "o 300"])
    contents = [f"o {i}" for i in range(600)]
    added = await graph.add_observations_many(
        store, observations={"A": [*contents, "o 1"], "B": ["o 1", "o 2"]}
    )
    assert added == {"A": [c for c in contents if c not in ("o 7", "o 300")], "B": ["o 1", "o 2"]}
    a = await graph.entity(store, name="A")
    assert a is not None and a.contents == ["o 7", "o 300", *added["A"]]
    assert [o.position for o in a.observations] == list(range(600))


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [65, 200, 5000])
async def test_a_value_nested_too_deep_is_refused_before_anything_is_written(
    store: Store, levels: int
) -> None:
    """A value nested deeper than MAX_JSON_DEPTH (64) is a ValidationError before the write,
    for a fact's value, an entity's attributes and a memory's metadata (it was a
    TransportError from the engine at 200)."""
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in "AB"])
    before = repr(await store.execute(_EVERYTHING))
    deep = _deep(levels)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: graph.assert_facts(
            store, facts=[graph.NewFact(subject="A", predicate="p", object="B", value=deep)]
        ),
        lambda: graph.create_entities(
            store, entities=[graph.NewEntity(name="C", attributes={"x": deep})]
        ),
        lambda: memory.remember(store, content="deep", metadata={"x": deep}),
    ]
    for call in calls:
        with pytest.raises(ValidationError, match="more than 64 levels deep"):
            await call()
    assert repr(await store.execute(_EVERYTHING)) == before


async def test_a_value_at_the_depth_limit_round_trips(store: Store) -> None:
    await graph.create_entities(
        store,
        entities=[
            graph.NewEntity(name="A", attributes={"x": _deep(63)}),
            graph.NewEntity(name="B"),
        ],
    )
    (f,) = await graph.assert_facts(
        store, facts=[graph.NewFact(subject="A", predicate="p", object="B", value=_deep(64))]
    )
    assert f.value == _deep(64)
    a = await graph.entity(store, name="A")
    assert a is not None and a.entity.attributes == {"x": _deep(63)}
    m = await memory.remember(store, content="deep", metadata={"x": _deep(63)})
    assert (await memory.get(store, memory=m.id)).metadata == {"x": _deep(63)}


_EVERYTHING = """
SELECT * FROM entity ORDER BY id;
SELECT * FROM fact ORDER BY id;
SELECT * FROM memory ORDER BY id;
"""


async def test_restore_lists_the_facts_it_brought_back(store: Store) -> None:
    from surreal_store import provenance

    doc = await memory.remember(store, content="the source document")
    other = await memory.remember(store, content="another document")
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in "ABC"])
    f = graph.NewFact
    (one, two) = await graph.assert_facts(
        store,
        facts=[
            f(subject="A", predicate="p", object="B"),
            f(subject="A", predicate="q", object="C"),
        ],
        source=doc.id,
    )
    (both,) = await graph.assert_facts(
        store, facts=[f(subject="B", predicate="r", object="C")], source=[doc.id, other.id]
    )
    receipt = await provenance.invalidate(store, memory=doc.id, reason="wrong")
    await provenance.invalidate(store, memory=other.id, reason="wrong too")
    assert sorted(receipt.facts) == sorted([one.id, two.id, both.id])
    restored = await provenance.restore(store, memory=doc.id)
    assert list(restored) == [doc.id]
    # The fact that cites the other document too stays hidden: it did not come back.
    assert sorted(restored.facts) == sorted([one.id, two.id])
    again = await provenance.restore(store, memory=other.id)
    assert list(again) == [other.id] and again.facts == [both.id]


async def test_forgetting_a_source_memory_is_said_in_its_receipt(store: Store) -> None:
    """Forgetting purges a memory with every edge touching it, a fact's source edge
    included: the receipt names that edge, the fact stays (as a memory derived from a forgotten
    one does). Hiding instead (purge=False) keeps the edge, so the source can still be
    distrusted and its facts hidden."""
    from surreal_store import provenance

    kept = await memory.remember(store, content="kept as a hidden source")
    gone = await memory.remember(store, content="forgotten source")
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in "AB"])
    f = graph.NewFact
    (hid,) = await graph.assert_facts(
        store, facts=[f(subject="A", predicate="p", object="B")], source=kept.id
    )
    (stripped,) = await graph.assert_facts(
        store, facts=[f(subject="A", predicate="q", object="B")], source=gone.id
    )
    hidden = await memory.forget(store, memory=kept.id, purge=False)
    assert not hidden.purged
    assert kept.id in str((await provenance.lineage(store, fact=hid.id)).to_dict())
    await provenance.invalidate(store, memory=kept.id, reason="distrusted")
    assert hid.id not in {x.id for x in await graph.facts(store)}
    purged = await memory.forget(store, memory=gone.id)
    assert purged.edges == [f"fact_source:['{stripped.id}', 'memory:{gone.id}']"]
    assert stripped.id in {x.id for x in await graph.facts(store)}
    assert gone.id not in str((await provenance.lineage(store, fact=stripped.id)).to_dict())


async def _superseded(s: Store, scope: str, subject: str) -> tuple[graph.Fact, graph.Fact]:
    """``subject`` works at X from 2000, then at Y from 2001 (single-valued): the fact that
    stands and the one it superseded."""
    import datetime as dt

    await graph.declare_predicate(s, name="works_at", single_valued=True, scope=scope)
    names = [subject, f"{subject}-X", f"{subject}-Y"]
    await graph.create_entities(s, entities=[graph.NewEntity(name=n) for n in names], scope=scope)
    for obj, year in ((f"{subject}-X", 2000), (f"{subject}-Y", 2001)):
        at = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
        fact = graph.NewFact(subject=subject, predicate="works_at", object=obj, valid_from=at)
        await graph.assert_facts(s, facts=[fact], scope=scope)
    history = await graph.fact_history(s, subject=subject, scope=scope)
    stands = next(f for f in history if f.object == f"{subject}-Y" and f.retracted_at is None)
    taken = next(f for f in history if f.superseded_by is not None)
    return stands, taken


@pytest.mark.parametrize("who", ["agent", "owner"])
async def test_no_session_makes_a_fact_hold_what_it_never_took(tmp_path: Path, who: str) -> None:
    """``took`` names what hiding a fact gives back (schema 027): a forged entry naming another
    scope's fact, a fact it did not supersede, or a time outside the fact's is refused, so
    the owner's later distrust cannot re-record facts in a scope the forger may not write."""
    url = await _world(tmp_path)
    async with Store(url) as root:
        stands, taken = await _superseded(root, SCOPE, "Ann")
        _, elsewhere = await _superseded(root, "other", "Bob")
        loose = await graph.assert_facts(
            root,
            facts=[graph.NewFact(subject="Ann-X", predicate="likes", object="Ann-Y")],
            scope=SCOPE,
        )
        await graph.retract_facts(root, facts=[loose[0]], scope=SCOPE)
        before = repr(await root.execute("SELECT id, took, retracted_at FROM fact ORDER BY id"))
    fact = f"fact:`{stands.id}`"
    forged = [
        f"fact:`{elsewhere.id}`",  # another scope's
        f"fact:`{loose[0].id}`",  # retracted, but not superseded by it
    ]
    async with _session(url, who) as s:
        for target in forged:
            with pytest.raises(StoreError):
                await s.execute(
                    f"UPDATE {fact} SET took += {{ fact: {target}, "
                    "from: d'2001-01-01T00:00:00Z', until: NONE }"
                )
        # What it did take, but over a time outside that fact's valid time.
        with pytest.raises(StoreError):
            await s.execute(
                f"UPDATE {fact} SET took += {{ fact: fact:`{taken.id}`, "
                "from: d'1990-01-01T00:00:00Z', until: NONE }"
            )
    async with Store(url) as root:
        assert repr(await root.execute("SELECT id, took, retracted_at FROM fact ORDER BY id")) == (
            before
        )


@pytest.mark.parametrize("who", ["agent", "editor", "owner"])
async def test_no_session_plants_a_supersession_or_drops_a_source(tmp_path: Path, who: str) -> None:
    """``superseded_by`` is named only as a fact is retracted (planted on a retracted fact it
    let ``took`` give back a fact the owner retracted; on a current one it blocked every later
    supersession), and a fact keeps its source edges (deleting one cleared a distrusted
    source's hold on the fact)."""
    url = await _world(tmp_path)
    async with Store(url) as root:
        stands, _ = await _superseded(root, SCOPE, "Ann")
        (loose,) = await graph.assert_facts(
            root,
            facts=[graph.NewFact(subject="Ann-X", predicate="likes", object="Ann-Y")],
            scope=SCOPE,
        )
        await graph.retract_facts(root, facts=[loose], scope=SCOPE)
        note = await memory.remember(root, content="where Ann works", scope=SCOPE)
        (sourced,) = await graph.assert_facts(
            root,
            facts=[graph.NewFact(subject="Ann", predicate="knows", object="Ann-X")],
            scope=SCOPE,
            source=note.id,
        )
        before = repr(
            await root.execute(
                "SELECT id, superseded_by, retracted_at FROM fact ORDER BY id;"
                "SELECT in, out FROM fact_source ORDER BY in;"
            )
        )
    async with _session(url, who) as s:
        for text in (
            f"UPDATE fact:`{loose.id}` SET superseded_by = fact:`{stands.id}`",
            f"UPDATE fact:`{stands.id}` SET superseded_by = fact:nonexistent",
            f"UPDATE fact:`{stands.id}` SET superseded_by = fact:`{loose.id}`",
            f"DELETE fact_source WHERE in = fact:`{sourced.id}`",
        ):
            with pytest.raises(StoreError):
                await s.execute(text)
    async with Store(url) as root:
        after = repr(
            await root.execute(
                "SELECT id, superseded_by, retracted_at FROM fact ORDER BY id;"
                "SELECT in, out FROM fact_source ORDER BY in;"
            )
        )
        assert after == before


async def test_an_agent_lifts_only_a_distrust_it_recorded(tmp_path: Path) -> None:
    """The owner quarantines the agent's run: the agent's restore is refused (schema 031) and
    changes nothing; a distrust the agent recorded itself it may still lift."""
    from surreal_store import provenance, runs
    from surreal_store.provenance import RunTrace

    url = await _world(tmp_path)
    async with Store(url, agent=AGENT[0], agent_secret=AGENT[1]) as a:
        run = await runs.create_run(a, spec_digest="a" * 64, agent_name=AGENT[0])
        await runs.append_event(a, run_id=run.id, kind="tool_called", payload={})
        await runs.append_event(a, run_id=run.id, kind="tool_called", payload={})
        first, second = RunTrace(run_id=run.id, seq=1), RunTrace(run_id=run.id, seq=2)
        for i, trace in enumerate((first, second)):
            await graph.assert_facts(
                a,
                facts=[graph.NewFact(subject="Alive", predicate=f"p{i}", object="Reborn")],
                scope=SCOPE,
                source=trace,
            )
    async with Store(url) as root:
        await provenance.invalidate(root, source=first, reason="quarantined", by="ops")
        seen = [f.predicate for f in await graph.facts(root, scope=SCOPE)]
        assert seen == ["p1"]
    async with Store(url, agent=AGENT[0], agent_secret=AGENT[1]) as a:
        with pytest.raises(PermissionDeniedError):
            await provenance.restore(a, source=first)
        await provenance.invalidate(a, source=second, reason="my own mistake")
        assert [f.predicate for f in await graph.facts(a, scope=SCOPE)] == []
        restored = await provenance.restore(a, source=second)
        assert len(restored.facts) == 1
    async with Store(url) as root:
        assert [f.predicate for f in await graph.facts(root, scope=SCOPE)] == ["p1"]


@pytest.mark.parametrize("who", ["agent", "editor", "owner"])
async def test_no_session_writes_an_entity_version(tmp_path: Path, who: str) -> None:
    """#35 finding 6: only a change of an entity writes its kept versions (schema 032): an
    owner's or an editor's raw CREATE of a row (agents were refused already), with any id,
    is refused, and so is a forged revision count."""
    url = await _world(tmp_path)
    async with Store(url) as root:
        await graph.update_entity(root, name="Alive", summary="changed", scope=SCOPE)
        before = repr(await root.execute("SELECT * FROM entity_version ORDER BY id"))
    alive = _e("Alive")
    row = (
        f"CONTENT {{ entity: {alive}, scope: '{SCOPE}', type: 'forged', aliases: [], "
        "summary: 'forged', attributes: {}, replaced_at: d'2001-01-01T00:00:00Z' }"
    )
    key = f"record::id({alive}), {alive}.created_at"
    forged = [
        f"CREATE entity_version {row}",
        f"CREATE type::record('entity_version', [{key}, {alive}.revision.n]) {row}",
        f"CREATE type::record('entity_version', [{key}, {alive}.revision.n + 1]) {row}",
        f"CREATE type::record('entity_version', [{key}, 0]) {row}",
        f"INSERT INTO entity_version {row.removeprefix('CONTENT ')}",
        f"UPDATE {alive} SET revision = {{ n: 9, h: 'forged' }}; "
        f"CREATE type::record('entity_version', [{key}, 9]) {row}",
    ]
    async with _session(url, who) as s:
        for text in forged:
            with pytest.raises(StoreError):
                await s.execute(text)
    async with Store(url) as root:
        assert repr(await root.execute("SELECT * FROM entity_version ORDER BY id")) == before
        # The API's changes still keep their versions.
        await graph.update_entity(root, name="Alive", summary="again", scope=SCOPE)
        kept = await root.query("SELECT VALUE summary FROM entity_version ORDER BY id", str)
        assert kept == ["", "changed"]
