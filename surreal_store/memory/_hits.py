"""What a recall answers with: :class:`RecallHit` (its memory a validated :class:`Memory`) for
:func:`surreal_store.memory.recall`, or :class:`Found` (the fields of the memory the doors read)
for :func:`surreal_store.memory._recall.recall_found`; each made from the rows the recall
index keeps (the whole list at once) or from a memory read from the database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Generic, NamedTuple, TypeVar

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from .._errors import ValidationError
from .._types import describe
from ._models import Memory, RecallHit

__all__ = ["FOUND", "HITS", "Found", "Shape", "hit", "hits_of"]

T = TypeVar("T")


@cache
def _hit_list() -> TypeAdapter[list[RecallHit]]:
    return TypeAdapter(list[RecallHit])


def hits_of(
    rows: list[dict[str, Any]],
    keyed: list[tuple[str, float]],
    v_rank: dict[str, tuple[int, float]],
    t_rank: dict[str, tuple[int, float]],
) -> list[RecallHit]:
    """:func:`hit` of each kept row (``rows[i]`` is the memory ``keyed[i]`` names), made by one
    validation of the list."""
    hits: list[dict[str, Any]] = []
    for row, (key, score) in zip(rows, keyed, strict=False):
        vr, tr = v_rank.get(key), t_rank.get(key)
        hits.append(
            {
                "memory": row,
                "score": score,
                "vector_score": None if vr is None else vr[1],
                "text_score": None if tr is None else tr[1],
                "vector_rank": None if vr is None else vr[0],
                "text_rank": None if tr is None else tr[0],
            }
        )
    try:
        return _hit_list().validate_python(hits)
    except PydanticValidationError as exc:
        raise ValidationError(describe(Memory.__name__, exc)) from None


def hit(
    memory: Memory, score: float, vr: tuple[int, float] | None, tr: tuple[int, float] | None
) -> RecallHit:
    """A hit, with each signal's (rank, score) when it ranked the memory."""
    return RecallHit(
        memory=memory,
        score=score,
        vector_score=None if vr is None else vr[1],
        text_score=None if tr is None else tr[1],
        vector_rank=None if vr is None else vr[0],
        text_rank=None if tr is None else tr[0],
    )


class Found(NamedTuple):
    """A recalled memory as the doors read it: the fields of :class:`Memory` they use, each
    as the model gives it, and the hit's score."""

    id: str
    key: str | None
    kind: str
    content: str
    tags: list[str]
    metadata: dict[str, Any]
    created_at: dt.datetime
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    score: float


_new = tuple.__new__  # a NamedTuple's own constructor costs more, per hit


def _found(
    m: Memory, score: float, vr: tuple[int, float] | None, tr: tuple[int, float] | None
) -> Found:
    fields = (m.id, m.key, m.kind, m.content, m.tags, m.metadata)
    return _new(Found, (*fields, m.created_at, m.valid_from, m.valid_until, score))


def _found_of(
    rows: list[dict[str, Any]],
    keyed: list[tuple[str, float]],
    v_rank: dict[str, tuple[int, float]],
    t_rank: dict[str, tuple[int, float]],
) -> list[Found]:
    """:func:`_found` of each kept row (``rows[i]`` is the memory ``keyed[i]`` names), read
    from the row where each field a :class:`Found` holds already has the type the model gives
    it unchanged (a field of the schema's table read back does); otherwise made through the
    model (:func:`hits_of`), which refuses what does not fit."""
    out: list[Found] = []
    for row, (key, score) in zip(rows, keyed, strict=False):
        get = row.get
        name, kind, content, tags, meta = (
            get("key"), get("kind"), get("content"), get("tags"), get("metadata"),
        )  # fmt: skip
        created, since, until = get("created_at"), get("valid_from"), get("valid_until")
        if not (
            type(kind) is str
            and type(content) is str
            and (name is None or type(name) is str)
            and type(meta) is dict
            and type(tags) is list
            and all(type(t) is str for t in tags)
            and isinstance(created, dt.datetime)
            and isinstance(since, dt.datetime)
            and (until is None or isinstance(until, dt.datetime))
        ):
            hits = hits_of(rows, keyed, v_rank, t_rank)
            return [_found(h.memory, h.score, None, None) for h in hits]
        out.append(
            _new(Found, (key, name, kind, content, tags, meta, created, since, until, score))
        )
    return out


@dataclass(frozen=True)
class Shape(Generic[T]):
    """What a recall answers with: made from the rows the index keeps (the whole list at
    once), or from a memory read from the database."""

    kept: Callable[
        [
            list[dict[str, Any]],
            list[tuple[str, float]],
            dict[str, tuple[int, float]],
            dict[str, tuple[int, float]],
        ],
        list[T],
    ]
    hit: Callable[[Memory, float, tuple[int, float] | None, tuple[int, float] | None], T]


HITS: Final = Shape(hits_of, hit)
FOUND: Final = Shape(_found_of, _found)
