"""Downstream walks and the causes that keep memories hidden.

A cause is a distrusted source (run event, commit, snapshot, annotation) or a distrusted memory,
recorded once as ``source_invalidation:[<cause>]``. A memory is hidden exactly while its
``invalidated_causes`` is not empty (the schema refuses any other state); the list holds every
standing cause upstream of it, its own included:

- distrusting a source, or a memory with ``cascade``, adds the cause to every memory derived
  from it, directly or transitively (its downstream); distrusting a memory without cascade adds
  it to that memory only;
- restoring a cause removes it from every memory that holds it; those left without a cause
  become visible again;
- a new provenance edge (remember with provenance, attach) brings the standing causes of what
  it points at to the memory and its downstream;
- deleting memories (forget) recomputes the causes of what was derived from them.

Each change is one transaction that checks its set of memories is still closed under
derivation; a derivation made meanwhile makes it stale, and it is recomputed and retried.

Facts of the knowledge graph follow the same causes (schema 023): a fact is hidden while a
source it cites, or a cascading cause of a memory it cites, stands. The schema's events apply
that in the transaction that changes a distrust, a memory's causes or a fact's sources; here
the facts a change reaches are only counted and named.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from . import _retry
from ._errors import ConflictError, StaleError
from ._executor import Executor
from ._types import RecordId

__all__ = [
    "Reach",
    "add_cause",
    "derived",
    "downstream",
    "downstream_facts",
    "recompute_causes_block",
    "remove_cause",
]

_ATTEMPTS: Final = 3

# Graph steps run as SELECT ... FROM an array: the same step inside array::map's closure is
# far slower (docs/design.md, "Measurements").
# A page of the walk: up to 256 derivation levels below $from. Children of what was found that
# are not in it lie deeper: the next page starts at them.
_DOWNSTREAM_PAGE = """
LET $down = array::distinct(array::flatten(
    (SELECT VALUE @.{1..256+collect}<-derived_from<-memory FROM $from)
));
LET $known = array::union($from, $down);
{
    memories: $down,
    -- Fewer than 256 found: no walk reached the recursion limit, nothing lies deeper.
    next: IF array::len($down) < 256 { [] } ELSE { array::complement(
        array::distinct(array::flatten((SELECT VALUE <-derived_from<-memory FROM $down))), $known
    ) },
    decisions: IF $decisions {
        array::distinct(array::flatten((SELECT VALUE <-used<-decision FROM $known)))
    } ELSE { [] },
};
"""
_DIRECT = """
LET $start = IF $memory != NONE { [$memory] } ELSE { $source<-sourced_from<-memory };
IF $memory != NONE AND $must_exist AND !record::exists($memory) {
    THROW 'not_found: no memory ' + record::id($memory);
};
{
    memories: $start,
    decisions: IF $decisions {
        array::distinct(array::flatten((SELECT VALUE <-used<-decision FROM $start)))
    } ELSE { [] },
};
"""


class _Ids(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    memories: list[RecordId]
    decisions: list[RecordId]
    next: list[RecordId] = Field(default_factory=list)


async def downstream(
    db: Executor,
    *,
    source: RecordId | None = None,
    memory: RecordId | None = None,
    decisions: bool = True,
    must_exist: bool = True,
) -> tuple[list[RecordId], list[RecordId]]:
    """Every memory derived from ``source`` or ``memory`` (the memory itself included), and,
    with ``decisions``, every decision that used one of them; one query per 256 levels."""
    first = await db.query_required_single(
        _DIRECT,
        _Ids,
        idempotent=True,
        source=source,
        memory=memory,
        decisions=decisions,
        must_exist=must_exist,
    )
    return await _walk(db, first.memories, first.decisions, decisions=decisions)


# The facts citing the source itself or a memory of the set, and the decisions that used them.
_FACTS_OF = """
LET $facts = array::union(
    IF $source != NONE { $source<-fact_source<-fact } ELSE { [] },
    array::flatten((SELECT VALUE <-fact_source<-fact FROM $memories))
);
{
    facts: $facts,
    decisions: IF $decisions {
        array::distinct(array::flatten((SELECT VALUE <-used<-decision FROM $facts)))
    } ELSE { [] },
};
"""


class _FactIds(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    facts: list[RecordId]
    decisions: list[RecordId]


async def downstream_facts(
    db: Executor,
    *,
    source: RecordId | None,
    memories: Sequence[RecordId],
    decisions: bool = True,
) -> tuple[list[RecordId], list[RecordId]]:
    """The facts citing ``source`` or one of ``memories`` (a downstream set), and, with
    ``decisions``, the decisions that used one of them; one query."""
    found = await db.query_required_single(
        _FACTS_OF,
        _FactIds,
        idempotent=True,
        source=source,
        memories=list(memories),
        decisions=decisions,
    )
    return found.facts, found.decisions


async def derived(db: Executor, *, memories: Sequence[RecordId]) -> list[RecordId]:
    """``memories`` and every memory derived from them, directly or transitively."""
    found, _ = await _walk(db, memories, [], decisions=False)
    return found


async def _walk(
    db: Executor, start: Sequence[RecordId], used_by: Sequence[RecordId], *, decisions: bool
) -> tuple[list[RecordId], list[RecordId]]:
    memories = dict.fromkeys(start)
    found = dict.fromkeys(used_by)
    frontier = list(memories)
    while frontier:
        page = await db.query_required_single(
            _DOWNSTREAM_PAGE, _Ids, idempotent=True, decisions=decisions, **{"from": frontier}
        )
        memories.update(dict.fromkeys(page.memories))
        found.update(dict.fromkeys(page.decisions))
        frontier = [m for m in page.next if m not in memories]
        memories.update(dict.fromkeys(frontier))
    return list(memories), list(found)


# The set was computed beforehand; the transaction checks that it is still closed under
# derivation (every child of a member is a member) and holds the cause's direct memories, so a
# memory derived meanwhile cannot escape. Otherwise: stale, and the caller walks again.
_CLOSED = """
LET $direct = IF $source != NONE { $source<-sourced_from<-memory } ELSE { [$memory] };
LET $children = IF $cascade {
    array::distinct(array::flatten((SELECT VALUE <-derived_from<-memory FROM $set)))
} ELSE { [] };
IF array::len(array::complement(array::union($direct, $children), $set)) > 0 {
    THROW 'stale: the derivation graph changed while invalidating; retry';
};
"""

# A cause already standing keeps its first record; a memory's own distrust that now cascades
# says so. Memories already hidden gain the cause; the others are hidden by it.
_ADD = (
    "BEGIN;\n"
    "IF $memory != NONE AND !record::exists($memory) {\n"
    "    THROW 'not_found: no memory ' + record::id($memory);\n"
    "};\n"
    + _CLOSED
    + """
LET $record = type::record('source_invalidation', [$cause]);
LET $standing = (SELECT VALUE cascade FROM ONLY $record);
IF $standing = NONE {
    CREATE ONLY $record SET source = $cause, cascade = $cascade, reason = $reason, by = $by,
        at = time::now(), memories = array::len($set) RETURN NONE;
} ELSE IF $cascade AND !$standing {
    UPDATE ONLY $record SET cascade = true, memories = array::len($set) RETURN NONE;
};
UPDATE $set SET invalidated_causes = array::union(invalidated_causes ?? [], [$cause])
    WHERE invalidated_at != NONE RETURN NONE;
UPDATE $set SET invalidated_at = time::now(), invalidated_reason = $reason,
    invalidated_by = $by, invalidated_causes = [$cause],
    embedding_stash = embedding, embedding = NONE
    WHERE invalidated_at = NONE RETURN NONE;
-- The facts it reaches (the schema's events have hidden them): those citing the cause, and
-- with cascade those citing a memory of the set.
LET $facts = IF $cascade { array::union(
    $cause<-fact_source<-fact, array::flatten((SELECT VALUE <-fact_source<-fact FROM $set))
) } ELSE { [] };
IF array::len($facts) > 0 { UPDATE ONLY $record SET facts = array::len($facts) RETURN NONE };
$facts;
COMMIT;
"""
)

# Memories whose last cause this is become visible (their vectors go back to the index as
# unbuilt); the others lose the cause and stay hidden. Returns the memories made visible and
# the facts shown again.
_REMOVE = (
    "BEGIN;\n"
    + _CLOSED
    + """
-- An agent lifts only a distrust it recorded (031): refused, not silently skipped, so that the
-- memories and facts below are not shown while the distrust stands.
LET $standing = type::record('source_invalidation', [$cause]);
IF $access = 'agent' AND record::exists($standing)
    AND ((SELECT VALUE recorded_by FROM ONLY $standing) ?? '') != <string>$auth.id {
    THROW 'permission_denied: an agent lifts only a distrust it recorded';
};
LET $marked = (SELECT VALUE id FROM $set WHERE invalidated_causes CONTAINS $cause);
LET $revealed = (SELECT VALUE id FROM $marked WHERE invalidated_causes = [$cause]);
-- The facts that may come back (the schema's events show them): those citing the cause or a
-- memory of the set, hidden now.
LET $cited = array::union(
    $cause<-fact_source<-fact, array::flatten((SELECT VALUE <-fact_source<-fact FROM $set))
);
LET $hidden_facts = (SELECT VALUE id FROM $cited WHERE invalidated_at != NONE);
LET $vectors = array::len((SELECT VALUE id FROM $revealed WHERE embedding_stash != NONE));
-- The distrust goes first: an agent's session unmarks a memory only of a cause that no longer
-- stands (schema 041).
DELETE type::record('source_invalidation', [$cause]) RETURN NONE;
UPDATE $revealed SET invalidated_at = NONE, invalidated_reason = NONE, invalidated_by = NONE,
    invalidated_causes = [], embedding = embedding_stash, embedding_stash = NONE RETURN NONE;
UPDATE $marked SET invalidated_causes = array::complement(invalidated_causes ?? [], [$cause])
    WHERE invalidated_causes CONTAINS $cause RETURN NONE;
IF $vectors > 0 { UPDATE embedding_space:active SET unindexed += $vectors RETURN NONE };
{ memories: $revealed, facts: (SELECT VALUE id FROM $hidden_facts WHERE invalidated_at = NONE) };
COMMIT;
"""
)

# A memory's causes from the graph as it stands: the distrusted memories among it and what it
# derives from, and the distrusted sources of those; a memory's own distrust counts even
# without cascade. Inside a transaction, for the memories in $recompute (forget, attach).
_RECOMPUTE: Final = """
LET $recompute_existing = $recompute.filter(|$r| record::exists($r));
FOR $m IN $recompute_existing {
    LET $up = array::union([$m], $m.{1..256+collect}->derived_from->memory);
    LET $sources = array::distinct(array::flatten((SELECT VALUE ->sourced_from->? FROM $up)));
    LET $causes = array::union($up, $sources).filter(|$c| {
        LET $standing = (SELECT VALUE cascade FROM ONLY type::record('source_invalidation', [$c]));
        RETURN $standing = true OR ($standing = false AND $c = $m);
    });
    LET $first = (SELECT reason, by FROM ONLY type::record('source_invalidation', [$causes[0]]));
    LET $stashed = (SELECT VALUE embedding_stash != NONE FROM ONLY $m);
    IF array::len($causes) = 0 {
        UPDATE ONLY $m SET invalidated_at = NONE, invalidated_reason = NONE,
            invalidated_by = NONE, invalidated_causes = [],
            embedding = embedding_stash ?? embedding, embedding_stash = NONE
            WHERE invalidated_at != NONE RETURN NONE;
        -- Its vector goes back to the index, unbuilt (as a restore counts it).
        IF $stashed { UPDATE embedding_space:active SET unindexed += 1 RETURN NONE };
    } ELSE {
        UPDATE ONLY $m SET invalidated_causes = $causes WHERE invalidated_at != NONE RETURN NONE;
        UPDATE ONLY $m SET invalidated_at = time::now(), invalidated_reason = $first.reason,
            invalidated_by = $first.by, invalidated_causes = $causes,
            embedding_stash = embedding, embedding = NONE
            WHERE invalidated_at = NONE RETURN NONE;
    };
};
"""


def recompute_causes_block() -> str:
    """The SurrealQL block that sets the causes of each memory in ``$recompute`` from the graph
    as it stands, for use inside a caller's transaction."""
    return _RECOMPUTE


async def _closed_set(
    db: Executor, *, source: RecordId | None, memory: RecordId | None, must_exist: bool
) -> list[RecordId]:
    memories, _ = await downstream(
        db, source=source, memory=memory, decisions=False, must_exist=must_exist
    )
    return memories


def _kept_changing(_: BaseException) -> ConflictError:
    return ConflictError("the derivation graph kept changing during the change; try again")


class Reach(BaseModel):
    """What a distrust reaches: memories and facts (of the knowledge graph)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    memories: list[RecordId]
    facts: list[RecordId]


async def add_cause(
    db: Executor,
    *,
    source: RecordId | None = None,
    memory: RecordId | None = None,
    cascade: bool = True,
    reason: str,
    by: str | None,
) -> Reach:
    """Distrust ``source`` or ``memory`` (with ``cascade``, everything derived from it too) in
    one transaction; returns the memories and facts the cause reaches."""
    cause = source if source is not None else memory
    assert cause is not None

    async def step() -> Reach:
        if cascade:
            members = await _closed_set(db, source=source, memory=memory, must_exist=True)
        else:
            members = [cause]
        facts = await db.query(
            _ADD, RecordId, source=source, memory=memory, cause=cause, cascade=cascade,
            set=members, reason=reason, by=by,
        )  # fmt: skip
        return Reach(memories=members, facts=facts)

    return await _retry.again(step, on=(StaleError,), attempts=_ATTEMPTS, exhausted=_kept_changing)


async def remove_cause(
    db: Executor,
    *,
    source: RecordId | None = None,
    memory: RecordId | None = None,
    must_exist: bool = False,
) -> Reach:
    """Restore ``source`` or ``memory`` in one transaction: it stops being a cause anywhere.
    Returns the memories that became visible (those with other causes stay hidden) and the
    facts shown again.
    ``must_exist``: a memory that is not there is :class:`NotFoundError`, not a no-op (a
    forgotten memory's cause can still be restored without it)."""
    cause = source if source is not None else memory
    assert cause is not None

    async def step() -> Reach:
        members = await _closed_set(db, source=source, memory=memory, must_exist=must_exist)
        return await db.query_required_single(
            _REMOVE, Reach, source=source, memory=memory, cause=cause, cascade=True,
            set=members,
        )  # fmt: skip

    return await _retry.again(step, on=(StaleError,), attempts=_ATTEMPTS, exhausted=_kept_changing)
