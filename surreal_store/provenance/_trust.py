"""Downstream: what depends on a source or memory, distrusting it and trusting it again."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ConfigDict, Field

from .. import _invalidation
from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._facts import GraphCheckpoint, RunTrace, StateSnapshot, UserAnnotation
from .._ids import LOWER_HEX64, memory_key
from .._types import Model, RecordId, check_text

__all__ = [
    "Impact",
    "InvalidationReceipt",
    "Restored",
    "SourceRef",
    "impact",
    "invalidate",
    "restore",
]


SourceRef = RunTrace | StateSnapshot | UserAnnotation | GraphCheckpoint | RecordId


_SOURCE_TABLES = ("run_event", "commit", "snapshot", "annotation", "lg_checkpoint")


def _source_record(source: SourceRef | str) -> RecordId:
    if isinstance(source, RunTrace | StateSnapshot | UserAnnotation | GraphCheckpoint):
        return source.record
    if isinstance(source, str):
        head, sep, tail = source.rpartition(":")
        if sep and tail.isdigit() and head.partition(":")[0] not in _SOURCE_TABLES:
            return RunTrace(run_id=head, seq=int(tail)).record  # RUN:SEQ, as the CLI takes it
        source = RecordId.parse(source)
    if not isinstance(source, RecordId) or source.table not in _SOURCE_TABLES:
        raise ValidationError(
            f"not a provenance source: {source!r} (a RunTrace, StateSnapshot, UserAnnotation, "
            "GraphCheckpoint, a memory id, or a node id of a provenance graph)"
        )
    return source


def _is_memory(value: object) -> bool:
    """Whether ``source=`` names a memory: its id as every memory call takes it (the key,
    ``memory:<key>`` or a :class:`RecordId`)."""
    if isinstance(value, RecordId):
        return value.table == "memory"
    return isinstance(value, str) and (
        value.startswith("memory:") or LOWER_HEX64.match(value) is not None
    )


class Impact(Model):
    """Everything downstream of a source or memory: the memories derived from it (directly or
    transitively; for a memory, itself included), the knowledge graph's facts citing it or any
    of those memories (fact ids, retracted versions included), and the decisions that used any
    of them."""

    model_config = ConfigDict(frozen=True)

    memories: list[str]
    decisions: list[str]
    facts: list[str] = Field(default_factory=list)


def _one_target(source: SourceRef | str | None, memory: str | None) -> tuple[Any, Any]:
    if (source is None) == (memory is None):
        raise ValidationError("give exactly one of source= or memory=")
    if _is_memory(source):  # a memory is a source too: one id form everywhere
        source, memory = None, str(source)
    if memory is not None:
        return None, RecordId("memory", memory_key(memory))
    assert source is not None
    return _source_record(source), None


@public
async def impact(
    db: Executor, *, source: SourceRef | str | None = None, memory: str | None = None
) -> Impact:
    """Every memory, fact (of the knowledge graph) and decision that depends on ``source`` (a
    run event, commit, snapshot, annotation or graph checkpoint) or on ``memory``.

    ``source`` takes every id this library hands out, here and in :func:`invalidate` and
    :func:`restore`: a source model, a memory id (bare, ``memory:<key>``, a :class:`RecordId`:
    the same as ``memory=``), a node id or root of a provenance graph
    (``run_event:['r1', 3]``, ``snapshot:<key>``), a receipt's ``cause``, or ``RUN:SEQ``."""
    src, mem = _one_target(source, memory)
    memories, decisions = await _invalidation.downstream(db, source=src, memory=mem)
    facts, deciding = await _invalidation.downstream_facts(db, source=src, memories=memories)
    decisions = list(dict.fromkeys([*decisions, *deciding]))
    return Impact(
        memories=[str(m.key) for m in memories],
        decisions=[str(d.key) for d in decisions],
        facts=[str(f.key) for f in facts],
    )


class InvalidationReceipt(Model):
    """What one invalidation reached: its cause, every memory derived from it and every fact
    citing it or one of those memories (those already invalid keep their first record).
    :func:`impact` names the decisions that used them."""

    model_config = ConfigDict(frozen=True)

    cause: str
    memories: list[str]
    facts: list[str] = Field(default_factory=list)


@public
async def invalidate(
    db: Executor,
    *,
    source: SourceRef | str | None = None,
    memory: str | None = None,
    reason: str,
    by: str | None = None,
) -> InvalidationReceipt:
    """Distrust ``source`` (or ``memory``) and hide every memory derived from it, directly or
    transitively, and every fact of the knowledge graph citing it or one of those memories, in
    one transaction; recall and the graph's reads then leave them out.

    A memory stays hidden while any of its causes stands: distrusting a second source of an
    already hidden memory adds that cause (its first ``invalidated_reason`` stays), and
    :func:`restore` of one cause leaves it hidden while another stands. Memories remembered
    later from a distrusted source, or derived from a hidden memory, are hidden from the
    start. Distrusting a standing cause again changes nothing."""
    check_text(reason, "reason")
    if by is not None:
        check_text(by, "by")
    src, mem = _one_target(source, memory)
    reach = await _invalidation.add_cause(
        db, source=src, memory=mem, cascade=True, reason=reason, by=by
    )
    return InvalidationReceipt(
        cause=str(src or mem),
        memories=[str(m.key) for m in reach.memories],
        facts=[str(f.key) for f in reach.facts],
    )


class Restored(list[str]):
    """What :func:`restore` brought back: the ids of the memories that became visible (the
    list itself, as it always was) and ``facts``, the ids of the knowledge graph's facts shown
    again (every version that was hidden and no longer is, as :class:`InvalidationReceipt`
    lists every version it reached)."""

    facts: list[str]

    def __init__(self, memories: Iterable[str] = (), facts: Iterable[str] = ()) -> None:
        super().__init__(memories)
        self.facts = list(facts)

    def __repr__(self) -> str:
        return f"Restored({list(self)!r}, facts={self.facts!r})"


@public
async def restore(
    db: Executor, *, source: SourceRef | str | None = None, memory: str | None = None
) -> Restored:
    """Undo :func:`invalidate` of ``source`` / ``memory`` (or :func:`memory.invalidate
    <surreal_store.memory.invalidate>` of ``memory``): it stops being a cause anywhere.
    Returns the ids of the memories that became visible, with ``.facts`` the facts shown
    again; what another standing cause still reaches stays hidden (a fact citing two
    distrusted sources stays hidden until both are restored)."""
    src, mem = _one_target(source, memory)
    restored = await _invalidation.remove_cause(db, source=src, memory=mem)
    return Restored((str(r.key) for r in restored.memories), (str(f.key) for f in restored.facts))
