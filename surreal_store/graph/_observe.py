"""Adding and removing observations: memories linked to the entities they are about."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._facts import ATTACH_BLOCK
from .._surql import as_array
from .._types import RecordId, check_text
from ._models import (
    DEFAULT_SCOPE,
)
from ._names import CHECK_ENDS, check_name, check_scope, entity_record
from ._sources import Source, memory_source_params, parse_sources

__all__ = [
    "ADD_OBSERVATIONS_STATEMENTS",
    "OBSERVATION_KIND",
    "add_observations",
    "add_observations_many",
    "delete_observations",
    "delete_observations_many",
    "observation_items",
    "observation_memory_id",
]

OBSERVATION_KIND: Final = "observation"
"""The ``kind`` of the memories that hold observations."""


# The contents each entity holds now (by content hash), read once per call: a batch that read
# them again would make a large call quadratic.
_HELD = """
RETURN $ends.map(|$e| (SELECT VALUE in.content_hash FROM observation
    WHERE out = $e AND retracted_at = NONE));
"""

# A call writes OBSERVATION_BATCH observations to a transaction. A transaction's cost on the
# in-memory engine grows with the square of what it writes (figures in the commit that
# split it), so a large call is split to stay linear; surrealkv://
# is linear either way.
OBSERVATION_BATCH: Final = 250

ADD_OBSERVATIONS_STATEMENTS = (
    """
BEGIN;
LET $now = time::now();
"""
    + CHECK_ENDS
    + """-- The memories there before this write: only they can be linked already.
LET $old = (SELECT VALUE id FROM $memories.map(|$m| $m.id));
"""
    + as_array("$old")
    + """FOR $m IN $memories {
    IF !record::exists($m.id) {
        CREATE ONLY $m.id CONTENT {
            scope: $scope, kind: $kind, key: $m.key, content: $m.content, content_hash: $m.hash,
        } RETURN NONE;
    };
};
FOR $i IN $items {
    LET $entity = $i.entity;
    -- The caller left out the contents the entity held when it looked (by content: links
    -- that came with a merge, or from memories written before they were per entity, too);
    -- what a concurrent writer linked since is left out here, from the memories' side.
    LET $todo = IF array::len($old) = 0 { $i.memories } ELSE {
        $i.memories.filter(|$m| $m.id NOTINSIDE $old OR array::len(
            (SELECT VALUE id FROM $m.id->observation WHERE out = $entity AND retracted_at = NONE)
        ) = 0)
    };
    LET $base = (SELECT VALUE observed FROM ONLY $i.entity);
    -- The count first: a link's position is below its entity's count (observation_guard).
    IF array::len($todo) > 0 {
        UPDATE ONLY $i.entity SET observed = $base + array::len($todo), updated_at = $now
            RETURN NONE;
    };
    INSERT RELATION INTO observation $todo.map(|$m, $n| {
        id: type::record('observation', [record::id($m.id), record::id($entity), $base + $n]),
        in: $m.id, out: $entity, scope: $scope, position: $base + $n, recorded_at: $now,
    }) RETURN NONE;
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
-- What was added, from the memories' side: an observation memory is its entity's own, so
-- this reads the new links only, however many the entities had.
SELECT out.name AS entity, in.content AS content, position
    FROM array::flatten((SELECT VALUE ->observation FROM $memories.map(|$m| $m.id)))
    WHERE recorded_at = $now AND out IN $ends;
COMMIT;
"""
)


def observation_memory_id(scope: str, entity: str, content: str) -> str:
    """The id of the memory holding observation ``content`` of entity ``entity`` (its name) in
    ``scope``: SHA-256 over a prefix no plain memory's input has, the scope, the entity and the
    content, each length-prefixed. Each entity's observations are its own memories, so hiding
    one (its source distrusted) hides nothing of another entity's same words; within an entity
    a content is one memory, as memories are deduplicated. The database checks it too."""
    text = f"observation:{len(scope)}:{scope}{len(entity)}:{entity}{content}"
    return hashlib.sha256(text.encode()).hexdigest()


def _contents(value: Any, what: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{what} must be a list of strings")
    return list(dict.fromkeys(check_text(c, what, empty=True) for c in value))


def observation_items(
    scope: str, observations: Mapping[str, Sequence[str]]
) -> tuple[list[dict[str, Any]], dict[RecordId, dict[str, Any]]]:
    if not isinstance(observations, Mapping):
        raise ValidationError("observations must map entity names to lists of contents")
    items: list[dict[str, Any]] = []
    memories: dict[RecordId, dict[str, Any]] = {}
    for name, contents in observations.items():
        rid = entity_record(scope, check_name(name))
        mids = []
        for c in _contents(contents, f"the observations of {name!r}"):
            mid = RecordId("memory", observation_memory_id(scope, name, c))
            row = {"id": mid, "key": name, "content": c, "hash": _hash(c)}
            memories.setdefault(mid, row)
            mids.append({"id": mid, "hash": row["hash"]})
        items.append({"entity": rid, "name": name, "memories": mids})
    return items, memories


def _hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@public
async def add_observations_many(
    db: Executor,
    *,
    observations: Mapping[str, Sequence[str]],
    scope: str = DEFAULT_SCOPE,
    source: Source | Sequence[Source] | None = None,
) -> dict[str, list[str]]:
    """Add observations to several entities of ``scope`` and return, for each entity, the
    contents newly added (in the order given). A call writes in one transaction up to
    250 observations, in one transaction per 250 beyond (an unknown entity fails the first,
    before anything is written).

    Each observation is a memory of its own (kind ``observation``, ``key`` the entity's name,
    id :func:`observation_memory_id`: the same words on two entities are two memories, so
    distrusting one's source hides nothing of the other) linked to the entity after its
    earlier observations. Contents the entity already has, and repeats within the call, are
    skipped. An entity that does not exist fails the whole call (:class:`NotFoundError`),
    nothing written. ``source`` is
    recorded on the memories as the memory layer records provenance."""
    check_scope(scope)
    items, memories = observation_items(scope, observations)
    sources = parse_sources(source)
    names = {str(i["entity"].key): i["name"] for i in items}
    ends = [i["entity"] for i in items]
    out: dict[str, list[str]] = {i["name"]: [] for i in items}
    held = await db.query(_HELD, list, ends=ends, idempotent=True)
    for i, hashes in zip(items, held, strict=True):
        if hashes:
            have = set(hashes)
            i["memories"] = [m for m in i["memories"] if m["hash"] not in have]
    # Every batch names every entity, so an unknown one fails the first, before any write.
    pairs = [(i["entity"], m) for i in items for m in i["memories"]] or [(None, None)]
    for start in range(0, len(pairs), OBSERVATION_BATCH):
        batch: dict[RecordId, list[dict[str, Any]]] = {}
        for entity, m in pairs[start : start + OBSERVATION_BATCH]:
            if entity is not None:
                batch.setdefault(entity, []).append(m)
        mids = list(dict.fromkeys(m["id"] for ms in batch.values() for m in ms))
        added = await db.query(
            ADD_OBSERVATIONS_STATEMENTS,
            dict,
            scope=scope,
            kind=OBSERVATION_KIND,
            items=[{"entity": e, "memories": ms} for e, ms in batch.items()],
            memories=[memories[mid] for mid in mids],
            ends=ends,
            names=names,
            attach=[memory_source_params(mid, sources) for mid in mids] if sources else [],
        )
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
    LET $hashes = $i.memories.map(|$m| $m.hash);
    UPDATE observation SET retracted_at = $now
        WHERE out = $entity AND retracted_at = NONE AND in.content_hash IN $hashes RETURN NONE;
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
    items, _ = observation_items(scope, observations)
    await db.execute(_DELETE_OBSERVATIONS, items=items)


@public
async def delete_observations(
    db: Executor, *, entity: str, contents: Sequence[str], scope: str = DEFAULT_SCOPE
) -> None:
    """Remove ``contents`` from the observations of ``entity`` (see
    :func:`delete_observations_many`)."""
    await delete_observations_many(db, observations={entity: contents}, scope=scope)
