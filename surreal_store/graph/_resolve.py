"""Entity resolution: the entities a name may mean, and writes that resolve to them.

Names are exact by default (``"Acme"`` and ``"ACME"`` are two entities, as in the reference
memory server). :func:`candidates` proposes the entities a name may mean, scored:

- 1.0 when its normalised name (:func:`name_key`: NFKC, case folded, spaces collapsed) is
  theirs, 0.95 when it is one of their aliases';
- else the Jaro-Winkler similarity of the normalised names (and aliases), the cosine
  similarity of an embedding of name + summary with theirs (when one is given), and the share
  of words the name and summary have in common with theirs (the memory layer's analyzer).

:func:`resolve_entities` creates entities as :func:`create_entities` does, except that a name
whose normalised form is already an entity's name or alias (or, with ``threshold``, whose
best candidate scores that much) resolves to that entity instead: its name is added to the
entity's aliases. Merging two entities is :mod:`._merge`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from pydantic import ConfigDict, Field

from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._types import Model, check_text
from ..memory._checks import check_positive, check_vector
from ._entities import create_entities
from ._models import DEFAULT_SCOPE, ENTITY_FIELDS, Entity, NewEntity, name_key
from ._names import check_name, check_scope, entity_record

__all__ = [
    "Candidate",
    "Resolution",
    "candidates",
    "resolve_entities",
]

_NAME: Final = 1.0
_ALIAS: Final = 0.95
_MIN_SIMILAR: Final = 0.8  # Jaro-Winkler below this proposes nothing on its own
_WORDS: Final = 0.7  # the most a share of common words scores
_VECTOR: Final = 0.9  # the most a cosine similarity scores


class Candidate(Model):
    """An entity ``name`` may mean, with its ``score`` (1.0: the same normalised name) and
    why (``name``, ``alias``, ``similar name``, ``similar alias``, ``embedding``, ``words``)."""

    model_config = ConfigDict(frozen=True)

    entity: Entity
    score: float
    reasons: list[str]


class _Row(Entity):
    jw: float = 0.0
    alias_jw: float = 0.0
    cosine: float | None = None
    words: float = 0.0


def _candidates_query(vector: bool) -> str:
    cos = (
        "IF embedding != NONE AND array::len(encoding::cbor::decode(embedding)) = $dim "
        "{ vector::similarity::cosine(encoding::cbor::decode(embedding), $vector) } ELSE { NONE }"
        if vector
        else "NONE"
    )
    # The scope's live entities, scored in the database; the few that pass come back whole.
    return f"""
LET $terms = array::distinct(search::analyze('memory_text', $text));
LET $scored = (SELECT id, string::similarity::jaro_winkler(name_key, $key) AS jw,
        math::max(array::concat([0.0], aliases.map(|$a|
            string::similarity::jaro_winkler(string::lowercase($a), $key)))) AS alias_jw,
        {cos} AS cosine,
        IF array::len($terms) = 0 {{ 0.0 }} ELSE {{
            array::len(array::intersect(array::distinct(search::analyze('memory_text',
                name + ' ' + summary)), $terms)) / array::len($terms)
        }} AS words
    FROM entity WHERE scope = $scope AND retracted_at = NONE);
LET $kept = $scored.filter(|$r| $r.jw >= $min OR $r.alias_jw >= $min
    OR ($r.cosine != NONE AND $r.cosine >= $min_cosine) OR $r.words >= 0.5);
LET $best = (SELECT * FROM $kept ORDER BY jw DESC LIMIT $n) ?? [];
LET $more = (SELECT * FROM $kept ORDER BY cosine DESC LIMIT $n) ?? [];
LET $wordy = (SELECT * FROM $kept ORDER BY words DESC LIMIT $n) ?? [];
LET $aliased = (SELECT * FROM $kept ORDER BY alias_jw DESC LIMIT $n) ?? [];
LET $all = array::concat($best, $more, $wordy, $aliased);
SELECT {ENTITY_FIELDS}, $all[WHERE id = $parent.id][0].jw AS jw,
    $all[WHERE id = $parent.id][0].alias_jw AS alias_jw,
    $all[WHERE id = $parent.id][0].cosine AS cosine,
    $all[WHERE id = $parent.id][0].words AS words
    FROM array::distinct(array::concat(
        (SELECT VALUE id FROM entity WHERE scope = $scope AND name_key = $key
            AND retracted_at = NONE) ?? [],
        $all.map(|$r| $r.id)));
"""


def _score(row: _Row, key: str) -> tuple[float, list[str]]:
    reasons: list[tuple[float, str]] = []
    if name_key(row.name) == key:
        reasons.append((_NAME, "name"))
    if any(name_key(a) == key for a in row.aliases):
        reasons.append((_ALIAS, "alias"))
    if row.jw >= _MIN_SIMILAR:
        reasons.append((row.jw * 0.94, "similar name"))
    if row.alias_jw >= _MIN_SIMILAR:
        reasons.append((row.alias_jw * 0.9, "similar alias"))
    if row.cosine is not None and row.cosine > 0:
        reasons.append((row.cosine * _VECTOR, "embedding"))
    if row.words > 0:
        reasons.append((row.words * _WORDS, "words"))
    reasons.sort(key=lambda r: -r[0])
    score = reasons[0][0] if reasons else 0.0
    return round(score, 6), [r for _, r in reasons]


@public
async def candidates(
    db: Executor,
    *,
    name: str,
    summary: str = "",
    embedding: Sequence[float] | None = None,
    scope: str = DEFAULT_SCOPE,
    k: int = 5,
    min_score: float = 0.5,
) -> list[Candidate]:
    """The entities of ``scope`` that ``name`` may mean, best first (at most ``k``, each
    scoring at least ``min_score``): see the module's text for the scores. ``summary`` and
    ``embedding`` (of name + summary, in the store's embedding space) describe what ``name``
    is meant to be, for the word and embedding similarities. One query; it compares the
    scope's live entities."""
    check_scope(scope)
    check_name(name)
    check_text(summary, "summary", empty=True)
    check_positive(k, "k", limit=1000)
    if isinstance(min_score, bool) or not isinstance(min_score, int | float):
        raise ValidationError("min_score must be a number")
    key = name_key(name)
    if not key:
        raise ValidationError(f"entity name {name!r} is only whitespace")
    vector = check_vector(embedding, "embedding") if embedding is not None else None
    rows = await db.query(
        _candidates_query(vector is not None),
        _Row,
        idempotent=True,
        scope=scope,
        key=key,
        text=f"{name} {summary}",
        vector=vector,
        dim=len(vector) if vector is not None else 0,
        min=_MIN_SIMILAR,
        min_cosine=0.5,
        n=max(k, 10),
    )
    found = []
    for row in rows:
        score, reasons = _score(row, key)
        if score >= min_score:
            plain = row.model_dump(exclude={"jw", "alias_jw", "cosine", "words"})
            entity = Entity.model_validate(plain)
            found.append(Candidate(entity=entity, score=score, reasons=reasons))
    found.sort(key=lambda c: (-c.score, c.entity.name))
    return found[:k]


# -- writes that resolve -------------------------------------------------------------------


class Resolution(Model):
    """What :func:`resolve_entities` did: the entities it ``created`` (in input order), and the
    names it ``resolved`` to existing entities (requested name -> the entity's name)."""

    model_config = ConfigDict(frozen=True)

    created: list[Entity] = Field(default_factory=list)
    resolved: dict[str, str] = Field(default_factory=dict)

    def name_of(self, name: str) -> str:
        """The entity ``name`` stands for after the write: facts name it so."""
        return self.resolved.get(name, name)


# The live entities whose name or alias has one of the keys; each key's matches.
_MATCHES = f"""
SELECT {ENTITY_FIELDS} FROM entity WHERE scope = $scope AND retracted_at = NONE
    AND (name_key IN $keys OR aliases.any(|$a| string::lowercase($a) IN $keys));
"""

_ADD_ALIASES = """
BEGIN;
FOR $a IN $adds {
    UPDATE ONLY $a.id SET aliases = array::distinct(array::concat(aliases, $a.names)),
        updated_at = time::now() WHERE retracted_at = NONE RETURN NONE;
};
COMMIT;
"""


@public
async def resolve_entities(
    db: Executor,
    *,
    entities: Sequence[NewEntity],
    scope: str = DEFAULT_SCOPE,
    threshold: float | None = None,
) -> Resolution:
    """Create ``entities`` in ``scope``, resolving names to existing entities where they mean
    one: a name that is an entity's exactly is skipped (as :func:`create_entities` does); a
    name whose normalised form is exactly one live entity's normalised name or alias resolves
    to it; with ``threshold``, so does a name whose best :func:`candidates` match scores at
    least that (and better than the next). A resolved name is added to the entity's aliases.
    A name that several entities match equally is not resolved: it is created. Names of one
    call that normalise alike resolve to the first of them that is created."""
    check_scope(scope)
    if isinstance(entities, NewEntity) or not isinstance(entities, Sequence):
        raise ValidationError("entities must be a list of NewEntity")
    if threshold is not None and (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not 0 < threshold <= 1
    ):
        raise ValidationError("threshold must be a number in (0, 1]")
    items = []
    for i, e in enumerate(entities):
        if not isinstance(e, NewEntity):
            raise ValidationError(f"entity {i} is not a NewEntity")
        items.append((check_name(e.name), e))
    keys = {name_key(n) for n, _ in items}
    found = await db.query(_MATCHES, Entity, idempotent=True, scope=scope, keys=sorted(keys))
    by_key: dict[str, dict[str, Entity]] = {}
    for ent in found:
        for k in {name_key(ent.name), *(name_key(a) for a in ent.aliases)}:
            by_key.setdefault(k, {})[ent.name] = ent
    resolved: dict[str, str] = {}
    todo: list[NewEntity] = []
    # A name this call creates, by its normalised form: a look-alike later in the call means
    # it too, as it would in a later call (else the call itself makes the name ambiguous).
    creating: dict[str, str] = {}
    for name, e in items:
        matches = by_key.get(name_key(name), {})
        if name in matches or name in resolved:
            continue  # the entity itself: create_entities skips it
        first = creating.get(name_key(name))
        if first is not None and not matches:
            if first != name:
                resolved[name] = first
            continue
        if len(matches) == 1:
            resolved[name] = next(iter(matches))
            continue
        if threshold is not None and not matches:
            best = await candidates(
                db, name=name, summary=e.summary, embedding=e.embedding, scope=scope, k=2
            )
            if (
                best
                and best[0].score >= threshold
                and (len(best) == 1 or best[1].score < best[0].score)
            ):
                resolved[name] = best[0].entity.name
                continue
        todo.append(e)
        creating.setdefault(name_key(name), name)
    created = await create_entities(db, entities=todo, scope=scope) if todo else []
    adds: dict[str, list[str]] = {}
    for name, target in resolved.items():
        adds.setdefault(target, []).append(name)
    if adds:
        await db.execute(
            _ADD_ALIASES,
            adds=[{"id": entity_record(scope, t), "names": names} for t, names in adds.items()],
        )
    return Resolution(created=created, resolved=resolved)


# -- merging -------------------------------------------------------------------------------
