"""The role matrix, generated from the database at test time (#34).

Every table and field that ``INFO FOR DB`` / ``INFO FOR TABLE`` list is written to with raw
SurrealQL (``CREATE``, ``INSERT``, ``UPSERT``, ``RELATE``, ``UPDATE``, ``INSERT ... ON DUPLICATE
KEY UPDATE``, ``DELETE``) through raw SDK sessions, one per role, signed in as that role: an
OWNER, an EDITOR and a VIEWER (database users), agent A (whose records the writes aim at) and
agent B (another scope's). Nothing of the library's client stands between them and the engine.

Each probe first runs inside a transaction that ends with a ``THROW`` carrying what the write
returned, so that it commits nothing and every probe sees the same world; its outcome
(applied, skipped, refused by a permission, refused by an invariant) must be what the access
table (``surreal_store._permissions.matrix``) says for that role, table, field and operation.
A probe the owner cannot apply either (a READONLY field, an immutable table) only has to be
refused by everyone. Then every probe a role is denied runs again for real, and the data of
the whole database must be unchanged. A table or field that the access table does not list
fails the test.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any, Final, Literal

import pytest
import surrealdb
from surrealdb.connections.async_ws import AsyncWsSurrealConnection

from surreal_store import (
    RecordId,
    Store,
    access,
    agents,
    cas,
    ci,
    commits,
    graph,
    memory,
    provenance,
    releases,
    runs,
)
from surreal_store._permissions import ANY, Condition, Op, Role, matrix
from surreal_store.graph._models import fact_key

pytestmark = pytest.mark.anyio

E = memory.HashingEmbedder(8)
SECRETS = {"a": "secret-of-agent-a", "b": "secret-of-agent-b"}
USERS: dict[Literal["owner", "editor", "viewer"], tuple[str, str]] = {
    "owner": ("olga", "olga-password"),
    "editor": ("eddie", "eddie-password"),
    "viewer": ("vera", "vera-password"),
}
# Agent A owns every record the probes aim at; agent B is an agent of another scope.
ROLES = ("owner", "editor", "viewer", "agent", "other_agent")
_AS: dict[str, Role] = {
    "owner": "owner", "editor": "editor", "viewer": "viewer", "agent": "agent",
    "other_agent": "agent",
}  # fmt: skip
NS, DB = "surreal_store", "main"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    """The engine's base64 (no padding)."""
    return base64.b64encode(data).decode().rstrip("=")


def _mid(scope: str, content: str) -> str:
    return _hash(f"{len(scope)}:{scope}{content}")


def _sdk(value: Any) -> Any:
    """Our values as the SDK sends them (record ids)."""
    if isinstance(value, RecordId):
        return surrealdb.RecordID(value.table, _sdk(value.key))
    if isinstance(value, dict):
        return {k: _sdk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sdk(v) for v in value]
    return value


def _ours(value: Any) -> Any:
    if isinstance(value, surrealdb.RecordID):
        return RecordId(value.table_name, _ours(value.id))
    if isinstance(value, dict):
        return {k: _ours(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ours(v) for v in value]
    return value


@dataclasses.dataclass
class World:
    """The store's files, what each table's probes aim at, and what they create."""

    url: str
    targets: dict[str, RecordId]
    """An existing record per table (agent A's where A has any)."""
    new: dict[str, dict[str, Any]]
    """A record per table that does not exist yet, valid for the owner (and agent A's where A
    may create in that table): its id and fields (and in/out for relations)."""
    records: dict[str, list[RecordId]]
    """Existing records per table, for values of record fields."""


async def _build(url: str) -> World:
    async with Store(url) as root:
        await memory.declare_space(root, model=E.model, dimension=E.dimension)
        for name, scope in (("a", "team-a"), ("b", "team-b")):
            await agents.register(root, name=name, kind="bot", agent_id=name)
            await access.grant_agent(root, agent_id=name, secret=SECRETS[name], scopes=[scope])
        for role, (user, password) in USERS.items():
            await access.add_user(root, name=user, password=password, role=role)
        c1 = await commits.commit(root, state={"n": 1}, message="one", author="o")
        c2 = await commits.commit(root, state={"n": 2}, message="two", author="o")
        blob = await cas.put(root, data=b"a blob")
        await releases.promote(
            root, agent_name="a", spec_digest="c" * 64, version_label="v1", promoted_by="o"
        )
        snap = await ci.save_snapshot(root, content={"files": 1})
        pipe = await ci.save_pipeline(root, spec={"steps": ["test"]})
        ci_run = await ci.queue_run(root, snapshot=snap, pipeline=pipe)
        # Agent A's world: memories, a run with events, a decision, edges, a distrust.
        run_a = await runs.create_run(root, spec_digest="a" * 64, agent_name="a", run_id="a:r1")
        await runs.append_events(
            root, run_id=run_a.id, events=[("step", {"i": 1})], idempotency_key="once"
        )
        trace = provenance.RunTrace(run_id=run_a.id, seq=1)
        m1 = await memory.remember(
            root, scope="team-a", content="a one", agent="a", embedder=E, provenance=[trace]
        )
        m2 = await memory.remember(
            root,
            scope="team-a",
            content="a two",
            agent="a",
            embedder=E,
            provenance=[provenance.MemoryDerivation(parent=m1.id, how="summary")],
        )
        m3 = await memory.remember(root, scope="team-a", content="a three", agent="a")
        await memory.invalidate(root, memory=m3.id, reason="doubt")
        d_a = await provenance.record_decision(
            root, task="t", action="go", confidence=0.5, used=[m1.id], agent="a"
        )
        # Agent B's and the owner's: what A must never change.
        run_b = await runs.create_run(root, spec_digest="b" * 64, agent_name="b", run_id="b:r1")
        await runs.append_event(root, run_id=run_b.id, kind="step")
        mb = await memory.remember(
            root,
            scope="team-b",
            content="b one",
            agent="b",
            embedder=E,
            provenance=[provenance.RunTrace(run_id=run_b.id, seq=1)],
        )
        await provenance.record_decision(
            root, task="t", action="stay", confidence=0.5, used=[mb.id], agent="b"
        )
        await provenance.attach(root, memory=mb.id, sources=[provenance.UserAnnotation(user="u")])
        # The knowledge graph (schema 022), in agent A's scope.
        await graph.create_entities(
            root, entities=[graph.NewEntity(name="A1"), graph.NewEntity(name="A2")], scope="team-a"
        )
        await graph.declare_predicate(root, name="knows", single_valued=False, scope="team-a")
        [fact_a] = await graph.assert_facts(
            root,
            facts=[graph.NewFact(subject="A1", predicate="knows", object="A2")],
            scope="team-a",
            source=trace,
        )
        await graph.add_observations(root, entity="A1", contents=["a1 is"], scope="team-a")
        # An entity merge (schema 024), in the same scope.
        await graph.create_entities(
            root, entities=[graph.NewEntity(name="M1"), graph.NewEntity(name="M2")], scope="team-a"
        )
        await graph.merge(root, keep="M1", absorb="M2", reason="probe", scope="team-a")
        # An entity's kept fields (schema 029).
        await graph.update_entity(root, name="A2", summary="changed", scope="team-a")
        # What the probes create needs some records the API does not make.
        loose = "d" * 64
        await root.execute(
            """
            CREATE $bare CONTENT { spec_digest: $digest, agent_name: 'a' };
            CREATE $loose CONTENT { state_hash: $digest, generation: 1, message: 'm', author: 'o' };
            CREATE schema_lock:probe SET owner = 'o', acquired_at = time::now(),
                expires_at = time::now();
            CREATE $lg_blob CONTENT { type: 'json', data: $lg_data };
            CREATE lg_version:probe SET blob = $lg_blob;
            CREATE $lg_ckpt CONTENT {
                thread_id: 't', checkpoint_ns: '', checkpoint_id: 'c1', type: 'json',
                data: $lg_data,
                channel_versions: {}, blobs: {}, metadata_type: 'json', metadata_data: $lg_data,
                metadata: {}, live_thread: 't'
            };
            CREATE lg_write:probe CONTENT { task_id: 'k', idx: 0, channel: 'c', type: 'json',
                data: $lg_data };
            CREATE $lg_item CONTENT { namespace: ['ns'], ns_path: 'ns.', key: 'k', value: {} };
            CREATE $lc_doc CONTENT { collection: 'c', doc_id: 'd', memories: [$m3] };
            """,
            bare=RecordId("run", "a:bare"),
            digest="a" * 64,
            loose=RecordId("commit", loose),
            lg_blob=RecordId("lg_blob", _hash("json:" + _b64(b"{}"))),
            lg_data=b"{}",
            lg_ckpt=RecordId("lg_checkpoint", ["t", "", "c1"]),
            lg_item=RecordId("lg_item", [["ns"], "k"]),
            lc_doc=RecordId("lc_document", ["c", "d"]),
            m3=RecordId("memory", m3.id),
        )
        if "memory_index" in await _tables(root):
            await root.execute(
                "UPSERT memory_index:identity SET database = $d, epoch = $e", d="d" * 32, e="e" * 32
            )
        mem = {k: RecordId("memory", v.id) for k, v in (("m1", m1), ("m2", m2), ("m3", m3))}
        ev1 = RecordId("run_event", [run_a.id, 1])
        dec = RecordId("decision", d_a.id)
        records: dict[str, list[RecordId]] = {}
        for table in await _tables(root):
            records[table] = await root.query(f"SELECT VALUE id FROM {table}", RecordId)
    targets = {
        "agent": RecordId("agent", "a"),
        "memory": mem["m1"],
        "decision": dec,
        "used": RecordId("used", [d_a.id, m1.id]),
        "derived_from": RecordId("derived_from", [m2.id, m1.id]),
        "sourced_from": RecordId("sourced_from", [m1.id, str(ev1)]),
        "source_invalidation": RecordId("source_invalidation", [mem["m3"]]),
        "run": RecordId("run", run_a.id),
        "run_event": ev1,
        "run_seq": RecordId("run_seq", run_a.id),
        "run_append": RecordId("run_append", [run_a.id, "once"]),
        "embedding_space": RecordId("embedding_space", "active"),
        "schema_migration": RecordId("schema_migration", 1),
        "schema_lock": RecordId("schema_lock", "probe"),
        "commit": RecordId("commit", c1.id),
        "branch": RecordId("branch", "main"),
        "blob": RecordId("blob", blob),
        "ci_run": RecordId("ci_run", ci_run.id),
        "ci_snapshot": RecordId("ci_snapshot", snap),
        "ci_pipeline": RecordId("ci_pipeline", pipe),
        "memory_index": RecordId("memory_index", "identity"),
    }
    for table, ids in records.items():
        if table not in targets and ids:
            targets[table] = ids[0]
    now = dt.datetime.now(dt.UTC)
    content = "a probe"
    lg_data = _b64(b"[]")
    new: dict[str, dict[str, Any]] = {
        "agent": {"id": RecordId("agent", "probe"), "name": "probe", "kind": "bot"},
        "memory": {
            "id": RecordId("memory", _mid("team-a", content)),
            "scope": "team-a",
            "agent": RecordId("agent", "a"),
            "kind": "note",
            "content": content,
            "content_hash": _hash(content),
        },
        "decision": {
            "id": RecordId("decision", f"a_{uuid.uuid4().hex}"),
            "agent": RecordId("agent", "a"),
            "task": "t",
            "action": "probe",
            "rationale": "",
            "confidence": 0.5,
        },
        "used": {"id": RecordId("used", [d_a.id, m2.id]), "in": dec, "out": mem["m2"], "rank": 2},
        "derived_from": {
            "id": RecordId("derived_from", [m1.id, m3.id]),
            "in": mem["m1"],
            "out": mem["m3"],
            "how": "probe",
        },
        "sourced_from": {
            "id": RecordId("sourced_from", [m2.id, str(ev1)]),
            "in": mem["m2"],
            "out": ev1,
        },
        "source_invalidation": {
            "id": RecordId("source_invalidation", [mem["m2"]]),
            "source": mem["m2"],
            "reason": "probe",
        },
        "run": {"id": RecordId("run", "a:probe"), "spec_digest": "e" * 64, "agent_name": "a"},
        "run_event": {
            "id": RecordId("run_event", [run_a.id, 2]),
            "run": RecordId("run", run_a.id),
            "seq": 2,
            "kind": "probe",
        },
        "run_seq": {"id": RecordId("run_seq", "a:bare")},
        "run_append": {
            "id": RecordId("run_append", [run_a.id, "probe"]),
            "first_seq": 1,
            "count": 1,
        },
        "embedding_space": {
            "id": RecordId("embedding_space", "active"),
            "model": "m",
            "dimension": 3,
        },
        "schema_migration": {
            "id": RecordId("schema_migration", 900),
            "version": 900,
            "name": "probe",
            "checksum": "f" * 64,
            "applied_at": now,
            "execution_ms": 1.0,
            "engine_version": "e",
            "tool_version": "t",
        },
        "schema_lock": {
            "id": RecordId("schema_lock", "probe2"),
            "owner": "o",
            "acquired_at": now,
            "expires_at": now,
        },
        "memory_index": {
            "id": RecordId("memory_index", "probe"),
            "database": "d" * 32,
            "epoch": "e" * 32,
        },
        "annotation": {"id": RecordId("annotation", "probe"), "user": "u", "note": "n"},
        "blob": {"id": RecordId("blob", _hash("x")), "data": b"x", "size": 1},
        "commit": {
            "id": RecordId("commit", "e" * 64),
            "state_hash": "e" * 64,
            "generation": 1,
            "message": "m",
            "author": "o",
        },
        "snapshot": {
            "id": RecordId("snapshot", loose),
            "commit": RecordId("commit", loose),
            "state_json": "{}",
            "state_hash": _hash("{}"),
            "size": 2,
        },
        "child_of": {
            "id": RecordId("child_of", [c1.id, 5]),
            "in": RecordId("commit", c1.id),
            "out": RecordId("commit", c2.id),
            "kind": "normal",
            "position": 5,
        },
        "branch": {
            "id": RecordId("branch", "probe"),
            "name": "probe",
            "head": RecordId("commit", c1.id),
        },
        "release": {
            "id": RecordId("release", ["probe", 1]),
            "agent_name": "probe",
            "seq": 1,
            "spec_digest": "c" * 64,
            "version_label": "v",
            "promoted_by": "o",
            "action": "promote",
        },
        "release_head": {
            "id": RecordId("release_head", "probe"),
            "current": RecordId("release", ["a", 1]),
            "next_seq": 2,
        },
        "ci_snapshot": {
            "id": RecordId("ci_snapshot", _hash("{}")),
            "content_json": "{}",
        },
        "ci_pipeline": {
            "id": RecordId("ci_pipeline", _hash("[]")),
            "content_json": "[]",
        },
        "ci_run": {
            "id": RecordId("ci_run", _hash(f"{snap}:{_hash('[]')}")),
            "snapshot": RecordId("ci_snapshot", snap),
            "pipeline": RecordId("ci_pipeline", _hash("[]")),
        },
        "lg_blob": {
            "id": RecordId("lg_blob", _hash("json:" + lg_data)),
            "type": "json",
            "data": b"[]",
        },
        "lg_version": {"id": RecordId("lg_version", "probe2"), "blob": records["lg_blob"][0]},
        "lg_checkpoint": {
            "id": RecordId("lg_checkpoint", ["t", "", "c2"]),
            "thread_id": "t",
            "checkpoint_ns": "",
            "checkpoint_id": "c2",
            "type": "json",
            "data": b"{}",
            "channel_versions": {},
            "blobs": {},
            "metadata_type": "json",
            "metadata_data": b"{}",
            "metadata": {},
            "live_thread": "t",
        },
        "lg_write": {
            "id": RecordId("lg_write", "probe2"),
            "task_id": "k",
            "idx": 1,
            "channel": "c",
            "type": "json",
            "data": b"{}",
        },
        "lg_item": {
            "id": RecordId("lg_item", [["ns"], "k2"]),
            "namespace": ["ns"],
            "ns_path": "ns.",
            "key": "k2",
            "value": {},
        },
        "entity": {
            "id": RecordId("entity", graph.entity_id("team-a", "A3")),
            "scope": "team-a",
            "name": "A3",
            "name_key": "a3",
        },
        "fact": {
            "id": RecordId("fact", "f0" * 16),
            "in": RecordId("entity", graph.entity_id("team-a", "A2")),
            "out": RecordId("entity", graph.entity_id("team-a", "A1")),
            "scope": "team-a",
            "predicate": "probe",
            "key": fact_key("team-a", "A2", "probe", "A1", None),
            "valid_from": now,
            "recorded_at": now,
        },
        "fact_source": {
            "id": RecordId("fact_source", [fact_a.id, str(mem["m1"])]),
            "in": RecordId("fact", fact_a.id),
            "out": mem["m1"],
        },
        "observation": {
            "id": RecordId("observation", [m1.id, graph.entity_id("team-a", "A2"), 0]),
            "in": mem["m1"],
            "out": RecordId("entity", graph.entity_id("team-a", "A2")),
            "scope": "team-a",
            "position": 0,
            "recorded_at": now,
        },
        "predicate": {
            "id": RecordId("predicate", ["team-a", "probe"]),
            "scope": "team-a",
            "name": "probe",
        },
        "entity_merge": {
            "id": RecordId("entity_merge", "probe"),
            "scope": "team-a",
            "keep": RecordId("entity", graph.entity_id("team-a", "A1")),
            "absorb": RecordId("entity", graph.entity_id("team-a", "A2")),
            "keep_name": "A1",
            "absorb_name": "A2",
            "reason": "probe",
        },
        "entity_version": {
            "id": RecordId("entity_version", "probe"),
            "entity": RecordId("entity", graph.entity_id("team-a", "A1")),
            "scope": "team-a",
            "type": "forged",
            "aliases": [],
            "summary": "forged",
            "attributes": {},
            "replaced_at": now,
        },
        "lc_document": {
            "id": RecordId("lc_document", ["c", "d2"]),
            "collection": "c",
            "doc_id": "d2",
            "memories": [mem["m2"]],
        },
    }
    return World(url, targets, new, records)


async def _tables(store: Store) -> list[str]:
    info = await store.query_required_single("INFO FOR DB", dict)
    return sorted(info["tables"])


@dataclasses.dataclass
class Schema:
    """What INFO lists: each table, whether it is a relation, and each field's type."""

    relations: set[str]
    fields: dict[str, dict[str, str]]
    """table -> field -> its type (``none | string``...)."""


async def _schema(store: Store) -> Schema:
    info = await store.query_required_single("INFO FOR DB STRUCTURE", dict)
    relations = {t["name"] for t in info["tables"] if t["kind"].get("kind") == "RELATION"}
    fields: dict[str, dict[str, str]] = {}
    for t in info["tables"]:
        found = await store.query_required_single(f"INFO FOR TABLE {t['name']} STRUCTURE", dict)
        fields[t["name"]] = {
            f["name"].replace("`", ""): f.get("kind", "any") for f in found["fields"]
        }
    return Schema(relations, fields)


class Session:
    """One raw engine session on the SDK's embedded connection, signed in as a role."""

    def __init__(self, db: Any, session: uuid.UUID | None) -> None:
        self.db = db
        self.session = session

    async def run(self, text: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        raw = await self.db.query_raw(text, _sdk(params), session_id=self.session)
        return list(raw["result"])


async def _session(db: Any, role: str) -> Session:
    sid = await AsyncWsSurrealConnection.attach(db)
    if role in ("agent", "other_agent"):
        agent = "a" if role == "agent" else "b"
        signin: dict[str, Any] = {
            "namespace": NS,
            "database": DB,
            "access": "agent",
            "variables": {"agent": agent, "secret": SECRETS[agent]},
        }
    else:
        user, password = next(login for who, login in USERS.items() if who == role)
        signin = {"namespace": NS, "database": DB, "username": user, "password": password}
    await db.signin(signin, session_id=sid)
    await db.use(NS, DB, session_id=sid)
    return Session(db, sid)


@dataclasses.dataclass
class Lab:
    world: World
    schema: Schema
    root: Session
    sessions: dict[str, Session]
    probes: list[Probe] = dataclasses.field(default_factory=list)
    baselines: list[Baseline] = dataclasses.field(default_factory=list)


@pytest.fixture(scope="module")
async def lab(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lab]:
    url = f"surrealkv://{tmp_path_factory.mktemp('roles') / 'store'}"
    world = await _build(url)
    async with Store(url) as s:
        schema = await _schema(s)
    db = surrealdb.AsyncSurreal(url)
    await db.connect()
    await db.use(NS, DB)
    try:
        sessions = {role: await _session(db, role) for role in ROLES}
        yield Lab(world, schema, Session(db, None), sessions)
    finally:
        await db.close()


# -- probes ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Probe:
    table: str
    field: str  # "" for the record as a whole
    op: Op  # as the access table names it
    statement: str  # what it is, for the report
    text: str  # SurrealQL returning the records it wrote
    params: dict[str, Any] = dataclasses.field(hash=False, compare=False)
    creates_first: bool = False
    """An INSERT that updates on a duplicate: the engine checks the create permission on the
    row before it finds the duplicate."""

    @property
    def label(self) -> str:
        where = f"{self.table}.{self.field}" if self.field else self.table
        return f"{self.statement} {where}"


def _path(field: str) -> str:
    """A field's path for SET (its array parent for an element field ``a.*``)."""
    parts = field.split(".")
    if parts[-1] == "*":
        parts = parts[:-1]
    return ".".join(f"`{p}`" for p in parts)


def _split(kind: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, c in enumerate(kind):
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif c == "|" and depth == 0:
            out.append(kind[start:i].strip())
            start = i + 1
    out.append(kind[start:].strip())
    return [k for k in out if k != "none"]


def _value(kind: str, current: Any, world: World) -> Any:
    """A value of type ``kind`` that differs from ``current``."""
    options = _split(kind) or ["string"]
    k = options[0]
    if k.startswith("'"):
        literals = [o.strip("'") for o in options if o.startswith("'")]
        return next((v for v in literals if v != current), literals[0])
    if k == "string":
        return f"{current}-probe" if isinstance(current, str) else "probe"
    if k == "int":
        return current + 1 if isinstance(current, int) else 5
    if k == "float":
        return 0.25 if current != 0.25 else 0.5
    if k == "bool":
        return not current if isinstance(current, bool) else True
    if k == "datetime":
        return dt.datetime.now(dt.UTC)
    if k == "bytes":
        return b"probe"
    if k.startswith("object"):
        return {**(current if isinstance(current, dict) else {}), "probe": 1}
    if k.startswith("array"):
        inner = k[len("array<") : -1].split(",")[0] if "<" in k else "string"
        return [*(current if isinstance(current, list) else []), _value(inner, None, world)]
    if k.startswith("record"):
        tables = [t.strip() for t in k[len("record<") : -1].split("|")] if "<" in k else []
        for table in tables or list(world.records):
            for rid in world.records.get(table, []):
                if rid != current:
                    return rid
    return "probe"


def _element(kind: str, world: World) -> Any:
    """A value for an element field ``a.*`` of type ``kind``."""
    return _value(kind, None, world)


def _with_field(base: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = dict(base)
    parts = field.split(".")
    if parts[-1] == "*":
        out[parts[0]] = [value]
    elif len(parts) == 2:
        out[parts[0]] = {**(out.get(parts[0]) or {}), parts[1]: value}
    else:
        out[field] = value
    return out


def probes(lab: Lab, current: dict[str, dict[str, Any]]) -> list[Probe]:
    """Every raw write the matrix tries, for every table and field INFO lists."""
    w, schema = lab.world, lab.schema
    out: list[Probe] = []
    for table, fields in sorted(schema.fields.items()):
        relation = table in schema.relations
        target = w.targets[table]
        new = w.new[table]
        body = {k: v for k, v in new.items() if k not in ("id", "in", "out")}
        if relation:
            ends = {"in": new["in"], "out": new["out"], "id": new["id"]}
            out.append(
                Probe(table, "", "create", "RELATE", "RELATE $in->$id->$out CONTENT $body "
                      "RETURN AFTER", {**ends, "body": body})
            )  # fmt: skip
            out.append(
                Probe(table, "", "create", "INSERT RELATION",
                      f"INSERT RELATION INTO {table} $row RETURN AFTER", {"row": new})
            )  # fmt: skip
        else:
            out.append(
                Probe(table, "", "create", "CREATE", "CREATE $id CONTENT $body RETURN AFTER",
                      {"id": new["id"], "body": body})
            )  # fmt: skip
            out.append(
                Probe(table, "", "create", "INSERT", f"INSERT INTO {table} $row RETURN AFTER",
                      {"row": new})
            )  # fmt: skip
            out.append(
                Probe(table, "", "create", "UPSERT", "UPSERT $id CONTENT $body RETURN AFTER",
                      {"id": new["id"], "body": body})
            )  # fmt: skip
        out.append(Probe(table, "", "delete", "DELETE", "DELETE $id RETURN BEFORE", {"id": target}))
        row = current[table]
        for name, kind in sorted(fields.items()):
            element = name.endswith(".*")
            parent = name[: -len(".*")] if element else name
            if element:
                value = [*(row.get(parent) or []), _element(kind, w)]
                create_value = _element(kind, w)
            elif "." in name:
                head, tail = name.split(".", 1)
                value = _value(kind, (row.get(head) or {}).get(tail), w)
                create_value = value
            else:
                value = _value(kind, row.get(name), w)
                create_value = _value(kind, new.get(name), w)
            path = _path(name)
            if value == (row.get(parent) if "." not in name or element else None):
                continue  # no other value (a one-literal type): nothing to probe
            if relation and name in ("in", "out"):
                # Engine 3.2.4 keeps an edge's ends whatever SET says (answering the row, for
                # anyone): nothing to probe. tests/test_graph_access.py checks they stay.
                continue
            params = {"id": target, "v": value}
            out.append(
                Probe(table, name, "update", "UPDATE",
                      f"UPDATE $id SET {path} = $v RETURN AFTER", params)
            )  # fmt: skip
            if not relation:
                out.append(
                    Probe(table, name, "update", "UPSERT",
                          f"UPSERT $id SET {path} = $v RETURN AFTER", params)
                )  # fmt: skip
            into = "INSERT RELATION INTO" if relation else "INSERT INTO"
            existing = {k: v for k, v in row.items() if not k.startswith("__")}
            out.append(
                Probe(table, name, "update", "INSERT ON DUPLICATE KEY UPDATE",
                      f"{into} {table} $row ON DUPLICATE KEY UPDATE {path} = $v RETURN AFTER",
                      {"row": existing, "v": value}, creates_first=True)
            )  # fmt: skip
            if name in ("id", "in", "out"):
                continue
            made = _with_field(new, name, create_value)
            if relation:
                out.append(
                    Probe(table, name, "create", "RELATE",
                          "RELATE $in->$id->$out CONTENT $body RETURN AFTER",
                          {"in": made["in"], "out": made["out"], "id": made["id"],
                           "body": {k: v for k, v in made.items() if k not in ("id", "in", "out")}})
                )  # fmt: skip
            else:
                out.append(
                    Probe(table, name, "create", "CREATE", "CREATE $id CONTENT $body RETURN AFTER",
                          {"id": made["id"],
                           "body": {k: v for k, v in made.items() if k != "id"}})
                )  # fmt: skip
    return out


_PROBE = (
    "BEGIN;\nLET $r = ({text});\nTHROW 'probe_result:' + <string>array::len($r ?? []);\nCOMMIT;"
)
# The owner's run of a probe, which also says whether the access table's condition holds for
# agent A and for agent B, on the record before the write (update, delete) and after it
# (create, update): the engine checks an update's condition on both.
_BASELINE = """BEGIN;
LET $before = {before};
LET $as_new = {as_new};
LET $r = ({text});
LET $after = IF array::len($r ?? []) > 0 {{ {after} }} ELSE {{ [false, false] }};
THROW 'probe_result:' + <string>array::len($r ?? []) + '|' + <string>$before[0] + '|'
    + <string>$before[1] + '|' + <string>$after[0] + '|' + <string>$after[1] + '|'
    + <string>$as_new[0] + '|' + <string>$as_new[1];
COMMIT;"""
_PERMISSION = ("permission_denied", "Not enough permissions", "IAM error")
_AUTH = re.compile(r"\$auth\b")


@dataclasses.dataclass(frozen=True)
class Baseline:
    outcome: str  # the owner's: applied or not
    why: str
    holds: dict[str, bool]  # agent role -> whether the record's condition holds for it


def _outcome(entries: list[dict[str, Any]]) -> tuple[str, str]:
    """applied, skipped, denied (a permission refused it) or invariant (anything else)."""
    for entry in entries:
        if entry["status"] == "OK":
            continue
        details = entry.get("details")
        if isinstance(details, dict) and details.get("kind") in ("NotExecuted", "Cancelled"):
            continue
        message = str(entry["result"])
        if "probe_result:" in message:
            n = int(message.rsplit("probe_result:", 1)[1].split("|")[0])
            return ("applied" if n > 0 else "skipped"), message
        if any(p in message for p in _PERMISSION):
            return "denied", message
        return "invariant", message
    raise AssertionError(f"no outcome in {entries}")


def _pair(condition: Any) -> str | None:
    """``[A's, B's]`` truth of a condition (``$auth`` each agent), or ``None`` if none."""
    if not isinstance(condition, Condition):
        return None
    both = [_AUTH.sub(f"$probe_{a}", condition.surql) for a in ("a", "b")]
    return f"[({both[0]}), ({both[1]})]"


async def _baseline(lab: Lab, probe: Probe) -> Baseline:
    flat = matrix()
    pair = _pair(flat[("agent", probe.table, "", probe.op)])
    before = after = as_new = "[false, false]"
    if pair is not None:
        if probe.op in ("update", "delete"):
            before = f"(SELECT VALUE {pair} FROM ONLY $probe_target)"
        if probe.op in ("update", "create"):
            after = f"(SELECT VALUE {pair} FROM ONLY $r[0].id)"
    create = _pair(flat[("agent", probe.table, "", "create")])
    if probe.creates_first and create is not None:
        as_new = f"(SELECT VALUE {create} FROM ONLY $probe_target)"
    text = _BASELINE.format(text=probe.text, before=before, after=after, as_new=as_new)
    params = {
        **probe.params,
        "probe_a": RecordId("agent", "a"),
        "probe_b": RecordId("agent", "b"),
        "probe_target": lab.world.targets[probe.table],
    }
    outcome, message = _outcome(await lab.sessions["owner"].run(text, params))
    if outcome != "applied":
        return Baseline(outcome, message, {})
    flags = [part == "true" for part in message.rsplit("probe_result:", 1)[1].split("|")[1:]]
    before_a, before_b, after_a, after_b, new_a, new_b = flags
    holds = {
        "create": {"agent": after_a, "other_agent": after_b},
        "update": {"agent": before_a and after_a, "other_agent": before_b and after_b},
        "delete": {"agent": before_a, "other_agent": before_b},
    }[probe.op]
    holds.update({"agent_create": new_a, "other_agent_create": new_b})
    return Baseline(outcome, message, holds)


def expected(role: str, probe: Probe, holds: dict[str, bool]) -> bool:
    """What the access table says for ``role``; a condition on the record as the owner's run
    of the probe found it (before and after the write)."""
    flat = matrix()
    who = _AS[role]
    allowed: Any = flat[(who, probe.table, "", probe.op)]
    if isinstance(allowed, Condition):
        allowed = allowed == ANY or holds[role]
    if probe.field:
        allowed = allowed and flat[(who, probe.table, probe.field, probe.op)]
    if probe.creates_first:
        create: Any = flat[(who, probe.table, "", "create")]
        if isinstance(create, Condition):
            create = create == ANY or holds[f"{role}_create"]
        allowed = allowed and create
    return bool(allowed)


async def _current(lab: Lab) -> dict[str, dict[str, Any]]:
    out = {}
    for table, target in lab.world.targets.items():
        if table not in lab.schema.fields:
            continue
        rows = await lab.root.run("SELECT * FROM $id", {"id": target})
        found = rows[0]["result"]
        assert found, f"no target record for {table}"
        out[table] = _ours(found[0])
    return out


async def _fingerprint(lab: Lab) -> str:
    text = "".join(f"SELECT * FROM {t} ORDER BY id;" for t in sorted(lab.schema.fields))
    return repr([entry["result"] for entry in await lab.root.run(text, {})])


# -- the tests ---------------------------------------------------------------------------------


_AGENT_GUARDS: Final = ("fact_agent_guard", "entity_agent_guard")
_KEYED: Final = {
    *(("fact", f) for f in ("in", "out", "scope", "predicate", "value", "key", "supersedes")),
    ("entity", "name_key"),
}


async def test_every_table_and_field_is_in_the_access_table(lab: Lab) -> None:
    flat = matrix()
    listed_tables = {t for (_, t, _, _) in flat}
    listed_fields = {(t, f) for (_, t, f, _) in flat if f}
    missing = sorted(t for t in lab.schema.fields if t not in listed_tables)
    missing += sorted(
        f"{t}.{f}" for t, fs in lab.schema.fields.items() for f in fs if (t, f) not in listed_fields
    )
    assert not missing, f"not in the access table (surreal_store/_permissions.py): {missing}"
    for table in lab.schema.fields:
        assert table in lab.world.targets and table in lab.world.new, f"no probe data: {table}"


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_writes_what_the_access_table_says(lab: Lab, role: str) -> None:
    if not lab.baselines:
        current = await _current(lab)
        lab.probes = probes(lab, current)
        lab.baselines = [await _baseline(lab, p) for p in lab.probes]
    wrong: list[str] = []
    denied: list[Probe] = []
    live = 0
    for probe, base in zip(lab.probes, lab.baselines, strict=True):
        got, message = _outcome(
            await lab.sessions[role].run(_PROBE.format(text=probe.text), probe.params)
        )
        if base.outcome == "denied":
            wrong.append(f"{probe.label}: the owner was refused ({base.why})")
            continue
        if base.outcome != "applied":
            # Nobody may do this (READONLY, an immutable table, a guard): nobody does.
            if got == "applied":
                wrong.append(f"{probe.label}: applied by {role}, not by the owner ({base.why})")
            continue
        live += 1
        if expected(role, probe, base.holds):
            # Schema 040 checks what only an agent could forge: a new fact's key against its
            # fields, that a fact it supersedes is one of its key, a new entity's normalised
            # name. A probe that changes one of those alone is refused to an agent by them.
            if (
                got == "invariant"
                and role == "agent"
                and (probe.table, probe.field) in _KEYED
                and any(f"event {guard}" in message for guard in _AGENT_GUARDS)
            ):
                continue
            if got != "applied":
                wrong.append(f"{probe.label}: allowed, but {got} ({message})")
            continue
        denied.append(probe)
        # A write the role may not make is refused by a permission; a record an agent may not
        # read is skipped as an absent one is (for B, answered as an absent one would be,
        # whatever that is: an UPSERT of it is a create); a VIEWER's is always refused.
        allowed_answers = {
            "viewer": {"denied"},
            "other_agent": {"denied", "skipped", "invariant"},
        }.get(role, {"denied", "skipped"})
        if role != "owner" and probe.statement == "UPSERT" and probe.op == "update":
            # Engine 3.2.4: an UPSERT of an existing record that a session bound by permissions
            # may not update is tried again as a new record, built from what it sets alone,
            # which fails the schema's type checks before any permission (one that sets every
            # field meets the permission). Refused either way; nothing is written.
            allowed_answers = {"denied", "invariant"}
        if got not in allowed_answers:
            wrong.append(f"{probe.label}: not allowed, but {got} ({message})")
    assert not wrong, f"{role}: {len(wrong)} outcomes differ from the table:\n" + "\n".join(wrong)
    assert live > 100  # the probes reach the permissions, not only the schema's invariants
    # The writes it is denied, for real this time: nothing changes anywhere.
    before = await _fingerprint(lab)
    for probe in denied:
        await lab.sessions[role].run(probe.text, probe.params)
    assert await _fingerprint(lab) == before
