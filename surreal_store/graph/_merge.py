"""Merging two entities: :func:`merge` moves one entity's facts and observations onto another
in one transaction and records the merge (``entity_merge``): each moved fact is re-recorded on
the kept entity with the original's sources, invalidation and what it took of facts it
superseded, so provenance explains it as it explained the original, which is retracted (kept
for reads as of earlier times)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import ConfigDict, Field

from .._api import public
from .._errors import NotFoundError, ValidationError
from .._executor import Executor
from .._surql import as_array
from .._types import Key, Model, RecordId, check_text
from ._models import DEFAULT_SCOPE, ENTITY_FIELDS, Entity, fact_key
from ._names import check_name, check_scope, entity_record

__all__ = ["MergeReceipt", "MovedFact", "merge"]


class MovedFact(Model):
    """A fact of the absorbed entity (``source``) and the fact on the kept entity that stands
    for it (``target``): new (``recorded``: the fact moved, or one it joined), or one the kept
    entity already held, which holds the moved fact as a part (docs/graph.md)."""

    model_config = ConfigDict(frozen=True)

    source: Key
    target: Key
    recorded: bool


class MergeReceipt(Model):
    """What :func:`merge` did: the merge record's ``id`` (``entity_merge:<id>``), the entity
    kept (as it is after the merge) and the one absorbed (retracted, ``merged_into`` set),
    the facts moved, and how many observations moved."""

    model_config = ConfigDict(frozen=True)

    id: Key
    keep: Entity
    absorbed: Entity
    facts: list[MovedFact]
    observations: int
    reason: str
    by: str | None = None
    created_at: dt.datetime


class _FactRow(Model):
    model_config = ConfigDict(frozen=True)

    id: Key
    subject: str
    predicate: str
    object: str
    value: Any = None
    key: str
    s: Key
    o: Key
    vf: str
    vu: str | None = None
    took: list[RecordId] = Field(default_factory=list)


class _Taken(Model):
    """A fact that a moved fact took part of: its ends (key, name, whether alive) and what
    its key is made of."""

    model_config = ConfigDict(frozen=True)

    id: RecordId
    predicate: str
    value: Any = None
    s: Key
    o: Key
    subject: str
    object: str
    alive: bool


class _Link(Model):
    model_config = ConfigDict(frozen=True)

    id: RecordId
    memory: RecordId


class _MergeRead(Model):
    model_config = ConfigDict(frozen=True)

    keep: Entity | None = None
    absorb: Entity | None = None
    facts: list[_FactRow] = Field(default_factory=list)
    taken: list[_Taken] = Field(default_factory=list)
    links: list[_Link] = Field(default_factory=list)


_MERGE_READ = f"""
LET $k = (SELECT {ENTITY_FIELDS} FROM ONLY $keep WHERE retracted_at = NONE);
LET $a = (SELECT {ENTITY_FIELDS} FROM ONLY $absorb WHERE retracted_at = NONE);
LET $edges = array::distinct(array::concat($absorb->fact, $absorb<-fact));
RETURN {{
    keep: $k, absorb: $a,
    facts: (SELECT id, in.name AS subject, predicate, out.name AS object, value, key,
        record::id(in) AS s, record::id(out) AS o, <string>valid_from AS vf,
        <string>valid_until AS vu, array::distinct((took ?? []).map(|$t| $t.fact)) AS took,
        recorded_at FROM $edges
        WHERE retracted_at = NONE
        ORDER BY recorded_at, id) ?? [],
    taken: (SELECT id, predicate, value, record::id(in) AS s, record::id(out) AS o,
        in.name AS subject, out.name AS object,
        (in = $absorb OR in.retracted_at = NONE)
            AND (out = $absorb OR out.retracted_at = NONE) AS alive
        FROM array::distinct(array::flatten((SELECT VALUE (took ?? []).map(|$t| $t.fact)
            FROM $edges WHERE retracted_at = NONE)))) ?? [],
    links: (SELECT id, in AS memory, position FROM observation
        WHERE out = $absorb AND retracted_at = NONE ORDER BY position) ?? [],
}};
"""

_MERGE = (
    """
BEGIN;
LET $now = time::now();
IF (SELECT VALUE retracted_at FROM ONLY $keep) != NONE OR !record::exists($keep) {
    THROW 'not_found: no entity ' + $keep_name + ' in scope ' + $scope;
};
IF (SELECT VALUE retracted_at FROM ONLY $absorb) != NONE OR !record::exists($absorb) {
    THROW 'not_found: no entity ' + $absorb_name + ' in scope ' + $scope;
};
-- What was read is still what is current (else the caller reads again).
LET $current = (SELECT VALUE id FROM array::distinct(array::concat($absorb->fact, $absorb<-fact))
    WHERE retracted_at = NONE);
"""
    + as_array("$current")
    + """LET $linked = (SELECT VALUE id FROM observation
    WHERE out = $absorb AND retracted_at = NONE);
"""
    + as_array("$linked")
    + """IF array::sort($current) != array::sort($moves.map(|$m| $m.from))
    OR array::sort($linked) != array::sort($links.map(|$l| $l.from)) {
    THROW 'stale: the entity ' + $absorb_name + ' changed while it was being merged; merge again';
};
-- What a moved fact took of a fact of the absorbed entity is re-recorded on the kept one,
-- retracted as it was (superseded by the moved fact), so that hiding the moved fact later
-- gives it back on the kept entity, as it would have on the absorbed one.
FOR $t IN $shadows {
    LET $from = $t.from;
    LET $g = (SELECT * FROM ONLY $from);
    INSERT RELATION INTO fact {
        id: $t.to, in: $t.in, out: $t.out, scope: $scope, predicate: $g.predicate,
        value: $g.value, key: $t.key, valid_from: $g.valid_from, valid_until: $g.valid_until,
        recorded_at: $now, retracted_at: $now, superseded_by: $t.by, supersedes: $from,
        origin: $g.origin ?? $from,
        invalidated_at: $g.invalidated_at, invalidated_reason: $g.invalidated_reason,
        invalidated_by: $g.invalidated_by, invalidated_causes: $g.invalidated_causes,
    } RETURN NONE;
    -- Its causes (lineage through its own parts stays with the original).
    LET $sources = (SELECT out, how FROM fact_source WHERE in = $from AND via = NONE) ?? [];
    INSERT RELATION INTO fact_source (IF type::is_array($sources) { $sources }
        ELSE { [$sources] }).filter(|$s| !record::exists(
            type::record('fact_source', [record::id($t.to), <string>$s.out]))).map(|$s| {
        id: type::record('fact_source', [record::id($t.to), <string>$s.out]),
        in: $t.to, out: $s.out, how: $s.how,
    }) RETURN NONE;
};
FOR $m IN $moves {
    -- A bare parameter, so that the index answers (a field of one, `$m.from`, is a table
    -- scan on 3.2.4).
    LET $from = $m.from;
    LET $old = (SELECT * FROM ONLY $from);
    IF array::sort(array::distinct(($old.took ?? []).map(|$t| $t.fact)))
        != array::sort(array::distinct($m.took)) {
        THROW 'stale: the entity ' + $absorb_name
            + ' changed while it was being merged; merge again';
    };
    UPDATE ONLY $m.from SET retracted_at = $now, superseded_by = $m.to RETURN NONE;
    -- It re-records the same assertion (origin) and holds what it held (took), each
    -- part of a fact of the absorbed entity as re-recorded above.
    INSERT RELATION INTO fact {
        id: $m.to, in: $m.in, out: $m.out, scope: $scope, predicate: $old.predicate,
        value: $old.value, key: $m.key, valid_from: $old.valid_from,
        valid_until: $old.valid_until, recorded_at: $now, supersedes: $m.from,
        origin: $old.origin ?? $from,
        took: ($old.took ?? []).filter(|$t| $t.fact NOTINSIDE $drops).map(|$t| {
            fact: $shadows.find(|$x| $x.from = $t.fact).to ?? $t.fact,
            from: $t.from, until: $t.until,
        }),
        invalidated_at: $old.invalidated_at, invalidated_reason: $old.invalidated_reason,
        invalidated_by: $old.invalidated_by, invalidated_causes: $old.invalidated_causes,
    } RETURN NONE;
    LET $sources = (SELECT out, how, via FROM fact_source WHERE in = $from) ?? [];
    -- A source that reaches it through a part (via) reaches it through the part's copy.
    INSERT RELATION INTO fact_source (IF type::is_array($sources) { $sources }
        ELSE { [$sources] }).filter(|$s| ($s.via = NONE
            OR $shadows.any(|$x| $x.from = $s.via)) AND !record::exists(
            type::record('fact_source', [record::id($m.to), <string>$s.out]))).map(|$s| {
        id: type::record('fact_source', [record::id($m.to), <string>$s.out]),
        in: $m.to, out: $s.out, how: $s.how,
        via: IF $s.via = NONE { NONE } ELSE { $shadows.find(|$x| $x.from = $s.via).to },
    }) RETURN NONE;
    -- A visible one is asserted on the kept entity now, as showing it again would
    -- (fn::fact_show: one current fact per key, supersession, filling in history), in
    -- the order of their assertions, each before the next is moved: so a merge made
    -- while a source is distrusted and one made while it is trusted answer the same once
    -- it is trusted.
    IF $old.invalidated_at = NONE { fn::fact_show($m.to, $now) };
};
-- What stands for each moved fact: the fact it became a part of or joined, or itself; one
-- the kept entity already held (recorded before now) means it was not recorded anew.
LET $stood = $moves.map(|$m| {
    from: $m.from,
    to: $m.to.superseded_by ?? $m.to,
    recorded: $m.to.superseded_by = NONE OR $m.to.superseded_by.recorded_at = $now,
});
-- By content: each entity's observations are memories of its own (observation_memory_id).
LET $have = (SELECT VALUE in.content_hash FROM observation
    WHERE out = $keep AND retracted_at = NONE);
"""
    + as_array("$have")
    + """LET $todo = $links.filter(|$l| $l.memory.content_hash NOTINSIDE $have);
LET $base = (SELECT VALUE observed FROM ONLY $keep);
UPDATE $links.map(|$l| $l.from) SET retracted_at = $now RETURN NONE;
LET $new_links = $todo.map(|$l, $n| {
    id: type::record('observation', [record::id($l.memory), record::id($keep), $base + $n]),
    in: $l.memory, out: $keep, scope: $scope, position: $base + $n, recorded_at: $now,
});
UPDATE ONLY $keep SET observed = $base + array::len($todo),
    aliases = array::distinct(array::concat(aliases, [$absorb_name], $absorb.aliases))
        .filter(|$x| $x != $keep_name),
    updated_at = $now RETURN NONE;
INSERT RELATION INTO observation $new_links RETURN NONE;
UPDATE ONLY $absorb SET retracted_at = $now, merged_into = $keep, updated_at = $now RETURN NONE;
CREATE ONLY $id CONTENT {
    scope: $scope, keep: $keep, absorb: $absorb, keep_name: $keep_name,
    absorb_name: $absorb_name, reason: $reason, by: $by,
    facts: $stood,
    observations: $links.map(|$l| {
        from: $l.from,
        to: $new_links.find(|$n| $n.in = $l.memory).id,
    }),
    created_at: $now,
} RETURN NONE;
"""
    + f"""RETURN {{
    id: record::id($id),
    keep: (SELECT {ENTITY_FIELDS} FROM ONLY $keep),
    absorbed: (SELECT {ENTITY_FIELDS} FROM ONLY $absorb),
    facts: $stood.map(|$m| {{ source: record::id($m.from), target: record::id($m.to),
        recorded: $m.recorded }}),
    observations: array::len($todo),
    reason: $reason, by: $by, created_at: $now,
}};
COMMIT;
"""
)


@public
async def merge(
    db: Executor,
    *,
    keep: str,
    absorb: str,
    reason: str,
    by: str | None = None,
    scope: str = DEFAULT_SCOPE,
) -> MergeReceipt:
    """Merge entity ``absorb`` into entity ``keep`` (names of ``scope``), in one transaction.

    Each current fact of ``absorb`` (either end) is retracted and recorded again with
    ``keep`` in its place (same predicate, value, valid time, sources and invalidation, and
    what it took of facts it superseded, those of ``absorb`` re-recorded on ``keep``); each
    moved fact that is visible is then asserted on ``keep`` as showing it again would, in the
    order of the assertions: a visible fact of ``keep`` that covers it holds it as a part (and
    stands for it in the receipt), one that overlaps or adjoins it joins it, and it
    supersedes its rivals there; so a merge answers the same whether a source was distrusted
    while it was made or not. Its observations move to ``keep`` after keep's own (those keep
    has already are not repeated); its name and aliases become aliases of ``keep``;
    ``absorb`` is retracted with
    ``merged_into`` naming ``keep``. The merge is recorded (``entity_merge``, with ``reason``
    and ``by``) with each fact moved. Reads as of a time before the merge see the two
    entities as they were."""
    check_scope(scope)
    keep_name = check_name(keep, "keep")
    absorb_name = check_name(absorb, "absorb")
    reason = check_text(reason, "reason", limit=4096)
    if by is not None:
        by = check_text(by, "by", limit=256)
    if keep_name == absorb_name:
        raise ValidationError("an entity is not merged into itself")
    k, a = entity_record(scope, keep_name), entity_record(scope, absorb_name)
    read = await db.query_required_single(
        _MERGE_READ, _MergeRead, idempotent=True, keep=k, absorb=a
    )
    for missing, name in ((read.keep, keep_name), (read.absorb, absorb_name)):
        if missing is None:
            raise NotFoundError(f"no entity {name} in scope {scope}")
    taken = {t.id: t for t in read.taken}
    shadows: dict[RecordId, dict[str, Any]] = {}
    drops: set[RecordId] = set()
    moves = []
    for f in read.facts:
        s_is_a, o_is_a = f.s == a.key, f.o == a.key
        subject = keep_name if s_is_a else f.subject
        obj = keep_name if o_is_a else f.object
        key = fact_key(scope, subject, f.predicate, obj, f.value)
        target = RecordId("fact", uuid.uuid4().hex)
        for g_id in f.took:
            g = taken.get(g_id)
            if g is None or not g.alive:
                # Its other end is deleted: hiding the fact would give nothing back.
                drops.add(g_id)
            elif (g.s == a.key or g.o == a.key) and g_id not in shadows:
                g_subject = keep_name if g.s == a.key else g.subject
                g_object = keep_name if g.o == a.key else g.object
                shadows[g_id] = {
                    "from": g_id,
                    "to": RecordId("fact", uuid.uuid4().hex),
                    "by": target,
                    "key": fact_key(scope, g_subject, g.predicate, g_object, g.value),
                    "in": k if g.s == a.key else RecordId("entity", g.s),
                    "out": k if g.o == a.key else RecordId("entity", g.o),
                }
        moves.append(
            {
                "from": RecordId("fact", f.id),
                "to": target,
                "key": key,
                "in": k if s_is_a else RecordId("entity", f.s),
                "out": k if o_is_a else RecordId("entity", f.o),
                "took": f.took,
            }
        )
    links = [{"from": ln.id, "memory": ln.memory} for ln in read.links]
    return await db.query_required_single(
        _MERGE,
        MergeReceipt,
        id=RecordId("entity_merge", uuid.uuid4().hex),
        keep=k,
        absorb=a,
        keep_name=keep_name,
        absorb_name=absorb_name,
        scope=scope,
        reason=reason,
        by=by,
        moves=moves,
        links=links,
        shadows=list(shadows.values()),
        drops=sorted(drops, key=str),
    )
