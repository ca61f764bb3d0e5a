"""CI records: content-addressed snapshots and pipeline specs, and CI runs with a stable id
and legal status transitions (``schema/005_ci.surql`` refuses the others)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict

from ._api import public
from ._errors import ValidationError
from ._executor import Executor, present
from ._ids import HEX64
from ._types import Key, Model, RecordId, canonical_json

__all__ = [
    "CiRun",
    "CiStatus",
    "cancel_run",
    "canonical_digest",
    "finish_run",
    "get_pipeline",
    "get_run",
    "get_snapshot",
    "list_runs",
    "queue_run",
    "run_id_for",
    "save_pipeline",
    "save_snapshot",
    "start_run",
]

CiStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class CiRun(Model):
    model_config = ConfigDict(frozen=True)

    id: Key
    snapshot: Key
    pipeline: Key
    status: CiStatus
    result: dict[str, Any] | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


_FIELDS = "id, snapshot, pipeline, status, result, created_at, started_at, finished_at"


def _canonical(content: Mapping[str, Any], what: str) -> str:
    if not isinstance(content, Mapping):
        raise ValidationError(f"a {what} is a JSON object")
    return canonical_json(dict(content), what=what)


@public
def canonical_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces) of ``content``."""
    return hashlib.sha256(_canonical(content, "document").encode("utf-8")).hexdigest()


def _digest(value: str, what: str) -> str:
    if not isinstance(value, str) or not HEX64.match(value):
        raise ValidationError(f"invalid {what} digest {value!r}")
    return value.lower()


@public
def run_id_for(snapshot: str, pipeline: str) -> str:
    """The stable id of the CI run of ``pipeline`` on ``snapshot``."""
    s, p = _digest(snapshot, "snapshot"), _digest(pipeline, "pipeline")
    return hashlib.sha256(f"{s}:{p}".encode()).hexdigest()


# INSERT INTO takes no table expression: one query per table (the two names are fixed here).
_SAVE = {
    table: f"INSERT IGNORE INTO {table} [{{ id: $id, content_json: $content_json }}] RETURN NONE;"
    for table in ("ci_snapshot", "ci_pipeline")
}


async def _save(db: Executor, table: str, content: Mapping[str, Any]) -> str:
    text = _canonical(content, table.removeprefix("ci_"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    await db.execute(_SAVE[table], id=RecordId(table, digest), content_json=text, idempotent=True)
    return digest


@public(agents=False)
async def save_snapshot(db: Executor, *, content: Mapping[str, Any]) -> str:
    """Store a snapshot (once) and return its digest; saving it again is a no-op."""
    return await _save(db, "ci_snapshot", content)


@public(agents=False)
async def save_pipeline(db: Executor, *, spec: Mapping[str, Any]) -> str:
    """Store a pipeline spec (once) and return its digest; saving it again is a no-op."""
    return await _save(db, "ci_pipeline", spec)


_LOAD = "SELECT VALUE content_json FROM ONLY $id;"


async def _load(db: Executor, table: str, digest: str) -> dict[str, Any]:
    text = present(
        await db.query_single(_LOAD, str, id=RecordId(table, _digest(digest, table))),
        f"no {table} {digest}",
    )
    content: dict[str, Any] = json.loads(text)
    return content


@public(agents=False)
async def get_snapshot(db: Executor, *, digest: str) -> dict[str, Any]:
    return await _load(db, "ci_snapshot", digest)


@public(agents=False)
async def get_pipeline(db: Executor, *, digest: str) -> dict[str, Any]:
    return await _load(db, "ci_pipeline", digest)


_QUEUE = f"""
BEGIN;
IF record::exists($id) = false {{
    CREATE $id SET snapshot = $snapshot, pipeline = $pipeline RETURN NONE;
}};
SELECT {_FIELDS} FROM ONLY $id;
COMMIT;
"""


@public(agents=False)
async def queue_run(db: Executor, *, snapshot: str, pipeline: str) -> CiRun:
    """Queue the run of ``pipeline`` on ``snapshot`` (both saved first), or return the existing
    run with that stable id."""
    key = run_id_for(snapshot, pipeline)
    return await db.query_required_single(
        _QUEUE,
        CiRun,
        id=RecordId("ci_run", key),
        snapshot=RecordId("ci_snapshot", snapshot.lower()),
        pipeline=RecordId("ci_pipeline", pipeline.lower()),
        idempotent=True,
    )


_MOVE = f"""
BEGIN;
IF record::exists($id) = false {{ THROW 'not_found: no CI run ' + record::id($id) }};
UPDATE $id SET status = $status, result = $result,
    started_at = IF $status = 'running' {{ time::now() }} ELSE {{ started_at }},
    finished_at = IF $status IN ['succeeded', 'failed', 'cancelled'] {{ time::now() }}
        ELSE {{ finished_at }}
    RETURN NONE;
SELECT {_FIELDS} FROM ONLY $id;
COMMIT;
"""


async def _move(
    db: Executor, run_id: str, status: CiStatus, result: Mapping[str, Any] | None
) -> CiRun:
    return await db.query_required_single(
        _MOVE,
        CiRun,
        id=RecordId("ci_run", _digest(run_id, "CI run")),
        status=status,
        result=dict(result) if result is not None else None,
    )


@public(agents=False)
async def start_run(db: Executor, *, run_id: str) -> CiRun:
    """queued -> running."""
    return await _move(db, run_id, "running", None)


@public(agents=False)
async def finish_run(
    db: Executor,
    *,
    run_id: str,
    status: Literal["succeeded", "failed"],
    result: Mapping[str, Any] | None = None,
) -> CiRun:
    """running -> succeeded | failed, with an optional result document."""
    if status not in ("succeeded", "failed"):
        raise ValidationError("a CI run finishes as 'succeeded' or 'failed'")
    return await _move(db, run_id, status, result)


@public(agents=False)
async def cancel_run(db: Executor, *, run_id: str) -> CiRun:
    """queued | running -> cancelled."""
    return await _move(db, run_id, "cancelled", None)


_GET = f"SELECT {_FIELDS} FROM ONLY $id;"


@public(agents=False)
async def get_run(db: Executor, *, run_id: str) -> CiRun:
    found = await db.query_single(_GET, CiRun, id=RecordId("ci_run", _digest(run_id, "CI run")))
    return present(found, f"no CI run {run_id}")


_LIST = f"SELECT {_FIELDS} FROM ci_run WHERE snapshot = $snapshot ORDER BY created_at, id;"


@public(agents=False)
async def list_runs(db: Executor, *, snapshot: str) -> list[CiRun]:
    """The CI runs of a snapshot, oldest first."""
    return await db.query(
        _LIST, CiRun, snapshot=RecordId("ci_snapshot", _digest(snapshot, "snapshot"))
    )
