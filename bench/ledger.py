"""``ledger``: append throughput of the run ledger against the raw engine and SQLite."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

import surrealdb

from surreal_store import Store, runs

from ._harness import Figure, Scale, interleaved, p50, register

SPEC = "5" * 64
_RAW_INSERT = "INSERT INTO run_event $rows RETURN NONE;"
_RAW_CREATE = "CREATE $id CONTENT $row;"


def _payload(i: int) -> dict[str, Any]:
    return {"node": f"n{i % 17}", "tool": "search", "tokens": i % 500, "ok": True}


@register("ledger")
async def run(scale: Scale) -> list[Figure]:
    """Batched and single appends vs the raw engine; vs sqlite3 (WAL); rate at 1M vs 1k."""
    root = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    try:
        figures = await _vs_raw(scale, root)
        figures += _vs_sqlite(scale, root, ours_per_s=figures[1].value)
        figures += await _flatness(scale, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


async def _vs_raw(scale: Scale, root: Path) -> list[Figure]:
    # Embedded surrealkv for both sides (a big INSERT on mem:// is O(n^2) in this engine), one
    # connection, the same schema and events; separate runs.
    async with (
        surrealdb.AsyncSurreal(f"surrealkv://{root / 'vs-raw'}") as conn,
        Store("mem://", connection=conn) as store,
    ):
        for rid in ("ours", "raw", "ours1", "raw1"):
            await runs.create_run(store, spec_digest=SPEC, agent_name="bench", run_id=rid)
        raw_seq = {"raw": 0, "raw1": 0}
        batch = [("tool_called", _payload(i)) for i in range(1000)]

        async def ours_batch() -> object:
            return await runs.append_events(store, run_id="ours", events=batch)

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

        ba, bb = await interleaved(
            ours_batch, raw_batch, rounds=scale.pick(3, 6), calls=2, warmup=1
        )

        async def ours_one() -> object:
            return await runs.append_event(
                store, run_id="ours1", kind="tool_called", payload=_payload(1)
            )

        async def raw_one() -> object:
            raw_seq["raw1"] += 1
            seq = raw_seq["raw1"]
            return await conn.query(
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

        sa, sb = await interleaved(
            ours_one, raw_one, rounds=scale.pick(4, 8), calls=scale.pick(50, 200), warmup=10
        )
    return [
        Figure("batch_append_vs_raw", p50(bb) / p50(ba), "x", (">=", 0.8)),
        Figure("batch_append_events_per_s", 1000 / p50(ba), "/s"),
        Figure("raw_batch_insert_events_per_s", 1000 / p50(bb), "/s"),
        Figure("single_append_vs_raw", p50(sb) / p50(sa), "x", (">=", 0.8)),
        Figure("single_append_per_s", 1 / p50(sa), "/s"),
        Figure("raw_single_create_per_s", 1 / p50(sb), "/s"),
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
