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
from ..memory import memory_id
from ._models import (
    DEFAULT_SCOPE,
)
from ._names import CHECK_ENDS, check_name, check_scope, entity_record
from ._sources import Source, memory_source_params, parse_sources

__all__ = [
    "OBSERVATION_KIND",
    "add_observations",
    "add_observations_many",
    "delete_observations",
    "delete_observations_many",
]

OBSERVATION_KIND: Final = "observation"
"""The ``kind`` of the memories that hold observations."""


_ADD_OBSERVATIONS = (
    """
BEGIN;
LET $now = time::now();
"""
    + CHECK_ENDS
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
