"""Creating and deleting entities."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import cbor2
from pydantic import ConfigDict

from .._api import public
from .._errors import DimensionError, NotFoundError, ValidationError
from .._executor import Executor
from .._surql import as_array
from .._types import Model, RecordId, check_text, json_value
from ..memory._checks import MAX_BATCH, check_vector
from ..memory._space import required_space
from ._models import DEFAULT_SCOPE, ENTITY_FIELDS, Entity, NewEntity, name_key
from ._names import check_name, check_scope, entity_record, plain

__all__ = [
    "CREATE_ENTITIES_STATEMENTS",
    "create_entities",
    "delete_entities",
    "entity_row",
    "entity_vectors",
    "new_entity_rows",
    "update_entity",
]


# An entity never seen is inserted; a deleted one starts a new life (its last one kept in
# `lives`); a live one is left as it is. Returns the created, in input order.
CREATE_ENTITIES_STATEMENTS = (
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
            embedding = $r.embedding, embedding_model = $r.embedding_model,
            position = $r.position RETURN NONE;
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


def entity_row(scope: str, item: NewEntity, i: int) -> dict[str, Any]:
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


async def entity_vectors(db: Executor, rows: list[dict[str, Any]]) -> None:
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


async def new_entity_rows(
    db: Executor, *, scope: str, entities: Sequence[NewEntity]
) -> list[dict[str, Any]]:
    """The rows of a creation of ``entities`` in ``scope``, checked: a name repeated in the
    call once (its first occurrence), embeddings of the store's space, each row's position in
    the call (schema 033)."""
    check_scope(scope)
    if isinstance(entities, NewEntity) or not isinstance(entities, Sequence):
        raise ValidationError("entities must be a list of NewEntity")
    rows: dict[RecordId, dict[str, Any]] = {}
    for i, item in enumerate(entities):
        row = entity_row(scope, item, i)
        rows.setdefault(row["id"], row)
    todo = list(rows.values())
    await entity_vectors(db, todo)
    for k, r in enumerate(todo):
        if "embedding" in r and r["embedding"] is None:
            del r["embedding"]
        r["position"] = k
    return todo


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
    todo = await new_entity_rows(db, scope=scope, entities=entities)
    created: list[Entity] = []
    for start in range(0, len(todo), MAX_BATCH):
        batch = todo[start : start + MAX_BATCH]
        done = await db.query_required_single(
            CREATE_ENTITIES_STATEMENTS, _Created, rows=batch, ids=[r["id"] for r in batch]
        )
        if done.rows is not None:
            created += done.rows
            continue
        for r in batch:
            created.append(
                Entity(
                    id=str(r["id"].key), scope=r["scope"], name=r["name"], type=r["type"],
                    aliases=r["aliases"], summary=r["summary"],
                    attributes=plain(r["attributes"]),
                    embedding_model=r.get("embedding_model"), created_at=done.now,
                    updated_at=done.now, recorded_at=done.now, position=r["position"],
                )
            )  # fmt: skip
    return created


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


# The fields given are set; a change keeps the fields it replaces (schema 029's event), and the
# entity's updated_at becomes that row's time, so a read known at updated_at sees the change.
_UPDATE_ENTITY = (
    """
BEGIN;
LET $start = time::now();
IF array::len((SELECT VALUE id FROM $ids WHERE retracted_at = NONE) ?? []) = 0 {
    THROW 'not_found: no entity ' + $name + ' in scope ' + $scope;
};
UPDATE $ids SET type = $changes.type ?? type, summary = $changes.summary ?? summary,
    aliases = $changes.aliases ?? aliases, attributes = $changes.attributes ?? attributes
    RETURN NONE;
LET $at = (SELECT VALUE replaced_at FROM entity_version
    WHERE entity IN $ids AND replaced_at >= $start ORDER BY replaced_at DESC LIMIT 1) ?? [];
IF array::len($at) > 0 { UPDATE $ids SET updated_at = $at[0] RETURN NONE; };
"""
    + f"SELECT {ENTITY_FIELDS} FROM $ids;\n"
    + "COMMIT;"
)


@public
async def update_entity(
    db: Executor,
    *,
    name: str,
    type: str | None = None,
    summary: str | None = None,
    aliases: Sequence[str] | None = None,
    attributes: Mapping[str, Any] | None = None,
    scope: str = DEFAULT_SCOPE,
) -> Entity:
    """Change the ``type``, ``summary``, ``aliases`` or ``attributes`` (each ``None``: left
    as it is; ``attributes`` replaces the whole mapping) of the entity ``name`` of ``scope``,
    and return it.

    The store keeps what a change replaces (transaction time, schema 029, whoever writes):
    reads with ``known_at`` before the change answer the entity as it was then. Valid time
    does not apply to these fields. :class:`NotFoundError` if the entity does not exist (or
    is deleted); nothing is written then."""
    check_scope(scope)
    name = check_name(name)
    changes: dict[str, Any] = {}
    if type is not None:
        changes["type"] = check_text(type, "type", empty=True, limit=256)
    if summary is not None:
        changes["summary"] = check_text(summary, "summary", empty=True)
    if aliases is not None:
        if isinstance(aliases, str) or not isinstance(aliases, Sequence):
            raise ValidationError("aliases must be a list of strings, not one string")
        changes["aliases"] = list(dict.fromkeys(check_name(a, "an alias") for a in aliases))
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            raise ValidationError("attributes must be a mapping")
        changes["attributes"] = json_value(dict(attributes), what="attributes")
    if not changes:
        raise ValidationError("update_entity needs type=, summary=, aliases= or attributes=")
    found = await db.query(
        _UPDATE_ENTITY,
        Entity,
        ids=[entity_record(scope, name)],
        changes=changes,
        name=name,
        scope=scope,
    )
    if not found:  # not expected: the check above throws first
        raise NotFoundError(f"no entity {name!r} in scope {scope!r}")
    return found[0]
