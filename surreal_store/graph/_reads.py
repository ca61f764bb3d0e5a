"""Reading the graph as of a time: an entity, its facts, a set of nodes, the whole graph.

Every read takes two times, each ``None`` for now:

- ``valid_at``: facts true in the world at that time (``valid_from <= t < valid_until``);
- ``known_at``: what the store held at that time: entities, facts and observation links
  recorded at or before it and not yet retracted then, and each entity's type, summary,
  aliases and attributes as they were then (schema 029 keeps every change of them).

"What was true on March 1" is ``valid_at=march_1``; "what did we believe on March 1" is
``known_at=march_1`` (and ``valid_at=march_1`` for what we then believed true then). Facts and
observations hidden by a distrusted source are left out unless ``include_invalidated``.
Each read is one query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from typing import Any, Final

from pydantic import ConfigDict, Field

from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._types import Model
from ..memory._checks import check_utc
from ._models import (
    DEFAULT_SCOPE,
    ENTITY_FIELDS,
    FACT_FIELDS,
    OBSERVATION_FIELDS,
    VERSION_FIELDS,
    Entity,
    EntityVersion,
    EntityView,
    Fact,
    Observation,
    Predicate,
    Subgraph,
    as_known,
)
from ._names import check_name, check_scope, entity_record

__all__ = [
    "entity",
    "fact_history",
    "facts",
    "open_nodes",
    "predicates",
    "read_graph",
]

_VALID: Final = "valid_from <= $v AND (valid_until = NONE OR valid_until > $v)"


def _known(at: bool) -> str:
    """A record of the store as of ``$known_at`` (``at``) or now."""
    if not at:
        return "retracted_at = NONE"
    return "recorded_at <= $known_at AND (retracted_at = NONE OR retracted_at > $known_at)"


def _alive(at: bool) -> str:
    """An entity alive as of ``$known_at`` (in its current life or an earlier one) or now."""
    if not at:
        return "retracted_at = NONE"
    return (
        f"(({_known(True)}) OR lives.any(|$l| $l.recorded_at <= $known_at "
        "AND $l.retracted_at > $known_at))"
    )


def versions_of(at: bool, where: str, fields: str = VERSION_FIELDS) -> str:
    """The entity versions replaced after ``$known_at`` (``at``; none otherwise) of the
    entities ``where`` names (a condition on ``entity`` or ``scope``): what
    :func:`._models.as_known` puts back (``fields`` of them)."""
    if not at:
        return "[]"
    return f"(SELECT {fields} FROM entity_version WHERE {where} AND replaced_at > $known_at)"


def _fact_where(at: bool, hidden: bool) -> str:
    return f"{_known(at)} AND {_VALID}" + ("" if hidden else " AND invalidated_at = NONE")


def _observation_where(at: bool, hidden: bool) -> str:
    return _known(at) + ("" if hidden else " AND in.invalidated_at = NONE")


class _Parts(Model):
    model_config = ConfigDict(frozen=True)

    entities: list[Entity]
    facts: list[Fact]
    observations: list[Observation]
    versions: list[EntityVersion] = Field(default_factory=list)


# The engine's ORDER BY over a computed array of records is not relied on (docs/engine-notes.md):
# rows are put in order here.
def fact_order(f: Fact) -> tuple[dt.datetime, str]:
    return (f.recorded_at, f.id)


def _entity_order(e: Entity) -> tuple[dt.datetime, int, str]:
    # The order they were created in (schema 033), as the reference server lists them.
    return (e.recorded_at, e.position or 0, e.name)


def _subgraph(parts: _Parts) -> Subgraph:
    entities = sorted(as_known(parts.entities, parts.versions), key=_entity_order)
    observations: dict[str, list[Observation]] = {e.name: [] for e in entities}
    for o in sorted(parts.observations, key=lambda o: o.position):
        if o.entity in observations:
            observations[o.entity].append(o)
    return Subgraph(
        entities=entities, facts=sorted(parts.facts, key=fact_order), observations=observations
    )


def _times(valid_at: dt.datetime | None, known_at: dt.datetime | None) -> dict[str, Any]:
    return {
        "valid_at": check_utc(valid_at, "valid_at"),
        "known_at": check_utc(known_at, "known_at"),
    }


@cache
def _read_graph_query(at: bool, hidden: bool) -> str:
    return f"""
LET $v = $valid_at ?? time::now();
LET $entities = (SELECT {ENTITY_FIELDS} FROM entity WHERE scope = $scope AND {_alive(at)}
    );
LET $facts = (SELECT {_BARE_FACT_FIELDS} FROM fact
    WHERE scope = $scope AND {_fact_where(at, hidden)});
LET $observations = (SELECT {OBSERVATION_FIELDS} FROM observation
    WHERE scope = $scope AND {_observation_where(at, hidden)});
RETURN {{ entities: $entities, facts: $facts, observations: $observations,
    versions: {versions_of(at, "scope = $scope")} }};
"""


# A fact's ends as links: the names come from the entities read with it (fetching two records
# a fact cost more than the rest of the read).
_BARE_FACT_FIELDS: Final = FACT_FIELDS.replace("in.name AS subject", "in AS subject").replace(
    "out.name AS object", "out AS object"
)
_NAMES = "SELECT id, name FROM $ids;"


class _BareParts(Model):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    entities: list[Entity]
    facts: list[dict[str, Any]]
    observations: list[Observation]
    versions: list[EntityVersion] = Field(default_factory=list)


async def _named(db: Executor, bare: _BareParts) -> _Parts:
    names = {e.id: e.name for e in bare.entities}
    missing = {
        f[end] for f in bare.facts for end in ("subject", "object") if f[end].key not in names
    }
    if missing:  # not expected: a fact known then has both ends alive then
        for row in await db.query(_NAMES, dict, idempotent=True, ids=list(missing)):
            names[str(row["id"].key)] = row["name"]
    facts = [
        Fact(**{**f, "subject": names[f["subject"].key], "object": names[f["object"].key]})
        for f in bare.facts
    ]
    return _Parts(
        entities=bare.entities,
        facts=facts,
        observations=bare.observations,
        versions=bare.versions,
    )


@public
async def read_graph(
    db: Executor,
    *,
    scope: str = DEFAULT_SCOPE,
    valid_at: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> Subgraph:
    """The whole graph of ``scope`` as of ``valid_at`` / ``known_at`` (see the module's text):
    its entities, the facts between them and their observations in insertion order."""
    times = _times(valid_at, known_at)
    text = _read_graph_query(times["known_at"] is not None, include_invalidated)
    bare = await db.query_required_single(
        text, _BareParts, idempotent=True, scope=check_scope(scope), **times
    )
    return _subgraph(await _named(db, bare))


# The named entities alive then, the facts touching any of them, and their observations.
@cache
def _nodes_query(at: bool, hidden: bool) -> str:
    return f"""
LET $v = $valid_at ?? time::now();
LET $entities = (SELECT {ENTITY_FIELDS} FROM $ids WHERE {_alive(at)});
LET $found = $entities.map(|$e| $e.id);
LET $edges = array::distinct(array::flatten(
    (SELECT VALUE array::concat(->fact, <-fact) FROM $found)
));
LET $links = array::flatten((SELECT VALUE <-observation FROM $found));
LET $facts = (SELECT {FACT_FIELDS} FROM $edges WHERE {_fact_where(at, hidden)});
LET $observations = (SELECT {OBSERVATION_FIELDS} FROM $links
    WHERE {_observation_where(at, hidden)});
RETURN {{ entities: $entities, facts: $facts ?? [], observations: $observations ?? [],
    versions: {versions_of(at, "entity IN $found")} }};
"""


def _names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValidationError("names must be a list of entity names")
    return list(dict.fromkeys(check_name(n) for n in names))


@public
async def open_nodes(
    db: Executor,
    *,
    names: Sequence[str],
    scope: str = DEFAULT_SCOPE,
    valid_at: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> Subgraph:
    """The entities ``names`` of ``scope`` (those that exist then; others are skipped), every
    fact with either end among them, and their observations, as of ``valid_at`` /
    ``known_at``. As the reference memory server's ``open_nodes``, a fact's other end need not
    be among the entities returned."""
    check_scope(scope)
    ids = [entity_record(scope, n) for n in _names(names)]
    times = _times(valid_at, known_at)
    text = _nodes_query(times["known_at"] is not None, include_invalidated)
    parts = await db.query_required_single(text, _Parts, idempotent=True, ids=ids, **times)
    return _subgraph(parts)


@public
async def entity(
    db: Executor,
    *,
    name: str,
    scope: str = DEFAULT_SCOPE,
    valid_at: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> EntityView | None:
    """The entity ``name`` of ``scope`` with its facts (either end) and its observations in
    insertion order, as of ``valid_at`` / ``known_at``; ``None`` if it does not exist then."""
    check_scope(scope)
    ids = [entity_record(scope, check_name(name))]
    times = _times(valid_at, known_at)
    text = _nodes_query(times["known_at"] is not None, include_invalidated)
    parts = await db.query_required_single(text, _Parts, idempotent=True, ids=ids, **times)
    if not parts.entities:
        return None
    return EntityView(
        entity=as_known(parts.entities, parts.versions)[0],
        facts=sorted(parts.facts, key=fact_order),
        observations=sorted(parts.observations, key=lambda o: o.position),
    )


# Where the facts are looked for: a subject's out-edges, an object's in-edges, an entity's
# both, or the scope's.
def _fact_source(*, subject: bool, obj: bool, either: bool) -> str:
    if either:
        return "array::distinct(array::concat($entity->fact, $entity<-fact))"
    if subject:
        return "$subject->fact"
    if obj:
        return "$object<-fact"
    return "fact"


@cache
def _facts_query(
    subject: bool, obj: bool, either: bool, predicate: bool, at: bool, hidden: bool, every: bool
) -> str:
    where = ["scope = $scope"]
    if subject and obj:
        where.append("out = $object")
    if predicate:
        where.append("predicate = $predicate")
    if not every:
        where.append(_fact_where(at, hidden))
    source = _fact_source(subject=subject, obj=obj, either=either)
    return (
        "LET $v = $valid_at ?? time::now();\n"
        f"SELECT {FACT_FIELDS} FROM {source} WHERE {' AND '.join(where)};"
    )


def _fact_params(
    scope: str,
    entity: str | None,
    subject: str | None,
    obj: str | None,
    predicate: str | None,
) -> dict[str, Any]:
    check_scope(scope)
    if entity is not None and (subject is not None or obj is not None):
        raise ValidationError("give entity= (either end) or subject= / object=, not both")
    return {
        "scope": scope,
        "entity": entity_record(scope, check_name(entity)) if entity is not None else None,
        "subject": entity_record(scope, check_name(subject, "subject"))
        if subject is not None
        else None,
        "object": entity_record(scope, check_name(obj, "object")) if obj is not None else None,
        "predicate": check_name(predicate, "predicate") if predicate is not None else None,
    }


def _facts_text(params: dict[str, Any], *, at: bool, hidden: bool, every: bool) -> str:
    """The query for the facts that ``params`` (:func:`_fact_params`) name."""
    return _facts_query(
        params["subject"] is not None,
        params["object"] is not None,
        params["entity"] is not None,
        params["predicate"] is not None,
        at,
        hidden,
        every,
    )


@public
async def facts(
    db: Executor,
    *,
    entity: str | None = None,
    subject: str | None = None,
    object: str | None = None,
    predicate: str | None = None,
    scope: str = DEFAULT_SCOPE,
    valid_at: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> list[Fact]:
    """The facts of ``scope`` true at ``valid_at`` as the store held them at ``known_at``
    (each ``None``: now), oldest recorded first: those with ``entity`` at either end, or with
    ``subject`` / ``object``, and ``predicate``, when given."""
    params = _fact_params(scope, entity, subject, object, predicate)
    times = _times(valid_at, known_at)
    at = times["known_at"] is not None
    text = _facts_text(params, at=at, hidden=include_invalidated, every=False)
    return sorted(await db.query(text, Fact, idempotent=True, **params, **times), key=fact_order)


@public
async def fact_history(
    db: Executor,
    *,
    entity: str | None = None,
    subject: str | None = None,
    object: str | None = None,
    predicate: str | None = None,
    scope: str = DEFAULT_SCOPE,
) -> list[Fact]:
    """Every version of the matching facts ever recorded (retracted, superseded and hidden
    ones included), oldest recorded first: the history behind :func:`facts`."""
    params = _fact_params(scope, entity, subject, object, predicate)
    text = _facts_text(params, at=False, hidden=True, every=True)
    found = await db.query(text, Fact, idempotent=True, valid_at=None, **params)
    return sorted(found, key=fact_order)


_PREDICATES = """
SELECT scope, name, single_valued, created_at, updated_at FROM predicate
    WHERE scope = $scope ORDER BY name;
"""


@public
async def predicates(db: Executor, *, scope: str = DEFAULT_SCOPE) -> list[Predicate]:
    """The declared predicates of ``scope``."""
    return await db.query(_PREDICATES, Predicate, idempotent=True, scope=check_scope(scope))
