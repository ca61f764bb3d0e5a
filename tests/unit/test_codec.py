"""The codec at the engine boundary, without an engine: answers decoded as the SDK decodes them,
values mapped to and from the SDK's types, and the rows the recall index keeps."""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import uuid
from typing import Any

import pytest
import surrealdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from surrealdb.data import cbor as sdk_cbor

from surreal_store import JSON_NULL, RecordId, ValidationError
from surreal_store._engine import _codec as codec
from surreal_store.memory._recall_index import _rows as rows


def test_fast_decoding_agrees_with_the_sdks_decoder() -> None:
    """Answers are decoded by cbor2's C decoder with the SDK's tag decoder: every value type
    the engine sends decodes as the SDK's own decoder has it, after the boundary's mapping."""
    value = {
        "record": surrealdb.RecordID("ev", ["run", 3, {"a": [1, 2]}]),
        "plain": surrealdb.RecordID("memory", "abc"),
        "vector": [0.1, -2.5, 1e-30, 3.0],
        "when": surrealdb.PreciseDatetime(
            2026, 12, 1, 1, 2, 3, 456789, tzinfo=dt.UTC, nanosecond=7
        ),
        "naive": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "none": None,
        "null": surrealdb.Null,
        "span": surrealdb.Duration(1_500_000_000),
        "table": surrealdb.Table("memory"),
        "id": uuid.UUID(int=7),
        "dec": decimal.Decimal("1.25"),
        "bytes": b"\x00\xff",
        "nested": [{"k": [1, [2, 3]], "t": ("x", "y")}],
        "big": 2**62,
        "text": "naïve ☃",
    }
    data = sdk_cbor.encode(value)
    assert codec.from_sdk(codec.decode(data)) == codec.from_sdk(sdk_cbor.decode(data))


def test_values_map_to_the_sdk_and_back() -> None:
    sent = codec.to_sdk(
        {
            "link": RecordId("memory", ["a", 1]),
            "span": dt.timedelta(days=1, microseconds=7),
            "null": JSON_NULL,
            "set": {3},
            "tuple": (1, "x"),
        }
    )
    assert isinstance(sent["link"], surrealdb.RecordID)
    assert isinstance(sent["span"], surrealdb.Duration)
    assert sent["null"] is surrealdb.Null
    assert codec.from_sdk(sent) == {
        "link": RecordId("memory", ["a", 1]),
        "span": dt.timedelta(days=1, microseconds=7),
        "null": None,
        "set": [3],
        "tuple": [1, "x"],
    }


@pytest.mark.parametrize("key", [1, 1.5, None, ("a",)])
def test_object_keys_that_are_not_strings_are_refused(key: Any) -> None:
    with pytest.raises(ValidationError, match="keys must be strings"):
        codec.to_sdk({"outer": {key: 2}})


def test_precise_datetime_keeps_nanoseconds() -> None:
    t = codec.precise_datetime("2026-12-07T08:09:10.123456789Z")
    assert t == dt.datetime(2026, 12, 7, 8, 9, 10, 123456, tzinfo=dt.UTC)
    assert t.nanosecond == 789  # type: ignore[attr-defined]
    assert codec.precise_datetime("2026-12-07T08:09:10Z").microsecond == 0


_KEYS = st.text(max_size=8)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.builds(RecordId, st.sampled_from(["memory", "run"]), st.text(min_size=1, max_size=8))
)
_ROWS = st.dictionaries(
    _KEYS,
    st.recursive(
        _SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
        max_leaves=12,
    ),
    max_size=6,
)


# Generating nested rows is slow on a loaded machine; the check is the same at any speed.
@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_ROWS)
def test_a_kept_row_decodes_to_an_equal_row(row: dict[str, Any]) -> None:
    data = rows.encode_row(row)
    assert data is not None
    assert rows.decode_row(data) == row


@given(
    st.integers(min_value=0, max_value=2**33),
    st.integers(min_value=0, max_value=999_999_999),
)
def test_a_kept_datetime_keeps_its_nanoseconds(seconds: int, nanos: int) -> None:
    text = (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )
    when = codec.precise_datetime(f"{text}.{nanos:09d}Z")
    data = rows.encode_row({"at": when})
    assert data is not None
    back = rows.decode_row(data)["at"]
    assert back == when and back.nanosecond == nanos % 1000


@pytest.mark.parametrize(
    "value",
    [
        dt.timedelta(seconds=1),  # a duration in raw-written metadata
        dt.datetime(2026, 1, 1),  # naive: no instant to keep
        dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),  # not UTC
        {1: "x"},  # a key that is not a string
        {"x"},  # a set
        (1, 2),  # a tuple: a read returns lists
        decimal.Decimal("1.5"),
    ],
    ids=repr,
)
def test_a_row_holding_a_value_the_index_does_not_keep_is_not_kept(value: Any) -> None:
    assert rows.encode_row({"ok": 1, "metadata": {"v": value}}) is None


def test_decoding_refuses_tags_it_never_writes() -> None:
    import cbor2

    with pytest.raises(cbor2.CBORDecodeError) as caught:
        rows.decode_row(cbor2.dumps(cbor2.CBORTag(6, "a tag the SDK uses for NONE")))
    assert "not one encode_row writes" in str(caught.value.__cause__)


_PARAMS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=20)
    | st.just(JSON_NULL)
    | st.builds(RecordId, st.sampled_from(["memory", "fact"]), st.text(min_size=1, max_size=8))
    | st.builds(
        RecordId,
        st.just("ev"),
        st.lists(st.text(max_size=4) | st.integers(-5, 5), min_size=1, max_size=3),
    )
    | st.datetimes(
        timezones=st.just(dt.UTC)
        | st.none()
        | st.builds(dt.timezone, st.timedeltas(dt.timedelta(hours=-23), dt.timedelta(hours=23)))
    )
    | st.builds(codec.datetime_at, st.integers(0, 2**33), st.integers(0, 999_999_999))
    | st.timedeltas(min_value=dt.timedelta(0)),  # a negative one is refused (below)
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_KEYS, inner, max_size=4)
    ),
    max_leaves=12,
)


def _sdk_request(params: dict[str, Any], **extra: str) -> bytes:
    data: dict[str, Any] = {
        "id": "7",
        "method": "query",
        "params": ["RETURN $p", {k: codec.to_sdk(v) for k, v in params.items()}],
    }
    return sdk_cbor.encode({**data, **extra})


@given(st.dictionaries(_KEYS, _PARAMS, max_size=4), st.booleans())
def test_queries_are_encoded_to_the_sdks_bytes(params: dict[str, Any], session: bool) -> None:
    """The embedded connection's queries go out through cbor2's C encoder (to_wire, then
    encode_query) with the very bytes the SDK's own encoder writes for the same parameters:
    NONE, NULL, record ids, datetimes to the nanosecond, durations, nesting."""
    extra = {"session": str(uuid.UUID(int=3))} if session else {}
    wire = {k: codec.to_wire(v) for k, v in params.items()}
    assert codec.encode_query("7", "RETURN $p", wire, **extra) == _sdk_request(params, **extra)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, [1, 2**64], {"a": {"b": 2**70}}])
def test_integers_past_64_bits_are_refused_before_encoding(value: Any) -> None:
    with pytest.raises(ValidationError, match="64-bit"):
        codec.to_wire(value)


@pytest.mark.parametrize("key", [1, 1.5, None, ("a",)])
def test_wire_object_keys_that_are_not_strings_are_refused(key: Any) -> None:
    with pytest.raises(ValidationError, match="keys must be strings"):
        codec.to_wire({"ok": {key: 1}})


class _Mixed(str, enum.Enum):  # noqa: UP042  (the case StrEnum fixed)
    A = "x"


class _Number(int, enum.Enum):
    ONE = 1


@pytest.mark.parametrize(
    "value",
    [
        _Mixed.A,
        enum.StrEnum("S", {"B": "y"}).B,  # type: ignore[attr-defined]
        _Number.ONE,
        enum.IntEnum("I", {"TWO": 2}).TWO,  # type: ignore[attr-defined]
        {"v": _Mixed.A, "n": [_Number.ONE]},
        decimal.Decimal("1.5"),
        decimal.Decimal(2**63),
        decimal.Decimal("NaN"),
        decimal.Decimal("-Infinity"),
        uuid.UUID(int=7),
        bytearray(b"ab"),
    ],
)
def test_subclasses_and_decimals_are_encoded_as_the_sdk_does(value: Any) -> None:
    """A (str, Enum) goes out as its value (str() of it is "ClassName.MEMBER"), a Decimal as
    SurrealDB's decimal (tag 10): the very bytes the SDK writes."""
    wire = {"p": codec.to_wire(value)}
    assert codec.encode_query("7", "RETURN $p", wire) == _sdk_request({"p": value})


@pytest.mark.parametrize(
    "value",
    [memoryview(b"ab"), collections.deque([1]), 2j, dt.date(2026, 1, 1), object()],
)
def test_a_type_the_sdk_cannot_send_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError, match="cannot encode"):
        codec.to_wire({"nested": [value]})


def test_a_negative_duration_is_refused_in_words() -> None:
    with pytest.raises(ValidationError, match="negative duration"):
        codec.to_wire(dt.timedelta(seconds=-5))


def test_record_ids_of_an_answer_are_checked_as_ours() -> None:
    row = {"id": surrealdb.RecordID("memory", "k1"), "tags": ["a", "b"], "n": [1, 2.5]}
    for _ in range(2):  # the second time the table is known valid
        back = codec.from_sdk([row, dict(row)])
        assert back == [{"id": RecordId("memory", "k1"), "tags": ["a", "b"], "n": [1, 2.5]}] * 2
        assert type(back[0]["id"]) is RecordId and hash(back[0]["id"]) == hash(
            RecordId("memory", "k1")
        )
    assert codec.from_sdk(surrealdb.RecordID("memory", ["a", 1])) == RecordId("memory", ["a", 1])
    with pytest.raises(ValidationError):
        codec.from_sdk(surrealdb.RecordID("not a table", 1))
