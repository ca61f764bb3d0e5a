"""Asserting, retracting and ending facts (with supersession)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Final

from pydantic import ConfigDict

from .._api import public
from .._errors import NotFoundError, QueryError, ValidationError
from .._executor import Executor
from .._surql import as_array, indexed_in
from .._types import Model, RecordId, json_value
from ..memory._checks import MAX_BATCH, check_utc
from ._models import (
    DEFAULT_SCOPE,
    FACT_FIELDS,
    Fact,
    NewFact,
    fact_key,
)
from ._names import check_name, check_predicate, check_scope, entity_record, plain
from ._sources import Source, fact_source_params, parse_sources

__all__ = [
    "ASSERT_FACTS_STATEMENTS",
    "assert_facts",
    "end_facts",
    "fact_ends",
    "fact_row",
    "fact_rows",
    "name_missing",
    "retract_facts",
]


# The ends must be live entities, the sources must exist; a user's note becomes an annotation.
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
    array::flatten(SELECT VALUE invalidated_causes FROM $f_sources.map(|$s| $s.out).filter(
        |$o| record::tb($o) = 'memory')),
])).filter(|$c| (SELECT VALUE cascade FROM ONLY type::record('source_invalidation', [$c])) = true);
LET $f_first = IF array::len($f_causes) > 0 {
    (SELECT reason, by FROM ONLY type::record('source_invalidation', [$f_causes[0]]))
} ELSE { NONE };
"""

# Whether facts of the keys in $part are current (of this scope: a key names one fact of one
# scope, and the database checks only an agent's). The scope is tested on the rows, never in
# the WHERE, where it makes the planner scan the scope's index instead of the key's.
_CURRENT_BY_KEY: Final = (
    "SELECT VALUE retracted_at = NONE AND scope = $scope FROM fact WHERE key IN $part"
)

# The general path: one row at a time, in order, so that a row sees the facts the rows before
# it recorded (the rules are docs/graph.md's "Supersession"). A row from a distrusted source is
# recorded as it is, hidden: it joins nothing and gives way to nothing. A visible row:
# - a current visible fact of its key (subject, predicate, object, value) that covers its
#   valid time already: the row is recorded as a part of that fact (retracted, superseded by
#   it, held in its `took`; its sources cite the cover `via` the part), unless it adds
#   nothing (the cover cites its sources and no other cause);
# - otherwise, for a single-valued predicate, an open-ended row ends where the earliest
#   current, visible rival that starts after it starts (it fills in history);
# - the current visible facts of its key that overlap or adjoin it are retracted and one fact
#   spanning them all recorded, with all their sources, holding each of them and the row's
#   own assertion as parts, so that hiding it gives each back (fn::fact_hidden, schema 036);
# - it supersedes its visible rivals (fn::fact_supersede).
_ONE_BY_ONE = (
    """
FOR $r IN $rows {
    LET $vf = $r.valid_from ?? $now;
    -- The id of the row's own part, if it becomes one: the row's with the position's first hex
    -- digit set (32 hex, as an agent's new facts are; parts of one call keep the rows' order).
    LET $part = type::record('fact', string::slice(record::id($r.id), 0, 24) + '8'
        + string::slice(record::id($r.id), 25));
    -- Plain variables, not fields of $r: the planner uses an index only for those (3.2.4: a
    -- 200-row assertion took 3.1 s against 1,400 facts with $r.key, 0.2 s with $key).
    LET $key = $r.key;
    LET $subject = $r.in;
    LET $predicate = $r.predicate;
    IF $r.valid_until != NONE AND $r.valid_until <= $vf {
        THROW 'invalid: fact ' + <string>$r.n + ' is valid until before it is valid from';
    };
    -- The current facts of its key, read once (no ORDER BY: with one, the planner leaves the
    -- key index unused).
    LET $same = (SELECT id, scope, recorded_at, valid_from, valid_until, invalidated_at FROM fact
        WHERE key = $key AND retracted_at = NONE);
    """
    + as_array("$same")
    + """
    -- Only visible ones, for a visible assertion: a hidden one joins nothing (it joins when
    -- it is shown), and a trusted one is not swallowed by a hidden one.
    LET $same = IF $f_hidden = NONE {
        $same.filter(|$g| $g.invalidated_at = NONE AND $g.scope = $scope)
    } ELSE { [] };
    LET $covered = $same.filter(|$g| $g.valid_from <= $vf AND ($g.valid_until = NONE
        OR ($r.valid_until != NONE AND $g.valid_until >= $r.valid_until)));
    IF array::len($covered) > 0 {
        -- The earliest recorded, if several (then id).
        LET $cover = (SELECT VALUE id FROM $covered ORDER BY recorded_at, id LIMIT 1)[0];
        LET $cites = (SELECT out, via FROM fact_source WHERE in = $cover);
        """
    + as_array("$cites")
    + """
        LET $mine = $f_sources.map(|$s| $s.out);
        -- An agent's session sees only its own edges of the cover: it cannot tell that its
        -- assertion adds nothing, so it records it.
        IF $access = 'agent' OR $mine.any(|$o| $o NOTINSIDE $cites.map(|$c| $c.out))
            OR $cites.any(|$c| $c.via = NONE AND $c.out NOTINSIDE $mine) {
            fn::fact_part($r, $part, $scope, $vf, $r.valid_until, $cover, $f_sources, $now, true);
            INSERT RELATION INTO fact_source $f_sources.filter(|$s|
                $s.out NOTINSIDE $cites.map(|$c| $c.out)).map(|$s| {
                id: type::record('fact_source', [record::id($cover), <string>$s.out]),
                in: $cover, out: $s.out, how: $s.how, via: $part,
            }) RETURN NONE;
        };
    } ELSE {
        LET $single_p = $predicate INSIDE $single;
        -- Its visible rivals, once: to fill in history and to supersede (a hidden assertion
        -- does neither).
        LET $rivals = IF $single_p AND $f_hidden = NONE {
            (SELECT id, valid_from, valid_until FROM fact WHERE in = $subject
                AND predicate = $predicate AND retracted_at = NONE AND key != $key
                AND invalidated_at = NONE)
        } ELSE { [] };
        """
    + as_array("$rivals")
    + """
        LET $later = IF $r.valid_until = NONE AND $f_hidden = NONE {
            $rivals.filter(|$g| $g.valid_from > $vf).map(|$g| $g.valid_from)
        } ELSE { [] };
        LET $vu = IF array::len($later) > 0 { array::min($later) } ELSE { $r.valid_until };
        LET $merged = $same.filter(|$g| ($vu = NONE OR $g.valid_from <= $vu)
            AND ($g.valid_until = NONE OR $g.valid_until >= $vf));
        LET $old = IF array::len($merged) = 0 { [] } ELSE {
            (SELECT out, how, via FROM fact_source WHERE in IN $merged.map(|$m| $m.id))
        };
        """
    + as_array("$old")
    + """
        LET $sources = fn::fact_edges(array::concat($f_sources, $old));
        FOR $m IN $merged {
            UPDATE ONLY $m.id SET retracted_at = $now, superseded_by = $r.id RETURN NONE;
        };
        -- The row's own assertion, a part of the fact that joins it with them.
        LET $own = IF array::len($merged) = 0 { NONE } ELSE { $part };
        IF $own != NONE {
            fn::fact_part($r, $own, $scope, $vf, $vu, $r.id, $f_sources, $now, false);
        };
        LET $from = array::min(array::concat([$vf], $merged.map(|$m| $m.valid_from)));
        LET $until = IF $vu = NONE OR $merged.any(|$m| $m.valid_until = NONE) { NONE }
            ELSE { array::max(array::concat([$vu], $merged.map(|$m| $m.valid_until))) };
        -- A fact recorded visible supersedes its rivals (before it is written: links to a
        -- record not yet there are accepted); one recorded hidden supersedes nothing.
        LET $taken = IF $f_hidden = NONE AND $single_p {
            fn::fact_supersede($r.id, $from, $until, $rivals, $now)
        } ELSE { [] };
        INSERT RELATION INTO fact {
            id: $r.id, in: $r.in, out: $r.out, scope: $scope, predicate: $r.predicate,
            value: $r.value, key: $r.key, valid_from: $from, valid_until: $until,
            recorded_at: $now,
            took: array::concat(IF $own = NONE { [] } ELSE {
                array::concat([{ fact: $own, from: $vf, until: $vu }], $merged.map(|$m| {
                    fact: $m.id, from: $m.valid_from, until: $m.valid_until,
                }))
            }, $taken),
            -- Only a visible assertion joins, and only visible facts: its causes are its own.
            invalidated_at: $f_hidden, invalidated_reason: $f_first.reason,
            invalidated_by: $f_first.by, invalidated_causes: $f_causes,
        } RETURN NONE;
        INSERT RELATION INTO fact_source $sources.filter(|$s| !record::exists(
            type::record('fact_source', [record::id($r.id), <string>$s.out]))).map(|$s| {
            id: type::record('fact_source', [record::id($r.id), <string>$s.out]),
            in: $r.id, out: $s.out, how: $s.how, via: $s.via,
        }) RETURN NONE;
        IF $f_hidden != NONE { fn::fact_hidden($r.id, $now) };
        -- Filling in history, the rest of the row's valid time is a part that the rival
        -- starting there holds, so hiding that rival gives it back (schema 036).
        IF array::len($later) > 0 {
            LET $by = $rivals.filter(|$g| $g.valid_from = $vu)[0].id;
            IF $by.retracted_at = NONE {
                LET $tail = type::record('fact', string::slice(record::id($r.id), 0, 24) + '9'
                    + string::slice(record::id($r.id), 25));
                fn::fact_part($r, $tail, $scope, $vu, NONE, $by, $f_sources, $now, true);
            };
        };
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

ASSERT_FACTS_STATEMENTS = (
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
    # Whether each key's facts are current, by the key alone: the index answers that faster
    # than with the retracted_at condition in the WHERE.
    + f"""LET $taken = IF $distinct AND array::len($single) = 0 {{
    {indexed_in("$keys", _CURRENT_BY_KEY)}
}} ELSE {{ [true] }};
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


def _new_fact_id(position: int, prefix: str) -> RecordId:
    # 96 random bits, then the position: facts of one assertion sort by their ids in input
    # order, the order in which they supersede when they are shown again together (027).
    return RecordId("fact", f"{prefix}{position:08x}")


def fact_row(scope: str, item: NewFact, i: int, prefix: str = "") -> dict[str, Any]:
    if not isinstance(item, NewFact):
        raise ValidationError(f"fact {i} is not a NewFact")
    try:
        subject = check_name(item.subject, "subject")
        obj = check_name(item.object, "object")
        predicate = check_predicate(item.predicate)
        value = None if item.value is None else json_value(item.value, what="value")
        vf = check_utc(item.valid_from, "valid_from")
        vu = check_utc(item.valid_until, "valid_until")
        if vf is not None and vu is not None and vu <= vf:
            raise ValidationError("valid_until is not after valid_from")
    except ValidationError as exc:
        raise ValidationError(f"fact {i}: {exc}") from None
    return {
        "n": i,
        "id": _new_fact_id(i, prefix or uuid.uuid4().hex[:24]),
        "in": entity_record(scope, subject),
        "out": entity_record(scope, obj),
        "predicate": predicate,
        "value": value,
        "key": fact_key(scope, subject, predicate, obj, item.value),
        "valid_from": vf,
        "valid_until": vu,
        "names": (subject, obj),
    }


def fact_rows(scope: str, facts: Sequence[NewFact]) -> list[dict[str, Any]]:
    """The rows of one assertion (their ids in input order)."""
    prefix = uuid.uuid4().hex[:24]
    return [fact_row(scope, f, i, prefix) for i, f in enumerate(facts)]


def _fact_batches(scope: str, facts: Sequence[NewFact]) -> list[list[dict[str, Any]]]:
    if isinstance(facts, NewFact) or not isinstance(facts, Sequence):
        raise ValidationError("facts must be a list of NewFact")
    rows = fact_rows(scope, facts)
    return [rows[start : start + MAX_BATCH] for start in range(0, len(rows), MAX_BATCH)]


def fact_ends(batch: list[dict[str, Any]]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
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


async def name_missing(
    db: Executor, *, scope: str, ends: list[RecordId], names: dict[str, str]
) -> None:
    """After a refused write: :class:`NotFoundError` naming an end that is not a live entity
    (the database's own refusal names its hashed id, or no entity at all), if there is one.
    The check costs a read of every end, so it is made only when the write fails."""
    live = set(await db.query(_LIVE, RecordId, idempotent=True, ends=ends))
    for rid in ends:
        if rid not in live:
            raise NotFoundError(f"no entity {names[str(rid.key)]} in scope {scope}") from None


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
    prepared = [fact_ends(batch) for batch in batches]
    if len(batches) > 1:
        # Checked before the first batch is written: a later one would fail after it.
        every: dict[str, Any] = {"ends": [], "names": {}}
        for ends, _ in prepared:
            every["ends"] += ends["ends"]
            every["names"].update(ends["names"])
        every["ends"] = list(dict.fromkeys(every["ends"]))
        for start in range(0, len(every["ends"]), MAX_BATCH):
            chunk = every["ends"][start : start + MAX_BATCH]
            await name_missing(db, scope=scope, ends=chunk, names=every["names"])
    out: list[Fact] = []
    for batch, (ends, names) in zip(batches, prepared, strict=True):
        predicates = sorted({r["predicate"] for r in batch})
        keys = [r["key"] for r in batch]
        try:
            done = await db.query_required_single(
                ASSERT_FACTS_STATEMENTS,
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
            await name_missing(db, scope=scope, **ends)
            raise
        if done.rows is None:
            hidden = done.now if done.causes else None
            out += [
                Fact(
                    id=str(r["id"].key), scope=scope, subject=subject, predicate=r["predicate"],
                    object=obj, value=plain(r["value"]), key=r["key"],
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


_RETRACT_FACTS = (
    """
BEGIN;
LET $now = time::now();
FOR $s IN $specs {
    LET $key = $s.key;
    LET $hit = (SELECT VALUE IF scope = $scope { id } ELSE { NONE } FROM fact
        WHERE key = $key AND retracted_at = NONE
        AND ($s.valid_from = NONE OR valid_from = $s.valid_from)
        AND ($s.valid_until = NONE OR valid_until = $s.valid_until));
    """
    + as_array("$hit")
    + """UPDATE $hit.filter(|$h| $h != NONE) SET retracted_at = $now RETURN NONE;
};
UPDATE (SELECT VALUE id FROM $ids WHERE scope = $scope) SET retracted_at = $now
    WHERE retracted_at = NONE RETURN NONE;
LET $by_key = """
    + indexed_in(
        "$keys",
        "SELECT VALUE IF scope = $scope { id } ELSE { NONE } FROM fact "
        "WHERE key IN $part AND retracted_at = $now",
    )
    + """;
LET $by_id = (SELECT VALUE id FROM $ids WHERE retracted_at = $now);
"""
    + as_array("$by_id")
    + """LET $gone = array::distinct(array::concat($by_key, $by_id));
-- What is retracted is not given back later: the parts other facts hold of the same
-- assertions (and, for a fact named by its key alone, of every assertion of that key) are
-- dropped from their `took`, so hiding the fact that superseded them brings nothing back.
FOR $s IN $specs.filter(|$s| $s.valid_from = NONE AND $s.valid_until = NONE) {
    LET $subject = $s.in;
    LET $predicate = $s.predicate;
    LET $key = $s.key;
    UPDATE fact SET took = (took ?? []).filter(|$t| $t.fact.key != $key)
        WHERE in = $subject AND predicate = $predicate AND retracted_at = NONE
        AND (took ?? []).any(|$t| $t.fact.key = $key) RETURN NONE;
};
LET $firsts = (SELECT in, predicate, origin ?? id AS first FROM $gone);
FOR $g IN $firsts {
    LET $subject = $g.in;
    LET $predicate = $g.predicate;
    LET $first = $g.first;
    UPDATE fact SET took = (took ?? []).filter(|$t| ($t.fact.origin ?? $t.fact) != $first)
        WHERE in = $subject AND predicate = $predicate AND retracted_at = NONE
        AND (took ?? []).any(|$t| ($t.fact.origin ?? $t.fact) = $first) RETURN NONE;
};
"""
    + f"SELECT {FACT_FIELDS} FROM $gone;\nCOMMIT;"
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
            row = fact_row(scope, item, i)
            specs.append(
                {k: row[k] for k in ("key", "in", "predicate", "valid_from", "valid_until")}
            )
    found = await db.query(
        _RETRACT_FACTS, Fact, specs=specs, ids=ids, keys=[s["key"] for s in specs], scope=scope
    )
    return sorted(found, key=lambda f: (f.recorded_at, f.id))


# Each current fact matching a spec that is still valid at $at is retracted, and what of it
# lay before $at is recorded again with its valid time closed there (fn::fact_copy: with its
# sources, causes and what it held there), as supersession does. A fact that starts at or
# after $at holds at no time before it: it is retracted whole, and answered as such.
_ENDED = (
    f"SELECT {FACT_FIELDS} FROM fact WHERE key IN $part "
    "AND ((recorded_at = $now AND retracted_at = NONE) "
    "OR (retracted_at = $now AND superseded_by = NONE AND valid_from >= $at))"
)

_END_FACTS = (
    """
BEGIN;
LET $now = time::now();
LET $at = $end ?? $now;
FOR $s IN $specs {
    LET $key = $s.key;
    LET $from = $s.valid_from;
    -- The scope is tested on the rows: in the WHERE it takes the planner off the key's index.
    LET $hits = (SELECT id, scope, valid_from FROM fact WHERE key = $key AND retracted_at = NONE
        AND (valid_until = NONE OR valid_until > $at) AND ($from = NONE OR valid_from = $from));
    """
    + as_array("$hits")
    + f"""
    FOR $g IN $hits.filter(|$h| $h.scope = $scope) {{
        UPDATE ONLY $g.id SET retracted_at = $now RETURN NONE;
        IF $g.valid_from < $at {{ fn::fact_copy($g.id, $g.valid_from, $at, $now, false) }};
    }};
    -- It holds at no time from $at: what other facts hold of its key from then on is not
    -- given back when they are hidden (their parts end at $at).
    LET $subject = $s.in;
    LET $predicate = $s.predicate;
    UPDATE fact SET took = (took ?? []).map(|$t| IF $t.fact.key != $key OR $t.from >= $at {{ $t }}
            ELSE IF $t.until = NONE OR $t.until > $at {{
                {{ fact: $t.fact, from: $t.from, until: $at }}
            }} ELSE {{ $t }}).filter(|$t| $t.fact.key != $key OR $t.from < $at)
        WHERE in = $subject AND predicate = $predicate AND retracted_at = NONE
        AND (took ?? []).any(|$t| $t.fact.key = $key AND ($t.until = NONE OR $t.until > $at))
        RETURN NONE;
}};
RETURN {indexed_in("$keys", _ENDED)}.filter(|$f| $f.scope = $scope);
COMMIT;"""
)


@public
async def end_facts(
    db: Executor,
    *,
    facts: Sequence[NewFact | Fact],
    at: dt.datetime | None = None,
    scope: str = DEFAULT_SCOPE,
) -> list[Fact]:
    """End facts of ``scope`` in valid time: they stop holding at ``at`` (``None``: now), as
    "Alice left Acme on March 1" says, without naming what holds next.

    Each :class:`NewFact` names the current facts with its subject, predicate, object and
    value (and exactly its ``valid_from`` when given); a :class:`Fact` (as reads return them)
    names the current facts of its key from its ``valid_from``. Those still valid at ``at``
    are retracted, and those valid before it recorded again with ``valid_until = at``
    (``supersedes`` names the fact they replace); reads with an earlier ``known_at`` still see
    the open version.

    Returns every fact the call changed, in one transaction: for a fact valid before ``at``,
    the version recorded with its end (``retracted_at`` is ``None``); a fact that starts at or
    after ``at`` holds at no time before it, so it is retracted whole and returned as it now
    is (``retracted_at`` set, no version recorded in its place)."""
    check_scope(scope)
    if isinstance(facts, NewFact | Fact) or not isinstance(facts, Sequence):
        raise ValidationError("facts must be a list of NewFacts or Facts")
    specs = []
    for i, item in enumerate(facts):
        if isinstance(item, Fact):
            specs.append(
                {
                    "key": item.key, "valid_from": item.valid_from, "predicate": item.predicate,
                    "in": entity_record(scope, item.subject),
                }
            )  # fmt: skip
            continue
        row = fact_row(scope, item, i)
        specs.append({k: row[k] for k in ("key", "in", "predicate", "valid_from")})
    when = check_utc(at, "at")
    found = await db.query(
        _END_FACTS, Fact, specs=specs, keys=[s["key"] for s in specs], scope=scope, end=when
    )
    return sorted(found, key=lambda f: (f.recorded_at, f.id))
