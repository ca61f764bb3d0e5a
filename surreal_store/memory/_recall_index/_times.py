"""Times as the recall index's columns hold them, and its time filters.

A time column holds int64 nanoseconds since the epoch, which reach 1677-09-21 to 2262-04-11.
A time outside (a memory valid until 2300, or from 1500) is held as a stand-in, ``LATER`` or
``EARLIER``, which orders it right against every time inside; its exact value is kept beside
the columns (``far``: slot -> column -> nanoseconds), and a filter decides those slots exactly.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np

__all__ = ["NO_TIME", "TIMES", "Far", "held", "ns", "time_filters", "time_mask"]

NO_TIME: Final = int(np.iinfo(np.int64).max)
"""An open end, or no time: after every time."""
LATER: Final = NO_TIME - 1
EARLIER: Final = int(np.iinfo(np.int64).min)
TIMES: Final = ("created", "valid_from", "valid_until", "invalidated")
"""The time columns."""
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Far = dict[int, dict[str, int]]
"""slot -> {time column: the exact time} where the column holds a stand-in."""

_COLUMNS: Final[dict[str, Callable[[Any, int], Any]]] = {
    ">=": np.greater_equal,
    ">": np.greater,
    "<=": np.less_equal,
    "<": np.less,
}
# The same on Python ints, which hold any time exactly.
_EXACT: Final[dict[str, Callable[[int, int], bool]]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


def ns(value: Any) -> int:
    """A datetime as int nanoseconds since the epoch (the SDK's PreciseDatetime keeps them),
    exactly, whatever its year; ``None`` as :data:`NO_TIME` (an open end)."""
    if value is None:
        return NO_TIME
    delta = value - _EPOCH
    n = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
    return int(n) + int(getattr(value, "nanosecond", 0))


def held(n: int) -> int:
    """What a time column holds for the time ``n`` (:func:`ns`): ``n`` itself, or its
    stand-in for a time outside the columns' range."""
    if n == NO_TIME or EARLIER < n < LATER:
        return n
    return LATER if n > 0 else EARLIER


def time_filters(v: Mapping[str, Any], include_invalidated: bool) -> list[tuple[str, str, int]]:
    """Recall's time filters in ``v`` as comparisons of time columns: (column, op, time).
    Without ``as_of``, leaving out the invalidated is not one of them (``invalidated`` holds
    :data:`NO_TIME` exactly)."""
    timed: list[tuple[str, str, int]] = []
    if "created_after" in v:
        timed.append(("created", ">=", ns(v["created_after"])))
    if "created_before" in v:
        timed.append(("created", "<", ns(v["created_before"])))
    if "valid_at" in v:
        t = ns(v["valid_at"])
        timed += [("valid_from", "<=", t), ("valid_until", ">", t)]
    if "as_of" in v:
        t = ns(v["as_of"])
        timed += [("created", "<=", t), ("valid_from", "<=", t), ("valid_until", ">", t)]
        if not include_invalidated:
            timed.append(("invalidated", ">", t))
    return timed


def _passes(value: int, op: str, t: int) -> bool:
    if value == NO_TIME:
        return op in (">", ">=")
    return _EXACT[op](value, t)


def time_mask(
    cols: Mapping[str, np.ndarray[Any, Any]], far: Far, timed: list[tuple[str, str, int]], n: int
) -> np.ndarray[Any, Any]:
    """The first ``n`` slots that pass every comparison in ``timed`` (:func:`time_filters`)."""
    ok = np.ones(n, dtype=np.bool_)
    for column, op, t in timed:
        ok &= _COLUMNS[op](cols[column][:n], held(t))
    # A stand-in compares right with every time inside the range, but not with a filter's
    # time outside it on the same side: the slots with one are decided exactly.
    for slot, exact in far.items():
        if slot < n:
            ok[slot] = all(
                _passes(exact.get(column, int(cols[column][slot])), op, t)
                for column, op, t in timed
            )
    return ok
