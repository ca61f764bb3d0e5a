"""``langgraph``: the LangGraph checkpointer against LangGraph's own SQLite saver, and the
LangGraph store against the memory layer it is built on."""

from __future__ import annotations

import operator
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    CheckpointMetadata,
    empty_checkpoint,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph
from langgraph.store.base import PutOp

from surreal_store import Store, memory
from surreal_store.langgraph import SurrealCheckpointSaver, SurrealStore

from ._embeddings import Lookup, corpus_and_queries
from ._harness import Figure, Scale, interleaved, p50, register


class _State(TypedDict):
    step: int
    messages: Annotated[list[str], operator.add]
    scratch: str


def _graph(steps: int) -> Any:
    """A chat-like loop: every step appends a message and rewrites a scratch channel."""

    def turn(state: _State) -> dict[str, Any]:
        i = state["step"] + 1
        return {"step": i, "messages": [f"message {i}: " + "x" * 200], "scratch": f"s{i}"}

    def more(state: _State) -> str:
        return "turn" if state["step"] < steps else "__end__"

    g = StateGraph(_State)
    g.add_node("turn", turn)
    g.add_edge(START, "turn")
    g.add_conditional_edges("turn", more, ["turn", "__end__"])
    return g


class _Recorder(InMemorySaver):
    """Records every put and put_writes of a real run, to replay on each saver."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Any,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self.calls.append(("put", (config, checkpoint, metadata, new_versions)))
        return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: RunnableConfig, writes: Any, task_id: str, task_path: str = ""
    ) -> None:
        self.calls.append(("writes", (config, writes, task_id, task_path)))
        await super().aput_writes(config, writes, task_id, task_path)


async def _record(steps: int) -> list[tuple[str, tuple[Any, ...]]]:
    recorder = _Recorder()
    graph = _graph(steps).compile(checkpointer=recorder)
    await graph.ainvoke(
        {"step": 0, "messages": [], "scratch": ""},
        {"configurable": {"thread_id": "rec"}, "recursion_limit": steps * 2 + 10},
    )
    return recorder.calls


def _on_thread(config: RunnableConfig, thread: str) -> RunnableConfig:
    return {"configurable": {**config["configurable"], "thread_id": thread}}


async def _replay(
    saver: BaseCheckpointSaver[Any], calls: list[tuple[str, tuple[Any, ...]]], thread: str
) -> int:
    """The recorded calls on ``thread``; returns how many checkpoints were put."""
    puts = 0
    for kind, args in calls:
        if kind == "put":
            config, checkpoint, metadata, versions = args
            await saver.aput(_on_thread(config, thread), checkpoint, metadata, versions)
            puts += 1
        else:
            config, writes, task_id, task_path = args
            await saver.aput_writes(_on_thread(config, thread), writes, task_id, task_path)
    return puts


@asynccontextmanager
async def _sqlite(path: str) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(path) as saver:
        await saver.setup()
        yield saver


async def _pair(
    ours: BaseCheckpointSaver[Any],
    theirs: BaseCheckpointSaver[Any],
    calls: list[tuple[str, tuple[Any, ...]]],
    rounds: int,
    suffix: str,
) -> list[Figure]:
    rates: dict[str, list[float]] = {"ours": [], "sqlite": []}
    for r in range(rounds):
        order = [("ours", ours), ("sqlite", theirs)]
        for name, saver in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            puts = await _replay(saver, calls, f"{name}-{r}")
            rates[name].append(puts / (time.perf_counter() - t0))
    ours_rate, sqlite_rate = p50(rates["ours"]), p50(rates["sqlite"])
    latest: RunnableConfig = {"configurable": {"thread_id": "ours-0", "checkpoint_ns": ""}}
    latest_sqlite: RunnableConfig = {"configurable": {"thread_id": "sqlite-0", "checkpoint_ns": ""}}

    async def get_ours() -> object:
        return await ours.aget_tuple(latest)

    async def get_sqlite() -> object:
        return await theirs.aget_tuple(latest_sqlite)

    a, b = await interleaved(get_ours, get_sqlite, rounds=10, calls=20, warmup=10)
    return [
        Figure(f"checkpoint_put_vs_sqlite{suffix}", ours_rate / sqlite_rate, "x"),
        Figure(f"checkpoint_put_per_s{suffix}", ours_rate, "/s"),
        Figure(f"sqlite_put_per_s{suffix}", sqlite_rate, "/s"),
        Figure(f"checkpoint_get_vs_sqlite{suffix}", p50(a) / p50(b), "x"),
        Figure(f"checkpoint_get_p50_ms{suffix}", p50(a) * 1000, "ms"),
        Figure(f"sqlite_get_p50_ms{suffix}", p50(b) * 1000, "ms"),
    ]


async def _hop_walk(saver: BaseCheckpointSaver[Any], config: RunnableConfig) -> int:
    """History the way a caller without ``list`` walks it: a checkpoint, then its parent."""
    seen = 0
    cursor: RunnableConfig | None = config
    while cursor is not None:
        found = await saver.aget_tuple(cursor)
        if found is None:
            break
        seen += 1
        cursor = found.parent_config
    return seen


async def _list_speed(scale: Scale, store: Store) -> list[Figure]:
    saver = SurrealCheckpointSaver(store)
    n = scale.pick(200, 1000)
    thread = f"long-{uuid.uuid4()}"
    parent: RunnableConfig = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    for i in range(n):
        cp = empty_checkpoint()
        cp["channel_values"] = {"i": i, "text": "y" * 100}
        cp["channel_versions"] = {"i": str(i + 1), "text": "1"}
        new: ChannelVersions = {"i": str(i + 1), "text": "1"} if i == 0 else {"i": str(i + 1)}
        parent = await saver.aput(parent, cp, {"source": "loop", "step": i}, new)

    async def listed() -> int:
        return len([t async for t in saver.alist({"configurable": {"thread_id": thread}})])

    async def walked() -> int:
        return await _hop_walk(saver, {"configurable": {"thread_id": thread, "checkpoint_ns": ""}})

    assert await listed() == await walked() == n
    a, b = await interleaved(listed, walked, rounds=scale.pick(2, 5), calls=1, warmup=1)
    return [
        Figure(f"checkpoint_list_{n}_vs_hop_walk", p50(b) / p50(a), "x", (">=", 10)),
        Figure("checkpoint_list_ms", p50(a) * 1000, "ms"),
        Figure("checkpoint_hop_walk_ms", p50(b) * 1000, "ms"),
    ]


async def _store_speed(scale: Scale, root: Path) -> list[Figure]:
    """SurrealStore's search and put against the memory layer's own recall and remember."""
    n, dim = scale.pick(1000, 10_000), 384
    corpus, queries, lookup = corpus_and_queries(n, dim)
    index: Any = {"dims": dim, "embed": Lookup(lookup), "fields": ["text"]}
    figures: list[Figure] = []
    async with Store(f"surrealkv://{root / 'items'}") as store:
        lg = SurrealStore(store, index=index, model="bench")
        t0 = time.perf_counter()
        for start in range(0, n, 500):
            await lg.abatch(
                [
                    PutOp(("bench", f"u{i % 10}"), f"k{i}", {"text": corpus[i], "i": i})
                    for i in range(start, min(n, start + 500))
                ]
            )
        figures.append(Figure(f"store_load_{n}_s", time.perf_counter() - t0, "s"))
        # Both searches then use the index's graph alone (vectors written after its last
        # build are compared one by one, which would dominate both).
        await memory.rebuild_index(store)
        q = iter(range(10**9))

        async def searched() -> object:
            i = next(q) % len(queries)
            return await lg.asearch(("bench",), query=queries[i], limit=10)

        async def recalled() -> object:
            i = next(q) % len(queries)
            return await memory.recall(store, vector=lookup[queries[i]], k=10)

        assert len(await lg.asearch(("bench",), query=queries[0], limit=10)) == 10
        assert len(await memory.recall(store, vector=lookup[queries[0]], k=10)) == 10
        a, b = await interleaved(searched, recalled, rounds=scale.pick(3, 7), calls=30)
        figures += [
            Figure(f"store_search_vs_native_recall_{n}", p50(a) / p50(b), "x", ("<=", 1.2)),
            Figure("store_search_ms", p50(a) * 1000, "ms"),
            Figure("native_recall_ms", p50(b) * 1000, "ms"),
        ]
    # Puts: one item per call against one memory per call, each on a store of its own.
    m = scale.pick(200, 1000)
    async with (
        Store(f"surrealkv://{root / 'puts'}") as ours,
        Store(f"surrealkv://{root / 'remember'}") as native,
    ):
        lg = SurrealStore(ours, index=index, model="bench")
        await lg.setup()
        await memory.declare_space(native, model="bench", dimension=dim)
        i_put, i_rem = iter(range(10**9)), iter(range(10**9))

        async def put() -> object:
            i = next(i_put) % n
            await lg.aput(("bench", f"u{i % 10}"), f"k{i}", {"text": corpus[i], "i": i})
            return None

        async def remember() -> object:
            i = next(i_rem) % n
            return await memory.remember(
                native,
                content=corpus[i],
                scope=f"bench/u{i % 10}",
                key=f"k{i}",
                metadata={"i": i},
                embedding=lookup[corpus[i]],
            )

        # Many short blocks: the median of their means holds against a busy moment of the
        # machine (two cores here), which a few long blocks do not.
        rounds = scale.pick(2, 10)
        a, b = await interleaved(put, remember, rounds=rounds, calls=m // rounds, warmup=10)
        figures += [
            Figure("store_put_vs_native_remember", p50(b) / p50(a), "x", (">=", 0.8)),
            Figure("store_puts_per_s", 1 / p50(a), "/s"),
            Figure("native_remembers_per_s", 1 / p50(b), "/s"),
        ]
    return figures


@register("langgraph")
async def run(scale: Scale) -> list[Figure]:
    """Checkpoints: put and get vs AsyncSqliteSaver on a recorded graph run; list vs a walk.
    Store: search and put vs the memory layer's recall and remember on the same data."""
    calls = await _record(scale.pick(20, 100))
    rounds = scale.pick(2, 5)
    root = Path(tempfile.mkdtemp(prefix="bench-langgraph-"))
    figures: list[Figure] = []
    try:
        async with Store("mem://") as store, _sqlite(":memory:") as sqlite:
            figures += await _pair(SurrealCheckpointSaver(store), sqlite, calls, rounds, "")
            figures += await _list_speed(scale, store)
        # On disk: the embedded file store against a SQLite file.
        async with (
            Store(f"surrealkv://{root / 'kv'}") as store,
            _sqlite(str(root / "lg.sqlite")) as sqlite,
        ):
            figures += await _pair(SurrealCheckpointSaver(store), sqlite, calls, rounds, "_on_disk")
        figures += await _store_speed(scale, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures
