"""SurrealStore beyond LangGraph's ported tests: a differential state machine against
LangGraph's InMemoryStore, namespaces segment by segment on every path, provenance of items,
persistence, a graph using the store, and bad input.

What "the same" means in the differential test:

- ``get``: both ``None``, or the same namespace, key and value;
- a search without a query: the same items (namespace, key, value) as a set; pages (limit,
  offset) hold as many items in both (the order of an unscored search is ours: newest first,
  InMemoryStore's is its dict's);
- a search with a query: the items scored above the page's last score (plus 1e-6) are the
  same, with scores equal within 1e-6; the page is as long; items tied at its edge may differ;
- ``list_namespaces``: the same list.

Two faults of InMemoryStore are corrected in the reference, not copied: it lists a namespace
whose items were all deleted (deleting a key leaves an empty entry in its dict), and a put with
``index=False`` leaves the replaced value's vector in place, so search still scores the item.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, TypedDict

import pytest
from _server import server_database
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

pytest.importorskip("langgraph.store.base")

from _fakes import FakeEmbedder
from langchain_core.embeddings import Embeddings
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from surreal_store import (
    DimensionError,
    EmbeddingSpaceError,
    QueryError,
    Store,
    StoreError,
    ValidationError,
    memory,
    provenance,
)
from surreal_store.langgraph import ITEM_KIND, NamespaceError, SurrealStore

pytestmark = pytest.mark.anyio


EMBED = FakeEmbedder("chars", 16, by="chars")
INDEX: Any = {"dims": EMBED.dims, "embed": EMBED, "fields": ["text"]}


@pytest.fixture(scope="module")
def shared() -> Iterator[SurrealStore]:
    with SurrealStore.from_url_sync("mem://", index=INDEX) as lg:
        yield lg


def _run(lg: SurrealStore, coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, lg._loop).result()  # type: ignore[arg-type]


# -- the differential state machine ----------------------------------------------------------

LABELS = ["a", "ab", "b", "a b", "é"]
namespaces = st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(tuple)
keys = st.sampled_from(["k1", "k2", "k3", "k.4"])
texts = st.text(alphabet="abcdexyz ", min_size=1, max_size=12).filter(lambda t: t.strip() != "")
values = st.fixed_dictionaries(
    {"text": texts, "n": st.integers(0, 5), "s": st.sampled_from(["a", "b", "c"])},
    optional={
        "opt": st.one_of(st.none(), st.integers(0, 2), st.just("x")),
        "nested": st.fixed_dictionaries({"k": st.integers(0, 2)}),
        "list": st.lists(st.integers(0, 2), max_size=2),
    },
)
filters = st.one_of(
    st.none(),
    st.fixed_dictionaries({"s": st.sampled_from(["a", "b", "z"])}),
    st.builds(
        lambda op, v: {"n": {op: v}},
        st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
        st.integers(-1, 6),
    ),
    st.builds(lambda v: {"s": {"$ne": v}}, st.sampled_from(["a", "b"])),
    st.builds(lambda v: {"opt": v}, st.one_of(st.none(), st.integers(0, 2), st.just("x"))),
    st.builds(lambda v: {"nested": {"k": v}}, st.integers(0, 2)),
    st.builds(lambda v: {"list": v}, st.lists(st.integers(0, 2), max_size=2)),
    st.builds(
        lambda a, b: {"s": a, "n": {"$lte": b}}, st.sampled_from(["a", "b"]), st.integers(0, 5)
    ),
)
SEQUENCES = 0
STEPS = 0


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _key(item: Any) -> tuple[tuple[str, ...], str]:
    return tuple(item.namespace), item.key


def server_kwargs() -> dict[str, Any]:
    """A fresh database on the server at SURREAL_STORE_TEST_URL (the test skips without)."""
    return server_database("lgs_")


class Differential(RuleBasedStateMachine):
    # One store for every sequence of a test (opening one costs more than a sequence's
    # operations); each sequence starts from it emptied through the API, as a fresh store.
    shared: ClassVar[SurrealStore]

    def __init__(self) -> None:
        super().__init__()
        global SEQUENCES
        SEQUENCES += 1
        self.ref = InMemoryStore(index=INDEX)
        self.lg = self.shared
        left = self.lg.search((), limit=100)  # a sequence puts at most 15
        self.lg.batch([PutOp(tuple(i.namespace), i.key, None) for i in left])
        assert self.lg.search((), limit=1) == [] and self.lg.list_namespaces() == []

    def _both(self, op: Any) -> tuple[Any, Any]:
        global STEPS
        STEPS += 1
        return self.ref.batch([op])[0], self.lg.batch([op])[0]

    @rule(ns=namespaces, key=keys, value=values, index=st.sampled_from([None, None, False]))
    def put(self, ns: tuple[str, ...], key: str, value: dict[str, Any], index: Any) -> None:
        self._both(PutOp(ns, key, value, index=index))
        if index is False:  # InMemoryStore would keep scoring the value this one replaced
            self.ref._vectors[ns].pop(key, None)

    @rule(ns=namespaces, key=keys)
    def delete(self, ns: tuple[str, ...], key: str) -> None:
        self._both(PutOp(ns, key, None))

    @rule(ns=namespaces, key=keys)
    def get(self, ns: tuple[str, ...], key: str) -> None:
        ref, ours = self._both(GetOp(ns, key))
        if ref is None:
            assert ours is None
        else:
            assert ours is not None
            assert (_key(ours), ours.value) == (_key(ref), ref.value)

    @rule(
        prefix=st.lists(st.sampled_from(LABELS), max_size=2).map(tuple),
        flt=filters,
        limit=st.sampled_from([1, 3, 100]),
        offset=st.sampled_from([0, 0, 2]),
    )
    def search(self, prefix: tuple[str, ...], flt: Any, limit: int, offset: int) -> None:
        ref, ours = self._both(SearchOp(prefix, flt, limit, offset))
        assert len(ours) == len(ref)
        if limit == 100 and offset == 0:
            assert {(_key(i), _json(i.value)) for i in ours} == {
                (_key(i), _json(i.value)) for i in ref
            }

    @rule(
        prefix=st.lists(st.sampled_from(LABELS), max_size=2).map(tuple),
        flt=filters,
        query=texts,
        limit=st.sampled_from([1, 2, 5, 100]),
    )
    def query(self, prefix: tuple[str, ...], flt: Any, query: str, limit: int) -> None:
        ref, ours = self._both(SearchOp(prefix, flt, limit, 0, query))
        assert len(ours) == len(ref)
        scored_ref = [i for i in ref if i.score is not None]
        scored_ours = [i for i in ours if i.score is not None]
        assert len(scored_ours) == len(scored_ref)
        if not scored_ref:
            if len(ref) < limit:
                assert {_key(i) for i in ours} == {_key(i) for i in ref}
            return
        edge = min(i.score for i in scored_ref)
        above_ref = {_key(i): i.score for i in scored_ref if i.score > edge + 1e-6}
        mine = {_key(i): i.score for i in scored_ours}
        for k, score in above_ref.items():
            assert k in mine, (k, above_ref, mine)
            assert mine[k] == pytest.approx(score, abs=1e-6)
        for i in ours:
            if i.score is not None:
                assert i.score <= max(s.score for s in scored_ref) + 1e-6
        # Unscored items (index=False) fill the page after the scored ones, in both.
        unscored_ref = {_key(i) for i in ref if i.score is None}
        if len(ref) < limit:
            assert {_key(i) for i in ours if i.score is None} == unscored_ref

    @rule(
        prefix=st.lists(st.sampled_from([*LABELS, "*"]), max_size=2).map(tuple),
        suffix=st.lists(st.sampled_from([*LABELS, "*"]), max_size=2).map(tuple),
        depth=st.sampled_from([None, 1, 2]),
        limit=st.sampled_from([2, 100]),
        offset=st.sampled_from([0, 1]),
    )
    def list_namespaces(
        self,
        prefix: tuple[str, ...],
        suffix: tuple[str, ...],
        depth: Any,
        limit: int,
        offset: int,
    ) -> None:
        kwargs = {
            "prefix": prefix or None,
            "suffix": suffix or None,
            "max_depth": depth,
            "limit": limit,
            "offset": offset,
        }
        global STEPS
        STEPS += 1
        for ns in [ns for ns, items in self.ref._data.items() if not items]:  # see the top
            del self.ref._data[ns]
        assert self.lg.list_namespaces(**kwargs) == self.ref.list_namespaces(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["mem", "server"])
def test_differential_against_in_memory_store(engine: str) -> None:
    global STEPS
    where = server_kwargs() if engine == "server" else {"url": "mem://"}
    sequences = 200 if engine == "mem" else 30  # a server's round trips cost more
    before, STEPS = SEQUENCES, 0
    with SurrealStore.from_url_sync(index=INDEX, **where) as Differential.shared:
        run_state_machine_as_test(
            Differential,
            settings=settings(
                max_examples=sequences,
                stateful_step_count=15,
                deadline=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            ),
        )
    assert SEQUENCES - before >= sequences, SEQUENCES - before
    print(f"differential: {SEQUENCES - before} sequences, {STEPS} operations, 0 divergences")


# -- namespaces, segment by segment -----------------------------------------------------------


@pytest.fixture
def lg(tmp_path: Path) -> Iterator[SurrealStore]:
    with SurrealStore.from_url_sync(f"surrealkv://{tmp_path / 'kv'}", index=INDEX) as store:
        yield store


def test_a_prefix_never_matches_part_of_a_label(lg: SurrealStore) -> None:
    look_alikes = [
        *[("foo",), ("foobar",), ("fo",), ("foo", "x"), ("foo ",), ("Foo",), ("fo%",)],
        *[("foo-",), ("foo/",), ("foo\u200b",), ("ｆｏｏ",), ("fo\u00f6",), ("foo\U0001f600",)],
        *[("foo", "*"), ("*",), ("foo\n",)],
    ]
    for ns in look_alikes:
        lg.put(ns, "k", {"text": "same words"})
    for prefix in look_alikes:
        expected = {ns for ns in look_alikes if ns[: len(prefix)] == prefix}
        scan = {i.namespace for i in lg.search(prefix, limit=100)}
        recalled = {i.namespace for i in lg.search(prefix, query="same words", limit=100)}
        assert scan == recalled == expected, prefix
        # Listing reads "*" as any one label, as LangGraph defines it; search reads it as is.
        wild = {
            ns
            for ns in look_alikes
            if len(ns) >= len(prefix)
            and all(p in ("*", n) for n, p in zip(ns, prefix, strict=False))
        }
        assert set(lg.list_namespaces(prefix=prefix, limit=100)) == wild, prefix


async def test_raw_surrealql_cannot_write_a_label_with_a_dot() -> None:
    async with Store("mem://", migrate=True) as store:
        with pytest.raises(QueryError, match="labels"):
            await store.execute(
                "CREATE lg_item:[['foo.bar'], 'k'] SET namespace = ['foo.bar'], "
                "ns_path = 'foo.bar.', key = 'k', value = {};"
            )
        with pytest.raises(QueryError, match="ns_path"):
            await store.execute(
                "CREATE lg_item:[['foo'], 'k'] SET namespace = ['foo'], ns_path = 'fo', "
                "key = 'k', value = {};"
            )


# -- items are memories -----------------------------------------------------------------------


async def test_an_items_provenance_is_a_memorys() -> None:
    async with SurrealStore.from_url("mem://", index=INDEX) as lg:
        await lg.aput(("users", "u1"), "prefs", {"text": "likes green tea"})
        (mid,) = await lg.amemories(("users", "u1"), "prefs")
        await provenance.attach(
            lg.store, memory=mid, sources=[provenance.UserAnnotation(user="ana", note="said")]
        )
        hits = await lg.asearch(("users",), query="green tea")
        assert hits[0].key == "prefs"
        decision = await provenance.record_decision(
            lg.store, task="order", action="tea", confidence=0.9, used=[mid]
        )
        graph = await provenance.why(lg.store, decision=decision.id)
        assert any(n.kind == "memory" and n.id.endswith(mid) for n in graph.nodes.values())
        assert any(n.kind == "annotation" for n in graph.nodes.values()), graph.nodes
        # The memory is an ordinary one, kind langgraph_item, and recall finds it too.
        found = await memory.recall(lg.store, vector=EMBED.embed_query("green tea"), k=1)
        assert found[0].memory.id == mid and found[0].memory.kind == ITEM_KIND
        # The decision cites the memory: an overwrite keeps it, hidden as superseded, and the
        # decision still shows it; search sees only the new value.
        await lg.aput(("users", "u1"), "prefs", {"text": "likes coffee"})
        (new,) = await lg.amemories(("users", "u1"), "prefs")
        assert new != mid
        old = await memory.get(lg.store, memory=mid)
        assert old.invalidated and old.invalidated_reason.startswith("superseded")  # type: ignore[union-attr]
        graph = await provenance.why(lg.store, decision=decision.id)
        assert any(n.id.endswith(mid) for n in graph.nodes.values())
        hits = await lg.asearch(("users",), query="green tea")
        assert [h.value for h in hits] == [{"text": "likes coffee"}]
        # Nothing cites the new memory: a delete removes it.
        await lg.adelete(("users", "u1"), "prefs")
        assert await lg.amemories(("users", "u1"), "prefs") == []
        with pytest.raises(StoreError):
            await memory.get(lg.store, memory=new)
        await memory.restore(lg.store, memory=mid)  # a superseded memory can be restored
        assert not (await memory.get(lg.store, memory=mid)).invalidated


async def test_an_invalidated_items_memory_is_not_searched_and_goes_on_overwrite() -> None:
    async with SurrealStore.from_url("mem://", index=INDEX) as lg:
        await lg.aput(("docs",), "d", {"text": "alpha beta"})
        await lg.aput(("docs",), "e", {"text": "alpha gamma"})
        (mid,) = await lg.amemories(("docs",), "d")
        child = await memory.remember(
            lg.store,
            content="derived",
            provenance=[provenance.MemoryDerivation(parent=mid, how="summarise")],
        )
        await provenance.invalidate(lg.store, memory=mid, reason="wrong")
        assert (await memory.get(lg.store, memory=child.id)).invalidated
        assert [i.key for i in await lg.asearch(("docs",), query="alpha beta")] == ["e"]
        assert (await lg.aget(("docs",), "d")) is not None  # the item itself stays
        # Overwriting forgets the hidden memory first: what derived from it is visible again.
        await lg.aput(("docs",), "d", {"text": "alpha beta"})
        assert not (await memory.get(lg.store, memory=child.id)).invalidated
        assert {i.key for i in await lg.asearch(("docs",), query="alpha beta")} == {"d", "e"}


def test_items_persist_and_are_searched_after_reopening(tmp_path: Path) -> None:
    url = f"surrealkv://{tmp_path / 'kv'}"
    with SurrealStore.from_url_sync(url, index=INDEX) as lg:
        lg.put(("a",), "one", {"text": "red apple", "n": 1})
        lg.put(("a",), "two", {"text": "blue sky", "n": 2}, index=False)
    with SurrealStore.from_url_sync(url, index=INDEX) as lg:
        assert lg.get(("a",), "one").value == {"text": "red apple", "n": 1}  # type: ignore[union-attr]
        hits = lg.search(("a",), query="red apple")
        assert [(h.key, h.score is None) for h in hits] == [("one", False), ("two", True)]


async def test_hybrid_search_mode() -> None:
    async with SurrealStore.from_url("mem://", index=INDEX, search_mode="hybrid") as lg:
        await lg.aput(("d",), "x", {"text": "quantum chromodynamics lecture"})
        await lg.aput(("d",), "y", {"text": "cooking pasta at home"})
        hits = await lg.asearch(("d",), query="chromodynamics")
        assert hits[0].key == "x" and hits[0].score is not None


class State(TypedDict):
    user: str
    reply: str


async def test_a_graph_remembers_through_the_store() -> None:
    from langgraph.graph import END, START, StateGraph
    from langgraph.store.base import BaseStore

    async def answer(state: State, *, store: BaseStore) -> dict[str, str]:
        ns = ("users", state["user"])
        seen = await store.asearch(ns, query="favourite")
        await store.aput(ns, "fav", {"text": "favourite colour is green"})
        return {"reply": seen[0].value["text"] if seen else "new here"}

    builder = StateGraph(State)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    async with SurrealStore.from_url("mem://", index=INDEX) as lg:
        graph = builder.compile(store=lg)
        first = await graph.ainvoke({"user": "u1", "reply": ""})
        second = await graph.ainvoke({"user": "u1", "reply": ""})
        other = await graph.ainvoke({"user": "u10", "reply": ""})
    assert first["reply"] == "new here"
    assert second["reply"] == "favourite colour is green"
    assert other["reply"] == "new here"  # ("users", "u1") is not a prefix of ("users", "u10")


# -- time to live -----------------------------------------------------------------------------


async def test_an_expired_item_is_never_returned_even_before_a_sweep() -> None:
    async with SurrealStore.from_url("mem://", index=INDEX) as lg:
        await lg.aput(("t",), "soon", {"text": "ephemeral note"}, ttl=0.5 / 60)
        await lg.aput(("t",), "kept", {"text": "ephemeral note too"})
        assert await lg.aget(("t",), "soon") is not None
        await asyncio.sleep(0.8)
        assert await lg.aget(("t",), "soon") is None
        assert [i.key for i in await lg.asearch(("t",))] == ["kept"]
        assert [i.key for i in await lg.asearch(("t",), query="ephemeral note")] == ["kept"]
        assert await lg.asweep_ttl() == 1
        assert await lg.asweep_ttl() == 0
        assert await lg.alist_namespaces() == [("t",)]


# -- bad input --------------------------------------------------------------------------------


class _Wrong(Embeddings):
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [1.0, 0.0]


async def test_bad_input_is_refused_and_writes_nothing() -> None:
    async with SurrealStore.from_url("mem://", index=INDEX) as lg:
        await lg.aput(("ok",), "k", {"text": "kept"})
        for ns in [(), ("a.b",), ("a", ""), ("a\x00",), ("a", 3)]:
            with pytest.raises(InvalidNamespaceError):
                await lg.aput(ns, "k", {"text": "x"})  # type: ignore[arg-type]
            with pytest.raises(NamespaceError):
                await lg.abatch([PutOp(ns, "k", {"text": "x"})])  # type: ignore[arg-type]
        bad_ops: list[Any] = [
            PutOp(("ok",), "k", ["not", "a", "dict"]),  # type: ignore[arg-type]
            PutOp(("ok",), "k", {"x": float("nan")}),
            PutOp(("ok",), "k", {"x": object()}),
            PutOp(("ok",), "k", {"text": "y"}, ttl=-1),
            PutOp(("ok",), "k", {"text": "y"}, index="text"),  # type: ignore[arg-type]
            SearchOp(("ok",), {"n": {"$regex": "."}}),
            SearchOp(("ok",), {"n": {"$gt": [1]}}),
            SearchOp(("ok",), {"a..b": 1}),
            SearchOp(("ok",), None, -1),
            SearchOp(("ok",), None, 10, 995, "far"),
            "not an op",
        ]
        for op in bad_ops:
            with pytest.raises(ValidationError):
                await lg.abatch([PutOp(("ok",), "other", {"text": "z"}), op])
        assert await lg.aget(("ok",), "other") is None  # the batch wrote nothing
        assert (await lg.aget(("ok",), "k")).value == {"text": "kept"}  # type: ignore[union-attr]

    async with Store("mem://", migrate=True) as store:
        await SurrealStore(store, index=INDEX).setup()
        wrong = SurrealStore(store, index={"dims": 2, "embed": _Wrong()})
        with pytest.raises(EmbeddingSpaceError):
            await wrong.aput(("x",), "k", {"text": "y"})
        liar = SurrealStore(store, index={"dims": EMBED.dims, "embed": _Wrong()}, model="m2")
        with pytest.raises(EmbeddingSpaceError):
            await liar.aput(("x",), "k", {"text": "y"})
        same_model = SurrealStore(
            store, index={"dims": EMBED.dims, "embed": _Wrong()}, model=EMBED.model
        )
        with pytest.raises(DimensionError):
            await same_model.aput(("x",), "k", {"text": "y"})
        assert await SurrealStore(store).aget(("x",), "k") is None
    with pytest.raises(ValidationError):
        SurrealStore("mem://")  # type: ignore[arg-type]


def test_sync_methods_on_the_stores_own_loop_are_refused() -> None:
    async def main() -> None:
        async with SurrealStore.from_url("mem://") as lg:
            with pytest.raises(StoreError, match="own event loop"):
                lg.put(("a",), "k", {"v": 1})

    asyncio.run(main())


def test_many_threads_and_loops_share_one_background_store(shared: SurrealStore) -> None:
    from _threads import errors_in_threads

    def worker(n: int) -> None:
        async def on_another_loop() -> None:
            await shared.aput(("threads", str(n)), "k", {"text": f"worker {n}"})
            assert (await shared.aget(("threads", str(n)), "k")) is not None

        shared.put(("threads", str(n)), "s", {"text": "sync"})
        asyncio.run(on_another_loop())

    assert not errors_in_threads(worker, 8)
    assert len(shared.search(("threads",), limit=100)) == 16


async def test_items_travel_in_a_bundle(tmp_path: Path) -> None:
    from surreal_store import bundles

    async with SurrealStore.from_url("mem://", index=INDEX) as lg:
        await lg.aput(("a", "b"), "k1", {"text": "red apple", "none": None, "n": [1, 2.5]})
        await lg.aput(("a",), "k2", {"text": "blue sky"}, index=False)
        await lg.aput(("a",), "k3", {"text": "soon gone"}, ttl=60)
        before = await lg.asearch(("a",), query="red apple")
        listed = await lg.alist_namespaces()
        await bundles.export_bundle(lg.store, tmp_path / "b")
    async with Store("mem://", migrate=True) as imported:
        await bundles.import_bundle(imported, tmp_path / "b")
        other = SurrealStore(imported, index=INDEX)
        after = await other.asearch(("a",), query="red apple")
        assert [(i.namespace, i.key, i.value, i.score) for i in after] == [
            (i.namespace, i.key, i.value, i.score) for i in before
        ]
        assert await other.alist_namespaces() == listed
        got = await other.aget(("a", "b"), "k1")
        assert got is not None and got.value == {"text": "red apple", "none": None, "n": [1, 2.5]}
        await other.aput(("a", "b"), "k1", {"text": "green apple"})  # writes go on as before
        assert (await other.asearch(("a", "b"), query="green apple"))[0].value["text"] == (
            "green apple"
        )
