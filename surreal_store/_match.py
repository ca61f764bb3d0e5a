"""Matching JSON documents (a memory's metadata, a LangGraph item's value) by a filter.

A filter maps a dotted path to a value or to operators::

    {"status": "done", "user.level": {"$gte": 3}, "tags": ["a", "b"], "meta": {"lang": "en"}}

- a plain value matches an equal value (``1`` equals ``1.0``; a list equals the same list);
  ``None`` matches JSON null and a missing field;
- a mapping without operators matches field by field (a partial match of a nested object);
- ``$eq`` and ``$ne`` compare like a plain value; ``$gt``, ``$gte``, ``$lt`` and ``$lte`` take a
  number (matching numbers only) or a string (matching strings only, by code point);
- NaN equals nothing and orders with nothing; an infinity is beyond every stored number.

Paths are split at ``.`` and each segment is a parameter, so a path never reaches the query
text: a segment may hold any character. The conditions are joined with ``AND``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from ._errors import ValidationError
from ._types import check_text, json_value

__all__ = ["OPERATORS", "match_conditions"]

OPERATORS: Final = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_ORDER: Final = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_MAX_CONDITIONS: Final = 256


def match_conditions(
    filter: Mapping[str, Any], *, field: str, prefix: str
) -> tuple[list[str], dict[str, Any]]:
    """The conditions (SurrealQL) and their parameters that select the documents in ``field``
    matching ``filter``.

    ``field`` and ``prefix`` are fixed texts of the caller (a field name, a parameter prefix),
    never user input; every path segment and value of ``filter`` is a parameter.
    """
    if not isinstance(filter, Mapping):
        raise ValidationError("a filter must be a mapping of paths to values")
    conditions: list[str] = []
    params: dict[str, Any] = {}

    def param(value: Any) -> str:
        name = f"{prefix}{len(params)}"
        params[name] = value
        return f"${name}"

    def visit(segments: list[str], wanted: Any) -> None:
        if len(conditions) >= _MAX_CONDITIONS:
            raise ValidationError(f"a filter has at most {_MAX_CONDITIONS} conditions")
        target = field + "".join(f"[{param(s)}]" for s in segments)
        if isinstance(wanted, Mapping) and any(str(k).startswith("$") for k in wanted):
            for op, operand in wanted.items():
                conditions.append(_operator(target, op, operand, param, segments))
        elif isinstance(wanted, Mapping):
            if not wanted:
                conditions.append(f"type::is_object({target})")
            for key, inner in wanted.items():
                visit([*segments, check_text(key, "a filter key", empty=True)], inner)
        else:
            conditions.append(_equal(target, wanted, param, segments))

    for path, wanted in filter.items():
        if not isinstance(path, str) or not path:
            raise ValidationError(f"a filter path must be a non-empty string, not {path!r}")
        segments = check_text(path, "a filter path").split(".")
        if "" in segments:
            raise ValidationError(f"filter path {path!r} has an empty segment")
        visit(segments, wanted)
    return conditions, params


def _equal(target: str, wanted: Any, param: Any, segments: list[str]) -> str:
    if wanted is None:
        return f"{target} IN [NONE, NULL]"
    if _unstorable(wanted):
        return "false"  # no stored value equals NaN, an infinity or a number past 64 bits
    return f"{target} = {param(_operand(wanted, segments))}"


def _unstorable(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return type(value) is int and not -(2**63) <= value < 2**63


def _operator(target: str, op: Any, operand: Any, param: Any, segments: list[str]) -> str:
    if op == "$eq":
        return _equal(target, operand, param, segments)
    if op == "$ne":
        if operand is None:
            return f"{target} NOT IN [NONE, NULL]"
        if _unstorable(operand):
            return "true"
        return f"{target} != {param(_operand(operand, segments))}"
    if op in _ORDER:
        if isinstance(operand, bool) or not isinstance(operand, int | float | str):
            raise ValidationError(
                f"{op} on {'.'.join(segments)!r} takes a number or a string, not "
                f"{type(operand).__name__}"
            )
        kind = "string" if isinstance(operand, str) else "number"
        if kind == "number" and _unstorable(operand):
            # Beyond every stored number: compared as a float; NaN orders with nothing.
            bound = float(operand)
            if math.isnan(bound):
                return "false"
            if math.isinf(bound):
                below = (bound > 0) == (op in ("$lt", "$lte"))
                return f"type::is_number({target})" if below else "false"
            operand = bound
        return (
            f"(type::is_{kind}({target}) AND {target} {_ORDER[op]} "
            f"{param(_operand(operand, segments))})"
        )
    raise ValidationError(
        f"unknown filter operator {op!r} on {'.'.join(segments)!r}: use one of "
        + ", ".join(OPERATORS)
    )


def _operand(value: Any, segments: list[str]) -> Any:
    return json_value(value, what=f"the filter value of {'.'.join(segments)!r}")
