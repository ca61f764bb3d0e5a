"""Writing the graph: entities, facts (with supersession), observations, predicates.

Every call checks all of its input before it sends anything, and writes in one transaction
(calls of more than :data:`MAX_BATCH` rows: one transaction per batch of that many, every
batch checked before the first is written). Writes follow the reference memory server where
it has an answer: creating an existing entity skips it, adding an observation an entity has
skips it, deleting what is absent is a no-op.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import cbor2
from pydantic import ConfigDict

from .._api import public
from .._errors import DimensionError, NotFoundError, QueryError, ValidationError
from .._executor import Executor
from .._facts import ATTACH_BLOCK
from .._surql import as_array
from .._types import JSON_NULL, Model, RecordId, check_text, json_value
from ..memory import memory_id
from ..memory._checks import MAX_BATCH, check_utc, check_vector
from ..memory._space import required_space
from ._models import (
    DEFAULT_SCOPE,
    ENTITY_FIELDS,
    FACT_FIELDS,
    Entity,
    Fact,
    NewEntity,
    NewFact,
    Predicate,
    entity_id,
    fact_key,
    name_key,
)
from ._sources import Source, fact_source_params, memory_source_params, parse_sources

__all__ = [
    "ASSERT_FACTS_STATEMENTS",
    "CREATE_ENTITIES_STATEMENTS",
    "OBSERVATION_KIND",
    "add_observations",
    "add_observations_many",
    "assert_facts",
    "check_name",
    "check_scope",
    "create_entities",
    "declare_predicate",
    "delete_entities",
    "delete_observations",
    "delete_observations_many",
    "end_facts",
    "entity_record",
    "entity_row",
    "entity_vectors",
    "fact_ends",
    "fact_row",
    "name_missing",
    "retract_facts",
]

OBSERVATION_KIND: Final = "observation"
"""The ``kind`` of the memories that hold observations."""


def check_scope(scope: str) -> str:
    return check_text(scope, "scope", limit=512)


def check_name(name: str, what: str = "entity name") -> str:
    return check_text(name, what, limit=1024)


def entity_record(scope: str, name: str) -> RecordId:
    return RecordId("entity", entity_id(scope, name))


def _check_predicate(name: str) -> str:
    return check_text(name, "predicate", limit=256)


# -- entities ------------------------------------------------------------------------------

# An entity never seen is inserted; a deleted one starts a new life (its last one kept in
# `lives`); a live one is left as it is. Returns the created, in input order.
_CREATE_ENTITIES = (
    """
BEGIN;
LET $now = time::now();
-- One read of the ids (those not stored give no row), split only when some are.
LET $found = (SELECT id, retracted_at FROM $ids);
"""
    + as_array("$found")
    + """LET $alive = IF array::len($found) = 0 { [] } ELSE {
    $found.filter(|$e| $e.retracted_at = NONE).map(|$e| $e.id)
};
LET $dead = IF array::len($found) = 0 { [] } ELSE {
    $found.filter(|$e| $e.retracted_at != NONE).map(|$e| $e.id)
};
LET $known = array::concat($alive, $dead);
INSERT INTO entity (IF array::len($known) = 0 { $rows } ELSE {
    $rows.filter(|$r| $r.id NOTINSIDE $known)
}).map(|$r| object::extend($r, { created_at: $now, updated_at: $now, recorded_at: $now }))
    RETURN NONE;
IF array::len($dead) > 0 {
    FOR $r IN $rows.filter(|$r| $r.id INSIDE $dead) {
        UPDATE ONLY $r.id SET lives += { recorded_at: recorded_at, retracted_at: retracted_at },
            recorded_at = $now, retracted_at = NONE, updated_at = $now, type = $r.type,
            aliases = $r.aliases, summary = $r.summary, attributes = $r.attributes,
            embedding = $r.embedding, embedding_model = $r.embedding_model RETURN NONE;
    };
};
-- All new: the client makes the entities from its rows and the time (reading a thousand
-- records back cost as much as writing them).
"""
    + f"""{{ now: $now, rows: IF array::len($known) = 0 {{ NONE }} ELSE {{
    (SELECT {ENTITY_FIELDS} FROM array::complement($ids, $alive))
}} }};
COMMIT;"""
)


class _Created(Model):
    model_config = ConfigDict(frozen=True)

    now: dt.datetime
    rows: list[Entity] | None = None


def _entity_row(scope: str, item: NewEntity, i: int) -> dict[str, Any]:
    if not isinstance(item, NewEntity):
        raise ValidationError(f"entity {i} is not a NewEntity")
    try:
        name = check_name(item.name)
        key = name_key(name)
        if not key:
            raise ValidationError(f"entity name {name!r} is only whitespace")
        kind = check_text(item.type, "type", empty=True, limit=256)
        if isinstance(item.aliases, str):
            raise ValidationError("aliases must be a list of strings, not one string")
        aliases = list(dict.fromkeys(check_name(a, "an alias") for a in item.aliases))
        summary = check_text(item.summary, "summary", empty=True)
        if not isinstance(item.attributes, Mapping):
            raise ValidationError("attributes must be a mapping")
        attributes = json_value(dict(item.attributes), what="attributes")
        vector = check_vector(item.embedding) if item.embedding is not None else None
    except ValidationError as exc:
        raise ValidationError(f"entity {i}: {exc}") from None
    return {
        "id": entity_record(scope, name),
        "scope": scope,
        "name": name,
        "name_key": key,
        "type": kind,
        "aliases": aliases,
        "summary": summary,
        "attributes": attributes,
        "embedding": vector,
    }


async def _with_vectors(db: Executor, rows: list[dict[str, Any]]) -> None:
    """Vectors must be the store's embedding space's: checked, then sent as CBOR bytes."""
    if not any(r["embedding"] is not None for r in rows):
        for r in rows:
            del r["embedding"]
        return
    space = await required_space(db)
    for r in rows:
        vector = r.pop("embedding")
        if vector is None:
            continue
        if len(vector) != space.index_dimension:
            raise DimensionError(
                f"entity {r['name']!r}: the embedding has {len(vector)} dimensions; the "
                f"store's space {space.writing_model} has {space.index_dimension}"
            )
        r["embedding"] = cbor2.dumps(vector)
        r["embedding_model"] = space.writing_model


@public
async def create_entities(
    db: Executor, *, entities: Sequence[NewEntity], scope: str = DEFAULT_SCOPE
) -> list[Entity]:
    """Create ``entities`` in ``scope`` and return the ones created, in input order.

    A name that is already an entity of the scope is skipped (it is not updated), as the
    reference memory server does; a name repeated in the call is created once (its first
    occurrence). A deleted entity's name creates it again: a new life of the same record.
    ``embedding`` (of name + summary, for search) must be of the store's embedding space.
    """
    check_scope(scope)
    if isinstance(entities, NewEntity) or not isinstance(entities, Sequence):
        raise ValidationError("entities must be a list of NewEntity")
    rows: dict[RecordId, dict[str, Any]] = {}
    for i, item in enumerate(entities):
        row = _entity_row(scope, item, i)
        rows.setdefault(row["id"], row)
    todo = list(rows.values())
    await _with_vectors(db, todo)
    for r in todo:
        if "embedding" in r and r["embedding"] is None:
            del r["embedding"]
    created: list[Entity] = []
    for start in range(0, len(todo), MAX_BATCH):
        batch = todo[start : start + MAX_BATCH]
        done = await db.query_required_single(
            _CREATE_ENTITIES, _Created, rows=batch, ids=[r["id"] for r in batch]
        )
        if done.rows is not None:
            created += done.rows
            continue
        for r in batch:
            created.append(
                Entity(
                    id=str(r["id"].key), scope=r["scope"], name=r["name"], type=r["type"],
                    aliases=r["aliases"], summary=r["summary"],
                    attributes=_plain(r["attributes"]),
                    embedding_model=r.get("embedding_model"), created_at=done.now,
                    updated_at=done.now, recorded_at=done.now,
                )
            )  # fmt: skip
    return created


def _plain(value: Any) -> Any:
    """A JSON value as the database gives it back: :data:`JSON_NULL` as ``None``."""
    if value is JSON_NULL:
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# Deleting retracts: the entity's current life ends, and with it its current facts (either
# end) and observation links; nothing is removed, so reads as of an earlier time still see
# them. Returns the entities deleted (those already deleted or never created are skipped).
_DELETE_ENTITIES = (
    """
BEGIN;
LET $now = time::now();
LET $gone = (SELECT VALUE id FROM $ids WHERE retracted_at = NONE);
"""
    + as_array("$gone")
    + """LET $edges = array::distinct(array::flatten((SELECT VALUE array::concat(->fact, <-fact)
    FROM $gone)));
UPDATE $edges SET retracted_at = $now WHERE retracted_at = NONE RETURN NONE;
LET $links = array::flatten((SELECT VALUE <-observation FROM $gone));
UPDATE $links SET retracted_at = $now WHERE retracted_at = NONE RETURN NONE;
UPDATE $gone SET retracted_at = $now, updated_at = $now RETURN NONE;
"""
    + f"SELECT {ENTITY_FIELDS} FROM $gone;\n"
    + "COMMIT;"
)


@public
async def delete_entities(
    db: Executor, *, names: Sequence[str], scope: str = DEFAULT_SCOPE
) -> list[Entity]:
    """Delete the entities ``names`` of ``scope`` with their facts and observation links, in
    one transaction, and return the entities deleted.

    Deleting retracts (transaction time): reads with ``known_at`` before now still see them,
    and creating the name again starts a new life. Names that are not entities are skipped."""
    check_scope(scope)
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValidationError("names must be a list of entity names")
    ids = list(dict.fromkeys(entity_record(scope, check_name(n)) for n in names))
    return await db.query(_DELETE_ENTITIES, Entity, ids=ids)


# -- facts ---------------------------------------------------------------------------------

# The ends must be live entities, the sources must exist; a user's note becomes an annotation.
_CHECK_ENDS = (
    """
LET $live = (SELECT VALUE id FROM $ends WHERE retracted_at = NONE);
"""
    + as_array("$live")
    + """IF array::len($live) < array::len($ends) {
    THROW 'not_found: no entity ' + $names[record::id(array::complement($ends, $live)[0])]
        + ' in scope ' + $scope;
};
"""
)
_SOURCE_BLOCK = """
FOR $n IN $f_notes {
    IF !record::exists($n.id) { CREATE ONLY $n.id SET user = $n.user, note = $n.note RETURN NONE };
};
FOR $s IN $f_sources {
    IF !record::exists($s.out) { THROW 'not_found: source ' + <string>$s.out + ' does not exist' };
};
-- A fact from a distrusted source is hidden from the start, by the causes that cascade to
-- what derives from it: the source's own distrust, and a source memory's standing causes.
LET $f_causes = array::distinct(array::flatten([
    $f_sources.map(|$s| $s.out),
    (SELECT VALUE invalidated_causes FROM $f_sources.map(|$s| $s.out).filter(
        |$o| record::tb($o) = 'memory')),
])).filter(|$c| (SELECT VALUE cascade FROM ONLY type::record('source_invalidation', [$c])) = true);
LET $f_first = IF array::len($f_causes) > 0 {
    (SELECT reason, by FROM ONLY type::record('source_invalidation', [$f_causes[0]]))
} ELSE { NONE };
"""

# The general path: one row at a time, in order, so that a row sees the facts the rows before
# it recorded. A row whose fact is already current over its whole valid time (the same subject,
# predicate, object and value) is skipped. A single-valued predicate's other current values
# for the subject that overlap the row's valid time are retracted (superseded by it), and what
# of each lies outside the row's valid time is recorded again (its valid time closed), with its
# sources and causes.
_ONE_BY_ONE = (
    """
FOR $r IN $rows {
    LET $vf = $r.valid_from ?? $now;
    LET $vu = $r.valid_until;
    -- Plain variables, not fields of $r: the planner uses an index only for those (3.2.4: a
    -- 200-row assertion took 3.1 s against 1,400 facts with $r.key, 0.2 s with $key).
    LET $key = $r.key;
    LET $subject = $r.in;
    LET $predicate = $r.predicate;
    IF $vu != NONE AND $vu <= $vf {
        THROW 'invalid: fact ' + <string>$r.n + ' is valid until before it is valid from';
    };
    LET $covered = (SELECT VALUE id FROM fact WHERE key = $key AND retracted_at = NONE
        AND valid_from <= $vf AND (valid_until = NONE OR ($vu != NONE AND valid_until >= $vu))
        LIMIT 1);
    """
    + as_array("$covered")
    + """
    IF array::len($covered) = 0 {
        IF $predicate INSIDE $single {
            LET $rivals = (SELECT * FROM fact WHERE in = $subject AND predicate = $predicate
                AND retracted_at = NONE AND key != $key
                AND (valid_until = NONE OR valid_until > $vf)
                AND ($vu = NONE OR valid_from < $vu));
            """
    + as_array("$rivals")
    + """
            FOR $g IN $rivals {
                UPDATE ONLY $g.id SET retracted_at = $now, superseded_by = $r.id RETURN NONE;
                LET $pieces = array::concat(
                    IF $g.valid_from < $vf { [{ from: $g.valid_from, until: $vf }] } ELSE { [] },
                    IF $vu != NONE AND ($g.valid_until = NONE OR $g.valid_until > $vu) {
                        [{ from: $vu, until: $g.valid_until }]
                    } ELSE { [] }
                );
                LET $sources = (SELECT out, how FROM fact_source WHERE in = $g.id);
                """
    + as_array("$sources")
    + """
                FOR $p IN $pieces {
                    LET $copy = type::record('fact',
                        string::replace(<string>rand::uuid::v4(), '-', ''));
                    INSERT RELATION INTO fact {
                        id: $copy, in: $g.in, out: $g.out, scope: $g.scope,
                        predicate: $g.predicate, value: $g.value, key: $g.key,
                        valid_from: $p.from, valid_until: $p.until, recorded_at: $now,
                        supersedes: $g.id, invalidated_at: $g.invalidated_at,
                        invalidated_reason: $g.invalidated_reason,
                        invalidated_by: $g.invalidated_by,
                        invalidated_causes: $g.invalidated_causes,
                    } RETURN NONE;
                    INSERT RELATION INTO fact_source $sources.map(|$s| {
                        id: type::record('fact_source', [record::id($copy), <string>$s.out]),
                        in: $copy, out: $s.out, how: $s.how,
                    }) RETURN NONE;
                };
            };
        };
        INSERT RELATION INTO fact {
            id: $r.id, in: $r.in, out: $r.out, scope: $scope, predicate: $r.predicate,
            value: $r.value, key: $r.key, valid_from: $vf, valid_until: $vu,
            recorded_at: $now, invalidated_at: $f_hidden, invalidated_reason: $f_first.reason,
            invalidated_by: $f_first.by, invalidated_causes: $f_causes,
        } RETURN NONE;
        INSERT RELATION INTO fact_source $f_sources.map(|$s| {
            id: type::record('fact_source', [record::id($r.id), <string>$s.out]),
            in: $r.id, out: $s.out, how: $s.how,
        }) RETURN NONE;
    };
};
"""
)

# The bulk path, taken when no predicate of the batch is single-valued, no key of it is
# current already and no key repeats within it (the client knows the last): nothing to skip
# or supersede, so the rows go in as one statement.
_ALL_AT_ONCE = """
INSERT RELATION INTO fact $rows.map(|$r| {
    id: $r.id, in: $r.in, out: $r.out, scope: $scope, predicate: $r.predicate,
    value: $r.value, key: $r.key, valid_from: $r.valid_from ?? $now,
    valid_until: $r.valid_until, recorded_at: $now, invalidated_at: $f_hidden,
    invalidated_reason: $f_first.reason, invalidated_by: $f_first.by,
    invalidated_causes: $f_causes,
}) RETURN NONE;
IF array::len($f_sources) > 0 {
    INSERT RELATION INTO fact_source array::flatten($rows.map(|$r| $f_sources.map(|$s| {
        id: type::record('fact_source', [record::id($r.id), <string>$s.out]),
        in: $r.id, out: $s.out, how: $s.how,
    }))) RETURN NONE;
};
"""

# The subject and object names are the client's: not read back (two record fetches a row).
_NEW_FACT_FIELDS: Final = (
    "id, scope, predicate, value, key, valid_from, valid_until, recorded_at, retracted_at, "
    "superseded_by, supersedes, invalidated_at, invalidated_causes"
)

_ASSERT_FACTS = (
    """
BEGIN;
LET $now = time::now();
"""
    + _SOURCE_BLOCK
    + """LET $f_hidden = IF array::len($f_causes) > 0 { $now } ELSE { NONE };
LET $single = (SELECT VALUE name FROM predicate
    WHERE scope = $scope AND single_valued = true AND name IN $predicates);
"""
    + as_array("$single")
    # Whether each key's facts are current, by the key alone: the index answers that three
    # times faster than with the retracted_at condition in the WHERE (3.2.4, 8k facts).
    + """LET $taken = IF $distinct AND array::len($single) = 0 {
    (SELECT VALUE retracted_at = NONE FROM fact WHERE key IN $keys)
} ELSE { [true] };
"""
    + as_array("$taken")
    + """LET $fast = !($taken CONTAINS true);
IF $fast {"""
    + _ALL_AT_ONCE
    + "} ELSE {"
    + _ONE_BY_ONE
    + "};\n"
    # All recorded as sent: the client makes the facts (reading them back cost a third of
    # the write).
    + f"""{{ now: $now, causes: $f_causes, rows: IF $fast
    {{ NONE }} ELSE {{ (SELECT {_NEW_FACT_FIELDS} FROM $ids) }} }};
COMMIT;"""
)


class _Asserted(Model):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    now: dt.datetime
    causes: list[RecordId]
    rows: list[dict[str, Any]] | None = None


def _new_fact_id() -> RecordId:
    return RecordId("fact", uuid.uuid4().hex)


def _fact_row(scope: str, item: NewFact, i: int) -> dict[str, Any]:
    if not isinstance(item, NewFact):
        raise ValidationError(f"fact {i} is not a NewFact")
    try:
        subject = check_name(item.subject, "subject")
        obj = check_name(item.object, "object")
        predicate = _check_predicate(item.predicate)
        value = None if item.value is None else json_value(item.value, what="value")
        vf = check_utc(item.valid_from, "valid_from")
        vu = check_utc(item.valid_until, "valid_until")
        if vf is not None and vu is not None and vu <= vf:
            raise ValidationError("valid_until is not after valid_from")
    except ValidationError as exc:
        raise ValidationError(f"fact {i}: {exc}") from None
    return {
        "n": i,
        "id": _new_fact_id(),
        "in": entity_record(scope, subject),
        "out": entity_record(scope, obj),
        "predicate": predicate,
        "value": value,
        "key": fact_key(scope, subject, predicate, obj, item.value),
        "valid_from": vf,
        "valid_until": vu,
        "names": (subject, obj),
    }


def _fact_batches(scope: str, facts: Sequence[NewFact]) -> list[list[dict[str, Any]]]:
    if isinstance(facts, NewFact) or not isinstance(facts, Sequence):
        raise ValidationError("facts must be a list of NewFact")
    rows = [_fact_row(scope, f, i) for i, f in enumerate(facts)]
    return [rows[start : start + MAX_BATCH] for start in range(0, len(rows), MAX_BATCH)]


def _ends(batch: list[dict[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The batch's entities and their names (for the query), and each row's subject and
    object names (taken out of the rows)."""
    names: dict[str, str] = {}
    ends: dict[RecordId, None] = {}
    pairs: list[tuple[str, str]] = []
    for r in batch:
        subject, obj = r.pop("names")
        pairs.append((subject, obj))
        for rid, name in ((r["in"], subject), (r["out"], obj)):
            ends.setdefault(rid)
            names[str(rid.key)] = name
    return {"ends": list(ends), "names": names}, pairs


_LIVE = "SELECT VALUE id FROM $ends WHERE retracted_at = NONE;"


async def _name_missing(
    db: Executor, *, scope: str, ends: list[RecordId], names: dict[str, str]
) -> None:
    """After a refused write: :class:`NotFoundError` naming an end that is not a live entity
    (the database's own refusal names its hashed id, or no entity at all), if there is one.
    The check costs a read of every end, so it is made only when the write fails."""
    live = set(await db.query(_LIVE, RecordId, idempotent=True, ends=ends))
    for rid in ends:
        if rid not in live:
            raise NotFoundError(f"no entity {names[str(rid.key)]} in scope {scope}") from None


name_missing = _name_missing  # for writes that run ASSERT_FACTS_STATEMENTS themselves


@public
async def assert_facts(
    db: Executor,
    *,
    facts: Sequence[NewFact],
    scope: str = DEFAULT_SCOPE,
    source: Source | Sequence[Source] | None = None,
) -> list[Fact]:
    """Record ``facts`` in ``scope`` and return those newly recorded, in input order.

    Subjects and objects must be entities of the scope (:class:`NotFoundError` otherwise,
    nothing written). A fact already current over the whole of its valid time (the same
    subject, predicate, object and value) is not recorded again: asserting a fact twice
    returns it once. For a predicate declared single-valued (:func:`declare_predicate`), the
    subject's current facts with another object or value whose valid time overlaps the new
    fact's are superseded in the same transaction: each is retracted and what of it lies
    outside the new fact's valid time is recorded again, so "Alice works at Acme from 2020"
    then "Alice works at Globex from 2024" leaves Acme valid from 2020 until 2024.

    ``source`` records where the facts came from (see :mod:`surreal_store.graph`); a fact
    from a distrusted source is hidden from the start."""
    check_scope(scope)
    batches = _fact_batches(scope, facts)
    params = fact_source_params(parse_sources(source), scope=scope)
    prepared = [_ends(batch) for batch in batches]
    if len(batches) > 1:
        # Checked before the first batch is written: a later one would fail after it.
        every: dict[str, Any] = {"ends": [], "names": {}}
        for ends, _ in prepared:
            every["ends"] += ends["ends"]
            every["names"].update(ends["names"])
        every["ends"] = list(dict.fromkeys(every["ends"]))
        for start in range(0, len(every["ends"]), MAX_BATCH):
            chunk = every["ends"][start : start + MAX_BATCH]
            await _name_missing(db, scope=scope, ends=chunk, names=every["names"])
    out: list[Fact] = []
    for batch, (ends, names) in zip(batches, prepared, strict=True):
        predicates = sorted({r["predicate"] for r in batch})
        keys = [r["key"] for r in batch]
        try:
            done = await db.query_required_single(
                _ASSERT_FACTS,
                _Asserted,
                rows=batch,
                ids=[r["id"] for r in batch],
                keys=keys,
                distinct=len(set(keys)) == len(keys),
                scope=scope,
                predicates=predicates,
                **params,
            )
        except QueryError:
            await _name_missing(db, scope=scope, **ends)
            raise
        if done.rows is None:
            hidden = done.now if done.causes else None
            out += [
                Fact(
                    id=str(r["id"].key), scope=scope, subject=subject, predicate=r["predicate"],
                    object=obj, value=_plain(r["value"]), key=r["key"],
                    valid_from=r["valid_from"] or done.now, valid_until=r["valid_until"],
                    recorded_at=done.now, invalidated_at=hidden,
                    invalidated_causes=done.causes,
                )
                for r, (subject, obj) in zip(batch, names, strict=True)
            ]  # fmt: skip
            continue
        by_id = {str(f["id"].key): f for f in done.rows}
        out += [
            Fact(**by_id[k], subject=subject, object=obj)
            for r, (subject, obj) in zip(batch, names, strict=True)
            if (k := str(r["id"].key)) in by_id
        ]
    return out


_RETRACT_FACTS = """
BEGIN;
LET $now = time::now();
FOR $s IN $specs {
    LET $key = $s.key;
    UPDATE fact SET retracted_at = $now WHERE key = $key AND retracted_at = NONE
        AND ($s.valid_from = NONE OR valid_from = $s.valid_from)
        AND ($s.valid_until = NONE OR valid_until = $s.valid_until) RETURN NONE;
};
UPDATE (SELECT VALUE id FROM $ids WHERE scope = $scope) SET retracted_at = $now
    WHERE retracted_at = NONE RETURN NONE;
LET $by_key = (SELECT VALUE id FROM fact WHERE key IN $keys AND retracted_at = $now);
LET $by_id = (SELECT VALUE id FROM $ids WHERE retracted_at = $now);
""" + (
    as_array("$by_key")
    + as_array("$by_id")
    + f"SELECT {FACT_FIELDS} FROM array::distinct(array::concat($by_key, $by_id));\nCOMMIT;"
)


@public
async def retract_facts(
    db: Executor, *, facts: Sequence[NewFact | Fact | str], scope: str = DEFAULT_SCOPE
) -> list[Fact]:
    """Retract facts of ``scope`` (the store unlearns them: reads as of now no longer see
    them, reads with an earlier ``known_at`` still do) and return those retracted.

    Each item is a :class:`Fact` or a fact id (that fact), or a :class:`NewFact`: every current
    fact with its subject, predicate, object and value (and, when given, exactly its
    ``valid_from`` / ``valid_until``). What is not current is skipped."""
    check_scope(scope)
    if isinstance(facts, NewFact | Fact | str) or not isinstance(facts, Sequence):
        raise ValidationError("facts must be a list of facts, NewFacts or fact ids")
    specs: list[dict[str, Any]] = []
    ids: list[RecordId] = []
    for i, item in enumerate(facts):
        if isinstance(item, Fact):
            ids.append(RecordId("fact", item.id))
        elif isinstance(item, str):
            ids.append(RecordId.parse(item, table="fact"))
        else:
            row = _fact_row(scope, item, i)
            specs.append({k: row[k] for k in ("key", "valid_from", "valid_until")})
    found = await db.query(
        _RETRACT_FACTS, Fact, specs=specs, ids=ids, keys=[s["key"] for s in specs], scope=scope
    )
    return sorted(found, key=lambda f: (f.recorded_at, f.id))


# Each current fact matching a spec that is still valid at $at is retracted, and what of it
# lay before $at is recorded again with its valid time closed there (with its sources and
# causes), as supersession does.
_END_FACTS = (
    """
BEGIN;
LET $now = time::now();
LET $at = $end ?? $now;
FOR $s IN $specs {
    LET $key = $s.key;
    LET $from = $s.valid_from;
    LET $hits = (SELECT * FROM fact WHERE key = $key AND retracted_at = NONE AND scope = $scope
        AND (valid_until = NONE OR valid_until > $at)
        AND ($from = NONE OR valid_from = $from));
    """
    + as_array("$hits")
    + """
    FOR $g IN $hits {
        UPDATE ONLY $g.id SET retracted_at = $now RETURN NONE;
        IF $g.valid_from < $at {
            LET $copy = type::record('fact', string::replace(<string>rand::uuid::v4(), '-', ''));
            INSERT RELATION INTO fact {
                id: $copy, in: $g.in, out: $g.out, scope: $g.scope, predicate: $g.predicate,
                value: $g.value, key: $g.key, valid_from: $g.valid_from, valid_until: $at,
                recorded_at: $now, supersedes: $g.id, invalidated_at: $g.invalidated_at,
                invalidated_reason: $g.invalidated_reason, invalidated_by: $g.invalidated_by,
                invalidated_causes: $g.invalidated_causes,
            } RETURN NONE;
            LET $sources = (SELECT out, how FROM fact_source WHERE in = $g.id);
            """
    + as_array("$sources")
    + f"""
            INSERT RELATION INTO fact_source $sources.map(|$x| {{
                id: type::record('fact_source', [record::id($copy), <string>$x.out]),
                in: $copy, out: $x.out, how: $x.how,
            }}) RETURN NONE;
        }};
    }};
}};
SELECT {FACT_FIELDS} FROM fact WHERE key IN $keys AND recorded_at = $now AND retracted_at = NONE;
COMMIT;"""
)


@public
async def end_facts(
    db: Executor,
    *,
    facts: Sequence[NewFact],
    at: dt.datetime | None = None,
    scope: str = DEFAULT_SCOPE,
) -> list[Fact]:
    """End facts of ``scope`` in valid time: they stop holding at ``at`` (``None``: now), as
    "Alice left Acme on March 1" says, without naming what holds next.

    Each item names the current facts with its subject, predicate, object and value (and
    exactly its ``valid_from`` when given). Those still valid at ``at`` are retracted, and
    those valid before it recorded again with ``valid_until = at`` (``supersedes`` names the
    fact they replace); reads with an earlier ``known_at`` still see the open version. Returns
    the facts recorded with their end, in one transaction."""
    check_scope(scope)
    if isinstance(facts, NewFact) or not isinstance(facts, Sequence):
        raise ValidationError("facts must be a list of NewFact")
    specs = []
    for i, item in enumerate(facts):
        row = _fact_row(scope, item, i)
        specs.append({"key": row["key"], "valid_from": row["valid_from"]})
    when = check_utc(at, "at")
    found = await db.query(
        _END_FACTS,
        Fact,
        specs=specs,
        keys=[s["key"] for s in specs],
        scope=scope,
        end=when,
    )
    return sorted(found, key=lambda f: (f.recorded_at, f.id))


_DECLARE = """
UPSERT ONLY type::record('predicate', [$scope, $name])
    SET scope = $scope, name = $name, single_valued = $single, updated_at = time::now()
    RETURN scope, name, single_valued, created_at, updated_at;
"""


@public
async def declare_predicate(
    db: Executor, *, name: str, single_valued: bool, scope: str = DEFAULT_SCOPE
) -> Predicate:
    """Declare predicate ``name`` of ``scope`` single-valued (a subject has one current value
    at a time: asserting a new one supersedes the others) or not. Facts already recorded are
    left as they are (their overlaps stay visible as conflicts)."""
    if not isinstance(single_valued, bool):
        raise ValidationError("single_valued must be a bool")
    return await db.query_required_single(
        _DECLARE,
        Predicate,
        scope=check_scope(scope),
        name=_check_predicate(name),
        single=single_valued,
    )


# -- observations --------------------------------------------------------------------------

_ADD_OBSERVATIONS = (
    """
BEGIN;
LET $now = time::now();
"""
    + _CHECK_ENDS
    + """FOR $m IN $memories {
    IF !record::exists($m.id) {
        CREATE ONLY $m.id CONTENT {
            scope: $scope, kind: $kind, content: $m.content, content_hash: $m.hash,
        } RETURN NONE;
    };
};
FOR $i IN $items {
    LET $entity = $i.entity;
    LET $have = (SELECT VALUE in FROM observation WHERE out = $entity AND retracted_at = NONE);
    """
    + as_array("$have")
    + """
    LET $todo = $i.memories.filter(|$m| $m NOTINSIDE $have);
    LET $base = (SELECT VALUE observed FROM ONLY $i.entity);
    INSERT RELATION INTO observation $todo.map(|$m, $n| {
        id: type::record('observation', [record::id($m), record::id($i.entity), $base + $n]),
        in: $m, out: $i.entity, scope: $scope, position: $base + $n, recorded_at: $now,
    }) RETURN NONE;
    IF array::len($todo) > 0 {
        UPDATE ONLY $i.entity SET observed = $base + array::len($todo), updated_at = $now
            RETURN NONE;
    };
};
FOR $a IN $attach {
    LET $p_memory = $a.p_memory;
    LET $p_sources = $a.p_sources;
    LET $p_parents = $a.p_parents;
    LET $p_annotations = $a.p_annotations;
"""
    + ATTACH_BLOCK
    + """
};
SELECT out.name AS entity, in.content AS content, position FROM observation
    WHERE out IN $ends AND recorded_at = $now;
COMMIT;
"""
)


def _contents(value: Any, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{what} must be a list of strings")
    return list(dict.fromkeys(check_text(c, what, empty=True) for c in value))


def _observation_items(
    scope: str, observations: Mapping[str, Sequence[str]]
) -> tuple[list[dict[str, Any]], dict[RecordId, str]]:
    if not isinstance(observations, Mapping):
        raise ValidationError("observations must map entity names to lists of contents")
    items: list[dict[str, Any]] = []
    memories: dict[RecordId, str] = {}
    for name, contents in observations.items():
        rid = entity_record(scope, check_name(name))
        mids = []
        for c in _contents(contents, f"the observations of {name!r}"):
            mid = RecordId("memory", memory_id(scope, c))
            memories.setdefault(mid, c)
            mids.append(mid)
        items.append({"entity": rid, "name": name, "memories": mids})
    return items, memories


@public
async def add_observations_many(
    db: Executor,
    *,
    observations: Mapping[str, Sequence[str]],
    scope: str = DEFAULT_SCOPE,
    source: Source | Sequence[Source] | None = None,
) -> dict[str, list[str]]:
    """Add observations to several entities of ``scope`` in one transaction and return, for
    each entity, the contents newly added (in the order given).

    Each observation is a memory (kind ``observation``, deduplicated by content within the
    scope as every memory is) linked to the entity after its earlier observations. Contents the
    entity already has, and repeats within the call, are skipped. An entity that does not
    exist fails the whole call (:class:`NotFoundError`), nothing written. ``source`` is
    recorded on the memories as the memory layer records provenance."""
    check_scope(scope)
    items, memories = _observation_items(scope, observations)
    sources = parse_sources(source)
    names = {str(i["entity"].key): i["name"] for i in items}
    rows = [
        {"id": mid, "content": c, "hash": hashlib.sha256(c.encode()).hexdigest()}
        for mid, c in memories.items()
    ]
    attach = [memory_source_params(mid, sources) for mid in memories] if sources else []
    added = await db.query(
        _ADD_OBSERVATIONS,
        dict,
        scope=scope,
        kind=OBSERVATION_KIND,
        items=items,
        memories=rows,
        ends=[i["entity"] for i in items],
        names=names,
        attach=attach,
    )
    out: dict[str, list[str]] = {i["name"]: [] for i in items}
    for row in sorted(added, key=lambda r: r["position"]):
        out[row["entity"]].append(row["content"])
    return out


@public
async def add_observations(
    db: Executor,
    *,
    entity: str,
    contents: Sequence[str],
    scope: str = DEFAULT_SCOPE,
    source: Source | Sequence[Source] | None = None,
) -> list[str]:
    """Add ``contents`` as observations of ``entity`` and return those newly added (see
    :func:`add_observations_many`)."""
    check_name(entity)
    added = await add_observations_many(
        db, observations={entity: contents}, scope=scope, source=source
    )
    return added[entity]


_DELETE_OBSERVATIONS = """
BEGIN;
LET $now = time::now();
FOR $i IN $items {
    LET $entity = $i.entity;
    LET $memories = $i.memories;
    UPDATE observation SET retracted_at = $now
        WHERE out = $entity AND retracted_at = NONE AND in IN $memories RETURN NONE;
};
COMMIT;
"""


@public
async def delete_observations_many(
    db: Executor, *, observations: Mapping[str, Sequence[str]], scope: str = DEFAULT_SCOPE
) -> None:
    """Remove observations from several entities of ``scope`` in one transaction. The links
    are retracted (reads as of an earlier time still see them); the memories stay. What is
    absent (an entity, a content) is skipped."""
    check_scope(scope)
    items, _ = _observation_items(scope, observations)
    await db.execute(_DELETE_OBSERVATIONS, items=items)


@public
async def delete_observations(
    db: Executor, *, entity: str, contents: Sequence[str], scope: str = DEFAULT_SCOPE
) -> None:
    """Remove ``contents`` from the observations of ``entity`` (see
    :func:`delete_observations_many`)."""
    await delete_observations_many(db, observations={entity: contents}, scope=scope)


# -- the writes' statements and rows, for running several writes in one transaction ----------
# (graph._extract's ingest: a source memory, its entities and its facts together)
CREATE_ENTITIES_STATEMENTS: Final = _CREATE_ENTITIES
ASSERT_FACTS_STATEMENTS: Final = _ASSERT_FACTS
entity_row = _entity_row
entity_vectors = _with_vectors
fact_row = _fact_row
fact_ends = _ends
