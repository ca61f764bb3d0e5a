"""Provenance facts: where a memory came from (the seed's four source kinds and a LangGraph
checkpoint), and the block
that records them as graph edges inside the caller's transaction.

Below :mod:`memory`, which records facts as it remembers, and re-exported by
:mod:`provenance`, where they are documented for users.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final, Literal

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from . import _invalidation
from ._api import public
from ._errors import ValidationError
from ._ids import commit_key, memory_key
from ._types import Model, RecordId

__all__ = [
    "ATTACH_BLOCK",
    "PROVENANCE_MODELS",
    "GraphCheckpoint",
    "MemoryDerivation",
    "Provenance",
    "RunTrace",
    "StateSnapshot",
    "UserAnnotation",
    "attach_params",
    "parse_provenance",
]


# -- provenance facts: the seed's four source kinds --------------------------------------------


class RunTrace(Model):
    """The memory came from event ``seq`` of run ``run_id``."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["run_trace"] = "run_trace"
    run_id: str
    seq: int = Field(ge=1)

    @property
    def record(self) -> RecordId:
        return RecordId("run_event", [self.run_id, self.seq])


class StateSnapshot(Model):
    """The memory came from the agent state stored with ``commit``."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["state_snapshot"] = "state_snapshot"
    commit: str

    @property
    def record(self) -> RecordId:
        return RecordId("snapshot", commit_key(self.commit))


class UserAnnotation(Model):
    """A person said so. ``annotation`` is the stored annotation's id once recorded."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["user_annotation"] = "user_annotation"
    user: str = Field(min_length=1)
    note: str = ""
    annotation: str | None = None

    @property
    def record(self) -> RecordId:
        if self.annotation is None:
            raise ValidationError("this annotation is not recorded yet")
        return RecordId("annotation", self.annotation)


class GraphCheckpoint(Model):
    """The memory came from a LangGraph checkpoint stored by
    :class:`surreal_store.langgraph.SurrealCheckpointSaver`: the graph state of ``thread_id``
    (in ``checkpoint_ns``) at ``checkpoint_id``. The checkpoint outlives its thread's deletion
    while a memory cites it."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["graph_checkpoint"] = "graph_checkpoint"
    thread_id: str = Field(min_length=1, max_length=1024)
    checkpoint_ns: str = Field(default="", max_length=1024)
    checkpoint_id: str = Field(min_length=1, max_length=256)

    @property
    def record(self) -> RecordId:
        return RecordId("lg_checkpoint", [self.thread_id, self.checkpoint_ns, self.checkpoint_id])


class MemoryDerivation(Model):
    """The memory was made from memory ``parent`` by ``how`` (summarise, merge, extract...)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["memory_derivation"] = "memory_derivation"
    parent: str
    how: str = Field(min_length=1, max_length=64)

    @property
    def record(self) -> RecordId:
        return RecordId("memory", memory_key(self.parent))


Provenance = Annotated[
    RunTrace | StateSnapshot | UserAnnotation | GraphCheckpoint | MemoryDerivation,
    Field(discriminator="kind"),
]
"""One provenance fact: a discriminated union on ``kind``."""

PROVENANCE_MODELS: Final = (
    RunTrace,
    StateSnapshot,
    UserAnnotation,
    GraphCheckpoint,
    MemoryDerivation,
)
"""The models of :data:`Provenance`, for ``isinstance``."""

_PROVENANCE: TypeAdapter[Provenance] = TypeAdapter(Provenance)


@public
def parse_provenance(value: Provenance | Mapping[str, Any]) -> Provenance:
    """A provenance fact from a model or a mapping with a ``kind``; ``ValidationError`` for an
    unknown kind or bad fields."""
    if isinstance(value, PROVENANCE_MODELS):
        return value
    try:
        return _PROVENANCE.validate_python(value)
    except PydanticValidationError as exc:
        raise ValidationError(f"invalid provenance {value!r}: {exc.errors()[0]['msg']}") from None


# The edges of one memory, in the caller's transaction. Sources must exist (ENFORCED would say
# so too, but not by name); edge ids are [memory, source], so attaching twice is a no-op.
ATTACH_BLOCK: Final = """
FOR $s IN $p_sources {
    IF !record::exists($s) { THROW 'not_found: source ' + <string>$s + ' does not exist' };
};
FOR $d IN $p_parents {
    IF !record::exists($d.parent) {
        THROW 'not_found: memory ' + record::id($d.parent) + ' does not exist';
    };
};
-- An annotation's id is the hash of its memory, user and note: a replayed call finds it.
FOR $a IN $p_annotations {
    IF !record::exists($a.id) {
        CREATE ONLY $a.id SET user = $a.user, note = $a.note RETURN NONE;
    };
};
LET $p_notes = $p_annotations.map(|$a| $a.id);
LET $p_edges = array::concat($p_sources, $p_notes).map(|$s| {
    id: type::record('sourced_from', [record::id($p_memory), <string>$s]),
    in: $p_memory, out: $s,
});
INSERT RELATION INTO sourced_from $p_edges.filter(|$e| !record::exists($e.id)) RETURN NONE;
LET $p_derived = $p_parents.map(|$d| {
    id: type::record('derived_from', [record::id($p_memory), record::id($d.parent)]),
    in: $p_memory, out: $d.parent, how: $d.how,
});
INSERT RELATION INTO derived_from $p_derived.filter(|$e| !record::exists($e.id)) RETURN NONE;
-- A distrusted source or a hidden parent: the memory and what derives from it inherit the
-- standing causes (see _invalidation), recomputed from the graph as it now stands.
LET $p_tainted = array::len((SELECT VALUE id FROM $p_sources.map(
        |$s| type::record('source_invalidation', [$s])))) > 0
    OR array::len((SELECT VALUE id FROM $p_parents.map(|$d| $d.parent)
        WHERE invalidated_at != NONE)) > 0;
LET $recompute = IF $p_tainted {
    array::union([$p_memory], $p_memory.{1..256+collect}<-derived_from<-memory)
} ELSE { [] };
""" + _invalidation.recompute_causes_block()


def attach_params(memory: RecordId, facts: Iterable[Provenance]) -> dict[str, Any]:
    """The parameters of :data:`ATTACH_BLOCK` for ``facts`` about ``memory``."""
    sources: list[RecordId] = []
    parents: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for f in facts:
        if isinstance(f, MemoryDerivation):
            if f.record == memory:
                raise ValidationError("a memory cannot derive from itself")
            parents.append({"parent": f.record, "how": f.how})
        elif isinstance(f, UserAnnotation) and f.annotation is None:
            key = hashlib.sha256(
                json.dumps([str(memory.key), f.user, f.note], ensure_ascii=False).encode()
            ).hexdigest()
            notes.append({"id": RecordId("annotation", key), "user": f.user, "note": f.note})
        else:
            sources.append(f.record)
    return {"p_memory": memory, "p_sources": sources, "p_parents": parents, "p_annotations": notes}
