"""The knowledge graph in the provenance layer (#35), on the real embedded engine: distrusting a
source hides exactly the facts derived from it (to depth 3 and beyond), in one transaction,
with the memory layer's causes; restoring brings them back; lineage, impact and why walk
through facts; a bundle carries the graph and its provenance."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from surreal_store import (
    Migrator,
    NotFoundError,
    RecordId,
    Store,
    ThrownError,
    ValidationError,
    bundles,
    graph,
    memory,
    provenance,
    runs,
)
from surreal_store.provenance import MemoryDerivation, RunTrace

pytestmark = pytest.mark.anyio


async def _run(s: Store, run_id: str, n: int) -> list[RunTrace]:
    await runs.create_run(s, spec_digest="a" * 64, agent_name="bot", run_id=run_id)
    for i in range(n):
        await runs.append_event(s, run_id=run_id, kind="tool_called", payload={"i": i})
    return [RunTrace(run_id=run_id, seq=i + 1) for i in range(n)]


def _fact(subject: str, predicate: str, obj: str) -> graph.NewFact:
    return graph.NewFact(subject=subject, predicate=predicate, object=obj)


async def _visible(s: Store) -> set[str]:
    return {f"{f.subject} {f.predicate} {f.object}" for f in await graph.facts(s)}


@dataclasses.dataclass
class World:
    bad: RunTrace
    good: RunTrace
    m: list[memory.Memory]
    clean: memory.Memory
    facts: dict[str, graph.Fact]


async def _world(s: Store) -> World:
    """Run r: event 1 is the bad one, event 2 a good one. Facts from event 1 directly (depth
    1), from a memory of it (2), from a memory derived from that (3), from one derived again
    (4); facts from event 2 and from a memory of it; an observation from event 1."""
    bad, good = await _run(s, "r", 2)
    await graph.create_entities(
        s, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme", "Bob", "Cy", "Tea")]
    )
    m1 = await memory.remember(s, content="ada joined acme", provenance=[bad])
    m2 = await memory.remember(
        s, content="summary: ada at acme", provenance=[MemoryDerivation(parent=m1.id, how="sum")]
    )
    m3 = await memory.remember(
        s, content="digest of the summary", provenance=[MemoryDerivation(parent=m2.id, how="d")]
    )
    clean = await memory.remember(s, content="bob likes tea", provenance=[good])
    facts: dict[str, graph.Fact] = {}
    for label, fact, source in (
        ("d1", _fact("Ada", "works_at", "Acme"), bad),
        ("d2", _fact("Ada", "knows", "Bob"), m1.id),
        ("d3", _fact("Bob", "knows", "Ada"), m2.id),
        ("d4", _fact("Cy", "knows", "Ada"), m3.id),
        ("g1", _fact("Bob", "likes", "Tea"), good),
        ("g2", _fact("Bob", "drinks", "Tea"), clean.id),
        ("both", _fact("Cy", "likes", "Tea"), [bad, good]),
    ):
        (facts[label],) = await graph.assert_facts(s, facts=[fact], source=source)
    await graph.add_observations(s, entity="Ada", contents=["seen at acme"], source=bad)
    return World(bad, good, [m1, m2, m3], clean, facts)


TAINTED = {"Ada works_at Acme", "Ada knows Bob", "Bob knows Ada", "Cy knows Ada", "Cy likes Tea"}
CLEAN = {"Bob likes Tea", "Bob drinks Tea"}


async def test_distrusting_a_run_hides_exactly_its_facts_to_any_depth_and_restore_brings_them_back(
    store: Store,
) -> None:
    w = await _world(store)
    facts = w.facts
    assert await _visible(store) == TAINTED | CLEAN
    receipt = await provenance.invalidate(store, source=w.bad, reason="tool lied", by="ops")
    tainted_ids = {facts[k].id for k in ("d1", "d2", "d3", "d4", "both")}
    assert set(receipt.facts) == tainted_ids
    assert await _visible(store) == CLEAN
    hidden = await graph.facts(store, include_invalidated=True)
    for f in hidden:
        if f.id in tainted_ids:
            assert f.invalidated and f.invalidated_causes == [w.bad.record]
    # Every read leaves them out; the observation of the bad event is hidden as a memory.
    view = await graph.entity(store, name="Ada")
    assert view is not None and view.facts == [] and view.contents == []
    assert {f.id for f in (await graph.read_graph(store)).facts} == {facts["g1"].id, facts["g2"].id}
    # impact names them before and after; the cause is recorded once, with its count.
    impact = await provenance.impact(store, source=w.bad)
    assert set(impact.facts) == tainted_ids
    distrust = await store.query_required_single(
        "SELECT VALUE facts FROM ONLY type::record('source_invalidation', [$s])",
        int,
        s=w.bad.record,
    )
    assert distrust == len(tainted_ids)
    await provenance.restore(store, source=w.bad)
    assert await _visible(store) == TAINTED | CLEAN
    assert all(not f.invalidated for f in await graph.facts(store, include_invalidated=True))


async def test_a_fact_with_two_distrusted_sources_stays_hidden_until_both_are_restored(
    store: Store,
) -> None:
    w = await _world(store)
    await provenance.invalidate(store, source=w.bad, reason="one")
    await provenance.invalidate(store, source=w.good, reason="two")
    assert await _visible(store) == set()
    await provenance.restore(store, source=w.bad)
    assert await _visible(store) == TAINTED - {"Cy likes Tea"}
    await provenance.restore(store, source=w.good)
    assert await _visible(store) == TAINTED | CLEAN


async def test_distrusting_a_memory_hides_the_facts_derived_from_it_and_below(store: Store) -> None:
    w = await _world(store)
    m1, m2, _ = w.m
    await provenance.invalidate(store, memory=m2.id, reason="bad summary")
    assert await _visible(store) == (TAINTED | CLEAN) - {"Bob knows Ada", "Cy knows Ada"}
    # memory.invalidate hides that one memory, not what derives from it (as for memories).
    await memory.invalidate(store, memory=m1.id, reason="just this one")
    assert await _visible(store) == (TAINTED | CLEAN) - {"Bob knows Ada", "Cy knows Ada"}
    await provenance.restore(store, memory=m2.id)
    assert await _visible(store) == TAINTED | CLEAN


async def test_facts_recorded_later_from_a_distrusted_source_or_hidden_memory_start_hidden(
    store: Store,
) -> None:
    w = await _world(store)
    await provenance.invalidate(store, source=w.bad, reason="bad")
    m2 = w.m[1]
    (late,) = await graph.assert_facts(store, facts=[_fact("Tea", "from", "Acme")], source=m2.id)
    (direct,) = await graph.assert_facts(
        store, facts=[_fact("Tea", "sold_by", "Acme")], source=w.bad
    )
    assert late.id not in {f.id for f in await graph.facts(store)}
    assert direct.id not in {f.id for f in await graph.facts(store)}
    await provenance.restore(store, source=w.bad)
    assert {late.id, direct.id} <= {f.id for f in await graph.facts(store)}


async def test_forgetting_a_hidden_memory_recomputes_the_facts_that_cited_it(store: Store) -> None:
    w = await _world(store)
    m1 = w.m[0]
    await provenance.invalidate(store, memory=m1.id, reason="bad")
    assert "Ada knows Bob" not in await _visible(store)
    # The fact cited m1 only: with m1 gone it cites nothing distrusted. m2's and m3's facts
    # held m1's cause through them; m2 and m3 lose it, and so do their facts.
    await memory.forget(store, memory=m1.id)
    assert {"Ada knows Bob", "Bob knows Ada", "Cy knows Ada"} <= await _visible(store)


async def test_the_cascade_through_facts_is_one_transaction(store: Store) -> None:
    w = await _world(store)
    await store.execute(
        "DEFINE EVENT refuse ON fact WHEN $event = 'UPDATE' AND $after.predicate = 'knows' "
        "AND $after.invalidated_at != NONE THEN { THROW 'no' };"
    )
    with pytest.raises(ThrownError):
        await provenance.invalidate(store, source=w.bad, reason="bad")
    assert await _visible(store) == TAINTED | CLEAN
    hidden = await store.query_required_single(
        "RETURN count(SELECT id FROM memory WHERE invalidated_at != NONE);", int
    )
    assert hidden == 0
    assert await store.query("SELECT * FROM source_invalidation;", dict) == []
    await store.execute("REMOVE EVENT refuse ON fact;")
    await provenance.invalidate(store, source=w.bad, reason="bad")
    assert await _visible(store) == CLEAN


async def test_lineage_of_a_fact_and_why_of_a_decision_that_used_it_reach_the_run(
    store: Store,
) -> None:
    w = await _world(store)
    facts = w.facts
    deep = facts["d4"]
    graph_of = await provenance.lineage(store, fact=deep)
    assert graph_of.roots == [str(w.bad.record)]
    assert f"fact:{deep.id}" in graph_of.nodes and graph_of.nodes[f"fact:{deep.id}"].kind == "fact"
    assert [e.kind for e in graph_of.edges if e.source == f"fact:{deep.id}"] == ["fact_source"]
    assert (await provenance.lineage(store, fact=f"fact:{deep.id}")).to_dict() == graph_of.to_dict()
    shallow = await provenance.lineage(store, fact=deep, max_depth=1)
    assert set(shallow.nodes) == {f"fact:{deep.id}", f"memory:{w.m[2].id}"}
    m1 = w.m[0]
    d = await provenance.record_decision(
        store, task="hire", action="call ada", confidence=0.7,
        used=[(deep, 0.9), facts["g1"].id, m1.id],
    )  # fmt: skip
    why = await provenance.why(store, decision=d.id)
    used = [e for e in why.edges if e.kind == "used"]
    assert [e.target for e in used] == [
        f"fact:{deep.id}",
        f"fact:{facts['g1'].id}",
        f"memory:{m1.id}",
    ]
    assert [e.data["rank"] for e in used] == [1, 2, 3] and used[0].data["score"] == 0.9
    assert set(why.roots) == {str(w.bad.record), str(w.good.record)}
    assert "fact" in why.to_svg()
    # The decision is in the impact of the bad run through the fact it used.
    assert d.id in (await provenance.impact(store, source=w.bad)).decisions
    assert d.id in (await provenance.impact(store, source=w.good)).decisions


async def test_record_decision_keeps_its_memory_behaviour_and_checks_facts(store: Store) -> None:
    w = await _world(store)
    facts = w.facts
    m1 = w.m[0]
    before = await provenance.record_decision(
        store, task="t", action="a", confidence=0.5, used=[(m1.id, 0.5)]
    )
    assert [e.target for e in (await provenance.why(store, decision=before.id)).edges
            if e.kind == "used"] == [f"memory:{m1.id}"]  # fmt: skip
    with pytest.raises(NotFoundError, match="fact"):
        await provenance.record_decision(
            store, task="t", action="a", confidence=0.5, used=["fact:" + "0" * 32]
        )
    with pytest.raises(ValidationError, match="twice"):
        await provenance.record_decision(
            store, task="t", action="a", confidence=0.5,
            used=[facts["d1"], f"fact:{facts['d1'].id}"],
        )  # fmt: skip
    with pytest.raises(ValidationError):
        await provenance.record_decision(
            store,
            task="t",
            action="a",
            confidence=0.5,
            used=[(facts["d1"], "high")],  # type: ignore[list-item]
        )
    with pytest.raises(ValidationError):
        await provenance.lineage(store, memory=m1.id, fact=facts["d1"])
    with pytest.raises(NotFoundError):
        await provenance.lineage(store, fact="fact:" + "1" * 32)
    # Nothing was written by the refused calls.
    assert await store.query_required_single("RETURN count(SELECT id FROM decision);", int) == 1


async def test_a_bundle_carries_the_graph_and_its_provenance(tmp_path: Path) -> None:
    a, b = tmp_path / "a.bundle", tmp_path / "b.bundle"
    async with Store(f"surrealkv://{tmp_path / 'source'}") as source:
        w = await _world(source)
        facts = w.facts
        await graph.declare_predicate(source, name="works_at", single_valued=True)
        await graph.assert_facts(source, facts=[_fact("Ada", "works_at", "Bob")], source=w.good)
        # The bad event repeats a good fact: a part the fact holds, reached via it.
        assert (
            await graph.assert_facts(source, facts=[_fact("Bob", "likes", "Tea")], source=w.bad)
            == []
        )
        await provenance.invalidate(source, source=w.bad, reason="bad")
        d = await provenance.record_decision(
            source, task="t", action="a", confidence=0.5, used=[facts["d3"]]
        )
        expect = {
            "graph": (await graph.read_graph(source)).model_dump(),
            "all": (await graph.read_graph(source, include_invalidated=True)).model_dump(),
            "history": [f.model_dump() for f in await graph.fact_history(source)],
            "lineage": (await provenance.lineage(source, fact=facts["d4"])).to_dict(),
            "why": (await provenance.why(source, decision=d.id)).to_dict(),
            "impact": (await provenance.impact(source, source=w.bad)).model_dump(),
        }
        first = await bundles.export_bundle(source, a)
    for table in ("entity", "fact", "fact_source", "observation", "predicate"):
        assert first["tables"][table]["records"] > 0, table
    assert first["tables"]["fact"]["relation"] is True
    async with Store(f"surrealkv://{tmp_path / 'copy'}") as copy:
        await bundles.import_bundle(copy, a)
        got = {
            "graph": (await graph.read_graph(copy)).model_dump(),
            "all": (await graph.read_graph(copy, include_invalidated=True)).model_dump(),
            "history": [f.model_dump() for f in await graph.fact_history(copy)],
            "lineage": (await provenance.lineage(copy, fact=facts["d4"])).to_dict(),
            "why": (await provenance.why(copy, decision=d.id)).to_dict(),
            "impact": (await provenance.impact(copy, source=w.bad)).model_dump(),
        }
        assert got == expect
        assert (await Migrator(copy).drift()).ok
        # The copy's cascade works as the original's did.
        await provenance.restore(copy, source=w.bad)
        assert await _visible(copy) >= TAINTED - {"Ada works_at Acme"}
        assert "Bob likes Tea" in await _visible(copy)
        # The part came with the bundle: distrusting the good event leaves what bad said.
        await provenance.invalidate(copy, source=w.good, reason="checking")
        assert "Bob likes Tea" in await _visible(copy)
        await provenance.restore(copy, source=w.good)
        second = await bundles.export_bundle(copy, b)
    for table in ("entity", "fact", "fact_source", "observation", "predicate"):
        assert (a / f"{table}.jsonl").read_bytes() != b"" and table in second["tables"]


async def test_an_edges_ends_never_move(store: Store) -> None:
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in "ABC"])
    (f,) = await graph.assert_facts(store, facts=[_fact("A", "p", "B")])
    c = RecordId("entity", graph.entity_id(graph.DEFAULT_SCOPE, "C"))
    await store.execute("UPDATE $f SET in = $c, out = $c;", f=RecordId("fact", f.id), c=c)
    (again,) = await graph.facts(store)
    assert (again.subject, again.object) == ("A", "B")


# -- supersession that distrust undoes (docs/graph.md, "Supersession") ---------------------


def _year(n: int) -> dt.datetime:
    return dt.datetime(n, 1, 1, tzinfo=dt.UTC)


async def _employers(
    s: Store, *, valid_at: dt.datetime, known_at: dt.datetime | None = None
) -> list[tuple[str, int, int | None]]:
    """Ada's employers (object, from, until in years), as of ``valid_at`` / ``known_at``."""
    found = await graph.facts(
        s, subject="Ada", predicate="works_at", valid_at=valid_at, known_at=known_at
    )
    return sorted(
        (f.object, f.valid_from.year, None if f.valid_until is None else f.valid_until.year)
        for f in found
    )


async def _job_world(s: Store) -> tuple[memory.Memory, memory.Memory]:
    """Ada and three employers, works_at single-valued; an HR record (trusted) and a document
    (to be distrusted) as sources."""
    await graph.create_entities(
        s, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme", "Globex", "Initech")]
    )
    await graph.declare_predicate(s, name="works_at", single_valued=True)
    hr = await memory.remember(s, content="HR record: Ada's employment")
    doc = await memory.remember(s, content="an uploaded document about Ada")
    return hr, doc


def _job(obj: str, start: int, end: int | None = None) -> graph.NewFact:
    return graph.NewFact(
        subject="Ada", predicate="works_at", object=obj, valid_from=_year(start),
        valid_until=None if end is None else _year(end),
    )  # fmt: skip


async def _now(s: Store) -> dt.datetime:
    return await s.query_required_single("RETURN time::now();", dt.datetime)


async def test_a_poisoned_document_supersedes_nothing_and_restoring_it_supersedes_then(
    store: Store,
) -> None:
    # Fails before schema 027: the hidden Globex fact retracted Acme (current view: nothing
    # after 2021), so one poisoned document erased Ada's employment history.
    hr, doc = await _job_world(store)
    [acme] = await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=hr.id)
    await provenance.invalidate(store, memory=doc.id, reason="poisoned upload")
    [globex] = await graph.assert_facts(store, facts=[_job("Globex", 2021)], source=doc.id)
    assert globex.invalidated  # hidden from the start
    after = await _now(store)
    for known_at in (None, after):
        for y in (2020, 2023):
            assert await _employers(store, valid_at=_year(y), known_at=known_at) == [
                ("Acme", 2020, None)
            ]
    # Acme is untouched: not retracted, not re-recorded.
    history = await graph.fact_history(store, subject="Ada")
    assert [(f.id, f.retracted_at) for f in history if f.object == "Acme"] == [(acme.id, None)]

    # Trusting it again is asserting it now: Globex from 2021, Acme closed at 2021.
    before_restore = await _now(store)
    await provenance.restore(store, memory=doc.id)
    assert await _employers(store, valid_at=_year(2023)) == [("Globex", 2021, None)]
    assert await _employers(store, valid_at=_year(2020)) == [("Acme", 2020, 2021)]
    history = await graph.fact_history(store, subject="Ada")
    old = next(f for f in history if f.id == acme.id)
    assert old.superseded_by == globex.id and old.retracted_at is not None
    assert old.retracted_at >= before_restore  # superseded when trusted, not when asserted
    # Distrusting it again undoes that: Acme comes back over what Globex took, joined with
    # its piece before 2021 (one current fact per key, schema 036).
    await provenance.invalidate(store, memory=doc.id, reason="poisoned after all")
    assert await _employers(store, valid_at=_year(2023)) == [("Acme", 2020, None)]
    assert await _employers(store, valid_at=_year(2020)) == [("Acme", 2020, None)]


async def test_a_depth_3_cascade_that_hides_a_superseder_brings_the_old_value_back(
    store: Store,
) -> None:
    # Fails before schema 027: Acme stayed closed at 2021 with Globex hidden (no employer).
    hr, _ = await _job_world(store)
    [bad] = await _run(store, "crawl", 1)
    m1 = await memory.remember(store, content="crawled: ada moved", provenance=[bad])
    m2 = await memory.remember(
        store, content="summary: ada moved", provenance=[MemoryDerivation(parent=m1.id, how="s")]
    )
    m3 = await memory.remember(
        store, content="digest: ada moved", provenance=[MemoryDerivation(parent=m2.id, how="d")]
    )
    [acme] = await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=hr.id)
    [globex] = await graph.assert_facts(store, facts=[_job("Globex", 2021)], source=m3.id)
    assert await _employers(store, valid_at=_year(2023)) == [("Globex", 2021, None)]
    receipt = await provenance.invalidate(store, source=bad, reason="the crawler lied")
    assert globex.id in receipt.facts
    # Acme's part comes back and joins its piece before 2021 (one fact per key, schema 036).
    assert await _employers(store, valid_at=_year(2023)) == [("Acme", 2020, None)]
    assert await _employers(store, valid_at=_year(2020)) == [("Acme", 2020, None)]
    [back] = await graph.facts(store, valid_at=_year(2023))
    history = {f.id: f for f in await graph.fact_history(store, subject="Ada")}
    chain, at = [], back
    while at.supersedes is not None and at.supersedes in history:
        chain.append(at.supersedes)
        at = history[at.supersedes]
    assert acme.id in chain  # it re-records the fact Globex took it from
    lineage = await provenance.lineage(store, fact=back.id)
    assert [n.label for n in lineage.of_kind("memory")] == [hr.content]  # its own source
    # Restoring the run: Globex supersedes again from 2021.
    await provenance.restore(store, source=bad)
    assert await _employers(store, valid_at=_year(2023)) == [("Globex", 2021, None)]
    assert await _employers(store, valid_at=_year(2020)) == [("Acme", 2020, 2021)]


async def test_hiding_a_piece_of_an_earlier_superseder_gives_back_only_that_piece(
    store: Store,
) -> None:
    hr, doc = await _job_world(store)
    await graph.assert_facts(store, facts=[_job("Acme", 2018)], source=hr.id)
    await graph.assert_facts(store, facts=[_job("Globex", 2020)], source=doc.id)
    await graph.assert_facts(store, facts=[_job("Initech", 2022)], source=hr.id)
    # Globex now stands as a piece, 2020-2022: Initech took the rest.
    assert await _employers(store, valid_at=_year(2021)) == [("Globex", 2020, 2022)]
    await provenance.invalidate(store, memory=doc.id, reason="bad")
    # What the piece held comes back (2020-2022); Initech keeps what it took from Globex.
    # (The part given back joins Acme's piece before 2020: one fact per key, schema 036.)
    assert await _employers(store, valid_at=_year(2019)) == [("Acme", 2018, 2022)]
    assert await _employers(store, valid_at=_year(2021)) == [("Acme", 2018, 2022)]
    assert await _employers(store, valid_at=_year(2023)) == [("Initech", 2022, None)]


async def test_a_retracted_superseder_gives_nothing_back_when_distrusted(store: Store) -> None:
    hr, doc = await _job_world(store)
    await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=hr.id)
    [globex] = await graph.assert_facts(store, facts=[_job("Globex", 2021)], source=doc.id)
    await graph.retract_facts(store, facts=[globex])
    assert await _employers(store, valid_at=_year(2023)) == []
    await provenance.invalidate(store, memory=doc.id, reason="bad")
    # A retracted fact asserts nothing: Acme stays closed at 2021 (the store unlearned Globex,
    # it did not learn that Acme went on).
    assert await _employers(store, valid_at=_year(2023)) == []
    assert await _employers(store, valid_at=_year(2020)) == [("Acme", 2020, 2021)]


async def test_facts_shown_together_supersede_in_the_order_they_were_asserted(
    store: Store,
) -> None:
    _, doc = await _job_world(store)
    await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=doc.id)
    await graph.assert_facts(store, facts=[_job("Globex", 2021)], source=doc.id)
    before = (
        await _employers(store, valid_at=_year(2023)),
        await _employers(store, valid_at=_year(2020)),
    )
    assert before == ([("Globex", 2021, None)], [("Acme", 2020, 2021)])
    await provenance.invalidate(store, memory=doc.id, reason="bad")
    assert await _employers(store, valid_at=_year(2023)) == []
    await provenance.restore(store, memory=doc.id)
    # Acme (asserted first, its version that came back included) then Globex: as before.
    after = (
        await _employers(store, valid_at=_year(2023)),
        await _employers(store, valid_at=_year(2020)),
    )
    assert after == before


async def test_a_poisoned_document_repeating_a_trusted_fact_changes_nothing(store: Store) -> None:
    """A distrusted source asserting what a trusted one says (the same key) neither joins the
    trusted fact (its source would hide it) nor merges with it over a wider interval, and a
    trusted assertion is not swallowed by a hidden fact of its key. (Before: Ada's Acme fact
    took the poisoned source and vanished; a poisoned 2010-2021 claim merged with Acme from
    2020 into one hidden fact from 2010, wiping 2022; a third, trusted assertion recorded
    nothing.)"""
    hr, doc = await _job_world(store)
    more = await memory.remember(store, content="payroll: Ada")
    await provenance.invalidate(store, memory=doc.id, reason="poisoned upload")
    await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=hr.id)
    await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=doc.id)
    await graph.assert_facts(store, facts=[_job("Acme", 2010, 2021)], source=doc.id)
    for y in (2020, 2022):
        assert await _employers(store, valid_at=_year(y)) == [("Acme", 2020, None)]
    assert await _employers(store, valid_at=_year(2015)) == []
    # A trusted repeat gains its source on the visible fact.
    assert await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=more.id) == []
    assert await _employers(store, valid_at=_year(2022)) == [("Acme", 2020, None)]
    # Trusting the document again shows its claims (joined while both were hidden) beside the
    # trusted fact: the same value, so no rival.
    await provenance.restore(store, memory=doc.id)
    assert await _employers(store, valid_at=_year(2015)) == [("Acme", 2010, None)]


async def test_a_trusted_assertion_is_not_swallowed_by_a_hidden_fact_of_its_key(
    store: Store,
) -> None:
    hr, doc = await _job_world(store)
    await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=doc.id)
    await provenance.invalidate(store, memory=doc.id, reason="poisoned upload")
    assert await _employers(store, valid_at=_year(2022)) == []
    [made] = await graph.assert_facts(store, facts=[_job("Acme", 2020)], source=hr.id)
    assert not made.invalidated
    assert await _employers(store, valid_at=_year(2022)) == [("Acme", 2020, None)]


# -- a source that only repeated or widened a trusted fact (#35) ----------------------------


def _y(n: int) -> dt.datetime:
    return dt.datetime(2000 + n, 1, 1, tzinfo=dt.UTC)


def _works(obj: str, start: int, end: int | None = None, who: str = "Ada") -> graph.NewFact:
    """``who`` works at ``obj`` from year 2000 + ``start`` (until 2000 + ``end``)."""
    return graph.NewFact(
        subject=who, predicate="works_at", object=obj, valid_from=_y(start),
        valid_until=None if end is None else _y(end),
    )  # fmt: skip


async def _spans(s: Store, entity: str) -> list[tuple[str, int, int | None]]:
    """The current visible facts of ``entity``, at any valid time, as (object, first year,
    end year or None)."""
    return sorted(
        (
            f.object,
            f.valid_from.year - 2000,
            None if f.valid_until is None else f.valid_until.year - 2000,
        )
        for f in await graph.fact_history(s, entity=entity)
        if f.retracted_at is None and f.invalidated_at is None
    )


async def test_distrusting_a_source_that_repeated_a_trusted_fact_leaves_the_fact(
    store: Store,
) -> None:
    """Before schema 036 the repeat gave its source to the trusted fact, and distrusting that
    source hid the fact whole: one poisoned copy of a true statement erased it."""
    a, b = await _run(store, "r", 2)
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme")])
    fact = graph.NewFact(subject="Ada", predicate="works_at", object="Acme", valid_from=_y(20))
    (first,) = await graph.assert_facts(store, facts=[fact], source=a)
    assert await graph.assert_facts(store, facts=[fact], source=b) == []  # a repeat: none new
    # The repeat is recorded as a part the fact holds, and b reaches the fact through it.
    assert first.id in {str(x) for x in (await provenance.impact(store, source=b)).facts}
    await provenance.invalidate(store, source=b, reason="poisoned")
    assert await _spans(store, "Ada") == [("Acme", 20, None)]
    await provenance.restore(store, source=b)
    await provenance.invalidate(store, source=a, reason="stale")
    assert await _spans(store, "Ada") == [("Acme", 20, None)]  # b said so too
    await provenance.invalidate(store, source=b, reason="poisoned")
    assert await _spans(store, "Ada") == []
    await provenance.restore(store, source=a)
    await provenance.restore(store, source=b)
    assert await _spans(store, "Ada") == [("Acme", 20, None)]
    assert len(await graph.facts(store, entity="Ada", include_invalidated=True)) == 1


async def test_distrusting_a_source_that_widened_a_trusted_fact_gives_back_what_each_said(
    store: Store,
) -> None:
    a, b = await _run(store, "r", 2)
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme")])

    await graph.assert_facts(store, facts=[_works("Acme", 20, 22)], source=a)
    await graph.assert_facts(store, facts=[_works("Acme", 21, 24)], source=b)
    assert await _spans(store, "Ada") == [("Acme", 20, 24)]  # one fact per key
    await provenance.invalidate(store, source=b, reason="poisoned")
    assert await _spans(store, "Ada") == [("Acme", 20, 22)]
    await provenance.restore(store, source=b)
    assert await _spans(store, "Ada") == [("Acme", 20, 24)]
    await provenance.invalidate(store, source=a, reason="stale")
    assert await _spans(store, "Ada") == [("Acme", 21, 24)]
    await provenance.restore(store, source=a)
    assert await _spans(store, "Ada") == [("Acme", 20, 24)]


async def test_a_widened_superseder_distrusted_gives_the_rival_back_only_where_it_widened(
    store: Store,
) -> None:
    """Single-valued: Globex (trusted) from 2018; Acme from 2020 (a) supersedes it; b widens
    Acme back to 2019. Distrusting b gives Globex back for 2019 only (joined with its piece
    before); distrusting a instead leaves b's Acme from 2019, which supersedes Globex there."""
    a, b = await _run(store, "r", 2)
    names = ("Ada", "Acme", "Globex")
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in names])
    await graph.declare_predicate(store, name="works_at", single_valued=True)

    await graph.assert_facts(store, facts=[_works("Globex", 18)])
    await graph.assert_facts(store, facts=[_works("Acme", 20)], source=a)
    await graph.assert_facts(store, facts=[_works("Acme", 19, 21)], source=b)
    assert await _spans(store, "Ada") == [("Acme", 19, None), ("Globex", 18, 19)]
    await provenance.invalidate(store, source=b, reason="poisoned")
    assert await _spans(store, "Ada") == [("Acme", 20, None), ("Globex", 18, 20)]
    await provenance.restore(store, source=b)
    await provenance.invalidate(store, source=a, reason="stale")
    visible = await _spans(store, "Ada")
    assert ("Acme", 19, 21) in visible and ("Acme", 20, None) not in visible
    assert all(not (o == "Globex" and s < 21 and (e is None or e > 19)) for o, s, e in visible)


async def test_a_merge_answers_the_same_made_while_a_source_is_trusted_or_distrusted(
    store: Store,
) -> None:
    """Two copies of one story (Ada and Bea): the kept entity works at Acme from 2020 (a);
    the absorbed one worked at Acme 2019-2021 and at Globex from 2022 (single-valued), from c
    for Ada, b for Bea. Ada's is merged with c trusted, Bea's with b distrusted then trusted
    again: both answer the same. Before, the trusted merge left two current Acme facts and
    Globex beside Acme."""
    a, b, c = await _run(store, "r", 3)
    people = ("Ada", "Ada L", "Bea", "Bea L")
    await graph.create_entities(
        store, entities=[graph.NewEntity(name=n) for n in (*people, "Acme", "Globex")]
    )
    await graph.declare_predicate(store, name="works_at", single_valued=True)

    for keep in ("Ada", "Bea"):
        await graph.assert_facts(store, facts=[_works("Acme", 20, who=keep)], source=a)
    for absorbed, source in (("Ada L", c), ("Bea L", b)):
        await graph.assert_facts(
            store,
            facts=[_works("Acme", 19, 21, who=absorbed), _works("Globex", 22, who=absorbed)],
            source=source,
        )
    await graph.merge(store, keep="Ada", absorb="Ada L", reason="same person")
    await provenance.invalidate(store, source=b, reason="checking")
    await graph.merge(store, keep="Bea", absorb="Bea L", reason="same person")
    await provenance.restore(store, source=b)
    expected = [("Acme", 19, 22), ("Globex", 22, None)]
    assert await _spans(store, "Ada") == expected
    assert await _spans(store, "Bea") == expected


async def test_a_fact_shown_again_that_joins_a_trusted_one_keeps_both_sources(store: Store) -> None:
    """b is distrusted when it says Acme 2021-2024, a says Acme 2020-2022; restoring b joins
    them. Distrusting a then leaves b's part only. It failed before schema 036: the join,
    made inside the restore's event, read the trusted fact's sources with `in IN $list`,
    which the engine answers with nothing there (docs/engine-notes.md), so the joined fact
    cited b alone and a's distrust left 2020-2021 showing."""
    a, b = await _run(store, "r", 2)
    await graph.create_entities(store, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme")])
    await provenance.invalidate(store, source=b, reason="checking")

    await graph.assert_facts(store, facts=[_works("Acme", 20, 22)], source=a)
    await graph.assert_facts(store, facts=[_works("Acme", 21, 24)], source=b)
    await provenance.restore(store, source=b)
    assert await _spans(store, "Ada") == [("Acme", 20, 24)]
    await provenance.invalidate(store, source=a, reason="stale")
    assert await _spans(store, "Ada") == [("Acme", 21, 24)]


async def test_a_source_reaches_a_fact_via_a_part_only_through_a_real_part(store: Store) -> None:
    """`fact_source.via` makes an edge lineage rather than a cause; the database accepts it
    only through a retracted fact of the same key that cites the source itself (schema 036),
    so no session turns a source's hold on a fact into lineage with a made-up part."""
    a, b = await _run(store, "r", 2)
    await graph.create_entities(
        store, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme", "Bob")]
    )
    (fact,) = await graph.assert_facts(
        store, facts=[graph.NewFact(subject="Ada", predicate="works_at", object="Acme")], source=a
    )
    (other,) = await graph.assert_facts(
        store, facts=[graph.NewFact(subject="Bob", predicate="works_at", object="Acme")], source=b
    )
    plant = """
        INSERT RELATION INTO fact_source {
            id: type::record('fact_source', [record::id($fact), <string>$source]),
            in: $fact, out: $source, via: $via,
        } RETURN NONE;
    """
    for via in (RecordId("fact", fact.id), RecordId("fact", other.id)):
        with pytest.raises(ThrownError, match="via a retracted part"):
            await store.query(
                plant, object, fact=RecordId("fact", fact.id), source=b.record, via=via
            )
    # Distrusting b still leaves Ada's fact alone, and a's distrust hides it.
    await provenance.invalidate(store, source=b, reason="x")
    assert await _spans(store, "Ada") != []
    await provenance.invalidate(store, source=a, reason="x")
    assert await _spans(store, "Ada") == []


@pytest.mark.parametrize("how", ["retract by key", "retract by id", "end"])
async def test_what_was_retracted_or_ended_does_not_come_back_when_its_superseder_is_hidden(
    store: Store, how: str
) -> None:
    """Acme from 2000 (trusted) is superseded from 2005 by Globex from a source; Acme is then
    retracted (or ended at 2003), and the source distrusted. Before, Globex gave back the part
    of Acme it held: Acme came back from 2005, though the store had unlearned it (the same
    through MCP delete_relations)."""
    s, _ = await _run(store, "r", 2)
    await graph.create_entities(
        store, entities=[graph.NewEntity(name=n) for n in ("Ada", "Acme", "Globex")]
    )
    await graph.declare_predicate(store, name="works_at", single_valued=True)

    await graph.assert_facts(store, facts=[_works("Acme", 0)])
    await graph.assert_facts(store, facts=[_works("Globex", 5)], source=s)
    acme = graph.NewFact(subject="Ada", predicate="works_at", object="Acme")
    if how == "retract by key":
        await graph.retract_facts(store, facts=[acme])
    elif how == "retract by id":
        [piece] = await graph.facts(store, entity="Ada", valid_at=_y(1))
        await graph.retract_facts(store, facts=[piece.id])
    else:
        await graph.end_facts(store, facts=[acme], at=_y(3))
    await provenance.invalidate(store, source=s, reason="poisoned")
    assert await _spans(store, "Ada") == ([] if how != "end" else [("Acme", 0, 3)])
    await provenance.restore(store, source=s)
    expected = [("Globex", 5, None)] + ([] if how != "end" else [("Acme", 0, 3)])
    assert await _spans(store, "Ada") == sorted(expected)


async def test_a_merge_of_a_fact_the_kept_entity_holds_keeps_it_as_a_part(store: Store) -> None:
    """Ada likes Acme (from s) and likes Globex (from t) over the same valid time; Globex is
    merged into Acme. Before, the moved fact was taken for the held one (not recorded): while
    s was distrusted the trusted moved fact was lost, and with both trusted, distrusting s hid
    what t said too. Now the moved fact is a part of the held one, or stands alone."""
    s, t = await _run(store, "r", 2)
    names = ("Ada", "Acme", "Globex")
    for hidden_first in (True, False):
        scope = f"merge-{hidden_first}".lower()
        await graph.create_entities(
            store, entities=[graph.NewEntity(name=n) for n in names], scope=scope
        )
        for obj, source in (("Acme", s), ("Globex", t)):
            await graph.assert_facts(
                store,
                facts=[
                    graph.NewFact(subject="Ada", predicate="likes", object=obj, valid_from=_y(1))
                ],
                source=source,
                scope=scope,
            )
        if hidden_first:
            await provenance.invalidate(store, source=s, reason="checking")
        receipt = await graph.merge(store, keep="Acme", absorb="Globex", reason="same", scope=scope)
        assert [m.recorded for m in receipt.facts] == [hidden_first]
        if not hidden_first:
            await provenance.invalidate(store, source=s, reason="checking")
        visible = [
            (f.object, f.valid_from.year)
            for f in await graph.fact_history(store, entity="Ada", scope=scope)
            if f.retracted_at is None and f.invalidated_at is None
        ]
        assert visible == [("Acme", 2001)], hidden_first
        await provenance.restore(store, source=s)
        assert [f.object for f in await graph.facts(store, entity="Ada", scope=scope)] == ["Acme"]


async def test_a_fact_that_filled_in_history_comes_back_whole_when_the_rival_is_distrusted(
    store: Store,
) -> None:
    """Initech from 2003 (from s), then Globex from 2002 (trusted, open): Globex fills in
    history, ending at 2003. Distrusting s leaves Globex open, as if s had never said it;
    restoring s ends it at 2003 again. Before, Globex stayed ended at 2003: a poisoned
    document cut a trusted value short."""
    s, _ = await _run(store, "r", 2)
    await graph.create_entities(
        store, entities=[graph.NewEntity(name=n) for n in ("Ada", "Globex", "Initech")]
    )
    await graph.declare_predicate(store, name="works_at", single_valued=True)

    await graph.assert_facts(store, facts=[_works("Initech", 3)], source=s)
    await graph.assert_facts(store, facts=[_works("Globex", 2)])
    assert await _spans(store, "Ada") == [("Globex", 2, 3), ("Initech", 3, None)]
    await provenance.invalidate(store, source=s, reason="poisoned")
    assert await _spans(store, "Ada") == [("Globex", 2, None)]
    await provenance.restore(store, source=s)
    assert await _spans(store, "Ada") == [("Globex", 2, 3), ("Initech", 3, None)]
