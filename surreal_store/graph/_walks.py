"""Walking the graph: an entity's neighbourhood to depth N, and a bounded path between two.

Each walk is one query that follows the facts passing the walk's filters (scope, predicates,
the other end's type, valid and transaction time, invalidation) and reads the rows: the
neighbourhood a level at a time, breadth first; the path with the engine's recursive idiom
(``.{..N+shortest=...}``). Facts are followed either way
(subject to object and back), as a person reads "who is near Alice".
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from functools import cache
from typing import Any, Final

from pydantic import ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from .._api import public
from .._engine import precise_datetime
from .._errors import ValidationError
from .._executor import Executor
from .._surql import indexed_in
from .._types import Model, RecordId, describe
from ..memory._checks import check_utc
from ._models import (
    DEFAULT_SCOPE,
    FACT_FIELDS,
    VERSION_FIELDS,
    Entity,
    EntityVersion,
    Fact,
    Observation,
    Subgraph,
    as_known,
)
from ._names import check_name, check_scope, check_strings, entity_record
from ._reads import versions_of

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
        # As of a transaction time, an end's type is the one the store held then (schema 029).
        kind = "fn::entity_type_at({e}, $known_at)" if at else "{e}.type"
        parts.append(
            f"(in = $start OR {kind.format(e='in')} IN $types) "
            f"AND (out = $start OR {kind.format(e='out')} IN $types)"
        )
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


def _versions(at: bool) -> str:
    """The entity versions replaced after ``$known_at`` (schema 029), for the entities walked,
    their entity links as keys (the answer is JSON)."""
    if not at:
        return "[]"
    fields = VERSION_FIELDS.replace("entity,", "record::id(entity) AS entity,", 1)
    # 32 entities a part: an index answers each (docs/engine-notes.md, "IN past 32 values").
    return indexed_in("$ents.id", versions_of(at, "entity IN $part", fields))


def _check_depth(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DEPTH:
        raise ValidationError(f"{what} must be an int in [1, {MAX_DEPTH}], not {value!r}")
    return value


def _filters(
    scope: str,
    predicates: Sequence[str] | None,
    valid_at: dt.datetime | None,
    known_at: dt.datetime | None,
) -> dict[str, Any]:
    """The parameters of :func:`fact_filter` that every walk takes (``$scope``,
    ``$predicates``, ``$valid_at`` for ``$v``, ``$known_at``), checked."""
    return {
        "scope": check_scope(scope),
        "predicates": check_strings(predicates, "predicates"),
        "valid_at": check_utc(valid_at, "valid_at"),
        "known_at": check_utc(known_at, "known_at"),
    }


# The rows as JSON text: the SDK's decoding of many small records in its own encoding costs
# more than the walk (see _json_parts). Links stay records (``"entity:<key>"`` in JSON) and
# lose their table in Python: the engine's ``record::id`` on every link cost more than the
# walk's reads. A row is its record as stored (``*``), so a field the record does not hold is
# left out rather than written as null (a smaller answer to encode and parse), without the
# fields no read returns.
_ENTITY_JSON: Final = "* OMIT embedding, name_key, revision"
_FACT_OMIT: Final = "took, origin, invalidated_reason, invalidated_by"


def _fact_json(hidden: bool) -> str:
    """A fact's row: its causes as ``[table, key]`` pairs when hidden facts are walked; a fact
    walked without them has none (the schema keeps ``invalidated_at`` and the causes together),
    so they are left out and read as empty."""
    if not hidden:
        return f"* OMIT {_FACT_OMIT}, invalidated_causes"
    return (
        "*, IF invalidated_causes { invalidated_causes.map(|$c| [record::tb($c), record::id($c)]) "
        f"}} ELSE {{ [] }} AS invalidated_causes OMIT {_FACT_OMIT}"
    )


_OBSERVATION_JSON: Final = (
    "record::id(out) AS e, in.content AS content, record::id(in) AS memory, position, "
    "recorded_at, retracted_at, in.invalidated_at != NONE AS invalidated"
)


def _alive_row(row: str, at: bool) -> str:
    """:func:`_alive` for an entity row already read (``row``, a SurrealQL value)."""
    if not at:
        return f"{row}.retracted_at = NONE"
    return (
        f"(({row}.recorded_at <= $known_at AND ({row}.retracted_at = NONE "
        f"OR {row}.retracted_at > $known_at)) "
        f"OR {row}.lives.any(|$l| $l.recorded_at <= $known_at AND $l.retracted_at > $known_at))"
    )


def _levels(depth: int, ok: str, row: str) -> tuple[str, str]:
    """The walk, a level a statement block (breadth first), and the expression of the entities
    it reaches, the start first. Each fact is read once, as its row, by the level that first
    meets it; the ends of the facts that pass are the next level; none is tried twice. Arrays
    are joined with array::flatten: the engine refuses an array::concat output of about
    18,000 values."""

    def fact(source: str) -> str:
        return f"(SELECT {row} FROM {source} WHERE {ok}) ?? []"

    lines = [
        "LET $tried1 = array::distinct($start<->fact);",
        f"LET $f1 = {fact('$tried1')};",
    ]
    if depth == 1:
        return "\n".join(lines), "array::distinct(array::flatten([[$start], $f1.in, $f1.out]))"
    lines.append(
        "LET $new1 = array::complement(array::distinct(array::flatten([$f1.in, $f1.out])), "
        "[$start]);"
    )
    seen = "array::flatten([[$start], $new1])"
    for k in range(2, depth + 1):
        edges = f"array::distinct(array::flatten($new{k - 1}<->fact))"
        met = f"array::complement({edges}, $tried{k - 1})"
        ends = f"array::distinct(array::flatten([$f{k}.in, $f{k}.out]))"
        if k == depth:  # no level follows: nothing more to remember
            lines.append(f"LET $f{k} = {fact(met)};")
            return "\n".join(lines), f"array::flatten([{seen}, array::complement({ends}, {seen})])"
        lines += [
            f"LET $c{k} = {met};",
            f"LET $f{k} = {fact(f'$c{k}')};",
            f"LET $tried{k} = array::flatten([$tried{k - 1}, $c{k}]);",
            f"LET $seen{k - 1} = {seen};",
            f"LET $new{k} = array::complement({ends}, $seen{k - 1});",
        ]
        seen = f"array::flatten([$seen{k - 1}, $new{k}])"
    raise AssertionError("unreachable")  # pragma: no cover


@cache
def _neighbourhood_query(depth: int, at: bool, hidden: bool, predicates: bool, types: bool) -> str:
    ok = fact_filter(at=at, hidden=hidden, predicates=predicates, types=types)
    # A level after the last new entity costs next to nothing (even at MAX_DEPTH, parsing the
    # text costs less than the engine's recursive idiom, whose walk of a dense graph re-reads
    # each fact per path).
    walk, ids = _levels(depth, ok, _fact_json(hidden))
    facts = "array::flatten([" + ", ".join(f"$f{k}" for k in range(1, depth + 1)) + "])"
    # The start's row is read with the others (first: SELECT keeps the order of its records)
    # and is the check that the start exists. ``observed`` counts the observation links an
    # entity has ever had, so the links are looked up only for entities that have any, and
    # not at all when none has (an empty array is truthy, and ``out IN []`` reads the index);
    # 32 a part, so that an index answers each (docs/engine-notes.md, "IN past 32 values").
    observations = indexed_in(
        "$observed",
        f"SELECT {_OBSERVATION_JSON} FROM observation WHERE out IN $part "
        f"AND {_observations(at, hidden)}",
    )
    return f"""
LET $v = $valid_at ?? time::now();
{walk}
LET $ents = (SELECT {_ENTITY_JSON} FROM {ids}) ?? [];
IF $ents[0].id != $start OR $ents[0].scope != $scope OR !({_alive_row("$ents[0]", at)}) {{
    THROW 'not_found: no entity ' + $name + ' in scope ' + $scope;
}};
LET $observed = $ents[WHERE observed != 0].id;
RETURN encoding::json::encode({{
    entities: $ents,
    facts: {facts},
    observations: IF array::len($observed) > 0 {{ {observations} }} ELSE {{ [] }},
    versions: {_versions(at)},
}});
"""


_ENTITY_TIMES: Final = ("created_at", "updated_at", "recorded_at", "retracted_at")
_FACT_TIMES: Final = ("valid_from", "valid_until", "recorded_at", "retracted_at", "invalidated_at")
_OBSERVATION_TIMES: Final = ("recorded_at", "retracted_at")
_LIFE_TIMES: Final = ("recorded_at", "retracted_at")
_VERSION_TIMES: Final = ("replaced_at",)

_new_datetime: Final = dt.datetime.__new__
_from_iso: Final = dt.datetime.fromisoformat
_set_slot: Final = object.__setattr__
_PRECISE: type[dt.datetime] | None = None


def _instant(text: str) -> dt.datetime:
    """An RFC 3339 UTC timestamp from the engine's JSON (``YYYY-MM-DDTHH:MM:SS[.f]Z``), to the
    nanosecond, as :func:`precise_datetime` makes it, but parsed by slicing and made without
    the SDK's constructor (a neighbourhood parses a few hundred); any other shape goes
    through ``fromisoformat``."""
    global _PRECISE
    if _PRECISE is None:
        _PRECISE = type(precise_datetime("1970-01-01T00:00:00.000000001Z"))
    if len(text) == 30 and text[19] == "." and text[29] == "Z" and text[26:29].isdigit():
        # The engine's usual shape, nine digits: the microseconds by the C parser.
        at = _from_iso(text[:26])
        value = _new_datetime(
            _PRECISE, at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond,
            dt.UTC,
        )  # fmt: skip
        _set_slot(value, "nanosecond", int(text[26:29]))
        return value
    head, _, frac = text.rstrip("Z").partition(".")
    digits = (frac + "000000000")[:9]
    if len(head) == 19 and head[4] == "-" and head[10] == "T" and digits.isdigit():
        value = _new_datetime(
            _PRECISE, int(head[:4]), int(head[5:7]), int(head[8:10]), int(head[11:13]),
            int(head[14:16]), int(head[17:19]), int(digits[:6]), dt.UTC,
        )  # fmt: skip
        _set_slot(value, "nanosecond", int(digits[6:]))
        return value
    at = dt.datetime.fromisoformat(head)
    return _PRECISE(
        at.year, at.month, at.day, at.hour, at.minute, at.second, int(digits[:6]),
        tzinfo=dt.UTC, nanosecond=int(digits[6:]),  # type: ignore[call-arg]
    )  # fmt: skip


def _key(link: str) -> str:
    """A record's key from its JSON text (``"fact:<key>"``, the key in backticks or angle
    brackets when it reads as a number); the store's entity and fact keys are hex."""
    key = link.partition(":")[2]
    if key[:1] in ("`", "\u27e8") and key[-1:] in ("`", "\u27e9"):
        return key[1:-1]
    return key


def _times(row: dict[str, Any], names: tuple[str, ...], seen: dict[str, dt.datetime]) -> None:
    """``row``'s timestamps ``names`` parsed, each distinct text once per answer (``seen``):
    the rows of one write share theirs."""
    for name in names:
        value = row.get(name)
        if value.__class__ is str:
            at = seen.get(value)
            if at is None:
                at = seen[value] = _instant(value)
            row[name] = at


@cache
def _rows_of(model: type[Model]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _validated(model: type[Model], rows: list[dict[str, Any]]) -> list[Any]:
    """``rows`` as ``model``s, validated as one list (a call per row costs more), failing
    as :meth:`Model.model_validate` does."""
    try:
        return _rows_of(model).validate_python(rows)
    except PydanticValidationError as exc:
        raise ValidationError(describe(model.__name__, exc)) from None


def _json_parts(raw: str, centre: str) -> Subgraph:
    """The neighbourhood's JSON as models: datetimes to the nanosecond, facts' ends by name,
    sorted here (the engine's ORDER BY over a computed array is not reliable on 3.2.4)."""
    data = json.loads(raw)
    seen: dict[str, dt.datetime] = {}
    rows = data["entities"]
    named: dict[str, str] = {}  # an entity's link as the answer writes it: its name
    for row in rows:
        link = row["id"]
        named[link] = row["name"]
        row["id"] = _key(link)
        merged = row.get("merged_into")
        if merged is not None:
            row["merged_into"] = _key(merged)
        for life in row.get("lives") or ():
            _times(life, _LIFE_TIMES, seen)
        _times(row, _ENTITY_TIMES, seen)
    entities: list[Entity] = _validated(Entity, rows)
    if data.get("versions"):
        for v in data["versions"]:
            _times(v, _VERSION_TIMES, seen)
        versions: list[EntityVersion] = _validated(EntityVersion, data["versions"])
        entities = as_known(entities, versions)
    entities.sort(key=lambda e: e.name)
    rows = data["facts"]
    for row in rows:
        row["id"] = _key(row["id"])
        row["subject"] = named[row.pop("in")]
        row["object"] = named[row.pop("out")]
        for link in ("superseded_by", "supersedes"):
            if row.get(link) is not None:
                row[link] = _key(row[link])
        causes = row.get("invalidated_causes")
        if causes:
            row["invalidated_causes"] = [RecordId(t, k) for t, k in causes]
        _times(row, _FACT_TIMES, seen)
    facts: list[Fact] = _validated(Fact, rows)
    facts.sort(key=lambda f: (f.recorded_at, f.id))
    observations: dict[str, list[Observation]] = {e.name: [] for e in entities}
    if data["observations"]:
        name_of = {e.id: e.name for e in entities}
        for row in sorted(data["observations"], key=lambda r: r["position"]):
            name = name_of.get(row.pop("e"))
            if name is not None:
                row["entity"] = name
                _times(row, _OBSERVATION_TIMES, seen)
                observations[name].append(Observation.model_validate(row))
    return Subgraph(entities=entities, facts=facts, observations=observations, centre=centre)


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
    given = _filters(scope, predicates, valid_at, known_at)
    name = check_name(entity)
    depth = _check_depth(depth, "depth")
    kinds = check_strings(types, "types", empty=True)
    at, filtered = given["known_at"] is not None, given["predicates"] is not None
    text = _neighbourhood_query(depth, at, include_invalidated, filtered, kinds is not None)
    raw = await db.query_required_single(
        text,
        str,
        idempotent=True,
        start=entity_record(scope, name),
        name=name,
        types=kinds,
        **given,
    )
    return _json_parts(raw, name)


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
    given = _filters(scope, predicates, valid_at, known_at)
    start_name = check_name(source, "source")
    target_name = check_name(target, "target")
    depth = _check_depth(max_depth, "max_depth")
    at, filtered = given["known_at"] is not None, given["predicates"] is not None
    text = _path_query(at, include_invalidated, filtered, depth)
    parts = await db.query_required_single(
        text,
        _PathParts,
        idempotent=True,
        start=entity_record(scope, start_name),
        target=entity_record(scope, target_name),
        name=start_name,
        target_name=target_name,
        **given,
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
