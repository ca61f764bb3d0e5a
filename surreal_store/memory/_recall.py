"""Recall: the memories most relevant to a text and/or a vector, with exact filters.

Candidates come from the derived recall index (:mod:`._recall_index`), filtered by a mask over
its columns that admits exactly what the database's filters (:data:`_FILTERS`) admit. A recall
looks at the memory table's change feed in one round trip: if nothing changed since the
index's versionstamp, the index is the table, and the hits are the rows it keeps (rather than
read back from the database); if something changed, it catches up and chooses again.
Metadata filters, and rows the index does not keep, are read from the database with the
recall's filters (every value a parameter). Sessions that cannot read the feed (agents) recall
by an exact scan in the database, within their permissions (:func:`_scan_vector`,
:func:`_scan_text`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from .._api import public
from .._errors import DimensionError, RecallIndexError, StoreStateError, ValidationError
from .._executor import Executor
from .._match import match_conditions
from .._rank import rrf
from .._types import RecordId, check_text
from ._checks import check_positive, check_tags, check_utc, check_vector
from ._embedders import Embedder, check_embedder, embed_texts
from ._hits import FOUND, HITS, Found, Shape
from ._models import FIELDS, EmbeddingSpace, Memory, RecallHit
from ._reads import visible_commits
from ._recall_index import derived_index, rebuild_broken, refresh_index
from ._recall_index._failures import Broken, FeedUnavailable, Stale, guarded
from ._space import get_space

if TYPE_CHECKING:
    from ._recall_index._index import DerivedIndex

__all__ = ["DEFAULT_CANDIDATES", "DEFAULT_EF", "Found", "RecallMode", "recall", "recall_found"]

DEFAULT_EF: Final = 64
"""The recall index's search effort when ``recall(ef=...)`` is not given (``bench memory``)."""
DEFAULT_CANDIDATES: Final = 20
"""How many candidates each signal contributes to a hybrid fusion, at least."""
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


@dataclass(frozen=True)
class _Filters:
    """The filters of one recall: the database's conditions, their values, and the same
    filters as Python values for the index's mask."""

    where: str
    """``<condition> AND ...`` (``true`` without filters), liveness included."""
    params: dict[str, Any]
    values: dict[str, Any]
    include_invalidated: bool
    metadata: bool


# What one recall asks: (mode, vector, text, k, ef, n): how many hits, the index's search
# effort, how many candidates each signal brings to a fusion. A plain tuple, as it is built on
# every recall (a NamedTuple's constructor costs more than the calls it spares).
_Ask = tuple[RecallMode, list[float] | None, str | None, int, int, int]


async def _metadata_mask(db: Executor, index: DerivedIndex, f: _Filters, mask: Any) -> Any:
    """Metadata filters are the database's to judge: the memories it admits, as a mask."""
    ids = await db.query(
        f"SELECT VALUE record::id(id) FROM memory WHERE {f.where};", str, **f.params
    )
    return index.admit_only(mask, ids)


async def _hydrate(
    db: Executor,
    index: DerivedIndex,
    ranked: list[tuple[str, float]],
    f: _Filters,
    k: int,
    *,
    current: tuple[int, dict[str, Any] | None] | None = None,
) -> list[tuple[Memory, float]]:
    """The first ``k`` of ``ranked`` (memory key, score) that the database admits, read from
    it.

    ``current``: the (versionstamp, embedding space) the candidates reflect; the first read
    also checks, in the same round trip, that the table has not changed since, and raises
    :class:`Stale` if it has."""
    from ._recall_index._feed import read_if_current

    out: list[tuple[Memory, float]] = []
    start = 0
    while len(out) < k and start < len(ranked):
        chunk = ranked[start : start + max(k - len(out), 8)]
        start += len(chunk)
        ids = [RecordId("memory", key) for key, _ in chunk]
        text = f"SELECT {FIELDS} FROM $ids WHERE {f.where};"
        if current is not None:
            found = await read_if_current(db, index, current, text, ids=ids, **f.params)
            current = None
            rows = [Memory.model_validate(r) for r in found or ()]
        else:
            rows = await db.query(text, Memory, ids=ids, **f.params)
        by_id = {m.id: m for m in rows}
        for key, score in chunk:
            memory = by_id.get(key)
            if memory is not None:
                out.append((memory, score))
    if current is not None:  # nothing was read: the candidates still need the check
        await read_if_current(db, index, current, None)
    return out[:k]


K = TypeVar("K")
T = TypeVar("T")


def _fuse(*rankings: Sequence[tuple[K, float]]) -> list[tuple[K, float]]:
    """Reciprocal-rank fusion (:func:`surreal_store._rank.rrf`) of rankings (best first) of
    the same kind of key, best first."""
    scores = rrf(*([key for key, _ in ranking] for ranking in rankings))
    return sorted(scores.items(), key=lambda x: -x[1])


async def _indexed(
    db: Executor,
    index: DerivedIndex,
    f: _Filters,
    ask: _Ask,
    shape: Shape[T],
    *,
    current: bool = False,
) -> list[T]:
    """Recall through the index. ``current``: check that the index was current in the round
    trip of the first read (:func:`_hydrate`), rather than catching it up before."""
    from ._recall_index._feed import read_if_current

    mode, vector, text, k, ef, n = ask
    async with index.lock:
        with guarded():
            mask = index.mask(f.values, include_invalidated=f.include_invalidated)
        # What the candidates reflect: a look at the feed from here sees any change since.
        state = (index.versionstamp, index.space) if current else None
        incarnation = index.incarnation
    if f.metadata:
        mask = await _metadata_mask(db, index, f, mask)
    with guarded():
        terms = index.terms(text) if text is not None else []
    want = k if mode != "hybrid" else n
    remask = False
    while True:
        if remask:
            mask, remask = await _metadata_mask(db, index, f, mask), False
        async with index.lock:
            with guarded():
                if index.incarnation != incarnation:
                    # Rebuilt meanwhile (slots now name other memories): the mask again, from
                    # an index caught up by its rebuild; its hits are read from the database.
                    mask = index.mask(f.values, include_invalidated=f.include_invalidated)
                    state, incarnation = None, index.incarnation
                    if f.metadata:
                        remask = True  # the database's part, outside the lock
                        continue
                # Memories the index took in since the mask (another task caught it up) are
                # newer than this recall's start, or a look from `state` sees them.
                mask = index.widen(mask)
                v = (
                    index.nearest(vector, mask, want, ef)
                    if vector is not None and mode != "fulltext"
                    else []
                )
                t: list[tuple[int, float]] = []
                if mode != "vector":
                    t = index.matching(terms, mask, want, every=True)
                    # All terms first; any of them when that finds too few: k in full-text mode,
                    # one in hybrid mode (where the vector signal brings breadth).
                    if len(t) < (want if mode == "fulltext" else 1):
                        t = index.matching(terms, mask, want, every=False)
                ranked = v if mode == "vector" else t if mode == "fulltext" else _fuse(v, t)
                # The mask is exactly what the database admits (metadata filters aside, which are
                # not checked this way), so with the index current its first k are the answer, as
                # it keeps them; the look at the feed says whether it was current.
                exact = state is not None and not f.metadata
                kept = index.kept([s for s, _ in ranked[:k]]) if exact else None
                # Slots name memories only until the next rebuild: keys from here on.
                key_of = index.ids
                keyed = [(str(key_of[s]), score) for s, score in ranked]
                v_rank = {str(key_of[s]): (i, score) for i, (s, score) in enumerate(v, 1)}
                t_rank = {str(key_of[s]): (i, score) for i, (s, score) in enumerate(t, 1)}
                size = index.size
        if kept is not None:
            assert state is not None
            await read_if_current(db, index, state, None)
            # The rows the index keeps are as the database has them now: the hits are made
            # from them, the whole list at once (recall's validated in one call).
            return shape.kept(kept, keyed, v_rank, t_rank)
        rows = await _hydrate(db, index, keyed, f, k, current=state)
        state = None
        # The database may refuse a candidate the mask admitted (a change since the catch-up,
        # a permission): ask for more while there may be more.
        if len(rows) >= k or (len(v) < want and len(t) < want) or want >= size:
            break
        want *= 4
    return [shape.hit(m, score, v_rank.get(m.id), t_rank.get(m.id)) for m, score in rows]


# -- sessions without the index: exact scans in the database ---------------------------------

_VECTOR_OF = "encoding::cbor::decode(embedding ?? embedding_stash)"  # schema 019: bytes


def _scan_vector(f: _Filters, n: int) -> str:
    return (
        f"SELECT {FIELDS}, vector::similarity::cosine({_VECTOR_OF}, $vector) AS score "
        f"FROM memory WHERE (embedding ?? embedding_stash) != NONE "
        f"AND array::len({_VECTOR_OF}) = $dim "
        f"AND {f.where} ORDER BY score DESC LIMIT {n};"
    )


def _scan_text(f: _Filters, n: int) -> str:
    # The terms each memory shares with the query, by the schema's analyzer: all of them rank
    # first. (The engine holds no full-text index of memories: this reads every memory.)
    return (
        f"SELECT * FROM (SELECT {FIELDS}, array::len(array::intersect("
        "search::analyze('memory_text', content), $terms)) AS score "
        f"FROM memory WHERE {f.where}) WHERE score > 0 ORDER BY score DESC LIMIT {n};"
    )


class _ScanRow(Memory):
    score: float


async def _scanned(db: Executor, f: _Filters, ask: _Ask, shape: Shape[T]) -> list[T]:
    mode, vector, text, k, _, n = ask
    want = k if mode != "hybrid" else n
    v: list[_ScanRow] = []
    t: list[_ScanRow] = []
    if mode != "fulltext" and vector is not None:
        v = await db.query(
            _scan_vector(f, want), _ScanRow, vector=vector, dim=len(vector), **f.params
        )
    if mode != "vector" and text is not None:
        terms = await db.query("RETURN search::analyze('memory_text', $text);", str, text=text)
        if terms:  # only function words: no term, no match
            t = await db.query(_scan_text(f, want), _ScanRow, terms=terms, **f.params)
    rows = {r.id: r for r in [*v, *t]}
    v_rank = {r.id: (i, r.score) for i, r in enumerate(v, 1)}
    t_rank = {r.id: (i, r.score) for i, r in enumerate(t, 1)}
    if mode == "hybrid":
        order = _fuse([(r.id, r.score) for r in v], [(r.id, r.score) for r in t])[:k]
    else:
        order = [(r.id, r.score) for r in (v if mode == "vector" else t)][:k]
    return [
        shape.hit(
            Memory.model_validate(rows[mid].model_dump(exclude={"score"})),
            score,
            v_rank.get(mid),
            t_rank.get(mid),
        )
        for mid, score in order
    ]


def _check_space(space: EmbeddingSpace | None, vector: Sequence[float]) -> None:
    """A vector recall needs the store's dimension, and no re-embed under way."""
    if space is not None and len(vector) != space.index_dimension:
        raise DimensionError(
            f"the query vector has {len(vector)} dimensions; the store's embedding space "
            f"{space.writing_model} has {space.index_dimension}"
        )
    if space is not None and space.status == "reembedding":
        # Vector search during a re-embed would silently miss the memories not yet moved.
        raise StoreStateError(
            "the store is being re-embedded; vector recall is available again when "
            "memory.reembed finishes"
        )


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
    return await _recall(
        db, HITS, False,
        text, vector, embedder, k, mode, scope, kind, tags, key, agent, commit, branch,
        created_after, created_before, valid_at, as_of, metadata, include_invalidated, ef,
        candidates,
    )  # fmt: skip


@public
async def recall_found(db: Executor, *, checked: bool = False, **keywords: Any) -> list[Found]:
    """:func:`recall` (``keywords`` are its own) for the doors: each hit as a :class:`Found`,
    the fields of the memory they read, made from the rows the index keeps without the
    :class:`Memory` models a recall returns. ``checked``: ``vector=`` is one that
    :func:`check_vector` made (a list of finite floats), not to be checked again."""
    found: list[Found] = await _recall(db, FOUND, checked, **keywords)
    return found


async def _recall(
    db: Executor,
    shape: Shape[T],
    checked: bool,
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
) -> list[T]:
    """:func:`recall`, each hit made by ``shape``; ``checked`` as :func:`recall_found`'s."""
    check_positive(k, "k", limit=_MAX_K)
    if text is not None:
        check_text(text, "text")
    if vector is not None:
        if embedder is not None:
            raise ValidationError("give vector= or embedder=, not both")
        vector = vector if checked and type(vector) is list else check_vector(vector, "vector")
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
    values: dict[str, Any] = {}
    conditions: list[str] = []

    def add(name: str, value: Any) -> None:
        if value is not None:
            conditions.append(_FILTERS[name])
            params[name] = values[name] = value

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
        space = await get_space(db)
        if space is not None:
            check_embedder(embedder, space)
        elif not isinstance(embedder, Embedder):
            raise ValidationError("embedder must have model, dimension and an async embed()")
        assert text is not None
        # No space yet: nothing has a vector, so the vector side finds nothing (and hybrid
        # recall is its full-text side); a read declares nothing.
        dimension = space.index_dimension if space is not None else embedder.dimension
        (vector,) = await embed_texts(embedder, [text], dimension)
    add("commits", await visible_commits(db, commit=commit, branch=branch))
    if not include_invalidated:
        conditions.append(_LIVE_AS_OF if as_of is not None else _LIVE)
    filters = _Filters(
        where=" AND ".join(conditions) or "true",
        params=params,
        values=values,
        include_invalidated=include_invalidated,
        metadata=metadata is not None,
    )
    ask: _Ask = (mode, vector, text, k, ef, n)
    try:
        return await _answer(db, filters, ask, shape)
    except Broken as exc:
        await rebuild_broken(db, exc)
    try:
        return await _answer(db, filters, ask, shape)
    except Broken as exc:
        raise RecallIndexError(f"the recall index failed again after a rebuild: {exc}") from None


async def _answer(db: Executor, filters: _Filters, ask: _Ask, shape: Shape[T]) -> list[T]:
    """Recall through the index (caught up first unless a look shows it current), or by a scan
    in the database for a session that cannot keep one. Raises :class:`Broken` if the index
    fails."""
    mode, vector, _, _, _, _ = ask
    known = derived_index(db)
    seen: Stale | None = None
    if known is not None and not filters.metadata and known.versionstamp >= 0:
        # The common case, in one round trip: the index as it is answers, once a look at the
        # feed shows it current; a change since (or a space that no longer passes) means
        # catching up and asking again, below.
        cached = known.space_model()
        try:
            if mode != "fulltext":
                assert vector is not None
                _check_space(cached, vector)
        except (DimensionError, StoreStateError):
            pass  # perhaps out of date: decided below, on the space as it is
        else:
            try:
                return await _indexed(db, known, filters, ask, shape, current=True)
            except Stale as exc:
                seen = exc  # its page of the feed is where catching up starts
            except FeedUnavailable:
                pass
    index = await refresh_index(db, seen=seen)
    if mode != "fulltext":
        assert vector is not None
        if index is None:
            current = await get_space(db)
        else:  # read with the feed, in the same round trip
            current = index.space_model()
        _check_space(current, vector)
    if index is None:
        return await _scanned(db, filters, ask, shape)
    return await _indexed(db, index, filters, ask, shape)
