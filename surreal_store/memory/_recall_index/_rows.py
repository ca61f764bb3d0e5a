"""The rows the recall index keeps: each memory as a read returns it, in compact CBOR, so that
a recall that finds the index current returns them rather than reading its hits back.

:func:`encode_row` keeps record ids, UTC datetimes to the nanosecond and JSON values;
:func:`decode_row` gives back an equal row. :class:`Rows` holds them by slot.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import cbor2
import numpy as np

from ..._engine._codec import EPOCH, TAG_DATETIME, TAG_RECORD_ID, datetime_at, thaw
from ..._types import RecordId

__all__ = ["Rows", "decode_row", "encode_row"]


class _Unkept(Exception):
    """A value :func:`encode_row` does not keep."""


def _kept(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or kind is bytes:
        return value
    if value is None:
        return None
    if kind is dict:
        if any(type(k) is not str for k in value):
            raise _Unkept
        return {k: _kept(v) for k, v in value.items()}
    if kind is list:
        return [_kept(v) for v in value]
    if kind is RecordId:
        return cbor2.CBORTag(TAG_RECORD_ID, [value.table, _kept(value.key)])
    if isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0):
        # As the engine sends it: [seconds, nanoseconds] (tag 12), which decodes to the same
        # PreciseDatetime, its nanoseconds included.
        delta = value - EPOCH
        us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        seconds, rest = divmod(us, 1_000_000)
        nanos = rest * 1000 + int(getattr(value, "nanosecond", 0))
        return cbor2.CBORTag(TAG_DATETIME, [seconds, nanos])
    raise _Unkept


def encode_row(row: Mapping[str, Any]) -> bytes | None:
    """``row``, as a read returns it, in CBOR that :func:`decode_row` turns back into an equal
    row: record ids, UTC datetimes to the nanosecond, JSON values. ``None`` when it holds a
    value of another kind (a duration, a geometry in some metadata), which is not kept."""
    try:
        return cbor2.dumps(_kept(row if type(row) is dict else dict(row)))
    except (_Unkept, ValueError, TypeError, OverflowError, RecursionError):
        return None


def _row_tag(first: Any, second: Any) -> Any:
    tag = first if isinstance(first, cbor2.CBORTag) else second
    if tag.tag == TAG_DATETIME:
        return datetime_at(*tag.value)
    if tag.tag == TAG_RECORD_ID:
        table, key = tag.value
        return RecordId(table, thaw(key))
    raise ValueError(f"CBOR tag {tag.tag} is not one encode_row writes")


def decode_row(data: bytes) -> Any:
    """The row :func:`encode_row` kept, as a read would return it."""
    return cbor2.loads(data, tag_hook=_row_tag)


class Rows:
    """Each slot's row (:func:`encode_row`) or None: those loaded as one buffer, sliced when
    read (rather than made into a list of every row at load), and those set since."""

    def __init__(self, blob: bytes = b"", ends: np.ndarray[Any, Any] | None = None) -> None:
        self.blob = blob
        self.ends = np.zeros(0, dtype=np.int64) if ends is None else ends
        self.loaded = len(self.ends)
        self.changed: dict[int, bytes | None] = {}
        self.n = self.loaded

    def __len__(self) -> int:
        return self.n

    def append(self, row: bytes | None) -> None:
        self.changed[self.n] = row
        self.n += 1

    def __setitem__(self, slot: int, row: bytes | None) -> None:
        self.changed[slot] = row

    def __getitem__(self, slot: int) -> bytes | None:
        if slot in self.changed:
            return self.changed[slot]
        if not 0 <= slot < self.loaded:
            raise IndexError(slot)
        start = int(self.ends[slot - 1]) if slot else 0
        return self.blob[start : int(self.ends[slot])] or None

    def packed(self) -> tuple[bytes, np.ndarray[Any, Any]]:
        """Every row in one buffer, and where each ends (an empty row is None)."""
        rows = [self[slot] or b"" for slot in range(self.n)]
        return b"".join(rows), np.cumsum([len(r) for r in rows], dtype=np.int64)
