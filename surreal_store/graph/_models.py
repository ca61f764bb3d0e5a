"""What the knowledge graph reads and writes: entities, facts, observations, subgraphs."""

from __future__ import annotations

import datetime as dt
import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, ConfigDict, Field

from .._api import public
from .._types import Key, Model, RecordId, canonical_json
from ..memory import DEFAULT_SCOPE
from ._render import Drawn, subgraph_frames, subgraph_networkx, subgraph_svg

__all__ = [
    "DEFAULT_SCOPE",
    "ENTITY_FIELDS",
    "FACT_FIELDS",
    "OBSERVATION_FIELDS",
    "VERSION_FIELDS",
    "Entity",
    "EntityVersion",
    "EntityView",
    "Fact",
    "NewEntity",
    "NewFact",
    "Observation",
    "Predicate",
    "Subgraph",
    "as_known",
    "entity_id",
    "fact_key",
    "name_key",
]


@public
def entity_id(scope: str, name: str) -> str:
    """The key of the entity ``name`` in ``scope`` (``entity:<key>``): SHA-256 over the scope's
    length, the scope and the exact name, as a memory's id is made. The database checks it."""
    return hashlib.sha256(f"{len(scope)}:{scope}{name}".encode()).hexdigest()


@public
def name_key(name: str) -> str:
    """A name as resolution compares names: Unicode NFKC, case folded, whitespace collapsed
    (``"  Café\\u00a0Society "`` and ``"café society"`` have the same key)."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def fact_key(scope: str, subject: str, predicate: str, obj: str, value: Any) -> str:
    """What identifies a fact apart from its times: SHA-256 of the canonical JSON of
    ``[scope, subject, predicate, object, value]`` (a value of ``None``: JSON null)."""
    text = canonical_json([scope, subject, predicate, obj, value], what="a fact")
    return hashlib.sha256(text.encode()).hexdigest()


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


class NewEntity(Model):
    """An entity to create: ``name`` is exact and unique within its scope (``"Café"``,
    ``"café"`` and ``"Café "`` are three entities); ``type`` is the reference memory server's
    entityType."""

    model_config = ConfigDict(frozen=True)

    name: str
    type: str = ""
    aliases: Sequence[str] = ()
    summary: str = ""
    attributes: Mapping[str, Any] = Field(default_factory=dict)
    embedding: Sequence[float] | None = None


class NewFact(Model):
    """A fact to assert (or to name in :func:`retract_facts`): ``subject`` and ``object`` are
    entity names of the call's scope. ``value`` is any JSON value (``None``: the fact has
    none). Valid time: ``valid_from`` (``None``: when it is asserted) to ``valid_until``
    (``None``: open)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    predicate: str
    object: str
    value: Any = None
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


class Entity(Model):
    """A stored entity. ``id`` is the 64-hex key of ``entity:<id>``. ``recorded_at`` and
    ``retracted_at`` are the transaction time of its current life (``retracted_at`` is set
    once it is deleted); ``lives`` holds the earlier ones."""

    model_config = ConfigDict(frozen=True)

    id: Key
    scope: str
    name: str
    type: str = ""
    aliases: list[str] = Field(default_factory=list)
    summary: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    embedding_model: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    recorded_at: dt.datetime
    retracted_at: dt.datetime | None = None
    lives: list[dict[str, dt.datetime]] = Field(default_factory=list)
    merged_into: Key | None = None
    position: int | None = None
    """Its place among the entities created with it (schema 033): entities are listed by
    ``(recorded_at, position, name)``, the order they were created in."""

    @property
    def deleted(self) -> bool:
        return self.retracted_at is not None


class EntityVersion(Model):
    """The fields an entity had until a write changed them at ``replaced_at`` (transaction
    time), as schema 029 keeps them whoever writes."""

    model_config = ConfigDict(frozen=True)

    entity: Key
    type: str
    aliases: list[str]
    summary: str
    attributes: dict[str, Any]
    replaced_at: dt.datetime


def as_known(entities: Sequence[Entity], versions: Sequence[EntityVersion]) -> list[Entity]:
    """``entities`` with the fields the store held at the time ``versions`` were read for:
    ``versions`` are the rows replaced after that time, so an entity's first one holds them
    (an entity with none has had its current fields since)."""
    first: dict[str, EntityVersion] = {}
    for v in sorted(versions, key=lambda v: v.replaced_at):
        first.setdefault(v.entity, v)
    if not first:
        return list(entities)
    out = []
    for e in entities:
        was = first.get(e.id)
        out.append(
            e
            if was is None
            else e.model_copy(
                update={
                    "type": was.type, "aliases": was.aliases, "summary": was.summary,
                    "attributes": was.attributes,
                }
            )
        )  # fmt: skip
    return out


class Fact(Model):
    """A stored fact: ``subject -predicate-> object`` (entity names), with its value, valid
    time (``valid_from`` to ``valid_until``, ``None``: open) and transaction time
    (``recorded_at`` to ``retracted_at``). ``id`` is the key of ``fact:<id>``.

    ``superseded_by`` names the fact whose assertion retracted this one (a single-valued
    predicate's new value); ``supersedes`` the version this one re-records with its valid time
    closed. ``invalidated_causes`` lists the distrusted sources that hide it."""

    model_config = ConfigDict(frozen=True)

    id: Key
    scope: str
    subject: str
    predicate: str
    object: str
    value: Any = None
    key: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    recorded_at: dt.datetime
    retracted_at: dt.datetime | None = None
    superseded_by: Key | None = None
    supersedes: Key | None = None
    invalidated_at: dt.datetime | None = None
    invalidated_causes: Annotated[list[RecordId], BeforeValidator(_none_is_empty)] = Field(
        default_factory=list
    )

    @property
    def invalidated(self) -> bool:
        return self.invalidated_at is not None

    def holds_at(self, when: dt.datetime) -> bool:
        """Whether the fact is valid at ``when`` (valid time only)."""
        return self.valid_from <= when and (self.valid_until is None or when < self.valid_until)


class Observation(Model):
    """One observation of an entity: the memory holding its ``content`` (``memory`` is its id),
    its ``position`` among the entity's observations (insertion order) and the transaction
    time of the link."""

    model_config = ConfigDict(frozen=True)

    entity: str
    content: str
    memory: Key
    position: int
    recorded_at: dt.datetime
    retracted_at: dt.datetime | None = None
    invalidated: bool = False


class EntityView(Model):
    """An entity with its facts (either end) and its observations in insertion order."""

    model_config = ConfigDict(frozen=True)

    entity: Entity
    facts: list[Fact]
    observations: list[Observation]

    @property
    def contents(self) -> list[str]:
        """The observations' contents, in insertion order."""
        return [o.content for o in self.observations]


class Subgraph(Model):
    """Entities, the facts between them (or touching them), and each entity's observations
    (by entity name, in insertion order)."""

    model_config = ConfigDict(frozen=True)

    entities: list[Entity] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)
    observations: dict[str, list[Observation]] = Field(default_factory=dict)
    centre: str | None = None
    """The entity a neighbourhood was asked about (the pictures start there)."""

    def contents(self, name: str) -> list[str]:
        """The observation contents of entity ``name``, in insertion order."""
        return [o.content for o in self.observations.get(name, [])]

    # -- for notebooks (graph._render) ------------------------------------------------------

    def _drawn(self, centre: str | None = None) -> Drawn:
        return Drawn(
            self.entities,
            self.facts,
            {name: [o.content for o in obs] for name, obs in self.observations.items()},
            centre or self.centre,
        )

    def to_pandas(self) -> tuple[Any, Any]:
        """``(entities, facts)`` as pandas DataFrames (pandas comes with the ``notebook``
        extra): an entity a row, its observations a list; a fact a row."""
        return subgraph_frames(self._drawn())

    def to_networkx(self) -> Any:
        """A ``networkx.MultiDiGraph``: entities by name, a fact an edge from subject to
        object keyed by its id (networkx comes with the ``notebook`` extra)."""
        return subgraph_networkx(self._drawn())

    def to_svg(self, *, centre: str | None = None, width: int = 900) -> str:
        """An SVG drawing: columns by distance from ``centre`` (default: the subgraph's own,
        else the best-connected entity), each entity a box, each fact an arrow labelled with
        its predicate."""
        return subgraph_svg(self._drawn(centre), width=width)

    def _repr_html_(self) -> str:
        return self.to_svg()


class Predicate(Model):
    """A declared predicate of a scope."""

    model_config = ConfigDict(frozen=True)

    scope: str
    name: str
    single_valued: bool
    created_at: dt.datetime
    updated_at: dt.datetime


# -- the columns reads select --------------------------------------------------------------

ENTITY_FIELDS: Final = (
    "id, scope, name, type, aliases, summary, attributes, embedding_model, created_at, "
    "updated_at, recorded_at, retracted_at, lives, merged_into, position"
)
FACT_FIELDS: Final = (
    "id, scope, in.name AS subject, predicate, out.name AS object, value, key, valid_from, "
    "valid_until, recorded_at, retracted_at, superseded_by, supersedes, invalidated_at, "
    "invalidated_causes"
)
VERSION_FIELDS: Final = "entity, type, aliases, summary, attributes, replaced_at"
OBSERVATION_FIELDS: Final = (
    "out.name AS entity, in.content AS content, in AS memory, position, recorded_at, "
    "retracted_at, in.invalidated_at != NONE AS invalidated"
)
