"""Matching documents by a filter (surreal_store._match), without an engine: the conditions and
parameters it writes. What they select in the database is tested against a Python model of
the same rules in tests/test_memory.py."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surreal_store import ValidationError
from surreal_store._match import OPERATORS, match_conditions


def _match(filter: Any) -> tuple[list[str], dict[str, Any]]:
    return match_conditions(filter, field="metadata", prefix="f")


def test_a_plain_value_is_one_equality_with_every_segment_a_parameter() -> None:
    conditions, params = _match({"user.level": 3})
    assert conditions == ["metadata[$f0][$f1] = $f2"]
    assert params == {"f0": "user", "f1": "level", "f2": 3}


def test_none_matches_null_and_missing() -> None:
    assert _match({"a": None})[0] == ["metadata[$f0] IN [NONE, NULL]"]
    assert _match({"a": {"$ne": None}})[0] == ["metadata[$f0] NOT IN [NONE, NULL]"]


def test_a_nested_mapping_matches_field_by_field_and_an_empty_one_any_object() -> None:
    conditions, params = _match({"meta": {"lang": "en", "tags": {}}})
    assert [_fill(c, params) for c in conditions] == [
        "metadata['meta']['lang'] = 'en'",
        "type::is_object(metadata['meta']['tags'])",
    ]


def _fill(condition: str, params: dict[str, Any]) -> str:
    """A condition with its parameters written in, to read it."""
    for name in sorted(params, key=len, reverse=True):
        condition = condition.replace(f"${name}", repr(params[name]))
    return condition


@pytest.mark.parametrize(
    ("op", "sign"), [("$gt", ">"), ("$gte", ">="), ("$lt", "<"), ("$lte", "<=")]
)
def test_an_order_compares_numbers_with_numbers_and_strings_with_strings(
    op: str, sign: str
) -> None:
    assert _match({"n": {op: 2}})[0] == [
        f"(type::is_number(metadata[$f0]) AND metadata[$f0] {sign} $f1)"
    ]
    assert _match({"s": {op: "b"}})[0] == [
        f"(type::is_string(metadata[$f0]) AND metadata[$f0] {sign} $f1)"
    ]


def test_values_no_stored_number_equals() -> None:
    for value in (math.nan, math.inf, -math.inf, 2**63, -(2**63) - 1):
        assert _match({"x": value})[0] == ["false"]
        assert _match({"x": {"$ne": value}})[0] == ["true"]
    assert _match({"x": {"$gt": math.nan}})[0] == ["false"]
    assert _match({"x": {"$lt": math.inf}})[0] == ["type::is_number(metadata[$f0])"]
    assert _match({"x": {"$gt": math.inf}})[0] == ["false"]
    conditions, params = _match({"x": {"$lt": 2**70}})  # compared as a float
    assert conditions == ["(type::is_number(metadata[$f0]) AND metadata[$f0] < $f1)"]
    assert params["f1"] == float(2**70)


@given(st.lists(st.text(min_size=1), min_size=1, max_size=4), st.text())
def test_paths_and_values_never_reach_the_query_text(segments: list[str], value: str) -> None:
    """Whatever a path segment or value holds (quotes, brackets, ``;``), the text is made of
    the caller's field, parameter names and fixed operators only."""
    if any("." in s or "\x00" in s or not s for s in segments):
        return  # a dot splits a path; a NUL is refused (below)
    try:
        conditions, params = _match({".".join(segments): value})
    except ValidationError:
        return  # text the library refuses everywhere (lone surrogates)
    text = " ".join(conditions)
    assert text.replace("metadata", "").replace("$f", "").strip(" []=0123456789") == ""
    assert list(params.values()) == [*segments, value]


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ([("a", 1)], "a mapping"),
        ({"": 1}, "non-empty string"),
        ({1: 1}, "non-empty string"),
        ({"a..b": 1}, "empty segment"),
        ({"a": {"$regex": "x"}}, "unknown filter operator"),
        ({"a": {"$gt": True}}, "takes a number or a string"),
        ({"a": {"$lt": [1]}}, "takes a number or a string"),
        ({f"k{i}": i for i in range(300)}, "at most 256 conditions"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_bad_filters_are_refused(filter: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _match(filter)


def test_the_operators_are_the_documented_six() -> None:
    assert OPERATORS == ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
