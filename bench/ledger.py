"""``ledger``: append throughput of the run ledger against the raw engine and SQLite."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import surrealdb

from surreal_store import Store, runs

from ._harness import Figure, Scale, interleaved, p50, register

SPEC = "5" * 64
_RAW_INSERT = "INSERT INTO run_event $rows RETURN NONE;"
_RAW_CREATE = "CREATE $id CONTENT $row;"
_NS, _DB = "bench", "ledger"


def _payload(i: int) -> dict[str, Any]:
    return {"node": f"n{i % 17}", "tool": "search", "tokens": i % 500, "ok": True}


@register("ledger")
async def run(scale: Scale) -> list[Figure]:
    """Batched and single appends vs the raw engine; vs sqlite3 (WAL); rate at 1M vs 1k."""
    root = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    figures: list[Figure] = []
    try:
        # Parts (``--only``): ``vs_raw`` (with the SQLite reference), ``flatness``.
        if scale.wants("vs_raw"):
            figures = await _vs_raw(scale, root)
            figures += _vs_sqlite(scale, root, ours_per_s=figures[1].value)
        if scale.wants("flatness"):
            figures += await _flatness(scale, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


async def _vs_raw(scale: Scale, root: Path) -> list[Figure]:
    # Embedded surrealkv on both sides (a big INSERT on mem:// is O(n^2) in this engine). The
    # raw engine is the SDK's connection to a store holding our schema (its guards and
    # events). The target's figures run ours on that same connection, lent to a `Store` (the
    # store's codec on the SDK's engine); the `_own_store` figures run ours as a user opens it,
    # a `Store` of its own path (its own engine), as `bench graph` does.
    async with Store(f"surrealkv://{root / 'raw'}", namespace=_NS, database=_DB) as setup:
        for rid in ("raw", "raw1", "lent", "lent1"):
            await runs.create_run(setup, spec_digest=SPEC, agent_name="bench", run_id=rid)
    async with (
        surrealdb.AsyncSurreal(f"surrealkv://{root / 'raw'}") as conn,
        Store(f"surrealkv://{root / 'ours'}", namespace=_NS, database=_DB) as store,
        Store("mem://", connection=conn, namespace=_NS, database=_DB) as lent,
    ):
        await conn.use(_NS, _DB)
        for rid in ("ours", "ours1"):
            await runs.create_run(store, spec_digest=SPEC, agent_name="bench", run_id=rid)
        raw_seq = {"raw": 0, "raw1": 0}
        batch = [("tool_called", _payload(i)) for i in range(1000)]

        def ours_batch(on: Store, run_id: str) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                return await runs.append_events(on, run_id=run_id, events=batch)

            return call

        async def raw_batch() -> object:
            start = raw_seq["raw"]
            raw_seq["raw"] += 1000
            rows: list[Any] = [
                {
                    "id": surrealdb.RecordID("run_event", ["raw", start + i + 1]),
                    "run": surrealdb.RecordID("run", "raw"),
                    "seq": start + i + 1,
                    "kind": kind,
                    "payload": payload,
                }
                for i, (kind, payload) in enumerate(batch)
            ]
            return await conn.query(_RAW_INSERT, {"rows": rows})

        rounds = scale.pick(3, 6)
        ba, bb = await interleaved(
            ours_batch(lent, "lent"), raw_batch, rounds=rounds, calls=2, warmup=1
        )
        oa, ob = await interleaved(
            ours_batch(store, "ours"), raw_batch, rounds=rounds, calls=2, warmup=1
        )

        # CPU time of the process (the engine's threads included) per call, reported beside
        # the wall figures: on a shared machine a single append's wall time is mostly waits.
        cpu: dict[str, list[float]] = {"ours": [], "lent": [], "raw": []}

        def ours_one(on: Store, run_id: str, side: str) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                t0 = time.process_time()
                got = await runs.append_event(
                    on, run_id=run_id, kind="tool_called", payload=_payload(1)
                )
                cpu[side].append(time.process_time() - t0)
                return got

            return call

        async def raw_one() -> object:
            raw_seq["raw1"] += 1
            seq = raw_seq["raw1"]
            t0 = time.process_time()
            got = await conn.query(
                _RAW_CREATE,
                {
                    "id": surrealdb.RecordID("run_event", ["raw1", seq]),
                    "row": {
                        "run": surrealdb.RecordID("run", "raw1"),
                        "seq": seq,
                        "kind": "tool_called",
                        "payload": _payload(1),
                    },
                },
            )
            cpu["raw"].append(time.process_time() - t0)
            return got

        # The three sides in turn, in blocks of `calls`, the order rotating every round, so
        # that drift in the machine's speed (and the engines' background work) hits all alike.
        sides = {"lent": ours_one(lent, "lent1", "lent"), "ours": ours_one(store, "ours1", "ours")}
        sides["raw"] = raw_one
        wall: dict[str, list[float]] = {k: [] for k in sides}
        for fn in sides.values():
            for _ in range(10):
                await fn()
        for k in cpu:
            cpu[k].clear()
        names = list(sides)
        calls = scale.pick(50, 200)
        for r in range(scale.pick(6, 12)):
            for k in names[r % 3 :] + names[: r % 3]:
                t0 = time.perf_counter()
                for _ in range(calls):
                    await sides[k]()
                wall[k].append((time.perf_counter() - t0) / calls)
        sa, sb, so = wall["lent"], wall["raw"], wall["ours"]
    return [
        Figure("batch_append_vs_raw", p50(bb) / p50(ba), "x", (">=", 0.8)),
        Figure("batch_append_events_per_s", 1000 / p50(ba), "/s"),
        Figure("raw_batch_insert_events_per_s", 1000 / p50(bb), "/s"),
        Figure("single_append_vs_raw", p50(sb) / p50(sa), "x", (">=", 0.8)),
        Figure("single_append_per_s", 1 / p50(sa), "/s"),
        Figure("raw_single_create_per_s", 1 / p50(sb), "/s"),
        Figure("single_append_cpu_vs_raw", p50(cpu["raw"]) / p50(cpu["lent"]), "x"),
        Figure("batch_append_vs_raw_own_store", p50(ob) / p50(oa), "x"),
        Figure("single_append_vs_raw_own_store", p50(sb) / p50(so), "x"),
        Figure("single_append_cpu_vs_raw_own_store", p50(cpu["raw"]) / p50(cpu["ours"]), "x"),
    ]


def _vs_sqlite(scale: Scale, root: Path, *, ours_per_s: float) -> list[Figure]:
    """The seed's approach: one SQLite transaction per batch of 1,000 (WAL, synchronous=NORMAL)."""
    import json

    db = sqlite3.connect(root / "ledger.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE run_event (run TEXT, seq INTEGER, kind TEXT, payload TEXT, "
        "ts TEXT DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (run, seq))"
    )
    samples = []
    seq = 0
    for _ in range(scale.pick(10, 40)):
        rows = []
        for i in range(1000):
            seq += 1
            rows.append(("r", seq, "tool_called", json.dumps(_payload(i))))
        t0 = time.perf_counter()
        db.execute("BEGIN")
        db.executemany("INSERT INTO run_event (run, seq, kind, payload) VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        samples.append(time.perf_counter() - t0)
    db.close()
    sqlite_per_s = 1000 / p50(samples)
    return [
        Figure("batch_append_vs_sqlite", ours_per_s / sqlite_per_s, "x"),
        Figure("sqlite_batch_events_per_s", sqlite_per_s, "/s"),
    ]


async def _flatness(scale: Scale, root: Path) -> list[Figure]:
    """Append rate with 1M events already in the run vs with 1k (quick: 100k vs 1k)."""
    target = scale.pick(100_000, 1_000_000)
    batch = [("tool_called", _payload(i)) for i in range(1000)]
    async with Store(f"surrealkv://{root / 'flat'}") as store:
        await runs.create_run(store, spec_digest=SPEC, agent_name="bench", run_id="long")

        async def measure(n: int) -> float:
            samples = []
            for _ in range(n):
                t0 = time.perf_counter()
                await runs.append_events(store, run_id="long", events=batch)
                samples.append(time.perf_counter() - t0)
            return 1000 / p50(samples)

        await runs.append_events(store, run_id="long", events=batch)  # 1k in the run
        early = await measure(5)
        loaded = 6_000
        t0 = time.perf_counter()
        while loaded < target:
            await runs.append_events(store, run_id="long", events=batch)
            loaded += 1000
        load_rate = (loaded - 6_000) / (time.perf_counter() - t0)
        late = await measure(5)
    return [
        Figure("append_rate_flatness", late / early, "x", (">=", 0.8)),
        Figure("append_rate_at_1k_per_s", early, "/s"),
        Figure(f"append_rate_at_{target // 1000}k_per_s", late, "/s"),
        Figure("bulk_load_events_per_s", load_rate, "/s"),
    ]
