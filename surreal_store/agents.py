"""Agents: who acts on the store (id, name, kind, configuration)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ConfigDict

from ._api import public
from ._errors import ValidationError
from ._executor import Executor, present
from ._ids import agent_record
from ._types import Key, Model

__all__ = ["Agent", "get", "list_all", "register"]


class Agent(Model):
    model_config = ConfigDict(frozen=True)

    id: Key
    name: str
    kind: str
    config: dict[str, Any]
    created_at: dt.datetime


_REGISTER = "CREATE $id CONTENT { name: $name, kind: $kind, config: $config };"


@public
async def register(
    db: Executor,
    *,
    name: str,
    kind: str,
    config: Mapping[str, Any] | None = None,
    agent_id: str | None = None,
) -> Agent:
    """Register an agent; ``agent_id`` defaults to a new random id. ``AlreadyExistsError`` if
    the id is taken."""
    for label, value in (("name", name), ("kind", kind)):
        if not isinstance(value, str) or not value:
            raise ValidationError(f"agent {label} must be a non-empty string")
    rid = agent_record(agent_id or uuid.uuid4().hex)
    return await db.query_required_single(
        _REGISTER, Agent, id=rid, name=name, kind=kind, config=dict(config or {})
    )


_GET = "SELECT * FROM ONLY $id;"


@public
async def get(db: Executor, *, agent_id: str) -> Agent:
    """The agent with this id; ``NotFoundError`` if there is none."""
    return present(
        await db.query_single(_GET, Agent, id=agent_record(agent_id)), f"no agent {agent_id!r}"
    )


_LIST = "SELECT * FROM agent ORDER BY name, id;"


@public
async def list_all(db: Executor) -> list[Agent]:
    """Every agent, by name."""
    return await db.query(_LIST, Agent)
