"""Access control as an attacker tries it (#20, #34).

A world of two agents, each granted one scope, a VIEWER and a second tenant is written by the
owner. Then agent A (record access) and the VIEWER try every public read and write and raw
SurrealQL on B's records and on the other tenant: nothing of B's is read, nothing is written,
each refusal is a PermissionDeniedError (NotVisibleError where a record is named that the
session cannot see), and B's records are byte-identical afterwards. The VIEWER's writes are
sent again through a raw SDK session (no client check on the way): the engine refuses them.

Also here: two tenants under different users in one process, in every order of opening, and
a user of one tenant that USEs another through the engine; what a later schema file adds is
closed until the access table opens it. Elsewhere: tests/test_roles.py (every table and field,
every role, raw statements) and tests/test_existence.py (guessed ids answer as absent ones).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import surrealdb
from _hostile_values import LOOK_ALIKES
from _server import server_database

from surreal_store import (
    NotFoundError,
    PermissionDeniedError,
    RecordId,
    SignIn,
    Store,
    StoreError,
    access,
    agents,
    branches,
    bundles,
    cas,
    commits,
    memory,
    provenance,
    runs,
)

pytestmark = pytest.mark.anyio

E = memory.HashingEmbedder(16)
SECRETS = {"a": "secret-of-agent-a", "b": "secret-of-agent-b"}
VIEWER = ("ana", "ana-password")


@dataclasses.dataclass
class Site:
    """Where a test's stores live: a fresh surrealkv directory, or a fresh database on the
    server at SURREAL_STORE_TEST_URL (as its root user)."""

    url: str
    namespace: str = "surreal_store"
    database: str = "main"
    root: dict[str, str] = dataclasses.field(default_factory=dict)
    prefix: str = ""  # tenants of one test share it, so that look-alikes stay look-alikes
    tmp: str = ""  # a scratch directory of the test

    def tenant(self, name: str) -> str:
        return self.prefix + name

    def open(self, *, root: bool = False, tenant: str | None = None, **kwargs: Any) -> Store:
        where: dict[str, Any] = {"url": self.url, "namespace": self.namespace}
        if tenant is None:
            where["database"] = self.database
        else:
            where["tenant"] = self.tenant(tenant)
        return Store(**where, **(self.root if root else {}), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(params=["surrealkv", "server"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    if request.param == "surrealkv":
        return Site(f"surrealkv://{tmp_path / 'store'}", tmp=str(tmp_path))
    server = server_database("acl_")
    run = server["database"]
    return Site(
        server["url"],
        namespace=server["namespace"],
        database=f"{run}_main",
        root={"username": server["username"], "password": server["password"]},
        prefix=f"{run}_",
        tmp=str(tmp_path),
    )


@contextlib.asynccontextmanager
async def raw_viewer(site: Site) -> AsyncIterator[Any]:
    """A raw SDK session (none of our client's checks) signed in as the tenant's VIEWER."""
    db = surrealdb.AsyncSurreal(site.url)
    await db.connect()
    try:
        await db.signin(
            {
                "namespace": site.namespace,
                "database": site.database,
                "username": VIEWER[0],
                "password": VIEWER[1],
            }
        )
        yield db
    finally:
        await db.close()


@dataclasses.dataclass
class World:
    site: Site
    run_b: str
    m1: str  # B's memory, sourced from B's run
    m2: str  # B's memory, derived from m1
    decision_b: str
    a1: str  # A's memory
    run_a: str

    @property
    def markers(self) -> list[str]:
        """Strings that appear in B's records and nowhere else."""
        return [self.m1, self.m2, self.decision_b, self.run_b, "team-b", "launch plan"]


async def build(site: Site) -> World:
    async with site.open(root=True) as root:
        await memory.declare_space(root, model=E.model, dimension=E.dimension)
        for name, scope in (("a", "team-a"), ("b", "team-b")):
            await agents.register(root, name=name, kind="bot", agent_id=name)
            await access.grant_agent(root, agent_id=name, secret=SECRETS[name], scopes=[scope])
        await access.add_user(root, name=VIEWER[0], password=VIEWER[1], role="viewer")
        run_b = await runs.create_run(root, spec_digest="b" * 64, agent_name="b")
        await runs.append_event(root, run_id=run_b.id, kind="observation", payload={"x": 1})
        m1 = await memory.remember(
            root,
            scope="team-b",
            content="the launch plan is secret",
            key="plan",
            embedder=E,
            agent="b",
        )
        await provenance.attach(
            root, memory=m1.id, sources=[provenance.RunTrace(run_id=run_b.id, seq=1)]
        )
        m2 = await memory.remember(
            root,
            scope="team-b",
            content="summary: launch plan",
            key="plan",
            embedder=E,
            agent="b",
        )
        await provenance.attach(
            root,
            memory=m2.id,
            sources=[provenance.MemoryDerivation(parent=m1.id, how="summarise")],
        )
        decision = await provenance.record_decision(
            root, task="launch", action="go", confidence=0.9, used=[m1.id], agent="b"
        )
        await commits.commit(root, state={"goal": "ship"}, message="start", author="owner")
        run_a = await runs.create_run(root, spec_digest="a" * 64, agent_name="a")
        a1 = await memory.remember(
            root,
            scope="team-a",
            content="notes on our plan",
            key="plan",
            embedder=E,
            agent="a",
        )
        # B's memory sourced from A's run: A's distrust of that run must not reach it.
        await runs.append_event(root, run_id=run_a.id, kind="observation", payload={"y": 2})
        m3 = await memory.remember(
            root, scope="team-b", content="b heard this from a's run", embedder=E, agent="b"
        )
        await provenance.attach(
            root, memory=m3.id, sources=[provenance.RunTrace(run_id=run_a.id, seq=1)]
        )
        # Links across scopes, made by the owner: A's memory derived from B's, and a decision
        # of A's that used both. A's walks must stop at what A may see.
        await provenance.attach(
            root, memory=a1.id, sources=[provenance.MemoryDerivation(parent=m1.id, how="quote")]
        )
        await provenance.record_decision(
            root, task="mixed", action="go", confidence=0.5, used=[a1.id, m2.id], agent="a"
        )
    return World(site, run_b.id, m1.id, m2.id, decision.id, a1.id, run_a.id)


FINGERPRINT = """
SELECT * FROM memory WHERE scope = 'team-b' ORDER BY id;
SELECT * FROM decision WHERE agent = agent:b ORDER BY id;
SELECT * FROM run WHERE agent_name = 'b' ORDER BY id;
SELECT * FROM run_event WHERE run.agent_name = 'b' ORDER BY id;
SELECT * FROM derived_from WHERE in.scope = 'team-b' OR out.scope = 'team-b' ORDER BY id;
SELECT * FROM sourced_from WHERE in.scope = 'team-b' ORDER BY id;
SELECT * FROM used WHERE out.scope = 'team-b' ORDER BY id;
SELECT * FROM source_invalidation WHERE source.scope = 'team-b' OR source.run.agent_name = 'b';
SELECT * FROM agent ORDER BY id;
SELECT * OMIT updated_at, unindexed FROM embedding_space;
INFO FOR DB;
"""


async def fingerprint(site: Site) -> str:
    async with site.open(root=True) as root:
        return repr(await root.execute(FINGERPRINT))


def site_tmp(site: Site) -> Path:
    return Path(site.tmp)


def leaks(value: Any, world: World) -> list[str]:
    text = repr(value)
    return [m for m in world.markers if m in text]


Attempt = tuple[str, Callable[[Store], Awaitable[Any]]]


def agent_attempts(w: World) -> list[Attempt]:
    b_trace = provenance.RunTrace(run_id=w.run_b, seq=1)
    return [
        # public reads
        ("memory.get", lambda s: memory.get(s, memory=w.m1)),
        ("memory.by_key", lambda s: memory.by_key(s, key="plan", scope="team-b")),
        ("memory.latest_by_key", lambda s: memory.latest_by_key(s, scope="team-b")),
        ("memory.recall", lambda s: memory.recall(s, text="launch plan secret", embedder=E)),
        ("memory.recall scope", lambda s: memory.recall(s, text="plan", scope="team-b")),
        ("memory.recall agent", lambda s: memory.recall(s, text="plan", agent="b")),
        ("memory.recall vector", lambda s: memory.recall(s, vector=E.vector("launch"))),
        ("provenance.lineage", lambda s: provenance.lineage(s, memory=w.m2)),
        ("provenance.why", lambda s: provenance.why(s, decision=w.decision_b)),
        ("provenance.impact memory", lambda s: provenance.impact(s, memory=w.m1)),
        ("provenance.impact source", lambda s: provenance.impact(s, source=b_trace)),
        ("provenance.get_decision", lambda s: provenance.get_decision(s, decision=w.decision_b)),
        (
            "provenance.decisions_for_task",
            lambda s: provenance.decisions_for_task(s, task="launch"),
        ),
        ("provenance.success_rates", lambda s: provenance.success_rates(s, by="task")),
        ("runs.get_run", lambda s: runs.get_run(s, run_id=w.run_b)),
        ("runs.events", lambda s: runs.events(s, run_id=w.run_b)),
        ("runs.list_runs", lambda s: runs.list_runs(s)),
        ("runs.list_runs agent", lambda s: runs.list_runs(s, agent_name="b")),
        ("agents.get", lambda s: agents.get(s, agent_id="b")),
        ("agents.list_all", lambda s: agents.list_all(s)),
        ("access.list_agents", lambda s: access.list_agents(s)),
        ("access.list_users", lambda s: access.list_users(s)),
        # public writes
        ("memory.invalidate", lambda s: memory.invalidate(s, memory=w.m1, reason="x")),
        ("memory.restore", lambda s: memory.restore(s, memory=w.m1)),
        ("memory.forget id", lambda s: memory.forget(s, memory=w.m1)),
        ("memory.forget subject", lambda s: memory.forget(s, key="plan", scope="team-b")),
        ("memory.forget no purge", lambda s: memory.forget(s, memory=[w.m1, w.m2], purge=False)),
        ("memory.remember scope", lambda s: memory.remember(s, scope="team-b", content="x")),
        (
            "memory.remember as b",
            lambda s: memory.remember(s, scope="team-a", content="y", agent="b"),
        ),
        (
            "memory.remember_many",
            lambda s: memory.remember_many(
                s, [memory.NewMemory(scope="team-b", content="z", embedding=E.vector("z"))]
            ),
        ),
        (
            "provenance.attach derivation",
            lambda s: provenance.attach(
                s, memory=w.a1, sources=[provenance.MemoryDerivation(parent=w.m1, how="copy")]
            ),
        ),
        ("provenance.attach trace", lambda s: provenance.attach(s, memory=w.a1, sources=[b_trace])),
        (
            "provenance.record_decision used",
            lambda s: provenance.record_decision(
                s, task="t", action="a", confidence=0.5, used=[w.m1]
            ),
        ),
        (
            "provenance.record_decision as b",
            lambda s: provenance.record_decision(
                s, task="t", action="a", confidence=0.5, agent="b"
            ),
        ),
        (
            "provenance.record_outcome",
            lambda s: provenance.record_outcome(
                s, decision=w.decision_b, outcome={"ok": False}, success=False
            ),
        ),
        (
            "provenance.invalidate memory",
            lambda s: provenance.invalidate(s, memory=w.m1, reason="x"),
        ),
        (
            "provenance.invalidate source",
            lambda s: provenance.invalidate(s, source=b_trace, reason="x"),
        ),
        ("provenance.restore", lambda s: provenance.restore(s, source=b_trace)),
        ("runs.append_event", lambda s: runs.append_event(s, run_id=w.run_b, kind="k")),
        ("runs.complete", lambda s: runs.complete(s, run_id=w.run_b, success=True)),
        ("runs.cancel", lambda s: runs.cancel(s, run_id=w.run_b)),
        (
            "runs.create_run as b",
            lambda s: runs.create_run(s, spec_digest="c" * 64, agent_name="b"),
        ),
        ("agents.register", lambda s: agents.register(s, name="evil", kind="bot")),
        (
            "access.grant_agent",
            lambda s: access.grant_agent(s, agent_id="a", secret="x" * 12, scopes=["team-b"]),
        ),
        ("access.revoke_agent", lambda s: access.revoke_agent(s, agent_id="b")),
        # domains closed to agents
        ("commits.commit", lambda s: commits.commit(s, state={}, message="m", author="a")),
        ("commits.log", lambda s: commits.log(s, branch="main")),
        ("branches.list_all", lambda s: branches.list_all(s)),
        ("cas.put", lambda s: cas.put(s, data=b"x")),
        (
            "access.add_user",
            lambda s: access.add_user(s, name="mallory", password="x" * 12, role="owner"),
        ),
    ]


def raw_attacks(w: World) -> list[str]:
    m1, m2, d, run = f"memory:`{w.m1}`", f"memory:`{w.m2}`", f"decision:`{w.decision_b}`", w.run_b
    return [
        "SELECT * FROM memory",
        "SELECT * FROM memory WHERE scope = 'team-b'",
        f"SELECT * FROM {m1}",
        f"RETURN {m1}.content",
        f"RETURN {m1}.*",
        "RETURN (SELECT * FROM memory WHERE scope = 'team-b')",
        "SELECT * FROM memory WHERE content @@ 'launch'",
        f"SELECT ->derived_from->memory.* AS up FROM {m2}",
        f"RETURN {m2}->derived_from->memory.content",
        f"RETURN {m1}<-used<-decision.*",
        f"RETURN {d}->used->memory.content",
        f"SELECT * FROM {d}",
        "SELECT * FROM decision",
        "SELECT * FROM used",
        "SELECT * FROM derived_from",
        "SELECT * FROM sourced_from",
        "SELECT * FROM run",
        f"SELECT * FROM run:`{run}`",
        "SELECT * FROM run_event",
        "SELECT * FROM source_invalidation",
        "SELECT * FROM agent",
        "SELECT secret_hash FROM agent",
        "SELECT * FROM commit",
        "SELECT * FROM schema_lock",
        f"LET $m = {m1}; RETURN $m.content",
        "LET $x = agent:b; SELECT * FROM memory WHERE agent = $x",
        "LET $auth = agent:b; SELECT * FROM memory",
        "RETURN fn::memory_text((SELECT VALUE content FROM memory WHERE scope = 'team-b'))",
        f"UPDATE {m1} SET valid_until = time::now() + 1d",
        f"UPDATE {m1} SET invalidated_at = time::now(), invalidated_causes = [{m1}]",
        "UPDATE memory SET valid_until = time::now() + 2d WHERE scope = 'team-b'",
        f"UPSERT {m1} SET valid_until = time::now() + 3d",
        f"DELETE {m1}",
        "DELETE memory WHERE scope = 'team-b'",
        f"DELETE {d}",
        "CREATE memory CONTENT { scope: 'team-b', kind: 'note', content: 'forged', "
        "content_hash: crypto::sha256('forged') }",
        "INSERT INTO memory { scope: 'team-b', kind: 'note', content: 'forged2', "
        "content_hash: crypto::sha256('forged2') }",
        f"RELATE {d}->used->memory:`{w.a1}` SET rank = 1",
        f"RELATE memory:`{w.a1}`->derived_from->{m1} SET how = 'steal'",
        f"RELATE {m1}->derived_from->memory:`{w.a1}` SET how = 'plant'",
        f"RELATE memory:`{w.a1}`->sourced_from->run_event:['{run}', 1]",
        f"CREATE source_invalidation:[{m1}] SET source = {m1}, reason = 'x'",
        "CREATE decision SET task = 't', action = 'a', confidence = 0.5, rationale = '', "
        "agent = agent:b",
        f"CREATE run_event:['{run}', 2] SET run = run:`{run}`, seq = 2, kind = 'k'",
        f"UPDATE run:`{run}` SET tags = ['x']",
        "UPDATE agent:a SET scopes = ['team-a', 'team-b']",
        "UPDATE agent:b SET secret_hash = crypto::argon2::generate('mine')",
        "UPDATE embedding_space:active SET model = 'evil', dimension = 3",
        "UPDATE embedding_space:active SET index_kind = 'hnsw', diskann_degree = 8",
        "UPDATE embedding_space:active SET diskann_l_build = 16, built_at = time::now()",
        "INFO FOR DB",
        "INFO FOR TABLE memory",
        "INFO FOR USER ana ON DATABASE",
        "DEFINE TABLE OVERWRITE memory SCHEMALESS PERMISSIONS FULL",
        "DEFINE FIELD OVERWRITE scope ON memory TYPE string PERMISSIONS FULL",
        "DEFINE USER mallory ON DATABASE PASSWORD 'mallory-pw' ROLES OWNER",
        "DEFINE ACCESS OVERWRITE agent ON DATABASE TYPE RECORD SIGNIN (SELECT * FROM agent)",
        "DEFINE FUNCTION fn::leak() { RETURN SELECT * FROM memory }",
        "REMOVE TABLE memory",
        "REBUILD INDEX memory_content ON memory",
        "USE DB other",
        "USE NS other",
    ]


async def attack(store: Store, w: World, attempts: list[Attempt]) -> dict[str, str]:
    """Run each attempt; return how each ended. Nothing of B's may come back."""
    outcomes: dict[str, str] = {}
    for label, call in attempts:
        try:
            result = await call(store)
        except StoreError as exc:
            # An error may repeat the id it was given; it must not show what is behind it.
            said = getattr(exc, "message", str(exc))  # not the statement it repeats
            shown = [m for m in ("team-b", "launch plan") if m in said]
            denied = isinstance(exc, PermissionDeniedError)
            if shown:
                outcomes[label] = f"leaked {shown}"
            else:
                outcomes[label] = "refused" if denied else f"failed: {type(exc).__name__}"
            continue
        assert not leaks(result, w), (label, leaks(result, w), result)
        outcomes[label] = "answered"
    assert not [k for k, v in outcomes.items() if v.startswith("leaked")], outcomes
    return outcomes


def _raw(text: str) -> Callable[[Store], Awaitable[Any]]:
    return lambda s: s.execute(text)


async def test_an_agent_reaches_nothing_of_another(site: Site) -> None:
    w = await build(site)
    before = await fingerprint(site)
    async with site.open(agent="a", agent_secret=SECRETS["a"]) as a:
        assert a.signed_in_as == SignIn("agent", "a")
        outcomes = await attack(a, w, agent_attempts(w))
        raw = await attack(a, w, [(text, _raw(text)) for text in raw_attacks(w)])
        # The agent's own world works: its memory, recall, provenance, its run.
        own = await memory.get(a, memory=w.a1)
        assert own.agent == "a"
        hits = await memory.recall(a, text="plan", embedder=E, k=10)
        assert [h.memory.id for h in hits] == [w.a1]
        note = await memory.remember(a, scope="team-a", content="mine", embedder=E)
        assert note.agent == "a"  # authorship is the sign-in's, by default
        await provenance.attach(
            a, memory=note.id, sources=[provenance.MemoryDerivation(parent=w.a1, how="x")]
        )
        assert f"memory:{note.id}" in (await provenance.lineage(a, memory=note.id)).nodes
        await runs.append_event(a, run_id=w.run_a, kind="step")
        decision = await provenance.record_decision(
            a, task="t", action="a", confidence=0.5, used=[w.a1]
        )
        assert [n for n in (await provenance.why(a, decision=decision.id)).nodes if "memory" in n]
        # Walks from A's own records stop where A's sight ends.
        for graph in (
            await provenance.lineage(a, memory=w.a1),
            await provenance.impact(a, memory=w.a1),
            *[
                await provenance.why(a, decision=d.id)
                for d in await provenance.decisions_for_task(a, task="mixed")
            ],
        ):
            assert not leaks(graph, w), graph
        assert len(await provenance.decisions_for_task(a, task="mixed")) == 1
        # Its own memories, decisions and runs go through their whole life.
        await memory.invalidate(a, memory=note.id, reason="wrong")
        await memory.restore(a, memory=note.id)
        await provenance.invalidate(a, memory=note.id, reason="distrusted")
        await provenance.restore(a, memory=note.id)
        await provenance.record_outcome(a, decision=decision.id, outcome={"ok": 1}, success=True)
        # Distrusting its own run marks its own memories only, never B's sourced from it.
        a_sourced = await memory.remember(a, scope="team-a", content="from my run", embedder=E)
        await provenance.attach(
            a, memory=a_sourced.id, sources=[provenance.RunTrace(run_id=w.run_a, seq=1)]
        )
        receipt = await provenance.invalidate(
            a, source=provenance.RunTrace(run_id=w.run_a, seq=1), reason="bad run"
        )
        assert not leaks(receipt, w)
        assert (await memory.get(a, memory=a_sourced.id)).invalidated_at is not None
        await runs.complete(a, run_id=w.run_a, success=True)
        assert (await memory.forget(a, memory=note.id)).memories == [note.id]
    # Every named B record is not visible; every write to B's is refused or finds nothing.
    must_refuse = {
        "memory.get",
        "provenance.lineage",
        "provenance.why",
        "provenance.get_decision",
        "runs.get_run",
        "agents.get",
        "memory.invalidate",
        "memory.restore",
        "memory.remember scope",
        "memory.remember as b",
        "memory.remember_many",
        "provenance.attach derivation",
        "provenance.attach trace",
        "provenance.record_decision used",
        "provenance.record_decision as b",
        "provenance.record_outcome",
        "provenance.invalidate memory",
        "provenance.invalidate source",
        "runs.append_event",
        "runs.complete",
        "runs.cancel",
        "runs.create_run as b",
        "agents.register",
        "access.grant_agent",
        "access.revoke_agent",
        "access.add_user",
        "access.list_users",
        "commits.commit",
        "commits.log",
        "branches.list_all",
        "cas.put",
    }
    refused = {k for k, v in outcomes.items() if v == "refused"}
    assert must_refuse <= refused, sorted(must_refuse - refused)
    raw_refused = {k for k, v in raw.items() if v == "refused"}
    for text in raw_attacks(w):
        head = text.split()[0]
        if head in {"CREATE", "INSERT", "RELATE", "INFO", "DEFINE", "REMOVE", "REBUILD", "USE"}:
            assert text in raw_refused, text
    assert "LET $auth = agent:b; SELECT * FROM memory" in raw_refused
    assert "UPDATE agent:a SET scopes = ['team-a', 'team-b']" in raw_refused
    for text in raw_attacks(w):
        if "embedding_space" in text:  # its fields an agent may not change (finding 4)
            assert text in raw_refused, text
    async with site.open(agent="a", agent_secret=SECRETS["a"]) as a:
        with pytest.raises(PermissionDeniedError):  # the feed holds every scope's changes
            await a.execute("SHOW CHANGES FOR TABLE memory SINCE 0 LIMIT 1")
    assert await fingerprint(site) == before


def viewer_attempts(w: World) -> list[Attempt]:
    writes = [
        (label, call)
        for label, call in agent_attempts(w)
        if label.split(".")[0] in {"memory", "provenance", "runs", "agents", "access"}
        and any(
            verb in label
            for verb in (
                "invalidate",
                "restore",
                "forget",
                "remember",
                "attach",
                "record_",
                "append",
                "complete",
                "cancel",
                "create",
                "register",
                "grant",
                "revoke",
                "add",
            )
        )
    ]
    own = [
        ("remember own", lambda s: memory.remember(s, scope="team-a", content="v", embedder=E)),
        ("invalidate own", lambda s: memory.invalidate(s, memory=w.a1, reason="v")),
        ("forget own", lambda s: memory.forget(s, memory=w.a1)),
        ("append own run", lambda s: runs.append_event(s, run_id=w.run_a, kind="k")),
        # A commit is one stored function: the engine refuses it (the client's check of the
        # query's words finds no write in it), on an existing branch and on a new one alike.
        ("commit on main", lambda s: commits.commit(s, state={"x": 1}, message="m", author="v")),
        (
            "commit on a new branch",
            lambda s: commits.commit(s, state={"x": 2}, message="m", author="v", branch="side"),
        ),
    ]
    return writes + own


async def test_a_viewer_reads_and_never_writes(site: Site) -> None:
    w = await build(site)
    before = await fingerprint(site)
    async with site.open(root=True) as root:
        a_before = repr(await root.execute("SELECT * FROM memory WHERE scope = 'team-a'"))
    async with site.open(username=VIEWER[0], password=VIEWER[1]) as viewer:
        assert viewer.signed_in_as == SignIn("user", "ana", "VIEWER")
        # A notebook reads the whole tenant, provenance included.
        assert (await memory.get(viewer, memory=w.m1)).content == "the launch plan is secret"
        assert f"memory:{w.m1}" in (await provenance.why(viewer, decision=w.decision_b)).nodes
        b_trace = provenance.RunTrace(run_id=w.run_b, seq=1)
        reads = [
            memory.recall(viewer, text="launch plan", embedder=E, mode="hybrid"),
            memory.recall(viewer, text="launch plan", mode="fulltext"),
            memory.recall(viewer, vector=E.vector("launch plan")),
            memory.by_key(viewer, key="plan", scope="team-b"),
            memory.latest_by_key(viewer, scope="team-b"),
            provenance.lineage(viewer, memory=w.m2),
            provenance.impact(viewer, source=b_trace),
            provenance.decisions_for_task(viewer, task="launch"),
            provenance.success_rates(viewer, by="task"),
            runs.get_run(viewer, run_id=w.run_b),
            runs.events(viewer, run_id=w.run_b),
            runs.list_runs(viewer),
            agents.list_all(viewer),
            access.list_users(viewer),
            branches.list_all(viewer),
            bundles.export_bundle(viewer, site_tmp(site) / "viewer-bundle"),
        ]
        for read in reads:
            assert await read is not None  # none refused: reading is the viewer's job
        not_refused = []
        for label, call in viewer_attempts(w):
            try:
                await call(viewer)
            except PermissionDeniedError:
                continue
            not_refused.append(label)
        assert not_refused == []
        for text in raw_attacks(w):
            if text.split()[0] in {"SELECT", "RETURN", "INFO"} or text.startswith("LET $m"):
                continue
            if text.startswith("LET $x"):
                continue
            with pytest.raises(PermissionDeniedError):
                await viewer.execute(text)
        # A viewer reads the change feed too (README, "How recall works"): it reads the
        # whole tenant anyway. (A page counts every table's transactions: the memory table's
        # first change need not be the database's first.)
        assert await viewer.execute("SHOW CHANGES FOR TABLE memory SINCE 0 LIMIT 1000") != [[]]
        assert await viewer.execute("SHOW CHANGES FOR DATABASE SINCE 0 LIMIT 1") != [[]]
    # The client's refusal is a courtesy: the same writes sent by a raw SDK session signed in
    # as the VIEWER are refused by the engine.
    async with raw_viewer(site) as db:
        await db.use(site.namespace, site.database)
        for text in raw_attacks(w):
            head = text.split()[0]
            if head in {"SELECT", "RETURN", "INFO", "LET", "USE"}:
                continue
            answer = (await db.query_raw(text, None))["result"][-1]
            assert answer["status"] == "ERR", (text, answer)
            if head != "UPSERT":  # see tests/test_roles.py: refused by the type checks
                said = str(answer["result"])
                assert "permission_denied" in said or "Not enough permissions" in said, said
    assert await fingerprint(site) == before
    async with site.open(root=True) as root:
        assert repr(await root.execute("SELECT * FROM memory WHERE scope = 'team-a'")) == a_before


async def test_tenants_are_apart(site: Site) -> None:
    w = await build(site)
    async with site.open(root=True, tenant="globex") as globex:
        await memory.declare_space(globex, model=E.model, dimension=E.dimension)
        g = await memory.remember(globex, scope="team-b", content="globex plan", embedder=E)
        assert await memory.recall(globex, text="launch plan", embedder=E) != []
        assert {h.memory.id for h in await memory.recall(globex, text="plan", embedder=E)} == {g.id}
        with pytest.raises(NotFoundError):
            await memory.get(globex, memory=w.m1)
    # A user or agent of one tenant cannot sign in to another.
    with pytest.raises(StoreError):
        async with site.open(tenant="globex", username=VIEWER[0], password=VIEWER[1]):
            pass  # pragma: no cover
    with pytest.raises(StoreError):
        async with site.open(tenant="globex", agent="a", agent_secret=SECRETS["a"]):
            pass  # pragma: no cover
    # The engine itself refuses a VIEWER's session another database (not only our client).
    async with raw_viewer(site) as db:
        other = site.tenant("globex")
        answer = await db.query_raw(f"USE DB {other}; SELECT * FROM memory;", None)
        assert "globex plan" not in json.dumps(answer, default=str)


@pytest.mark.parametrize("name", ["fo%", "foo\x00", "f\u043eo", "foo bar", "foo;", "", "a" * 65])
def test_tenant_names_compare_whole(name: str) -> None:
    from surreal_store import ConfigError

    with pytest.raises(ConfigError):
        Store("mem://", tenant=name)


async def test_look_alike_tenants_never_leak(site: Site) -> None:
    names = ["foo", "foobar", "fo", "FOO", "foo_", "foo_bar"]
    for name in names:
        async with site.open(root=True, tenant=name) as t:
            await memory.remember(t, scope="s", content=f"memory of {name}", key="k")
    for name in names:
        async with site.open(root=True, tenant=name) as t:
            found = await memory.by_key(t, key="k", scope="s")
            assert [m.content for m in found] == [f"memory of {name}"]
            hits = await memory.recall(t, text="memory", k=50)
            assert [h.memory.content for h in hits] == [f"memory of {name}"]


async def test_look_alike_scopes_bind_an_agent(site: Site) -> None:
    async with site.open(root=True) as root:
        for scope in LOOK_ALIKES:
            await memory.remember(root, scope=scope, content=f"in {scope!r}", key="k")
        await agents.register(root, name="foo", kind="bot", agent_id="foo")
        await access.grant_agent(root, agent_id="foo", secret=SECRETS["a"], scopes=["foo"])
    async with site.open(agent="foo", agent_secret=SECRETS["a"]) as a:
        rows = await a.query("SELECT VALUE scope FROM memory", str)
        assert rows == ["foo"]
        for scope in LOOK_ALIKES:
            found = await memory.by_key(a, key="k", scope=scope)
            assert [m.scope for m in found] == ([scope] if scope == "foo" else [])
            receipt = await memory.forget(a, key="k", scope=scope)
            assert len(receipt.memories) == (1 if scope == "foo" else 0)
    async with site.open(root=True) as root:
        left = set(await root.query("SELECT VALUE scope FROM memory", str))
        assert left == set(LOOK_ALIKES) - {"foo"}


async def test_forget_and_export_under_an_agent_touch_only_its_own(
    site: Site, tmp_path: Path
) -> None:
    w = await build(site)
    before = await fingerprint(site)
    out = tmp_path / "bundle"
    async with site.open(agent="a", agent_secret=SECRETS["a"]) as a:
        manifest = await bundles.export_bundle(a, out)
        receipt = await memory.forget(a, key="plan", scope="team-a")
        assert receipt.memories == [w.a1]
    text = "".join(p.read_text() for p in out.iterdir())
    assert not [m for m in w.markers if m in text]
    assert w.a1 in text
    assert manifest["tables"]["memory"]["records"] == 1
    assert await fingerprint(site) == before


async def test_signing_in_with_a_wrong_secret_is_refused(site: Site) -> None:
    await build(site)
    attempts: list[dict[str, Any]] = [
        {"agent": "a", "agent_secret": "wrong-secret"},
        {"agent": "b", "agent_secret": SECRETS["a"]},
        {"agent": "nobody", "agent_secret": SECRETS["a"]},
        {"username": "ana", "password": "wrong-password"},
    ]
    for kwargs in attempts:
        with pytest.raises(PermissionDeniedError):
            async with site.open(**kwargs):
                pass  # pragma: no cover
    async with site.open(root=True) as root:
        await access.revoke_agent(root, agent_id="a")
    with pytest.raises(PermissionDeniedError):
        async with site.open(agent="a", agent_secret=SECRETS["a"]):
            pass  # pragma: no cover


async def test_secrets_never_show(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    await build(site)
    store = site.open(agent="a", agent_secret=SECRETS["a"])
    viewer = site.open(username=VIEWER[0], password=VIEWER[1])
    for s in (store, viewer):
        assert SECRETS["a"] not in repr(s) + repr(s.settings)
        assert VIEWER[1] not in repr(s) + repr(s.settings)
    async with site.open(root=True) as root:
        listed = repr(await access.list_users(root)) + repr(await access.list_agents(root))
        assert "argon2" not in listed and VIEWER[1] not in listed
    assert SECRETS["a"] not in caplog.text and VIEWER[1] not in caplog.text


async def test_rebless_keeps_the_permissions(site: Site, tmp_path: Path) -> None:
    from surreal_store import Migrator, default_schema_dir

    w = await build(site)
    schema = tmp_path / "schema"
    schema.mkdir()
    for f in default_schema_dir().iterdir():
        (schema / f.name).write_text(f.read_text())
    (schema / "003_ledger.surql").write_text(
        (schema / "003_ledger.surql").read_text() + "\n-- edited\n"
    )
    async with site.open(root=True, schema_dir=schema, migrate=False, check_schema=False) as root:
        migrator = Migrator(root, schema_dir=schema)
        assert await migrator.rebless("003") is not None
        assert not (await migrator.drift()).items
    async with site.open(agent="a", agent_secret=SECRETS["a"], schema_dir=schema) as a:
        assert await a.query("SELECT VALUE id FROM run", RecordId) == [RecordId("run", w.run_a)]


async def test_tenants_sharing_one_connection_stay_apart_under_concurrency(
    tmp_path: Path,
) -> None:
    import anyio

    url = f"surrealkv://{tmp_path / 'store'}"
    names = ["t1", "t2", "t3"]
    async with Store(url) as home:
        opened = [Store(url, tenant=n) for n in names]
        for s in opened:
            await s.open()
        try:
            everyone = [home, *opened]
            for i, s in enumerate(everyone):
                await s.execute("CREATE note:1 SET owner = $i", i=i)
            seen: list[tuple[int, int]] = []

            async def hammer(i: int, s: Store) -> None:
                for n in range(60):
                    if n % 3 == 0:
                        await s.execute("UPDATE note:1 SET n = $n", n=n)
                    seen.append((i, await s.query_required_single("RETURN note:1.owner", int)))

            async with anyio.create_task_group() as tg:
                for i, s in enumerate(everyone):
                    tg.start_soon(hammer, i, s)
            assert len(seen) == 60 * len(everyone)
            assert all(i == owner for i, owner in seen)
        finally:
            for s in opened:
                await s.aclose()


async def test_a_bundle_holds_one_tenant(site: Site, tmp_path: Path) -> None:
    async with site.open(root=True, tenant="acme") as acme:
        kept = await memory.remember(acme, scope="s", content="acme's memory")
        await bundles.export_bundle(acme, tmp_path / "acme")
    async with site.open(root=True, tenant="other") as other:
        await memory.remember(other, scope="s", content="other's memory")
    async with site.open(root=True, tenant="copy") as copy:
        await bundles.import_bundle(copy, tmp_path / "acme")
        hits = await memory.recall(copy, text="memory")
        assert [h.memory.content for h in hits] == ["acme's memory"]
        assert (await memory.get(copy, memory=kept.id)).content == "acme's memory"


# -- tenants in one process (#34) ---------------------------------------------------------------

# Two tenants with a user each (the same name in both, other passwords, as people do), an
# agent of the same id in both (other secrets and scopes), and each tenant's own data.
TENANT_LOGINS = {
    "xco": {"user": ("ana", "xco-password"), "agent": ("scout", "xco-scout-secret", "x-team")},
    "yco": {"user": ("ana", "yco-password"), "agent": ("scout", "yco-scout-secret", "y-team")},
}


async def _two_tenants(url: str) -> None:
    for tenant, login in TENANT_LOGINS.items():
        async with Store(url, tenant=tenant) as root:
            name, password = login["user"]
            await access.add_user(root, name=name, password=password, role="editor")
            agent_id, secret, scope = login["agent"]
            await agents.register(root, name=agent_id, kind="bot", agent_id=agent_id)
            await access.grant_agent(root, agent_id=agent_id, secret=secret, scopes=[scope])
            await memory.remember(root, scope=scope, content=f"{tenant} secret", agent=agent_id)
            await root.execute("CREATE note:1 SET text = $text", text=f"{tenant} note")


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two tenants' files, built once; each test works on a copy."""
    import anyio

    path = tmp_path_factory.mktemp("tenants") / "store"
    anyio.run(_two_tenants, f"surrealkv://{path}", backend="asyncio")
    return path


def _copy(template: Path, tmp_path: Path) -> str:
    import shutil

    shutil.copytree(template, tmp_path / "store")
    return f"surrealkv://{tmp_path / 'store'}"


def _tenant_store(url: str, who: str) -> Store:
    kind, tenant = who.split("@")
    login = TENANT_LOGINS[tenant]
    if kind == "user":
        name, password = login["user"]
        return Store(url, tenant=tenant, username=name, password=password)
    agent_id, secret, _ = login["agent"]
    return Store(url, tenant=tenant, agent=agent_id, agent_secret=secret)


async def _reaches_only_its_own(store: Store, who: str) -> None:
    kind, tenant = who.split("@")
    other = next(t for t in TENANT_LOGINS if t != tenant)
    seen = await store.query("SELECT VALUE content FROM memory", str)
    assert seen == [f"{tenant} secret"], (who, seen)
    if kind == "user":
        assert store.signed_in_as.role == "EDITOR"
        assert await store.query("SELECT VALUE text FROM note:1", str) == [f"{tenant} note"]
        await store.execute("UPSERT note:2 SET text = $text", text=f"{tenant} by {who}")
    else:
        assert store.signed_in_as == SignIn("agent", "scout")
        with pytest.raises(PermissionDeniedError):
            await memory.remember(store, scope=f"{other[0]}-team", content="planted")


@pytest.mark.parametrize(
    "order", list(itertools.permutations(["user@xco", "user@yco", "agent@yco"])), ids=str
)
async def test_two_tenants_under_different_users_in_any_order(
    two_tenants: Path, tmp_path: Path, order: tuple[str, ...]
) -> None:
    url = _copy(two_tenants, tmp_path)
    async with contextlib.AsyncExitStack() as stack:
        opened: dict[str, Store] = {}
        for who in order:
            opened[who] = await stack.enter_async_context(_tenant_store(url, who))
            for name, store in opened.items():
                await _reaches_only_its_own(store, name)
            # While these are open, a sign-in of one tenant is refused by the other, by the
            # engine: it is never taken from a store already open.
            for tenant in TENANT_LOGINS:
                other = next(t for t in TENANT_LOGINS if t != tenant)
                name, password = TENANT_LOGINS[tenant]["user"]
                agent_id, secret, _ = TENANT_LOGINS[tenant]["agent"]
                with pytest.raises(PermissionDeniedError):
                    async with Store(url, tenant=other, username=name, password=password):
                        pass  # pragma: no cover
                with pytest.raises(PermissionDeniedError):
                    async with Store(url, tenant=other, agent=agent_id, agent_secret=secret):
                        pass  # pragma: no cover
    for tenant in TENANT_LOGINS:
        async with Store(url, tenant=tenant) as root:
            notes = await root.query("SELECT VALUE text FROM note", str)
            writers = [who for who in order if who == f"user@{tenant}"]
            assert sorted(notes) == sorted(
                [f"{tenant} note", *(f"{tenant} by {w}" for w in writers)]
            )


async def test_a_user_of_one_tenant_reaches_nothing_of_another_through_the_engine(
    two_tenants: Path, tmp_path: Path
) -> None:
    """A raw SDK session of a user of tenant xco (an EDITOR there) that USEs tenant yco: the
    engine gives it no record of yco's, in any table, and refuses or skips its writes."""
    url = _copy(two_tenants, tmp_path)
    async with Store(url, tenant="yco") as root:
        tables = sorted((await root.query_required_single("INFO FOR DB", dict))["tables"])
        before = repr(await root.execute("".join(f"SELECT * FROM {t};" for t in tables)))
    db = surrealdb.AsyncSurreal(url)
    await db.connect()
    try:
        name, password = TENANT_LOGINS["xco"]["user"]
        await db.signin(
            {
                "namespace": "surreal_store",
                "database": "xco",
                "username": name,
                "password": password,
            }
        )
        await db.use("surreal_store", "yco")
        for table in tables:
            rows = await db.query_raw(
                f"SELECT * FROM {table}; RETURN count(SELECT id FROM {table});", None
            )
            assert [r["result"] for r in rows["result"]] == [[], 0], table
            for text in (
                f"UPDATE {table} SET probe = 1",
                f"DELETE {table}",
                f"CREATE {table}:probe SET probe = 1",
            ):
                answer = (await db.query_raw(text, None))["result"][0]
                assert answer["status"] == "ERR" or answer["result"] == [], (text, answer)
        # An agent's session stays in its own database whatever USE says.
        agent_id, secret, _ = TENANT_LOGINS["xco"]["agent"]
        await db.signin(
            {
                "namespace": "surreal_store",
                "database": "xco",
                "access": "agent",
                "variables": {"agent": agent_id, "secret": secret},
            }
        )
        answers = await db.query_raw("USE DB yco; SELECT VALUE content FROM memory;", None)
        assert "yco secret" not in json.dumps(answers, default=str)
    finally:
        await db.close()
    async with Store(url, tenant="yco") as root:
        assert repr(await root.execute("".join(f"SELECT * FROM {t};" for t in tables))) == before


async def test_what_a_later_schema_file_adds_is_closed_until_the_access_table_opens_it(
    schema_copy: Path, tmp_path: Path
) -> None:
    """A later file adds a field to memory and a table of its own (even one it declares open
    to everyone): the access layer, applied after it, closes both to agents and to a VIEWER's
    writes. The schema's own later fields (embedding_space.index_kind, diskann_*) likewise."""
    (schema_copy / "099_later.surql").write_text(
        "DEFINE FIELD OVERWRITE mood ON memory TYPE option<string>;\n"
        "DEFINE TABLE OVERWRITE gossip SCHEMAFULL PERMISSIONS FULL;\n"
        "DEFINE FIELD OVERWRITE text ON gossip TYPE string PERMISSIONS FULL;\n"
    )
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url, schema_dir=schema_copy) as root:
        await memory.declare_space(root, model=E.model, dimension=E.dimension)
        await agents.register(root, name="a", kind="bot", agent_id="a")
        await access.grant_agent(root, agent_id="a", secret=SECRETS["a"], scopes=["team-a"])
        await access.add_user(root, name=VIEWER[0], password=VIEWER[1], role="viewer")
        m = await memory.remember(root, scope="team-a", content="mine", agent="a")
        await root.execute("UPDATE $m SET mood = 'calm'", m=RecordId("memory", m.id))
        await root.execute("CREATE gossip:1 SET text = 'heard'")
        space = await root.query_required_single("SELECT * FROM ONLY embedding_space:active", dict)
    mid = RecordId("memory", m.id)
    async with Store(url, schema_dir=schema_copy, agent="a", agent_secret=SECRETS["a"]) as a:
        assert "mood" not in await a.query_required_single("SELECT * FROM ONLY $m", dict, m=mid)
        for text in (
            "UPDATE $m SET mood = 'angry'",
            "UPDATE embedding_space:active SET index_kind = "
            "IF index_kind = 'hnsw' { 'diskann' } ELSE { 'hnsw' }",
            "UPDATE embedding_space:active SET diskann_degree = 9, diskann_l_build = 17",
            "CREATE gossip:2 SET text = 'planted'",
        ):
            with pytest.raises(PermissionDeniedError):
                await a.execute(text, m=mid)
        with pytest.raises(PermissionDeniedError):
            await a.execute(
                "CREATE type::record('memory', $id) CONTENT { scope: 'team-a', kind: 'note', "
                "content: 'moody', content_hash: crypto::sha256('moody'), mood: 'x' }",
                id=memory.memory_id("team-a", "moody"),
            )
        assert await a.query("SELECT * FROM gossip", dict) == []
        assert await a.execute("UPDATE gossip SET text = 'x'") == [[]]
    async with Store(url, schema_dir=schema_copy, username=VIEWER[0], password=VIEWER[1]) as v:
        assert await v.query("SELECT VALUE text FROM gossip", str) == ["heard"]
    db = surrealdb.AsyncSurreal(url)  # the viewer's raw session: no client check on the way
    await db.connect()
    try:
        await db.signin(
            {
                "namespace": "surreal_store",
                "database": "main",
                "username": VIEWER[0],
                "password": VIEWER[1],
            }
        )
        await db.use("surreal_store", "main")
        for text in ("UPDATE gossip:1 SET text = 'x'", "CREATE gossip:3 SET text = 'x'"):
            answer = (await db.query_raw(text, None))["result"][0]
            assert answer["status"] == "ERR" and "permission_denied" in answer["result"], answer
    finally:
        await db.close()
    async with Store(url, schema_dir=schema_copy) as root:
        assert await root.query("SELECT VALUE text FROM gossip", str) == ["heard"]
        assert await root.query("SELECT VALUE mood FROM memory", str) == ["calm"]
        after = await root.query_required_single("SELECT * FROM ONLY embedding_space:active", dict)
        assert {k: v for k, v in after.items() if k != "updated_at"} == {
            k: v for k, v in space.items() if k != "updated_at"
        }


async def test_an_agent_sees_no_edge_to_another_agents_run(tmp_path: Path) -> None:
    """Provenance edges are visible to an agent when it may see both ends: a memory of its
    scope sourced (by the owner) from another agent's run event shows that run to nobody but
    the owner, neither in raw SurrealQL nor in the lineage."""
    url = f"surrealkv://{tmp_path / 'store'}"
    async with Store(url) as owner:
        for name in ("scout", "other"):
            await agents.register(owner, name=name, kind="bot", agent_id=name)
            await access.grant_agent(owner, agent_id=name, secret=SECRETS["a"], scopes=[name])
        secret = await runs.create_run(owner, spec_digest="c" * 64, agent_name="other")
        await runs.append_event(owner, run_id=secret.id, kind="tool_called", payload={"x": 1})
        mine = await runs.create_run(owner, spec_digest="d" * 64, agent_name="scout")
        await runs.append_event(owner, run_id=mine.id, kind="tool_called", payload={"x": 2})
        m = await memory.remember(
            owner,
            scope="scout",
            content="a note the owner sourced",
            provenance=[
                provenance.RunTrace(run_id=secret.id, seq=1),
                provenance.RunTrace(run_id=mine.id, seq=1),
            ],
        )
        assert len(await owner.query("SELECT * FROM sourced_from", dict)) == 2
    async with Store(url, agent="scout", agent_secret=SECRETS["a"]) as scout:
        for text in (
            "SELECT * FROM sourced_from",
            "SELECT VALUE ->sourced_from.out FROM memory",
            "SELECT VALUE <-sourced_from<-memory FROM run_event",
        ):
            assert secret.id not in repr(await scout.execute(text)), text
        graph = await provenance.lineage(scout, memory=m.id)
        assert secret.id not in repr(graph)
        assert mine.id in repr(graph)  # its own run's event is still its to see
