"""Decisions and the provenance graph on the real embedded engine: lineage, impact, the
invalidation cascade and why()."""

from __future__ import annotations

from pathlib import Path

import pytest

from surreal_store import (
    AlreadyExistsError,
    ConstraintError,
    NotFoundError,
    Store,
    ThrownError,
    ValidationError,
    commits,
    memory,
    provenance,
    runs,
)
from surreal_store.provenance import MemoryDerivation, RunTrace, StateSnapshot, UserAnnotation

pytestmark = pytest.mark.anyio

SPEC = "a" * 64


async def run_with_events(s: Store, run_id: str, n: int) -> list[RunTrace]:
    await runs.create_run(s, spec_digest=SPEC, agent_name="bot", run_id=run_id)
    for i in range(n):
        await runs.append_event(s, run_id=run_id, kind="tool_called", payload={"i": i})
    return [RunTrace(run_id=run_id, seq=i + 1) for i in range(n)]


async def chain(s: Store, root: RunTrace, depth: int, prefix: str = "m") -> list[memory.Memory]:
    """``depth`` memories, each derived from the previous; the first is sourced from ``root``."""
    out = [await memory.remember(s, content=f"{prefix}0", provenance=[root])]
    for i in range(1, depth):
        parent = MemoryDerivation(parent=out[-1].id, how="summarise")
        out.append(await memory.remember(s, content=f"{prefix}{i}", provenance=[parent]))
    return out


async def count(s: Store, table: str) -> int:
    return await s.query_required_single(f"RETURN count(SELECT id FROM {table});", int)


async def test_hundred_deep_chain_lineage_and_impact(store: Store) -> None:
    (event,) = await run_with_events(store, "r1", 1)
    mems = await chain(store, event, 100)
    graph = await provenance.lineage(store, memory=mems[-1].id)
    assert len(graph.of_kind("memory")) == 100
    assert graph.roots == [str(event.record)]
    assert graph.nodes[str(event.record)].kind == "run_event"
    assert len([e for e in graph.edges if e.kind == "derived_from"]) == 99
    shallow = await provenance.lineage(store, memory=mems[-1].id, max_depth=3)
    assert len(shallow.of_kind("memory")) == 4
    hit = await provenance.impact(store, source=event)
    assert sorted(hit.memories) == sorted(m.id for m in mems)
    mid = await provenance.impact(store, memory=mems[50].id)
    assert sorted(mid.memories) == sorted(m.id for m in mems[50:])


async def test_chains_deeper_than_one_page(store: Store) -> None:
    (event,) = await run_with_events(store, "deep", 1)
    mems = await chain(store, event, 300)
    graph = await provenance.lineage(store, memory=mems[-1].id)
    assert len(graph.of_kind("memory")) == 300 and graph.roots == [str(event.record)]
    hit = await provenance.impact(store, source=event)
    assert len(hit.memories) == 300


async def test_diamonds_appear_once(store: Store) -> None:
    (event,) = await run_with_events(store, "r", 1)
    root = await memory.remember(store, content="root", provenance=[event])
    left = await memory.remember(
        store, content="left", provenance=[MemoryDerivation(parent=root.id, how="extract")]
    )
    right = await memory.remember(
        store, content="right", provenance=[MemoryDerivation(parent=root.id, how="extract")]
    )
    top = await memory.remember(
        store,
        content="top",
        provenance=[
            MemoryDerivation(parent=left.id, how="merge"),
            MemoryDerivation(parent=right.id, how="merge"),
        ],
    )
    graph = await provenance.lineage(store, memory=top.id)
    assert len(graph.of_kind("memory")) == 4
    assert len(graph.edges) == 5  # 4 derivations and 1 source
    assert graph.roots == [str(event.record)]
    hit = await provenance.impact(store, memory=root.id)
    assert sorted(hit.memories) == sorted([root.id, left.id, right.id, top.id])
    # Attaching the same fact again changes nothing.
    again = {"kind": "memory_derivation", "parent": left.id, "how": "merge"}
    await provenance.attach(store, memory=top.id, sources=[again])
    assert await count(store, "derived_from") == 4


async def test_lineage_depth_limit_and_unsourced_roots(store: Store) -> None:
    # bare (no provenance) <- mid <- top, and top also cites a run event.
    (event,) = await run_with_events(store, "r", 1)
    bare = await memory.remember(store, content="bare")
    mid = await memory.remember(
        store, content="mid", provenance=[MemoryDerivation(parent=bare.id, how="extract")]
    )
    top = await memory.remember(
        store,
        content="top",
        provenance=[MemoryDerivation(parent=mid.id, how="summarise"), event],
    )
    whole = await provenance.lineage(store, memory=top.id)
    assert sorted(whole.roots) == sorted([str(event.record), f"memory:{bare.id}"])
    assert len(whole.edges) == 3
    # One level: top, its parent and its source; no edge leads to a node outside the graph, and
    # the parent (not walked further) is no root.
    one = await provenance.lineage(store, memory=top.id, max_depth=1)
    assert set(one.nodes) == {f"memory:{top.id}", f"memory:{mid.id}", str(event.record)}
    assert all(e.source in one.nodes and e.target in one.nodes for e in one.edges)
    assert one.roots == [str(event.record)]
    zero = await provenance.lineage(store, memory=top.id, max_depth=0)
    assert set(zero.nodes) == {f"memory:{top.id}"} and zero.edges == [] and zero.roots == []


async def test_all_four_source_kinds(store: Store) -> None:
    (event,) = await run_with_events(store, "r", 1)
    c = await commits.commit(store, state={"x": 1}, message="state", author="t", branch="main")
    base = await memory.remember(store, content="base")
    m = await memory.remember(
        store,
        content="fact",
        provenance=[
            event,
            StateSnapshot(commit=c.id),
            UserAnnotation(user="alice", note="I told it so"),
            MemoryDerivation(parent=base.id, how="extract"),
        ],
    )
    graph = await provenance.lineage(store, memory=m.id)
    kinds = sorted(n.kind for n in graph.nodes.values())
    assert kinds == ["annotation", "memory", "memory", "run_event", "snapshot"]
    assert len(graph.roots) == 4  # three sources and the unsourced base memory
    as_dict = graph.to_dict()
    assert {n["kind"] for n in as_dict["nodes"]} == set(kinds)


async def test_bad_provenance_writes_nothing(store: Store) -> None:
    with pytest.raises(ValidationError, match="invalid provenance"):
        await memory.remember(store, content="x", provenance=[{"kind": "gossip", "who": "bob"}])
    with pytest.raises(NotFoundError, match="run_event"):
        await memory.remember(store, content="x", provenance=[RunTrace(run_id="nope", seq=1)])
    with pytest.raises(NotFoundError, match="memory"):
        await memory.remember(
            store, content="x", provenance=[MemoryDerivation(parent="ab" * 32, how="merge")]
        )
    assert await count(store, "memory") == 0
    assert await count(store, "sourced_from") == 0


async def test_invalidating_a_run_event_hides_its_descendants_only(store: Store) -> None:
    bad, good = await run_with_events(store, "r", 2)
    tainted = await chain(store, bad, 5, prefix="tainted tea ")
    clean = await chain(store, good, 3, prefix="clean tea ")
    mixed = await memory.remember(
        store,
        content="mixed tea",
        provenance=[
            MemoryDerivation(parent=tainted[2].id, how="merge"),
            MemoryDerivation(parent=clean[1].id, how="merge"),
        ],
    )
    receipt = await provenance.invalidate(store, source=bad, reason="tool lied", by="ops")
    assert sorted(receipt.memories) == sorted([m.id for m in tainted] + [mixed.id])
    hits = await memory.recall(store, text="tea", k=50)
    assert sorted(h.memory.content for h in hits) == sorted(m.content for m in clean)
    got = await memory.get(store, memory=mixed.id)
    assert got.invalidated and got.invalidated_reason == "tool lied"
    # Restoring is explicit, and undoes exactly this cascade.
    restored = await provenance.restore(store, source=bad)
    assert sorted(restored) == sorted(receipt.memories)
    assert len(await memory.recall(store, text="tea", k=50)) == 9


async def test_the_cascade_is_one_transaction(store: Store) -> None:
    (event,) = await run_with_events(store, "r", 1)
    mems = await chain(store, event, 20)
    # A guard that refuses to invalidate one memory deep in the chain: the whole cascade fails.
    await store.execute(
        "DEFINE EVENT refuse ON memory WHEN $event = 'UPDATE' AND $after.content = 'm17' "
        "AND $after.invalidated_at != NONE THEN { THROW 'no' };"
    )
    with pytest.raises(ThrownError):
        await provenance.invalidate(store, source=event, reason="bad")
    assert (
        await store.query_required_single(
            "RETURN count(SELECT id FROM memory WHERE invalidated_at != NONE);", int
        )
        == 0
    )
    assert await count(store, "source_invalidation") == 0
    await store.execute("REMOVE EVENT refuse ON memory;")
    receipt = await provenance.invalidate(store, source=event, reason="bad")
    assert len(receipt.memories) == len(mems)


async def test_decisions_why_and_outcomes(store: Store) -> None:
    (event,) = await run_with_events(store, "r", 1)
    used = await chain(store, event, 3, prefix="used ")
    other = await memory.remember(store, content="not used")
    c = await commits.commit(store, state={"s": 1}, message="m", author="t", branch="main")
    d = await provenance.record_decision(
        store, task="reply", action="answer", confidence=0.75, rationale="it fits",
        alternatives=["ask", "wait"], used=[(used[2].id, 0.9), used[0].id], branch="main",
    )  # fmt: skip
    assert d.commit == c.id and d.outcome is None
    graph = await provenance.why(store, decision=d.id)
    used_edges = [e for e in graph.edges if e.kind == "used"]
    assert [e.target for e in used_edges] == [f"memory:{used[2].id}", f"memory:{used[0].id}"]
    assert [e.data["rank"] for e in used_edges] == [1, 2]
    assert f"memory:{other.id}" not in graph.nodes
    assert graph.roots == [str(event.record)]
    # Outcomes: once.
    done = await provenance.record_outcome(store, decision=d.id, outcome={"ok": 1}, success=True)
    assert done.success is True and done.outcome_at is not None
    with pytest.raises(AlreadyExistsError):
        await provenance.record_outcome(store, decision=d.id, outcome={"ok": 2}, success=False)
    assert (await provenance.get_decision(store, decision=d.id)).outcome == {"ok": 1}
    d2 = await provenance.record_decision(store, task="reply", action="ask", confidence=0.2)
    await provenance.record_outcome(store, decision=d2.id, outcome={}, success=False)
    await provenance.record_decision(store, task="plan", action="ask", confidence=0.5)
    assert [x.id for x in await provenance.decisions_for_task(store, task="reply")] == [
        d2.id, d.id,
    ]  # fmt: skip
    assert [x.id for x in await provenance.decisions_for_commit(store, commit=c.id)] == [d.id]
    by_action = {r.key: r for r in await provenance.success_rates(store, by="action")}
    assert by_action["answer"].rate == 1.0 and by_action["ask"].rate == 0.0
    assert by_action["ask"].decisions == 2 and by_action["ask"].with_outcome == 1
    by_task = {r.key: r for r in await provenance.success_rates(store, by="task")}
    assert by_task["reply"].rate == 0.5 and by_task["plan"].rate is None
    # The decisions that used a memory are part of its impact.
    assert (await provenance.impact(store, source=event)).decisions == [d.id]


async def test_bad_decisions_write_nothing(store: Store) -> None:
    m = await memory.remember(store, content="m")
    for confidence in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValidationError):
            await provenance.record_decision(store, task="t", action="a", confidence=confidence)
    with pytest.raises(NotFoundError):
        await provenance.record_decision(
            store, task="t", action="a", confidence=0.5, used=[m.id, "cd" * 32]
        )
    with pytest.raises(ValidationError):
        await provenance.record_decision(store, task="", action="a", confidence=0.5)
    # The database refuses it too.
    with pytest.raises(ConstraintError):
        await store.execute(
            "CREATE decision CONTENT { task: 't', action: 'a', rationale: '', confidence: 2.0 }"
        )
    assert await count(store, "decision") == 0 and await count(store, "used") == 0
    with pytest.raises(NotFoundError):
        await provenance.record_outcome(store, decision="nope", outcome={}, success=True)


async def test_graph_converts_to_networkx(store: Store) -> None:
    nx = pytest.importorskip("networkx")
    (event,) = await run_with_events(store, "r", 1)
    mems = await chain(store, event, 3)
    g = (await provenance.lineage(store, memory=mems[-1].id)).to_networkx()
    assert isinstance(g, nx.MultiDiGraph) and g.number_of_nodes() == 4
    assert g.nodes[str(event.record)]["kind"] == "run_event"
    assert g.nodes[f"memory:{mems[0].id}"]["memory_kind"] == "note"
    assert nx.has_path(g, f"memory:{mems[-1].id}", str(event.record))


async def test_results_as_frames_and_svg(store: Store) -> None:
    pytest.importorskip("pandas")
    from surreal_store import to_pandas

    (event,) = await run_with_events(store, "r", 1)
    mems = await chain(store, event, 3)
    graph = await provenance.lineage(store, memory=mems[-1].id)
    nodes, edges = graph.to_pandas()
    assert len(nodes) == 4 and set(edges["kind"]) == {"derived_from", "sourced_from"}
    assert nodes.set_index("id").loc[str(event.record), "root"]
    svg = graph._repr_html_()
    assert svg.startswith("<svg") and svg.count("<circle") == 4
    frame = to_pandas(await memory.recall(store, text="m1", mode="fulltext"))
    assert "memory_content" in frame.columns and frame.loc[0, "memory_content"] == "m1"


async def test_one_id_form_everywhere_an_id_is_taken(store: Store) -> None:
    """``source=`` takes a memory as every ``memory.*`` call takes it (bare, ``memory:``, a
    RecordId) and every id the library hands out: graph roots and node ids, a receipt's
    cause (which ``restore`` then takes back), ``RUN:SEQ``."""
    from surreal_store import RecordId

    (event,) = await run_with_events(store, "r1", 1)
    m, child = await chain(store, event, 2)
    graph = await provenance.lineage(store, memory=child.id)
    assert graph.roots == [str(event.record)] == ["run_event:['r1', 1]"]
    node = next(n.id for n in graph.of_kind("memory") if n.id.endswith(m.id))
    forms: list[object] = [
        m.id, f"memory:{m.id}", RecordId("memory", m.id), node, graph.roots[0], "r1:1", event,
    ]  # fmt: skip
    for form in forms:
        receipt = await provenance.invalidate(
            store,
            source=form,  # type: ignore[arg-type]
            reason="checking ids",
        )
        assert set(receipt.memories) == {m.id, child.id}, form
        impact = await provenance.impact(store, source=receipt.cause)
        assert set(impact.memories) == {m.id, child.id}, form
        assert set(await provenance.restore(store, source=receipt.cause)) == {m.id, child.id}
        assert await memory.recall(store, text="m0") != []
    # The same forms as memory= too, and in memory.* calls.
    for form in (m.id, f"memory:{m.id}"):
        assert (await memory.get(store, memory=form)).id == m.id
        assert set((await provenance.impact(store, memory=form)).memories) == {m.id, child.id}
    for bad in ("run_event:[1, 2", "run_event:[True]", "nosuch:thing", "decision:abc"):
        with pytest.raises(ValidationError):
            await provenance.impact(store, source=bad)


async def test_a_large_graph_is_drawn_readably_and_collapses(store: Store, tmp_path: Path) -> None:
    """A decision that used 12 summaries of 5 memories each, from 6 run events (two summaries
    an event), half of them distrusted: the picture has a legend, boxes apart, whole words,
    no crossings between neighbouring columns (an order without any exists, and is found);
    ``collapse`` draws fewer nodes and keeps the edges' ends."""
    from _pictures import check_readable, crossings, render_png

    events = await run_with_events(store, "big", 6)
    summaries = []
    for s in range(12):
        facts = [
            await memory.remember(
                store,
                content=f"fact {f} of summary {s}: a rather long sentence about hotels in city "
                f"number {s} that has to wrap onto several lines in its box",
                provenance=[events[(s * 7) % 12 // 2]],
            )
            for f in range(5)
        ]
        derived = [MemoryDerivation(parent=m.id, how="summarise") for m in facts]
        summaries.append(
            await memory.remember(store, content=f"summary {s}", kind="summary", provenance=derived)
        )
    d = await provenance.record_decision(
        store, task="t", action="a", confidence=0.5, used=[m.id for m in summaries]
    )
    for e in events[:3]:
        await provenance.invalidate(store, source=e, reason="distrusted")
    why = await provenance.why(store, decision=d.id)
    assert len(why.nodes) == 1 + 12 + 60 + 6
    svg = why.to_svg()
    check_readable(svg)
    assert crossings(svg) == 0
    assert "79 nodes: .collapse(kind, hidden=True) draws fewer" in svg
    render_png(svg, "large_why", tmp_path)
    fewer = why.collapse(hidden=True)
    hidden = [n for n in fewer.nodes.values() if "members" in n.data]
    assert {n.label for n in hidden} >= {"30 hidden memories"}
    assert sum(n.data["count"] for n in hidden) == sum(
        1 for n in why.nodes.values() if n.data.get("invalidated_at")
    )
    assert all(e.source in fewer.nodes and e.target in fewer.nodes for e in fewer.edges)
    check_readable(fewer.to_svg())
    render_png(fewer.to_svg(), "large_why_collapsed", tmp_path)
    least = why.collapse("memory", "run_event")
    assert sorted(n.label for n in least.nodes.values()) == sorted(
        [why.nodes[f"decision:{d.id}"].label, "12 memories", "60 memories", "6 run events"]
    )
    assert least.roots == ["group:run_event:3"]
    with pytest.raises(ValidationError, match="unknown node kind"):
        why.collapse("nodes")  # type: ignore[arg-type]
