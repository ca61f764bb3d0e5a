"""Creating entities with their first observations in one transaction (the MCP reference
server's ``create_entities``, which takes each entity's observations with it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from .._executor import Executor
from ._entities import CREATE_ENTITIES_STATEMENTS, new_entity_rows
from ._extract import created_entities, write_body
from ._models import DEFAULT_SCOPE, Entity, NewEntity
from ._observe import ADD_OBSERVATIONS_STATEMENTS, OBSERVATION_KIND, observation_items

__all__ = ["create_observed_entities"]


def _without_result(text: str) -> str:
    """A graph write's statements without its ``BEGIN`` / ``COMMIT`` and its closing
    ``SELECT`` of what it wrote (an entity created here holds no observation before, so what
    it is given is what it gets)."""
    body = text.strip().removeprefix("BEGIN;").removesuffix("COMMIT;").rstrip()
    head, sep, _ = body.rpartition("\nSELECT ")
    if not sep:
        raise AssertionError("a graph write ends with a statement of what it wrote")
    return head + "\n"


# The create, then the observations of the entities it created (not of those that were alive:
# they are skipped whole, as the reference skips them), in one transaction: a reader sees the
# entities with their observations or neither, and a failure writes nothing.
_CREATE_OBSERVED: Final = (
    "BEGIN;\n"
    + write_body(CREATE_ENTITIES_STATEMENTS, "$g_entities")
    + """LET $items = $o_items.filter(|$i| $i.entity NOTINSIDE $alive);
LET $memories = $o_memories.filter(|$m| $m.entity NOTINSIDE $alive);
LET $ends = $items.map(|$i| $i.entity);
"""
    + _without_result(ADD_OBSERVATIONS_STATEMENTS)
    + "RETURN { entities: $g_entities };\nCOMMIT;"
)


async def create_observed_entities(
    db: Executor,
    *,
    entities: Sequence[NewEntity],
    observations: Mapping[str, Sequence[str]],
    scope: str = DEFAULT_SCOPE,
) -> tuple[list[Entity], dict[str, list[str]]]:
    """:func:`~._entities.create_entities` and, for the entities it creates,
    :func:`~._observe.add_observations_many` of ``observations`` (by entity name), in one
    transaction. Returns the entities created (input order) and the contents added to each
    (an entity that was already there gets none). Everything is checked before the write."""
    todo = await new_entity_rows(db, scope=scope, entities=entities)
    wanted = {r["name"] for r in todo}
    items, memories = observation_items(
        scope, {n: c for n, c in observations.items() if n in wanted and c}
    )
    items = [i for i in items if i["memories"]]
    entity_of = {m["id"]: i["entity"] for i in items for m in i["memories"]}
    found = await db.execute(
        _CREATE_OBSERVED,
        rows=todo,
        ids=[r["id"] for r in todo],
        o_items=[{"entity": i["entity"], "memories": i["memories"]} for i in items],
        o_memories=[{**m, "entity": entity_of[mid]} for mid, m in memories.items()],
        names={str(i["entity"].key): i["name"] for i in items},
        scope=scope,
        kind=OBSERVATION_KIND,
        attach=[],
    )
    done = next(r for r in reversed(found) if isinstance(r, Mapping) and "entities" in r)
    created = created_entities(done["entities"], todo)
    given = {i["name"]: [memories[m["id"]]["content"] for m in i["memories"]] for i in items}
    return created, {e.name: given.get(e.name, []) for e in created}
