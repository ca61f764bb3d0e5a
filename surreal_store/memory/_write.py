"""Writing memories: remember one or many, invalidate and restore one, forget."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import anyio
import cbor2

from .. import _facts, _invalidation, _retry
from .. import branches as _branches
from .._api import agent_refusal, public
from .._client import Store
from .._errors import AlreadyExistsError, DimensionError, NotFoundError, ValidationError
from .._executor import Executor
from .._ids import commit_key, memory_key
from .._surql import as_array
from .._types import RecordId, check_text, json_value
from ._checks import MAX_BATCH, check_positive, check_tags, check_utc, check_vector
from ._embedders import Embedder, check_embedder, embed_texts
from ._models import (
    DEFAULT_SCOPE,
    FIELDS,
    EmbeddingSpace,
    ForgetReceipt,
    Memory,
    NewMemory,
    RememberManyResult,
    memory_id,
)
from ._reads import get
from ._recall_index import refresh_index
from ._space import required_space, writing_space

__all__ = [
    "forget",
    "invalidate",
    "remember",
    "remember_many",
    "restore",
    "write_batch_size",
]

log = logging.getLogger("surreal_store.memory")

# The in-memory engine (mem://) writes a bulk load faster in 100-row statements than in
# 1,000-row ones; on surrealkv 1,000-row statements are the fastest (docs/design.md,
# "Measurements").
_MEM_BATCH: Final = 100


def write_batch_size(db: Executor) -> int:
    """How many memories one write statement should carry on ``db``'s engine."""
    return _MEM_BATCH if isinstance(db, Store) and db.settings.is_in_memory else MAX_BATCH


_COMMIT_OF_BRANCH = """
LET $head = type::record('branch', $branch ?? '-').head;
IF $branch != NONE AND $head = NONE { THROW 'not_found: no branch ' + $branch };
LET $commit = $head ?? $commit;
"""

# A memory not stored yet is created; the same content in the same scope is the existing
# memory, returned as it is. (Not INSERT IGNORE: it would also swallow the schema guard's
# refusals.)
_CREATE = """
LET $space_model = embedding_space:active.model;
LET $emb_model = IF $embedding = NONE { NONE } ELSE { $embedder_model ?? $space_model };
IF !record::exists($id) {
    CREATE ONLY $id CONTENT {
        scope: $scope, agent: $agent, key: $key, kind: $kind, content: $content,
        content_hash: $hash, tags: $tags, metadata: $metadata, commit: $commit,
        embedding: $embedding, embedding_model: $emb_model,
        valid_from: $valid_from ?? time::now(), valid_until: $valid_until
    } RETURN NONE;
};
"""


def _remember_query(*, attaching: bool) -> str:
    # One transaction: a THROW outside one would not stop the statements after it.
    attach = _facts.ATTACH_BLOCK if attaching else ""
    return f"BEGIN;\n{_COMMIT_OF_BRANCH}{_CREATE}{attach}SELECT {FIELDS} FROM ONLY $id;\nCOMMIT;"


_REMEMBER: Final = _remember_query(attaching=False)
_REMEMBER_ATTACHING: Final = _remember_query(attaching=True)


def _row(
    *,
    content: str,
    scope: str,
    key: str | None,
    kind: str,
    tags: Iterable[str],
    metadata: Mapping[str, Any] | None,
    embedding: Any,
    commit: str | None,
    agent: str | None,
    valid_from: dt.datetime | None,
    valid_until: dt.datetime | None,
) -> dict[str, Any]:
    check_text(content, "content", empty=True)
    check_text(scope, "scope", limit=512)
    if key is not None:
        check_text(key, "key")
    check_text(kind, "kind", limit=128)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValidationError("metadata must be a mapping")
    vf, vu = check_utc(valid_from, "valid_from"), check_utc(valid_until, "valid_until")
    if vf is not None and vu is not None and vu < vf:
        raise ValidationError("valid_until is before valid_from")
    return {
        "id": RecordId("memory", memory_id(scope, content)),
        "scope": scope,
        "agent": RecordId("agent", check_text(agent, "agent")) if agent is not None else None,
        "key": key,
        "kind": kind,
        "content": content,
        "hash": hashlib.sha256(content.encode()).hexdigest(),
        "tags": check_tags(tags),
        "metadata": json_value(dict(metadata or {}), what="metadata"),
        "commit": RecordId("commit", commit_key(commit)) if commit else None,
        "embedding": check_vector(embedding) if embedding is not None else None,
        "valid_from": vf,
        "valid_until": vu,
    }


def _check_branch_reader(db: Executor, branch: str | None) -> None:
    """``branch=`` reads the branch's head, and branches are closed to agents: an agent's
    sign-in is refused as :func:`surreal_store.branches.head` refuses it, before anything is
    sent (the engine would hide the branch, which would read as absent)."""
    refused = agent_refusal(db, "branches", "head") if branch is not None else None
    if refused is not None:
        raise refused


@public
async def remember(
    db: Executor,
    *,
    content: str,
    scope: str = DEFAULT_SCOPE,
    key: str | None = None,
    kind: str = "note",
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    embedding: Sequence[float] | None = None,
    embedder: Embedder | None = None,
    commit: str | None = None,
    branch: str | None = None,
    agent: str | None = None,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    provenance: Sequence[Any] = (),
) -> Memory:
    """Store a memory and return it; the same content in the same scope returns the existing
    memory unchanged.

    ``provenance`` lists where it came from (:mod:`surreal_store.provenance` facts: run trace,
    state snapshot, user annotation, memory derivation); they are recorded in the same
    transaction, and checked before it.

    ``embedding`` must match the store's space (or pass ``embedder`` to embed ``content``; on a
    store with no space yet, the embedder's model and dimension become the store's space).
    ``branch`` attaches the memory to that branch's head commit. A wrong dimension raises
    :class:`DimensionError` and a foreign model :class:`EmbeddingSpaceError`; nothing is written.
    """
    if commit is not None and branch is not None:
        raise ValidationError("give commit= or branch=, not both")
    _check_branch_reader(db, branch)
    if embedder is not None and embedding is not None:
        raise ValidationError("give embedding= or embedder=, not both")
    row = _row(
        content=content, scope=scope, key=key, kind=kind, tags=tags, metadata=metadata,
        embedding=embedding, commit=commit, agent=agent, valid_from=valid_from,
        valid_until=valid_until,
    )  # fmt: skip
    model: str | None = None
    if embedder is not None:
        # Checked first, so that a refused memory declares no space.
        space = await writing_space(db, embedder)
        (row["embedding"],) = await embed_texts(embedder, [content], space.index_dimension)
        model = embedder.model
    text = _REMEMBER
    if provenance:
        facts = [_facts.parse_provenance(p) for p in provenance]
        text = _REMEMBER_ATTACHING
        row.update(_facts.attach_params(row["id"], facts))
    return await db.query_required_single(
        text,
        Memory,
        idempotent=True,  # a fixed id and INSERT IGNORE: replaying cannot duplicate
        branch=_branches.validate_name(branch) if branch is not None else None,
        embedder_model=model,
        **row,
    )


# Rows come complete from Python (commit, model); the database skips the ids it already has.
# The ids it has are found by one SELECT over them (cheaper than a closure per id); the rows
# themselves (hundreds of floats each) are filtered only when some exist.
# Vectors arrive as CBOR bytes (cbor2's C encoder, float64: exact), which the field takes as
# they are (schema 019), rather than through the SDK's pure-Python encoder.
_REMEMBER_MANY = """
BEGIN;
LET $have = (SELECT VALUE id FROM $ids);
INSERT INTO memory (IF $have = [] { $rows } ELSE { $rows.filter(|$r| $r.id NOTINSIDE $have) })
    RETURN NONE;
array::len($have);
COMMIT;
"""


class _Follower:
    """Catches the recall index up while a bulk write goes on: the engine writes the next
    batch while the index reads and applies the last ones (the graph's insertions release the
    GIL), so the index is nearly current when the last batch is acknowledged. Best effort:
    the catch-up after the writes is the one whose failure is reported."""

    def __init__(self, db: Executor) -> None:
        self.db = db
        self.wake = anyio.Event()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True
        self.wake.set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            if self.stopped:
                return
            self.wake = anyio.Event()
            try:
                if await refresh_index(self.db) is None:
                    return  # this session keeps no index
            except Exception as exc:
                # Not raised from here (a task group would wrap it): the catch-up after the
                # writes does the same work and raises whatever it meets as itself.
                log.debug("catching the recall index up during a bulk write: %r", exc)
                return


@public
async def remember_many(
    db: Executor,
    items: Sequence[NewMemory],
    *,
    commit: str | None = None,
    branch: str | None = None,
    embedder: Embedder | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], Awaitable[None] | None] | None = None,
    rebuild: bool | None = None,
) -> RememberManyResult:
    """Store many memories in batches of at most ``batch_size`` (≤ 1,000) rows per statement.

    Every item is checked (and embedded, when ``embedder`` is given and an item has no
    embedding) before the first batch is written, so bad input writes nothing. ``commit`` /
    ``branch`` apply to items that name no commit. ``progress(done, total)`` is called after
    each batch.

    Afterwards the recall index catches up with the new memories, so that the next recall
    answers at full speed; ``rebuild=False`` leaves that to the next recall (which finds every
    acknowledged memory either way).
    """
    if batch_size is None:
        batch_size = write_batch_size(db)
    check_positive(batch_size, "batch_size", limit=MAX_BATCH)
    if commit is not None and branch is not None:
        raise ValidationError("give commit= or branch=, not both")
    _check_branch_reader(db, branch)
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, NewMemory):
            raise ValidationError(f"item {i} is not a NewMemory")
        try:
            # The fields as they are: model_dump would copy every vector, element by element.
            row = _row(**dict(item))
        except ValidationError as exc:
            raise ValidationError(f"item {i}: {exc}") from None
        row["content_hash"] = row.pop("hash")
        rows.append(row)
    ids = [str(r["id"].key) for r in rows]
    space: EmbeddingSpace | None = None
    if embedder is not None:
        space = await writing_space(db, embedder)
    elif any(r["embedding"] is not None for r in rows):
        space = await required_space(db)
    if space is not None:
        for i, r in enumerate(rows):
            if r["embedding"] is not None and len(r["embedding"]) != space.index_dimension:
                raise DimensionError(
                    f"item {i}: the embedding has {len(r['embedding'])} dimensions; the store's "
                    f"space {space.writing_model} has {space.index_dimension}"
                )
    # Repeats within the call are one memory: the first occurrence is stored.
    rows = list({r["id"]: r for r in reversed(rows)}.values())[::-1]
    if embedder is not None and space is not None:
        check_embedder(embedder, space)
        todo = [r for r in rows if r["embedding"] is None]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            vectors = await embed_texts(
                embedder, [r["content"] for r in chunk], space.index_dimension
            )
            for r, v in zip(chunk, vectors, strict=True):
                r["embedding"] = v
    model = space.writing_model if space is not None else None
    default_commit = None
    if branch is not None:
        head = await _branches.head(db, name=branch)
        if head is None:
            raise NotFoundError(f"no branch {branch}")
        default_commit = RecordId("commit", head)
    elif commit is not None:
        default_commit = RecordId("commit", commit_key(commit))
    for r in rows:
        if r["commit"] is None:
            r["commit"] = default_commit
        if r["embedding"] is not None:
            r["embedding_model"] = model
            r["embedding"] = cbor2.dumps(r["embedding"])
        for name in ("agent", "commit", "embedding", "valid_from", "valid_until", "key"):
            if r[name] is None:
                del r[name]  # absent, so the schema's defaults apply
    inserted = 0
    batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    follower = _Follower(db) if rebuild is not False and len(batches) > 1 else None
    failure: list[Exception] = []
    async with anyio.create_task_group() as tg:
        if follower is not None:
            tg.start_soon(follower.run)
        try:
            done = 0
            for batch in batches:
                batch_ids = [r["id"] for r in batch]
                # Another writer may store some of the same content between the existence
                # check and the insert (servers only; embedded writes are serialised): the
                # second try skips it.
                had = await _retry.again(
                    functools.partial(
                        db.query_required_single,
                        _REMEMBER_MANY,
                        int,
                        idempotent=True,
                        rows=batch,
                        ids=batch_ids,
                    ),
                    on=(AlreadyExistsError,),
                    attempts=2,
                )
                inserted += len(batch) - had
                done += len(batch)
                if follower is not None:
                    follower.wake.set()
                if progress is not None:
                    maybe = progress(done, len(rows))
                    if maybe is not None:
                        await maybe
        except Exception as exc:  # raised below as itself, not inside an exception group
            failure.append(exc)
        if follower is not None:
            follower.stop()
    if failure:
        raise failure[0]
    if rebuild is not False and inserted:
        await refresh_index(db)
    return RememberManyResult(ids=ids, inserted=inserted)


@public
async def invalidate(db: Executor, *, memory: str, reason: str, by: str | None = None) -> Memory:
    """Hide one memory (recall then skips it by default), unlike
    :func:`provenance.invalidate <surreal_store.provenance.invalidate>`, which also hides
    what was derived from it. Invalidating it again keeps the first record of it; a memory
    hidden for other causes gains this one. Undone by :func:`restore`."""
    key = memory_key(memory)
    rid = RecordId("memory", key)
    await _invalidation.add_cause(
        db,
        memory=rid,
        cascade=False,
        reason=check_text(reason, "reason"),
        by=check_text(by, "by") if by is not None else None,
    )
    return await get(db, memory=key)


@public
async def restore(db: Executor, *, memory: str) -> Memory:
    """Undo :func:`invalidate` (or a provenance invalidation of this memory): the memory stops
    being a cause anywhere. It becomes visible unless another standing cause (a distrusted
    source or memory upstream of it) still hides it; the memory is returned either way."""
    key = memory_key(memory)
    await _invalidation.remove_cause(db, memory=RecordId("memory", key), must_exist=True)
    return await get(db, memory=key)


# Purging deletes the memories, every edge touching them and their own distrust; what was
# derived from them ($recompute) no longer is, so its causes are recomputed from the graph.
# Soft forgetting hides each memory by its own distrust.
# The subject's memories are made a list (as_array) before they are used as one.
_HIDDEN = (
    "LET $ids = $ids ?? (SELECT VALUE id FROM memory WHERE scope = $scope AND key = $key);\n"
    + as_array("$ids")
    + "SELECT VALUE id FROM $ids WHERE invalidated_at != NONE;\n"
)
_FORGET = (
    """
BEGIN;
LET $ids = IF $ids != NONE { $ids.filter(|$i| record::exists($i)) }
    ELSE { (SELECT VALUE id FROM memory WHERE scope = $scope AND key = $key) };
"""
    + as_array("$ids")
    + """LET $edges = array::distinct(array::flatten(
    (SELECT VALUE array::union(->?.id, <-?.id) FROM $ids)
));
IF $purge {
    -- The memories first: their edges go with them (an observation link is deleted only
    -- with its memory or its entity, schema 028), then any edge left.
    DELETE $ids;
    DELETE $edges;
    DELETE $ids.map(|$i| type::record('source_invalidation', [$i]));
} ELSE {
    FOR $i IN $ids {
        IF !record::exists(type::record('source_invalidation', [$i])) {
            CREATE type::record('source_invalidation', [$i]) SET source = $i, cascade = false,
                reason = $reason, by = $by, at = time::now(), memories = 1 RETURN NONE;
        };
    };
    UPDATE $ids SET invalidated_causes = array::union(invalidated_causes ?? [], [id])
        WHERE invalidated_at != NONE RETURN NONE;
    UPDATE $ids SET invalidated_at = time::now(), invalidated_reason = $reason,
        invalidated_by = $by, invalidated_causes = [id],
        embedding_stash = embedding, embedding = NONE
        WHERE invalidated_at = NONE RETURN NONE;
};
LET $recompute = IF $purge { array::complement($derived, $ids) } ELSE { [] };
"""
    + _invalidation.recompute_causes_block()
    + """
{ memories: $ids.map(|$i| record::id($i)), edges: $edges.map(|$e| <string>$e) };
COMMIT;
"""
)


@public
async def forget(
    db: Executor,
    *,
    memory: str | Sequence[str] | None = None,
    key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    purge: bool = True,
    reason: str = "forgotten",
    by: str | None = None,
) -> ForgetReceipt:
    """Remove one memory (``memory=`` an id, or a list of ids) or every memory about a subject
    (``key=`` in ``scope``, across all commits), with every graph edge touching them, in one
    transaction.

    ``purge=False`` invalidates instead of deleting (edges stay). The receipt lists what was
    affected; forgetting what is not there returns an empty receipt.
    """
    if (memory is None) == (key is None):
        raise ValidationError("give exactly one of memory= or key=")
    ids: list[RecordId] | None = None
    if isinstance(memory, str):
        ids = [RecordId("memory", memory_key(memory))]
    elif memory is not None:
        if not isinstance(memory, Sequence):
            raise ValidationError("memory= is an id or a list of ids")
        ids = [RecordId("memory", memory_key(m)) for m in memory]
    if key is not None:
        check_text(key, "key")
    check_text(scope, "scope")
    if by is not None:
        check_text(by, "by")
    derived: list[RecordId] = []
    if purge:
        # What derives from a hidden memory holds its causes through it, and loses them with
        # it; a visible memory passes no cause down, so only hidden ones need the walk.
        hidden = await db.query(_HIDDEN, RecordId, ids=ids, scope=scope, key=key, idempotent=True)
        if hidden:
            derived = await _invalidation.derived(db, memories=hidden)
    receipt = await db.query_required_single(
        _FORGET,
        dict,
        ids=ids,
        derived=derived,
        key=key,
        scope=scope,
        purge=purge,
        reason=check_text(reason, "reason"),
        by=by,
    )
    return ForgetReceipt(memories=receipt["memories"], edges=receipt["edges"], purged=purge)
