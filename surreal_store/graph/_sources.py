"""Where a graph write came from: the ``source=`` of facts and observations.

A source is one of the provenance kinds the memory layer records (a run event, a commit, a
state snapshot, a user annotation, a LangGraph checkpoint, a memory), given as a provenance
model (``provenance.RunTrace(run_id=..., seq=...)``), a mapping with a ``kind``, a memory id,
a record id (``run_event:['r1', 3]``, ``commit:<hex>``) or ``RUN:SEQ``; or a list of them.

Facts record theirs as ``fact -fact_source-> source`` edges; observations are memories and
record theirs as memories do (``sourced_from`` / ``derived_from``), so the memory layer's
cascade reaches them unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from .._errors import ValidationError
from .._facts import (
    PROVENANCE_MODELS,
    MemoryDerivation,
    Provenance,
    RunTrace,
    UserAnnotation,
    attach_params,
    parse_provenance,
)
from .._ids import LOWER_HEX64, commit_key, memory_key
from .._types import RecordId

__all__ = [
    "SOURCE_TABLES",
    "Source",
    "fact_source_params",
    "memory_source_params",
    "parse_sources",
]

SOURCE_TABLES: Final = ("run_event", "commit", "snapshot", "annotation", "lg_checkpoint", "memory")

Source = Provenance | Mapping[str, Any] | RecordId | str
"""One source of a graph write (see the module's text)."""


def _one(value: Any) -> Provenance | RecordId:
    if isinstance(value, PROVENANCE_MODELS):
        return value
    if isinstance(value, Mapping):
        return parse_provenance(value)
    if isinstance(value, str):
        if LOWER_HEX64.match(value) or value.startswith("memory:"):
            return RecordId("memory", memory_key(value))
        head, sep, tail = value.rpartition(":")
        if sep and tail.isdigit() and head.partition(":")[0] not in SOURCE_TABLES:
            return RunTrace(run_id=head, seq=int(tail))
        value = RecordId.parse(value)
    if isinstance(value, RecordId) and value.table in SOURCE_TABLES:
        if value.table == "memory":
            return RecordId("memory", memory_key(value))
        if value.table == "commit":
            return RecordId("commit", commit_key(value))
        return value
    raise ValidationError(
        f"not a source: {value!r} (a run event, commit, snapshot, annotation, LangGraph "
        "checkpoint or memory: a provenance model, a mapping with a kind, a memory id, a record "
        "id or RUN:SEQ)"
    )


def parse_sources(source: Source | Sequence[Source] | None) -> list[Provenance | RecordId]:
    """``source=`` as a list of provenance facts and source records, each checked."""
    if source is None:
        return []
    if isinstance(source, (str, Mapping, RecordId, *PROVENANCE_MODELS)):
        items: Sequence[Any] = [source]
    elif isinstance(source, Sequence):
        items = source
    else:
        raise ValidationError(f"not a source: {source!r}")
    return list(dict.fromkeys(_one(s) for s in items))


def _annotation_key(scope: str, user: str, note: str) -> str:
    return hashlib.sha256(
        json.dumps(["graph", scope, user, note], ensure_ascii=False).encode()
    ).hexdigest()


def fact_source_params(sources: Sequence[Provenance | RecordId], *, scope: str) -> dict[str, Any]:
    """The parameters of the fact-source block: ``$f_sources`` ``[{out, how}]`` and the
    annotations to create, ``$f_notes`` (one per user and note in a scope, shared by every
    fact it is the source of)."""
    out: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for s in sources:
        if isinstance(s, RecordId):
            out.append({"out": s, "how": None})
        elif isinstance(s, MemoryDerivation):
            out.append({"out": s.record, "how": s.how})
        elif isinstance(s, UserAnnotation) and s.annotation is None:
            rid = RecordId("annotation", _annotation_key(scope, s.user, s.note))
            notes.append({"id": rid, "user": s.user, "note": s.note})
            out.append({"out": rid, "how": None})
        else:
            out.append({"out": s.record, "how": None})
    return {"f_sources": out, "f_notes": notes}


def memory_source_params(
    memory: RecordId, sources: Sequence[Provenance | RecordId]
) -> dict[str, Any]:
    """The parameters of ``_facts.ATTACH_BLOCK`` for an observation's memory: a memory source
    is a derivation (``how``: ``observed``), a commit a direct source."""
    facts: list[Provenance] = []
    direct: list[RecordId] = []
    for s in sources:
        if isinstance(s, RecordId):
            if s.table == "memory":
                if s != memory:  # an observation restating its own memory cites nothing new
                    facts.append(MemoryDerivation(parent=str(s.key), how="observed"))
            else:
                direct.append(s)
        elif isinstance(s, MemoryDerivation) and s.record == memory:
            continue
        else:
            facts.append(s)
    params = attach_params(memory, facts)
    params["p_sources"] = [*params["p_sources"], *direct]
    return params
