"""The doors' shared kit: the MCP server and the CLI choose one embedder for a store, one limit
on ``k`` holds across the doors and recall, and every door's calls reach the store's loop (the
checkpointer's included)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _threads import errors_in_threads

from surreal_store import Store, StoreStateError, ValidationError, memory
from surreal_store._cli._app import embedder_for
from surreal_store._doors import AGENT_MAX_K, MAX_K, Home, check_k, fits, own_embedder

pytestmark = pytest.mark.anyio

_HASHING_256 = memory.HashingEmbedder(256).model
_HASHING_64 = memory.HashingEmbedder(64).model

# (model, dimension, target model, target dimension): ready spaces, and re-embeds both ways.
SPACES = [
    (_HASHING_256, 256, None, None),
    (_HASHING_64, 64, None, None),
    ("all-MiniLM-L6-v2", 384, None, None),
    (_HASHING_256, 256, _HASHING_64, 64),
    (_HASHING_256, 256, "all-MiniLM-L6-v2", 384),
    ("all-MiniLM-L6-v2", 384, _HASHING_64, 64),
]


def _space(model: str, dimension: int, target: str | None, target_dim: int | None) -> Any:
    return memory.EmbeddingSpace(
        model=model,
        dimension=dimension,
        status="ready" if target is None else "reembedding",
        target_model=target,
        target_dimension=target_dim,
    )


@pytest.mark.parametrize("spec", SPACES)
def test_the_cli_and_the_mcp_server_choose_one_embedder(spec: tuple[Any, ...]) -> None:
    from surreal_store.mcp import resolve_embedder

    space = _space(*spec)
    cli, server = embedder_for(space), resolve_embedder("auto", space)
    assert (cli and cli.model) == (server and server.model)
    # What either chooses is what the memory layer then accepts: the space's writing model.
    for chosen in (cli, server):
        if chosen is not None:
            assert fits(chosen, space)
    if space.writing_model.startswith("surreal-store/hashing"):
        assert cli is not None and cli.dimension == space.index_dimension


def test_no_space_no_embedder() -> None:
    from surreal_store.mcp import resolve_embedder

    assert embedder_for(None) is None is own_embedder(None) is resolve_embedder("auto", None)


async def test_the_chosen_embedder_recalls_during_a_reembed(store: Store) -> None:
    # The CLI once compared the space's old model: mid re-embed it chose an embedder the
    # memory layer refuses.
    old, new = memory.HashingEmbedder(256), memory.HashingEmbedder(64)
    await memory.remember(store, content="green tea in the morning", embedder=old)
    await store.execute(
        "UPDATE embedding_space:active SET status = 'reembedding', target_model = $m, "
        "target_dimension = 64;",
        m=new.model,
    )
    space = await memory.get_space(store)
    chosen = embedder_for(space)
    assert chosen is not None and chosen.model == new.model
    await memory.recall(store, text="tea", embedder=chosen, mode="fulltext")


async def test_one_limit_on_k(store: Store) -> None:
    e = memory.HashingEmbedder(8)
    await memory.remember(store, content="one", embedder=e)
    assert len(await memory.recall(store, text="one", embedder=e, k=MAX_K)) == 1
    with pytest.raises(ValidationError):
        await memory.recall(store, text="one", embedder=e, k=MAX_K + 1)
    assert check_k(MAX_K) == MAX_K
    for bad in (0, MAX_K + 1, True, 1.0):
        with pytest.raises(ValidationError):
            check_k(bad)
    assert AGENT_MAX_K < MAX_K


def test_the_mcp_and_cli_limits_are_the_kits() -> None:
    pytest.importorskip("mcp.server.mcpserver")
    from typer.testing import CliRunner

    from surreal_store._cli._app import app
    from surreal_store.mcp import create_server

    async def schema() -> dict[str, Any]:
        async with Store("mem://") as store:
            tools = await create_server(store).list_tools()
            return next(t.input_schema for t in tools if t.name == "recall")

    assert asyncio.run(schema())["properties"]["k"]["maximum"] == AGENT_MAX_K
    runner = CliRunner()
    over = runner.invoke(app, ["--url", "mem://", "recall", "x", "--k", str(MAX_K + 1)])
    assert over.exit_code == 2 and str(MAX_K) in over.output
    at = runner.invoke(app, ["--url", "mem://", "recall", "x", "--k", str(MAX_K)])
    assert at.exit_code == 0, at.output


def test_a_home_refuses_to_wait_on_itself_and_without_a_loop() -> None:
    async def on_loop() -> None:
        async with Store("mem://") as store:
            home = Home(store, "saver")
            coro = asyncio.sleep(0)
            with pytest.raises(StoreStateError, match="own event loop"):
                home.wait(coro)

    asyncio.run(on_loop())

    async def make() -> Home:
        async with Store("mem://") as store:
            return Home(store, "saver")

    home = asyncio.run(make())  # its loop is closed now
    with pytest.raises(StoreStateError, match="saver to be made"):
        home.wait(asyncio.sleep(0))


def test_the_checkpointer_serves_other_loops_from_the_stores(tmp_path: Path) -> None:
    pytest.importorskip("langgraph.checkpoint.base")
    from langgraph.checkpoint.base import empty_checkpoint

    from surreal_store.langgraph import SurrealCheckpointSaver

    with SurrealCheckpointSaver.from_url_sync(f"surrealkv://{tmp_path / 'kv'}") as saver:
        cfg: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}

        def worker(n: int) -> None:
            async def on_another_loop() -> None:
                cp = empty_checkpoint()
                cp["channel_values"] = {"n": n}
                cp["channel_versions"] = {"n": "1"}
                thread: Any = {"configurable": {"thread_id": f"t{n}", "checkpoint_ns": ""}}
                await saver.aput(thread, cp, {"step": n}, {"n": "1"})
                found = await saver.aget_tuple(thread)
                assert found is not None and found.checkpoint["channel_values"] == {"n": n}
                assert len([t async for t in saver.alist(thread)]) == 1

            asyncio.run(on_another_loop())

        assert errors_in_threads(worker, 4) == []
        assert saver.get_tuple(cfg) is None
        assert len(list(saver.list(None))) == 4


async def _unindexed(store: Store) -> int:
    space = await memory.get_space(store)
    assert space is not None
    return space.unindexed


async def test_a_langgraph_put_counts_its_vectors_as_unindexed(store: Store) -> None:
    pytest.importorskip("langgraph.store.base")
    from _fakes import FakeEmbedder

    from surreal_store.langgraph import SurrealStore

    e = FakeEmbedder("words-v1", 16)
    lg = SurrealStore(store, index={"dims": 16, "embed": e, "fields": ["text", "note"]})
    await lg.setup()
    await lg.aput(("users", "ana"), "drink", {"text": "green tea", "note": "mornings"})
    assert await _unindexed(store) == 2
    await lg.aput(("users", "ana"), "drink", {"text": "coffee"})  # replaced: one vector
    await lg.aput(("users", "ana"), "plain", {"cups": 3}, index=False)  # no vector
    assert await _unindexed(store) == 3


async def test_a_langchain_add_counts_its_vectors_as_unindexed(store: Store) -> None:
    pytest.importorskip("langchain_core.documents")
    from _fakes import FakeEmbedder
    from langchain_core.documents import Document

    from surreal_store.langchain import SurrealVectorStore

    lc = SurrealVectorStore(store, embedding=FakeEmbedder("words-v1", 16))
    await lc.aadd_texts(["one text", "two texts", "three"])
    assert await _unindexed(store) == 3
    await lc.aadd_documents([Document(page_content="four"), Document(page_content="five")])
    assert await _unindexed(store) == 5


async def test_an_mcp_remember_counts_as_memory_remember_does(store: Store) -> None:
    # The MCP tool writes through memory.remember, which never moved the counter.
    pytest.importorskip("mcp.server.mcpserver")
    from mcp import Client

    from surreal_store.mcp import create_server

    async with Client(create_server(store, embedder=memory.HashingEmbedder(64))) as c:
        for content in ("a thing", "another thing"):
            assert not (await c.call_tool("remember", {"content": content})).is_error
    assert await _unindexed(store) == 0
    await memory.remember(store, content="a third", embedder=memory.HashingEmbedder(64))
    assert await _unindexed(store) == 0


def test_each_sync_opener_takes_what_its_from_url_takes() -> None:
    import inspect

    pytest.importorskip("langgraph.store.base")
    pytest.importorskip("langchain_core.vectorstores")
    from surreal_store.langchain import SurrealGraphStore, SurrealVectorStore
    from surreal_store.langgraph import SurrealCheckpointSaver, SurrealStore

    for door in (SurrealCheckpointSaver, SurrealStore, SurrealVectorStore, SurrealGraphStore):
        opener, twin = inspect.signature(door.from_url), inspect.signature(door.from_url_sync)
        assert twin.parameters == opener.parameters and "url" in twin.parameters
        assert twin.return_annotation == f"Iterator[{door.__name__}]"
        assert door.from_url_sync.__qualname__ == f"{door.__name__}.from_url_sync"
        assert (door.from_url_sync.__doc__ or "").startswith("For synchronous code")


def test_a_sync_call_runs_on_the_stores_idle_loop() -> None:
    """A store opened with ``loop.run_until_complete`` leaves its loop idle between calls: a
    door's sync method runs there rather than waiting for a loop nobody runs."""
    pytest.importorskip("langgraph.checkpoint.base")
    from surreal_store.langgraph import SurrealCheckpointSaver

    loop = asyncio.new_event_loop()
    try:
        store = Store("mem://")
        loop.run_until_complete(store.open())

        async def make() -> SurrealCheckpointSaver:
            return SurrealCheckpointSaver(store)

        saver = loop.run_until_complete(make())
        assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
        loop.run_until_complete(store.aclose())
    finally:
        loop.close()


def test_a_door_made_before_its_store_opens_finds_the_stores_loop() -> None:
    home_of: list[Home] = []
    store = Store("mem://")
    home_of.append(Home(store, "store"))  # no loop anywhere yet

    async def owner(ready: asyncio.Event, stop: asyncio.Event) -> None:
        async with store:
            ready.set()
            await stop.wait()

    loop = asyncio.new_event_loop()
    ready, stop = asyncio.Event(), asyncio.Event()
    thread = threading.Thread(target=lambda: loop.run_until_complete(owner(ready, stop)))
    thread.start()
    try:
        while not ready.is_set():
            time.sleep(0.01)

        async def on_the_stores_loop() -> bool:
            return asyncio.get_running_loop() is loop

        assert home_of[0].wait(on_the_stores_loop()) is True
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join()
        loop.close()


def test_a_sync_call_stops_waiting_when_the_stores_loop_stops() -> None:
    store = Store("mem://")
    loop = asyncio.new_event_loop()
    store._loop = loop  # as an open store's, without opening one: the call never reaches it
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        while not loop.is_running():
            time.sleep(0.01)
        threading.Timer(0.2, lambda: loop.call_soon_threadsafe(loop.stop)).start()
        started = time.monotonic()
        with pytest.raises(StoreStateError, match="stopped before the call ended"):
            Home(store, "store").wait(asyncio.sleep(30))
        assert time.monotonic() - started < 10
    finally:
        thread.join()
        loop.run_until_complete(asyncio.sleep(0))  # the cancelled call ends
        loop.close()


async def test_the_doors_closed_to_agents_refuse_an_agents_store(tmp_path: Path) -> None:
    """The LangGraph checkpointer and store and the LangChain vector store keep their data in
    tables closed to agents: made on an agent's store they refuse at once, rather than reading
    nothing (a thread that looks new) and failing at the first write."""
    pytest.importorskip("langgraph.checkpoint.base")
    pytest.importorskip("langchain_core")
    from surreal_store import PermissionDeniedError, access, agents
    from surreal_store.langchain import SurrealVectorStore
    from surreal_store.langgraph import SurrealCheckpointSaver, SurrealStore

    url = f"surrealkv://{tmp_path / 'team.db'}"
    async with Store(url, tenant="acme") as owner:
        await agents.register(owner, name="scout", kind="agent", agent_id="scout")
        await access.grant_agent(owner, agent_id="scout", secret="scout-secret", scopes=["scout"])
    embedder = memory.HashingEmbedder(64)
    for opened in (False, True):
        scout = Store(url, tenant="acme", agent="scout", agent_secret="scout-secret")
        if opened:
            await scout.open()
        try:
            doors: tuple[Any, ...] = (
                SurrealCheckpointSaver,
                SurrealStore,
                lambda s: SurrealVectorStore(s, embedder, collection="c"),
            )
            for make in doors:
                with pytest.raises(PermissionDeniedError, match="closed to agents"):
                    make(scout)
        finally:
            if opened:
                await scout.aclose()


async def test_the_doors_hits_are_recalls_memories(store: Store) -> None:
    """What the doors read of a hit (:class:`Found`) is what recall's Memory gives, value and
    type, whichever way recall answers: the rows the index keeps, a read back from the
    database, or the model's check of rows that do not fit as they are."""
    import datetime as dt

    from surreal_store import RecordId
    from surreal_store.memory import _hits
    from surreal_store.memory._recall import recall_found

    e = memory.HashingEmbedder(16)
    meta: list[dict[str, Any]] = [
        {"n": 1, "nested": {"a": [1, 2.5, None, "x"], "b": {"c": True}}},
        {"text": "⟩ ' \" $x", "empty": {}, "list": []},
        {},
    ]
    for i, m in enumerate(meta):
        await memory.remember(
            store, content=f"tea note {i}", key=f"k{i}" if i else None, metadata=m,
            tags=["t", f"t{i}"], embedder=e,
            valid_until=dt.datetime(2200, 1, 1, tzinfo=dt.UTC) if i == 1 else None,
        )  # fmt: skip
    vector = (await e.embed(["tea note"]))[0]

    def fields(x: Any) -> tuple[Any, ...]:
        names = ("id", "key", "kind", "content", "tags", "metadata", "created_at")
        values = tuple(getattr(x, n) for n in (*names, "valid_from", "valid_until"))
        return values + tuple(type(v) for v in values)

    for kw in ({}, {"tags": ["t"]}, {"metadata": {"n": 1}}, {"text": "tea", "mode": "hybrid"}):
        hits = await memory.recall(store, vector=vector, k=3, **kw)
        found = await recall_found(store, checked=True, vector=vector, k=3, **kw)
        assert [(*fields(h.memory), h.score) for h in hits] == [
            (*fields(f), f.score) for f in found
        ]
    # Rows whose fields do not fit as they are go through the model, as recall's do.
    row = {"id": RecordId("memory", "a" * 64), "scope": "s", "kind": "k", "content": "c",
           "content_hash": "h", "created_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
           "valid_from": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}  # fmt: skip
    keyed = [("a" * 64, 0.5)]
    (made,) = _hits.FOUND.kept([dict(row)], keyed, {}, {})
    (hit,) = _hits.HITS.kept([dict(row)], keyed, {}, {})
    assert fields(made) == fields(hit.memory) and made.metadata == {} and made.tags == []
    with pytest.raises(ValidationError):
        _hits.FOUND.kept([{**row, "content": 5}], keyed, {}, {})


async def test_a_langchain_search_refuses_another_models_query_as_a_write_would(
    store: Store,
) -> None:
    """A query embedded by another model than the store's space compares as noise: the search
    refuses it (EmbeddingSpaceError), as that model's first write, the LangGraph store's search
    and recall(embedder=) do."""
    pytest.importorskip("langchain_core")
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from surreal_store import EmbeddingSpaceError
    from surreal_store.langchain import SurrealVectorStore

    hashing = memory.HashingEmbedder(64)
    await SurrealVectorStore(store, hashing, collection="c").aadd_texts(["green tea", "coffee"])
    other = SurrealVectorStore(
        store, DeterministicFakeEmbedding(size=64), collection="c", model="fake-64"
    )
    with pytest.raises(EmbeddingSpaceError):
        await other.asimilarity_search_with_score("green tea", k=2)
    with pytest.raises(EmbeddingSpaceError):
        await other.aadd_texts(["planted"])
    same = SurrealVectorStore(store, memory.HashingEmbedder(64), collection="c")
    assert [d.page_content for d in await same.asimilarity_search("green tea", k=1)] == [
        "green tea"
    ]
    # Full text needs no vector: any model's door searches it.
    assert await other.asimilarity_search("green tea", k=1, mode="fulltext")
