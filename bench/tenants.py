"""Tenants and permissions: what a tenant costs to open, and what the engine's permission
checks cost an agent's session against the owner's (#20)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from surreal_store import Settings, Store, access, agents, memory, runs

from ._harness import Figure, Scale, interleaved, p50, register

_E = memory.HashingEmbedder(64)


def _disk_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


@register("tenants")
async def tenants(scale: Scale) -> list[Figure]:
    """Open + first recall of tenant N among many in one embedded store."""
    n = scale.pick(50, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"surrealkv://{Path(tmp) / 'store'}"
        t0 = time.perf_counter()
        for i in range(n):
            async with Store(url, tenant=f"t{i}") as t:
                await memory.remember(t, scope="s", content=f"tenant {i} remembers", key="k")
        create_s = (time.perf_counter() - t0) / n
        samples: list[float] = []
        shared: list[float] = []
        async with Store(url, tenant="t0") as first:  # one tenant already open: the others share
            await memory.recall(first, text="remembers", k=1)
            for i in range(n - 20, n):
                t1 = time.perf_counter()
                async with Store(url, tenant=f"t{i}") as t:
                    hits = await memory.recall(t, text="remembers", k=5)
                shared.append(time.perf_counter() - t1)
                assert [h.memory.content for h in hits] == [f"tenant {i} remembers"]
            # What sharing costs a query: the other tenant's queries carry a USE.
            async with Store(url, tenant=f"t{n - 1}") as other:
                home, away = await interleaved(
                    lambda: first.query("RETURN 1", int),
                    lambda: other.query("RETURN 1", int),
                    rounds=10,
                    calls=100,
                )
        for i in range(n - 10, n):
            t1 = time.perf_counter()
            async with Store(url, tenant=f"t{i}") as t:
                await memory.recall(t, text="remembers", k=5)
            samples.append(time.perf_counter() - t1)
        disk = _disk_bytes(Path(tmp))
    return [
        Figure(f"tenant_open_first_recall_ms_of_{n}", p50(samples) * 1000, "ms"),
        Figure(f"tenant_open_first_recall_shared_ms_of_{n}", p50(shared) * 1000, "ms"),
        Figure("tenant_create_s", create_s, "s"),
        Figure("shared_tenant_query_overhead_ms", (p50(away) - p50(home)) * 1000, "ms"),
        Figure(f"tenant_disk_mb_{n}", disk / 1e6, "MB"),
    ]


@register("permissions")
async def permissions(scale: Scale) -> list[Figure]:
    """Recall and run appends as an agent (record access) against the owner, same data."""
    return await _permissions(scale.pick(2000, 10_000))


@register("permissions_100k", default=False)
async def permissions_100k(scale: Scale) -> list[Figure]:
    """The permission figures at 100k memories (by name only; ~30 min)."""
    return await _permissions(scale.pick(5000, 100_000))


async def _permissions(size: int) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"surrealkv://{Path(tmp) / 'store'}"
        # The load is set-up, not the figure: no per-call timeout (a block of a large load
        # outlasts the default's two minutes on this engine, #18), and the index is rebuilt
        # once at the end where the engine can (up to 50k vectors; past that, the vectors
        # stay unindexed for both sign-ins alike).
        async with Store(url, settings=Settings.load(url=url, query_timeout_s=None)) as root:
            await memory.declare_space(root, model=_E.model, dimension=_E.dimension)
            await agents.register(root, name="a", kind="bot", agent_id="a")
            await access.grant_agent(root, agent_id="a", secret="secret-of-a", scopes=["a"])
            # Half the store is the agent's scope, half another's: the permission has
            # something to refuse on every query.
            for start in range(0, size, 10_000):
                items = [
                    memory.NewMemory(
                        scope="a" if i % 2 else "b",
                        content=f"note {i} about topic {i % 97} and detail {i % 13}",
                        embedding=_E.vector(f"note {i} about topic {i % 97}"),
                    )
                    for i in range(start, min(size, start + 10_000))
                ]
                await memory.remember_many(root, items, rebuild=False)
                print(f"  loaded {min(size, start + 10_000)} memories", flush=True)
            if size <= 50_000:
                await memory.rebuild_index(root)
            run = await runs.create_run(root, spec_digest="0" * 64, agent_name="a")
        queries = [f"topic {q % 97} detail {q % 13}" for q in range(40)]
        modes: tuple[memory.RecallMode, ...] = ("hybrid", "vector", "fulltext")
        rec: dict[tuple[str, str], list[float]] = {}
        app: dict[str, list[float]] = {"root": [], "agent": []}
        for rnd in range(4):
            # Each sign-in in blocks of its own, alternating, so that neither warms the other.
            order = ["root", "agent"] if rnd % 2 == 0 else ["agent", "root"]
            for who in order:
                kw = {"agent": "a", "agent_secret": "secret-of-a"} if who == "agent" else {}
                async with Store(url, **kw) as s:  # type: ignore[arg-type]
                    for mode in modes:
                        samples = rec.setdefault((who, mode), [])
                        for q in queries[:3]:
                            await memory.recall(s, text=q, embedder=_E, scope="a", mode=mode)
                        for q in queries[:10]:
                            t0 = time.perf_counter()
                            await memory.recall(s, text=q, embedder=_E, scope="a", mode=mode)
                            samples.append(time.perf_counter() - t0)
                    for _ in range(20):
                        t0 = time.perf_counter()
                        await runs.append_event(s, run_id=run.id, kind="step")
                        app[who].append(time.perf_counter() - t0)
    label = f"{size // 1000}k"
    figures = []
    for mode in modes:
        agent, root_ = p50(rec[("agent", mode)]), p50(rec[("root", mode)])
        suffix = "" if mode == "hybrid" else f"_{mode}"
        figures += [
            Figure(f"recall_as_record_user_vs_root{suffix}_{label}", agent / root_, "x"),
            Figure(f"recall{suffix}_root_ms_{label}", root_ * 1000, "ms"),
        ]
    figures += [
        Figure(f"append_as_record_user_vs_root_{label}", p50(app["agent"]) / p50(app["root"]), "x"),
        Figure(f"append_root_ms_{label}", p50(app["root"]) * 1000, "ms"),
    ]
    return figures
