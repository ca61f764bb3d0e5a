"""Memories owned by the records of a framework door (LangGraph's items, LangChain's documents).

An owner record (``lg_item``, ``lc_document``) lists its memories in ``memories``: the texts it
is searched by. Writing an owner replaces them, in one transaction with the owner's own write:

- the previous memories go, with the graph edges touching them (as :func:`forget` does);
- except those something cites (a decision used it, a memory derives from it): they stay,
  hidden as superseded (as :func:`invalidate` hides one), so a decision still shows what it
  used;
- new memories are written in a scope of their own per write, so they never share an id with
  the ones they replace (``mem://`` refuses to delete and re-create one id in one
  transaction);
- a hidden memory among the previous ones may pass causes down to memories derived from it:
  then nothing is written, its id is returned, and :func:`write_owned` forgets it first (which
  recomputes what it reaches) and tries again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, Final

import cbor2
from pydantic import BaseModel, ConfigDict

from .._errors import ConflictError
from .._executor import Executor
from .._types import RecordId
from ..memory import forget, memory_id
from ..memory._recall_index import refresh_index

__all__ = [
    "IndexUpkeep",
    "WriteOutcome",
    "model_of",
    "new_scope",
    "owned_row",
    "owned_write_query",
    "write_owned",
]

_SUPERSEDED: Final = "superseded: its owner was overwritten or deleted"

_INSERT: Final = """\
IF $rows != [] {{ INSERT INTO memory $rows RETURN NONE }};
IF $vectors > 0 {{ UPDATE embedding_space:active SET unindexed += $vectors RETURN NONE }};
IF $written != [] {{
    {upsert}
}};
"""


def owned_write_query(*, upsert: str, written: str, all_targets: str, by: str) -> str:
    """The transaction writing owners (their table's constants are ours, never input).

    Parameters: ``$rows`` (memory rows), ``$vectors`` (how many of them carry an embedding:
    the space's ``unindexed`` counter grows by it), ``$deletes`` (owners deleted besides those
    written; ``NONE``: those ``all_targets`` selects), ``$now``, and the door's own.
    ``written`` is the expression of the ids of the owners written, ``upsert`` the statement
    writing them (each with ``memories``). Returns ``{hidden, removed}``: hidden memories to
    forget first, and how many owners went. What the engine can derive (the owners' ids, a
    document from its memory row) is not sent: every value sent costs the client's encoder
    more than the engine's deriving it."""
    insert = _INSERT.format(upsert=upsert.strip())
    # New owners only (a put of new items, an add of new documents): nothing to replace, so
    # the rest is not evaluated. The owners stored among those written are found by one SELECT
    # over their ids: a closure calling record::exists per id costs the engine several times
    # more.
    return f"""
BEGIN;
LET $written = {written};
IF $deletes = [] AND (SELECT VALUE id FROM $written) = [] {{
{textwrap.indent(insert, "    ")}    {{ hidden: [], removed: 0 }}
}} ELSE {{
    LET $targets = array::concat($written, $deletes ?? ({all_targets}));
    LET $old = array::flatten($targets.map(|$t| $t.memories ?? []))
        .filter(|$m| record::exists($m));
    LET $gone = array::complement($deletes ?? $targets, $written);
    IF $old = [] AND $gone.filter(|$t| record::exists($t)) = [] {{
{textwrap.indent(insert, "        ")}        {{ hidden: [], removed: 0 }}
    }} ELSE {{
        LET $hidden = $old.filter(|$m| $m.invalidated_at != NONE);
        LET $cited = $old.filter(|$m| array::len($m<-?) > 0);
        LET $drop = array::complement($old, $cited);
        LET $edges = array::distinct(array::flatten($drop.map(|$m|
            array::union($m->?.id, $m<-?.id))));
        LET $gone = $gone.filter(|$t| record::exists($t));
        IF $hidden = [] {{
            IF $edges != [] {{ DELETE $edges }};
            IF $drop != [] {{ DELETE $drop }};
            FOR $m IN $cited {{
                CREATE type::record('source_invalidation', [$m]) SET source = $m,
                    cascade = false, reason = '{_SUPERSEDED}', by = '{by}', at = $now,
                    memories = 1 RETURN NONE;
            }};
            IF $cited != [] {{
                UPDATE $cited SET invalidated_at = $now, invalidated_reason = '{_SUPERSEDED}',
                    invalidated_by = '{by}', invalidated_causes = [id],
                    embedding_stash = embedding, embedding = NONE RETURN NONE;
            }};
            IF $gone != [] {{ DELETE $gone }};
{textwrap.indent(insert, "            ")}        }};
        {{ hidden: $hidden, removed: IF $hidden = [] {{ array::len($gone) }} ELSE {{ 0 }} }}
    }}
}};
COMMIT;
"""


class WriteOutcome(BaseModel):
    """What an owned write did: the hidden memories it stopped at, how many owners went."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    hidden: list[RecordId]
    removed: int


def model_of(embeddings: Any, door: str) -> str:
    """The model name an embeddings object gives (its ``model`` or ``model_name``), else
    ``door:ClassName``: what the store's embedding space records for it."""
    for attr in ("model", "model_name"):
        name = getattr(embeddings, attr, None)
        if isinstance(name, str) and name:
            return name
    return f"{door}:{type(embeddings).__name__}"


def new_scope(prefix: str) -> str:
    """A memory scope of its own for one write of one owner."""
    return f"{prefix}:{secrets.token_hex(16)}"


def owned_row(
    *,
    scope: str,
    content: str,
    key: str | None,
    kind: str,
    tags: Sequence[str],
    metadata: Mapping[str, Any],
    embedding: Sequence[float] | None,
    embedding_model: str | None,
    now: dt.datetime,
    valid_until: dt.datetime | None = None,
    agent: str | None = None,
) -> dict[str, Any]:
    """A memory row as ``INSERT INTO memory`` takes it (checked input, built in Python: a
    closure per row carrying a vector costs the engine far more)."""
    row: dict[str, Any] = {
        "id": RecordId("memory", memory_id(scope, content)),
        "scope": scope,
        "kind": kind,
        "content": content,
        "content_hash": hashlib.sha256(content.encode()).hexdigest(),
        "tags": list(tags),
        "metadata": dict(metadata),
        "created_at": now,
        "valid_from": now,
    }
    if key is not None:
        row["key"] = key
    if embedding is not None:
        # One CBOR value, as remember_many sends it: the client's encoder would otherwise walk
        # every number of every vector (the field's VALUE stores either form alike).
        row["embedding"] = cbor2.dumps(list(embedding))
        row["embedding_model"] = embedding_model
    if valid_until is not None:
        row["valid_until"] = valid_until
    if agent is not None:
        row["agent"] = RecordId("agent", agent)
    return row


async def write_owned(
    db: Executor,
    query: str,
    *,
    rows: Sequence[Mapping[str, Any]],
    deletes: Sequence[RecordId] | None,
    now: dt.datetime,
    **params: Any,
) -> int:
    """Run an :func:`owned_write_query`; how many owners went. Retried after forgetting the
    hidden memories it stopped at (at most three times)."""
    vectors = sum(1 for r in rows if "embedding" in r)
    for _ in range(3):
        outcome = await db.query_required_single(
            query,
            WriteOutcome,
            idempotent=True,
            rows=list(rows),
            vectors=vectors,
            deletes=None if deletes is None else list(deletes),
            now=now,
            **params,
        )
        if not outcome.hidden:
            return outcome.removed
        await forget(db, memory=[str(h.key) for h in outcome.hidden])
    raise ConflictError("an owner's memories kept being hidden while it was written")


class IndexUpkeep:
    """As :func:`remember_many` does: the recall index catches up every ``every`` vectors
    written, so a long stream of writes is not left for the next recall to apply at once."""

    def __init__(self, every: int = 1000) -> None:
        self._every = every
        self._unchecked = 0

    async def wrote(self, db: Executor, vectors: int) -> None:
        """Count ``vectors`` written; check (and rebuild) when enough were."""
        self._unchecked += vectors
        if self._unchecked >= self._every:
            self._unchecked = 0
            await refresh_index(db)
