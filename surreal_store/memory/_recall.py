"""Recall: the memories most relevant to a text and/or a vector, with exact filters.

Each mode's query comes from one function (:func:`_vector_query`, :func:`_fulltext_query`,
:func:`_hybrid_query`) that returns its text and parameters. Only validated ints (k, ef,
candidates: the KNN operator takes no parameters) and the fixed condition texts of
:data:`_FILTERS` are written into a query; every value is a parameter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from .._api import public
from .._errors import ValidationError
from .._executor import Executor
from .._match import match_conditions
from .._surql import as_array
from .._types import RecordId, check_text
from ._checks import check_positive, check_tags, check_utc, check_vector
from ._embedders import Embedder, check_embedder, embed_texts
from ._models import FIELDS, Memory, RecallHit
from ._reads import visible_commits
from ._space import required_space

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_EF", "RecallMode", "recall"]

DEFAULT_EF: Final = 64
"""Vector index search effort used when ``recall(ef=...)`` is not given (``bench memory``)."""
DEFAULT_CANDIDATES: Final = 20
"""How many candidates each signal contributes to a hybrid fusion, at least."""
_RRF_K: Final = 60
_MAX_K: Final = 1000
_MAX_EF: Final = 10_000

RecallMode = Literal["vector", "fulltext", "hybrid"]

# Filter name -> condition. Only these texts are ever joined into a recall query; every value
# is a parameter of the same name.
_FILTERS: Final[dict[str, str]] = {
    "scope": "scope = $scope",
    "kinds": "kind IN $kinds",
    "key": "key = $key",
    "tags": "tags CONTAINSALL $tags",
    "agent": "agent = $agent",
    "commits": "commit IN $commits",
    "created_after": "created_at >= $created_after",
    "created_before": "created_at < $created_before",
    "valid_at": "valid_from <= $valid_at AND (valid_until = NONE OR valid_until > $valid_at)",
    "as_of": (
        "created_at <= $as_of AND valid_from <= $as_of "
        "AND (valid_until = NONE OR valid_until > $as_of)"
    ),
}
_LIVE: Final = "invalidated_at = NONE"
_LIVE_AS_OF: Final = "(invalidated_at = NONE OR invalidated_at > $as_of)"
_STASHED: Final = "invalidated_at != NONE AND embedding_stash != NONE"
_STASHED_AS_OF: Final = "invalidated_at > $as_of AND embedding_stash != NONE"


@dataclass(frozen=True)
class _Filters:
    """The filters of one recall: conditions joined from :data:`_FILTERS` and their values."""

    where: str
    """`` AND <condition>`` per filter: what the vector index's candidates must satisfy."""
    text_where: str
    """The same, and live (at ``as_of``) unless invalidated memories are asked for."""
    stashed: str | None
    """Which invalidated memories' set-aside vectors are scanned too, if any."""
    params: dict[str, Any]


# Vector search during a re-embed would silently miss the memories not yet moved.
_REEMBEDDING_THROW: Final = (
    "THROW 'reembedding: the store is being re-embedded; vector recall is available again "
    "when memory.reembed finishes'"
)
# The status is read by a sub-SELECT: a record's field read inside an IF fails on 3.2.4.
_IS_REEMBEDDING: Final = "(SELECT VALUE status FROM ONLY embedding_space:active) = 'reembedding'"
_NOT_REEMBEDDING: Final = f"IF {_IS_REEMBEDDING} {{ {_REEMBEDDING_THROW} }};\n"


def _live_knn(*, cols: str, n: int, ef: int, where: str) -> str:
    # Only live memories have a vector in the index: no per-candidate check is needed for them.
    return (
        f"SELECT {cols}, vector::distance::knn() AS distance FROM memory "
        f"WHERE embedding <|{n},{ef}|> $vector{where} ORDER BY distance LIMIT {n}"
    )


def _vector_statements(f: _Filters, *, cols: str, n: int, ef: int) -> str:
    """Statements leaving the ``n`` nearest admitted memories in ``$v``.

    With filters, the DiskANN index filters the candidates it found (HNSW filters during the
    search): a selective filter can leave fewer than ``n``. The search is then repeated with 8
    and 64 times the effort, and as a last resort the admitted memories are compared exactly,
    so a filter never loses a memory that it admits. Invalidated memories, when asked for, are
    an exact scan of the (few) stashed vectors."""
    out = f"LET $v = {_live_knn(cols=cols, n=n, ef=ef, where=f.where)};\n"
    if f.where:
        out += as_array("$v")
        for factor in (8, 64):
            wider = min(ef * factor, _MAX_EF)
            knn = _live_knn(cols=cols, n=n, ef=wider, where=f.where)
            out += f"LET $v = IF array::len($v) >= {n} {{ $v }} ELSE {{ ({knn}) }};\n"
            out += as_array("$v")
            if wider == _MAX_EF:
                break
        exact = (
            f"SELECT {cols}, 1 - vector::similarity::cosine(embedding, $vector) AS distance "
            f"FROM memory WHERE embedding != NONE{f.where} ORDER BY distance LIMIT {n}"
        )
        out += f"LET $v = IF array::len($v) >= {n} {{ $v }} ELSE {{ ({exact}) }};\n"
        out += as_array("$v")
    if f.stashed is None:
        return out
    scan = (
        f"SELECT {cols}, 1 - vector::similarity::cosine(embedding_stash, $vector) AS distance "
        f"FROM memory WHERE {f.stashed}{f.where} ORDER BY distance LIMIT {n}"
    )
    return (
        out
        + f"LET $s = {scan};\n"
        + f"LET $v = (SELECT * FROM array::concat($v, $s) ORDER BY distance LIMIT {n});\n"
        + as_array("$v")
    )


def _text_statements(f: _Filters, *, cols: str, n: int, enough: int) -> str:
    """Statements leaving the ``n`` best BM25 matches in ``$t``.

    All the query's terms first; any of them when that finds fewer than ``enough``: k in
    full-text mode, one in hybrid mode (where the vector signal brings breadth, and matching
    any term of a query over a large store costs far more than the vector search). Without a
    term left (only function words), a match would select every memory, so there is none."""
    return (
        "LET $terms = search::analyze('memory_text', $text);\n"
        f"LET $t = IF $terms = [] {{ [] }} ELSE {{ (SELECT {cols}, search::score(1) AS bm25 "
        f"FROM memory WHERE content @1@ $text{f.text_where} ORDER BY bm25 DESC LIMIT {n}) }};\n"
        + as_array("$t")
        + f"LET $t = IF $terms = [] OR array::len($t) >= {enough} {{ $t }} ELSE {{ (SELECT "
        f"{cols}, search::score(2) AS bm25 FROM memory WHERE content @2,OR@ $text"
        f"{f.text_where} ORDER BY bm25 DESC LIMIT {n}) }};\n" + as_array("$t")
    )


def _vector_query(
    f: _Filters, *, vector: list[float], k: int, ef: int
) -> tuple[str, dict[str, Any]]:
    params = {**f.params, "vector": vector}
    if not f.where and f.stashed is None:
        # The plain vector recall as one statement: each statement costs.
        knn = _live_knn(cols=FIELDS, n=k, ef=ef, where="")
        return f"IF {_IS_REEMBEDDING} {{ {_REEMBEDDING_THROW} }} ELSE {{ ({knn}) }};", params
    return _NOT_REEMBEDDING + _vector_statements(f, cols=FIELDS, n=k, ef=ef) + "$v;", params


def _fulltext_query(f: _Filters, *, text: str, k: int) -> tuple[str, dict[str, Any]]:
    return _text_statements(f, cols=FIELDS, n=k, enough=k) + "$t;", {**f.params, "text": text}


def _hybrid_query(
    f: _Filters, *, vector: list[float], text: str, k: int, ef: int, n: int
) -> tuple[str, dict[str, Any]]:
    # Both signals rank ids only; the fused top k are read once, at the end.
    query = (
        _NOT_REEMBEDDING
        + _vector_statements(f, cols="id", n=n, ef=ef)
        + _text_statements(f, cols="id", n=n, enough=1)
        + f"LET $fused = search::rrf([$v, $t], {k}, {_RRF_K});\n"
        + f"{{ v: $v.id, t: $t.id, fused: $fused, rows: (SELECT {FIELDS} FROM $fused.id) }};"
    )
    return query, {**f.params, "vector": vector, "text": text}


class _Scored(BaseModel):
    """A recall row: a memory's columns plus its score column (``distance`` or ``bm25``).

    The row is validated once, as the memory (which ignores the score column) beside the
    score: cheaper than a Memory subclass copied into a plain Memory."""

    memory: Memory
    score: float

    @model_validator(mode="before")
    @classmethod
    def _split(cls, row: Any) -> Any:
        if isinstance(row, dict):
            return {"memory": row, "score": row.get("distance", row.get("bm25"))}
        return row


class _Fused(BaseModel):
    id: RecordId
    rrf_score: float
    distance: float | None = None
    bm25: float | None = None


class _HybridResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    v: list[RecordId]
    t: list[RecordId]
    fused: list[_Fused]
    rows: list[Memory]


@public
async def recall(
    db: Executor,
    *,
    text: str | None = None,
    vector: Sequence[float] | None = None,
    embedder: Embedder | None = None,
    k: int = 10,
    mode: RecallMode | None = None,
    scope: str | None = None,
    kind: str | Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    key: str | None = None,
    agent: str | None = None,
    commit: str | None = None,
    branch: str | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    valid_at: dt.datetime | None = None,
    as_of: dt.datetime | None = None,
    metadata: Mapping[str, Any] | None = None,
    include_invalidated: bool = False,
    ef: int | None = None,
    candidates: int | None = None,
) -> list[RecallHit]:
    """The ``k`` memories most relevant to ``text`` and/or ``vector``, best first.

    ``mode`` defaults to ``hybrid`` when there is both a text and a vector (or an ``embedder``
    to embed the text), ``vector`` with only a vector, and ``fulltext`` with only text.
    Filters narrow the candidates inside the index search: ``kind`` (one or several),
    ``tags`` (all of them), ``commit``/``branch`` (memories of that commit's history),
    ``created_*`` ranges, ``valid_at`` (valid at that time) and ``as_of`` (what was recorded,
    valid and not yet invalidated at that time) and ``metadata`` (a filter on the metadata:
    ``{"path.to": value}`` or ``{"path": {"$gte": 3}}``, with ``$eq $ne $gt $gte $lt $lte``;
    ``None`` matches null or missing; order operators compare numbers with numbers and
    strings with strings). Invalidated memories are left out unless
    ``include_invalidated``. ``ef`` is the index's search effort (default :data:`DEFAULT_EF`):
    the candidates it weighs per query. With filters, a search that finds fewer than ``k``
    admissible memories is repeated with more effort and, failing that, the memories the
    filters admit are compared exactly.
    """
    check_positive(k, "k", limit=_MAX_K)
    if text is not None:
        check_text(text, "text")
    if vector is not None:
        if embedder is not None:
            raise ValidationError("give vector= or embedder=, not both")
        vector = check_vector(vector, "vector")
    mode = mode or (
        "hybrid"
        if text is not None and (vector is not None or embedder is not None)
        else "vector"
        if vector is not None
        else "fulltext"
    )
    if mode not in ("vector", "fulltext", "hybrid"):
        raise ValidationError(f"mode must be vector, fulltext or hybrid, not {mode!r}")
    if mode != "vector" and text is None:
        raise ValidationError(f"{mode} recall needs text=")
    if commit is not None and branch is not None:
        raise ValidationError("give commit= or branch=, not both")
    ef = check_positive(ef if ef is not None else max(DEFAULT_EF, k), "ef", limit=_MAX_EF)
    n = check_positive(
        candidates if candidates is not None else max(DEFAULT_CANDIDATES, 2 * k),
        "candidates",
        limit=10_000,
    )
    params: dict[str, Any] = {}
    conditions: list[str] = []

    def add(name: str, value: Any) -> None:
        if value is not None:
            conditions.append(_FILTERS[name])
            params[name] = value

    add("scope", check_text(scope, "scope") if scope is not None else None)
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        add("kinds", [check_text(x, "kind") for x in kinds])
    add("tags", check_tags(tags) if tags is not None else None)
    add("key", check_text(key, "key") if key is not None else None)
    add("agent", RecordId("agent", check_text(agent, "agent")) if agent is not None else None)
    add("created_after", check_utc(created_after, "created_after"))
    add("created_before", check_utc(created_before, "created_before"))
    add("valid_at", check_utc(valid_at, "valid_at"))
    add("as_of", check_utc(as_of, "as_of"))
    if metadata is not None:
        matched, matched_params = match_conditions(metadata, field="metadata", prefix="mf")
        conditions.extend(matched)
        params.update(matched_params)
    if mode != "fulltext" and vector is None:
        if embedder is None:
            raise ValidationError(f"{mode} recall needs vector= or embedder=")
        space = await required_space(db)
        check_embedder(embedder, space)
        assert text is not None
        (vector,) = await embed_texts(embedder, [text], space.index_dimension)
    add("commits", await visible_commits(db, commit=commit, branch=branch))
    where = "".join(f" AND {c}" for c in conditions)
    live = _LIVE_AS_OF if as_of is not None else _LIVE
    stashed = None
    if include_invalidated or as_of is not None:
        stashed = _STASHED_AS_OF if as_of is not None and not include_invalidated else _STASHED
    filters = _Filters(
        where=where,
        text_where=where if include_invalidated else f"{where} AND {live}",
        stashed=stashed,
        params=params,
    )
    if mode == "vector":
        assert vector is not None
        query, args = _vector_query(filters, vector=vector, k=k, ef=ef)
        rows = await db.query(query, _Scored, **args)
        return [
            RecallHit(memory=r.memory, score=1 - r.score, vector_score=1 - r.score, vector_rank=i)
            for i, r in enumerate(rows, 1)
        ]
    assert text is not None
    if mode == "fulltext":
        query, args = _fulltext_query(filters, text=text, k=k)
        trows = await db.query(query, _Scored, **args)
        return [
            RecallHit(memory=r.memory, score=r.score, text_score=r.score, text_rank=i)
            for i, r in enumerate(trows, 1)
        ]
    assert vector is not None
    query, args = _hybrid_query(filters, vector=vector, text=text, k=k, ef=ef, n=n)
    result = (await db.query(query, _HybridResult, **args))[-1]
    by_id = {m.id: m for m in result.rows}
    v_rank = {rid.key: i for i, rid in enumerate(result.v, 1)}
    t_rank = {rid.key: i for i, rid in enumerate(result.t, 1)}
    hits: list[RecallHit] = []
    for f in result.fused:
        mid = str(f.id.key)
        if mid not in by_id:  # forgotten between the search and the read
            continue
        hits.append(
            RecallHit(
                memory=by_id[mid],
                score=f.rrf_score,
                vector_score=None if f.distance is None else 1.0 - f.distance,
                text_score=f.bm25,
                vector_rank=v_rank.get(mid),
                text_rank=t_rank.get(mid),
            )
        )
    return hits
