"""The access layer as data: who may do what to every table and field, and the schema it makes.

:data:`ACCESS` lists every table of the schema and every field of each, and says what an agent
(record access ``agent``) may do with it; :func:`matrix` flattens it into the one table the
tests run against: ``(role, table, field, operation) -> allowed``, where ``allowed`` is
``True``, ``False`` or, for an agent, a :class:`Condition` on the record. :func:`layer`
generates the engine's side of it from the tables and fields the database has (``INFO``):
every table's ``PERMISSIONS``, every field's, two events and the two functions they call.
The migrator applies it after the schema files (and again whenever the files, this table or
what is generated from it change), so a table or field that a later schema file adds is
closed until a line here opens it.

What each role can be given is what the engine can enforce:

- ``owner``: everything (its role bypasses every ``PERMISSIONS`` clause).
- ``editor``: everything, or, for a whole table, reading only: an event refuses its writes (the
  role bypasses ``PERMISSIONS``, not events). An editor can change the schema itself, so this
  guards against mistakes, not against a hostile editor.
- ``viewer``: reading everything (the role's reads bypass ``PERMISSIONS``) and writing nothing:
  every table's write permissions throw for a VIEWER of the database.
- ``agent``: per table, a condition on the record for each operation; per field, whether it
  may read it, set it when it creates a record, and change it. Row conditions are the tables'
  ``PERMISSIONS``; field reads are the fields' ``PERMISSIONS``; field writes are checked by an
  event (``access_agent_writes``) that refuses a write setting any field not opened here (the
  engine's own field write permissions drop a refused value silently, even one a non-optional
  field needs).

Existence never leaks to an agent: a record it may not read answers an ``UPDATE`` or a
``DELETE`` as an absent one does (skipped, nothing said), and every record it may create has an
id that is a function of what it may write (a memory's hash of its scope and content, its runs
and decisions named after it, an edge's ends, a run event's run and seq), checked in the
``create`` permission, which the engine evaluates before it looks for the id. So aiming a
write at another scope's id is refused the same way whether the record exists or not.

Sessions of other databases (a user of another tenant that ``USE``\\ s this one) match no
condition: they read nothing, and their writes are refused or skip as an agent's do.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from ._surql import validate_identifier

__all__ = [
    "ACCESS",
    "AGENT_WRITES_EVENT",
    "EDITOR_WRITES_EVENT",
    "LAYER_PARAM",
    "OPS",
    "ROLES",
    "Condition",
    "Op",
    "Role",
    "TableAccess",
    "digest",
    "field_name",
    "layer",
    "matrix",
]

Role = Literal["owner", "editor", "viewer", "agent"]
Op = Literal["select", "create", "update", "delete"]
ROLES: Final[tuple[Role, ...]] = ("owner", "editor", "viewer", "agent")
OPS: Final[tuple[Op, ...]] = ("select", "create", "update", "delete")
_FIELD_OPS: Final[dict[str, Op]] = {"s": "select", "c": "create", "u": "update"}
_TABLE_OPS: Final[dict[str, Op]] = {**_FIELD_OPS, "d": "delete"}

LAYER_PARAM: Final = "access_layer"
"""``$access_layer``: the digest of the layer the database holds (:func:`digest`)."""
AGENT_WRITES_EVENT: Final = "access_agent_writes"
EDITOR_WRITES_EVENT: Final = "access_editor_writes"
REFUSED_FN: Final = "access_refused"
READ_ONLY_FN: Final = "access_read_only"


@dataclass(frozen=True)
class Condition:
    """A condition on the record an agent's operation touches (SurrealQL, evaluated by the
    engine with the record's fields in scope, ``$auth`` the agent's record)."""

    name: str
    surql: str

    def __repr__(self) -> str:
        return f"<{self.name}>"


ANY = Condition("any record", "true")
OWN_AGENT_RECORD = Condition("its own agent record", "id = $auth")
IN_SCOPE = Condition("in its scopes", "scope IN $auth.scopes")
NEW_MEMORY = Condition(
    "in its scopes, as itself, keyed by the hash of its scope and content (an observation's: "
    "of its scope, entity and content)",
    "scope IN $auth.scopes AND agent = $auth AND (record::id(id) = "
    "crypto::sha256(<string>string::len(scope) + ':' + scope + content) OR (kind = 'observation' "
    "AND key != NONE AND record::id(id) = crypto::sha256('observation:' + "
    "<string>string::len(scope) + ':' + scope + <string>string::len(key) + ':' + key + content)))",
)
# Forgetting a memory (docs/graph.md): its agent, in its scopes; another agent sharing the
# scope reads it but is refused. A memory no agent wrote (a user's, the owner's) is forgotten
# by the agents of its scope, as before. Not one that a distrust someone else recorded hides:
# the distrust would outlive it (the agent may not lift it) and the facts citing it would lose
# it as a source, shown again (schema 041).
OWN_MEMORY = Condition(
    "its own or no agent's, in its scopes, hidden by no distrust another recorded",
    "scope IN $auth.scopes AND (agent = $auth OR agent = NONE) "
    "AND array::all(invalidated_causes ?? [], |$c| "
    "(SELECT VALUE recorded_by FROM ONLY type::record('source_invalidation', [$c])) "
    "= <string>$auth.id)",
)
OWN_DECISION = Condition("its own", "agent = $auth")
NEW_DECISION = Condition(
    "its own, keyed AGENT_<32 hex>",
    "agent = $auth AND type::is_string(record::id(id)) AND record::id(id) = "
    "record::id($auth) + '_' + string::slice(record::id(id), -32) "
    "AND string::is_hexadecimal(string::slice(record::id(id), -32))",
)
# A fact is seen where it and both its ends are (022 keeps all three in one scope; checked
# all the same, since nothing else stands between an agent and another scope's entity).
_FACT_SEEN = (
    "{f}scope IN $auth.scopes AND {f}in.scope IN $auth.scopes AND {f}out.scope IN $auth.scopes"
)
USED = Condition(
    "its own decision, a memory or fact of its scopes",
    "in.agent = $auth AND out.scope IN $auth.scopes AND (record::tb(out) = 'memory' OR ("
    + _FACT_SEEN.format(f="out.")
    + "))",
)
NEW_USED = Condition(
    "its own decision, a memory or fact of its scopes, keyed [decision, memory or fact]",
    f"{USED.surql} AND record::id(id) = [record::id(in), record::id(out)]",
)
DERIVED = Condition(
    "both memories in its scopes", "in.scope IN $auth.scopes AND out.scope IN $auth.scopes"
)
NEW_DERIVED = Condition(
    "both memories in its scopes, keyed [memory, memory]",
    f"{DERIVED.surql} AND record::id(id) = [record::id(in), record::id(out)]",
)
# Both ends: an agent sees no source but its own run events (commits, snapshots, annotations
# and other agents' runs are closed to it), so an edge to one would name what it may not see.
SOURCED = Condition(
    "a memory of its scopes from its own run event",
    "in.scope IN $auth.scopes AND record::tb(out) = 'run_event' "
    "AND out.run.agent_name = record::id($auth)",
)
NEW_SOURCED = Condition(
    "a memory of its scopes from its own run event, keyed [memory, source]",
    f"{SOURCED.surql} AND record::id(id) = [record::id(in), <string>out]",
)
DISTRUST = Condition(
    "of a memory of its scopes or its own run event",
    "(record::tb(source) = 'memory' AND source.scope IN $auth.scopes) "
    "OR (record::tb(source) = 'run_event' AND source.run.agent_name = record::id($auth))",
)
# Lifting (deleting) a distrust: one it recorded itself (031), not an operator's of its sources.
OWN_DISTRUST = Condition(
    "of a memory of its scopes or its own run event, recorded by it",
    f"({DISTRUST.surql}) AND recorded_by = <string>$auth.id",
)
NEW_DISTRUST = Condition(
    "of a memory of its scopes or its own run event, keyed [source]",
    f"({DISTRUST.surql}) AND record::id(id) = [source]",
)
NEW_ENTITY = Condition(
    "in its scopes, keyed by the hash of its scope and name",
    "scope IN $auth.scopes AND record::id(id) = "
    "crypto::sha256(<string>string::len(scope) + ':' + scope + name)",
)
FACT = Condition("in its scopes, both ends too", _FACT_SEEN.format(f=""))
# A fact's id is random (96 random bits and its position in the assertion, as the API makes
# it): no id an agent may create names a record it could know of, and none a person chose.
NEW_FACT = Condition(
    "in its scopes, both ends too, keyed by 32 random lowercase hex",
    f"{FACT.surql} AND type::is_string(record::id(id)) AND string::len(record::id(id)) = 32 "
    "AND string::is_hexadecimal(record::id(id)) "
    "AND string::lowercase(record::id(id)) = record::id(id)",
)
# As for sourced_from: both ends seen (a source an agent may see is a memory of its scopes or
# one of its own run events).
FACT_SOURCE = Condition(
    "a fact of its scopes from a memory of its scopes or its own run event",
    _FACT_SEEN.format(f="in.") + " AND ((record::tb(out) = 'memory' AND out.scope IN $auth.scopes) "
    "OR (record::tb(out) = 'run_event' AND out.run.agent_name = record::id($auth)))",
)
NEW_FACT_SOURCE = Condition(
    "a fact of its scopes from a memory of its scopes or its own run event, keyed [fact, source]",
    f"{FACT_SOURCE.surql} AND record::id(id) = [record::id(in), <string>out]",
)
OBSERVED = Condition(
    "a memory and an entity of its scopes",
    "scope IN $auth.scopes AND in.scope IN $auth.scopes AND out.scope IN $auth.scopes",
)
# An observation link is retracted, not deleted (schema 028): it goes only with its memory
# (forgetting purges a memory and its edges) or its entity.
GONE_OBSERVED = Condition(
    "of its scopes, whose memory or entity is gone",
    "scope IN $auth.scopes AND (!record::exists(in) OR !record::exists(out))",
)
NEW_OBSERVED = Condition(
    "a memory and an entity of its scopes, keyed [memory, entity, position]",
    f"{OBSERVED.surql} AND record::id(id) = [record::id(in), record::id(out), position]",
)
NEW_PREDICATE = Condition(
    "in its scopes, keyed [scope, name]",
    "scope IN $auth.scopes AND record::id(id) = [scope, name]",
)
OWN_RUN = Condition("its own", "agent_name = record::id($auth)")
NEW_RUN = Condition(
    "its own, keyed AGENT:...",
    f"{OWN_RUN.surql} AND type::is_string(record::id(id)) "
    "AND string::starts_with(record::id(id), record::id($auth) + ':')",
)
OWN_EVENT = Condition("of its own run", "run.agent_name = record::id($auth)")
NEW_EVENT = Condition(
    "of its own run, keyed [run, seq]",
    f"{OWN_EVENT.surql} AND record::id(id) = [record::id(run), seq]",
)
OWN_SEQ = Condition(
    "of its own run", "type::record('run', record::id(id)).agent_name = record::id($auth)"
)
OWN_APPEND = Condition(
    "of its own run", "type::record('run', record::id(id)[0]).agent_name = record::id($auth)"
)


@dataclass(frozen=True)
class TableAccess:
    """One table: what an agent may do with its records (``agent``: operation -> condition;
    an operation left out is closed), what it may do with each field (``fields``: field ->
    ``"s"`` read, ``"c"`` set when creating, ``"u"`` change; ``""`` closed), whether an editor
    may write it, and why an agent is refused (``refused``, in its error)."""

    name: str
    fields: Mapping[str, str]
    agent: Mapping[Op, Condition] = field(default_factory=dict)
    editor_writes: bool = True
    refused: str = ""


def _closed(name: str, *fields: str) -> TableAccess:
    """A table no agent reaches; its fields listed all the same (a field missing here is one
    nobody has classified)."""
    return TableAccess(name, dict.fromkeys(fields, ""))


ACCESS: Final[tuple[TableAccess, ...]] = (
    # -- the agent layer -----------------------------------------------------------------------
    TableAccess(
        "agent",
        {
            "name": "s", "kind": "s", "config": "s", "created_at": "s", "scopes": "s",
            "scopes.*": "s", "secret_hash": "",
        },
        agent={"select": OWN_AGENT_RECORD},
        refused="agents and their grants are managed by users (owner, editor)",
    ),
    TableAccess(
        "memory",
        {
            "scope": "sc", "agent": "sc", "key": "sc", "kind": "sc", "content": "sc",
            "content_hash": "sc", "tags": "sc", "tags.*": "sc", "metadata": "sc",
            "commit": "sc", "created_at": "sc", "valid_from": "sc", "valid_until": "sc",
            "embedding": "scu", "embedding_stash": "scu", "embedding_model": "sc",
            "invalidated_at": "scu", "invalidated_reason": "scu", "invalidated_by": "scu",
            "invalidated_causes": "scu", "invalidated_causes.*": "scu",
        },
        agent={"select": IN_SCOPE, "create": NEW_MEMORY, "update": IN_SCOPE, "delete": OWN_MEMORY},
        refused="an agent writes memories in its granted scopes, as itself, and forgets its own",
    ),
    TableAccess(
        "decision",
        {
            "commit": "sc", "agent": "sc", "task": "sc", "action": "sc", "rationale": "sc",
            "alternatives": "sc", "alternatives.*": "sc", "confidence": "sc",
            "created_at": "sc", "outcome": "su", "success": "su", "outcome_at": "su",
        },
        agent={"select": OWN_DECISION, "create": NEW_DECISION, "update": OWN_DECISION},
        refused="an agent records its own decisions (ids AGENT_<32 hex>), and never deletes one",
    ),
    TableAccess(
        "used",
        {"in": "sc", "out": "sc", "rank": "sc", "score": "sc"},
        agent={"select": USED, "create": NEW_USED, "delete": USED},
        refused="an agent links its own decisions to memories it may read",
    ),
    TableAccess(
        "derived_from",
        {"in": "sc", "out": "sc", "how": "sc", "created_at": "sc"},
        agent={"select": DERIVED, "create": NEW_DERIVED, "delete": DERIVED},
        refused="an agent derives memories only within its scopes",
    ),
    TableAccess(
        "sourced_from",
        {"in": "sc", "out": "sc", "created_at": "sc"},
        agent={"select": SOURCED, "create": NEW_SOURCED, "delete": SOURCED},
        refused="an agent sources its memories from its own run events",
    ),
    TableAccess(
        "source_invalidation",
        {
            "source": "sc", "reason": "sc", "by": "sc", "at": "sc", "memories": "scu",
            "recorded_by": "sc",
            "cascade": "scu", "facts": "scu",
        },
        agent={
            "select": DISTRUST, "create": NEW_DISTRUST, "update": DISTRUST,
            "delete": OWN_DISTRUST,
        },
        refused="an agent distrusts only its own memories and run events",
    ),
    TableAccess(
        "run",
        {
            "spec_digest": "sc", "git_sha": "sc", "agent_name": "sc", "tags": "sc",
            "tags.*": "sc", "status": "scu", "summary": "su", "summary.total_events": "su",
            "summary.final_state_digest": "su", "summary.duration_ms": "su",
            "summary.success": "su", "created_at": "sc", "completed_at": "su",
        },
        agent={"select": OWN_RUN, "create": NEW_RUN, "update": OWN_RUN},
        refused="an agent starts runs under its own id (run ids AGENT:...), and never deletes one",
    ),
    TableAccess(
        "run_event",
        {"run": "sc", "seq": "sc", "kind": "sc", "payload": "sc", "timestamp": "sc"},
        agent={"select": OWN_EVENT, "create": NEW_EVENT},
        refused="an agent appends to its own runs; events never change",
    ),
    TableAccess(
        "run_seq",
        {"next": "scu"},
        agent={"select": OWN_SEQ, "create": OWN_SEQ, "update": OWN_SEQ},
        refused="an agent counts the events of its own runs",
    ),
    TableAccess(
        "run_append",
        {"first_seq": "sc", "count": "sc"},
        agent={"select": OWN_APPEND, "create": OWN_APPEND},
        refused="an agent records the appends of its own runs",
    ),
    # -- read by every session -----------------------------------------------------------------
    TableAccess(
        "embedding_space",
        {
            "model": "s", "dimension": "s", "metric": "s", "hnsw_m": "s", "hnsw_efc": "s",
            "status": "s", "target_model": "s", "target_dimension": "s", "indexed": "s",
            "built_at": "s", "created_at": "s", "index_kind": "s", "diskann_degree": "s",
            "diskann_l_build": "s",
            # A count of vectors written since the last build, which an agent's invalidations
            # move; updated_at is the engine's (VALUE).
            "unindexed": "su", "updated_at": "su",
        },
        agent={"select": ANY, "update": ANY},
        refused="the owner declares and changes the embedding space",
    ),
    TableAccess(
        "schema_migration",
        {
            "version": "s", "name": "s", "checksum": "s", "previous_checksums": "s",
            "previous_checksums.*": "s", "applied_at": "s", "execution_ms": "s",
            "engine_version": "s", "tool_version": "s", "reblessed_at": "s",
        },
        agent={"select": ANY},
        refused="the owner migrates the schema",
    ),
    # -- closed to agents ----------------------------------------------------------------------
    _closed("schema_lock", "owner", "acquired_at", "expires_at"),
    TableAccess(
        # The recall index's identity (schema 020): database users read it, the owner writes it.
        "memory_index",
        {"database": "", "epoch": ""},
        editor_writes=False,
    ),
    _closed("annotation", "user", "note", "created_at"),
    _closed("blob", "data", "size", "created_at"),
    _closed(
        "commit",
        "state_hash", "logic_hash", "env_hash", "parents", "parents.*", "generation",
        "message", "author", "branch", "created_at",
    ),
    _closed("snapshot", "commit", "state_json", "state_hash", "size"),
    _closed("child_of", "in", "out", "kind", "position"),
    _closed("branch", "name", "head", "is_default", "created_at", "updated_at"),
    _closed(
        "release",
        "agent_name", "seq", "spec_digest", "version_label", "promoted_by", "notes", "action",
        "supersedes", "restores", "created_at",
    ),
    _closed("release_head", "current", "next_seq"),
    _closed("ci_snapshot", "content_json", "created_at"),
    _closed("ci_pipeline", "content_json", "created_at"),
    _closed(
        "ci_run",
        "snapshot", "pipeline", "status", "result", "created_at", "started_at", "finished_at",
    ),
    _closed("lg_blob", "type", "data"),
    _closed("lg_version", "blob"),
    _closed(
        "lg_checkpoint",
        "thread_id", "checkpoint_ns", "checkpoint_id", "parent_id", "type", "data",
        "channel_versions", "blobs", "metadata_type", "metadata_data", "metadata", "run_id",
        "created_at", "retained_at", "live_thread",
    ),
    _closed("lg_write", "task_id", "idx", "channel", "type", "data", "task_path"),
    _closed(
        "lg_item",
        "namespace", "namespace.*", "ns_path", "key", "value", "created_at", "updated_at",
        "ttl_minutes", "expires_at", "memories", "memories.*",
    ),
    _closed(
        "lc_document",
        "collection", "doc_id", "memories", "memories.*", "created_at", "updated_at",
    ),
    # -- the knowledge graph (schemas 022, 023): an agent's graph is its scopes' ------------------
    TableAccess(
        "entity",
        {
            "scope": "sc", "name": "sc", "name_key": "sc", "type": "scu", "aliases": "scu",
            "aliases.*": "scu", "summary": "scu", "attributes": "scu", "embedding": "scu",
            "embedding_model": "scu", "created_at": "sc", "updated_at": "scu",
            "recorded_at": "scu", "retracted_at": "scu", "lives": "scu", "lives.*": "scu",
            "lives.*.recorded_at": "scu", "lives.*.retracted_at": "scu", "merged_into": "scu",
            "observed": "scu", "revision": "scu", "revision.n": "scu", "revision.h": "scu",
            "position": "scu",
        },
        agent={"select": IN_SCOPE, "create": NEW_ENTITY, "update": IN_SCOPE},
        refused="an agent writes entities in its granted scopes (deleting one retracts it)",
    ),
    TableAccess(
        "fact",
        {
            "in": "sc", "out": "sc", "scope": "sc", "predicate": "sc", "value": "sc",
            "key": "sc", "valid_from": "sc", "valid_until": "sc", "recorded_at": "sc",
            "retracted_at": "scu", "superseded_by": "scu", "supersedes": "sc",
            "invalidated_at": "scu", "invalidated_reason": "scu", "invalidated_by": "scu",
            "invalidated_causes": "scu", "invalidated_causes.*": "scu", "took": "scu",
            "took.*": "scu", "took.*.fact": "scu", "took.*.from": "scu", "took.*.until": "scu",
            "origin": "sc",
        },
        agent={"select": FACT, "create": NEW_FACT, "update": FACT},
        refused="an agent asserts facts between entities of its scopes (retracting keeps them)",
    ),
    TableAccess(
        "fact_source",
        {"in": "sc", "out": "sc", "how": "sc", "created_at": "sc", "via": "sc"},
        agent={"select": FACT_SOURCE, "create": NEW_FACT_SOURCE, "delete": FACT_SOURCE},
        refused="an agent sources its facts from its memories and its own run events",
    ),
    TableAccess(
        "observation",
        {
            "in": "sc", "out": "sc", "scope": "sc", "position": "sc", "recorded_at": "sc",
            "retracted_at": "scu",
        },
        agent={
            "select": OBSERVED, "create": NEW_OBSERVED, "update": OBSERVED,
            "delete": GONE_OBSERVED,
        },
        refused="an agent links memories and entities of its scopes (removing a link retracts it)",
    ),
    TableAccess(
        "predicate",
        {
            "scope": "sc", "name": "sc", "single_valued": "scu", "created_at": "sc",
            "updated_at": "scu",
        },
        agent={"select": IN_SCOPE, "create": NEW_PREDICATE, "update": IN_SCOPE},
        refused="an agent declares predicates in its granted scopes",
    ),
    # Schema 029: the fields an entity had, kept by an event whoever writes; nobody writes them.
    TableAccess(
        "entity_version",
        {
            "entity": "s", "scope": "s", "type": "s", "aliases": "s", "aliases.*": "s",
            "summary": "s", "attributes": "s", "replaced_at": "s",
        },
        agent={"select": IN_SCOPE},
        refused="an agent reads the versions of the entities of its scopes; an event writes them",
    ),
    TableAccess(
        "entity_merge",
        {
            "scope": "s", "keep": "s", "absorb": "s", "keep_name": "s",
            "absorb_name": "s", "reason": "s", "by": "s", "facts": "s", "facts.*": "s",
            "facts.*.from": "s", "facts.*.to": "s", "facts.*.recorded": "s",
            "observations": "s", "observations.*": "s", "observations.*.from": "s",
            "observations.*.to": "s", "created_at": "s",
        },
        agent={"select": IN_SCOPE},
        refused="an agent reads the merges of its scopes; merging is for people",
    ),
)  # fmt: skip

_BY_NAME: Final = {t.name: t for t in ACCESS}

Allowed = bool | Condition


def _check(tables: Iterable[TableAccess]) -> None:
    """Refuse a table the engine could not enforce as written."""
    seen: set[str] = set()
    for t in tables:
        validate_identifier(t.name, what="table")
        if t.name in seen:
            raise ValueError(f"the access table lists {t.name} twice")
        seen.add(t.name)
        for name, ops in t.fields.items():
            field_name(name)
            if set(ops) - set(_FIELD_OPS) or len(set(ops)) != len(ops):
                raise ValueError(f"{t.name}.{name}: field operations are among 's', 'c', 'u'")
            parent = name.rsplit(".", 1)[0] if "." in name else None
            if parent is not None and set(t.fields.get(parent, "-")) != set(ops):
                # The write check compares whole top-level fields.
                raise ValueError(f"{t.name}.{name}: a nested field is opened as its parent")
            if ops and "s" not in ops:
                raise ValueError(f"{t.name}.{name}: a field an agent writes is one it reads")
            if "c" in ops and "create" not in t.agent:
                raise ValueError(f"{t.name}.{name}: opened for creating a closed table")
            if "u" in ops and "update" not in t.agent:
                raise ValueError(f"{t.name}.{name}: opened for changing a closed table")
            if ops and "select" not in t.agent:
                raise ValueError(f"{t.name}.{name}: opened in a table an agent cannot read")


def field_name(name: str) -> str:
    """``name`` as a field path the layer may write into its text (``a``, ``a.b``, ``a.*``)."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part == "*" and i > 0:
            continue
        validate_identifier(part, what="field")
    return name


_check(ACCESS)


def _escaped(name: str) -> str:
    return ".".join(p if p == "*" else f"`{p}`" for p in field_name(name).split("."))


def matrix() -> dict[tuple[Role, str, str, Op], Allowed]:
    """The access table, flat: ``(role, table, field, operation) -> allowed``; ``field`` is
    ``""`` for the table itself (its records), and fields have no ``delete``."""
    out: dict[tuple[Role, str, str, Op], Allowed] = {}
    for t in ACCESS:
        for op in OPS:
            out[("owner", t.name, "", op)] = True
            out[("editor", t.name, "", op)] = op == "select" or t.editor_writes
            out[("viewer", t.name, "", op)] = op == "select"
            out[("agent", t.name, "", op)] = t.agent.get(op, False)
        for name, ops in t.fields.items():
            for letter, op in _FIELD_OPS.items():
                out[("owner", t.name, name, op)] = True
                out[("editor", t.name, name, op)] = op == "select" or t.editor_writes
                out[("viewer", t.name, name, op)] = op == "select"
                out[("agent", t.name, name, op)] = letter in ops
    return out


def render() -> str:
    """The access table as text: what :func:`digest` hashes."""
    lines = []
    for key, allowed in sorted(matrix().items()):
        value = allowed.surql if isinstance(allowed, Condition) else str(allowed)
        lines.append(" ".join(key) + " " + value)
    for t in ACCESS:
        lines.append(f"{t.name} refused {t.refused}")
    return "\n".join(lines)


def digest(applied: Iterable[tuple[int, str]]) -> str:
    """What the layer of a database with these applied files ``(version, checksum)`` is made
    from: the access table, what the generator makes of it (so that a change to either is a
    new layer) and the files (which make the tables and fields)."""
    text = "\n".join([_source(), *(f"{v}:{c}" for v, c in sorted(applied))])
    return hashlib.sha256(text.encode()).hexdigest()


@functools.cache
def _source() -> str:
    """The access table and what the generator makes of it (the same for every database)."""
    generated = layer({t.name: dict.fromkeys(t.fields, "") for t in ACCESS})
    return "\n".join([render(), *generated])


# -- the generated schema ------------------------------------------------------------------------

_AGENT: Final = "$access = 'agent'"
# A user whose level covers this database (its own, its namespace's, or root): a VIEWER here,
# since the other roles bypass PERMISSIONS. A user of another database (who ran USE) is not.
_HOME: Final = (
    "($token.AC = NONE AND ($token.NS = NONE OR ($token.NS = $session.ns "
    "AND ($token.DB = NONE OR $token.DB = $session.db))))"
)
_READ_ONLY: Final = "permission_denied: this sign-in only reads (a VIEWER); nothing was written"
_QUOTE = re.compile(r"^[^'\\]*$")


def _text(message: str) -> str:
    if not _QUOTE.match(message):
        raise ValueError(f"a refusal's text holds no quote or backslash: {message!r}")
    return f"'{message}'"


def _refused(t: TableAccess, op: Op) -> str:
    return f"fn::{REFUSED_FN}('{t.name}', '{op}')"


def _functions() -> list[str]:
    """What every table's permissions call: the refusal of an agent's write (its text from
    the access table), and a VIEWER's. Kept out of the permissions themselves, which the
    engine reads for every record a statement touches, whoever writes: shorter permissions
    made a run append about 0.1 ms faster for every session, the owner's included."""
    reasons = ", ".join(f"{t.name}: {_text(f' ({t.refused})')}" for t in ACCESS if t.refused)
    return [
        f"DEFINE FUNCTION OVERWRITE fn::{REFUSED_FN}($table: string, $op: string) -> bool {{\n"
        f"    LET $why = {{ {reasons} }};\n"
        "    THROW 'permission_denied: this sign-in may not ' + $op + ' this ' + $table\n"
        "        + ' record' + ($why[$table] ?? '');\n"
        "};",
        # A user of this database (its own, its namespace's or root) that is not an agent is a
        # VIEWER here (the other roles never get this far): its write is refused. A user of
        # another database that ran USE: its create is refused, its update or delete skipped.
        f"DEFINE FUNCTION OVERWRITE fn::{READ_ONLY_FN}($create: bool) -> bool {{\n"
        f"    IF {_AGENT} {{ RETURN false }};\n"
        f"    IF $create OR {_HOME} {{ THROW {_text(_READ_ONLY)} }};\n"
        "    RETURN false;\n"
        "};",
    ]


def _table_permissions(t: TableAccess) -> str:
    # Boolean expressions: AND and OR stop at the first operand that decides, so a refusal
    # (a THROW) runs only when it is reached.
    select = t.agent.get("select")
    clauses = [f"FOR select WHERE {_AGENT} AND ({select.surql})" if select else "FOR select NONE"]
    create = t.agent.get("create")
    agent = f"(({create.surql}) OR {_refused(t, 'create')})" if create else _refused(t, "create")
    clauses.append(f"FOR create WHERE ({_AGENT} AND {agent}) OR fn::{READ_ONLY_FN}(true)")
    for op in ("update", "delete"):
        allowed = t.agent.get(op)
        # A record an agent may read but not change is refused; one it may not read is
        # skipped, as an absent one is.
        refused = (
            f"(({select.surql}) AND {_refused(t, op)})"
            if select is not None and select != allowed
            else None
        )
        agent = " OR ".join(x for x in (f"({allowed.surql})" if allowed else None, refused) if x)
        clauses.append(
            f"FOR {op} WHERE ({_AGENT} AND ({agent or 'false'})) OR fn::{READ_ONLY_FN}(false)"
        )
    return " ".join(clauses)


def _list(names: Iterable[str]) -> str:
    return "[" + ", ".join(_text(n) for n in names) + "]"


def _agent_writes(t: TableAccess, top: list[str]) -> str:
    """The event refusing an agent's write that sets a field not opened for it."""
    on_create = ["id", *(f for f in top if "c" in t.fields.get(f, ""))]
    on_update = [f for f in top if "u" in t.fields.get(f, "")]
    return (
        f"DEFINE EVENT OVERWRITE {AGENT_WRITES_EVENT} ON {t.name} "
        f"WHEN {_AGENT} AND $event != 'DELETE' THEN {{\n"
        "    LET $closed = IF $event = 'CREATE' {\n"
        f"        array::complement(object::keys($after), {_list(on_create)})\n"
        "    } ELSE {\n"
        "        array::complement(array::union(object::keys($before), object::keys($after)), "
        f"{_list(on_update)})\n"
        "            .filter(|$k| $before[$k] != $after[$k])\n"
        "    };\n"
        "    IF $closed {\n"
        f"        THROW 'permission_denied: an agent may not set ' + array::join($closed, ', ')"
        f" + ' on {t.name}';\n"
        "    };\n"
        "};"
    )


def _editor_writes(t: TableAccess) -> str:
    """The event refusing a write by a user that is not an OWNER (the roles bypass
    ``PERMISSIONS``; a VIEWER's writes never get this far)."""
    return (
        f"DEFINE EVENT OVERWRITE {EDITOR_WRITES_EVENT} ON {t.name} "
        "WHEN $token.AC = NONE AND $token.ID != NONE THEN {\n"
        "    LET $users = IF $token.DB != NONE { (INFO FOR DB).users } "
        "ELSE IF $token.NS != NONE { (INFO FOR NS).users } ELSE { (INFO FOR ROOT).users };\n"
        "    IF !string::matches(<string>($users[$token.ID] ?? ''), 'ROLES ([A-Z]+, )*OWNER') {\n"
        f"        THROW 'permission_denied: only an owner writes {t.name}';\n"
        "    };\n"
        "};"
    )


# A field's own permissions, as the engine prints them at the end of its definition. Writes
# are the agent-writes event's to check; a field is hidden from an agent that reads its table
# but not the field (the others never reach it: a table's permissions come first).
_FIELD_OPEN: Final = "PERMISSIONS FULL"
_FIELD_HIDDEN: Final = "PERMISSIONS FOR select NONE, FOR create, update FULL"


def layer(tables: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The statements that bring a database to the access table, given its tables and, for
    each, its fields' definitions as ``INFO`` prints them: a table or field the access table
    does not list is closed. A field whose permissions are already right is left alone."""
    out = _functions()
    for name in sorted(tables):
        validate_identifier(name, what="table")
        t = _BY_NAME.get(name) or TableAccess(name, {})
        fields = sorted(tables[name])
        out.append(f"ALTER TABLE {name} PERMISSIONS {_table_permissions(t)};")
        for f in fields:
            hidden = "select" in t.agent and "s" not in t.fields.get(f, "")
            if str(tables[name][f]).endswith(_FIELD_HIDDEN if hidden else _FIELD_OPEN):
                continue
            out.append(
                f"ALTER FIELD {_escaped(f)} ON {name} PERMISSIONS "
                f"FOR select {'NONE' if hidden else 'FULL'} FOR create, update FULL;"
            )
        if "create" in t.agent or "update" in t.agent:
            out.append(_agent_writes(t, [f for f in fields if "." not in f]))
        else:
            out.append(f"REMOVE EVENT IF EXISTS {AGENT_WRITES_EVENT} ON {name};")
        if t.editor_writes:
            out.append(f"REMOVE EVENT IF EXISTS {EDITOR_WRITES_EVENT} ON {name};")
        else:
            out.append(_editor_writes(t))
    return out
