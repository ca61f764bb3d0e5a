"""``provenance``: lineage and why() vs a hop-per-query walk; the invalidation cascade vs
updating memories one by one."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from surreal_store import RecordId, Store, memory, provenance, runs

from ._harness import Figure, Scale, interleaved, p50, register

SPEC = "b" * 64


@register("provenance")
async def run(scale: Scale) -> list[Figure]:
    """Lineage (depth 100) and why (20 memories x 10 deep) vs hop walks; cascade vs one by one."""
    figures: list[Figure] = []
    # surrealkv, the durable default: the mem:// engine's large transactions are quadratic.
    root = Path(tempfile.mkdtemp(prefix="bench-provenance-"))
    try:
        figures = await _all(scale, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


async def _all(scale: Scale, root: Path) -> list[Figure]:
    figures: list[Figure] = []
    async with Store(f"surrealkv://{root / 'graph'}") as store:
        await runs.create_run(store, spec_digest=SPEC, agent_name="bench", run_id="r")
        for i in range(3):
            await runs.append_event(store, run_id="r", kind="tool_called", payload={"i": i})
        figures += await _lineage(store, scale)
        figures += await _why(store, scale)
    async with Store(f"surrealkv://{root / 'cascade'}") as store:
        await runs.create_run(store, spec_digest=SPEC, agent_name="bench", run_id="r")
        await runs.append_event(store, run_id="r", kind="tool_called")
        figures += await _invalidate(store, scale)
    return figures


async def _chain(store: Store, depth: int, prefix: str, source: int) -> list[str]:
    ids = [
        (
            await memory.remember(
                store,
                content=f"{prefix} 0",
                provenance=[provenance.RunTrace(run_id="r", seq=source)],
            )
        ).id
    ]
    for i in range(1, depth):
        parent = provenance.MemoryDerivation(parent=ids[-1], how="summarise")
        ids.append((await memory.remember(store, content=f"{prefix} {i}", provenance=[parent])).id)
    return ids


# The seed's way: one query per memory for its fields and edges, then one per parent.
_HOP = (
    "SELECT id, scope, key, kind, content, invalidated_at, invalidated_reason, created_at, "
    "->derived_from.{out, how} AS derived, ->sourced_from.out AS sourced FROM ONLY $m;"
)


async def _hop_walk(store: Store, starts: list[RecordId]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    sources: dict[str, RecordId] = {}
    todo = list(starts)
    while todo:
        m = todo.pop()
        if str(m) in seen:
            continue
        row = await store.query_required_single(_HOP, dict, m=m)
        seen[str(m)] = row
        todo.extend(d["out"] for d in row["derived"])
        sources.update((str(s), s) for s in row["sourced"])
    for s in sources.values():  # the sources' own records, one query each
        await store.query_single("SELECT * FROM ONLY $s;", dict, s=s)
    return {"memories": seen, "sources": sources}


async def _lineage(store: Store, scale: Scale) -> list[Figure]:
    depth = 100
    ids = await _chain(store, depth, "lineage", 1)
    leaf = ids[-1]
    graph = await provenance.lineage(store, memory=leaf)
    walked = await _hop_walk(store, [RecordId("memory", leaf)])
    assert len(graph.of_kind("memory")) == len(walked["memories"]) == depth

    async def ours() -> object:
        return await provenance.lineage(store, memory=leaf)

    async def hops() -> object:
        return await _hop_walk(store, [RecordId("memory", leaf)])

    a, b = await interleaved(ours, hops, rounds=scale.pick(4, 8), calls=3, warmup=2)
    return [
        Figure("lineage_speedup_vs_hop_walk", p50(b) / p50(a), "x", target=(">=", 10)),
        Figure("lineage_p50_ms_depth100", p50(a) * 1e3, "ms"),
    ]


async def _why(store: Store, scale: Scale) -> list[Figure]:
    used = [
        (await _chain(store, 10, f"why {j}", 2 + j % 2))[-1] for j in range(20)
    ]  # 20 memories, each the end of a 10-deep chain
    d = await provenance.record_decision(
        store, task="bench", action="answer", confidence=0.5, used=used
    )

    async def ours() -> object:
        return await provenance.why(store, decision=d.id)

    async def hops() -> object:
        edges = await store.query(
            "SELECT out, rank, score FROM used WHERE in = $d ORDER BY rank;",
            dict,
            d=RecordId("decision", d.id),
        )
        return await _hop_walk(store, [e["out"] for e in edges])

    graph = await provenance.why(store, decision=d.id)
    assert len(graph.of_kind("memory")) == 200
    a, b = await interleaved(ours, hops, rounds=scale.pick(4, 8), calls=2, warmup=1)
    return [
        Figure("why_speedup_vs_hop_walk", p50(b) / p50(a), "x", target=(">=", 10)),
        Figure("why_p50_ms_20x10", p50(a) * 1e3, "ms"),
    ]


async def _invalidate(store: Store, scale: Scale) -> list[Figure]:
    """One run event; 100 memories sourced from it; each with children derived from it, up to
    ``total`` memories. The cascade vs one UPDATE query per memory (given the set: the
    baseline does not even pay for finding it)."""
    total = scale.pick(2_000, 10_000)
    roots = [memory.NewMemory(content=f"root {i}") for i in range(100)]
    root_ids = (await memory.remember_many(store, roots)).ids
    children = [memory.NewMemory(content=f"child {i}") for i in range(total - 100)]
    child_ids = (await memory.remember_many(store, children)).ids
    event = RecordId("run_event", ["r", 1])
    sourced = [
        {"id": RecordId("sourced_from", [r, str(event)]), "in": RecordId("memory", r), "out": event}
        for r in root_ids
    ]
    await store.execute("INSERT RELATION INTO sourced_from $rows RETURN NONE;", rows=sourced)
    derived = [
        {
            "id": RecordId("derived_from", [c, root_ids[i % 100]]),
            "in": RecordId("memory", c),
            "out": RecordId("memory", root_ids[i % 100]),
            "how": "extract",
        }
        for i, c in enumerate(child_ids)
    ]
    for i in range(0, len(derived), 1000):
        await store.execute(
            "INSERT RELATION INTO derived_from $rows RETURN NONE;", rows=derived[i : i + 1000]
        )
    t0 = time.perf_counter()
    receipt = await provenance.invalidate(store, source=provenance.RunTrace(run_id="r", seq=1),
                                          reason="bench")  # fmt: skip
    cascade_s = time.perf_counter() - t0
    assert len(receipt.memories) == total
    restored = await provenance.restore(store, source=provenance.RunTrace(run_id="r", seq=1))
    assert len(restored) == total
    t0 = time.perf_counter()
    # The same fields the cascade writes, the cause included (the schema requires one).
    for m in receipt.memories:
        await store.execute(
            "UPDATE $m SET invalidated_at = time::now(), invalidated_reason = 'bench', "
            "invalidated_causes = [$cause], embedding_stash = embedding, embedding = NONE "
            "WHERE invalidated_at = NONE RETURN NONE;",
            m=RecordId("memory", m),
            cause=event,
        )
    one_by_one_s = time.perf_counter() - t0
    return [
        Figure("invalidate_speedup_vs_one_by_one", one_by_one_s / cascade_s, "x"),
        Figure(f"invalidate_cascade_s_{total // 1000}k", cascade_s, "s"),
        Figure(f"invalidate_one_by_one_s_{total // 1000}k", one_by_one_s, "s"),
    ]
