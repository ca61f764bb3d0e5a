"""Attaching sources to a memory after it is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._api import public
from .._executor import Executor
from .._facts import ATTACH_BLOCK, Provenance, attach_params, parse_provenance
from .._ids import memory_key
from .._types import RecordId

__all__ = ["attach"]


@public
async def attach(
    db: Executor, *, memory: str, sources: Sequence[Provenance | Mapping[str, Any]]
) -> None:
    """Record where ``memory`` came from, all facts in one transaction. Every fact is checked
    before anything is written; attaching the same fact again changes nothing."""
    facts = [parse_provenance(s) for s in sources]
    mid = RecordId("memory", memory_key(memory))
    text = (
        "BEGIN;\nIF !record::exists($p_memory) { THROW 'not_found: no memory ' "
        "+ record::id($p_memory) };\n" + ATTACH_BLOCK + "COMMIT;"
    )
    await db.execute(text, **attach_params(mid, facts))
