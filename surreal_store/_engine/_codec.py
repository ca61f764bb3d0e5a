"""Values across the SDK boundary: our types to the SDK's and back, and the decoding of the
embedded engine's CBOR answers.

Record ids become :class:`~surreal_store._types.RecordId`, durations ``timedelta``, the SDK's
``Null`` ``None``, tables their names; datetimes keep their nanoseconds (the SDK's
``PreciseDatetime``, which :func:`precise_datetime` and :func:`datetime_at` make).
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Mapping
from typing import Any, Final

import cbor2
from pydantic import BaseModel

from .. import _errors as e
from .._types import JSON_NULL, RecordId
from . import _sdk as sdk
from ._sdk import cbor as sdk_cbor
from ._sdk import constants as sdk_constants

__all__ = [
    "EPOCH",
    "TAG_DATETIME",
    "TAG_RECORD_ID",
    "datetime_at",
    "decode",
    "encode_query",
    "from_sdk",
    "precise_datetime",
    "thaw",
    "to_sdk",
    "to_wire",
]

TAG_NONE: Final = sdk_constants.TAG_NONE
TAG_DATETIME: Final = sdk_constants.TAG_DATETIME_COMPACT
TAG_RECORD_ID: Final = sdk_constants.TAG_RECORD_ID
EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_new_datetime: Final = dt.datetime.__new__
_set_slot: Final = object.__setattr__
_SCALARS = (str, int, float, bool, type(None), bytes, dt.datetime)
# Exact types that cross the boundary unchanged; checked with ``type(v) in`` (no call per value).
_PASS = frozenset({str, int, float, bool, type(None), bytes, dt.datetime, sdk.PreciseDatetime})
_DICT = frozenset({dict})
_PLAIN_KEYS = frozenset({str, int})
_new_record_id: Final = object.__new__
# Table names of record ids decoded so far, checked once each (a schema has a few dozen).
_VALID_TABLES: set[str] = set()
_MAX_VALID_TABLES: Final = 4096
# What cbor2's C encoder writes as the SDK's encoder does; everything else is converted.
_WIRE_PASS = frozenset({str, float, bool, bytes})
_WIRE_NONE: Final = cbor2.CBORTag(TAG_NONE, None)
_TAG_STRING_DATETIME: Final = sdk_constants.TAG_DATETIME
_TAG_DURATION: Final = sdk_constants.TAG_DURATION_COMPACT
_TAG_DECIMAL: Final = sdk_constants.TAG_DECIMAL_STRING
# What reaches cbor2 as it is: bytes-likes and UUIDs it writes as the SDK does, and the
# SDK's own types (:func:`_wire_default`); any other type is refused, as the SDK refuses it.
_WIRE_SDK_TYPES = (
    bytearray,
    uuid.UUID,
    sdk.RecordID,
    sdk.NullType,
    sdk.Duration,
    sdk.Table,
)
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1


def datetime_at(seconds: int = 0, nanos: int = 0) -> dt.datetime:
    """The SDK's PreciseDatetime for ``[seconds, nanoseconds]`` (tag 12, trailing zeros
    omitted), as its decoder makes it but without its parsing: recall decodes several per
    memory."""
    micros, rest = divmod(nanos, 1000)
    at = EPOCH + dt.timedelta(seconds=seconds, microseconds=micros)
    value = _new_datetime(
        sdk.PreciseDatetime, at.year, at.month, at.day, at.hour, at.minute, at.second,
        at.microsecond, dt.UTC,
    )  # fmt: skip
    _set_slot(value, "nanosecond", rest)
    return value


def precise_datetime(text: str) -> dt.datetime:
    """An RFC 3339 UTC timestamp with up to nine fractional digits, as a datetime that keeps
    its nanoseconds when written (the SDK's own type)."""
    head, _, frac = text.rstrip("Z").partition(".")
    digits = (frac + "000000000")[:9]
    base = dt.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(
        microsecond=int(digits[:6]), tzinfo=dt.UTC
    )
    return sdk.PreciseDatetime(
        base.year, base.month, base.day, base.hour, base.minute, base.second,
        base.microsecond, tzinfo=dt.UTC, nanosecond=int(digits[6:]),
    )  # fmt: skip


def thaw(value: Any) -> Any:
    """``value`` with the tuples and frozen dicts cbor2 makes inside a tag as lists and dicts."""
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    if isinstance(value, cbor2.frozendict):
        return {k: thaw(v) for k, v in value.items()}
    return value


def _decode_tag(first: Any, second: Any) -> Any:
    # cbor2's C decoder calls the hook as (tag, immutable) where its documentation says
    # (decoder, tag): the tag is taken from where it is.
    tag = first if isinstance(first, cbor2.CBORTag) else second
    if tag.tag == TAG_NONE:
        # The most common tag in an answer: every absent field of every row.
        return None
    if tag.tag == TAG_DATETIME and type(tag.value) is tuple:
        return datetime_at(*tag.value)
    # Inside a tag it decodes arrays as tuples and maps as FrozenDicts (they might be
    # keys); the SDK's decoder gives lists and dicts (a record id's array key).
    return sdk_cbor.tag_decoder(None, cbor2.CBORTag(tag.tag, thaw(tag.value)))  # type: ignore[arg-type]


def decode(data: bytes) -> Any:
    """The SDK's CBOR decoding, by cbor2's C decoder with the SDK's own tag decoder.

    The SDK decodes with a pure-Python copy of cbor2, which makes reading vectors (a change
    feed, a rebuild) cost more than the engine's work. The one difference, CBOR null as
    ``None`` where the SDK has ``Null``, is erased by :func:`from_sdk` anyway;
    tests/test_client compares both decoders."""
    return cbor2.loads(data, tag_hook=_decode_tag)


def _string_keys(value: Mapping[Any, Any]) -> None:
    for k in value:
        if type(k) is not str:
            # str(k) would store {1: 2} as {"1": 2}: refused rather than coerced.
            raise e.ValidationError(f"object keys must be strings, not {k!r}")


def _nanos(value: dt.timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1000


def to_sdk(value: Any) -> Any:
    """A query parameter as the SDK encodes it."""
    if type(value) in _PASS or isinstance(value, _SCALARS):
        return value
    if isinstance(value, RecordId):
        return sdk.RecordID(value.table, to_sdk(value.key))
    if value is JSON_NULL:
        return sdk.Null
    if isinstance(value, Mapping):
        _string_keys(value)
        return {k: to_sdk(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        # Vectors are long lists of scalars: those are tested inline rather than recursed into.
        return [v if type(v) in _PASS else to_sdk(v) for v in value]
    if isinstance(value, dt.timedelta):
        return sdk.Duration(_nanos(value))
    if isinstance(value, BaseModel):
        return to_sdk(value.model_dump(mode="python", exclude_none=True))
    if isinstance(value, set | frozenset):
        return [to_sdk(v) for v in value]
    return value


def from_sdk(value: Any) -> Any:
    """A value of an answer as the rest of the package reads it.

    Lists whose items all pass unchanged (vectors, tags) are returned as they are: an answer
    is decoded for one call alone, so nobody else holds them."""
    kind = type(value)
    if kind in _PASS:
        return value
    # Rows are dicts and lists of mostly scalars: those are tested inline rather than recursed.
    if kind is dict:
        return _from_dict(value)
    if kind is list:
        kinds = set(map(type, value))
        if kinds <= _PASS:
            return value
        if kinds == _DICT:  # a statement's rows
            return [_from_dict(v) for v in value]
        return [v if type(v) in _PASS else from_sdk(v) for v in value]
    if kind is sdk.RecordID:
        return _record_id(value)
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [from_sdk(v) for v in value]
    if isinstance(value, dict):
        return {k: from_sdk(v) for k, v in value.items()}
    if isinstance(value, sdk.RecordID):
        return _record_id(value)
    if isinstance(value, sdk.NullType):
        return None
    if isinstance(value, sdk.Duration):
        return dt.timedelta(microseconds=value.elapsed // 1000)
    if isinstance(value, sdk.Table):
        return str(value.table_name)
    return value


def _from_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    return {k: v if type(v) in _PASS else from_sdk(v) for k, v in value.items()}


def _record_id(value: sdk.RecordID) -> RecordId:
    """Our record id for the SDK's. A string or integer key of a table already seen valid is
    set without :class:`RecordId`'s checks (rows hold one or several record ids each)."""
    table, key = value.table_name, value.id
    if table in _VALID_TABLES and type(key) in _PLAIN_KEYS:
        rid = _new_record_id(RecordId)
        _set_slot(rid, "table", table)
        _set_slot(rid, "key", key)
        return rid
    rid = RecordId(table, from_sdk(key))
    if len(_VALID_TABLES) < _MAX_VALID_TABLES:
        _VALID_TABLES.add(table)
    return rid


def _wire_datetime(value: dt.datetime) -> cbor2.CBORTag:
    # The SDK's form: an RFC 3339 string (tag 0), UTC as "Z", nanoseconds where it has them.
    if isinstance(value, sdk.PreciseDatetime):
        return cbor2.CBORTag(_TAG_STRING_DATETIME, value.isoformat_with_nanoseconds())
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return cbor2.CBORTag(_TAG_STRING_DATETIME, value.isoformat().replace("+00:00", "Z"))


def to_wire(value: Any) -> Any:
    """A query parameter as cbor2's C encoder writes it with the bytes the SDK's own
    (pure-Python) encoder would: ``None`` as NONE (tag 6), datetimes as tag 0 strings,
    record ids, decimals and durations as their tags, subclasses of str, int and float (enums)
    as their plain values. Checked as :func:`to_sdk` and the SDK check (string keys, 64-bit
    integers, no negative duration); a type neither knows is refused."""
    kind = type(value)
    if kind in _WIRE_PASS:
        return value
    if value is None:
        return _WIRE_NONE
    if kind is int:
        if not _I64_MIN <= value <= _I64_MAX:
            raise e.ValidationError(
                f"cannot send a value: integer {value} is outside SurrealDB's signed 64-bit "
                "range; send it as a string or a Decimal instead"
            )
        return value
    if kind is dict or isinstance(value, Mapping):
        _string_keys(value)
        return {k: v if type(v) in _WIRE_PASS else to_wire(v) for k, v in value.items()}
    if kind is list or isinstance(value, list | tuple):
        # Vectors are long lists of floats: passed through when every item is one.
        if set(map(type, value)) <= _WIRE_PASS:
            return value
        return [v if type(v) in _WIRE_PASS else to_wire(v) for v in value]
    if isinstance(value, RecordId):
        return cbor2.CBORTag(TAG_RECORD_ID, [value.table, to_wire(value.key)])
    if isinstance(value, dt.datetime):
        return _wire_datetime(value)
    if value is JSON_NULL:
        return None  # CBOR null: SurrealDB's NULL
    if isinstance(value, int):  # an IntEnum or an (int, Enum): its number, as the SDK writes it
        return to_wire(int.__int__(value))
    if isinstance(value, str):  # a StrEnum or a (str, Enum): its text, not what str() says
        return str.__str__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return float(value)  # NaN and the infinities as the SDK writes them: floats
        return cbor2.CBORTag(_TAG_DECIMAL, str(value))
    if isinstance(value, dt.timedelta):
        ns = _nanos(value)
        if ns < 0:
            raise e.ValidationError(
                f"cannot send a value: a negative duration ({value}); SurrealDB's are not"
            )
        return cbor2.CBORTag(_TAG_DURATION, list(divmod(ns, 1_000_000_000)))
    if isinstance(value, BaseModel):
        return to_wire(value.model_dump(mode="python", exclude_none=True))
    if isinstance(value, set | frozenset):
        return [to_wire(v) for v in value]
    if isinstance(value, _WIRE_SDK_TYPES):
        return value
    raise e.ValidationError(f"cannot send a value: cannot encode {kind.__name__} for SurrealDB")


def _wire_default(encoder: Any, value: Any) -> None:
    # Only values :func:`to_wire` leaves as they are reach here: the SDK's own types.
    if isinstance(value, sdk.RecordID):
        encoder.encode(cbor2.CBORTag(TAG_RECORD_ID, [value.table_name, to_wire(value.id)]))
    elif isinstance(value, sdk.NullType):
        encoder.encode(None)
    elif isinstance(value, sdk.Duration):
        encoder.encode(cbor2.CBORTag(_TAG_DURATION, list(value.get_seconds_and_nano())))
    elif isinstance(value, sdk.Table):
        encoder.encode(cbor2.CBORTag(sdk_constants.TAG_TABLE_NAME, value.table_name))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} for SurrealDB")


def encode_query(request_id: str, text: str, params: dict[str, Any], **extra: str) -> bytes:
    """A ``query`` request as the SDK frames it (``id``, ``method``, ``params``, then
    ``session``/``txn`` when given), with ``params`` already made by :func:`to_wire`, by
    cbor2's C encoder: several times faster than the SDK's for a bulk write's rows."""
    data: dict[str, Any] = {"id": request_id, "method": "query", "params": [text, params]}
    data.update(extra)
    return cbor2.dumps(data, default=_wire_default, timezone=dt.UTC)
