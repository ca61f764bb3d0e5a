"""Sign-in: who a store's session is, and signing a connection (or one of its engine sessions)
in as the settings say.

:class:`SignIn` is part of the public surface, which imports without the SDK; the SDK is
imported when a sign-in is sent.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .. import _errors as e
from .._surql import role_of

if TYPE_CHECKING:
    from .._config import Settings
    from . import _sdk as sdk

__all__ = ["ANONYMOUS", "SignIn", "identity", "sign_in"]

_USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True)
class SignIn:
    """Who a store's session is (``store.signed_in_as``).

    ``kind``: ``anonymous`` (an embedded store opened without credentials: full access, as
    anyone who can open its files has), ``root`` (a server's root user), ``user`` (a database
    user of the tenant, with ``role`` OWNER, EDITOR or VIEWER) or ``agent`` (record access:
    bound by the schema's permissions to the agent's scopes, decisions and runs).
    """

    kind: Literal["anonymous", "root", "user", "agent"]
    name: str | None = None
    role: str | None = None

    @property
    def restricted(self) -> bool:
        """Whether the engine hides records from this session (an agent) or refuses its
        writes (a VIEWER): then a record it names but cannot see is :class:`NotVisibleError`."""
        return self.kind == "agent" or self.role == "VIEWER"


ANONYMOUS = SignIn("anonymous")


def identity(s: Settings) -> tuple[str, ...]:
    """Who a store is, whole: namespace, database, kind of sign-in, name and a digest of the
    credential (a secret is never kept in the clear). Stores share an engine session only when
    all of it is equal."""
    if s.agent is not None and s.agent_secret is not None:
        kind, name, credential = "agent", s.agent, s.agent_secret.get_secret_value()
    elif s.username is not None and s.password is not None:
        kind, name, credential = "user", s.username, s.password.get_secret_value()
    else:
        return (s.namespace, s.database, "anonymous", "", "")
    # The digest is keyed by the rest of the identity: equal secrets of two sign-ins differ.
    digest = hashlib.sha256(
        "\x00".join((s.namespace, s.database, kind, name, credential)).encode()
    ).hexdigest()
    return (s.namespace, s.database, kind, name, digest)


async def sign_in(
    db: sdk.AsyncSurrealConnection, s: Settings, *, session: uuid.UUID | None = None
) -> SignIn:
    """Sign ``db`` (its engine session ``session``) in as the settings say; return who it is.
    A refused sign-in is a :class:`PermissionDeniedError` that does not say which part was
    wrong."""
    from . import _sdk as sdk

    try:
        return await _try_sign_in(db, s, session)
    except sdk.SurrealError as exc:
        if isinstance(exc, sdk.TransportError):
            raise
        who = f"agent {s.agent!r}" if s.agent is not None else f"user {s.username!r}"
        raise e.PermissionDeniedError(
            f"sign-in as {who} to {s.namespace}/{s.database} was refused: no such "
            "sign-in, or a wrong secret"
        ) from None


async def _try_sign_in(
    db: sdk.AsyncSurrealConnection, s: Settings, session: uuid.UUID | None
) -> SignIn:
    from . import _sdk as sdk

    # A session of a shared embedded connection is named; a connection of its own is not (and
    # an HTTP connection has no sessions).
    on: dict[str, Any] = {} if session is None else {"session_id": session}
    if s.agent is not None and s.agent_secret is not None:
        await db.signin(
            {
                "namespace": s.namespace,
                "database": s.database,
                "access": "agent",
                "variables": {"agent": s.agent, "secret": s.agent_secret.get_secret_value()},
            },
            **on,
        )
        return SignIn("agent", s.agent)
    if s.username is None or s.password is None:
        return ANONYMOUS
    password = s.password.get_secret_value()
    try:
        # A database user of the tenant first (surreal-store users add), then a root user.
        await db.signin(
            {
                "namespace": s.namespace,
                "database": s.database,
                "username": s.username,
                "password": password,
            },
            **on,
        )
    except sdk.SurrealError:
        await db.signin({"username": s.username, "password": password}, **on)
        return SignIn("root", s.username)
    role = None
    if _USER_NAME.match(s.username):
        info = await db.query_raw(f"INFO FOR USER {s.username} ON DATABASE;", None, **on)
        entries = info.get("result") if isinstance(info, dict) else None
        if entries and entries[0].get("status") == "OK":
            role = role_of(str(entries[0].get("result")))
    return SignIn("user", s.username, role)
