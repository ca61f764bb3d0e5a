"""Searching the graph: entities by text and vector, facts by text and vector near a centre.

Entities are found three ways, fused by reciprocal rank:

- their observations, through the memory layer's recall (observations are memories, so the
  derived recall index answers: BM25 and HNSW in process, current with the table);
- their own words (name, aliases, summary) against the text's, by the memory layer's
  analyzer, and their own embedding of name + summary against the vector, through the entity
  index (``memory._recall_index._entity_index``: a second instance of the recall index's
  machinery, over the entity table, following its change feed); the index chooses the
  candidates, and the engine reads them (and orders the vector candidates by its own cosine)
  in the round trip that looks at the feed, so the answer is the engine's scan's.

Sessions that cannot read the change feed (agents), and searches as of a transaction time,
compare in the database: exact, and linear in the scope's entities.

Facts are found by their words (subject, predicate, object, value) and by their ends'
embeddings, fused, and with a ``centre`` re-ranked by graph distance from it: a fact
touching the centre counts fully, one a step away half, two steps a third, farther a
quarter. Each search is one query to the database (plus, for entities, the recall).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from pydantic import ConfigDict, Field

from .. import memory
from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._rank import rrf
from .._types import Model, RecordId, check_text
from ..memory._checks import check_positive, check_utc, check_vector
from ..memory._embedders import Embedder, check_embedder, embed_texts
from ..memory._recall_index._failures import Broken, FeedUnavailable, guarded
from ..memory._space import get_space
from ._models import (
    DEFAULT_SCOPE,
    ENTITY_FIELDS,
    FACT_FIELDS,
    Entity,
    EntityVersion,
    Fact,
    as_known,
)
from ._names import check_name, check_scope, check_strings, entity_record
from ._observe import OBSERVATION_KIND
from ._reads import versions_of
from ._walks import fact_filter

if TYPE_CHECKING:
    from ..memory._recall_index._entity_index import EntityIndex

__all__ = ["EntityHit", "FactHit", "search_entities", "search_facts"]

_MAX_K: Final = 1000
_REACH: Final = 3  # graph distances are told apart up to this many steps from the centre
_VECTOR_OF: Final = "encoding::cbor::decode(embedding)"
_LOOKS: Final = 3  # looks at the feed that find the index behind before it is caught up first

log = logging.getLogger("surreal_store.graph")


class EntityHit(Model):
    """An entity found, its fused ``score``, and each signal's 1-based rank when it ranked
    it: ``text_rank`` (its own words), ``vector_rank`` (its own embedding),
    ``observation_rank`` (its best observation in the recall)."""

    model_config = ConfigDict(frozen=True)

    entity: Entity
    score: float
    text_rank: int | None = None
    vector_rank: int | None = None
    observation_rank: int | None = None


class FactHit(Model):
    """A fact found, its ``score`` (fused, then weighed by ``distance`` when there is a
    centre), each signal's rank, and its ``distance`` from the centre (0: it touches it;
    ``None``: no centre, or farther than three steps)."""

    model_config = ConfigDict(frozen=True)

    fact: Fact
    score: float
    text_rank: int | None = None
    vector_rank: int | None = None
    distance: int | None = None


async def _query_vector(
    db: Executor,
    text: str | None,
    vector: Sequence[float] | None,
    embedder: Embedder | None,
) -> list[float] | None:
    if vector is not None and embedder is not None:
        raise ValidationError("give vector= or embedder=, not both")
    if vector is not None:
        return check_vector(vector, "vector")
    if embedder is None:
        return None
    if text is None:
        raise ValidationError("embedder= embeds text=: give text too")
    space = await get_space(db)
    if space is None:
        return None  # nothing has a vector yet
    check_embedder(embedder, space)
    (out,) = await embed_texts(embedder, [text], space.index_dimension)
    return out


def _check(text: str | None, k: int) -> None:
    if text is not None:
        check_text(text, "text")
    check_positive(k, "k", limit=_MAX_K)


class _EntityRows(Model):
    model_config = ConfigDict(frozen=True)

    rows: list[Entity]
    text: list[str]
    vector: list[str]
    observed: list[dict[str, Any]]
    versions: list[EntityVersion] = Field(default_factory=list)


_ALIVE_THEN: Final = (
    "((recorded_at <= $known_at AND (retracted_at = NONE OR retracted_at > $known_at)) "
    "OR lives.any(|$l| $l.recorded_at <= $known_at AND $l.retracted_at > $known_at))"
)


@cache
def _entities_query(
    text: bool, vector: bool, types: bool, at: bool = False, indexed: bool = False
) -> str:
    # As of a transaction time: the entities alive then, their words and type as the store
    # held them then (schema 029); the embedding is the current one. ``indexed``: the entity
    # index chose the candidates ($found_text, $found_vector), current as of the look at the
    # feed in the same round trip; the engine orders the vector candidates exactly.
    kind = "fn::entity_type_at(id, $known_at)" if at else "type"
    live = f"scope = $scope AND {_ALIVE_THEN if at else 'retracted_at = NONE'}" + (
        f" AND {kind} IN $types" if types else ""
    )
    words = "name + ' ' + array::join(aliases, ' ') + ' ' + summary"
    rows = "entity"
    if at:
        words = "name + ' ' + array::join(k.aliases, ' ') + ' ' + k.summary"
        rows = f"(SELECT id, name, fn::entity_known(id, $known_at) AS k FROM entity WHERE {live})"
    # Ties by key, so that the index and the engine give the same order.
    by_text = (
        "$found_text"
        if indexed and text
        else f"""(SELECT record::id(id) AS id, array::len(array::intersect(array::distinct(
            search::analyze('memory_text', {words})), $terms)) AS s FROM {rows}
            {"" if at else f"WHERE {live}"}
            ORDER BY s DESC, id LIMIT $n).filter(|$r| $r.s > 0).map(|$r| $r.id)"""
        if text
        else "[]"
    )
    known = (
        "recorded_at <= $known_at AND (retracted_at = NONE OR retracted_at > $known_at)"
        if at
        else "retracted_at = NONE"
    )
    by_vector = (
        f"""(SELECT record::id(id) AS id, vector::similarity::cosine({_VECTOR_OF}, $vector) AS s
            FROM {"$found_vector" if indexed else "entity"} WHERE {live} AND embedding != NONE
            AND array::len({_VECTOR_OF}) = $dim ORDER BY s DESC, id LIMIT $n).map(|$r| $r.id)"""
        if vector
        else "[]"
    )
    terms = "[]" if indexed else "array::distinct(search::analyze('memory_text', $text ?? ''))"
    return f"""
LET $terms = {terms};
LET $t = {by_text};
LET $vv = {by_vector};
LET $o = (SELECT record::id(in) AS memory, record::id(out) AS entity FROM observation
    WHERE in IN $memories AND {known} AND scope = $scope) ?? [];
LET $ids = array::distinct(array::concat($t, $vv, $o.map(|$r| $r.entity)))
    .map(|$i| type::record('entity', $i));
LET $rows = (SELECT {ENTITY_FIELDS} FROM $ids WHERE {live}) ?? [];
RETURN {{
    rows: $rows, text: $t, vector: $vv, observed: $o,
    versions: {versions_of(at, "entity IN $rows.id")},
}};
"""


async def _indexed_rows(
    db: Executor, index: EntityIndex, query: str, terms: list[str] | None, **params: Any
) -> Any:
    """The rows of ``query`` over the candidates the entity index chooses, once a look at
    the feed in the same round trip shows the index current for them (else it catches up
    and chooses again); :class:`FeedUnavailable` for a session that cannot read the feed,
    :class:`Broken` if the index fails."""
    from ..memory._recall_index._entity_feed import apply_page, behind, look_and_read
    from ..memory._recall_index._entity_feed import catch_up as entity_catch_up
    from ..memory._recall_index._feed import touches

    scope, kinds, q, n = params["scope"], params["types"], params["vector"], params["n"]
    params = {k: v for k, v in params.items() if k != "text"}  # the index analysed it
    for attempt in range(_LOOKS + 1):
        async with index.lock:
            with guarded():
                if behind(index) or attempt == _LOOKS:
                    await entity_catch_up(db, index)
                mask = index.mask(scope, kinds)
                found_text = index.by_text(terms, mask, n) if terms is not None else []
                found_vector = index.by_vector(q, mask, n) if q is not None else []
            since, limit = index.versionstamp, index.feed_limit
        chosen = {
            "found_text": found_text,
            "found_vector": [RecordId("entity", key) for key in found_vector],
        }
        if attempt == _LOOKS:  # caught up just now: a change since is one made after the call
            return await db.query_required_single(query, dict, idempotent=True, **chosen, **params)
        entries, result = await look_and_read(db, index, since, limit, query, **chosen, **params)
        if not entries or (len(entries) < limit and not touches(entries, "entity")):
            if entries:  # other tables' changes only: the next look starts after them
                async with index.lock:
                    if index.versionstamp == since:
                        apply_page(index, entries)
            return result
        async with index.lock:
            if index.versionstamp == since:  # else another search caught it up meanwhile
                with guarded():
                    apply_page(index, entries)
    raise AssertionError("unreachable")  # pragma: no cover


@public
async def search_entities(
    db: Executor,
    *,
    text: str | None = None,
    vector: Sequence[float] | None = None,
    embedder: Embedder | None = None,
    k: int = 10,
    types: Sequence[str] | None = None,
    scope: str = DEFAULT_SCOPE,
    known_at: dt.datetime | None = None,
) -> list[EntityHit]:
    """The ``k`` live entities of ``scope`` that best match ``text`` and/or ``vector`` (or
    ``text`` embedded by ``embedder``), best first: by their observations (through recall),
    their own words and their own embedding, fused by reciprocal rank. ``types`` keeps only
    entities of those types.

    The words and embeddings are searched through the entity index (in process, following
    the entity table's change feed; built on a connection's first search), with the same
    answers as the engine's scan, which agents' sessions use.

    With ``known_at``: the entities alive then, their words, type and fields as the store
    held them then, and the observation links it held then; the embedding compared, and the
    memories recall finds, are the current ones. These searches scan in the engine (the index
    holds the present only)."""
    check_scope(scope)
    _check(text, k)
    if text is None and vector is None:
        raise ValidationError("search_entities needs text= or vector=")
    kinds = check_strings(types, "types", empty=True)
    known = check_utc(known_at, "known_at")
    q = await _query_vector(db, text, vector, embedder)
    n = max(20, 2 * k)
    hits = (
        await memory.recall(db, text=text, vector=q, k=n, scope=scope, kind=OBSERVATION_KIND)
        if (text is not None or q is not None)
        else []
    )
    memories = [RecordId("memory", h.memory.id) for h in hits]
    params: dict[str, Any] = {
        "scope": scope,
        "text": text,
        "vector": q,
        "dim": len(q) if q is not None else 0,
        "n": n,
        "types": kinds,
        "memories": memories,
        "known_at": known,
    }
    shape = (text is not None, q is not None, kinds is not None)
    raw: Any = None
    index = None
    if known is None:
        from ..memory._recall_index._entity_feed import entity_index

        index = entity_index(db)
    if index is not None:
        query = _entities_query(*shape, indexed=True)
        try:
            with guarded():
                terms = index.analyse(text) if text is not None else None
            raw = await _indexed_rows(db, index, query, terms, **params)
        except FeedUnavailable:
            raw = None  # an agent's session: the engine compares, within its permissions
        except Broken as exc:
            log.warning("the entity index failed (%s); it is built again on next use", exc)
            async with index.lock:
                index.reset()
    if raw is not None:
        found = _EntityRows.model_validate(raw)
    else:
        found = await db.query_required_single(
            _entities_query(*shape, known is not None), _EntityRows, idempotent=True, **params
        )
    rank_of_memory = {h.memory.id: i for i, h in enumerate(hits, 1)}
    observed: dict[str, int] = {}
    for row in found.observed:
        rank = rank_of_memory.get(str(row["memory"]))
        if rank is not None:
            e = str(row["entity"])
            observed[e] = min(rank, observed.get(e, rank))
    by_observation = sorted(observed, key=lambda e: observed[e])
    scores = rrf(found.text, found.vector, by_observation)
    rows = {e.id: e for e in as_known(found.rows, found.versions)}
    t_rank = {e: i for i, e in enumerate(found.text, 1)}
    v_rank = {e: i for i, e in enumerate(found.vector, 1)}
    o_rank = {e: i for i, e in enumerate(by_observation, 1)}
    order = sorted((e for e in scores if e in rows), key=lambda e: (-scores[e], rows[e].name))
    return [
        EntityHit(
            entity=rows[e],
            score=scores[e],
            text_rank=t_rank.get(e),
            vector_rank=v_rank.get(e),
            observation_rank=o_rank.get(e),
        )
        for e in order[:k]
    ]


class _FactRows(Model):
    model_config = ConfigDict(frozen=True)

    rows: list[Fact]
    text: list[str]
    vector: list[str]
    levels: list[list[str]]


@cache
def _facts_query(
    text: bool, vector: bool, centre: bool, at: bool, hidden: bool, preds: bool
) -> str:
    ok = fact_filter(at=at, hidden=hidden, predicates=preds)
    words = (
        "in.name + ' ' + string::replace(predicate, '_', ' ') + ' ' + out.name + ' ' "
        "+ (IF value = NONE { '' } ELSE { <string>value })"
    )
    by_text = (
        f"""(SELECT record::id(id) AS id, array::len(array::intersect(array::distinct(
            search::analyze('memory_text', {words})), $terms)) AS s FROM fact WHERE {ok}
            ORDER BY s DESC LIMIT $n).filter(|$r| $r.s > 0).map(|$r| $r.id)"""
        if text
        else "[]"
    )
    end_vector = (
        "IF {e}.embedding != NONE AND array::len(encoding::cbor::decode({e}.embedding)) = $dim "
        "{{ vector::similarity::cosine(encoding::cbor::decode({e}.embedding), $vector) }} "
        "ELSE {{ -1 }}"
    )
    by_vector = (
        f"""(SELECT record::id(id) AS id, math::max([{end_vector.format(e="in")},
            {end_vector.format(e="out")}]) AS s FROM fact WHERE {ok}
            ORDER BY s DESC LIMIT $n).filter(|$r| $r.s > -1).map(|$r| $r.id)"""
        if vector
        else "[]"
    )
    # The centre's neighbourhood level by level: an entity's distance is its first level.
    levels = "[]"
    if centre:
        steps = ["LET $l0 = [$centre];"]
        for i in range(1, _REACH + 1):
            steps.append(
                f"LET $l{i} = array::distinct(array::flatten($l{i - 1}.map(|$e| "
                f"$e<->fact[WHERE {ok}]<->entity)));"
            )
        levels = "[" + ", ".join(f"$l{i}.map(|$e| record::id($e))" for i in range(_REACH + 1)) + "]"
    else:
        steps = []
    return (
        "LET $v = $valid_at ?? time::now();\n"
        "LET $terms = array::distinct(search::analyze('memory_text', $text ?? ''));\n"
        f"LET $t = {by_text};\nLET $vv = {by_vector};\n"
        + "\n".join(steps)
        + f"""
LET $ids = array::distinct(array::concat($t, $vv)).map(|$i| type::record('fact', $i));
RETURN {{
    rows: (SELECT {FACT_FIELDS} FROM $ids) ?? [],
    text: $t, vector: $vv, levels: {levels},
}};
"""
    )


@public
async def search_facts(
    db: Executor,
    *,
    text: str | None = None,
    vector: Sequence[float] | None = None,
    embedder: Embedder | None = None,
    centre: str | None = None,
    k: int = 10,
    predicates: Sequence[str] | None = None,
    scope: str = DEFAULT_SCOPE,
    valid_at: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> list[FactHit]:
    """The ``k`` facts of ``scope`` (true at ``valid_at`` as held at ``known_at``; each
    ``None``: now) that best match ``text`` (their subject, predicate, object and value)
    and/or ``vector`` (their ends' embeddings), fused by reciprocal rank; with ``centre`` (an
    entity name), weighed by their distance from it, so that of two equally good matches the
    nearer comes first. One query."""
    check_scope(scope)
    _check(text, k)
    if text is None and vector is None:
        raise ValidationError("search_facts needs text= or vector=")
    preds = check_strings(predicates, "predicates")
    q = await _query_vector(db, text, vector, embedder)
    known = check_utc(known_at, "known_at")
    n = max(50, 5 * k)
    found = await db.query_required_single(
        _facts_query(
            text is not None,
            q is not None,
            centre is not None,
            known is not None,
            include_invalidated,
            preds is not None,
        ),
        _FactRows,
        idempotent=True,
        scope=scope,
        text=text,
        vector=q,
        dim=len(q) if q is not None else 0,
        n=n,
        centre=entity_record(scope, check_name(centre, "centre")) if centre is not None else None,
        valid_at=check_utc(valid_at, "valid_at"),
        known_at=known,
        predicates=preds,
    )
    depth: dict[str, int] = {}
    for i, level in enumerate(found.levels):
        for e in level:
            depth.setdefault(e, i)
    scores = rrf(found.text, found.vector)
    rows = {f.id: f for f in found.rows}
    t_rank = {f: i for i, f in enumerate(found.text, 1)}
    v_rank = {f: i for i, f in enumerate(found.vector, 1)}
    hits = []
    for fid, score in scores.items():
        fact = rows.get(fid)
        if fact is None:
            continue
        distance = None
        if centre is not None:
            ends = [
                depth[key]
                for key in (_key(fact.subject, scope), _key(fact.object, scope))
                if key in depth
            ]
            distance = min(ends) if ends else None
            score /= 1 + (distance if distance is not None else _REACH)
        hits.append(
            FactHit(
                fact=fact,
                score=score,
                text_rank=t_rank.get(fid),
                vector_rank=v_rank.get(fid),
                distance=distance,
            )
        )
    hits.sort(key=lambda h: (-h.score, h.fact.recorded_at, h.fact.id))
    return hits[:k]


def _key(name: str, scope: str) -> str:
    return str(entity_record(scope, name).key)
