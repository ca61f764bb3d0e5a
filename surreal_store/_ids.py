"""Every rule for the keys people and code pass around: commits, memories, decisions, digests,
agents.

Keys are checked here, once, before any query is sent; each function returns the key in the
form the database stores (lowercase hex for commits and digests).
"""

from __future__ import annotations

import re
import uuid
from typing import Any, Final

from ._errors import ValidationError
from ._types import RecordId

__all__ = [
    "HEX",
    "HEX64",
    "LOWER_HEX64",
    "agent_record",
    "commit_key",
    "decision_key",
    "digest",
    "memory_key",
    "new_decision_key",
    "new_run_key",
    "session_agent",
]

HEX: Final = re.compile(r"^[0-9a-fA-F]+$")
"""Hex of any length: a key's prefix as a person types it."""
HEX64: Final = re.compile(r"^[0-9a-fA-F]{64}$")
LOWER_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
"""A SHA-256 digest as the database stores it."""


def commit_key(value: Any, *, what: str = "commit id") -> str:
    """The key of a commit given as its key, ``commit:<key>`` or a :class:`RecordId`."""
    if isinstance(value, RecordId):
        value = str(value.key)
    if not isinstance(value, str):
        raise ValidationError(f"invalid {what} {value!r}")
    value = value.removeprefix("commit:")
    if not HEX64.match(value):
        raise ValidationError(f"invalid {what} {value!r}: expected 64 hex characters")
    return str(value).lower()


def memory_key(value: Any) -> str:
    """The key of a memory given as its key, ``memory:<key>`` or a :class:`RecordId`."""
    if isinstance(value, RecordId):
        value = str(value.key) if value.table == "memory" else ""
    if not isinstance(value, str):
        raise ValidationError(f"invalid memory id {value!r}")
    key = value.removeprefix("memory:")
    if not LOWER_HEX64.match(key):
        raise ValidationError(f"invalid memory id {value!r}: expected 64 lowercase hex")
    return key


def digest(value: Any, *, what: str = "digest") -> str:
    """A SHA-256 hex digest (a spec, a blob, a state), lowercased."""
    if not isinstance(value, str) or not HEX64.match(value):
        raise ValidationError(f"invalid {what} {value!r}: expected a SHA-256 hex digest")
    return value.lower()


def decision_key(value: Any) -> str:
    """The key of a decision given as its key or ``decision:<key>``."""
    key = value.removeprefix("decision:") if isinstance(value, str) else ""
    if not key or len(key) > 192 or not all(c.isalnum() or c in "-_" for c in key):
        raise ValidationError(f"invalid decision id {value!r}")
    return key


_AGENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def agent_record(value: object) -> RecordId:
    """The record of the agent with id ``value`` (letters, digits, ``_`` and ``-``; 1 to 128)."""
    if not isinstance(value, str) or not _AGENT_ID.match(value):
        raise ValidationError(f"invalid agent id {value!r}: letters, digits, _ and - only")
    return RecordId("agent", value)


# What an agent creates is named after it, so that it can never aim a write at the id of a
# record it may not see (schema/021_agent_ids.surql, surreal_store._permissions).


def session_agent(db: Any) -> str | None:
    """The agent ``db`` is signed in as (record access), or ``None``."""
    signin = getattr(db, "signed_in_as", None)
    name = getattr(signin, "name", None)
    return name if getattr(signin, "kind", None) == "agent" and isinstance(name, str) else None


def new_decision_key(db: Any) -> str:
    """A new decision's key: 32 random hex digits, after ``AGENT_`` for an agent's session."""
    agent = session_agent(db)
    key = uuid.uuid4().hex
    return key if agent is None else f"{agent}_{key}"


def new_run_key(db: Any) -> str:
    """A new run's key: a random UUID, after ``AGENT:`` for an agent's session."""
    agent = session_agent(db)
    key = str(uuid.uuid4())
    return key if agent is None else f"{agent}:{key}"
