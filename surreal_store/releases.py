"""The release registry: which agent spec is live, with an append-only history.

Entries are ordered by a per-agent sequence, never by timestamps. ``rollback`` walks back through
the *effective* history: after v1, v2, v3, a rollback re-appends v2 and a second rollback v1 (the
seed swapped between the last two). Rules live in ``schema/004_releases.surql``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict

from ._api import public
from ._errors import ValidationError
from ._executor import Executor, present
from ._ids import HEX64
from ._types import Model, RecordId

__all__ = ["Release", "current", "history", "promote", "rollback"]

_AGENT = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
_MAX_SEQ = 2**62


def _seq_of(value: Any) -> Any:
    """A release link ``release:[agent, seq]`` as its seq."""
    if isinstance(value, RecordId) and isinstance(value.key, list):
        return value.key[1]
    return value


class Release(Model):
    model_config = ConfigDict(frozen=True)

    agent_name: str
    seq: int
    spec_digest: str
    version_label: str
    promoted_by: str
    notes: str | None = None
    action: Literal["promote", "rollback"]
    supersedes: Annotated[int | None, BeforeValidator(_seq_of)] = None
    """The seq of the entry this one replaced in the effective history."""
    restores: Annotated[int | None, BeforeValidator(_seq_of)] = None
    """For a rollback, the seq of the entry it re-applied."""
    created_at: dt.datetime


_FIELDS = (
    "agent_name, seq, spec_digest, version_label, promoted_by, notes, action, supersedes, "
    "restores, created_at"
)


def _agent(name: str) -> str:
    if not isinstance(name, str) or not _AGENT.match(name):
        raise ValidationError(f"invalid agent name {name!r}")
    return name


def _head(agent: str) -> RecordId:
    return RecordId("release_head", agent)


def _appended(content: str, *, head: Literal["UPSERT", "UPDATE"]) -> str:
    """The end of a registry write: create the entry ``$seq`` of ``$agent`` with ``content``
    (its fields after ``agent_name`` and ``seq``), point the agent's head at it (``head``:
    ``UPSERT`` where the head may not exist yet, ``UPDATE`` where it does), answer the entry
    and commit."""
    return f"""
LET $entry = (CREATE ONLY type::record('release', [$agent, $seq]) CONTENT {{
    agent_name: $agent, seq: $seq, {content}
}} RETURN {_FIELDS});
{head} $head_id SET current = type::record('release', [$agent, $seq]), next_seq = $seq + 1
    RETURN NONE;
RETURN $entry;
COMMIT;
"""


_PROMOTE = """
BEGIN;
LET $head = (SELECT current, next_seq FROM ONLY $head_id);
LET $seq = $head.next_seq ?? 1;""" + _appended(
    "spec_digest: $spec_digest, version_label: $version_label,\n"
    "    promoted_by: $promoted_by, notes: $notes, action: 'promote', supersedes: $head.current",
    head="UPSERT",
)


@public(agents=False)
async def promote(
    db: Executor,
    *,
    agent_name: str,
    spec_digest: str,
    version_label: str,
    promoted_by: str,
    notes: str | None = None,
) -> Release:
    """Make ``spec_digest`` the agent's current release (a new history entry)."""
    if not isinstance(spec_digest, str) or not HEX64.match(spec_digest):
        raise ValidationError(f"invalid spec digest {spec_digest!r}")
    if not isinstance(version_label, str) or not version_label:
        raise ValidationError("version_label is a non-empty string")
    return await db.query_required_single(
        _PROMOTE,
        Release,
        head_id=_head(_agent(agent_name)),
        agent=agent_name,
        spec_digest=spec_digest.lower(),
        version_label=version_label,
        promoted_by=promoted_by,
        notes=notes,
    )


_ROLLBACK = """
BEGIN;
LET $head = (SELECT current, next_seq FROM ONLY $head_id);
IF $head = NONE { THROW 'not_found: no releases for agent ' + $agent };
LET $now = (SELECT supersedes FROM ONLY $head.current);
IF $now.supersedes = NONE {
    THROW 'invalid: agent ' + $agent + ' has no earlier release to roll back to';
};
LET $target = (SELECT * FROM ONLY $now.supersedes);
LET $seq = $head.next_seq;""" + _appended(
    "spec_digest: $target.spec_digest,\n"
    "    version_label: $target.version_label, promoted_by: $promoted_by, notes: $notes,\n"
    "    action: 'rollback', supersedes: $target.supersedes, restores: $target.id",
    head="UPDATE",
)


@public(agents=False)
async def rollback(
    db: Executor, *, agent_name: str, promoted_by: str, notes: str | None = None
) -> Release:
    """Re-apply the release before the current one in the effective history, as a new entry.
    ``NotFoundError`` for an unknown agent; ``ConstraintError`` when there is nothing earlier."""
    return await db.query_required_single(
        _ROLLBACK,
        Release,
        head_id=_head(_agent(agent_name)),
        agent=agent_name,
        promoted_by=promoted_by,
        notes=notes,
    )


_CURRENT = f"SELECT {_FIELDS} FROM ONLY (SELECT VALUE current FROM ONLY $head_id);"


@public(agents=False)
async def current(db: Executor, *, agent_name: str) -> Release:
    """The agent's current release; ``NotFoundError`` if it has none."""
    found = await db.query_single(_CURRENT, Release, head_id=_head(_agent(agent_name)))
    return present(found, f"no releases for agent {agent_name!r}")


_HISTORY = f"""
SELECT {_FIELDS} FROM release:[$agent, 1]..=[$agent, {_MAX_SEQ}] ORDER BY seq DESC LIMIT $limit;
"""


@public(agents=False)
async def history(db: Executor, *, agent_name: str, limit: int | None = None) -> list[Release]:
    """Every entry for the agent, newest first (by sequence)."""
    return await db.query(
        _HISTORY, Release, agent=_agent(agent_name), limit=limit if limit is not None else _MAX_SEQ
    )
