"""``core``: the price of the client layer and of the schema check on open."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import surrealdb
from pydantic import BaseModel

from surreal_store import Migrator, RecordId, Store

from ._harness import Figure, Scale, interleaved, p50, register

_SELECT = "SELECT * FROM item WHERE n < $n ORDER BY n;"


class Item(BaseModel):
    id: RecordId
    name: str
    n: int
    tags: list[str]


@register("core")
async def run(scale: Scale) -> list[Figure]:
    """Typed-call overhead vs the raw SDK; warm re-open vs cold schema apply."""
    figures = await _typed_overhead(scale)
    figures += await _open_costs(scale)
    return figures


async def _typed_overhead(scale: Scale) -> list[Figure]:
    # One connection, one database: the store wraps the very connection the raw calls use.
    async with (
        surrealdb.AsyncSurreal("mem://") as conn,
        Store("mem://", connection=conn) as store,
    ):
        await store.execute(
            "DEFINE TABLE item SCHEMAFULL; DEFINE FIELD name ON item TYPE string;"
            "DEFINE FIELD n ON item TYPE int; DEFINE FIELD tags ON item TYPE array<string>;"
            "INSERT INTO item $rows;",
            rows=[
                {"id": RecordId("item", i), "name": f"item {i}", "n": i, "tags": ["a", "b"]}
                for i in range(100)
            ],
        )

        async def ours() -> object:
            return await store.query(_SELECT, Item, n=10)

        async def raw() -> object:
            return (await conn.query(_SELECT, {"n": 10}))[0]

        assert len(await store.query(_SELECT, Item, n=10)) == 10
        assert len(await raw()) == 10  # type: ignore[arg-type]
        rounds, calls = scale.pick(10, 40), scale.pick(50, 100)
        a, b = await interleaved(ours, raw, rounds=rounds, calls=calls)

        async def ours_write() -> object:
            return await store.execute("UPDATE item:1 SET n = $n", n=1)

        async def raw_write() -> object:
            return await conn.query("UPDATE item:1 SET n = $n", {"n": 1})

        wa, wb = await interleaved(ours_write, raw_write, rounds=rounds, calls=calls)
    return [
        Figure("typed_overhead", p50(a) / p50(b), "x", ("<=", 1.15)),
        Figure("typed_call_p50_us", p50(a) * 1e6, "us"),
        Figure("raw_sdk_call_p50_us", p50(b) * 1e6, "us"),
        Figure("write_overhead", p50(wa) / p50(wb), "x"),
        Figure("write_call_p50_us", p50(wa) * 1e6, "us"),
        Figure("raw_sdk_write_p50_us", p50(wb) * 1e6, "us"),
    ]


async def _open_costs(scale: Scale) -> list[Figure]:
    """Headline: the schema work of a re-open with nothing to migrate (one check) over the
    schema work of a cold apply, both on an open surrealkv store. The engine's own start-up
    (opening its files, ``use``) is identical either way and not the migrator's doing, so it is
    reported beside the headline (``open_total_*``) rather than inside it."""
    trials = scale.pick(5, 15)
    root = Path(tempfile.mkdtemp(prefix="bench-core-"))
    try:
        cold_total: list[float] = []
        warm_total: list[float] = []
        cold_apply: list[float] = []
        warm_check: list[float] = []
        for i in range(trials):
            url = f"surrealkv://{root / f'db{i}'}"
            # The schema step alone: a fresh store's apply, then the check a re-open makes.
            async with Store(url, check_schema=False) as store:
                t0 = time.perf_counter()
                await Migrator(store).migrate()
                cold_apply.append(time.perf_counter() - t0)
            async with Store(url, check_schema=False) as store:
                t0 = time.perf_counter()
                result = await Migrator(store).migrate()
                warm_check.append(time.perf_counter() - t0)
                assert result.applied == []

            # Whole opens, engine start-up included.
            url = f"surrealkv://{root / f'total{i}'}"
            for out in (cold_total, warm_total):
                t0 = time.perf_counter()
                store = Store(url)
                await store.open()
                out.append(time.perf_counter() - t0)
                await store.aclose()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [
        Figure("warm_open_vs_cold_apply", p50(warm_check) / p50(cold_apply), "x", ("<=", 0.1)),
        Figure("warm_check_ms", p50(warm_check) * 1e3, "ms"),
        Figure("cold_apply_ms", p50(cold_apply) * 1e3, "ms"),
        Figure("open_total_warm_vs_cold", p50(warm_total) / p50(cold_total), "x"),
        Figure("open_total_warm_ms", p50(warm_total) * 1e3, "ms"),
        Figure("open_total_cold_ms", p50(cold_total) * 1e3, "ms"),
    ]
