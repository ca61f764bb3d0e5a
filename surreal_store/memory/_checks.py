"""Checks on the values a memory is made of (vectors, tags, counts, times)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any, Final

from .._errors import ValidationError
from .._types import check_text

__all__ = ["MAX_BATCH", "check_positive", "check_tags", "check_utc", "check_vector"]

MAX_BATCH: Final = 1000
"""The most rows one write statement carries."""


def check_vector(value: Any, what: str = "embedding") -> list[float]:
    """``value`` as a list of finite floats (a numpy array is accepted)."""
    if hasattr(value, "tolist"):  # numpy arrays and friends, without importing numpy
        value = value.tolist()
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValidationError(f"{what} must be a sequence of numbers")
    if not value:
        raise ValidationError(f"{what} must not be empty")
    # The common case (floats, e.g. from numpy's tolist or an embedder) checked in C: a NaN or
    # an infinity makes the sum non-finite; so can an overflow of finite values, which the
    # element-by-element path below then judges exactly.
    if set(map(type, value)) == {float} and math.isfinite(sum(value)):
        return list(value)
    out: list[float] = []
    for x in value:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise ValidationError(f"{what} must contain only numbers, not {type(x).__name__}")
        f = float(x)
        if not math.isfinite(f):
            raise ValidationError(f"{what} contains {x!r}")
        out.append(f)
    return out


def check_tags(value: Iterable[str]) -> list[str]:
    """Tags as a sorted list without repeats; one string is refused, not split."""
    if isinstance(value, str):
        raise ValidationError("tags must be a list of strings, not one string")
    return sorted({check_text(t, "a tag") for t in value})


def check_positive(value: int, what: str, *, limit: int) -> int:
    """``value`` checked to be an int in ``[1, limit]``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValidationError(f"{what} must be an int in [1, {limit}], not {value!r}")
    return value


def check_utc(value: dt.datetime | None, what: str) -> dt.datetime | None:
    """A datetime, read as UTC when it has no time zone."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"{what} must be a datetime")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- the embedding space ---------------------------------------------------------------------
