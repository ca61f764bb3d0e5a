"""``surreal-store mcp`` against the MCP reference memory server (the npm package
``@modelcontextprotocol/server-memory``), both over stdio, on the same graph, measured in the
same run: the reference's p50 of ``search_nodes``, ``open_nodes`` and ``read_graph`` over ours.

Both servers get the same graph (entities with three observations each, two relations per
entity): the reference as the JSON Lines file it reads, ours loaded into a fresh embedded store
through :func:`surreal_store.graph` writes. One client drives both: a minimal JSON-RPC client on
the processes' pipes (initialize, then ``tools/call``), so that what is timed is the servers and
the pipe, not a client library's validation. Each call's answer is read whole and checked for
the entities it must hold. Calls alternate in blocks (:func:`bench._harness.interleaved`).

``python -m bench.graph_reference [--quick]`` runs it alone; ``bench graph`` includes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final

from ._harness import Figure, Scale, interleaved, p50

__all__ = ["Unavailable", "reference_figures"]

PACKAGE: Final = "@modelcontextprotocol/server-memory"
VERSION: Final = "2026.8.31"
WORDS: Final = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
]
TYPES: Final = ("person", "organisation", "service", "place", "project")
PREDICATES: Final = ("knows", "uses", "owns", "depends_on")


class Unavailable(Exception):
    """The reference server cannot run here (node or npm missing, the install failed)."""


def reference_server() -> Path:
    """The reference's ``dist/index.js``, installed with npm into a cache folder on first use."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise Unavailable(f"{tool} is not installed")
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = base / "surreal-store" / "mcp-reference" / f"server-memory-{VERSION}"
    script = target / "node_modules/@modelcontextprotocol/server-memory/dist/index.js"
    if not script.is_file():
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "install", "--prefix", str(target), "--no-audit", "--no-fund", "--no-save",
             f"{PACKAGE}@{VERSION}"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0 or not script.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"npm install {PACKAGE}@{VERSION} failed: {last}")
    return script


def make_graph(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` entities (``entity_00042``, a type, three observations of six words) and ``2n``
    relations, the same on every run."""
    import random

    rng = random.Random(35)
    entities = [
        {
            "name": f"entity_{i:05d}",
            "entityType": rng.choice(TYPES),
            "observations": [" ".join(rng.choices(WORDS, k=6)) for _ in range(3)],
        }
        for i in range(n)
    ]
    relations: dict[tuple[str, str, str], dict[str, Any]] = {}
    while len(relations) < 2 * n:
        a, b = rng.randrange(n), rng.randrange(n)
        key = (f"entity_{a:05d}", f"entity_{b:05d}", rng.choice(PREDICATES))
        relations[key] = {"from": key[0], "to": key[1], "relationType": key[2]}
    return entities, list(relations.values())


def write_jsonl(
    path: Path, entities: list[dict[str, Any]], relations: list[dict[str, Any]]
) -> None:
    """The graph as the reference writes its file."""
    lines = [json.dumps({"type": "entity", **e}, ensure_ascii=False) for e in entities]
    lines += [json.dumps({"type": "relation", **r}, ensure_ascii=False) for r in relations]
    path.write_text("\n".join(lines), encoding="utf-8")


class StdioServer:
    """A minimal MCP client: one server process, JSON-RPC messages a line each on its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.next_id = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, command: Sequence[str], env: dict[str, str] | None = None
    ) -> AsyncIterator[StdioServer]:
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=1 << 30,  # a whole graph is one line
        )
        server = cls(proc)
        try:
            await server.request(
                "initialize",
                {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "0"},
                },
            )
            await server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
            yield server
        finally:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        await self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"the server ended during {method}")
            message = json.loads(line)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    async def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = await self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"{tool}: {result['content'][0]['text']}")
        data = result["structuredContent"]
        assert isinstance(data, dict)
        return data


async def load_ours(
    url: str, entities: list[dict[str, Any]], relations: list[dict[str, Any]]
) -> None:
    """The graph into a fresh store through the public writes, in batches (``import-graph``
    writes line by line, to source each observation and relation from its line; the figures
    here are about reads)."""
    from surreal_store import Store, graph

    async with Store(url, migrate=True) as store:
        for start in range(0, len(entities), 1000):
            batch = entities[start : start + 1000]
            await graph.create_entities(
                store,
                entities=[graph.NewEntity(name=e["name"], type=e["entityType"]) for e in batch],
            )
        for start in range(0, len(entities), 200):
            batch = entities[start : start + 200]
            await graph.add_observations_many(
                store, observations={e["name"]: e["observations"] for e in batch}
            )
        for start in range(0, len(relations), 500):
            batch = relations[start : start + 500]
            await graph.assert_facts(
                store,
                facts=[
                    graph.NewFact(subject=r["from"], predicate=r["relationType"], object=r["to"])
                    for r in batch
                ],
            )


async def reference_figures(scale: Scale) -> list[Figure]:
    """search_nodes, open_nodes and read_graph: the reference server's p50 over ours, at 10k
    entities (1k with ``--quick``), both over stdio, measured in the same run."""
    try:
        script = reference_server()
    except Unavailable as exc:
        print(f"  reference server unavailable, no figures: {exc}", flush=True)
        return []
    n = scale.pick(1_000, 10_000)
    entities, relations = make_graph(n)
    with tempfile.TemporaryDirectory(prefix="bench-graph-reference-") as tmp:
        where = Path(tmp)
        write_jsonl(where / "memory.jsonl", entities, relations)
        url = f"surrealkv://{where / 'store'}"
        t0 = time.perf_counter()
        await load_ours(url, entities, relations)
        load_s = time.perf_counter() - t0
        env = {**os.environ, "MEMORY_FILE_PATH": str(where / "memory.jsonl")}
        ours_cmd = [
            sys.executable,
            "-m",
            "surreal_store",
            "mcp",
            "--url",
            url,
            "--embedder",
            "none",
        ]
        async with (
            StdioServer.start(["node", str(script)], env) as ref,
            StdioServer.start(ours_cmd, dict(os.environ)) as ours,
        ):
            return [
                Figure("graph_reference_load_s", load_s, "s"),
                *await _measure(ref, ours, n, scale),
            ]


async def _measure(ref: StdioServer, ours: StdioServer, n: int, scale: Scale) -> list[Figure]:
    # Queries that each match a handful of entities by name (and a case variant), as a person
    # looking one thing up would ask; and one that matches observations.
    step = max(1, n // 20)
    queries = [f"ity_{i:05d}"[:-1] for i in range(0, n, step)]
    queries += [q.upper() for q in queries[:5]] + ["whiskey xray yankee"]
    names = [[f"entity_{i:05d}", f"entity_{(i * 7 + 3) % n:05d}"] for i in range(0, n, step)]
    figures: list[Figure] = []
    plan: list[tuple[str, list[dict[str, Any]], int, int, float | None]] = [
        ("search_nodes", [{"query": q} for q in queries], 9, 6, 20.0),
        ("open_nodes", [{"names": ns} for ns in names], 9, 6, None),
        ("read_graph", [{}], scale.pick(5, 3), 1, None),
    ]
    for tool, args_list, rounds, calls, target in plan:
        # Both give the same answer first (the comparison would mean nothing otherwise).
        for args in args_list[:3]:
            a, b = await ref.call(tool, args), await ours.call(tool, args)
            assert _form(a) == _form(b), (tool, args)
        sr, so = await interleaved(
            _cycling(ref, tool, args_list),
            _cycling(ours, tool, args_list),
            rounds=rounds,
            calls=calls,
            warmup=2 if calls == 1 else 10,
        )
        figures += [
            Figure(
                f"{tool}_speedup_vs_reference_server",
                p50(sr) / p50(so),
                "x",
                None if target is None else (">=", target),
            ),
            Figure(f"{tool}_reference_p50_ms", p50(sr) * 1e3, "ms"),
            Figure(f"{tool}_ours_p50_ms", p50(so) * 1e3, "ms"),
        ]
    return figures


def _cycling(
    server: StdioServer, tool: str, args_list: list[dict[str, Any]]
) -> Callable[[], Awaitable[object]]:
    """A call of ``tool`` on ``server`` with the next arguments of ``args_list`` each time."""
    turn = iter(range(1 << 62))

    async def call() -> object:
        return await server.call(tool, args_list[next(turn) % len(args_list)])

    return call


def _form(graph: dict[str, Any]) -> Any:
    return (
        sorted(json.dumps(e, sort_keys=True) for e in graph["entities"]),
        sorted(json.dumps(r, sort_keys=True) for r in graph["relations"]),
    )


if __name__ == "__main__":
    import argparse

    import anyio

    parser = argparse.ArgumentParser(prog="python -m bench.graph_reference")
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    for f in anyio.run(reference_figures, Scale(quick=opts.quick), backend="asyncio"):
        print(f"  {f.name:<42} {f.value:>12.4g} {f.unit:<3} {f.verdict}", flush=True)
    sys.stdout.flush()
    os._exit(0)
