"""``doors_tags``: a collection's search (the doors' tag-scoped recall) as a filtered recall,
against a recall over the whole store whose hits are filtered afterwards (and a filtered recall
when too few of them are the collection's)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from surreal_store import Store, memory

from ._embeddings import corpus_and_queries
from ._harness import Figure, Scale, interleaved, p50, register


@register("doors_tags", default=False)
async def run(scale: Scale) -> list[Figure]:
    """Tag-scoped recall: filtered in the index search vs unfiltered then kept, by name only."""
    n = scale.pick(2_000, 20_000)
    root = Path(tempfile.mkdtemp(prefix="bench-doors-"))
    try:
        figures: list[Figure] = []
        for share in (1.0, 0.2):
            figures += await _tagged(scale, root / f"tags-{share}", n, share)
        return figures
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _tagged(scale: Scale, path: Path, n: int, share: float) -> list[Figure]:
    """On ``n`` memories of which ``share`` carry the collection's tag."""
    dim = 384
    corpus, queries, lookup = corpus_and_queries(n, dim)
    vectors = [lookup[q] for q in queries]
    cut = int(n * share)
    async with Store(f"surrealkv://{path}") as store:
        await memory.declare_space(store, model="bench", dimension=dim)
        items = [
            memory.NewMemory(
                content=t, scope=f"s{i}", kind="document", embedding=lookup[t],
                tags=["c:a" if i < cut else "c:b"],
            )
            for i, t in enumerate(corpus)
        ]  # fmt: skip
        await memory.remember_many(store, items)
        await memory.rebuild_index(store)
        q = iter(range(10**9))

        async def kept() -> object:
            v = vectors[next(q) % len(vectors)]
            hits = await memory.recall(store, vector=v, k=10)
            if len(hits) < 10 or all("c:a" in h.memory.tags for h in hits):
                return [h for h in hits if "c:a" in h.memory.tags]
            return await memory.recall(store, vector=v, k=10, tags=["c:a"])

        async def filtered() -> object:
            v = vectors[next(q) % len(vectors)]
            return await memory.recall(store, vector=v, k=10, tags=["c:a"])

        a, b = await interleaved(filtered, kept, rounds=scale.pick(3, 7), calls=50)
    tag = f"{n // 1000}k_{round(share * 100)}pct"
    return [
        Figure(f"tag_filtered_vs_kept_{tag}", p50(a) / p50(b), "x"),
        Figure(f"tag_filtered_ms_{tag}", p50(a) * 1000, "ms"),
        Figure(f"tag_kept_ms_{tag}", p50(b) * 1000, "ms"),
    ]
