"""SurrealVectorStore beyond LangChain's standard tests: exact round trips, collections apart,
search against brute force (with filters, beside other collections and native memories), MMR
against LangChain's own reference, hybrid and full text, retrievers, provenance of documents,
persistence, and bad input that writes nothing."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import random
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("langchain_core.vectorstores")

from _fakes import FakeEmbedder
from _hostile_values import hostile_texts, hostile_values
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from surreal_store import (
    DimensionError,
    EmbeddingSpaceError,
    QueryError,
    Store,
    StoreError,
    StoreStateError,
    ValidationError,
    memory,
    provenance,
)
from surreal_store.langchain import SurrealVectorStore

pytestmark = pytest.mark.anyio


def Words(dims: int = 64) -> FakeEmbedder:
    """Shared words make texts close."""
    return FakeEmbedder("words", dims)


def Fixed(table: dict[str, list[float]]) -> FakeEmbedder:
    """Vectors given in advance, by text: for brute-force comparisons."""
    return FakeEmbedder("fixed", len(next(iter(table.values()))), table=table)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (
        math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    )


async def _count(store: Store, collection: str) -> int:
    rows = await store.query(
        "SELECT count() AS n FROM lc_document WHERE collection = $c GROUP ALL;", dict, c=collection
    )
    return int(rows[0]["n"]) if rows else 0


async def test_documents_round_trip_exactly(store: Store) -> None:
    vs = SurrealVectorStore(store, Words())
    docs = [
        Document(
            page_content="the user prefers green tea",
            metadata={"n": 1, "f": 2.5, "ok": True, "none": None, "nest": {"a": [1, "é", None]}},
        ),
        Document(page_content="", metadata={}),
        Document(
            page_content="漢字 and emoji 🙂", metadata={"big": 2**62, "neg": -0.0}, id="given"
        ),
    ]
    ids = await vs.aadd_documents(docs)
    assert ids[2] == "given" and len(set(ids)) == 3
    assert docs[0].id is None  # the caller's documents are not changed
    got = await vs.aget_by_ids([ids[2], "missing", ids[0], ids[1]])
    assert got == [
        Document(id=ids[2], page_content=docs[2].page_content, metadata=docs[2].metadata),
        Document(id=ids[0], page_content=docs[0].page_content, metadata=docs[0].metadata),
        Document(id=ids[1], page_content="", metadata={}),
    ]
    found = await vs.asimilarity_search("green tea", k=1)
    assert found == [got[1]]


async def test_overwrite_duplicates_and_delete(store: Store) -> None:
    vs = SurrealVectorStore(store, Words())
    await vs.aadd_texts(["alpha one", "beta two"], [{"v": 1}, {"v": 2}], ids=["a", "b"])
    old = await vs.amemory_id("a")
    # One id twice in one call: the last one wins; ids come back as given.
    ids = await vs.aadd_texts(["alpha three", "alpha four"], [{"v": 3}, {"v": 4}], ids=["a", "a"])
    assert ids == ["a", "a"]
    assert await vs.aget_by_ids(["a"]) == [
        Document(id="a", page_content="alpha four", metadata={"v": 4})
    ]
    new = await vs.amemory_id("a")
    assert new != old
    with pytest.raises(StoreError):  # the replaced memory is gone (nothing cited it)
        await memory.get(store, memory=old or "")
    hits = await vs.asimilarity_search("alpha", k=10)
    assert sorted(d.page_content for d in hits) == ["alpha four", "beta two"]
    # The same content again under the same id: replaced, not refused.
    await vs.aadd_texts(["alpha four"], [{"v": 5}], ids=["a"])
    assert (await vs.aget_by_ids(["a"]))[0].metadata == {"v": 5}
    assert await vs.adelete(["a", "missing"]) is True
    assert await vs.aget_by_ids(["a", "b"]) == [
        Document(id="b", page_content="beta two", metadata={"v": 2})
    ]
    assert await vs.adelete([]) is True
    rows = await store.query("SELECT count() AS n FROM memory GROUP ALL;", dict)
    assert rows[0]["n"] == 1  # one document, one memory: nothing left behind


async def test_collections_are_apart(store: Store) -> None:
    names = ["a", "ab", "a b", "é", "a.b", "A"]
    stores = {n: SurrealVectorStore(store, Words(), collection=n) for n in names}
    for n, vs in stores.items():
        await vs.aadd_texts([f"shared text {n}", "shared text"], ids=["1", "2"])
    await memory.remember(store, content="shared text", embedding=Words().embed_query("shared"))
    for n, vs in stores.items():
        hits = await vs.asimilarity_search("shared text", k=10)
        assert sorted(d.page_content for d in hits) == sorted([f"shared text {n}", "shared text"])
        assert {d.id for d in hits} == {"1", "2"}
        full = await vs.asimilarity_search("shared text", k=10, mode="fulltext")
        assert len(full) == 2
    await stores["a"].adelete()  # the whole collection, and only it
    assert await stores["a"].asimilarity_search("shared", k=5) == []
    for n in names[1:]:
        assert await _count(store, n) == 2
        assert len(await stores[n].aget_by_ids(["1", "2"])) == 2


@pytest.mark.parametrize("mix", [False, True], ids=["alone", "beside-others"])
async def test_vector_search_matches_brute_force(store: Store, mix: bool) -> None:
    rng = random.Random(7)
    dims, n = 24, 400
    table = {f"doc {i}": [rng.gauss(0, 1) for _ in range(dims)] for i in range(n)}
    queries = {f"query {i}": [rng.gauss(0, 1) for _ in range(dims)] for i in range(8)}
    vs = SurrealVectorStore(store, Fixed({**table, **queries}), collection="main")
    metas = [{"i": i, "group": i % 100, "even": i % 2 == 0} for i in range(n)]
    await vs.aadd_texts(list(table), metas, ids=[str(i) for i in range(n)])
    if mix:  # another collection and native memories, nearer than anything: never returned
        other = SurrealVectorStore(store, Fixed({**table, **queries}), collection="other")
        await other.aadd_texts(list(queries), ids=list(queries))
        await memory.remember_many(
            store, [memory.NewMemory(content=q, embedding=v) for q, v in queries.items()]
        )
    for q, qv in queries.items():
        exact = sorted(range(n), key=lambda i: -_cos(qv, table[f"doc {i}"]))
        scored = await vs.asimilarity_search_with_score(q, k=10)
        assert [d.id for d, _ in scored] == [str(i) for i in exact[:10]]
        for (_, score), i in zip(scored, exact, strict=False):
            assert score == pytest.approx(_cos(qv, table[f"doc {i}"]), abs=1e-6)
        # A filter admitting 1% of the documents loses none of them.
        got = await vs.asimilarity_search(q, k=10, filter={"metadata": {"group": 3}})
        admitted = [i for i in exact if i % 100 == 3]
        assert [d.id for d in got] == [str(i) for i in admitted]
        got = await vs.asimilarity_search(
            q, k=5, filter={"metadata": {"even": True, "i": {"$lt": 100}}}
        )
        admitted = [i for i in exact if i % 2 == 0 and i < 100]
        assert [d.id for d in got] == [str(i) for i in admitted[:5]]


async def test_mmr_matches_langchain_reference(store: Store) -> None:
    pytest.importorskip("numpy")
    rng = random.Random(11)
    dims = 16
    table = {f"d{i}": [rng.gauss(0, 1) for _ in range(dims)] for i in range(60)}
    table["q"] = [rng.gauss(0, 1) for _ in range(dims)]
    vs = SurrealVectorStore(store, Fixed(table))
    docs = [t for t in table if t != "q"]
    await vs.aadd_texts(docs, ids=docs)
    for lam in (0.0, 0.25, 0.5, 1.0):
        got = await vs.amax_marginal_relevance_search("q", k=6, fetch_k=20, lambda_mult=lam)
        fetched = await vs.asimilarity_search("q", k=20)
        picks = maximal_marginal_relevance(
            __import__("numpy").array(table["q"]),
            [table[d.id or ""] for d in fetched],
            k=6,
            lambda_mult=lam,
        )
        assert [d.id for d in got] == [fetched[i].id for i in picks], lam
    sync_free = await vs.amax_marginal_relevance_search_by_vector(table["q"], k=3)
    assert len(sync_free) == 3


async def test_filters(store: Store) -> None:
    vs = SurrealVectorStore(store, Words(), kind="doc", tags=["kb"])
    before = dt.datetime.now(dt.UTC)
    ids = await vs.aadd_texts(
        ["red apples", "green apples", "red cars"],
        [{"c": "red", "n": 1}, {"c": "green", "n": 2}, {"c": "red", "n": 3}],
    )
    found = await vs.asimilarity_search("apples", k=5, filter={"metadata": {"c": "red"}})
    assert {d.page_content for d in found} == {"red apples", "red cars"}
    found = await vs.asimilarity_search("apples", k=5, filter={"metadata": {"n": {"$gte": 2}}})
    assert {d.page_content for d in found} == {"green apples", "red cars"}
    assert len(await vs.asimilarity_search("x", k=5, filter={"kind": "doc", "tags": ["kb"]})) == 3
    assert await vs.asimilarity_search("x", k=5, filter={"kind": "note"}) == []
    assert await vs.asimilarity_search("x", k=5, filter={"tags": ["other"]}) == []
    after = {"created_after": before.isoformat()}
    assert len(await vs.asimilarity_search("x", k=5, filter=after)) == 3
    assert await vs.asimilarity_search("x", k=5, filter={"created_before": before}) == []
    # A hidden document is left out, unless asked for.
    mid = await vs.amemory_id(ids[0])
    await memory.invalidate(store, memory=mid or "", reason="wrong")
    assert "red apples" not in {d.page_content for d in await vs.asimilarity_search("red", k=5)}
    shown = await vs.asimilarity_search("red", k=5, filter={"include_invalidated": True})
    assert "red apples" in {d.page_content for d in shown}
    for bad, words in [
        ({"source": "x"}, "unknown keys"),
        ({"scope": "x"}, "collection"),
        ({"metadata": {"n": {"$regex": "x"}}}, "operator"),
        ({"include_invalidated": "yes"}, "include_invalidated"),
        ({"created_after": "yesterday"}, "ISO"),
        ("red", "dict"),
    ]:
        with pytest.raises(ValidationError, match=words):
            await vs.asimilarity_search("x", k=5, filter=bad)


async def test_hybrid_fulltext_and_no_embedding(store: Store) -> None:
    vs = SurrealVectorStore(store, Words())
    await vs.aadd_texts(
        ["the quarterly zyxtrum report", "weekly notes", "quarterly plans"], ids=["z", "w", "q"]
    )
    hybrid = await vs.asimilarity_search("zyxtrum", k=2, mode="hybrid")
    assert hybrid[0].id == "z"
    full = await vs.asimilarity_search_with_score("zyxtrum", k=3, mode="fulltext")
    assert [d.id for d, _ in full] == ["z"] and full[0][1] > 0
    hybrid_store = SurrealVectorStore(store, Words(), mode="hybrid")
    assert (await hybrid_store.asimilarity_search("zyxtrum", k=1))[0].id == "z"
    texts_only = SurrealVectorStore(store, None, collection="plain", mode="fulltext")
    await texts_only.aadd_texts(["only words here"], ids=["o"])
    assert [d.id for d in await texts_only.asimilarity_search("words", k=3)] == ["o"]
    with pytest.raises(ValidationError, match="embedding"):
        await texts_only.asimilarity_search("words", k=3, mode="vector")
    with pytest.raises(ValidationError, match="embedding"):
        SurrealVectorStore(store, None)  # vector mode by default needs one


async def test_relevance_scores_and_retrievers(store: Store) -> None:
    vs = SurrealVectorStore(store, Words())
    await vs.aadd_texts(
        ["green tea is calming", "black coffee is strong", "green tea with lemon"],
        [{"k": "tea"}, {"k": "coffee"}, {"k": "tea"}],
        ids=["t1", "c1", "t2"],
    )
    scored = await vs.asimilarity_search_with_relevance_scores("green tea", k=3)
    assert all(0.0 <= s <= 1.0 for _, s in scored)
    assert [d.id for d, _ in scored][:2] in (["t1", "t2"], ["t2", "t1"])
    with pytest.raises(ValidationError, match="relevance"):
        await vs.asimilarity_search_with_relevance_scores("green tea", k=3, mode="hybrid")
    threshold = scored[1][1] - 1e-9
    r = vs.as_retriever(
        search_type="similarity_score_threshold",
        search_kwargs={"k": 3, "score_threshold": threshold},
    )
    assert {d.id for d in await r.ainvoke("green tea")} == {"t1", "t2"}
    r = vs.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 3})
    assert len(await r.ainvoke("green tea")) == 2
    r = vs.as_retriever(
        search_kwargs={"k": 3, "mode": "hybrid", "filter": {"metadata": {"k": "coffee"}}}
    )
    assert [d.id for d in await r.ainvoke("strong coffee")] == ["c1"]


async def test_documents_have_provenance(store: Store) -> None:
    vs = SurrealVectorStore(store, Words())
    await vs.aadd_texts(["the user lives in Porto"], [{"src": "chat"}], ids=["home"])
    mid = await vs.amemory_id("home")
    assert mid is not None
    assert await vs.amemory_id("missing") is None
    d = await provenance.record_decision(
        store, task="plan", action="book a train", confidence=0.8, used=[mid]
    )
    # Overwritten, the cited memory stays, hidden as superseded: why() still shows it.
    await vs.aadd_texts(["the user lives in Lisbon"], [{"src": "chat"}], ids=["home"])
    old = await memory.get(store, memory=mid)
    assert old.invalidated and (old.invalidated_reason or "").startswith("superseded")
    graph = await provenance.why(store, decision=d.id)
    assert f"memory:{mid}" in graph.nodes
    assert [x.page_content for x in await vs.asimilarity_search("user lives", k=5)] == [
        "the user lives in Lisbon"
    ]
    # Deleted too: the new memory goes, the decision keeps what it used.
    await vs.adelete(["home"])
    assert await vs.asimilarity_search("user lives", k=5) == []
    assert f"memory:{mid}" in (await provenance.why(store, decision=d.id)).nodes


async def test_the_guard_holds_against_raw_surrealql(store: Store) -> None:
    vs = SurrealVectorStore(store, Words())
    await vs.aadd_texts(["x"], ids=["1"])
    mid = await vs.amemory_id("1")
    for text in [
        "CREATE lc_document:['default', 'wrong'] SET collection = 'default', doc_id = '2', "
        "memories = [type::record('memory', $m)];",
        "CREATE lc_document:['', '2'] SET collection = '', doc_id = '2', "
        "memories = [type::record('memory', $m)];",
        "CREATE lc_document:['default', '3'] SET collection = 'default', doc_id = '3', "
        "memories = [];",
        "UPDATE lc_document:['default', '1'] SET memories = [];",
        "UPDATE lc_document:['default', '1'] SET doc_id = 'other';",
    ]:
        with pytest.raises(QueryError):
            await store.execute(text, m=mid)
    assert await vs.aget_by_ids(["1"]) == [Document(id="1", page_content="x", metadata={})]


async def test_bad_input_writes_nothing(store: Store) -> None:
    vs = SurrealVectorStore(store, Words(), collection="c")
    await vs.aadd_texts(["kept"], ids=["k"])
    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"texts": "one string"}, ValidationError),
        ({"texts": ["a", "b"], "metadatas": [{}]}, ValidationError),
        ({"texts": ["a", "b"], "ids": ["1"]}, ValidationError),
        ({"texts": ["a", "b"], "metadatas": [{}, "x"]}, ValidationError),
        ({"texts": ["a", "b"], "metadatas": [{}, {"n": float("nan")}]}, ValidationError),
        ({"texts": ["a", "b"], "metadatas": [{}, {1: "int key"}]}, ValidationError),
        ({"texts": ["a", "b"], "metadatas": [{}, {"o": object()}]}, ValidationError),
        ({"texts": ["a", "b"], "ids": ["1", ""]}, ValidationError),
        ({"texts": ["a", "b"], "ids": ["1", 2]}, ValidationError),
        ({"texts": ["a", None]}, ValidationError),
        ({"texts": ["a", "\ud800"]}, ValidationError),
        ({"texts": ["a"], "unknown": 1}, ValidationError),
    ]
    for kwargs, error in cases:
        texts = kwargs.pop("texts")
        with pytest.raises(error):
            await vs.aadd_texts(texts, **kwargs)
    # The embedding's dimension must be the store's.
    with pytest.raises((DimensionError, EmbeddingSpaceError)):
        await SurrealVectorStore(store, Words(32), collection="c").aadd_texts(["a"])
    with pytest.raises(DimensionError):
        await vs.asimilarity_search_by_vector([1.0, 0.0], k=1)
    bad_searches: list[dict[str, Any]] = [
        {"k": 0},
        {"k": 1001},
        {"k": "3"},
        {"mode": "sideways"},
        {"other": 1},
    ]
    for kwargs in bad_searches:
        with pytest.raises(ValidationError):
            await vs.asimilarity_search("kept", **kwargs)
    bad_mmrs: list[dict[str, Any]] = [{"lambda_mult": 1.5}, {"fetch_k": 0}, {"k": True}]
    for bad_mmr in bad_mmrs:
        with pytest.raises(ValidationError):
            await vs.amax_marginal_relevance_search("kept", **bad_mmr)
    for ids in ["k", [None], [""]]:
        with pytest.raises(ValidationError):
            await vs.adelete(ids)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await vs.aget_by_ids("k")
    with pytest.raises(ValidationError):
        SurrealVectorStore(store, Words(), collection="")
    with pytest.raises(ValidationError):
        SurrealVectorStore("mem://", Words())  # type: ignore[arg-type]
    assert await _count(store, "c") == 1
    rows = await store.query("SELECT count() AS n FROM memory GROUP ALL;", dict)
    assert rows[0]["n"] == 1
    assert [d.id for d in await vs.asimilarity_search("kept", k=5)] == ["k"]


async def test_sync_methods_refuse_the_store_loop(store: Store) -> None:
    vs = SurrealVectorStore(store, Words())
    with pytest.raises(StoreStateError, match="async"):
        vs.add_texts(["x"])
    assert await vs.asimilarity_search("x", k=1) == []


def test_sync_store_persists_and_reopens(tmp_path: Path) -> None:
    url = f"surrealkv://{tmp_path / 'kv'}"
    with SurrealVectorStore.from_url_sync(url, embedding=Words(), collection="notes") as vs:
        ids = vs.add_texts(["first note", "second note"], [{"i": 1}, {"i": 2}])
        assert vs.similarity_search("first", k=1)[0].id == ids[0]
        assert len(vs.max_marginal_relevance_search("note", k=2, fetch_k=2)) == 2
        assert (
            vs.similarity_search_by_vector(Words().embed_query("second note"), k=1)[0].id
            == (ids[1])
        )
        assert vs.memory_id(ids[0]) is not None
        vs.delete([ids[1]])
    with SurrealVectorStore.from_url_sync(url, embedding=Words(), collection="notes") as vs:
        assert vs.get_by_ids(ids) == [
            Document(id=ids[0], page_content="first note", metadata={"i": 1})
        ]
        again = SurrealVectorStore.from_texts(
            ["third note"], Words(), ids=["t"], store=vs.store, collection="notes"
        )
        assert [d.id for d in again.similarity_search("third", k=1)] == ["t"]


async def test_from_texts_and_many_documents(store: Store) -> None:
    texts = [f"note number {i} about topic {i % 37}" for i in range(2300)]
    vs = await SurrealVectorStore.afrom_texts(
        texts, Words(), [{"i": i} for i in range(len(texts))], store=store, collection="big"
    )
    assert await _count(store, "big") == len(texts)
    status = await memory.index_status(store)
    assert status.vectors == len(texts)
    found = await vs.asimilarity_search("note number 1234 about topic 13", k=1)
    assert found[0].metadata == {"i": 1234}
    with pytest.raises(ValidationError, match="store="):
        await SurrealVectorStore.afrom_texts(["x"], Words())


async def test_a_failed_first_add_declares_no_space(store: Store) -> None:
    class Ragged(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [[1.0] * (2 + i) for i, _ in enumerate(texts)]

        def embed_query(self, text: str) -> list[float]:
            return [1.0, 0.0]

    with pytest.raises(DimensionError):
        await SurrealVectorStore(store, Ragged()).aadd_texts(["a", "b"])
    assert await memory.get_space(store) is None
    assert await _count(store, "default") == 0


_hostile_text = hostile_texts("a" * 600, "'; DELETE lc_document; --", "$collection")
_hostile = hostile_values(
    _hostile_text,
    st.lists(st.floats(allow_nan=True), max_size=3),
    st.fixed_dictionaries({"metadata": st.dictionaries(_hostile_text, _hostile_text, max_size=2)}),
)


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(a=_hostile, b=_hostile, c=_hostile)
def test_hostile_values_leave_only_store_errors(a: Any, b: Any, c: Any) -> None:
    """Every public method, fed hostile values, returns or raises a StoreError; what was
    accepted reads back."""

    async def walk() -> None:
        async with Store("mem://") as store:
            vs = SurrealVectorStore(store, Words(16))
            await vs.aadd_texts(["kept text"], ids=["kept"])
            calls: list[Any] = [
                lambda: vs.aadd_texts(a, b, ids=c),
                lambda: vs.aadd_texts(["x", "y"], [a, b], ids=["1", c]),
                lambda: vs.aadd_documents([Document("x", metadata={"m": a})], ids=b),
                lambda: vs.adelete(a),
                lambda: vs.aget_by_ids(a),
                lambda: vs.amemory_id(a),
                lambda: vs.asimilarity_search(a, k=b, filter=c),
                lambda: vs.asimilarity_search("kept", k=3, filter=a, mode=b),
                lambda: vs.asimilarity_search_with_score("kept", k=a),
                lambda: vs.asimilarity_search_by_vector(a, k=3, filter=b),
                lambda: vs.asimilarity_search_with_relevance_scores("kept", k=3, filter=a),
                lambda: vs.amax_marginal_relevance_search("kept", k=a, fetch_k=b, lambda_mult=c),
                lambda: vs.amax_marginal_relevance_search_by_vector(a, k=2, filter=b),
            ]
            for call in calls:
                with contextlib.suppress(StoreError):
                    await call()
            # Whatever was refused, what was accepted reads back.
            found = await vs.aget_by_ids(["kept"])
            assert [d.page_content for d in found] in ([], ["kept text"])
            await vs.asimilarity_search("kept", k=3)

    anyio.run(walk, backend="asyncio")


async def test_documents_travel_in_a_bundle(tmp_path: Path) -> None:
    from surreal_store import bundles

    async with SurrealVectorStore.from_url("mem://", embedding=Words(), collection="kb") as vs:
        await vs.aadd_texts(
            ["red apple", "blue sky"], [{"none": None, "n": [1, 2.5]}, {}], ids=["a", "b"]
        )
        before = await vs.asimilarity_search_with_score("red apple", k=2)
        await bundles.export_bundle(vs.store, tmp_path / "b")
    async with Store("mem://", migrate=True) as imported:
        await bundles.import_bundle(imported, tmp_path / "b")
        other = SurrealVectorStore(imported, Words(), collection="kb")
        assert await other.asimilarity_search_with_score("red apple", k=2) == before
        assert (await other.aget_by_ids(["a"]))[0].metadata == {"none": None, "n": [1, 2.5]}
        await other.aadd_texts(["green apple"], ids=["a"])  # writes go on as before
        assert [d.page_content for d in await other.aget_by_ids(["a", "b"])] == [
            "green apple",
            "blue sky",
        ]
