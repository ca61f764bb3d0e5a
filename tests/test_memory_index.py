"""The derived recall index (memory._recall_index): read-your-writes on every path a change can
take, persistence, crash recovery and exact filters. Real embedded engine throughout."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import cbor2
import numpy as np
import pytest

from surreal_store import (
    DimensionError,
    NotFoundError,
    QueryError,
    QueryTimeoutError,
    RecallIndexError,
    RecordId,
    Store,
    StoreStateError,
    access,
    agents,
    graph,
    memory,
)
from surreal_store._migrate import default_schema_dir
from surreal_store.memory import NewMemory
from surreal_store.memory._recall_index import _files as _index_files
from surreal_store.memory._recall_index._feed import _BUILD_PAGE, derived_index

pytestmark = pytest.mark.anyio

DIM = 16


def vec(i: int, dim: int = DIM) -> list[float]:
    rng = np.random.default_rng(i)
    return [float(x) for x in rng.normal(size=dim)]


def raw_row(content: str, *, scope: str = "default", i: int = 0) -> dict[str, object]:
    """A memory as raw SurrealQL writes it: the schema's own rules, nothing of our API."""
    return {
        "id": RecordId("memory", memory.memory_id(scope, content)),
        "scope": scope,
        "kind": "note",
        "content": content,
        "content_hash": hashlib.sha256(content.encode()).hexdigest(),
        "embedding": vec(i),
        "embedding_model": "m",
    }


def generation(folder: Path) -> Path:
    """The one published generation of a database's saved recall index."""
    (gen,) = folder.glob("gen-*")
    return gen


async def ids(hits: list[memory.RecallHit]) -> list[str]:
    return [h.memory.id for h in hits]


async def seeded(s: Store, n: int = 50) -> list[str]:
    await memory.declare_space(s, model="m", dimension=DIM)
    items = [NewMemory(content=f"note {i} about topic{i % 5}", embedding=vec(i)) for i in range(n)]
    return (await memory.remember_many(s, items)).ids


async def test_read_your_writes_through_the_api(kv_url: str) -> None:
    async with Store(kv_url) as s:
        known = await seeded(s)
        assert (await memory.recall(s, vector=vec(3), k=1))[0].memory.id == known[3]
        m = await memory.remember(s, content="fresh words zebra", embedding=vec(1000))
        # The very next recall, each mode, finds it.
        assert await ids(await memory.recall(s, vector=vec(1000), k=1)) == [m.id]
        assert await ids(await memory.recall(s, text="zebra", k=1)) == [m.id]
        hybrid = await memory.recall(s, text="zebra", vector=vec(1000), k=1)
        assert await ids(hybrid) == [m.id]


async def test_read_your_writes_through_raw_surrealql(kv_url: str) -> None:
    async with Store(kv_url) as s:
        await seeded(s)
        await memory.recall(s, vector=vec(0), k=1)  # the index exists and is caught up
        row = raw_row("written by hand: quokka", i=2000)
        await s.execute("INSERT INTO memory $row RETURN NONE;", row=row)
        mid = str(row["id"].key)  # type: ignore[attr-defined]
        assert await ids(await memory.recall(s, vector=vec(2000), k=1)) == [mid]
        assert await ids(await memory.recall(s, text="quokka", k=5)) == [mid]
        # A raw invalidation hides it; a raw restore shows it again; a raw delete removes it.
        await s.execute(
            "UPDATE $id SET embedding_stash = embedding, embedding = NONE, "
            "invalidated_at = time::now(), invalidated_causes = [$id] RETURN NONE;",
            id=row["id"],
        )
        assert mid not in await ids(await memory.recall(s, vector=vec(2000), k=5))
        assert mid not in await ids(await memory.recall(s, text="quokka", k=5))
        hits = await memory.recall(s, vector=vec(2000), k=1, include_invalidated=True)
        assert await ids(hits) == [mid]
        await s.execute(
            "UPDATE $id SET embedding = embedding_stash, embedding_stash = NONE, "
            "invalidated_at = NONE, invalidated_causes = [] RETURN NONE;",
            id=row["id"],
        )
        assert await ids(await memory.recall(s, vector=vec(2000), k=1)) == [mid]
        await s.execute("DELETE $id;", id=row["id"])
        for hits in (
            await memory.recall(s, vector=vec(2000), k=5, include_invalidated=True),
            await memory.recall(s, text="quokka", k=5, include_invalidated=True),
            await memory.recall(s, text="quokka", vector=vec(2000), k=5),
        ):
            assert mid not in await ids(hits)


async def test_a_recall_of_a_current_index_is_one_round_trip(kv_url: str) -> None:
    """A recall reads its candidates and looks at the feed in one round trip, and in none
    while nothing was written on the store's connection since a look found the index current;
    after a write, the look's page of the feed is applied, and the candidates are read again:
    two."""
    async with Store(kv_url) as s:
        known = await seeded(s)
        await memory.recall(s, vector=vec(0), k=1)

        async def trips(**kwargs: object) -> tuple[int, list[str]]:
            before = s.stats.queries
            hits = await memory.recall(s, k=1, **kwargs)  # type: ignore[arg-type]
            return s.stats.queries - before, await ids(hits)

        assert await trips(vector=vec(7)) == (0, [known[7]])
        assert await trips(text="memory number 7") == (0, [known[7]])
        assert await trips(vector=vec(99), kind="nothing of the kind") == (0, [])
        m = await memory.remember(s, content="just written", embedding=vec(5000))
        assert await trips(vector=vec(5000)) == (2, [m.id])
        assert await trips(vector=vec(5000)) == (1, [m.id])
        assert await trips(vector=vec(5000)) == (0, [m.id])
        await memory.invalidate(s, memory=m.id, reason="wrong")
        count, found = await trips(vector=vec(5000))
        assert count == 2 and m.id not in found
        await s.query("SELECT count() FROM memory GROUP ALL;", dict)  # a read changes nothing
        assert await trips(vector=vec(7)) == (1, [known[7]])
        assert await trips(vector=vec(7)) == (0, [known[7]])


async def test_a_recall_looks_again_after_any_write_on_the_connection(kv_url: str) -> None:
    """Skipping the look rests on this process being the only writer of its embedded files:
    a write by another store on the same connection, raw SurrealQL included, is seen by the
    next recall; a write that ended without its answer (the engine may still be running it)
    means every later recall looks."""
    async with Store(kv_url) as a:
        await seeded(a)
        await memory.recall(a, vector=vec(0), k=1)
        await memory.recall(a, vector=vec(1), k=1)
        before = a.stats.queries
        await memory.recall(a, vector=vec(2), k=1)
        assert a.stats.queries == before
        async with Store(kv_url) as b:
            row = raw_row("written beside it: wombat", i=4000)
            await b.execute("INSERT INTO memory $row RETURN NONE;", row=row)
        assert await ids(await memory.recall(a, vector=vec(4000), k=1)) == [str(row["id"].key)]  # type: ignore[attr-defined]
        await memory.recall(a, vector=vec(1), k=1)
        assert a.write_mark() is not None
        late = raw_row("written after its caller stopped waiting: numbat", i=4001)
        with pytest.raises(QueryTimeoutError):
            await a.execute(
                "SLEEP 300ms; INSERT INTO memory $row RETURN NONE;", row=late, timeout_s=0.05
            )
        assert a.write_mark() is None
        await anyio.sleep(0.6)
        before = a.stats.queries
        hits = await memory.recall(a, vector=vec(4001), k=1)
        assert a.stats.queries > before  # it looked
        written = await a.query_required_single("RETURN record::exists($id);", bool, id=late["id"])
        late_id = str(late["id"].key)  # type: ignore[attr-defined]
        assert (await ids(hits) == [late_id]) is written


async def test_changes_to_other_tables_do_not_hide_a_later_memory(kv_url: str) -> None:
    """A page of the feed is counted in transactions of every table with a feed (the graph's
    too): more of the graph's than a page holds, then a memory, and the memory is recalled
    (it was not, when the look read the memory table's feed alone). The index moves past
    the other tables' changes, so the next recall is one round trip again."""
    async with Store(kv_url) as s:
        known = await seeded(s)
        assert await ids(await memory.recall(s, vector=vec(7), k=1)) == [known[7]]
        index = derived_index(s)
        assert index is not None
        for i in range(index.feed_limit + 5):
            await graph.create_entities(s, entities=[graph.NewEntity(name=f"thing {i}")])
        m = await memory.remember(s, content="written after the graph", embedding=vec(5000))
        assert await ids(await memory.recall(s, vector=vec(5000), k=1)) == [m.id]
        for i in range(index.feed_limit + 5):
            await graph.create_entities(s, entities=[graph.NewEntity(name=f"other {i}")])
        row = raw_row("raw after the graph", i=6000)
        await s.execute("INSERT INTO memory $row RETURN NONE;", row=row)
        got = await memory.recall(s, text="raw after the graph", k=1)
        assert await ids(got) == [str(row["id"].key)]  # type: ignore[attr-defined]
        before = s.stats.queries
        assert await ids(await memory.recall(s, vector=vec(7), k=1)) == [known[7]]
        assert s.stats.queries - before == 1


_REEMBEDDING = (
    "UPDATE embedding_space:active SET status = 'reembedding', target_model = 'next', "
    "target_dimension = $d RETURN NONE;"
)
_READY = (
    "UPDATE embedding_space:active SET status = 'ready', target_model = NONE, "
    "target_dimension = NONE RETURN NONE;"
)


async def test_a_change_to_the_space_alone_is_seen_by_the_next_recall(kv_url: str) -> None:
    """The look follows the embedding space's own feed (schema 030) rather than reading the
    space: a change to the space alone, written raw, is seen by the next recall of a current
    index in its round trip, and the space as it then is decides (a re-embed under way refuses
    vector recall). Without the space's feed the look reads the space, and sees it too."""
    async with Store(kv_url) as s:
        known = await seeded(s)
        assert await ids(await memory.recall(s, vector=vec(7), k=1)) == [known[7]]
        index = derived_index(s)
        assert index is not None and index.space_feed is True
        await s.execute(_REEMBEDDING, d=DIM)
        with pytest.raises(StoreStateError, match="re-embedded"):
            await memory.recall(s, vector=vec(7), k=1)
        assert await ids(await memory.recall(s, text="memory number 7", k=1)) == [known[7]]
        await s.execute(_READY)
        assert await ids(await memory.recall(s, vector=vec(7), k=1)) == [known[7]]
        before = s.stats.queries
        assert await ids(await memory.recall(s, vector=vec(8), k=1)) == [known[8]]
        assert s.stats.queries - before == 1
        # A memory and then the space changed: both are caught up with.
        m = await memory.remember(s, content="before the space", embedding=vec(5000))
        await s.execute(_REEMBEDDING, d=DIM)
        with pytest.raises(StoreStateError, match="re-embedded"):
            await memory.recall(s, vector=vec(5000), k=1)
        await s.execute(_READY)
        assert await ids(await memory.recall(s, vector=vec(5000), k=1)) == [m.id]
        await s.execute("ALTER TABLE embedding_space DROP CHANGEFEED;")
    async with Store(kv_url, migrate=False) as s:
        assert await ids(await memory.recall(s, vector=vec(7), k=1)) == [known[7]]
        index = derived_index(s)
        assert index is not None and index.space_feed is False
        await s.execute(_REEMBEDDING, d=DIM)
        with pytest.raises(StoreStateError, match="re-embedded"):
            await memory.recall(s, vector=vec(7), k=1)


async def test_catching_up_pages_the_feed_by_the_size_of_its_transactions(kv_url: str) -> None:
    """The feed pages by transactions; bulk ones (500 memories each here) shrink the page so
    that one answer stays near 2,000 changes, and every change is applied across pages."""
    async with Store(kv_url) as s:
        await seeded(s)
        await memory.recall(s, vector=vec(0), k=1)
        index = derived_index(s)
        assert index is not None

        async def bulk(start: int, n: int) -> list[str]:
            items = [NewMemory(content=f"bulk {i}", embedding=vec(i)) for i in range(start, n)]
            result = await memory.remember_many(s, items, batch_size=500, rebuild=False)
            return result.ids

        first = await bulk(10_000, 11_500)  # 3 transactions: one page, then 4 per page
        assert await ids(await memory.recall(s, vector=vec(11_499), k=1)) == [first[-1]]
        assert index.feed_limit == 4
        second = await bulk(20_000, 23_000)  # 6 transactions: pages of 4 and 2
        status = await memory.index_status(s)
        assert status.memories == 50 + 1_500 + 3_000
        assert await ids(await memory.recall(s, vector=vec(22_999), k=1)) == [second[-1]]


async def test_a_bulk_write_keeps_the_index_current_and_reports_its_own_error(
    kv_url: str,
) -> None:
    """The index follows a bulk write as it goes; a batch the database refuses raises its own
    error (not a task group's), and the batches acknowledged before it are recalled."""
    async with Store(kv_url) as s:
        known = await seeded(s)
        items = [NewMemory(content=f"bulk {i}", embedding=vec(100 + i)) for i in range(40)]
        stored = await memory.remember_many(s, items, batch_size=10)
        status = await memory.index_status(s)
        assert status.memories == 50 + 40 and status.caught_up >= 40
        assert await ids(await memory.recall(s, vector=vec(139), k=1)) == [stored.ids[-1]]
        bad = [
            NewMemory(
                content=f"more {i}", embedding=vec(200 + i), agent="nobody" if i == 25 else None
            )
            for i in range(30)
        ]
        with pytest.raises(NotFoundError, match="agent"):
            await memory.remember_many(s, bad, batch_size=10)
        first = memory.memory_id("default", "more 0")
        assert await ids(await memory.recall(s, vector=vec(200), k=1)) == [first]
        assert await ids(await memory.recall(s, vector=vec(3), k=1)) == [known[3]]
        assert (await memory.index_status(s)).memories == 50 + 40 + 20


async def test_vectors_are_stored_as_cbor_bytes_whoever_writes_them(kv_url: str) -> None:
    """Schema 019: an array (raw SurrealQL, remember) or CBOR bytes (remember_many) is stored
    as the engine's CBOR of the numbers, read back exactly; anything else is refused whole."""
    async with Store(kv_url) as s:
        await seeded(s)
        row = raw_row("raw vector", i=7000)
        await s.execute("INSERT INTO memory $row RETURN NONE;", row=row)
        one = await memory.remember(s, content="one vector", embedding=vec(7001))
        kinds = await s.query(
            "SELECT VALUE [type::is_bytes(embedding), encoding::cbor::decode(embedding)] "
            "FROM [$a, $b];",
            list,
            a=row["id"],
            b=RecordId("memory", one.id),
        )
        assert [k[0] for k in kinds] == [True, True]
        assert [k[1] for k in kinds] == [vec(7000), vec(7001)]
        got = await memory.get(s, memory=one.id, with_embedding=True)
        assert got.embedding == vec(7001)
        assert await ids(await memory.recall(s, vector=vec(7000), k=1)) == [str(row["id"].key)]  # type: ignore[attr-defined]
        for bad in (
            ["a"] * DIM,
            cbor2.dumps("not an array"),
            b"\xff not cbor",
            cbor2.dumps([[1.0]] * DIM),
        ):
            wrong = raw_row("bad vector", i=1) | {"embedding": bad}
            with pytest.raises(QueryError):
                await s.execute("INSERT INTO memory $row RETURN NONE;", row=wrong)
        short = raw_row("short vector") | {"embedding": cbor2.dumps([1.0, 2.0])}
        with pytest.raises(DimensionError):
            await s.execute("INSERT INTO memory $row RETURN NONE;", row=short)
        left = await s.query(
            "SELECT VALUE content FROM memory WHERE content CONTAINS 'vector';", str
        )
        assert sorted(left) == ["one vector", "raw vector"]


async def test_vectors_stored_as_arrays_before_019_are_rewritten(
    kv_url: str, tmp_path: Path
) -> None:
    """A store migrated to 018 holds vectors as arrays, live and stashed; 019 rewrites them as
    bytes, and the same memories are recalled, invalidated ones included on request."""
    older = tmp_path / "schema018"
    older.mkdir()
    for f in sorted(default_schema_dir().glob("*.surql")):
        if int(f.name[:3]) <= 18:
            shutil.copy(f, older / f.name)
    async with Store(kv_url, schema_dir=older) as s:
        await memory.declare_space(s, model="m", dimension=DIM)
        rows = [raw_row(f"old {i}", i=8000 + i) for i in range(5)]
        await s.execute("INSERT INTO memory $rows RETURN NONE;", rows=rows)
        hidden = str(rows[4]["id"].key)  # type: ignore[attr-defined]
        await memory.invalidate(s, memory=hidden, reason="test")
        stored = await s.query(
            "SELECT VALUE embedding_stash FROM ONLY $id;", float, id=rows[4]["id"]
        )
        assert stored == vec(8004)  # an array, at 018
    async with Store(kv_url) as s:
        kinds = await s.query(
            "SELECT VALUE type::is_bytes(embedding ?? embedding_stash) FROM memory;", bool
        )
        assert kinds == [True] * 5
        for i in range(4):
            hits = await memory.recall(s, vector=vec(8000 + i), k=1)
            assert await ids(hits) == [str(rows[i]["id"].key)]  # type: ignore[attr-defined]
        assert hidden not in await ids(await memory.recall(s, vector=vec(8004), k=5))
        hits = await memory.recall(s, vector=vec(8004), k=1, include_invalidated=True)
        assert await ids(hits) == [hidden]
        restored = await memory.restore(s, memory=hidden)
        assert not restored.invalidated
        got = await memory.get(s, memory=hidden, with_embedding=True)
        assert got.embedding == vec(8004)


async def test_read_your_writes_while_other_tasks_recall(kv_url: str) -> None:
    """Recalls in other tasks catch the shared index up at any moment: a recall that chose
    its candidates before such a catch-up still sees every write acknowledged before it."""
    async with Store(kv_url) as s:
        await seeded(s)
        await memory.recall(s, vector=vec(0), k=1)
        done = anyio.Event()

        async def reader(i: int) -> None:
            while not done.is_set():
                await memory.recall(s, vector=vec(i), k=3)

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(reader, i)
            for i in range(40):
                m = await memory.remember(s, content=f"concurrent {i}", embedding=vec(9000 + i))
                assert await ids(await memory.recall(s, vector=vec(9000 + i), k=1)) == [m.id]
                if i % 10 == 9:
                    await memory.invalidate(s, memory=m.id, reason="test")
                    hits = await memory.recall(s, vector=vec(9000 + i), k=3)
                    assert m.id not in await ids(hits)
            done.set()


async def test_a_long_write_reopens_the_engine_before_its_log_fills(
    kv_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded engine stops answering writes after about 2.1 GB in one connection; a
    store reopens it past a limit (1 GB; 256 KB here) between statements. Reads running beside
    the writes, the recall index and every acknowledged memory come through."""
    from surreal_store._engine import _embedded as _client

    monkeypatch.setattr(_client, "_WAL_LIMIT", 1 << 18)
    async with Store(kv_url) as s:
        await seeded(s)
        shared = s._shared
        assert shared is not None and shared.wal is not None
        done = anyio.Event()
        reads = 0

        async def reader() -> None:
            nonlocal reads
            while not done.is_set():
                await memory.recall(s, vector=vec(3), k=3)
                reads += 1

        written: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            for start in range(0, 600, 100):
                items = [
                    NewMemory(content=f"long write {i}", embedding=vec(20_000 + i))
                    for i in range(start, start + 100)
                ]
                written += (await memory.remember_many(s, items)).ids
            done.set()
        assert shared.reopens >= 2 and reads > 0
        assert shared.wal_bytes() <= 2 << 20
        for i in (0, 299, 599):
            assert await ids(await memory.recall(s, vector=vec(20_000 + i), k=1)) == [written[i]]
    async with Store(kv_url) as s:
        assert (await memory.index_status(s)).memories == 50 + 600


async def test_concurrent_writers_pass_through_the_engine_reopens(
    kv_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers queued on the write lock while a reopen waits for the queries in flight: none
    of them is counted as in flight while it waits, so nothing deadlocks, and each write goes
    to the reopened connection."""
    from surreal_store._engine import _embedded as _client

    monkeypatch.setattr(_client, "_WAL_LIMIT", 1 << 17)
    async with Store(kv_url) as s:
        await seeded(s)
        shared = s._shared
        assert shared is not None
        written: dict[int, str] = {}

        async def writer(w: int) -> None:
            for i in range(40):
                n = 30_000 + w * 100 + i
                m = await memory.remember(s, content=f"writer {w} item {i}", embedding=vec(n))
                written[n] = m.id

        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for w in range(4):
                    tg.start_soon(writer, w)
        assert shared.reopens >= 2
        assert len(written) == 160
        for n in (30_000, 30_139, 30_339):
            assert await ids(await memory.recall(s, vector=vec(n), k=1)) == [written[n]]


async def test_a_failing_catch_up_during_a_bulk_write_is_reported_once_as_itself(
    kv_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If catching the index up fails while a bulk write goes on, the write still completes,
    and the catch-up after it reports the failure once, as a typed error naming the cause (not
    inside an exception group), after trying a rebuild; the memories are stored and recalled
    once the index works again."""
    from surreal_store.memory._recall_index import _feed as _derived

    async with Store(kv_url) as s:
        await seeded(s)
        await memory.recall(s, vector=vec(0), k=1)
        index = derived_index(s)
        assert index is not None
        real = _derived.DerivedIndex.apply

        def broken(self: object, *args: object, **kwargs: object) -> int:
            raise RuntimeError("the index is broken")

        monkeypatch.setattr(_derived.DerivedIndex, "apply", broken)
        items = [NewMemory(content=f"during {i}", embedding=vec(40_000 + i)) for i in range(30)]
        with pytest.raises(RecallIndexError, match="the index is broken"):
            await memory.remember_many(s, items, batch_size=10)
        monkeypatch.setattr(_derived.DerivedIndex, "apply", real)
        hits = await memory.recall(s, vector=vec(40_029), k=1)
        assert await ids(hits) == [memory.memory_id("default", "during 29")]


async def test_read_your_writes_from_another_store_on_the_same_files(kv_url: str) -> None:
    async with Store(kv_url) as a:
        await seeded(a)
        await memory.recall(a, vector=vec(0), k=1)
        async with Store(kv_url) as b:
            m = await memory.remember(b, content="from the second store", embedding=vec(3000))
        assert await ids(await memory.recall(a, vector=vec(3000), k=1)) == [m.id]


@pytest.mark.server
async def test_read_your_writes_from_another_client_of_a_server() -> None:
    url = os.environ.get("SURREAL_STORE_TEST_URL")
    if not url:
        pytest.skip("SURREAL_STORE_TEST_URL is not set")
    db = f"ryw{os.getpid()}{time.monotonic_ns()}"
    async with Store(url, database=db) as a, Store(url, database=db) as b:
        await seeded(a)
        await memory.recall(a, vector=vec(0), k=1)
        m = await memory.remember(b, content="another client wrote this", embedding=vec(4000))
        assert await ids(await memory.recall(a, vector=vec(4000), k=1)) == [m.id]
        await memory.forget(b, memory=m.id)
        assert m.id not in await ids(await memory.recall(a, vector=vec(4000), k=3))


async def test_invalidated_and_forgotten_memories_are_never_returned(kv_url: str) -> None:
    async with Store(kv_url) as s:
        known = await seeded(s)
        gone, hidden = known[7], known[8]
        await memory.recall(s, vector=vec(7), k=1)
        await memory.forget(s, memory=gone)
        await memory.invalidate(s, memory=hidden, reason="wrong")
        for i in (7, 8):
            for hits in (
                await memory.recall(s, vector=vec(i), k=50),
                await memory.recall(s, text=f"note {i} about", k=50),
                await memory.recall(s, text=f"note {i}", vector=vec(i), k=50),
            ):
                assert not {gone, hidden} & set(await ids(hits))
        back = await memory.recall(s, vector=vec(8), k=1, include_invalidated=True)
        assert await ids(back) == [hidden]
        await memory.restore(s, memory=hidden)
        assert await ids(await memory.recall(s, vector=vec(8), k=1)) == [hidden]


async def test_the_index_is_saved_and_loaded_not_rebuilt(kv_url: str) -> None:
    async with Store(kv_url) as s:
        known = await seeded(s, 300)
        first = await memory.index_status(s)
        assert first.origin == "built" and first.memories == 300 and first.path is not None
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories, status.caught_up) == ("loaded", 300, 0)
        assert status.versionstamp >= first.versionstamp
        assert await ids(await memory.recall(s, vector=vec(42), k=1)) == [known[42]]
        assert await ids(await memory.recall(s, text="note 42", k=1)) == [known[42]]


async def test_a_store_reopened_in_the_same_process_loads_the_index(kv_url: str) -> None:
    """The closed store's index lets go of its text index's lock, even while something still
    holds the index (an exception's traceback can, until the cycle collector runs)."""
    async with Store(kv_url) as s:
        known = await seeded(s, 30)
        held = derived_index(s)
    async with Store(kv_url) as s:
        assert (await memory.index_status(s)).origin == "loaded"
        assert await ids(await memory.recall(s, text="note 7", k=1)) == [known[7]]
    assert held is not None


async def test_an_index_whose_memories_were_all_forgotten_is_saved_and_loaded(
    kv_url: str,
) -> None:
    async with Store(kv_url) as s:
        await memory.declare_space(s, model="m", dimension=DIM)
        m = await memory.remember(s, content="soon forgotten", embedding=vec(1))
        assert await ids(await memory.recall(s, vector=vec(1), k=1)) == [m.id]
        await memory.forget(s, memory=m.id)
        assert await memory.recall(s, vector=vec(1), k=1) == []
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories) == ("loaded", 0)
        again = await memory.remember(s, content="remembered after", embedding=vec(1))
        assert await ids(await memory.recall(s, vector=vec(1), k=5)) == [again.id]


async def test_a_loaded_index_keeps_tags_and_takes_changes_across_saves(kv_url: str) -> None:
    # Past 1,024 memories the saved vectors are used as read, not copied into a larger
    # array: a loaded index must still grow, change and save itself again.
    n = 1_100
    async with Store(kv_url) as s:
        await memory.declare_space(s, model="m", dimension=DIM)
        items = [
            NewMemory(content=f"item {i}", embedding=vec(i), tags=["odd"] if i % 2 else [])
            for i in range(n)
        ]
        known = (await memory.remember_many(s, items)).ids
    async with Store(kv_url) as s:
        assert (await memory.index_status(s)).origin == "loaded"
        hits = await memory.recall(s, vector=vec(7), k=5, tags=["odd"])
        assert await ids(hits[:1]) == [known[7]]
        assert all("odd" in h.memory.tags for h in hits)
        assert known[8] not in await ids(await memory.recall(s, vector=vec(8), k=5, tags=["odd"]))
        late = await memory.remember(s, content="after the load", embedding=vec(5000))
        await memory.invalidate(s, memory=known[9], reason="stale")
        assert await ids(await memory.recall(s, vector=vec(5000), k=1)) == [late.id]
    for _ in range(2):  # saved from a mapped index, loaded again
        async with Store(kv_url) as s:
            status = await memory.index_status(s)
            assert (status.origin, status.memories, status.caught_up) == ("loaded", n + 1, 0)
            assert await ids(await memory.recall(s, vector=vec(5000), k=1)) == [late.id]
            assert known[9] not in await ids(await memory.recall(s, vector=vec(9), k=3))
            assert await ids(await memory.recall(s, vector=vec(3), k=1)) == [known[3]]


async def test_a_saved_index_older_than_the_feed_is_rebuilt(kv_url: str, tmp_path: Path) -> None:
    async with Store(kv_url) as s:
        known = await seeded(s)
        status = await memory.index_status(s)
    assert status.path is not None
    manifest_path = generation(status.path) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["body"]["versionstamp"] = 1 << 16  # a change of 1970: long expired from any feed
    manifest["digest"] = _index_files._manifest_digest(manifest["body"])  # not damage: age
    manifest_path.write_text(json.dumps(manifest))
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories) == ("built", 50)
        assert await ids(await memory.recall(s, vector=vec(5), k=1)) == [known[5]]


async def test_a_damaged_index_is_rebuilt_from_the_table(kv_url: str) -> None:
    async with Store(kv_url) as s:
        known = await seeded(s)
        status = await memory.index_status(s)
    assert status.path is not None
    (generation(status.path) / "vectors.hnsw").write_bytes(b"not an index")
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        assert (status.origin, status.memories) == ("built", 50)
        assert await ids(await memory.recall(s, vector=vec(9), k=1)) == [known[9]]
        progress: list[int] = []
        rebuilt = await memory.rebuild_index(s, progress=progress.append)
        assert rebuilt.memories == 50 and progress[-1] == 50


async def test_a_loaded_index_reads_its_exact_vectors_when_first_used(kv_url: str) -> None:
    """A load leaves the saved exact vectors on disk until something needs them (an exact
    comparison, a change, a save); they are checked again then, so a file changed since the
    load never reaches recall: the index is rebuilt from the table instead."""
    async with Store(kv_url) as s:
        known = await seeded(s)
        status = await memory.index_status(s)
    assert status.path is not None
    async with Store(kv_url) as s:
        assert (await memory.index_status(s)).origin == "loaded"
        index = derived_index(s)
        assert index is not None and index.saved_vecs is not None
        # Few memories: an exact comparison, which reads them.
        assert await ids(await memory.recall(s, vector=vec(9), k=1)) == [known[9]]
        assert index.saved_vecs is None and index.vecs.shape[1] == DIM
        m = await memory.remember(s, content="after the load", embedding=vec(777))
        assert await ids(await memory.recall(s, vector=vec(777), k=1)) == [m.id]
    async with Store(kv_url) as s:
        index = derived_index(s)
        assert (await memory.index_status(s)).origin == "loaded"
        assert index is not None and index.saved_vecs is not None
        saved = index.saved_vecs.path
        data = bytearray(saved.read_bytes())
        data[-4:] = b"\x00\x00\x80\x7f"  # the last vector's last number: an infinity
        saved.write_bytes(bytes(data))
        assert await ids(await memory.recall(s, vector=vec(9), k=1)) == [known[9]]
        assert (await memory.index_status(s)).origin == "built"
        assert await ids(await memory.recall(s, vector=vec(777), k=1)) == [m.id]


async def test_a_build_reads_every_page_of_the_table(kv_url: str) -> None:
    """Two full pages (the boundary: one more read finds nothing) and memories without a
    vector: a rebuild holds each memory once, and finds one from the last page."""
    n = 2 * _BUILD_PAGE
    async with Store(kv_url) as s:
        await memory.declare_space(s, model="m", dimension=DIM)
        items = [
            NewMemory(content=f"paged {i}", embedding=vec(i) if i % 3 else None) for i in range(n)
        ]
        stored = await memory.remember_many(s, items, rebuild=False)
        progress: list[int] = []
        status = await memory.rebuild_index(s, progress=progress.append)
        assert (status.origin, status.memories) == ("built", n)
        assert status.vectors == sum(1 for i in range(n) if i % 3)
        assert progress == sorted(progress) and progress[-1] == n
        last = max(stored.ids)  # the table's key order: the last page
        i = stored.ids.index(last)
        hits = await memory.recall(s, text=f"paged {i}", k=1, mode="fulltext")
        assert [h.memory.id for h in hits] == [last]


_LOADER = textwrap.dedent(
    """
    import sys, anyio
    import numpy as np
    from surreal_store import Store, memory
    from surreal_store.memory import NewMemory
    from surreal_store.memory._recall_index import _feed as _derived

    def vec(i):
        return np.random.default_rng(i).normal(size=16).tolist()

    async def main(url):
        async with Store(url) as s:
            await memory.declare_space(s, model="m", dimension=16)
            first = [NewMemory(content=f"m{i}", embedding=vec(i)) for i in range(500)]
            await memory.remember_many(s, first)
            await memory.index_status(s)
            index = _derived.derived_index(s)
            async with index.lock:
                assert await _derived.publish(s, index)  # a saved state to load
            print("saved", flush=True)
            i = 500
            while True:
                batch = [NewMemory(content=f"m{j}", embedding=vec(j)) for j in range(i, i + 50)]
                await memory.remember_many(s, batch, rebuild=False)
                i += 50
                print("acked", i, flush=True)

    anyio.run(main, sys.argv[1], backend="asyncio")
    """
)


async def test_kill_9_during_a_bulk_load_loses_no_acknowledged_memory(
    kv_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "loader.py"
    script.write_text(_LOADER)
    acked = 0
    with subprocess.Popen(  # noqa: ASYNC220 (a child to kill, not to await)
        [sys.executable, str(script), kv_url], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if line.startswith("acked"):
                    acked = int(line.split()[1])
                    if acked >= 2000:
                        break
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert acked >= 2000
    async with Store(kv_url) as s:
        status = await memory.index_status(s)
        # Loaded from the save before the load went on, then caught up from the feed alone.
        assert status.origin == "loaded"
        assert status.memories >= acked and status.caught_up >= acked - 500
        for i in range(acked):
            want = memory.memory_id("default", f"m{i}")
            assert await ids(await memory.recall(s, vector=vec(i), k=1)) == [want], i


async def test_filtered_recall_is_exact_for_selective_filters(tmp_path: Path) -> None:
    """Filters admitting 10% and 1% of 3,000 memories: the hits are exactly the nearest
    admitted memories (compared with numpy over what the database admits)."""
    dim = 32
    rng = np.random.default_rng(7)
    data = rng.normal(size=(3000, dim)).astype(np.float32)
    async with Store(f"surrealkv://{tmp_path / 'f'}") as s:
        await memory.declare_space(s, model="m", dimension=dim)
        items = [
            NewMemory(
                content=f"m{i}",
                kind="rare" if i % 100 == 0 else "tenth" if i % 10 == 0 else "common",
                tags=["t10"] if i % 10 == 3 else [],
                embedding=data[i].tolist(),
            )
            for i in range(3000)
        ]
        result = await memory.remember_many(s, items)
        normed = data / np.linalg.norm(data, axis=1, keepdims=True)
        for filt, admitted in (
            ({"kind": "rare"}, [i for i in range(3000) if i % 100 == 0]),
            ({"kind": "tenth"}, [i for i in range(3000) if i % 10 == 0 and i % 100]),
            ({"tags": ["t10"]}, [i for i in range(3000) if i % 10 == 3]),
        ):
            for q in rng.normal(size=(5, dim)).astype(np.float32):
                sims = normed[admitted] @ (q / np.linalg.norm(q))
                want = [result.ids[admitted[j]] for j in np.argsort(-sims)[:10]]
                got = await memory.recall(s, vector=q.tolist(), k=10, **filt)
                assert await ids(got) == want


async def test_an_agent_recalls_by_scanning_within_its_grant(tmp_path: Path) -> None:
    url = f"surrealkv://{tmp_path / 'agents'}"
    async with Store(url) as root:
        await memory.declare_space(root, model="m", dimension=DIM)
        await agents.register(root, name="a", kind="bot", agent_id="a")
        await access.grant_agent(root, agent_id="a", secret="secret-of-agent-a", scopes=["team-a"])
        mine = await memory.remember(
            root, scope="team-a", content="the launch plan", embedding=vec(1), agent="a"
        )
        theirs = await memory.remember(
            root, scope="team-b", content="the launch plan too", embedding=vec(1)
        )
    async with Store(url, agent="a", agent_secret="secret-of-agent-a") as s:
        for hits in (
            await memory.recall(s, vector=vec(1), k=5),
            await memory.recall(s, text="launch plan", k=5),
            await memory.recall(s, text="launch plan", vector=vec(1), k=5),
        ):
            assert await ids(hits) == [mine.id]
            assert theirs.id not in await ids(hits)


async def test_hostile_text_is_only_ever_terms(kv_url: str) -> None:
    """Query syntax of the text index (fields, operators, wildcards, ranges) is not parsed:
    the text is analysed into terms, nothing else."""
    async with Store(kv_url) as s:
        known = await seeded(s)
        for text in (
            "content:* OR slot:[0 TO 99]",
            '") AND NOT (',
            "note* ~2 ^5 /regex.*/",
            "\x00\u202e\ufeff",
            "the of and",  # only function words: no term, no match
        ):
            hits = await memory.recall(s, text=text, k=5)
            assert all(h.memory.id in known for h in hits)
        assert await memory.recall(s, text="the of and", k=5) == []


async def test_concurrent_writers_and_recalls_agree(kv_url: str) -> None:
    """Recalls running while other tasks write: every write acknowledged before a recall
    starts is found by it."""
    async with Store(kv_url) as s:
        await seeded(s, 10)
        done: list[tuple[int, str]] = []

        async def writer(base: int) -> None:
            for i in range(base, base + 40):
                m = await memory.remember(s, content=f"concurrent {i}", embedding=vec(10_000 + i))
                done.append((i, m.id))

        async def reader() -> None:
            for _ in range(40):
                if done:
                    i, mid = done[len(done) // 2]
                    hits = await memory.recall(s, vector=vec(10_000 + i), k=1)
                    assert await ids(hits) == [mid]
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer, 0)
            tg.start_soon(writer, 100)
            tg.start_soon(reader)
            tg.start_soon(reader)
        status = await memory.index_status(s)
        assert status.memories == 10 + 80


async def test_a_recall_returns_each_memory_as_a_read_of_it_would(
    kv_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A recall of a current index returns the rows the index keeps rather than reading them
    back: they equal what the database returns for them, field by field and to the
    nanosecond, whoever wrote them, and after the index is saved and loaded."""
    caplog.set_level(logging.INFO, "surreal_store")
    async with Store(kv_url) as s:
        await memory.declare_space(s, model="m", dimension=DIM)
        await agents.register(s, name="a", kind="bot", agent_id="a")
        items = [
            NewMemory(
                content=f"kept row {i}",
                key=f"k{i}" if i % 2 else None,
                kind="fact" if i % 3 else "note",
                tags=["x", f"t{i}"],
                metadata={"n": i, "nested": {"list": [1, 2.5, None, "s"], "flag": True}},
                agent="a" if i % 4 == 0 else None,
                valid_until=dt.datetime(2099, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC),
                embedding=vec(i),
            )
            for i in range(12)
        ]
        await memory.remember_many(s, items)
        row = raw_row("written raw, read back the same", i=77)
        # Nanoseconds the API never makes (its times are the engine's own or Python's).
        await s.execute(
            "INSERT INTO memory $row RETURN NONE; UPDATE $id SET valid_until = "
            "<datetime> '2098-01-02T03:04:05.987654321Z' RETURN NONE;",
            row=row,
            id=row["id"],
        )
        gone = await memory.remember(s, content="kept row, then invalidated", embedding=vec(5))
        await memory.invalidate(s, memory=gone.id, reason="wrong")

        async def check() -> int:
            seen = 0
            for i in (*range(12), 77, 5):
                before = s.stats.queries
                hits = await memory.recall(s, vector=vec(i), k=3, include_invalidated=True)
                assert s.stats.queries - before == 1  # the look at the feed, nothing read
                for hit in hits:
                    read = await memory.get(s, memory=hit.memory.id)
                    assert hit.memory == read
                    for name in ("created_at", "valid_from", "valid_until", "invalidated_at"):
                        mine, theirs = getattr(hit.memory, name), getattr(read, name)
                        assert type(mine) is type(theirs)
                        assert getattr(mine, "nanosecond", 0) == getattr(theirs, "nanosecond", 0)
                        if mine is not None:
                            assert mine.tzinfo == theirs.tzinfo
                    seen += 1
            return seen

        await memory.recall(s, vector=vec(0), k=1)
        assert await check() == 14 * 3
        raw = await memory.get(s, memory=str(row["id"].key))  # type: ignore[attr-defined]
        assert raw.valid_until is not None and raw.valid_until.nanosecond == 321  # type: ignore[attr-defined]
    async with Store(kv_url) as s:
        await memory.recall(s, vector=vec(0), k=1)
        assert derived_index(s).origin == "loaded", caplog.text  # type: ignore[union-attr]
        assert await check() == 14 * 3


async def test_a_memory_whose_row_is_not_kept_is_read_back(kv_url: str) -> None:
    """Metadata written by raw SurrealQL may hold values the index does not keep (a duration;
    a record id, even with a number key, is kept): such a hit is read back from the database."""
    async with Store(kv_url) as s:
        await seeded(s, 20)
        row = raw_row("odd metadata", i=3000) | {"metadata": {"at": RecordId("agent", 1)}}
        await s.execute("INSERT INTO memory $row RETURN NONE;", row=row)
        await s.execute(
            "CREATE $id CONTENT $row RETURN NONE;",
            id=RecordId("memory", memory.memory_id("default", "a duration in metadata")),
            row={k: v for k, v in raw_row("a duration in metadata", i=3001).items() if k != "id"}
            | {"metadata": {"wait": dt.timedelta(minutes=90)}},
        )
        index = derived_index(s)
        await memory.recall(s, vector=vec(0), k=1)
        assert index is not None
        slot = index.slot_of[memory.memory_id("default", "a duration in metadata")]
        assert index.rows[slot] is None  # not kept
        assert index.rows[index.slot_of[str(row["id"].key)]] is not None  # type: ignore[attr-defined]
        hits = await memory.recall(s, vector=vec(3001), k=2)
        assert hits[0].memory.metadata == {"wait": dt.timedelta(minutes=90)}
        assert hits[0].memory == await memory.get(s, memory=hits[0].memory.id)
        hits = await memory.recall(s, vector=vec(3000), k=1)
        assert hits[0].memory.metadata == {"at": RecordId("agent", 1)}


async def test_a_filter_names_records_by_their_string_keys(kv_url: str) -> None:
    """``agent:1`` (a number key, written raw) is not the agent ``"1"``: the index's mask is
    exact, as the database's filter is."""
    async with Store(kv_url) as s:
        await seeded(s, 5)
        await agents.register(s, name="one", kind="bot", agent_id="1")
        mine = await memory.remember(s, content="by agent one", embedding=vec(9), agent="1")
        await s.execute("CREATE agent:1 SET name = 'number one', kind = 'bot' RETURN NONE;")
        await s.execute(
            "INSERT INTO memory $row RETURN NONE;",
            row=raw_row("by agent:1, a number", i=9) | {"agent": RecordId("agent", 1)},
        )
        hits = await memory.recall(s, vector=vec(9), k=5, agent="1")
        assert await ids(hits) == [mine.id]


async def test_the_index_analyses_text_as_the_schemas_analyzer_does(store: Store) -> None:
    """The recall index's terms are the schema analyzer's (``memory_text``), so the index and
    the database's scan (an agent's recall) agree on what a text contains: letters and digits
    split apart, function words out before splitting, accents folded, English stems. Scripts
    the engine transliterates (CJK) are left out: its ASCII filter spells them in Latin."""
    from surreal_store.memory._recall_index._analysis import STOPWORDS, analysable, text_analyzer

    rng = np.random.default_rng(33)
    pieces = [
        *STOPWORDS[:20],
        "E1234", "gpt-4o", "snake_case", "__x__", "3.2.4", "café", "Résumé", "straße", "ÆON",
        "running", "Runs", "it's", "C++", "C#", ".NET", "x2y", "4the", "hello,world", "a/b",
        "naïve", "UPPER", "MiXeD", "42", "1e9", "-", "—", "“quoted”", "(paren)", "tab\there",
    ]  # fmt: skip
    analyzer = text_analyzer()
    for _ in range(300):
        text = " ".join(rng.choice(pieces, size=int(rng.integers(1, 8))))
        ours = analyzer.analyze(analysable(text))
        engine = await store.query("RETURN search::analyze('memory_text', $text);", str, text=text)
        assert ours == engine, text


async def test_memories_valid_past_2262_or_before_1677_are_recalled_exactly(kv_url: str) -> None:
    """The index's time columns hold int64 nanoseconds; a time outside their range (a memory
    valid until 2300, or from 1500) neither breaks the index nor its filters, before and after
    a reopen that loads the saved index."""
    utc = dt.UTC
    far, past = dt.datetime(2300, 1, 1, tzinfo=utc), dt.datetime(1500, 1, 1, tzinfo=utc)
    async with Store(kv_url) as s:
        await memory.declare_space(s, model="m", dimension=DIM)
        await memory.remember(s, content="near note", embedding=vec(1))
        await memory.remember(s, content="far note", embedding=vec(2), valid_until=far)
        await memory.remember(s, content="old note", embedding=vec(3), valid_from=past)
        # and one written by raw SurrealQL, valid from 2400 on
        row = raw_row("later note", i=4)
        await s.execute(
            "CREATE memory CONTENT $row", row={**row, "valid_from": far.replace(year=2400)}
        )

    async def contents(s: Store, **filters: object) -> dict[str, list[str]]:
        out = {}
        for mode, how in (("text", {"text": "note"}), ("vector", {"vector": vec(1)})):
            hits = await memory.recall(s, k=10, **how, **filters)  # type: ignore[arg-type]
            out[mode] = sorted(h.memory.content for h in hits)
        return out

    cases = [
        ({}, ["far note", "later note", "near note", "old note"]),
        ({"valid_at": dt.datetime(2280, 1, 1, tzinfo=utc)}, ["far note", "near note", "old note"]),
        ({"valid_at": far}, ["near note", "old note"]),
        ({"valid_at": dt.datetime(1600, 1, 1, tzinfo=utc)}, ["old note"]),
        (
            {"valid_at": dt.datetime(2500, 1, 1, tzinfo=utc)},
            ["later note", "near note", "old note"],
        ),
        ({"as_of": dt.datetime(2500, 1, 1, tzinfo=utc)}, ["later note", "near note", "old note"]),
        (
            {"created_before": dt.datetime(2300, 1, 1, tzinfo=utc)},
            ["far note", "later note", "near note", "old note"],
        ),
        (
            {"created_after": dt.datetime(1400, 1, 1, tzinfo=utc)},
            ["far note", "later note", "near note", "old note"],
        ),
    ]
    for reopened in (False, True):
        async with Store(kv_url) as s:
            assert (await memory.index_status(s)).origin == ("loaded" if reopened else "built")
            for filters, want in cases:
                assert await contents(s, **filters) == {"text": want, "vector": want}, filters
