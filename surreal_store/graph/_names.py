"""What the graph's writes and reads share: the checks of scopes, names and predicates, the
statement that finds a missing entity, and values as the database gives them back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from .._errors import ValidationError
from .._surql import as_array
from .._types import JSON_NULL, RecordId, check_text
from ._models import entity_id

__all__ = [
    "CHECK_ENDS",
    "check_name",
    "check_predicate",
    "check_scope",
    "check_strings",
    "entity_record",
    "plain",
]


def check_scope(scope: str) -> str:
    return check_text(scope, "scope", limit=512)


def check_name(name: str, what: str = "entity name") -> str:
    return check_text(name, what, limit=1024)


def entity_record(scope: str, name: str) -> RecordId:
    return RecordId("entity", entity_id(scope, name))


def check_predicate(name: str) -> str:
    return check_text(name, "predicate", limit=256)


CHECK_ENDS: Final = (
    """
LET $live = (SELECT VALUE id FROM $ends WHERE retracted_at = NONE);
"""
    + as_array("$live")
    + """IF array::len($live) < array::len($ends) {
    THROW 'not_found: no entity ' + $names[record::id(array::complement($ends, $live)[0])]
        + ' in scope ' + $scope;
};
"""
)


def plain(value: Any) -> Any:
    """A JSON value as the database gives it back: :data:`JSON_NULL` as ``None``."""
    if value is JSON_NULL:
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def check_strings(
    value: Sequence[str] | None, what: str, *, empty: bool = False
) -> list[str] | None:
    """A filter's list of names (predicates, types), checked, without repeats, sorted; ``None``
    stays ``None`` (no filter)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValidationError(f"{what} must be a list of strings, not one string")
    return sorted({check_text(v, what, empty=empty, limit=256) for v in value})
