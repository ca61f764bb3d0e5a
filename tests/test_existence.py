"""Existence does not leak across scopes (#34).

Memory ids hash a scope and its content, and runs and decisions have ids people choose or can
guess, so an agent can aim at the id of another scope's record. For 100 guesses of each kind,
half of them another agent's records and half absent ones, every public call and raw statement
agent A makes must answer alike: the same error type and message (the guessed id itself
aside), the same result, and the same number of round trips.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from surreal_store import (
    RecordId,
    Store,
    StoreError,
    access,
    agents,
    memory,
    provenance,
    runs,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

E = memory.HashingEmbedder(8)
SECRETS = {"a": "secret-of-agent-a", "b": "secret-of-agent-b"}
N = 50  # right guesses of each kind; as many wrong ones


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def _mid(scope: str, content: str) -> str:
    return hashlib.sha256(f"{len(scope)}:{scope}{content}".encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Guess:
    key: str  # the id guessed
    content: str = ""  # for a memory: the content guessed (its id hashes scope and content)
    right: bool = False


@dataclasses.dataclass
class World:
    url: str
    mine: str  # A's memory
    my_run: str
    my_decision: str
    memories: list[Guess]
    runs: list[Guess]
    decisions: list[Guess]


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    url = f"surrealkv://{tmp_path_factory.mktemp('existence') / 'store'}"
    async with Store(url) as root:
        await memory.declare_space(root, model=E.model, dimension=E.dimension)
        for name, scope in (("a", "team-a"), ("b", "team-b")):
            await agents.register(root, name=name, kind="bot", agent_id=name)
            await access.grant_agent(root, agent_id=name, secret=SECRETS[name], scopes=[scope])
        secrets = [f"the secret plan number {i}" for i in range(N)]
        await memory.remember_many(
            root,
            [
                memory.NewMemory(scope="team-b", content=c, agent="b", embedding=E.vector(c))
                for c in secrets
            ],
        )
        run_ids = [f"b:run-{i}" if i % 2 else f"nightly-{i}" for i in range(N)]
        for run_id in run_ids:
            await runs.create_run(root, spec_digest="b" * 64, agent_name="b", run_id=run_id)
            await runs.append_event(root, run_id=run_id, kind="step")
        decisions = []
        for i in range(N):
            if i % 2:
                d = await provenance.record_decision(
                    root, task="t", action="go", confidence=0.5, agent="b"
                )
                decisions.append(d.id)
            else:
                key = f"b_{uuid.uuid4().hex}"
                await root.execute(
                    "CREATE $id CONTENT { task: 't', action: 'go', rationale: '', "
                    "confidence: 0.5, agent: agent:b }",
                    id=RecordId("decision", key),
                )
                decisions.append(key)
    async with Store(url, agent="a", agent_secret=SECRETS["a"]) as a:
        mine = await memory.remember(a, scope="team-a", content="mine", embedder=E)
        my_run = await runs.create_run(a, spec_digest="a" * 64, agent_name="a")
        await runs.append_event(a, run_id=my_run.id, kind="step")
        my_decision = await provenance.record_decision(
            a, task="t", action="go", confidence=0.5, used=[mine.id]
        )
    guessed = [f"a guess at the plan {i}" for i in range(N)]
    return World(
        url,
        mine.id,
        my_run.id,
        my_decision.id,
        memories=[Guess(_mid("team-b", c), c, True) for c in secrets]
        + [Guess(_mid("team-b", c), c) for c in guessed],
        runs=[Guess(r, right=True) for r in run_ids]
        + [Guess(f"b:ghost-{i}" if i % 2 else f"ghost-{i}") for i in range(N)],
        decisions=[Guess(d, right=True) for d in decisions]
        + [Guess(f"b_{uuid.uuid4().hex}" if i % 2 else uuid.uuid4().hex) for i in range(N)],
    )


Call = Callable[[Store, Guess], Awaitable[Any]]


def _raw(text: str, table: str, **extra: Any) -> Call:
    def call(s: Store, g: Guess) -> Awaitable[Any]:
        return s.execute(
            text,
            id=RecordId(table, g.key),
            key=g.key,
            content=g.content,
            hash=hashlib.sha256(g.content.encode()).hexdigest(),
            **extra,
        )

    return call


def memory_calls(w: World) -> dict[str, Call]:
    mine = RecordId("memory", w.mine)
    decision = RecordId("decision", w.my_decision)
    new = "scope: 'team-b', kind: 'note', content: $content, content_hash: $hash"
    mine_new = (
        "scope: 'team-a', kind: 'note', content: 'planted', content_hash: crypto::sha256('planted')"
    )
    return {
        "memory.get": lambda s, g: memory.get(s, memory=g.key),
        "memory.invalidate": lambda s, g: memory.invalidate(s, memory=g.key, reason="x"),
        "memory.restore": lambda s, g: memory.restore(s, memory=g.key),
        "memory.forget": lambda s, g: memory.forget(s, memory=g.key),
        "memory.forget soft": lambda s, g: memory.forget(s, memory=g.key, purge=False),
        "memory.remember": lambda s, g: memory.remember(s, scope="team-b", content=g.content),
        "memory.remember_many": lambda s, g: memory.remember_many(
            s, [memory.NewMemory(scope="team-b", content=g.content)]
        ),
        "provenance.attach parent": lambda s, g: provenance.attach(
            s, memory=w.mine, sources=[provenance.MemoryDerivation(parent=g.key, how="x")]
        ),
        "provenance.record_decision used": lambda s, g: provenance.record_decision(
            s, task="t", action="a", confidence=0.5, used=[g.key]
        ),
        "provenance.lineage": lambda s, g: provenance.lineage(s, memory=g.key),
        "provenance.impact": lambda s, g: provenance.impact(s, memory=g.key),
        "provenance.invalidate": lambda s, g: provenance.invalidate(s, memory=g.key, reason="x"),
        "provenance.restore": lambda s, g: provenance.restore(s, memory=g.key),
        "SELECT": _raw("SELECT * FROM $id", "memory"),
        "record::exists": _raw("RETURN record::exists($id)", "memory"),
        "RETURN .*": _raw("RETURN $id.*", "memory"),
        "graph walk": _raw("RETURN [$id<-derived_from<-memory, $id<-used<-decision]", "memory"),
        "UPDATE": _raw("UPDATE $id SET valid_until = time::now() + 1d", "memory"),
        "UPDATE invalidate": _raw(
            "UPDATE $id SET invalidated_at = time::now(), invalidated_causes = [$id]", "memory"
        ),
        "DELETE": _raw("DELETE $id RETURN BEFORE", "memory"),
        "CREATE its scope": _raw(f"CREATE $id CONTENT {{ {new} }}", "memory"),
        "CREATE my scope": _raw(f"CREATE $id CONTENT {{ {mine_new} }}", "memory"),
        "UPSERT": _raw("UPSERT $id SET valid_until = time::now() + 1d", "memory"),
        "UPSERT my scope": _raw(f"UPSERT $id CONTENT {{ {mine_new} }}", "memory"),
        "INSERT": _raw(f"INSERT INTO memory {{ id: $id, {mine_new} }}", "memory"),
        "INSERT IGNORE": _raw(f"INSERT IGNORE INTO memory {{ id: $id, {mine_new} }}", "memory"),
        "INSERT ON DUPLICATE KEY UPDATE": _raw(
            f"INSERT INTO memory {{ id: $id, {mine_new} }} "
            "ON DUPLICATE KEY UPDATE valid_until = time::now() + 1d",
            "memory",
        ),
        "RELATE derived from it": _raw(
            "RELATE $mine->derived_from->$id SET how = 'x'", "memory", mine=mine
        ),
        "RELATE it derived": _raw(
            "RELATE $id->derived_from->$mine SET how = 'x'", "memory", mine=mine
        ),
        "RELATE used": _raw("RELATE $d->used->$id SET rank = 1", "memory", d=decision),
        "INSERT RELATION": _raw(
            "INSERT RELATION INTO derived_from { id: [$mine_key, $key], in: $mine, out: $id, "
            "how: 'x' }",
            "memory",
            mine=mine,
            mine_key=w.mine,
        ),
        "CREATE distrust": _raw(
            "CREATE type::record('source_invalidation', [$id]) SET source = $id, reason = 'x'",
            "memory",
        ),
    }


def run_calls(w: World) -> dict[str, Call]:
    mine = RecordId("memory", w.mine)

    def trace(g: Guess) -> provenance.RunTrace:
        return provenance.RunTrace(run_id=g.key, seq=1)

    new = "spec_digest: $digest, agent_name: 'a'"
    return {
        "runs.create_run": lambda s, g: runs.create_run(
            s, spec_digest="c" * 64, agent_name="a", run_id=g.key
        ),
        "runs.get_run": lambda s, g: runs.get_run(s, run_id=g.key),
        "runs.events": lambda s, g: runs.events(s, run_id=g.key),
        "runs.append_event": lambda s, g: runs.append_event(s, run_id=g.key, kind="k"),
        "runs.append_events": lambda s, g: runs.append_events(
            s, run_id=g.key, events=[("k", {})], idempotency_key="k"
        ),
        "runs.complete": lambda s, g: runs.complete(s, run_id=g.key, success=True),
        "runs.fail": lambda s, g: runs.fail(s, run_id=g.key),
        "runs.cancel": lambda s, g: runs.cancel(s, run_id=g.key),
        "provenance.attach trace": lambda s, g: provenance.attach(
            s, memory=w.mine, sources=[trace(g)]
        ),
        "provenance.impact": lambda s, g: provenance.impact(s, source=trace(g)),
        "provenance.invalidate": lambda s, g: provenance.invalidate(s, source=trace(g), reason="x"),
        "provenance.restore": lambda s, g: provenance.restore(s, source=trace(g)),
        "SELECT": _raw("SELECT * FROM $id", "run"),
        "record::exists": _raw("RETURN record::exists($id)", "run"),
        "UPDATE": _raw("UPDATE $id SET tags = ['x']", "run"),
        "DELETE": _raw("DELETE $id RETURN BEFORE", "run"),
        "CREATE": _raw(f"CREATE $id CONTENT {{ {new} }}", "run", digest="c" * 64),
        "UPSERT": _raw(f"UPSERT $id CONTENT {{ {new} }}", "run", digest="c" * 64),
        "INSERT": _raw(f"INSERT INTO run {{ id: $id, {new} }}", "run", digest="c" * 64),
        "INSERT ON DUPLICATE KEY UPDATE": _raw(
            f"INSERT INTO run {{ id: $id, {new} }} ON DUPLICATE KEY UPDATE tags = ['x']",
            "run",
            digest="c" * 64,
        ),
        "CREATE event": _raw(
            "CREATE type::record('run_event', [$key, 2]) SET run = $id, seq = 2, kind = 'k'", "run"
        ),
        "CREATE event on mine": _raw(
            "CREATE type::record('run_event', [$key, 2]) SET run = $my_run, seq = 2, kind = 'k'",
            "run",
            my_run=RecordId("run", w.my_run),
        ),
        "CREATE run_seq": _raw("CREATE type::record('run_seq', $key) SET next = 5", "run"),
        "CREATE run_append": _raw(
            "CREATE type::record('run_append', [$key, 'k']) SET first_seq = 1, count = 1", "run"
        ),
        "RELATE sourced_from": _raw(
            "RELATE $mine->sourced_from->(type::record('run_event', [$key, 1]))", "run", mine=mine
        ),
    }


def decision_calls(w: World) -> dict[str, Call]:
    mine = RecordId("memory", w.mine)
    new = "task: 't', action: 'a', rationale: '', confidence: 0.5"
    return {
        "provenance.get_decision": lambda s, g: provenance.get_decision(s, decision=g.key),
        "provenance.record_outcome": lambda s, g: provenance.record_outcome(
            s, decision=g.key, outcome={"ok": 1}, success=True
        ),
        "provenance.why": lambda s, g: provenance.why(s, decision=g.key),
        "SELECT": _raw("SELECT * FROM $id", "decision"),
        "record::exists": _raw("RETURN record::exists($id)", "decision"),
        "UPDATE": _raw(
            "UPDATE $id SET outcome = {}, success = true, outcome_at = time::now()", "decision"
        ),
        "DELETE": _raw("DELETE $id RETURN BEFORE", "decision"),
        "CREATE": _raw(f"CREATE $id CONTENT {{ {new} }}", "decision"),
        "UPSERT": _raw(f"UPSERT $id CONTENT {{ {new} }}", "decision"),
        "INSERT": _raw(f"INSERT INTO decision {{ id: $id, {new} }}", "decision"),
        "INSERT ON DUPLICATE KEY UPDATE": _raw(
            f"INSERT INTO decision {{ id: $id, {new} }} ON DUPLICATE KEY UPDATE success = true",
            "decision",
        ),
        "RELATE used": _raw(
            "RELATE $id->used->$mine CONTENT { id: [$key, $mine_key], rank: 1 }",
            "decision",
            mine=mine,
            mine_key=w.mine,
        ),
    }


async def _answer(store: Store, call: Call, g: Guess) -> tuple[str, int]:
    """What ``call`` answered for guess ``g`` (the guess itself masked), and its round trips."""
    before = store.stats.queries
    try:
        said = f"returned {await call(store, g)!r}"
    except StoreError as exc:
        said = f"{type(exc).__name__}: {exc}"
    for secret in (g.key, g.content):
        if secret:
            said = said.replace(secret, "<guess>")
    return said, store.stats.queries - before


async def _check(w: World, calls: dict[str, Call], guesses: list[Guess]) -> None:
    assert sum(g.right for g in guesses) == N and len(guesses) == 2 * N
    differ: list[str] = []
    async with Store(w.url, agent="a", agent_secret=SECRETS["a"]) as a:
        for label, call in calls.items():
            answers = {g: await _answer(a, call, g) for g in guesses}
            if len(set(answers.values())) != 1:
                right = {v for g, v in answers.items() if g.right}
                wrong = {v for g, v in answers.items() if not g.right}
                differ.append(f"{label}: right guesses {right}, wrong ones {wrong}")
    assert not differ, "\n".join(differ)


async def test_memory_ids_of_another_scope_answer_as_absent_ones(world: World) -> None:
    before = await _fingerprint(world)
    await _check(world, memory_calls(world), world.memories)
    assert await _fingerprint(world) == before


async def test_run_ids_of_another_agent_answer_as_absent_ones(world: World) -> None:
    before = await _fingerprint(world)
    await _check(world, run_calls(world), world.runs)
    assert await _fingerprint(world) == before


async def test_decision_ids_of_another_agent_answer_as_absent_ones(world: World) -> None:
    before = await _fingerprint(world)
    await _check(world, decision_calls(world), world.decisions)
    assert await _fingerprint(world) == before


async def _fingerprint(w: World) -> str:
    """Everything of agent B's, and whatever a guess could have planted (as the owner)."""
    async with Store(w.url) as root:
        return repr(
            await root.execute(
                "SELECT * FROM memory ORDER BY id; SELECT * FROM run ORDER BY id;"
                "SELECT * FROM run_event ORDER BY id; SELECT * FROM decision ORDER BY id;"
                "SELECT * FROM used ORDER BY id; SELECT * FROM derived_from ORDER BY id;"
                "SELECT * FROM sourced_from ORDER BY id;"
                "SELECT * FROM source_invalidation ORDER BY id; SELECT * FROM run_seq ORDER BY id;"
                "SELECT * FROM run_append ORDER BY id;"
            )
        )
