"""Declaring a predicate single-valued (supersession) or not."""

from __future__ import annotations

from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from ._models import DEFAULT_SCOPE, Predicate
from ._names import check_predicate, check_scope

__all__ = ["declare_predicate"]


_DECLARE = """
UPSERT ONLY type::record('predicate', [$scope, $name])
    SET scope = $scope, name = $name, single_valued = $single, updated_at = time::now()
    RETURN scope, name, single_valued, created_at, updated_at;
"""


@public
async def declare_predicate(
    db: Executor, *, name: str, single_valued: bool, scope: str = DEFAULT_SCOPE
) -> Predicate:
    """Declare predicate ``name`` of ``scope`` single-valued (a subject has one current value
    at a time: asserting a new one supersedes the others) or not. Facts already recorded are
    left as they are (their overlaps stay visible as conflicts)."""
    if not isinstance(single_valued, bool):
        raise ValidationError("single_valued must be a bool")
    return await db.query_required_single(
        _DECLARE,
        Predicate,
        scope=check_scope(scope),
        name=check_predicate(name),
        single=single_valued,
    )
