"""SurrealCheckpointSaver beyond the conformance suite: a real graph (a loop, an interrupt, a
resume, a fork from an earlier checkpoint) persisted on surrealkv and reopened in a new process;
memories citing checkpoints; content stored once; the sync methods; bad input."""

from __future__ import annotations

import contextlib
import json
import operator
import sys
import textwrap
import threading
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("langgraph.checkpoint.base")

import anyio.lowlevel
from _hostile_values import hostile_texts, hostile_values
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

from surreal_store import (
    Store,
    StoreError,
    StoreState,
    StoreStateError,
    ValidationError,
    memory,
    provenance,
)
from surreal_store.langgraph import SurrealCheckpointSaver

pytestmark = pytest.mark.anyio

# The graph, as source: the test runs it, and so does a fresh process reopening the store.
GRAPH = textwrap.dedent(
    """
    import operator
    from typing import Annotated, TypedDict

    from langgraph.graph import END, START, StateGraph
    from langgraph.types import interrupt


    class State(TypedDict):
        count: int
        log: Annotated[list[str], operator.add]
        approved: str


    def step(state: State) -> dict:
        return {"count": state["count"] + 1, "log": [f"step {state['count'] + 1}"]}


    def review(state: State) -> dict:
        answer = interrupt({"question": "approve?", "count": state["count"]})
        return {"approved": answer, "log": [f"review: {answer}"]}


    def again(state: State) -> str:
        return "step" if state["count"] < 3 else "review"


    def build(checkpointer):
        g = StateGraph(State)
        g.add_node("step", step)
        g.add_node("review", review)
        g.add_edge(START, "step")
        g.add_conditional_edges("step", again, ["step", "review"])
        g.add_edge("review", END)
        return g.compile(checkpointer=checkpointer)
    """
)


def _graph_module() -> dict[str, Any]:
    # A real module: LangGraph reads the state's type hints through its module.
    name = "surreal_store_test_graph"
    if name not in sys.modules:
        module = types.ModuleType(name)
        sys.modules[name] = module
        exec(compile(GRAPH, name, "exec"), module.__dict__)
    return sys.modules[name].__dict__


REOPEN = GRAPH + textwrap.dedent(
    """
    import json, sys
    import anyio
    from surreal_store import Store
    from surreal_store.langgraph import SurrealCheckpointSaver


    async def main() -> None:
        async with Store(sys.argv[1]) as store:
            graph = build(SurrealCheckpointSaver(store))
            main_cfg = {"configurable": {"thread_id": "t1"}}
            state = await graph.aget_state(main_cfg)
            history = [s async for s in graph.aget_state_history(main_cfg)]
            fork_cfg = json.loads(sys.argv[2])
            fork = await graph.aget_state(fork_cfg)
            print(json.dumps({
                "values": state.values,
                "next": list(state.next),
                "history": len(history),
                "fork_values": fork.values,
            }))


    anyio.run(main, backend="asyncio")
    """
)


async def _scenario(checkpointer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Loop, interrupt, resume, then fork from the checkpoint after the first step; returns
    what a user sees (every state of the thread's history, newest first) and the fork's
    config."""
    from langgraph.types import Command

    graph = _graph_module()["build"](checkpointer)
    cfg = {"configurable": {"thread_id": "t1"}}
    seen: dict[str, Any] = {}
    # Runs the loop three times, then stops at the interrupt in review.
    out = await graph.ainvoke({"count": 0, "log": [], "approved": ""}, cfg)
    seen["paused"] = {k: v for k, v in out.items() if k != "__interrupt__"}
    paused = await graph.aget_state(cfg)
    seen["paused_next"] = list(paused.next)
    seen["interrupt"] = paused.tasks[0].interrupts[0].value
    # Resume: the pending interrupt is answered from the stored writes.
    seen["done"] = await graph.ainvoke(Command(resume="yes"), cfg)
    history = [s async for s in graph.aget_state_history(cfg)]
    # Time travel: fork from the checkpoint taken after the first step.
    first = next(h for h in history if h.values.get("count") == 1 and h.next == ("step",))
    fork_cfg = await graph.aupdate_state(first.config, {"count": 10})
    forked = await graph.ainvoke(None, fork_cfg)
    seen["forked"] = {k: v for k, v in forked.items() if k != "__interrupt__"}
    seen["history"] = [
        [h.values, list(h.next), h.metadata.get("step") if h.metadata else None]
        async for h in graph.aget_state_history(cfg)
    ]
    return seen, {"configurable": dict(history[0].config["configurable"])}


async def test_a_real_graph_runs_as_on_langgraphs_own_saver_and_reopens(kv_url: str) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    expected, _ = await _scenario(InMemorySaver())
    async with Store(kv_url) as store:
        seen, main_line = await _scenario(SurrealCheckpointSaver(store))
    assert seen == expected
    assert seen["done"]["log"] == ["step 1", "step 2", "step 3", "review: yes"]
    assert seen["forked"] == {"count": 10, "log": ["step 1"], "approved": ""}
    # A new process reopens the store: the thread, its history and the main line's end.
    script = Path(kv_url.removeprefix("surrealkv://")).parent / "reopen.py"
    script.write_text(REOPEN)
    with anyio.fail_after(120):
        proc = await anyio.run_process(
            [sys.executable, str(script), kv_url, json.dumps(main_line)], check=False
        )
    assert proc.returncode == 0, proc.stderr.decode()
    reopened = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert reopened["values"] == seen["forked"]
    assert reopened["next"] == ["review"]
    assert reopened["history"] == len(seen["history"])
    assert reopened["fork_values"] == seen["done"]


async def _put(saver: SurrealCheckpointSaver, thread: str, values: dict[str, Any],
               versions: dict[str, int], new: dict[str, int], parent: RunnableConfig | None = None,
               ns: str = "") -> RunnableConfig:  # fmt: skip
    cp = empty_checkpoint()
    cp["channel_values"] = values
    cp["channel_versions"] = dict(versions)
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if parent is not None:
        conf["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    return await saver.aput({"configurable": conf}, cp, {"source": "loop", "step": 0}, dict(new))


async def _count(store: Store, table: str) -> int:
    return len(await store.query(f"SELECT VALUE id FROM {table};", object))


async def test_channel_values_are_stored_once_and_collected(store: Store) -> None:
    saver = SurrealCheckpointSaver(store)
    big = {"text": "x" * 10_000}
    c1 = await _put(saver, "a", {"doc": big, "n": 1}, {"doc": 1, "n": 1}, {"doc": 1, "n": 1})
    # doc unchanged: only n is written again.
    await _put(saver, "a", {"doc": big, "n": 2}, {"doc": 1, "n": 2}, {"n": 2}, parent=c1)
    assert await _count(store, "lg_blob") == 3
    # The same content in another thread is the same blob.
    await _put(saver, "b", {"doc": big}, {"doc": 1}, {"doc": 1})
    assert await _count(store, "lg_blob") == 3
    await saver.acopy_thread("a", "c")
    assert await _count(store, "lg_blob") == 3
    copied = await saver.aget_tuple({"configurable": {"thread_id": "c", "checkpoint_ns": ""}})
    assert copied is not None and copied.checkpoint["channel_values"] == {"doc": big, "n": 2}
    await saver.adelete_thread("a")
    assert await saver.aget_tuple({"configurable": {"thread_id": "a"}}) is None
    assert await _count(store, "lg_blob") == 3  # c and b still use them
    await saver.aprune(["c"], strategy="keep_latest")
    assert await _count(store, "lg_blob") == 2  # n=1 was only in c's pruned checkpoint
    await saver.adelete_thread("c")
    await saver.adelete_thread("b")
    for table in ("lg_blob", "lg_version", "lg_checkpoint", "lg_write"):
        assert await _count(store, table) == 0, table


async def test_a_memory_can_cite_a_checkpoint(store: Store) -> None:
    saver = SurrealCheckpointSaver(store)
    cfg = await _put(saver, "chat-1", {"messages": ["I prefer tea"]}, {"messages": 1},
                     {"messages": 1})  # fmt: skip
    source = provenance.GraphCheckpoint(
        thread_id="chat-1", checkpoint_id=cfg["configurable"]["checkpoint_id"]
    )
    m = await memory.remember(store, content="the user prefers tea", provenance=[source])
    d = await provenance.record_decision(
        store, task="reply", action="offer tea", confidence=0.9, used=[m.id]
    )
    why = await provenance.why(store, decision=d.id)
    [node] = why.of_kind("checkpoint")
    assert node.id in why.roots
    assert node.data["thread_id"] == "chat-1"
    assert "data" not in node.data and "metadata_data" not in node.data
    assert (await provenance.impact(store, source=source)).memories == [m.id]
    # Deleting the thread hides the checkpoint from LangGraph but keeps the memory's source.
    await saver.adelete_thread("chat-1")
    assert await saver.aget_tuple({"configurable": {"thread_id": "chat-1"}}) is None
    assert [t async for t in saver.alist({"configurable": {"thread_id": "chat-1"}})] == []
    lineage = await provenance.lineage(store, memory=m.id)
    assert [n.id for n in lineage.of_kind("checkpoint")] == [node.id]
    # Distrusting the checkpoint hides what came from it.
    receipt = await provenance.invalidate(store, source=source, reason="bad tool output")
    assert receipt.memories == [m.id]
    assert (await memory.get(store, memory=m.id)).invalidated


async def test_a_missing_checkpoint_cannot_be_cited(store: Store) -> None:
    source = provenance.GraphCheckpoint(thread_id="nope", checkpoint_id="nope")
    with pytest.raises(Exception, match="does not exist"):
        await memory.remember(store, content="x", provenance=[source])
    assert await _count(store, "memory") == 0


async def test_sync_methods_run_from_another_thread(store: Store) -> None:
    build = _graph_module()["build"]
    saver = SurrealCheckpointSaver(store)
    graph = build(saver)
    cfg: RunnableConfig = {"configurable": {"thread_id": "sync"}}

    def run() -> Any:
        return graph.invoke({"count": 0, "log": [], "approved": ""}, cfg)

    out = await anyio.to_thread.run_sync(run)
    assert out["count"] == 3
    assert (await graph.aget_state(cfg)).next == ("review",)
    # On the store's own loop a sync call would wait on itself: refused, not hung.
    with pytest.raises(StoreStateError, match="own event loop"):
        saver.get_tuple(cfg)


def test_a_saver_made_without_a_loop_says_so() -> None:
    async def make() -> SurrealCheckpointSaver:
        async with Store("mem://") as store:
            return SurrealCheckpointSaver(store)

    saver = anyio.run(make, backend="asyncio")
    result: list[BaseException] = []

    def call() -> None:
        try:
            saver.get_tuple({"configurable": {"thread_id": "x"}})
        except BaseException as exc:
            result.append(exc)

    t = threading.Thread(target=call)
    t.start()
    t.join(10)
    assert result and isinstance(result[0], StoreStateError | RuntimeError)


async def test_from_url_opens_and_closes_its_store(kv_url: str) -> None:
    async with SurrealCheckpointSaver.from_url(kv_url) as saver:
        await _put(saver, "t", {"a": 1}, {"a": 1}, {"a": 1})
        store = saver.store
    assert store.state is StoreState.CLOSED
    async with SurrealCheckpointSaver.from_url(kv_url) as saver:
        found = await saver.aget_tuple({"configurable": {"thread_id": "t"}})
        assert found is not None and found.checkpoint["channel_values"] == {"a": 1}


@pytest.mark.parametrize(
    "config",
    [
        None,
        {},
        {"configurable": None},
        {"configurable": {}},
        {"configurable": {"thread_id": ["x"]}},
        {"configurable": {"thread_id": ""}},
        {"configurable": {"thread_id": "t", "checkpoint_ns": 5}},
        {"configurable": {"thread_id": "t", "checkpoint_ns": "x" * 2000}},
        {"configurable": {"thread_id": "\ud800"}},
        {"configurable": {"thread_id": "t", "checkpoint_id": 7}},
    ],
)
async def test_bad_configs_are_refused_and_write_nothing(store: Store, config: Any) -> None:
    saver = SurrealCheckpointSaver(store)
    with pytest.raises(ValidationError):
        await saver.aput(config, empty_checkpoint(), {}, {})
    with pytest.raises(ValidationError):
        await saver.aget_tuple(config)
    assert await _count(store, "lg_checkpoint") == 0


async def test_values_the_serializer_refuses_are_validation_errors(store: Store) -> None:
    saver = SurrealCheckpointSaver(store)
    cfg = await _put(saver, "t", {"a": 1}, {"a": 1}, {"a": 1})
    with pytest.raises(ValidationError, match="serial"):
        await saver.aput_writes(cfg, [("a", object())], "task")
    with pytest.raises(ValidationError, match="serial"):
        await _put(saver, "t", {"a": object()}, {"a": 2}, {"a": 2}, parent=cfg)
    cp = empty_checkpoint()
    with pytest.raises(ValidationError, match="serial"):
        await saver.aput(cfg, cp, {"source": object()}, {})  # type: ignore[typeddict-item]
    assert await _count(store, "lg_write") == 0
    assert await _count(store, "lg_checkpoint") == 1


async def test_bad_arguments_are_refused(store: Store) -> None:
    saver = SurrealCheckpointSaver(store)
    cfg = await _put(saver, "t", {"a": 1}, {"a": 1}, {"a": 1})
    with pytest.raises(ValidationError, match="checkpoint_id"):
        await saver.aput_writes({"configurable": {"thread_id": "t"}}, [("a", 1)], "task")
    with pytest.raises(ValidationError):
        await saver.aput_writes(cfg, [(5, 1)], "task")  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        await saver.aput(cfg, {"id": 5}, {}, {})  # type: ignore[typeddict-item]
    with pytest.raises(ValidationError):
        await saver.adelete_thread(None)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await saver.aprune("t")
    with pytest.raises(ValidationError, match="strategy"):
        await saver.aprune(["t"], strategy="most")
    with pytest.raises(ValidationError):
        await saver.adelete_for_runs("run")
    with pytest.raises(ValidationError):
        [t async for t in saver.alist(cfg, filter=[("a", 1)])]  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        [t async for t in saver.alist(cfg, limit="3")]  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        SurrealCheckpointSaver("mem://")  # type: ignore[arg-type]
    assert await _count(store, "lg_write") == 0
    assert await _count(store, "lg_checkpoint") == 1


async def test_hostile_thread_ids_stay_apart(store: Store) -> None:
    saver = SurrealCheckpointSaver(store)
    names = ["foo", "foobar", "fo%", "foo\x00", "fo\u043e", "", "ns"]
    for i, name in enumerate(n for n in names if n):
        await _put(saver, name, {"i": i}, {"i": 1}, {"i": 1})
        await _put(saver, "foo", {"i": 100 + i}, {"i": 1}, {"i": 1}, ns=name)
    for i, name in enumerate(n for n in names if n):
        found = [t async for t in saver.alist({"configurable": {"thread_id": name}})]
        if name == "foo":
            assert len(found) == 1 + len([n for n in names if n])
        else:
            assert [t.checkpoint["channel_values"]["i"] for t in found] == [i]
    only = [
        t async for t in saver.alist({"configurable": {"thread_id": "foo", "checkpoint_ns": "foo"}})
    ]
    assert [t.checkpoint["channel_values"]["i"] for t in only] == [100]


async def test_checkpoints_travel_in_a_bundle(store: Store, tmp_path: Path) -> None:
    from surreal_store import bundles

    saver = SurrealCheckpointSaver(store)
    c1 = await _put(saver, "t", {"doc": {"b": b"\x00\xff"}, "n": 1}, {"doc": 1, "n": 1},
                    {"doc": 1, "n": 1})  # fmt: skip
    c2 = await _put(saver, "t", {"doc": {"b": b"\x00\xff"}, "n": 2}, {"doc": 1, "n": 2}, {"n": 2},
                    parent=c1, ns="sub")  # fmt: skip
    await saver.aput_writes(c2, [("n", 3)], "task-1", "path")
    before = [t async for t in saver.alist(None)]
    await bundles.export_bundle(store, tmp_path / "b")
    async with Store("mem://") as other:
        await bundles.import_bundle(other, tmp_path / "b")
        after = [t async for t in SurrealCheckpointSaver(other).alist(None)]
    assert after == before
    assert [len(t.pending_writes or []) for t in after] == [1, 0]


async def test_concurrent_writes_are_all_kept(store: Store) -> None:
    # LangGraph runs a super-step's tasks concurrently: their put_writes overlap.
    saver = SurrealCheckpointSaver(store)
    cfg = await _put(saver, "t", {"a": 1}, {"a": 1}, {"a": 1})
    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(saver.aput_writes, cfg, [("a", i), ("b", -i)], f"task-{i:02d}")
    found = await saver.aget_tuple(cfg)
    assert found is not None
    assert sorted(found.pending_writes or []) == sorted(
        [(f"task-{i:02d}", "a", i) for i in range(40)]
        + [(f"task-{i:02d}", "b", -i) for i in range(40)]
    )


class FanState(TypedDict):
    seen: Annotated[list[str], operator.add]


async def test_a_parallel_fan_out_runs_as_on_langgraphs_own_saver(store: Store) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    def node(name: str) -> Any:
        async def run(state: FanState) -> dict[str, list[str]]:
            await anyio.lowlevel.checkpoint()
            return {"seen": [name]}

        return run

    def build(checkpointer: Any) -> Any:
        g = StateGraph(FanState)
        for name in ("a", "b", "c", "d"):
            g.add_node(name, node(name))
            g.add_edge(START, name)
            g.add_edge(name, "join")
        g.add_node("join", node("join"))
        g.add_edge("join", END)
        return g.compile(checkpointer=checkpointer)

    async def run(checkpointer: Any) -> list[Any]:
        graph = build(checkpointer)
        cfg: RunnableConfig = {"configurable": {"thread_id": "fan"}}
        for _ in range(3):
            await graph.ainvoke({"seen": []}, cfg)
        return [[sorted(h.values.get("seen", [])), list(h.next)]
                async for h in graph.aget_state_history(cfg)]  # fmt: skip

    assert await run(SurrealCheckpointSaver(store)) == await run(InMemorySaver())


_hostile_text = hostile_texts("a" * 2000, "'; DELETE lg_checkpoint; --", "$t")
_hostile = hostile_values(_hostile_text, st.just(len))
_configs = st.one_of(
    _hostile,
    st.fixed_dictionaries(
        {"configurable": st.dictionaries(
            st.sampled_from(["thread_id", "checkpoint_ns", "checkpoint_id"]), _hostile,
            max_size=3,
        )}
    ),
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(config=_configs, other=_hostile, text=_hostile)
def test_hostile_values_leave_only_store_errors(
    config: Any, other: Any, text: Any, tmp_path: Path
) -> None:
    async def walk() -> None:
        async with Store("mem://") as store:
            saver = SurrealCheckpointSaver(store)
            valid = await _put(saver, "t", {"a": 1}, {"a": 1}, {"a": 1})
            calls: list[Callable[[], Awaitable[object]]] = [
                lambda: saver.aput_writes(valid, [(text, other)], text),
                lambda: saver.aput_writes(valid, other, "task"),
                lambda: saver.aput(valid, empty_checkpoint(), other, {}),
                lambda: saver.aput(valid, empty_checkpoint(), {}, other),
                lambda: _drain(saver.alist(valid, filter=other, limit=other)),
                lambda: saver.aput(config, empty_checkpoint(), {"k": other}, {}),  # type: ignore[typeddict-unknown-key]
                lambda: saver.aput(config, other, {}, {}),
                lambda: saver.aput_writes(config, [(text, other)], text),
                lambda: saver.aget_tuple(config),
                lambda: _drain(saver.alist(config, filter=other, before=config, limit=other)),
                lambda: saver.adelete_thread(text),
                lambda: saver.adelete_for_runs(other),
                lambda: saver.acopy_thread(text, text),
                lambda: saver.aprune(other, strategy=text),
            ]
            for call in calls:
                with contextlib.suppress(StoreError):
                    await call()
            # Whatever was refused, what was accepted reads back.
            await _drain(saver.alist(None))

    anyio.run(walk, backend="asyncio")


async def _drain(it: Any) -> None:
    async for _ in it:
        pass


def test_from_url_sync_serves_a_synchronous_graph(tmp_path: Path) -> None:
    build = _graph_module()["build"]
    url = f"surrealkv://{tmp_path / 'sync'}"
    cfg: RunnableConfig = {"configurable": {"thread_id": "s"}}
    with SurrealCheckpointSaver.from_url_sync(url) as saver:
        graph = build(saver)
        assert graph.invoke({"count": 0, "log": [], "approved": ""}, cfg)["count"] == 3
        assert graph.get_state(cfg).next == ("review",)
        n = len(list(graph.get_state_history(cfg)))
    # Closed on exit: the next open (same process) finds the thread as it was left.
    with SurrealCheckpointSaver.from_url_sync(url) as saver:
        graph = build(saver)
        assert graph.get_state(cfg).values["count"] == 3
        assert len(list(graph.get_state_history(cfg))) == n
    with pytest.raises(StoreError), SurrealCheckpointSaver.from_url_sync("nope://x"):
        pass


async def test_a_missing_blob_leaves_its_channel_out(store: Store) -> None:
    # Only raw SurrealQL can do this; the saver reads on, as LangGraph's own savers do.
    saver = SurrealCheckpointSaver(store)
    cfg = await _put(saver, "t", {"a": "kept", "b": "lost"}, {"a": 1, "b": 1}, {"a": 1, "b": 1})
    await store.execute("DELETE lg_blob WHERE type = 'msgpack' AND data = $d;",
                        d=saver.serde.dumps_typed("lost")[1])  # fmt: skip
    for found in [await saver.aget_tuple(cfg), *[t async for t in saver.alist(cfg)]]:
        assert found is not None
        assert found.checkpoint["channel_values"] == {"a": "kept"}
