"""Contradictions: facts of a single-valued predicate that hold at the same time.

Supersession closes the old value when a new one is asserted, so contradictions come from
elsewhere: facts recorded before the predicate was declared single-valued, a merge that gave
one entity the values of two, an assertion valid over a past interval another value already
covers. They are shown, never resolved silently: retract or supersede the wrong one.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from pydantic import ConfigDict

from .._api import public
from .._executor import Executor
from .._surql import as_array
from .._types import Model
from ..memory._checks import check_utc
from ._models import DEFAULT_SCOPE, FACT_FIELDS, Fact
from ._names import check_name, check_scope, entity_record

__all__ = ["Conflict", "conflicts"]


class Conflict(Model):
    """Two facts of ``subject``'s single-valued ``predicate`` with different objects or values
    that both hold from ``since`` until ``until`` (``None``: open)."""

    model_config = ConfigDict(frozen=True)

    subject: str
    predicate: str
    first: Fact
    second: Fact
    since: dt.datetime
    until: dt.datetime | None = None


@cache
def _query(one: bool, at: bool, hidden: bool) -> str:
    known = (
        "recorded_at <= $known_at AND (retracted_at = NONE OR retracted_at > $known_at)"
        if at
        else "retracted_at = NONE"
    )
    source = "$entity->fact" if one else "fact"
    return f"""
LET $single = (SELECT VALUE name FROM predicate WHERE scope = $scope AND single_valued = true);
{as_array("$single")}SELECT {FACT_FIELDS} FROM {source} WHERE scope = $scope AND {known}
    {"" if hidden else "AND invalidated_at = NONE"}
    AND predicate IN $single ORDER BY valid_from, recorded_at, id;
"""


@public
async def conflicts(
    db: Executor,
    *,
    entity: str | None = None,
    scope: str = DEFAULT_SCOPE,
    known_at: dt.datetime | None = None,
    include_invalidated: bool = False,
) -> list[Conflict]:
    """The contradictions of ``entity`` (as subject; every entity of ``scope`` when
    ``None``), as the store holds them now or at ``known_at``: pairs of facts of a predicate
    declared single-valued, with the same subject and another object or value, whose valid
    times overlap. Facts hidden by a distrusted source are left out unless
    ``include_invalidated``. One query."""
    check_scope(scope)
    params: dict[str, Any] = {"scope": scope, "known_at": check_utc(known_at, "known_at")}
    if entity is not None:
        params["entity"] = entity_record(scope, check_name(entity))
    text = _query(entity is not None, known_at is not None, include_invalidated)
    found = await db.query(text, Fact, idempotent=True, **params)
    groups: dict[tuple[str, str], list[Fact]] = {}
    for f in found:
        groups.setdefault((f.subject, f.predicate), []).append(f)
    out: list[Conflict] = []
    for (subject, predicate), group in groups.items():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:  # sorted by valid_from: b starts no earlier than a
                if a.key == b.key:
                    continue  # the same fact over two intervals: no contradiction
                if a.valid_until is not None and a.valid_until <= b.valid_from:
                    continue
                ends = [t for t in (a.valid_until, b.valid_until) if t is not None]
                out.append(
                    Conflict(
                        subject=subject,
                        predicate=predicate,
                        first=a,
                        second=b,
                        since=b.valid_from,
                        until=min(ends) if ends else None,
                    )
                )
    return out
