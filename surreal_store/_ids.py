"""Every rule for the keys people and code pass around: commits, memories, decisions, digests.

Keys are checked here, once, before any query is sent; each function returns the key in the
form the database stores (lowercase hex for commits and digests).
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._errors import ValidationError
from ._types import RecordId

__all__ = ["HEX", "HEX64", "LOWER_HEX64", "commit_key", "decision_key", "digest", "memory_key"]

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
    if not key or len(key) > 128 or not all(c.isalnum() or c in "-_" for c in key):
        raise ValidationError(f"invalid decision id {value!r}")
    return key
