"""Who may sign in to a tenant: database users for people, record access for agents.

People and services are database users with one of SurrealDB's roles:

- ``viewer``: reads everything in the tenant, writes nothing (notebooks, analysts);
- ``editor``: reads and writes data (services, trusted agents);
- ``owner``: also migrates the schema and manages users.

An agent signs in as itself (``Store(agent=..., agent_secret=...)``) once :func:`grant_agent`
gave it a secret and the scopes it may use. The permissions the access layer generates
(``surreal_store._permissions``) then bind every query of that session, raw SurrealQL
included: memories of its scopes only, its own decisions and runs, provenance edges whose
ends it may see.

Passwords and secrets are sent as query parameters and hashed by the engine (argon2); they
are never part of a query's text, never returned, and never logged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final, Literal

from pydantic import ConfigDict

from ._api import public
from ._errors import AlreadyExistsError, NotFoundError, ResultError, ValidationError
from ._executor import Executor, present
from ._ids import agent_record, session_agent
from ._surql import role_of
from ._types import Key, Model

__all__ = [
    "ROLES",
    "AgentGrant",
    "User",
    "add_user",
    "grant_agent",
    "granted_scopes",
    "list_agents",
    "list_users",
    "remove_user",
    "revoke_agent",
]

Role = Literal["viewer", "editor", "owner"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "editor", "owner")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# What crypto::argon2::generate returns; checked before it is written into DEFINE USER, the
# one statement that takes no parameter for it.
_ARGON2 = re.compile(r"^\$argon2id\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")
_MIN_SECRET = 8
_MAX_SECRET = 1024


class User(Model):
    """A database user of the tenant (never its password or hash)."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: str


class AgentGrant(Model):
    """What an agent may do when it signs in: its scopes (compared whole)."""

    model_config = ConfigDict(frozen=True)

    agent: Key
    name: str
    scopes: list[str]
    can_sign_in: bool


def _user_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(
            f"invalid user name {name!r}: a letter or _, then letters, digits and _ (max 64)"
        )
    return name


def _secret(value: object, what: str) -> str:
    if not isinstance(value, str) or not _MIN_SECRET <= len(value) <= _MAX_SECRET:
        raise ValidationError(f"a {what} is a string of {_MIN_SECRET} to {_MAX_SECRET} characters")
    if "\x00" in value:
        raise ValidationError(f"a {what} cannot contain NUL")
    return value


def _scopes(scopes: Iterable[str]) -> list[str]:
    if isinstance(scopes, str):
        raise ValidationError("scopes is a list of scopes, not one string")
    found = list(scopes)
    if not found:
        raise ValidationError("grant an agent at least one scope")
    for scope in found:
        if not isinstance(scope, str) or not 1 <= len(scope) <= 512:
            raise ValidationError(f"invalid scope {scope!r}: a string of 1 to 512 characters")
    return list(dict.fromkeys(found))


_HASH = "RETURN crypto::argon2::generate($password);"


@public
async def add_user(
    db: Executor, *, name: str, password: str, role: Role, replace: bool = False
) -> User:
    """Add a database user of this tenant with ``role``; ``AlreadyExistsError`` if the name is
    taken (``replace=True`` replaces it: a new password or role). Needs the owner."""
    _user_name(name)
    _secret(password, "password")
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if not replace and any(u.name == name for u in await list_users(db)):
        raise AlreadyExistsError(f"user {name!r} already exists")
    passhash = await db.query_required_single(_HASH, str, password=password)
    if not _ARGON2.match(passhash):
        raise ResultError("the engine's password hash has an unexpected form")
    overwrite = "OVERWRITE " if replace else ""
    await db.execute(
        f"DEFINE USER {overwrite}{name} ON DATABASE PASSHASH '{passhash}' ROLES {role.upper()};"
    )
    return User(name=name, role=role.upper())


@public
async def list_users(db: Executor) -> list[User]:
    """The tenant's database users and their roles, by name."""
    info = await db.query_required_single("INFO FOR DB;", dict, idempotent=True)
    users = []
    for name, ddl in sorted((info.get("users") or {}).items()):
        users.append(User(name=name, role=role_of(str(ddl)) or "?"))
    return users


@public
async def remove_user(db: Executor, *, name: str) -> None:
    """Remove a database user of this tenant; ``NotFoundError`` if there is none."""
    _user_name(name)
    if not any(u.name == name for u in await list_users(db)):
        raise NotFoundError(f"no user {name!r}")
    await db.execute(f"REMOVE USER {name} ON DATABASE;")


_GRANT = """
BEGIN;
IF !record::exists($agent) {
    THROW 'not_found: no agent ' + <string>record::id($agent) + '; register it first';
};
UPDATE ONLY $agent SET scopes = $scopes, secret_hash = crypto::argon2::generate($secret)
    RETURN NONE;
SELECT id AS agent, name, scopes, secret_hash != NONE AS can_sign_in FROM ONLY $agent;
COMMIT;
"""


@public
async def grant_agent(
    db: Executor, *, agent_id: str, secret: str, scopes: Iterable[str]
) -> AgentGrant:
    """Let a registered agent (:func:`surreal_store.agents.register`) sign in with ``secret``
    and use exactly ``scopes``; replaces an earlier grant. ``NotFoundError`` if no such agent."""
    rid = agent_record(agent_id)
    wanted = _scopes(scopes)
    _secret(secret, "secret")
    return await db.query_required_single(
        _GRANT, AgentGrant, agent=rid, scopes=wanted, secret=secret
    )


_REVOKE = """
UPDATE $agent SET scopes = [], secret_hash = NONE RETURN NONE;
SELECT id AS agent, name, scopes, secret_hash != NONE AS can_sign_in FROM $agent;
"""


@public
async def revoke_agent(db: Executor, *, agent_id: str) -> AgentGrant:
    """Take an agent's secret and scopes away: it can no longer sign in. Sessions it opened
    before keep their sign-in until they close (their token lasts an hour at most), but
    every query they run is checked against its scopes, which are now none."""
    rid = agent_record(agent_id)
    return present(await db.query_single(_REVOKE, AgentGrant, agent=rid), f"no agent {agent_id!r}")


_AGENTS = """
SELECT id AS agent, name, scopes, secret_hash != NONE AS can_sign_in FROM agent
    WHERE secret_hash != NONE ORDER BY agent;
"""


@public
async def list_agents(db: Executor) -> list[AgentGrant]:
    """The agents that can sign in, with their scopes."""
    return await db.query(_AGENTS, AgentGrant)


_GRANTED = "SELECT VALUE scopes FROM ONLY $auth;"


@public
async def granted_scopes(db: Executor) -> list[str]:
    """The scopes the agent ``db`` is signed in as may use: its grant, as it reads its own
    record. ``ValidationError`` for a session that is not an agent's."""
    if session_agent(db) is None:
        raise ValidationError("granted_scopes is for an agent's session (Store(agent=...))")
    return await db.query(_GRANTED, str, idempotent=True)
