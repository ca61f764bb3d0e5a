"""``graph``: the knowledge graph's bulk load and neighbourhood walk against the raw engine.

On surrealkv (the durable default), every figure a ratio within one run:

- ``bulk_load_vs_raw_same_schema``: the SDK's time (``surrealdb.AsyncSurreal``, what a user
  picking the raw engine writes with) to load the same entities and facts (``--quick``: 2,000
  and 10,000; full: 100k and 500k) with ``INSERT`` and ``INSERT RELATION``, 1,000 rows a
  statement, into our schema (its guards, events and indexes), over ours through the public
  API (``create_entities``, ``assert_facts``: checks, deduplication, supersession); >= 0.8 is
  the target. ``bulk_load_vs_raw`` is the same raw load into plain tables (``entity``;
  ``fact`` a relation), reported: the schema's enforcement alone costs about 4x the plain
  load (docs/benchmarks.md, "The graph's bulk load target"). A load through the API that
  outlasts its time budget (``--quick``: 3 minutes; full: 20) stops there, and its rate so
  far stands for the whole: the ratios are then upper bounds (the run says so).
- ``neighbourhood_speedup_vs_hop_walk``: a hop-per-query walk's p50 (one query per entity for
  its row, live facts and observations, as a client walking the graph would) over
  ``neighbourhood(depth=2)``'s, for random entities of the graph (the same rows, loaded raw
  into our schema); >= 10 is the target. Both walks are checked to find the same entities
  and facts, for every entity timed, and walk each once before the timing (steady state: the
  engine's block cache holds what they read). ``neighbourhood_cpu_speedup_vs_hop_walk`` is the
  same ratio by the process's CPU time, reported beside it.

- ``search_entities_speedup_vs_engine_scan``: the p50 of the engine scan a user would write
  instead (one query: each entity's words by ``search::analyze`` against the query's terms,
  each embedding by cosine against the query vector, over the scope's live entities) over
  ``graph.search_entities``'s (text and vector, through the entity index), at 10,000
  entities with 64-dimensional embeddings (``--quick``: 2,000); the answers are checked to
  agree first. ``search_entities_index_build_s`` is the first search's time, which builds
  the index from the table.

If ``bench/graph_reference.py`` is there, its ``reference_figures(scale)`` (the MCP reference
memory server against ours) are reported here too.

Parts (``--only``): ``bulk_load`` (the three loads and their ratios), ``neighbourhood`` (the
raw load into our schema that the walks read, and the walks), ``search_entities``,
``reference``.

A whole run times the walks in a process of its own, which opens the store the raw load
wrote (closed), as a user's process opens a store after a restart: the process that loaded it
and the plain tables before it walks slower.

``--only neighbourhood`` with ``SURREAL_STORE_BENCH_GRAPH_STORE`` set to a directory: the walks
read a copy of the store kept in it for the scale (``<dir>/100000``, ``<dir>/2000``) instead of
loading one (the raw load into our schema takes 6-13 minutes at full scale); when there is none
yet, the run loads as usual and keeps its store there after the walks (closed and reopened
once, as a user's store is after a restart). The walks check that they agree on every entity
timed, so a store of other rows fails the run rather than measuring it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import importlib.util
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
import surrealdb

from surreal_store import RecordId, Store, graph, memory
from surreal_store.graph._models import fact_key

from ._harness import Figure, Scale, interleaved, p50, register

_TYPES = ("person", "org", "place", "project")
_PREDICATES = ("knows", "works_at", "located_in", "depends_on", "owns", "member_of")
_BATCH = 1000
_NS, _DB = "bench", "graph"
# Set for the walks' own process (_walks_apart): the store it walks and where its figures go.
_WALK_STORE = "SURREAL_STORE_BENCH_GRAPH_WALK_STORE"
_WALK_OUT = "SURREAL_STORE_BENCH_GRAPH_WALK_OUT"


def _data(n: int, seed: int = 3) -> tuple[list[graph.NewEntity], list[graph.NewFact]]:
    """``n`` entities and ``5 n`` distinct facts between random pairs of them (a mean degree
    of ten), valid from a fixed time."""
    rng = random.Random(seed)
    entities = [
        graph.NewEntity(name=f"entity {i:07d}", type=_TYPES[i % 4], summary=f"thing number {i}")
        for i in range(n)
    ]
    since = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    seen: set[tuple[int, str, int]] = set()
    facts: list[graph.NewFact] = []
    while len(facts) < 5 * n:
        s, o, p = rng.randrange(n), rng.randrange(n), rng.choice(_PREDICATES)
        if s == o or (s, p, o) in seen:
            continue
        seen.add((s, p, o))
        facts.append(
            graph.NewFact(
                subject=entities[s].name, predicate=p, object=entities[o].name, valid_from=since
            )
        )
    return entities, facts


def _raw_rows(
    entities: list[graph.NewEntity], facts: list[graph.NewFact], now: dt.datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows ours stores, as a raw client would write them with the SDK (every field
    computed here)."""
    scope = graph.DEFAULT_SCOPE

    def entity(name: str) -> surrealdb.RecordID:
        return surrealdb.RecordID("entity", graph.entity_id(scope, name))

    ents = [
        {
            "id": entity(e.name),
            "scope": scope,
            "name": e.name,
            "name_key": graph.name_key(e.name),
            "type": e.type,
            "summary": e.summary,
            "aliases": [],
            "attributes": {},
            "recorded_at": now,
        }
        for e in entities
    ]
    rels = [
        {
            "id": surrealdb.RecordID("fact", f"{i:032x}"),
            "in": entity(f.subject),
            "out": entity(f.object),
            "scope": scope,
            "predicate": f.predicate,
            "key": fact_key(scope, f.subject, f.predicate, f.object, None),
            "valid_from": f.valid_from,
            "recorded_at": now,
        }
        for i, f in enumerate(facts)
    ]
    return ents, rels


async def _raw_load(
    path: Path, ents: list[dict[str, Any]], rels: list[dict[str, Any]], *, schema: str = ""
) -> float:
    """Seconds for the SDK alone (what a user would pick instead of the API) to load the rows
    into the store at ``path``, in our namespace and database; ``schema`` is run first."""
    async with surrealdb.AsyncSurreal(f"surrealkv://{path}") as db:
        await db.use(_NS, _DB)
        if schema:
            await db.query(schema)
        t0 = time.perf_counter()
        loads = (
            ("INSERT INTO entity $rows RETURN NONE;", ents),
            ("INSERT RELATION INTO fact $rows RETURN NONE;", rels),
        )
        for statement, rows in loads:
            for i in range(0, len(rows), _BATCH):
                params: dict[str, Any] = {"rows": rows[i : i + _BATCH]}
                await db.query(statement, params)
        return time.perf_counter() - t0


_PLAIN = """
DEFINE TABLE entity SCHEMALESS;
DEFINE TABLE fact TYPE RELATION IN entity OUT entity SCHEMALESS;
"""


async def _api_load(
    store: Store, entities: list[graph.NewEntity], facts: list[graph.NewFact], budget_s: float
) -> tuple[float, int]:
    """Seconds to load through the public API, and the rows loaded: all of them, or those
    loaded when ``budget_s`` ran out (checked between calls: 10,000 entities, 1,000 facts)."""
    t0 = time.perf_counter()
    done = 0
    for i in range(0, len(entities), 10 * _BATCH):
        done += len(await graph.create_entities(store, entities=entities[i : i + 10 * _BATCH]))
        if time.perf_counter() - t0 > budget_s:
            return time.perf_counter() - t0, done
    for i in range(0, len(facts), _BATCH):
        chunk = facts[i : i + _BATCH]
        await graph.assert_facts(store, facts=chunk)
        done += len(chunk)
        if time.perf_counter() - t0 > budget_s and done < len(entities) + len(facts):
            break
    return time.perf_counter() - t0, done


# The walk a client does without a walk of the database's own: per entity, one query for its
# row, its live facts (either end) and its observations; the last level's entities for their
# rows and observations only (_HOP_LAST).
_HOP = """
LET $v = time::now();
RETURN {
    entity: (SELECT id, scope, name, type, aliases, summary, attributes, created_at,
        updated_at, recorded_at, retracted_at FROM ONLY $e),
    facts: (SELECT id, in AS s, out AS o, in.name AS subject, predicate, out.name AS object,
        value, valid_from, valid_until, recorded_at FROM $e<->fact
        WHERE scope = $scope AND retracted_at = NONE AND invalidated_at = NONE
        AND valid_from <= $v AND (valid_until = NONE OR valid_until > $v)) ?? [],
    observations: (SELECT in.content AS content, position FROM $e<-observation
        WHERE retracted_at = NONE ORDER BY position) ?? [],
};
"""


_HOP_LAST = """
RETURN {
    entity: (SELECT id, scope, name, type, aliases, summary, attributes, created_at,
        updated_at, recorded_at, retracted_at FROM ONLY $e),
    observations: (SELECT in.content AS content, position FROM $e<-observation
        WHERE retracted_at = NONE ORDER BY position) ?? [],
};
"""


async def _hop_walk(store: Store, start: RecordId, depth: int) -> tuple[set[str], set[str]]:
    seen = {str(start): start}
    facts: set[str] = set()
    frontier = [start]
    for level in range(depth + 1):
        nxt: list[RecordId] = []
        for e in frontier:
            if level == depth:  # the last level: its entities' rows, not their facts
                await store.query_required_single(_HOP_LAST, dict, e=e, idempotent=True)
                continue
            row = await store.query_required_single(
                _HOP, dict, e=e, scope=graph.DEFAULT_SCOPE, idempotent=True
            )
            for f in row["facts"]:
                facts.add(str(f["id"]))
                for end in (f["s"], f["o"]):
                    if str(end) not in seen:
                        seen[str(end)] = end
                        nxt.append(end)
        frontier = nxt
    return set(seen), facts


async def _neighbourhoods(store: Store, names: list[str], scale: Scale) -> list[Figure]:
    scope = graph.DEFAULT_SCOPE
    rng = random.Random(5)
    picks = [rng.choice(names) for _ in range(64)]

    def start(name: str) -> RecordId:
        return RecordId("entity", graph.entity_id(scope, name))

    # Every pick walked both ways before the timing, each checked to find the same entities
    # and facts: a process's first read of a block of the store's files loads it into the
    # engine's block cache, which costs a walk reading ~220 records about a fifth more and the
    # hop walk a few percent (docs/engine-notes.md, "Where the neighbourhood's time goes, on a
    # reopened store"), so without it the figure depends on which walk met an entity first.
    sizes: list[float] = []
    for name in picks:
        sub = await graph.neighbourhood(store, entity=name, depth=2)
        walked, walked_facts = await _hop_walk(store, start(name), 2)
        assert {f"entity:{e.id}" for e in sub.entities} == walked, "the walks disagree"
        assert {f"fact:{f.id}" for f in sub.facts} == walked_facts, "the walks disagree on facts"
        sizes.append(len(sub.entities))
    ours_i = hops_i = 0
    # CPU time of the process (the engine's threads included) per call, reported beside the
    # wall figures: on a shared machine the hop walk's hundred round trips wait for a core.
    ours_cpu: list[float] = []
    hops_cpu: list[float] = []

    async def ours() -> object:
        nonlocal ours_i
        ours_i += 1
        t0 = time.process_time()
        got = await graph.neighbourhood(store, entity=picks[ours_i % len(picks)], depth=2)
        ours_cpu.append(time.process_time() - t0)
        return got

    async def hops() -> object:
        nonlocal hops_i
        hops_i += 1
        t0 = time.process_time()
        got = await _hop_walk(store, start(picks[hops_i % len(picks)]), 2)
        hops_cpu.append(time.process_time() - t0)
        return got

    a, b = await interleaved(ours, hops, rounds=scale.pick(4, 8), calls=4, warmup=2)
    return [
        Figure("neighbourhood_speedup_vs_hop_walk", p50(b) / p50(a), "x", target=(">=", 10)),
        Figure("neighbourhood_p50_ms_depth2", p50(a) * 1e3, "ms"),
        Figure("neighbourhood_entities_p50", p50(sizes)),
        Figure("neighbourhood_cpu_speedup_vs_hop_walk", p50(hops_cpu) / p50(ours_cpu), "x"),
        Figure("neighbourhood_cpu_p50_ms_depth2", p50(ours_cpu) * 1e3, "ms"),
    ]


@register("graph")
async def run(scale: Scale) -> list[Figure]:
    """Bulk load vs raw INSERT/RELATE; depth-2 neighbourhood vs a hop-per-query walk."""
    root = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    try:
        figures = await _all(scale, root)
        if scale.wants("search_entities"):
            figures += await _entity_search(root / "search", scale)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if scale.wants("reference") and importlib.util.find_spec("bench.graph_reference") is not None:
        reference = importlib.import_module("bench.graph_reference")
        figures += await reference.reference_figures(scale)
    return figures


def _kept_store(n: int) -> Path | None:
    """Where a store of ``n`` entities for the walks is kept (``SURREAL_STORE_BENCH_GRAPH_STORE``),
    if anywhere."""
    kept = os.environ.get("SURREAL_STORE_BENCH_GRAPH_STORE")
    return Path(kept, str(n)) if kept else None


def _copied(source: Path, target: Path) -> bool:
    """Copy the store at ``source`` to ``target`` unless ``source`` is missing or ``target``
    exists; whether it was copied."""
    if not source.is_dir() or target.exists():
        return False
    shutil.copytree(source, target)
    return True


async def _walks_apart(store: Path, scale: Scale) -> list[Figure]:
    """The walks of the store at ``store`` (closed), timed in a new process of their own, as a
    user's process that walks a graph has not just loaded two others: a process that has
    walks slower, the hop walk less so than ours (docs/benchmarks.md, "The process's
    state")."""
    out = anyio.Path(store.parent / "walks.json")
    argv = [sys.executable, "-m", "bench", "graph", "--only", "neighbourhood"]
    env = {**os.environ, _WALK_STORE: str(store), _WALK_OUT: str(out)}
    done = await anyio.run_process([*argv, *(["--quick"] if scale.quick else [])], env=env,
                                   check=False)  # fmt: skip
    if done.returncode not in (0, 1) or not await out.exists():  # 1: a figure missed its target
        raise RuntimeError(
            f"the walks' process failed ({done.returncode}):\n"
            + done.stdout.decode(errors="replace")
            + done.stderr.decode(errors="replace")
        )
    rows = json.loads(await out.read_text())
    return [Figure(**{**r, "target": tuple(r["target"]) if r["target"] else None}) for r in rows]


async def _all(scale: Scale, root: Path) -> list[Figure]:
    n = scale.pick(2_000, 100_000)
    entities, facts = _data(n)
    walk_store = os.environ.get(_WALK_STORE)
    if walk_store is not None:  # the walks' own process (_walks_apart): the store is there
        async with Store(f"surrealkv://{walk_store}", namespace=_NS, database=_DB) as same:
            walks = await _neighbourhoods(same, [e.name for e in entities], scale)
        figures = json.dumps([dataclasses.asdict(f) for f in walks])
        await anyio.Path(os.environ[_WALK_OUT]).write_text(figures)
        return walks
    ents, rels = _raw_rows(entities, facts, dt.datetime.now(dt.UTC))
    load = scale.wants("bulk_load")
    walks = []
    if load:
        plain_s = await _raw_load(root / "plain", ents, rels, schema=_PLAIN)
        print(f"    raw (plain tables) {n:,} + {5 * n:,}: {plain_s:.1f}s", flush=True)
    kept = None if load else _kept_store(n)
    if kept is not None and _copied(kept, root / "same"):
        print(f"    the walks read a copy of {kept}", flush=True)
    elif load or scale.wants("neighbourhood"):
        async with Store(f"surrealkv://{root / 'same'}", namespace=_NS, database=_DB):
            pass  # our schema, applied
        same_s = await _raw_load(root / "same", ents, rels)
        print(f"    raw (our schema): {same_s:.1f}s", flush=True)
    # The walks read the same rows as the API writes (loaded raw here, so that the read
    # figures do not wait on the load's).
    if scale.wants("neighbourhood") and load:
        walks = await _walks_apart(root / "same", scale)
    elif scale.wants("neighbourhood"):
        async with Store(f"surrealkv://{root / 'same'}", namespace=_NS, database=_DB) as same:
            walks = await _neighbourhoods(same, [e.name for e in entities], scale)
        if kept is not None:
            _copied(root / "same", kept)
    if not load:
        return walks
    total = len(entities) + len(facts)
    async with Store(f"surrealkv://{root / 'api'}", namespace=_NS, database=_DB) as store:
        api_s, done = await _api_load(store, entities, facts, scale.pick(180, 1200))
        count = await store.query_required_single("RETURN count(SELECT id FROM fact);", int)
        assert count == done - len(entities), (count, done)
    if done < total:
        # Out of time: the whole load would take at least the rate so far (the per-row cost
        # does not fall as the tables grow), so the ratio below is an upper bound.
        print(f"    ours (public API): {done:,} of {total:,} rows in {api_s:.1f}s, stopped; "
              "the ratios are upper bounds from its rate", flush=True)  # fmt: skip
        api_s *= total / done
    else:
        print(f"    ours (public API): {api_s:.1f}s", flush=True)
    return [
        Figure("bulk_load_vs_raw", plain_s / api_s, "x"),
        Figure("bulk_load_vs_raw_same_schema", same_s / api_s, "x", target=(">=", 0.8)),
        Figure("bulk_load_api_rows_per_s", (len(entities) + len(facts)) / api_s, "rows/s"),
        *walks,
    ]


_SEARCH_WORDS = tuple(f"w{i:03d}" for i in range(400))
_SEARCH_DIM = 64
# What a user of the raw engine writes to search the entities' words and embeddings: both
# rankings, over the scope's live entities, in one query.
_SEARCH_SCAN = """
LET $terms = array::distinct(search::analyze('memory_text', $text));
RETURN {
    text: (SELECT record::id(id) AS id, array::len(array::intersect(array::distinct(
        search::analyze('memory_text', name + ' ' + array::join(aliases, ' ') + ' ' + summary)),
        $terms)) AS s FROM entity WHERE scope = $scope AND retracted_at = NONE
        ORDER BY s DESC, id LIMIT $n).filter(|$r| $r.s > 0).map(|$r| $r.id),
    vector: (SELECT record::id(id) AS id, vector::similarity::cosine(
        encoding::cbor::decode(embedding), $vector) AS s FROM entity
        WHERE scope = $scope AND retracted_at = NONE AND embedding != NONE
        ORDER BY s DESC, id LIMIT $n).map(|$r| $r.id),
};
"""


async def _entity_search(path: Path, scale: Scale) -> list[Figure]:
    n = scale.pick(2_000, 10_000)
    rng = random.Random(11)

    def vector() -> list[float]:
        return [rng.gauss(0, 1) for _ in range(_SEARCH_DIM)]

    entities = [
        graph.NewEntity(
            name=f"entity {i:06d}",
            type=_TYPES[i % 4],
            summary=" ".join(rng.sample(_SEARCH_WORDS, 6)),
            embedding=vector(),
        )
        for i in range(n)
    ]
    queries = [(" ".join(rng.sample(_SEARCH_WORDS, 2)), vector()) for _ in range(32)]
    scope = graph.DEFAULT_SCOPE
    async with Store(f"surrealkv://{path}", namespace=_NS, database=_DB) as store:
        await memory.declare_space(store, model="bench", dimension=_SEARCH_DIM)
        for i in range(0, n, _BATCH):
            await graph.create_entities(store, entities=entities[i : i + _BATCH])
        t0 = time.perf_counter()
        await graph.search_entities(store, text=queries[0][0], vector=queries[0][1])
        build_s = time.perf_counter() - t0
        for text, v in queries[:4]:  # the same answers, both ways
            ours = await graph.search_entities(store, text=text, vector=v, k=10)
            scan = await store.query_required_single(
                _SEARCH_SCAN, dict, text=text, vector=v, scope=scope, n=20, idempotent=True
            )
            for h in ours:  # each signal's rank of a hit is its place in the scan's ranking
                if h.text_rank is not None:
                    assert scan["text"][h.text_rank - 1] == h.entity.id, "words disagree"
                if h.vector_rank is not None:
                    assert scan["vector"][h.vector_rank - 1] == h.entity.id, "vectors disagree"
        i = j = 0

        async def index() -> object:
            nonlocal i
            i += 1
            text, v = queries[i % len(queries)]
            return await graph.search_entities(store, text=text, vector=v, k=10)

        async def engine() -> object:
            nonlocal j
            j += 1
            text, v = queries[j % len(queries)]
            return await store.query_required_single(
                _SEARCH_SCAN, dict, text=text, vector=v, scope=scope, n=20, idempotent=True
            )

        a, b = await interleaved(index, engine, rounds=scale.pick(3, 6), calls=4, warmup=2)
    return [
        Figure("search_entities_speedup_vs_engine_scan", p50(b) / p50(a), "x"),
        Figure("search_entities_p50_ms", p50(a) * 1e3, "ms"),
        Figure("search_entities_engine_scan_p50_ms", p50(b) * 1e3, "ms"),
        Figure("search_entities_index_build_s", build_s, "s"),
    ]
