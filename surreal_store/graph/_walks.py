"""Walking the graph: an entity's neighbourhood to depth N, and a bounded path between two.

Each walk is one query: the engine's recursive idiom (``.{1..N+collect}``) follows the facts
that pass the walk's filters (scope, predicates, the other end's type, valid and transaction
time, invalidation), and the same query reads the rows. Facts are followed either way
(subject to object and back), as a person reads "who is near Alice".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from functools import cache
from typing import Final

from pydantic import ConfigDict

from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._types import Model, check_text
from ..memory._checks import check_utc
from ._models import (
    DEFAULT_SCOPE,
    ENTITY_FIELDS,
    FACT_FIELDS,
    OBSERVATION_FIELDS,
    Entity,
    Fact,
    Observation,
    Subgraph,
)
from ._write import check_name, check_scope, entity_record

__all__ = ["MAX_DEPTH", "fact_filter", "neighbourhood", "path"]

MAX_DEPTH: Final = 256
"""The deepest walk: the engine's recursion limit."""


def fact_filter(*, at: bool, hidden: bool, predicates: bool = False, types: bool = False) -> str:
    """The condition a fact passes to be walked (``$scope``, ``$v`` the valid time, ``$known_at``
    when ``at``, ``$predicates`` and ``$types`` when filtered, ``$start`` the walk's start,
    whose type never filters). The same rules as the reads of :mod:`._reads`."""
    known = (
        "recorded_at <= $known_at AND (retracted_at = NONE OR retracted_at > $known_at)"
        if at
        else "retracted_at = NONE"
    )
    parts = [
        "scope = $scope",
        known,
        "valid_from <= $v AND (valid_until = NONE OR valid_until > $v)",
    ]
    if not hidden:
        parts.append("invalidated_at = NONE")
    if predicates:
        parts.append("predicate IN $predicates")
    if types:
        parts.append("(in = $start OR in.type IN $types) AND (out = $start OR out.type IN $types)")
    return " AND ".join(parts)


def _alive(at: bool) -> str:
    if not at:
        return "retracted_at = NONE"
    return (
        "((recorded_at <= $known_at AND (retracted_at = NONE OR retracted_at > $known_at)) "
        "OR lives.any(|$l| $l.recorded_at <= $known_at AND $l.retracted_at > $known_at))"
    )


def _observations(at: bool, hidden: bool) -> str:
    known = (
        "recorded_at <= $known_at AND (retracted_at = NONE OR retracted_at > $known_at)"
        if at
        else "retracted_at = NONE"
    )
    return known + ("" if hidden else " AND in.invalidated_at = NONE")


class _Parts(Model):
    model_config = ConfigDict(frozen=True)

    entities: list[Entity]
    facts: list[Fact]
    observations: list[Observation]


def _check_depth(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DEPTH:
        raise ValidationError(f"{what} must be an int in [1, {MAX_DEPTH}], not {value!r}")
    return value


def _strings(value: Sequence[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{what} must be a list of strings, not one string")
    return sorted({check_text(v, what, empty=what == "types", limit=256) for v in value})


@cache
def _neighbourhood_query(depth: int, at: bool, hidden: bool, predicates: bool, types: bool) -> str:
    ok = fact_filter(at=at, hidden=hidden, predicates=predicates, types=types)
    deeper = (
        f"$first.{{1..{depth - 1}+collect}}(<->entity<->fact[WHERE {ok}])" if depth > 1 else "[]"
    )
    return f"""
LET $v = $valid_at ?? time::now();
IF array::len((SELECT VALUE id FROM $start WHERE scope = $scope AND {_alive(at)}) ?? []) = 0 {{
    THROW 'not_found: no entity ' + $name + ' in scope ' + $scope;
}};
LET $first = $start<->fact[WHERE {ok}];
LET $edges = array::distinct(array::concat($first ?? [], {deeper} ?? []));
LET $ids = array::distinct(array::concat([$start], $edges.in, $edges.out));
LET $links = array::flatten((SELECT VALUE <-observation FROM $ids));
RETURN {{
    entities: (SELECT {ENTITY_FIELDS} FROM $ids ORDER BY name) ?? [],
    facts: (SELECT {FACT_FIELDS} FROM $edges ORDER BY recorded_at, id) ?? [],
    observations: (SELECT {OBSERVATION_FIELDS} FROM $links
        WHERE {_observations(at, hidden)} ORDER BY position) ?? [],
}};
"""


@public
async def neighbourhood(
    db: Executor,
    *,
    entity: str,
    depth: int = 2,
    predicates: Sequence[str] | None = None,
    types: Sequence[str] | None = None,
    scope: str = DEFAULT_SCOPE,
    valid_at: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> Subgraph:
    """The entities within ``depth`` facts of ``entity`` (facts followed either way), the facts
    walked, and the entities' observations, in one query.

    Filters apply to every step: only facts whose ``predicate`` is one of ``predicates``;
    only entities whose ``type`` is one of ``types`` (``entity`` itself is always there);
    only facts true at ``valid_at`` as the store held them at ``known_at`` (each ``None``:
    now), and not hidden by a distrusted source unless ``include_invalidated``. ``depth`` is
    at most :data:`MAX_DEPTH`. :class:`NotFoundError` if ``entity`` did not exist then."""
    check_scope(scope)
    name = check_name(entity)
    depth = _check_depth(depth, "depth")
    preds = _strings(predicates, "predicates")
    kinds = _strings(types, "types")
    valid = check_utc(valid_at, "valid_at")
    known = check_utc(known_at, "known_at")
    text = _neighbourhood_query(
        depth, known is not None, include_invalidated, preds is not None, kinds is not None
    )
    parts = await db.query_required_single(
        text,
        _Parts,
        idempotent=True,
        start=entity_record(scope, name),
        name=name,
        scope=scope,
        valid_at=valid,
        known_at=known,
        predicates=preds,
        types=kinds,
    )
    # Sorted here: the engine's ORDER BY over a computed array is not reliable (3.2.4).
    entities = sorted(parts.entities, key=lambda e: e.name)
    facts = sorted(parts.facts, key=lambda f: (f.recorded_at, f.id))
    observations: dict[str, list[Observation]] = {e.name: [] for e in entities}
    for o in sorted(parts.observations, key=lambda o: o.position):
        if o.entity in observations:
            observations[o.entity].append(o)
    return Subgraph(entities=entities, facts=facts, observations=observations, centre=name)


@cache
def _path_query(at: bool, hidden: bool, predicates: bool, depth: int) -> str:
    ok = fact_filter(at=at, hidden=hidden, predicates=predicates)
    return f"""
LET $v = $valid_at ?? time::now();
LET $alive = (SELECT VALUE id FROM [$start, $target] WHERE scope = $scope AND {_alive(at)}) ?? [];
IF $start NOTINSIDE $alive {{ THROW 'not_found: no entity ' + $name + ' in scope ' + $scope }};
IF $target NOTINSIDE $alive {{
    THROW 'not_found: no entity ' + $target_name + ' in scope ' + $scope;
}};
-- (3.2.4 refuses a recursive idiom inside an IF block: "Specify a database to use".)
LET $nodes = $start.{{..{depth}+shortest=$target+inclusive}}(<->fact[WHERE {ok}]<->entity);
LET $found = IF $start = $target {{ [$start] }}
    ELSE IF type::is_array($nodes) AND array::last($nodes) = $target {{ $nodes }} ELSE {{ [] }};
LET $edges = array::distinct(array::flatten((SELECT VALUE ->fact[WHERE {ok}] FROM $found)))
    .filter(|$f| $f.out INSIDE $found);
RETURN {{
    nodes: $found,
    ids: $found.map(|$n| record::id($n)),
    facts: (SELECT {FACT_FIELDS}, record::id(in) AS s, record::id(out) AS o FROM $edges
        ORDER BY recorded_at, id) ?? [],
}};
"""


class _PathFact(Fact):
    s: str
    o: str


class _PathParts(Model):
    model_config = ConfigDict(frozen=True)

    ids: list[str]
    facts: list[_PathFact]


@public
async def path(
    db: Executor,
    *,
    source: str,
    target: str,
    max_depth: int = 6,
    predicates: Sequence[str] | None = None,
    scope: str = DEFAULT_SCOPE,
    valid_at: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> list[Fact] | None:
    """A shortest chain of facts from ``source`` to ``target`` (facts followed either way),
    at most ``max_depth`` facts long, in one query: the facts in order from ``source``,
    ``[]`` when ``source`` is ``target``, ``None`` when there is none that short.

    Where two entities of the chain share several facts, the one recorded first stands for
    them. The filters are :func:`neighbourhood`'s. :class:`NotFoundError` if either entity
    did not exist then."""
    check_scope(scope)
    start_name = check_name(source, "source")
    target_name = check_name(target, "target")
    depth = _check_depth(max_depth, "max_depth")
    preds = _strings(predicates, "predicates")
    valid = check_utc(valid_at, "valid_at")
    known = check_utc(known_at, "known_at")
    text = _path_query(known is not None, include_invalidated, preds is not None, depth)
    parts = await db.query_required_single(
        text,
        _PathParts,
        idempotent=True,
        start=entity_record(scope, start_name),
        target=entity_record(scope, target_name),
        name=start_name,
        target_name=target_name,
        scope=scope,
        valid_at=valid,
        known_at=known,
        predicates=preds,
    )
    if not parts.ids:
        return None
    between: dict[frozenset[str], Fact] = {}
    # Oldest first: the first of a pair stands for it.
    for f in sorted(parts.facts, key=lambda f: (f.recorded_at, f.id)):
        plain = Fact.model_validate(f.model_dump(exclude={"s", "o"}))
        between.setdefault(frozenset((f.s, f.o)), plain)
    chain: list[Fact] = []
    for a, b in zip(parts.ids, parts.ids[1:], strict=False):
        step = between.get(frozenset((a, b)))
        if step is None:  # changed between the walk and the read: no chain to show
            return None
        chain.append(step)
    return chain
