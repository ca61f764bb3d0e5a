"""The execution ledger: runs and their ordered, append-only events.

The database holds the rules (see ``schema/003_ledger.surql``): a run starts RUNNING and moves
once to COMPLETED, FAILED or CANCELLED; a finished run never changes; events go only to RUNNING
runs and are never changed or deleted. This module adds atomic sequence numbers: the store
assigns the next ``seq`` in the same transaction as the append, so concurrent appenders get
contiguous, unique numbers; a batch is all or nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._api import public
from ._errors import NotFoundError, ValidationError
from ._executor import Executor, present
from ._ids import digest, new_run_key
from ._types import Key, Model, RecordId, json_value

__all__ = [
    "NewEvent",
    "Run",
    "RunEvent",
    "RunStatus",
    "RunSummary",
    "append_event",
    "append_events",
    "cancel",
    "complete",
    "create_run",
    "events",
    "fail",
    "get_run",
    "list_runs",
]

RunStatus = Literal["RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,192}$")
_MAX_BATCH = 1000
_MAX_SEQ = 2**62


class RunSummary(Model):
    model_config = ConfigDict(frozen=True)

    total_events: int
    final_state_digest: str | None = None
    duration_ms: int
    success: bool


class Run(Model):
    model_config = ConfigDict(frozen=True)

    id: Key
    spec_digest: str
    git_sha: str | None = None
    agent_name: str
    tags: list[str]
    status: RunStatus
    summary: RunSummary | None = None
    created_at: dt.datetime
    completed_at: dt.datetime | None = None


class RunEvent(Model):
    model_config = ConfigDict(frozen=True)

    run_id: str
    seq: int
    kind: str
    payload: dict[str, Any]
    timestamp: dt.datetime


class NewEvent(Model):
    """An event to append: its kind (``graph_started``, ``tool_called``, ...) and payload."""

    kind: str
    payload: dict[str, Any] = Field(default_factory=dict)


_RUN_FIELDS = (
    "id, spec_digest, git_sha, agent_name, tags, status, summary, created_at, completed_at"
)
_EVENT_FIELDS = "record::id(run) AS run_id, seq, kind, payload, timestamp"


def _run_rid(run_id: str) -> RecordId:
    if not isinstance(run_id, str) or not _ID.match(run_id):
        raise ValidationError(f"invalid run id {run_id!r}: letters, digits, '_.:-', 1-192 chars")
    return RecordId("run", run_id)


def _digest(value: str, what: str) -> str:
    return digest(value, what=what)


def _new_events(events: Sequence[NewEvent | tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    if not events:
        raise ValidationError("append at least one event")
    if len(events) > _MAX_BATCH:
        raise ValidationError(f"append at most {_MAX_BATCH} events per batch")
    rows = []
    for ev in events:
        kind, payload = (ev.kind, ev.payload) if isinstance(ev, NewEvent) else ev
        if not isinstance(kind, str) or not kind:
            raise ValidationError("an event kind is a non-empty string")
        if not isinstance(payload, Mapping):
            raise ValidationError("an event payload is a JSON object")
        rows.append({"kind": kind, "payload": json_value(dict(payload), what="event payload")})
    return rows


# -- runs ----------------------------------------------------------------------------------------

_CREATE = f"""
BEGIN;
LET $created = (CREATE ONLY $run CONTENT $content RETURN {_RUN_FIELDS});
CREATE $counter SET next = 1 RETURN NONE;
RETURN $created;
COMMIT;
"""


@public
async def create_run(
    db: Executor,
    *,
    spec_digest: str,
    agent_name: str,
    git_sha: str | None = None,
    tags: Sequence[str] = (),
    run_id: str | None = None,
) -> Run:
    """Start a run (RUNNING, no summary). ``run_id`` defaults to a new UUID; a taken id is
    ``AlreadyExistsError``.

    An agent's runs are its own: their ids start with its id and ``:`` (the default is
    ``AGENT:<uuid>``), so that no id it names is another agent's run; any other id is
    :class:`PermissionDeniedError`, whether or not a run has it."""
    if not isinstance(agent_name, str) or not agent_name:
        raise ValidationError("agent_name is a non-empty string")
    if any(not isinstance(t, str) for t in tags):
        raise ValidationError("tags are strings")
    content: dict[str, Any] = {
        "spec_digest": _digest(spec_digest, "spec digest"),
        "agent_name": agent_name,
        "tags": list(tags),
    }
    if git_sha is not None:
        content["git_sha"] = git_sha
    key = run_id or new_run_key(db)
    return await db.query_required_single(
        _CREATE, Run, run=_run_rid(key), counter=RecordId("run_seq", key), content=content
    )


_GET = f"SELECT {_RUN_FIELDS} FROM ONLY $run;"


@public
async def get_run(db: Executor, *, run_id: str) -> Run:
    """The run; ``NotFoundError`` if there is none."""
    return present(await db.query_single(_GET, Run, run=_run_rid(run_id)), f"no run {run_id!r}")


_FINISH = f"""
BEGIN;
LET $r = (SELECT status, created_at FROM ONLY $run);
IF $r = NONE {{ THROW 'not_found: no run ' + $run_id }};
LET $count = count(SELECT id FROM run_event:[$run_id, 1]..=[$run_id, {_MAX_SEQ}]);
UPDATE $run SET status = $status, completed_at = time::now(), summary = {{
    total_events: $total_events ?? $count,
    final_state_digest: $final_state_digest,
    duration_ms: $duration_ms ?? duration::millis(time::now() - $r.created_at),
    success: $success ?? ($status = 'COMPLETED')
}} RETURN NONE;
SELECT {_RUN_FIELDS} FROM ONLY $run;
COMMIT;
"""


async def _finish(
    db: Executor,
    run_id: str,
    status: RunStatus,
    *,
    final_state_digest: str | None,
    duration_ms: int | None,
    total_events: int | None,
    success: bool | None,
) -> Run:
    return await db.query_required_single(
        _FINISH,
        Run,
        run=_run_rid(run_id),
        run_id=run_id,
        status=status,
        final_state_digest=final_state_digest,
        duration_ms=duration_ms,
        total_events=total_events,
        success=success,
    )


@public
async def complete(
    db: Executor,
    *,
    run_id: str,
    final_state_digest: str | None = None,
    duration_ms: int | None = None,
    total_events: int | None = None,
    success: bool | None = None,
) -> Run:
    """RUNNING -> COMPLETED with a summary (events counted and duration measured by the
    database unless given). A run that is not RUNNING is refused (``ConstraintError``)."""
    return await _finish(
        db,
        run_id,
        "COMPLETED",
        final_state_digest=final_state_digest,
        duration_ms=duration_ms,
        total_events=total_events,
        success=success,
    )


@public
async def fail(
    db: Executor,
    *,
    run_id: str,
    final_state_digest: str | None = None,
    duration_ms: int | None = None,
    total_events: int | None = None,
) -> Run:
    """RUNNING -> FAILED with a summary (``success`` false)."""
    return await _finish(
        db,
        run_id,
        "FAILED",
        final_state_digest=final_state_digest,
        duration_ms=duration_ms,
        total_events=total_events,
        success=False,
    )


@public
async def cancel(db: Executor, *, run_id: str) -> Run:
    """RUNNING -> CANCELLED with a summary (``success`` false)."""
    return await _finish(
        db,
        run_id,
        "CANCELLED",
        final_state_digest=None,
        duration_ms=None,
        total_events=None,
        success=False,
    )


_LIST = f"""
SELECT {_RUN_FIELDS} FROM run
WHERE ($spec_digest = NONE OR spec_digest = $spec_digest)
  AND ($agent_name = NONE OR agent_name = $agent_name)
  AND ($status = NONE OR status = $status)
  AND ($since = NONE OR created_at >= $since)
  AND ($until = NONE OR created_at < $until)
ORDER BY created_at DESC, id DESC
LIMIT $limit START $offset;
"""


@public
async def list_runs(
    db: Executor,
    *,
    spec_digest: str | None = None,
    agent_name: str | None = None,
    status: RunStatus | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Run]:
    """Runs, newest first, filtered by any of spec digest, agent, status and a creation time
    range ``[since, until)``; one page of ``limit`` from ``offset``."""
    if not 1 <= limit <= 10_000 or offset < 0:
        raise ValidationError("limit is 1..10000 and offset >= 0")
    if status is not None and status not in ("RUNNING", "COMPLETED", "FAILED", "CANCELLED"):
        raise ValidationError(f"unknown status {status!r}")
    return await db.query(
        _LIST,
        Run,
        spec_digest=_digest(spec_digest, "spec digest") if spec_digest is not None else None,
        agent_name=agent_name,
        status=status,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


# -- events --------------------------------------------------------------------------------------

# The shared body of both appends: refuse unknown and finished runs, replay an idempotent
# append, else take the next seqs from the run's counter and insert the events, all in one
# transaction. Explicit seqs (single appends) must be free: the insert fails on a taken one.
_APPEND_BODY = """
BEGIN;
LET $r = (SELECT status FROM ONLY $run);
IF $r = NONE { THROW 'not_found: no run ' + $run_id };
LET $next = (SELECT VALUE next FROM ONLY $counter);
LET $prev = IF $key = NONE { NONE }
    ELSE { (SELECT first_seq, count FROM ONLY type::record('run_append', [$run_id, $key])) };
LET $start = IF $prev != NONE { $prev.first_seq } ELSE { $seq ?? $next };
LET $n = IF $prev != NONE { $prev.count } ELSE { array::len($events) };
IF $prev = NONE {
    IF $r.status != 'RUNNING' {
        THROW 'invalid: run ' + $run_id + ' is ' + $r.status + '; events go only to RUNNING runs';
    };
    UPDATE $counter SET next = math::max([next, $start + $n]) RETURN NONE;
    IF $key != NONE {
        CREATE type::record('run_append', [$run_id, $key]) SET first_seq = $start, count = $n
            RETURN NONE;
    };
    INSERT INTO run_event array::map($events, |$e, $i| {
        id: [$run_id, $start + $i], run: $run, seq: $start + $i, kind: $e.kind,
        payload: $e.payload
    }) RETURN NONE;
};
"""
_APPEND_ONE = (
    _APPEND_BODY
    + f"SELECT {_EVENT_FIELDS} FROM ONLY type::record('run_event', [$run_id, $start]);\nCOMMIT;"
)
_APPEND_MANY = _APPEND_BODY + "RETURN { first_seq: $start, count: $n };\nCOMMIT;"

# The common single append (store-assigned seq, no idempotency key) in two statements; the
# event table's guard refuses an event for a run that is not RUNNING.
_APPEND_NEXT = f"""
BEGIN;
LET $seq = (UPDATE ONLY $counter SET next += 1 RETURN VALUE $before.next);
IF $seq = NONE {{ THROW 'not_found: no run ' + $run_id }};
CREATE ONLY type::record('run_event', [$run_id, $seq]) CONTENT {{
    run: $run, seq: $seq, kind: $kind, payload: $payload
}} RETURN {_EVENT_FIELDS};
COMMIT;
"""


@public
async def append_event(
    db: Executor,
    *,
    run_id: str,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    seq: int | None = None,
    idempotency_key: str | None = None,
) -> RunEvent:
    """Append one event. The store assigns the next ``seq`` atomically; an explicit ``seq`` is
    accepted if it is free (``AlreadyExistsError`` otherwise), so events may arrive out of
    order. Retrying with the same ``idempotency_key`` returns the first append's event."""
    rows = _new_events([(kind, payload or {})])
    if seq is not None and (not isinstance(seq, int) or not 1 <= seq < _MAX_SEQ):
        raise ValidationError(f"seq must be an integer from 1, not {seq!r}")
    if seq is None and idempotency_key is None:
        return await db.query_required_single(
            _APPEND_NEXT,
            RunEvent,
            run=_run_rid(run_id),
            counter=RecordId("run_seq", run_id),
            run_id=run_id,
            **rows[0],
        )
    return await db.query_required_single(
        _APPEND_ONE,
        RunEvent,
        run=_run_rid(run_id),
        counter=RecordId("run_seq", run_id),
        run_id=run_id,
        events=rows,
        seq=seq,
        key=_idempotency_key(idempotency_key),
        idempotent=idempotency_key is not None,
    )


class _Appended(BaseModel):
    first_seq: int
    count: int


@public
async def append_events(
    db: Executor,
    *,
    run_id: str,
    events: Sequence[NewEvent | tuple[str, Mapping[str, Any]]],
    idempotency_key: str | None = None,
) -> list[int]:
    """Append up to 1,000 events at once, all or nothing, with contiguous store-assigned seqs;
    returns the seqs. Retrying with the same ``idempotency_key`` returns the first append's
    seqs and appends nothing."""
    done = await db.query_required_single(
        _APPEND_MANY,
        _Appended,
        run=_run_rid(run_id),
        counter=RecordId("run_seq", run_id),
        run_id=run_id,
        events=_new_events(events),
        seq=None,
        key=_idempotency_key(idempotency_key),
        idempotent=idempotency_key is not None,
    )
    return list(range(done.first_seq, done.first_seq + done.count))


def _idempotency_key(key: str | None) -> str | None:
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 256):
        raise ValidationError("an idempotency key is a string of 1-256 characters")
    return key


_EVENTS = f"""
SELECT {_EVENT_FIELDS} FROM run_event:[$run_id, $from_seq]..=[$run_id, {_MAX_SEQ}]
LIMIT $limit;
"""
_RUN_EXISTS = "RETURN record::exists($run);"


@public
async def events(
    db: Executor, *, run_id: str, from_seq: int = 1, limit: int | None = None
) -> list[RunEvent]:
    """The run's events ordered by ``seq``, from ``from_seq`` on (a replay), at most
    ``limit``. Reads a key range, not the table."""
    rid = _run_rid(run_id)
    if not isinstance(from_seq, int) or from_seq < 1:
        raise ValidationError("from_seq is an integer from 1")
    if limit is not None and limit < 1:
        raise ValidationError("limit is at least 1")
    rows = await db.query(
        _EVENTS,
        RunEvent,
        run_id=run_id,
        from_seq=from_seq,
        limit=limit if limit is not None else _MAX_SEQ,
    )
    if not rows and not await db.query_required_single(_RUN_EXISTS, bool, run=rid):
        raise NotFoundError(f"no run {run_id!r}")
    return rows
