"""``integrations``: the LangChain vector store against the memory layer it is built on, and
the MCP server's recall over stdio."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from surreal_store import Store, memory
from surreal_store.langchain import SurrealVectorStore

from ._data import texts
from ._embeddings import Lookup, corpus_and_queries
from ._harness import Figure, Scale, interleaved, p50, register


async def _langchain(scale: Scale, root: Path) -> list[Figure]:
    n, dim = scale.pick(1000, 10_000), 384
    corpus, queries, lookup = corpus_and_queries(n, dim)
    embedding = Lookup(lookup)
    figures: list[Figure] = []
    # Search: the same store, the same memories, both through the index's graph alone.
    async with Store(f"surrealkv://{root / 'search'}") as store:
        vs = SurrealVectorStore(store, embedding, model="bench")
        t0 = time.perf_counter()
        await vs.aadd_texts(corpus, [{"i": i} for i in range(n)])
        figures.append(Figure(f"langchain_load_{n}_s", time.perf_counter() - t0, "s"))
        await memory.rebuild_index(store)
        q = iter(range(10**9))

        async def searched() -> object:
            return await vs.asimilarity_search(queries[next(q) % len(queries)], k=10)

        async def recalled() -> object:
            return await memory.recall(store, vector=lookup[queries[next(q) % len(queries)]], k=10)

        assert len(await vs.asimilarity_search(queries[0], k=10)) == 10
        a, b = await interleaved(searched, recalled, rounds=scale.pick(3, 7), calls=30)
        figures += [
            Figure("langchain_search_vs_native", p50(a) / p50(b), "x", ("<=", 1.2)),
            Figure("langchain_search_ms", p50(a) * 1000, "ms"),
            Figure("native_recall_ms", p50(b) * 1000, "ms"),
        ]
    # Adds: blocks of documents against remember_many of the same texts, each on a store of
    # its own; per-document rates, blocks alternating.
    block = scale.pick(200, 500)
    async with (
        Store(f"surrealkv://{root / 'adds'}") as ours,
        Store(f"surrealkv://{root / 'remember'}") as native,
    ):
        vs = SurrealVectorStore(ours, embedding, model="bench")
        await memory.declare_space(native, model="bench", dimension=dim)
        starts = {"ours": 0, "native": 0}

        async def add() -> object:
            s = starts["ours"]
            starts["ours"] = (s + block) % n
            return await vs.aadd_texts(
                corpus[s : s + block], [{"i": i} for i in range(s, s + block)]
            )

        async def remember() -> object:
            s = starts["native"]
            starts["native"] = (s + block) % n
            return await memory.remember_many(
                native,
                [
                    memory.NewMemory(
                        content=corpus[i], scope=f"bench/{i}", key=str(i), kind="document",
                        metadata={"i": i}, embedding=lookup[corpus[i]],
                    )
                    for i in range(s, s + block)
                ],
            )  # fmt: skip

        rounds = scale.pick(2, 6)
        a, b = await interleaved(add, remember, rounds=rounds, calls=1, warmup=1)
        figures += [
            Figure("langchain_add_vs_native", p50(b) / p50(a), "x", (">=", 0.8)),
            Figure("langchain_adds_per_s", block / p50(a), "/s"),
            Figure("native_remembers_per_s", block / p50(b), "/s"),
        ]
    return figures


async def _mcp(scale: Scale, root: Path) -> list[Figure]:
    """One recall over stdio, from the client's call to its answer, on a store of 1,000
    memories (the built-in hashing embedder, hybrid recall)."""
    url = f"surrealkv://{root / 'mcp'}"
    async with Store(url) as store:
        e = memory.HashingEmbedder(256)
        await memory.declare_space(store, model=e.model, dimension=e.dimension)
        corpus = texts(1000)
        await memory.remember_many(store, [memory.NewMemory(content=t) for t in corpus], embedder=e)
        t0 = time.perf_counter()
        for t in corpus[:50]:
            await memory.recall(store, text=t[:40], embedder=e, k=5)
        native = (time.perf_counter() - t0) / 50
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "surreal_store", "mcp", "--url", url]
    )
    samples: list[float] = []
    async with Client(params) as client:
        for t in corpus[: scale.pick(20, 200)]:
            t0 = time.perf_counter()
            result = await client.call_tool("recall", {"query": t[:40], "k": 5})
            samples.append(time.perf_counter() - t0)
            assert not result.is_error, result.content
    return [
        Figure("mcp_recall_roundtrip_ms", p50(samples) * 1000, "ms"),
        Figure("mcp_native_recall_ms", native * 1000, "ms"),
    ]


@register("integrations")
async def run(scale: Scale) -> list[Figure]:
    """LangChain: search and add vs the memory layer's recall and remember_many on the same
    data. MCP: a recall's round trip over stdio."""
    root = Path(tempfile.mkdtemp(prefix="bench-integrations-"))
    try:
        return await _langchain(scale, root) + await _mcp(scale, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
