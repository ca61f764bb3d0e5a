"""``vcs``: history queries and commit throughput of the version-control layer."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Literal

import surrealdb

from surreal_store import Store, branches, commits

from ._harness import Figure, Scale, interleaved, p50, register


@register("vcs")
async def run(scale: Scale) -> list[Figure]:
    """Paged log vs a hop-per-query walk; commit rate vs the raw engine's same transaction."""
    root = Path(tempfile.mkdtemp(prefix="bench-vcs-"))
    try:
        figures = await _log_speed(scale) + await _commit_rate(scale, "mem://", "mem://", "")
        # The same comparison on the durable default engine, reported beside the headline.
        figures += await _commit_rate(
            scale, f"surrealkv://{root / 'ours'}", f"surrealkv://{root / 'raw'}", "_surrealkv"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return figures


async def _history(store: Store, n: int) -> None:
    """``n`` commits on main, with a two-commit side branch merged back every 25 commits."""
    head = await commits.commit(store, state={"i": 0}, message="root", author="bench")
    made, side = 1, 0
    while made < n:
        if made % 25 == 0 and made + 4 <= n:
            side += 1
            name = f"side{side}"
            await branches.create(store, name=name, at=head.id)
            for j in range(2):
                await commits.commit(
                    store, state={"s": side, "j": j}, message=name, author="b", branch=name
                )
            head = await commits.merge(store, into="main", branch=name, author="b", resolve="ours")
            made += 3
        else:
            head = await commits.commit(store, state={"i": made}, message=f"c{made}", author="b")
            made += 1


async def _hop_walk(store: Store, start: str) -> list[commits.Commit]:
    """The seed's method: fetch a commit, then each of its parents, one query per commit.
    It returns the same commits as ``log`` (sorted the same way), so the two are comparable."""
    seen: dict[str, commits.Commit] = {}
    todo = [start]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        c = await commits.get(store, commit=key)
        seen[key] = c
        todo.extend(p for p in c.parents if p not in seen)
    return sorted(seen.values(), key=lambda c: (-c.generation, -c.created_at.timestamp(), c.id))


async def _log_speed(scale: Scale) -> list[Figure]:
    n = scale.pick(300, 1000)
    async with Store("mem://") as store:
        t0 = time.perf_counter()
        await _history(store, n)
        build_s = time.perf_counter() - t0
        head = (await branches.get(store, name="main")).head
        history = await commits.log(store, commit=head)
        total = len(history)
        assert [c.id for c in await _hop_walk(store, head)] == [c.id for c in history]

        async def ours() -> object:
            return await commits.log(store, commit=head)

        async def walk() -> object:
            return await _hop_walk(store, head)

        a, b = await interleaved(ours, walk, rounds=scale.pick(3, 9), calls=1, warmup=1)
    return [
        Figure("log_speedup_vs_hop_walk", p50(b) / p50(a), "x", (">=", 10)),
        Figure("log_commits", total),
        Figure("log_p50_ms", p50(a) * 1e3, "ms"),
        Figure("hop_walk_p50_ms", p50(b) * 1e3, "ms"),
        Figure("history_build_commits_per_s", n / build_s, "/s"),
    ]


# The same writes as ``commits.commit`` minus its reads (head check, idempotence, parent lookups),
# written as a careful raw user would: one transaction, nothing returned that is not needed.
_RAW_COMMIT = """
BEGIN;
CREATE $snapshot CONTENT { commit: $commit, state_json: $state_json, state_hash: $state_hash,
    size: $size } RETURN NONE;
CREATE $commit CONTENT { state_hash: $state_hash, parents: $parents, message: $message,
    author: $author, branch: 'main', generation: $generation } RETURN NONE;
INSERT RELATION INTO child_of { id: $edge, in: $commit, out: $parent, position: 0,
    kind: 'normal' } RETURN NONE;
UPDATE branch:main SET head = $commit RETURN NONE;
COMMIT;
"""


async def _commit_rate(scale: Scale, ours_url: str, raw_url: str, suffix: str) -> list[Figure]:
    per_block = scale.pick(50, 200)
    rounds = scale.pick(4, 8)
    async with (
        Store(ours_url) as store,
        surrealdb.AsyncSurreal(raw_url) as raw_conn,
        Store("mem://", connection=raw_conn) as raw_store,  # the same schema for the raw side
    ):
        ours_head = await commits.commit(store, state={"i": 0}, message="0", author="b")
        raw_root = await commits.commit(raw_store, state={"i": 0}, message="0", author="b")
        raw_head, raw_gen = raw_root.id, raw_root.generation
        counter = {"ours": 0, "raw": 0, "implicit": 0}

        async def ours() -> object:
            nonlocal ours_head
            counter["ours"] += 1
            c = await commits.commit(
                store,
                state={"i": counter["ours"], "pad": "x" * 100},
                message="m",
                author="b",
                parents=[ours_head],  # the previous Commit, as an agent loop holds it
                expected_head=ours_head.id,
            )
            ours_head = c
            return c

        async def raw() -> object:
            nonlocal raw_head, raw_gen
            counter["raw"] += 1
            text = commits.canonical_json({"i": counter["raw"], "pad": "x" * 100})
            digest = hashlib.sha256(text.encode()).hexdigest()
            key = commits.commit_id(state_hash=digest, parents=[raw_head])
            raw_gen += 1
            await raw_conn.query(
                _RAW_COMMIT,
                {
                    "commit": surrealdb.RecordID("commit", key),
                    "snapshot": surrealdb.RecordID("snapshot", key),
                    "edge": surrealdb.RecordID("child_of", [key, 0]),
                    "parent": surrealdb.RecordID("commit", raw_head),
                    "parents": [surrealdb.RecordID("commit", raw_head)],
                    "state_json": text,
                    "state_hash": digest,
                    "size": len(text),
                    "message": "m",
                    "author": "b",
                    "generation": raw_gen,
                },
            )
            raw_head = key
            return key

        # Alternate call by call: pairing cancels the machine's drift better than blocks.
        a, b = await interleaved(ours, raw, rounds=rounds * per_block, calls=1, warmup=5)

        async def implicit() -> object:
            counter["implicit"] += 1
            return await commits.commit(
                store, state={"j": counter["implicit"]}, message="m", author="b"
            )

        c, _ = await interleaved(implicit, raw, rounds=per_block, calls=1, warmup=2)
    target: tuple[Literal["<=", ">="], float] | None = (">=", 0.8) if not suffix else None
    return [
        Figure(f"commit_rate_vs_raw{suffix}", p50(b) / p50(a), "x", target),
        Figure(f"commit_per_s{suffix}", 1 / p50(a), "/s"),
        Figure(f"raw_commit_per_s{suffix}", 1 / p50(b), "/s"),
        Figure(f"commit_implicit_parent_per_s{suffix}", 1 / p50(c), "/s"),
    ]
