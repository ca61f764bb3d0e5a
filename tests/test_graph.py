"""The knowledge graph (#35): entities, facts, observations, bi-temporal reads, supersession,
sources. On the real embedded engine."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from surreal_store import (
    ImmutableError,
    InvariantError,
    NotFoundError,
    RecordId,
    Store,
    ValidationError,
    default_schema_dir,
    graph,
    memory,
    provenance,
    runs,
)

pytestmark = pytest.mark.anyio

E, F = graph.NewEntity, graph.NewFact


def year(n: int) -> dt.datetime:
    return dt.datetime(n, 1, 1, tzinfo=dt.UTC)


async def now(store: Store) -> dt.datetime:
    return await store.query_required_single("RETURN time::now();", dt.datetime)


PEOPLE = ["Alice", "Bob", "Acme", "Globex", "Initech"]


async def people(store: Store, scope: str = graph.DEFAULT_SCOPE) -> None:
    await graph.create_entities(store, entities=[E(name=n) for n in PEOPLE], scope=scope)


# -- entities ------------------------------------------------------------------------------


async def test_create_entities_skips_existing_names_and_returns_the_created(store: Store) -> None:
    made = await graph.create_entities(
        store,
        entities=[E(name="Alice", type="person", summary="an engineer"), E(name="Acme"),
                  E(name="Alice", type="robot")],
    )  # fmt: skip
    assert [e.name for e in made] == ["Alice", "Acme"]
    assert made[0].type == "person" and made[0].summary == "an engineer"
    assert made[0].id == graph.entity_id("default", "Alice")
    again = await graph.create_entities(store, entities=[E(name="Alice"), E(name="Bob")])
    assert [e.name for e in again] == ["Bob"]
    view = await graph.entity(store, name="Alice")
    assert view is not None and view.entity.type == "person"  # not updated by the skip


async def test_names_are_exact_and_scoped(store: Store) -> None:
    made = await graph.create_entities(
        store, entities=[E(name=n) for n in ("Café", "café", "Café ")]
    )
    assert len(made) == 3
    assert len({graph.name_key(e.name) for e in made}) == 1
    other = await graph.create_entities(store, entities=[E(name="Café")], scope="elsewhere")
    assert other[0].id != made[0].id
    assert [e.name for e in (await graph.read_graph(store, scope="elsewhere")).entities] == ["Café"]


async def test_bad_entities_are_refused_before_anything_is_written(store: Store) -> None:
    bad_lists: list[Callable[[], Any]] = [
        lambda: [E(name="")],
        lambda: [E(name="   ")],
        lambda: [E(name="ok"), E(name="x", aliases="ab")],
        lambda: [E(name="ok"), {"name": "dict"}],
        lambda: [E(name="x", attributes={1: 2})],
        lambda: [E(name="x", attributes={"a": float("inf")})],
        lambda: [E(name="x\udc80")],
    ]
    for make in bad_lists:
        with pytest.raises(ValidationError):
            await graph.create_entities(store, entities=make())
    assert (await graph.read_graph(store)).entities == []


async def test_the_database_keys_an_entity_by_its_scope_and_name(store: Store) -> None:
    with pytest.raises(InvariantError):
        await store.execute(
            "CREATE entity:wrong SET scope = 'default', name = 'x', name_key = 'x';"
        )


async def test_delete_entities_retracts_them_with_their_facts_and_observations(
    store: Store,
) -> None:
    await people(store)
    await graph.assert_facts(store, facts=[F(subject="Alice", predicate="knows", object="Bob")])
    await graph.add_observations(store, entity="Alice", contents=["likes tea"])
    before = await now(store)
    gone = await graph.delete_entities(store, names=["Alice", "Nobody"])
    assert [e.name for e in gone] == ["Alice"] and gone[0].deleted
    assert await graph.delete_entities(store, names=["Alice"]) == []  # idempotent
    assert await graph.entity(store, name="Alice") is None
    assert await graph.facts(store, entity="Bob") == []
    then = await graph.entity(store, name="Alice", known_at=before)
    assert then is not None and then.contents == ["likes tea"]
    assert [f.object for f in then.facts] == ["Bob"]
    # The observation's memory stays: it is the memory layer's.
    kept = graph.observation_memory_id("default", "Alice", "likes tea")
    assert (await memory.get(store, memory=kept)).kind == graph.OBSERVATION_KIND
    # A new life of the same record; the first is remembered.
    again = await graph.create_entities(store, entities=[E(name="Alice", type="person")])
    assert [e.name for e in again] == ["Alice"] and len(again[0].lives) == 1
    view = await graph.entity(store, name="Alice")
    assert view is not None and view.contents == [] and view.facts == []
    assert await graph.entity(store, name="Alice", known_at=before) is not None


# -- facts ---------------------------------------------------------------------------------


async def test_an_identical_current_fact_is_not_duplicated(store: Store) -> None:
    await people(store)
    fact = F(subject="Alice", predicate="works_at", object="Acme", value={"role": "cto"})
    first = await graph.assert_facts(store, facts=[fact, fact])
    assert len(first) == 1 and first[0].value == {"role": "cto"}
    assert await graph.assert_facts(store, facts=[fact]) == []
    other_value = F(subject="Alice", predicate="works_at", object="Acme", value={"role": "ceo"})
    assert len(await graph.assert_facts(store, facts=[other_value])) == 1
    assert len(await graph.facts(store, entity="Alice")) == 2


async def test_facts_need_live_entities_of_their_scope(store: Store) -> None:
    await people(store)
    await graph.create_entities(store, entities=[E(name="Zed")], scope="other")
    for bad in (F(subject="Alice", predicate="knows", object="Nobody"),
                F(subject="Alice", predicate="knows", object="Zed")):  # fmt: skip
        with pytest.raises(NotFoundError, match="no entity"):
            await graph.assert_facts(
                store, facts=[F(subject="Alice", predicate="knows", object="Bob"), bad]
            )
    assert await graph.facts(store) == []
    # The database itself refuses a fact across scopes.
    zed = RecordId("entity", graph.entity_id("other", "Zed"))
    alice = RecordId("entity", graph.entity_id("default", "Alice"))
    with pytest.raises(InvariantError):
        await store.execute(
            "RELATE $a->fact->$b SET scope = 'default', predicate = 'p', key = $k, "
            "valid_from = time::now(), recorded_at = time::now();",
            a=alice, b=zed, k="0" * 64,
        )  # fmt: skip


async def test_bad_facts_are_refused(store: Store) -> None:
    await people(store)
    for bad in (F(subject="Alice", predicate="", object="Bob"),
                F(subject="Alice", predicate="p", object="Bob", valid_from=year(2020),
                  valid_until=year(2019)),
                F(subject="Alice", predicate="p", object="Bob", value=float("nan"))):  # fmt: skip
        with pytest.raises(ValidationError):
            await graph.assert_facts(store, facts=[bad])
    with pytest.raises(InvariantError, match="valid until"):
        # valid_from defaults to now: an end in the past is before it
        await graph.assert_facts(
            store, facts=[F(subject="Alice", predicate="p", object="Bob", valid_until=year(2000))]
        )
    assert await graph.fact_history(store) == []


async def test_valid_time_and_transaction_time_are_separate_questions(store: Store) -> None:
    await people(store)
    t0 = await now(store)
    await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="lives_in", object="Initech", valid_from=year(2010),
                 valid_until=year(2015))],
    )  # fmt: skip
    t1 = await now(store)
    [retracted] = await graph.retract_facts(
        store, facts=[F(subject="Alice", predicate="lives_in", object="Initech")]
    )
    assert retracted.retracted_at is not None
    # What was true in 2012, as believed between t0 and t1: yes; before t0 or now: no.
    assert len(await graph.facts(store, valid_at=year(2012), known_at=t1)) == 1
    assert await graph.facts(store, valid_at=year(2012), known_at=t0) == []
    assert await graph.facts(store, valid_at=year(2012)) == []
    # Not true in 2016 whatever the store believed.
    assert await graph.facts(store, valid_at=year(2016), known_at=t1) == []
    assert len(await graph.fact_history(store, entity="Alice")) == 1


async def test_single_valued_predicates_supersede_and_keep_the_old_value(store: Store) -> None:
    await people(store)
    await graph.declare_predicate(store, name="works_at", single_valued=True)
    [acme] = await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Acme", valid_from=year(2020))],
    )
    t_acme = await now(store)
    [globex] = await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Globex", valid_from=year(2024))],
    )
    assert [f.object for f in await graph.facts(store, subject="Alice")] == ["Globex"]
    [then] = await graph.facts(store, subject="Alice", valid_at=year(2022))
    assert then.object == "Acme" and then.valid_until == year(2024) and then.supersedes == acme.id
    # As believed before the change, Acme had no end.
    [believed] = await graph.facts(store, subject="Alice", valid_at=year(2025), known_at=t_acme)
    assert believed.id == acme.id and believed.valid_until is None
    history = await graph.fact_history(store, subject="Alice")
    assert {f.id for f in history} == {acme.id, globex.id, then.id}
    [old] = [f for f in history if f.id == acme.id]
    assert old.superseded_by == globex.id and old.retracted_at == globex.recorded_at
    # Other subjects and non-declared predicates are untouched.
    await graph.assert_facts(
        store,
        facts=[F(subject="Bob", predicate="works_at", object="Acme"),
               F(subject="Alice", predicate="knows", object="Bob"),
               F(subject="Alice", predicate="knows", object="Acme")],
    )  # fmt: skip
    assert len(await graph.facts(store, subject="Alice", predicate="knows")) == 2
    assert len(await graph.facts(store, object="Acme", predicate="works_at")) == 1


async def test_a_bounded_new_value_splits_the_old_one(store: Store) -> None:
    await people(store)
    await graph.declare_predicate(store, name="works_at", single_valued=True)
    await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Acme", valid_from=year(2010))],
    )
    await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Globex", valid_from=year(2015),
                 valid_until=year(2017))],
    )  # fmt: skip
    at = {y: [f.object for f in await graph.facts(store, subject="Alice", valid_at=year(y))]
          for y in (2012, 2016, 2020)}  # fmt: skip
    assert at == {2012: ["Acme"], 2016: ["Globex"], 2020: ["Acme"]}


async def alice_jobs(store: Store, **at: Any) -> list[tuple[str, int, int | None]]:
    return sorted(
        (f.object, f.valid_from.year, None if f.valid_until is None else f.valid_until.year)
        for f in await graph.facts(store, subject="Alice", predicate="works_at", **at)
    )


def job(obj: str, start: int, end: int | None = None) -> graph.NewFact:
    return F(subject="Alice", predicate="works_at", object=obj, valid_from=year(start),
             valid_until=None if end is None else year(end))  # fmt: skip


async def test_an_open_fact_asserted_out_of_order_fills_in_history(store: Store) -> None:
    # Fails before this change (M2): Acme from 2020 superseded Globex from 2024 entirely.
    await people(store)
    await graph.declare_predicate(store, name="works_at", single_valued=True)
    [globex] = await graph.assert_facts(store, facts=[job("Globex", 2024)])
    [acme] = await graph.assert_facts(store, facts=[job("Acme", 2020)])
    assert acme.valid_until == year(2024)  # it ends where the later value starts
    assert await alice_jobs(store, valid_at=year(2022)) == [("Acme", 2020, 2024)]
    assert await alice_jobs(store, valid_at=year(2025)) == [("Globex", 2024, None)]
    # (The history also holds the rest of Acme from 2024 as a part Globex holds, recorded and
    # retracted at once: hiding Globex gives it back, schema 036.)
    history = await graph.fact_history(store, subject="Alice")
    assert [f.id for f in history if f.retracted_at != f.recorded_at] == [globex.id, acme.id]
    [rest] = [f for f in history if f.retracted_at == f.recorded_at]
    assert (rest.object, rest.valid_from, rest.superseded_by) == ("Acme", year(2024), globex.id)
    # Earlier still: it ends where the earliest later value starts.
    [initech] = await graph.assert_facts(store, facts=[job("Initech", 2010)])
    assert initech.valid_until == year(2020)
    # An explicit end still wins over the overlap it names: the newer assertion supersedes.
    await graph.assert_facts(store, facts=[job("Initech", 2023, 2026)])
    assert await alice_jobs(store, valid_at=year(2022)) == [("Acme", 2020, 2023)]
    assert await alice_jobs(store, valid_at=year(2025)) == [("Initech", 2023, 2026)]
    assert await alice_jobs(store, valid_at=year(2027)) == [("Globex", 2026, None)]


async def test_reasserting_a_current_fact_earlier_or_adjoining_makes_one_fact(store: Store) -> None:
    # Fails before this change: two current facts of the same key (2020- and 2022-).
    await people(store)
    m1 = await memory.remember(store, content="a payslip")
    m2 = await memory.remember(store, content="a contract")
    [late] = await graph.assert_facts(store, facts=[job("Acme", 2022)], source=m1.id)
    [early] = await graph.assert_facts(store, facts=[job("Acme", 2020, 2023)], source=m2.id)
    assert (early.valid_from, early.valid_until) == (year(2020), None)  # their union
    assert [f.id for f in await graph.facts(store, subject="Alice")] == [early.id]
    # (The history also holds the assertion's own part, recorded and retracted at once: the
    # fact that joins it holds it, schema 036.)
    history = await graph.fact_history(store, subject="Alice")
    assert [f.id for f in history if f.retracted_at != f.recorded_at] == [late.id, early.id]
    sources = await store.query(
        "SELECT VALUE out FROM fact_source WHERE in = $f ORDER BY out", RecordId,
        f=RecordId("fact", early.id),
    )  # fmt: skip
    assert sorted(str(s.key) for s in sources) == sorted([m1.id, m2.id])
    # Adjoining bounded facts join too.
    await graph.assert_facts(store, facts=[job("Globex", 2000, 2005)])
    [joined] = await graph.assert_facts(store, facts=[job("Globex", 2005, 2008)])
    assert (joined.valid_from, joined.valid_until) == (year(2000), year(2008))
    assert await alice_jobs(store, valid_at=year(2001)) == [("Globex", 2000, 2008)]


async def test_a_second_source_for_a_current_fact_is_recorded_and_each_source_stands_alone(
    store: Store,
) -> None:
    # Fails before this change: the second source was dropped with the repeated assertion.
    await people(store)
    first = await memory.remember(store, content="a payslip")
    second = await memory.remember(store, content="a rumour")
    [fact] = await graph.assert_facts(store, facts=[job("Acme", 2020)], source=first.id)
    assert await graph.assert_facts(store, facts=[job("Acme", 2021)], source=second.id) == []
    sources = await store.query(
        "SELECT VALUE out FROM fact_source WHERE in = $f", RecordId, f=RecordId("fact", fact.id)
    )
    assert sorted(str(s.key) for s in sources) == sorted([first.id, second.id])
    # The repeat is a part the fact holds (schema 036): distrusting the rumour leaves the
    # payslip's fact; distrusting the payslip leaves what the rumour said, from 2021.
    await provenance.invalidate(store, memory=second.id, reason="only a rumour")
    assert [f.id for f in await graph.facts(store, subject="Alice")] == [fact.id]
    await provenance.restore(store, memory=second.id)
    await provenance.invalidate(store, memory=first.id, reason="a forged payslip")
    [left] = await graph.facts(store, subject="Alice")
    assert (left.object, left.valid_from) == ("Acme", year(2021))
    await provenance.invalidate(store, memory=second.id, reason="only a rumour")
    assert await graph.facts(store, subject="Alice") == []
    await provenance.restore(store, memory=first.id)
    await provenance.restore(store, memory=second.id)
    assert [(f.object, f.valid_from) for f in await graph.facts(store, subject="Alice")] == [
        ("Acme", year(2020))
    ]


async def test_end_facts_closes_valid_time_and_keeps_the_open_version(store: Store) -> None:
    await people(store)
    [open_] = await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Acme", valid_from=year(2020))],
    )
    later = await graph.assert_facts(
        store, facts=[F(subject="Bob", predicate="works_at", object="Acme", valid_from=year(2025))]
    )
    before = await now(store)
    ended = await graph.end_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Acme"),
               F(subject="Bob", predicate="works_at", object="Acme"),
               F(subject="Bob", predicate="works_at", object="Globex")],
        at=year(2024),
    )  # fmt: skip
    # Alice's is closed at 2024; Bob's began after it, so it is gone (retracted) entirely, and
    # the answer says so: it is returned retracted, with no version in its place.
    assert [(f.subject, f.valid_until, f.supersedes, f.retracted_at is None) for f in ended] == [
        ("Bob", None, None, False),
        ("Alice", year(2024), open_.id, True),
    ]
    assert ended[0].id == later[0].id
    assert [f.subject for f in await graph.facts(store, valid_at=year(2022))] == ["Alice"]
    assert await graph.facts(store, valid_at=year(2026)) == []
    believed = await graph.facts(store, valid_at=year(2026), known_at=before)
    assert {f.id for f in believed} == {open_.id, later[0].id}
    alice = F(subject="Alice", predicate="works_at", object="Acme")
    assert await graph.end_facts(store, facts=[alice], at=year(2030)) == []


async def test_end_facts_takes_the_facts_reads_return(store: Store) -> None:
    """As retract_facts does: ending what ``facts`` answered needs no NewFact rebuilt."""
    await people(store)
    await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Acme", valid_from=year(2020))],
    )
    current = await graph.facts(store, subject="Alice")
    [ended] = await graph.end_facts(store, facts=current, at=year(2024))
    assert (ended.object, ended.valid_from, ended.valid_until) == ("Acme", year(2020), year(2024))
    assert await graph.facts(store, valid_at=year(2025)) == []
    with pytest.raises(ValidationError):
        await graph.end_facts(store, facts=current[0])  # type: ignore[arg-type]


async def test_predicates_are_declared_per_scope(store: Store) -> None:
    p = await graph.declare_predicate(store, name="works_at", single_valued=True, scope="a")
    assert p.single_valued and p.scope == "a"
    assert await graph.predicates(store) == []
    await graph.declare_predicate(store, name="works_at", single_valued=False, scope="a")
    assert [x.single_valued for x in await graph.predicates(store, scope="a")] == [False]


async def test_retract_by_id_and_absent_facts(store: Store) -> None:
    await people(store)
    [f] = await graph.assert_facts(store, facts=[F(subject="Alice", predicate="p", object="Bob")])
    assert (
        await graph.retract_facts(store, facts=[F(subject="Bob", predicate="p", object="Alice")])
        == []
    )
    [r] = await graph.retract_facts(store, facts=[f.id])
    assert r.id == f.id and r.retracted_at is not None
    assert await graph.retract_facts(store, facts=[f]) == []
    with pytest.raises(ImmutableError):
        await store.execute("UPDATE $f SET retracted_at = time::now();", f=RecordId("fact", f.id))


# -- observations ----------------------------------------------------------------------------


async def test_observations_keep_insertion_order_and_skip_what_is_there(store: Store) -> None:
    await people(store)
    added = await graph.add_observations(store, entity="Alice", contents=["b", "a", "b", "c"])
    assert added == ["b", "a", "c"]
    assert await graph.add_observations(store, entity="Alice", contents=["c", "d"]) == ["d"]
    await graph.delete_observations(store, entity="Alice", contents=["a", "zzz"])
    await graph.delete_observations(store, entity="Nobody", contents=["a"])
    assert await graph.add_observations(store, entity="Alice", contents=["a"]) == ["a"]
    view = await graph.entity(store, name="Alice")
    assert view is not None and view.contents == ["b", "c", "d", "a"]
    # The same words on another entity are another memory: each entity's are its own (#35 M5).
    await graph.add_observations(store, entity="Bob", contents=["b"])
    sub = await graph.open_nodes(store, names=["Alice", "Bob"])
    assert sub.contents("Bob") == ["b"]
    assert sub.observations["Bob"][0].memory != sub.observations["Alice"][0].memory
    assert sub.observations["Bob"][0].memory == graph.observation_memory_id("default", "Bob", "b")


async def test_an_unknown_entity_fails_the_whole_call(store: Store) -> None:
    await people(store)
    with pytest.raises(NotFoundError, match="Nobody"):
        await graph.add_observations_many(store, observations={"Alice": ["x"], "Nobody": ["y"]})
    view = await graph.entity(store, name="Alice")
    assert view is not None and view.contents == []
    out = await graph.add_observations_many(store, observations={"Alice": ["x"], "Bob": ["x", "y"]})
    assert out == {"Alice": ["x"], "Bob": ["x", "y"]}


async def test_observations_are_memories_and_hide_with_them(store: Store) -> None:
    await people(store)
    await graph.add_observations(store, entity="Alice", contents=["likes tea", "likes jazz"])
    hits = await memory.recall(store, text="tea", k=5)
    assert [h.memory.content for h in hits] == ["likes tea"]
    mid = graph.observation_memory_id("default", "Alice", "likes tea")
    await memory.invalidate(store, memory=mid, reason="wrong")
    view = await graph.entity(store, name="Alice")
    assert view is not None and view.contents == ["likes jazz"]
    hidden = await graph.entity(store, name="Alice", include_invalidated=True)
    assert hidden is not None and [o.invalidated for o in hidden.observations] == [True, False]
    await memory.restore(store, memory=mid)
    view = await graph.entity(store, name="Alice")
    assert view is not None and view.contents == ["likes tea", "likes jazz"]


# -- reads -----------------------------------------------------------------------------------


async def test_read_graph_and_open_nodes(store: Store) -> None:
    await people(store)
    await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Acme"),
               F(subject="Bob", predicate="works_at", object="Globex")],
    )  # fmt: skip
    await graph.add_observations(store, entity="Acme", contents=["a company"])
    whole = await graph.read_graph(store)
    # Created in one call: one transaction time, then in the call's order (schema 033).
    assert [e.name for e in whole.entities] == ["Alice", "Bob", "Acme", "Globex", "Initech"]
    assert len(whole.facts) == 2 and whole.contents("Acme") == ["a company"]
    some = await graph.open_nodes(store, names=["Acme", "Nobody"])
    assert [e.name for e in some.entities] == ["Acme"]
    assert [(f.subject, f.object) for f in some.facts] == [("Alice", "Acme")]
    assert (await graph.read_graph(store, scope="empty")).entities == []


# -- sources ---------------------------------------------------------------------------------


async def test_sources_are_recorded_as_provenance_edges(store: Store) -> None:
    await people(store)
    run = await runs.create_run(store, spec_digest="0" * 64, agent_name="a")
    await runs.append_events(store, run_id=run.id, events=[runs.NewEvent(kind="tool", payload={})])
    m = await memory.remember(store, content="Alice joined Acme")
    [f] = await graph.assert_facts(
        store,
        facts=[F(subject="Alice", predicate="works_at", object="Acme")],
        source=[provenance.RunTrace(run_id=run.id, seq=1), m.id,
                provenance.UserAnnotation(user="olga", note="checked")],
    )  # fmt: skip
    edges = await store.query(
        "SELECT VALUE out FROM fact_source WHERE in = $f;", RecordId, f=RecordId("fact", f.id)
    )
    assert {e.table for e in edges} == {"run_event", "memory", "annotation"}
    added = await graph.add_observations(
        store,
        entity="Alice",
        contents=["was hired"],
        source=provenance.RunTrace(run_id=run.id, seq=1),
    )
    assert added == ["was hired"]
    impact = await provenance.impact(store, source=provenance.RunTrace(run_id=run.id, seq=1))
    assert graph.observation_memory_id("default", "Alice", "was hired") in impact.memories
    with pytest.raises(NotFoundError):
        await graph.assert_facts(
            store,
            facts=[F(subject="Bob", predicate="works_at", object="Acme")],
            source=provenance.RunTrace(run_id=run.id, seq=99),
        )
    with pytest.raises(ValidationError):
        await graph.assert_facts(
            store, facts=[F(subject="Bob", predicate="p", object="Acme")], source="branch:main"
        )


async def test_a_fact_from_a_hidden_memory_is_recorded_hidden(store: Store) -> None:
    """A source memory hidden by a distrusted run passes that cause on to the facts it sources."""
    await people(store)
    run = await runs.create_run(store, spec_digest="0" * 64, agent_name="a")
    await runs.append_events(store, run_id=run.id, events=[runs.NewEvent(kind="tool", payload={})])
    trace = provenance.RunTrace(run_id=run.id, seq=1)
    await provenance.invalidate(store, source=trace, reason="tool lied")
    m = await memory.remember(store, content="Alice joined Acme", provenance=[trace])
    assert m.invalidated
    [f] = await graph.assert_facts(
        store, facts=[F(subject="Alice", predicate="works_at", object="Acme")], source=m.id
    )
    assert f.invalidated
    assert await graph.facts(store, entity="Alice") == []
    await provenance.restore(store, source=trace)
    assert [x.id for x in await graph.facts(store, entity="Alice")] == [f.id]


# -- bulk ------------------------------------------------------------------------------------


async def test_calls_larger_than_a_batch(store: Store) -> None:
    names = [f"n{i}" for i in range(2100)]
    made = await graph.create_entities(store, entities=[E(name=n) for n in names])
    assert [e.name for e in made] == names
    facts = [F(subject=names[i], predicate="next", object=names[i + 1]) for i in range(2099)]
    facts.append(facts[0])  # a repeat in another batch: recorded once
    got = await graph.assert_facts(store, facts=facts)
    assert [(f.subject, f.object) for f in got] == [(f.subject, f.object) for f in facts[:-1]]
    assert all(f.recorded_at == f.valid_from for f in got)
    assert len(await graph.facts(store)) == 2099
    # Some new, some there: only the new come back, with what the database holds.
    again = await graph.create_entities(store, entities=[E(name="n5"), E(name="late")])
    assert [e.name for e in again] == ["late"]
    more = await graph.assert_facts(
        store, facts=[facts[1], F(subject="late", predicate="next", object="n0")]
    )
    assert [(f.subject, f.object) for f in more] == [("late", "n0")]


async def test_a_missing_entity_in_a_later_batch_is_named(store: Store) -> None:
    await people(store)
    facts = [F(subject="Alice", predicate=f"p{i}", object="Bob") for i in range(1001)]
    facts.append(F(subject="Ghost", predicate="p", object="Bob"))
    with pytest.raises(NotFoundError, match="no entity Ghost in scope default"):
        await graph.assert_facts(store, facts=facts)
    assert await graph.fact_history(store) == []  # the first batch was not written either


async def test_entity_embeddings_belong_to_the_space(store: Store) -> None:
    from surreal_store import DimensionError, EmbeddingSpaceError

    with pytest.raises(EmbeddingSpaceError):
        await graph.create_entities(store, entities=[E(name="x", embedding=[1.0, 0.0])])
    await memory.declare_space(store, model="m", dimension=2)
    with pytest.raises(DimensionError):
        await graph.create_entities(store, entities=[E(name="x", embedding=[1.0, 0.0, 0.0])])
    [x] = await graph.create_entities(store, entities=[E(name="x", embedding=[1.0, 0.0])])
    assert x.embedding_model == "m"


async def test_facts_recorded_before_schema_027_stay_writable_and_supersede(
    tmp_path: Path,
) -> None:
    # 027 adds fact.took; a required field would refuse the next write of older facts.
    before = tmp_path / "schema"
    shutil.copytree(default_schema_dir(), before)
    for later in before.glob("*.surql"):
        if int(later.name[:3]) >= 27:
            later.unlink()
    url = f"surrealkv://{tmp_path / 'db'}"
    async with Store(url, schema_dir=before) as old:
        # The entities as the code of that schema wrote them (this code's create_entities
        # writes 033's position, which that schema does not have).
        await old.execute(
            "INSERT INTO entity $rows RETURN NONE;",
            rows=[
                {"id": RecordId("entity", graph.entity_id(graph.DEFAULT_SCOPE, n)),
                 "scope": graph.DEFAULT_SCOPE, "name": n, "name_key": n.casefold()}
                for n in PEOPLE
            ],
        )  # fmt: skip
        # (Declared after: this code's single-valued path calls 027's functions.)
        await graph.assert_facts(old, facts=[job("Acme", 2020), job("Initech", 2010, 2012)])
        await graph.declare_predicate(old, name="works_at", single_valued=True)
    async with Store(url) as s:
        [globex] = await graph.assert_facts(s, facts=[job("Globex", 2024)])
        assert await alice_jobs(s, valid_at=year(2022)) == [("Acme", 2020, 2024)]
        await graph.retract_facts(s, facts=[job("Initech", 2010, 2012)])
        await graph.retract_facts(s, facts=[globex])
        assert await alice_jobs(s, valid_at=year(2025)) == []


async def test_a_list_of_keys_is_asked_32_at_a_time_so_an_index_answers(store: Store) -> None:
    """An IN list past 32 values scans the whole table on the engine (docs/engine-notes.md,
    "IN past 32 values"), so the bulk write asks its keys 32 at a time (_surql.indexed_in); if
    an engine upgrade moves the threshold, this says so. A thousand keys, some current, some
    not, are answered right, and a retraction of 40 facts by their keys finds all 40."""
    from surreal_store._surql import INDEXED_IN_MAX, indexed_in
    from surreal_store.graph._models import fact_key

    at = "SELECT VALUE id FROM fact WHERE key IN $keys;"
    keys = [f"{i:064x}" for i in range(INDEXED_IN_MAX + 1)]
    fits = await store.query_required_single("EXPLAIN " + at, object, keys=keys[:-1])
    spills = await store.query_required_single("EXPLAIN " + at, object, keys=keys)
    assert "IndexScan" in str(fits) and "TableScan" not in str(fits)
    assert "TableScan" in str(spills)

    names = [f"n{i}" for i in range(41)]
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in names])
    facts = [graph.NewFact(subject="n0", predicate="knows", object=n) for n in names[1:]]
    await graph.assert_facts(store, facts=facts)
    current = {fact_key(graph.DEFAULT_SCOPE, "n0", "knows", n, None) for n in names[1:]}
    asked = sorted(current) + [f"{i:064x}" for i in range(960)]
    found = await store.query(
        "RETURN " + indexed_in("$keys", "SELECT VALUE key FROM fact WHERE key IN $part"),
        str,
        keys=asked,
    )
    assert set(found) == current and len(found) == 40
    assert len(await graph.retract_facts(store, facts=facts)) == 40
    assert await graph.facts(store, entity="n0") == []


async def test_the_engine_misses_in_on_a_composite_index_inside_an_event(store: Store) -> None:
    """docs/engine-notes.md, "IN on a composite index answers nothing inside an event": the
    schema's functions read a fact's sources by traversal because of it. If an engine upgrade
    fixes it, this says so (the traversal still answers right)."""
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in ("a", "b")])
    [fact] = await graph.assert_facts(
        store, facts=[graph.NewFact(subject="a", predicate="knows", object="b")],
        source=(await memory.remember(store, content="a note")).id,
    )  # fmt: skip
    got = await store.query_required_single(
        """
        DEFINE TABLE OVERWRITE probe_in SCHEMALESS;
        DEFINE EVENT OVERWRITE probe_in_event ON probe_in THEN {
            LET $list = [$after.fact];
            UPDATE $after.id SET inside = (SELECT VALUE out FROM fact_source WHERE in IN $list),
                traversed = (SELECT VALUE out FROM $after.fact->fact_source) RETURN NONE;
        };
        CREATE probe_in:1 SET fact = $fact RETURN NONE;
        LET $list = [$fact];
        RETURN {
            top: (SELECT VALUE out FROM fact_source WHERE in IN $list),
            event: (SELECT inside, traversed FROM ONLY probe_in:1),
        };
        """,
        dict,
        fact=RecordId("fact", fact.id),
    )
    await store.query("REMOVE TABLE probe_in;", object)
    assert len(got["top"]) == 1 and len(got["event"]["traversed"]) == 1
    assert got["event"]["inside"] == []  # the engine's miss


async def test_a_neighbourhood_of_many_observed_entities_reads_them_all(store: Store) -> None:
    """A walk reaching more than 32 entities with observations (or, known at a time, with
    kept versions) asks for their links and versions 32 entities at a time: each is found."""
    names = [f"spoke {i:02d}" for i in range(40)]
    await graph.create_entities(
        store,
        entities=[graph.NewEntity(name="hub")]
        + [graph.NewEntity(name=n, summary="first") for n in names],
    )
    await graph.assert_facts(
        store, facts=[graph.NewFact(subject="hub", predicate="links", object=n) for n in names]
    )
    for n in names:
        await graph.add_observations(store, entity=n, contents=[f"about {n}"])
    before = dt.datetime.now(dt.UTC)
    for n in names:
        await graph.update_entity(store, name=n, summary="second")
    now = await graph.neighbourhood(store, entity="hub", depth=1)
    assert {n: now.contents(n) for n in names} == {n: [f"about {n}"] for n in names}
    assert {e.summary for e in now.entities if e.name != "hub"} == {"second"}
    then = await graph.neighbourhood(store, entity="hub", depth=1, known_at=before)
    assert {e.name: e.summary for e in then.entities if e.name != "hub"} == dict.fromkeys(
        names, "first"
    )


async def test_a_tuple_is_an_array_on_every_surface(store: Store) -> None:
    """A tuple was refused as a fact's value ("arrays must be lists") while metadata,
    attributes, payloads and commit states took it as an array: now every surface takes it as
    an array, reads it back as a list, and a fact with (1, 2) is the fact with [1, 2]."""
    from surreal_store import commits

    await graph.create_entities(
        store, entities=[graph.NewEntity(name="a", attributes={"t": (1, (2, 3))})]
    )
    [fact] = await graph.assert_facts(
        store, facts=[graph.NewFact(subject="a", predicate="p", object="a", value=(1, 2))]
    )
    assert fact.value == [1, 2]
    again = graph.NewFact(subject="a", predicate="p", object="a", value=[1, 2])
    assert await graph.assert_facts(store, facts=[again]) == []  # the same fact
    view = await graph.entity(store, name="a")
    assert view is not None and view.entity.attributes == {"t": [1, [2, 3]]}
    m = await memory.remember(store, content="x", metadata={"t": (1, 2)})
    assert m.metadata == {"t": [1, 2]}
    c1 = await commits.commit(store, state={"t": (1, 2)}, message="m", author="a")
    c2 = await commits.commit(store, state={"t": [1, 2]}, message="m", author="a", branch="b")
    assert c1.state_hash == c2.state_hash
    with pytest.raises(ValidationError, match="key 1 is not a string"):
        await graph.assert_facts(
            store, facts=[graph.NewFact(subject="a", predicate="p", object="a", value={1: 2})]
        )
