"""Decisions: recording them with the memories they used, their outcomes, and success rates."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from .. import branches as _branches
from .._api import public
from .._errors import NotFoundError, ValidationError
from .._executor import Executor, present
from .._ids import commit_key, decision_key, memory_key, new_decision_key
from .._types import Key, Model, RecordId, json_value
from ..memory import RecallHit

__all__ = [
    "DECISION_FIELDS",
    "Decision",
    "SuccessRate",
    "UsedItem",
    "decisions_for_commit",
    "decisions_for_task",
    "fact_record",
    "get_decision",
    "record_decision",
    "record_outcome",
    "success_rates",
]


class Decision(Model):
    """A recorded decision; ``outcome`` / ``success`` / ``outcome_at`` once its outcome is in."""

    model_config = ConfigDict(frozen=True)

    id: Key
    task: str
    action: str
    rationale: str
    alternatives: list[str]
    confidence: float
    commit: Key | None = None
    agent: Key | None = None
    outcome: dict[str, Any] | None = None
    success: bool | None = None
    outcome_at: dt.datetime | None = None
    created_at: dt.datetime


DECISION_FIELDS = (
    "id, task, action, rationale, alternatives, confidence, commit, agent, outcome, success, "
    "outcome_at, created_at"
)

_RECORD_DECISION = f"""
BEGIN;
FOR $u IN $used {{
    IF !record::exists($u.out) {{
        THROW 'not_found: ' + record::tb($u.out) + ' ' + <string>record::id($u.out)
            + ' does not exist';
    }};
}};
CREATE ONLY $id CONTENT {{
    task: $task, action: $action, rationale: $rationale, alternatives: $alternatives,
    confidence: $confidence, commit: $commit, agent: $agent
}} RETURN NONE;
INSERT RELATION INTO used $used.map(|$u| object::extend($u, {{ in: $id }})) RETURN NONE;
SELECT {DECISION_FIELDS} FROM ONLY $id;
COMMIT;
"""


@runtime_checkable
class _FactLike(Protocol):
    """A fact of the knowledge graph (:class:`surreal_store.graph.Fact`), which this layer
    (below the graph's) knows by its shape."""

    @property
    def id(self) -> str: ...

    @property
    def predicate(self) -> str: ...

    @property
    def valid_from(self) -> dt.datetime: ...


_FACT_KEY = re.compile(r"^[0-9a-f]{32}$")

UsedItem = RecallHit | str | RecordId | _FactLike | tuple[Any, float | None]
"""An item of ``record_decision(used=...)``: a :class:`RecallHit`, a memory id, a fact (a
:class:`~surreal_store.graph.Fact` or ``fact:<key>``), or a ``(memory or fact, score)`` pair."""


def fact_record(value: Any) -> RecordId:
    """A fact's record from its key, ``fact:<key>`` or a record id (a 32-hex key stays a
    string, even one of digits only)."""
    if isinstance(value, RecordId):
        value = str(value)
    if not isinstance(value, str):
        raise ValidationError(f"invalid fact id {value!r}")
    key = value.removeprefix("fact:")
    if _FACT_KEY.match(key):
        return RecordId("fact", key)
    return RecordId.parse(value, table="fact")


def _used_target(value: Any) -> RecordId:
    """What a ``used`` item names: a memory (its id in any form) or a fact (a
    :class:`~surreal_store.graph.Fact`, ``fact:<key>``, its 32-hex key or a record id)."""
    if isinstance(value, RecallHit):
        return RecordId("memory", memory_key(value.memory.id))
    if isinstance(value, _FactLike) and not isinstance(value, str | RecordId):
        return fact_record(value.id)
    if isinstance(value, RecordId):
        if value.table == "fact":
            return fact_record(value)
        return RecordId("memory", memory_key(value))
    if isinstance(value, str) and (value.startswith("fact:") or _FACT_KEY.match(value)):
        return fact_record(value)
    return RecordId("memory", memory_key(value))


@public
async def record_decision(
    db: Executor,
    *,
    task: str,
    action: str,
    confidence: float,
    rationale: str = "",
    alternatives: Sequence[str] = (),
    used: Sequence[UsedItem] = (),
    commit: str | None = None,
    branch: str | None = None,
    agent: str | None = None,
) -> Decision:
    """Record a decision and the memories and facts it ``used``, in one transaction.

    ``used`` lists them best first (their position is the rank): recall hits, memory ids,
    facts of the knowledge graph (a :class:`~surreal_store.graph.Fact`, ``fact:<key>``), or
    ``(item, score)`` pairs of those. :func:`why` then walks from the decision through each to
    the runs, events, commits and people they came from; :func:`impact` of a source lists the
    decisions that used a memory or fact derived from it."""
    for label, value in (("task", task), ("action", action)):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"decision {label} must be a non-empty string")
    if not isinstance(rationale, str):
        raise ValidationError("rationale must be a string")
    if isinstance(alternatives, str) or not all(isinstance(a, str) for a in alternatives):
        raise ValidationError("alternatives must be a list of strings")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise ValidationError("confidence must be a number")
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValidationError(f"confidence must be within [0, 1], not {confidence!r}")
    if commit is not None and branch is not None:
        raise ValidationError("give commit= or branch=, not both")
    if branch is not None:
        head = await _branches.head(db, name=branch)
        if head is None:
            raise NotFoundError(f"no branch {branch}")
        commit = head
    key = new_decision_key(db)
    rows: list[dict[str, Any]] = []
    if isinstance(used, str | RecordId | RecallHit) or not isinstance(used, Sequence):
        raise ValidationError("used must be a list of memories or facts")
    for rank, u in enumerate(used, 1):
        item: Any
        score: Any
        if isinstance(u, RecallHit):
            item, score = u, u.score
        elif isinstance(u, tuple | list):
            if len(u) != 2:
                raise ValidationError(f"used item {rank}: a pair is (memory or fact, score)")
            item, score = u
        else:
            item, score = u, None
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            raise ValidationError(f"used item {rank}: the score must be a number or None")
        target = _used_target(item)
        rows.append(
            {
                "id": RecordId("used", [key, target.key]),
                "out": target,
                "rank": rank,
                "score": None if score is None else float(score),
            }
        )
    if len({r["out"] for r in rows}) != len(rows):
        raise ValidationError("a memory or fact is listed twice in used")
    return await db.query_required_single(
        _RECORD_DECISION,
        Decision,
        id=RecordId("decision", key),
        task=task,
        action=action,
        rationale=rationale,
        alternatives=list(alternatives),
        confidence=float(confidence),
        commit=RecordId("commit", commit_key(commit)) if commit else None,
        agent=RecordId("agent", agent) if agent else None,
        used=rows,
    )


_RECORD_OUTCOME = f"""
BEGIN;
IF !record::exists($id) {{ THROW 'not_found: no decision ' + record::id($id) }};
UPDATE ONLY $id SET outcome = $outcome, success = $success, outcome_at = time::now()
    RETURN NONE;
SELECT {DECISION_FIELDS} FROM ONLY $id;
COMMIT;
"""


@public
async def record_outcome(
    db: Executor, *, decision: str, outcome: Mapping[str, Any], success: bool
) -> Decision:
    """Record how the decision turned out, once: a second outcome raises
    :class:`AlreadyExistsError` and changes nothing."""
    if not isinstance(outcome, Mapping):
        raise ValidationError("outcome must be a mapping")
    if not isinstance(success, bool):
        raise ValidationError("success must be a bool")
    return await db.query_required_single(
        _RECORD_OUTCOME,
        Decision,
        id=RecordId("decision", decision_key(decision)),
        outcome=json_value(dict(outcome), what="outcome"),
        success=success,
    )


@public
async def get_decision(db: Executor, *, decision: str) -> Decision:
    """The decision, or :class:`NotFoundError`."""
    key = decision_key(decision)
    return present(
        await db.query_single(
            f"SELECT {DECISION_FIELDS} FROM ONLY $id;", Decision, id=RecordId("decision", key)
        ),
        f"no decision {key}",
    )


@public
async def decisions_for_commit(db: Executor, *, commit: str) -> list[Decision]:
    """The decisions recorded at ``commit``, newest first."""
    return await db.query(
        f"SELECT {DECISION_FIELDS} FROM decision WHERE commit = $commit ORDER BY created_at DESC;",
        Decision,
        commit=RecordId("commit", commit_key(commit)),
    )


@public
async def decisions_for_task(
    db: Executor, *, task: str, limit: int | None = None
) -> list[Decision]:
    """The decisions for ``task``, newest first."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValidationError("limit must be a positive int")
    text = f"SELECT {DECISION_FIELDS} FROM decision WHERE task = $task ORDER BY created_at DESC" + (
        " LIMIT $limit;" if limit is not None else ";"
    )
    return await db.query(text, Decision, task=task, limit=limit)


class SuccessRate(Model):
    """Decisions per task or action: how many, how many have an outcome, how many succeeded,
    and ``rate`` = succeeded / with an outcome (``None`` before any outcome)."""

    model_config = ConfigDict(frozen=True)

    key: str
    decisions: int
    with_outcome: int
    succeeded: int
    rate: float | None


_RATES: Final = {
    by: f"""
SELECT {by} AS key, count() AS decisions, count(success != NONE) AS with_outcome,
    count(success = true) AS succeeded
FROM decision GROUP BY {by} ORDER BY key;
"""
    for by in ("task", "action")
}


class _Counts(BaseModel):
    key: str
    decisions: int
    with_outcome: int
    succeeded: int


@public
async def success_rates(db: Executor, *, by: Literal["task", "action"]) -> list[SuccessRate]:
    """Success rate per task or per action, counted in the database."""
    if by not in _RATES:
        raise ValidationError("by must be 'task' or 'action'")
    rows = await db.query(_RATES[by], _Counts)
    return [
        SuccessRate(
            **r.model_dump(), rate=(r.succeeded / r.with_outcome) if r.with_outcome else None
        )
        for r in rows
    ]
