"""The agent memory layer: remember and recall by vector, full text, or both (hybrid).

::

    await memory.declare_space(store, model="all-MiniLM-L6-v2", dimension=384)
    m = await memory.remember(store, content="the user prefers tea", key="drink",
                              embedding=vec, branch="main")
    hits = await memory.recall(store, text="what does the user drink?", vector=qvec, k=5,
                               branch="main")

A memory's id is the SHA-256 of its scope and content, so identical content in one scope is one
record (:func:`memory_id`). Content never changes; invalidation is recorded (and reversible with
:func:`restore`), and only :func:`forget` deletes.

The embedding space (model id + dimension) belongs to the store: it is recorded in the database
when first declared, vectors of another length or model are refused by the database itself, and
moving to another model is the explicit, resumable :func:`reembed`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from . import _facts, _invalidation, _retry
from . import branches as _branches
from . import commits as _commits
from ._api import public
from ._client import Executor, Store
from ._errors import (
    AlreadyExistsError,
    DimensionError,
    EmbeddingSpaceError,
    NotFoundError,
    ValidationError,
)
from ._ids import commit_key, memory_key
from ._space import (
    INDEX_NAME,
    SPACE_ID,
    EmbeddingSpace,
    check_same,
    declare_space,
    get_space,
    index_ddl,
    remove_index_ddl,
)
from ._types import Key, Model, RecordId, check_text, json_value

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_EF",
    "DEFAULT_SCOPE",
    "Embedder",
    "EmbeddingSpace",
    "ForgetReceipt",
    "HashingEmbedder",
    "Memory",
    "NewMemory",
    "RecallHit",
    "RecallMode",
    "ReembedReport",
    "RememberManyResult",
    "SentenceTransformerEmbedder",
    "by_key",
    "declare_space",
    "forget",
    "get",
    "get_space",
    "invalidate",
    "latest_by_key",
    "memory_id",
    "rebuild_index",
    "recall",
    "reembed",
    "remember",
    "remember_many",
    "restore",
]

DEFAULT_SCOPE: Final = "default"
DEFAULT_EF: Final = 64
"""Vector index search effort used when ``recall(ef=...)`` is not given (``bench memory``)."""
DEFAULT_CANDIDATES: Final = 20
"""How many candidates each signal contributes to a hybrid fusion, at least."""
_RRF_K: Final = 60
_MAX_BATCH: Final = 1000
# The in-memory engine's live full-text indexing slows down with every row already written in
# the same transaction (3.2.4: 5,000 memories in 1,000-row statements took 11 s, in 100-row ones
# 1.6 s); surrealkv's does not, and there 1,000-row statements are the fastest.
_MEM_BATCH: Final = 100
_MAX_K: Final = 1000

RecallMode = Literal["vector", "fulltext", "hybrid"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``model`` and ``dimension`` must match the store's space."""

    @property
    def model(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str], /) -> Sequence[Sequence[float]]: ...


class HashingEmbedder:
    """A dependency-free :class:`Embedder`: words (lowercased, stripped of punctuation) and
    word pairs hashed into ``dimension`` signed buckets, L2-normalised (the hashing trick).

    It captures shared words, not meaning; it exists so that the demo, tests and offline tools
    have vectors without a model download. Use a real model for real recall."""

    def __init__(self, dimension: int = 256) -> None:
        _positive(dimension, "dimension", limit=16384)
        self._dimension = dimension

    @property
    def model(self) -> str:
        return f"surreal-store/hashing-v1-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def vector(self, text: str) -> list[float]:
        words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
        features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
        v = [0.0] * self._dimension
        for f in features:
            h = hashlib.blake2b(f.encode(), digest_size=8).digest()
            i = int.from_bytes(h[:4], "little") % self._dimension
            v[i] += 1.0 if h[4] & 1 else -1.0
        norm = math.sqrt(sum(x * x for x in v))
        if norm == 0:
            v[0], norm = 1.0, 1.0
        return [x / norm for x in v]

    async def embed(self, texts: Sequence[str], /) -> list[list[float]]:
        return [self.vector(t) for t in texts]


class SentenceTransformerEmbedder:
    """A local :class:`Embedder` on sentence-transformers (``pip install
    'surreal-store[local]'``), e.g. ``all-MiniLM-L6-v2`` (384-d). Encoding runs in a worker
    thread, so the event loop stays free. ``model`` is the name recorded in the store."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", *, device: str | None = None) -> None:
        try:
            from sentence_transformers import (  # type: ignore[import-not-found, unused-ignore]
                SentenceTransformer,
            )
        except ImportError as exc:
            raise ImportError(
                "SentenceTransformerEmbedder needs sentence-transformers: "
                "pip install 'surreal-store[local]'"
            ) from exc
        self._model = SentenceTransformer(name, device=device)
        self._name = name
        dim = self._model.get_sentence_embedding_dimension()
        self._dimension = int(dim) if dim is not None else len(self._model.encode(["x"])[0])

    @property
    def model(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str], /) -> list[list[float]]:
        import anyio.to_thread

        vectors = await anyio.to_thread.run_sync(
            lambda: self._model.encode(list(texts), normalize_embeddings=True)
        )
        return [list(map(float, v)) for v in vectors]


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value


class Memory(Model):
    """A stored memory. ``id`` is the 64-hex key of ``memory:<id>``; ``embedding`` is only
    filled when asked for (``get(..., with_embedding=True)``)."""

    model_config = ConfigDict(frozen=True)

    id: Key
    scope: str
    agent: Key | None = None
    key: str | None = None
    kind: str
    content: str
    content_hash: str
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    commit: Key | None = None
    embedding_model: str | None = None
    embedding: list[float] | None = None
    created_at: dt.datetime
    valid_from: dt.datetime
    valid_until: dt.datetime | None = None
    invalidated_at: dt.datetime | None = None
    invalidated_reason: str | None = None
    invalidated_by: str | None = None
    # Memories written before schema 013 and never hidden have no such field (NONE).
    invalidated_causes: Annotated[list[RecordId], BeforeValidator(_none_is_empty)] = Field(
        default_factory=list
    )
    """What keeps it hidden: distrusted sources and memories upstream of it (or itself),
    each recorded in ``source_invalidation``. Empty exactly when it is visible."""

    @property
    def invalidated(self) -> bool:
        return self.invalidated_at is not None


class NewMemory(Model):
    """One memory to store with :func:`remember_many`."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    content: str
    scope: str = DEFAULT_SCOPE
    key: str | None = None
    kind: str = "note"
    tags: Sequence[str] = ()
    metadata: Mapping[str, Any] | None = None
    embedding: Sequence[float] | None = None
    commit: str | None = None
    agent: str | None = None
    valid_from: dt.datetime | None = None
    valid_until: dt.datetime | None = None


class RecallHit(Model):
    """One recalled memory with its fused ``score`` and the score of each signal.

    ``score`` is the cosine similarity in vector mode, the BM25 score in full-text mode and the
    reciprocal-rank-fusion score in hybrid mode. Ranks are 1-based within each signal's list.
    """

    model_config = ConfigDict(frozen=True)

    memory: Memory
    score: float
    vector_score: float | None = None
    text_score: float | None = None
    vector_rank: int | None = None
    text_rank: int | None = None


class RememberManyResult(Model):
    """The ids of the memories, in input order, and how many of them were new."""

    model_config = ConfigDict(frozen=True)

    ids: list[str]
    inserted: int


class ForgetReceipt(Model):
    """What :func:`forget` removed (or, with ``purge=False``, invalidated)."""

    model_config = ConfigDict(frozen=True)

    memories: list[str]
    edges: list[str]
    purged: bool


class ReembedReport(Model):
    """The outcome of :func:`reembed`: the space now in force and how many memories moved."""

    model_config = ConfigDict(frozen=True)

    space: EmbeddingSpace
    embedded: int
    resumed: bool


# -- identity and input checks ---------------------------------------------------------------


@public
def memory_id(scope: str, content: str) -> str:
    """The id of ``content`` in ``scope``: SHA-256 over the scope's length, the scope and the
    content, so ``("ab", "c")`` and ``("a", "bc")`` differ. The database checks it too."""
    return hashlib.sha256(f"{len(scope)}:{scope}{content}".encode()).hexdigest()


_text = check_text


def _vector(value: Any, what: str = "embedding") -> list[float]:
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


def _tags(value: Iterable[str]) -> list[str]:
    if isinstance(value, str):
        raise ValidationError("tags must be a list of strings, not one string")
    return sorted({_text(t, "a tag") for t in value})


def _positive(value: int, what: str, *, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise ValidationError(f"{what} must be an int in [1, {limit}], not {value!r}")
    return value


def _utc(value: dt.datetime | None, what: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        raise ValidationError(f"{what} must be a datetime")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# -- the embedding space ---------------------------------------------------------------------


async def _required_space(db: Executor) -> EmbeddingSpace:
    space = await get_space(db)
    if space is None:
        raise EmbeddingSpaceError(
            "no embedding space is declared; call memory.declare_space(model=..., dimension=...)"
            " or set SURREAL_STORE_EMBEDDING_MODEL and SURREAL_STORE_EMBEDDING_DIMENSION"
        )
    return space


def _check_embedder(embedder: Embedder, space: EmbeddingSpace) -> None:
    if not isinstance(embedder, Embedder):
        raise ValidationError("embedder must have model, dimension and an async embed()")
    if (embedder.model, embedder.dimension) != (space.writing_model, space.index_dimension):
        raise EmbeddingSpaceError(
            f"the embedder is {embedder.model} ({embedder.dimension}-d) but the store's space is "
            f"{space.writing_model} ({space.index_dimension}-d)"
        )


async def _embed(embedder: Embedder, texts: Sequence[str], dimension: int) -> list[list[float]]:
    vectors = list(await embedder.embed(list(texts)))
    if len(vectors) != len(texts):
        raise ValidationError(
            f"the embedder returned {len(vectors)} vectors for {len(texts)} texts"
        )
    out = [_vector(v, "an embedder's vector") for v in vectors]
    for v in out:
        if len(v) != dimension:
            raise DimensionError(
                f"the embedder returned a {len(v)}-d vector; the space is {dimension}-d"
            )
    return out


# -- remember --------------------------------------------------------------------------------

# The columns a memory is read with (recall, get; the benchmarks' raw queries read the same).
FIELDS = (
    "id, scope, agent, key, kind, content, content_hash, tags, metadata, commit, "
    "embedding_model, created_at, valid_from, valid_until, invalidated_at, invalidated_reason, "
    "invalidated_by, invalidated_causes"
)

# Record fields are read outside IF blocks: inside one the engine (3.2.4) fails with "Specify a
# database to use". A branch named '-' cannot exist, so it stands for "no branch".
_COMMIT_OF_BRANCH = """
LET $head = type::record('branch', $branch ?? '-').head;
IF $branch != NONE AND $head = NONE { THROW 'not_found: no branch ' + $branch };
LET $commit = $head ?? $commit;
"""

# The same content in the same scope is the existing memory, returned as it is. (Not INSERT
# IGNORE: it would also swallow the schema guard's refusals.)
# One transaction: a THROW outside one would not stop the statements after it.
_REMEMBER = (
    "BEGIN;\n"
    + _COMMIT_OF_BRANCH
    + """
LET $space_model = embedding_space:active.model;
LET $emb_model = IF $embedding = NONE { NONE } ELSE { $embedder_model ?? $space_model };
IF !record::exists($id) {
    CREATE ONLY $id CONTENT {
        scope: $scope, agent: $agent, key: $key, kind: $kind, content: $content,
        content_hash: $hash, tags: $tags, metadata: $metadata, commit: $commit,
        embedding: $embedding, embedding_model: $emb_model,
        valid_from: $valid_from ?? time::now(), valid_until: $valid_until
    } RETURN NONE;
    IF $embedding != NONE { UPDATE embedding_space:active SET unindexed += 1 RETURN NONE };
};
"""
    + "{provenance}"
    + f"SELECT {FIELDS} FROM ONLY $id;\nCOMMIT;"
)


def _row(
    *,
    content: str,
    scope: str,
    key: str | None,
    kind: str,
    tags: Iterable[str],
    metadata: Mapping[str, Any] | None,
    embedding: Any,
    commit: str | None,
    agent: str | None,
    valid_from: dt.datetime | None,
    valid_until: dt.datetime | None,
) -> dict[str, Any]:
    _text(content, "content", empty=True)
    _text(scope, "scope", limit=512)
    if key is not None:
        _text(key, "key")
    _text(kind, "kind", limit=128)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ValidationError("metadata must be a mapping")
    vf, vu = _utc(valid_from, "valid_from"), _utc(valid_until, "valid_until")
    if vf is not None and vu is not None and vu < vf:
        raise ValidationError("valid_until is before valid_from")
    return {
        "id": RecordId("memory", memory_id(scope, content)),
        "scope": scope,
        "agent": RecordId("agent", _text(agent, "agent")) if agent is not None else None,
        "key": key,
        "kind": kind,
        "content": content,
        "hash": hashlib.sha256(content.encode()).hexdigest(),
        "tags": _tags(tags),
        "metadata": json_value(dict(metadata or {}), what="metadata"),
        "commit": RecordId("commit", commit_key(commit)) if commit else None,
        "embedding": _vector(embedding) if embedding is not None else None,
        "valid_from": vf,
        "valid_until": vu,
    }


@public
async def remember(
    db: Executor,
    *,
    content: str,
    scope: str = DEFAULT_SCOPE,
    key: str | None = None,
    kind: str = "note",
    tags: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
    embedding: Sequence[float] | None = None,
    embedder: Embedder | None = None,
    commit: str | None = None,
    branch: str | None = None,
    agent: str | None = None,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    provenance: Sequence[Any] = (),
) -> Memory:
    """Store a memory and return it; the same content in the same scope returns the existing
    memory unchanged.

    ``provenance`` lists where it came from (:mod:`surreal_store.provenance` facts: run trace,
    state snapshot, user annotation, memory derivation); they are recorded in the same
    transaction, and checked before it.

    ``embedding`` must match the store's space (or pass ``embedder`` to embed ``content``).
    ``branch`` attaches the memory to that branch's head commit. A wrong dimension raises
    :class:`DimensionError` and a foreign model :class:`EmbeddingSpaceError`; nothing is written.
    """
    if commit is not None and branch is not None:
        raise ValidationError("give commit= or branch=, not both")
    model: str | None = None
    if embedder is not None:
        if embedding is not None:
            raise ValidationError("give embedding= or embedder=, not both")
        space = await _required_space(db)
        _check_embedder(embedder, space)
        _text(content, "content", empty=True)
        (embedding,) = await _embed(embedder, [content], space.index_dimension)
        model = embedder.model
    row = _row(
        content=content, scope=scope, key=key, kind=kind, tags=tags, metadata=metadata,
        embedding=embedding, commit=commit, agent=agent, valid_from=valid_from,
        valid_until=valid_until,
    )  # fmt: skip
    text = _REMEMBER.replace("{provenance}", "")
    if provenance:
        facts = [_facts.parse_provenance(p) for p in provenance]
        text = _REMEMBER.replace("{provenance}", _facts.ATTACH_BLOCK)
        row.update(_facts.attach_params(row["id"], facts))
    return await db.query_required_single(
        text,
        Memory,
        idempotent=True,  # a fixed id and INSERT IGNORE: replaying cannot duplicate
        branch=_branches.validate_name(branch) if branch is not None else None,
        embedder_model=model,
        **row,
    )


# Rows come complete from Python (commit, model); the database skips the ids it already has.
# The ids it has are found by one SELECT over them (a closure per id cost 0.1 ms a row);
# the rows themselves (384 floats each) are filtered only when some exist.
_REMEMBER_MANY = """
BEGIN;
LET $have = (SELECT VALUE id FROM $ids);
INSERT INTO memory (IF $have = [] { $rows } ELSE { $rows.filter(|$r| $r.id NOTINSIDE $have) })
    RETURN NONE;
LET $vectors = array::len(array::complement($vector_ids, $have));
IF $vectors > 0 { UPDATE embedding_space:active SET unindexed += $vectors RETURN NONE };
array::len($have);
COMMIT;
"""


@public
async def remember_many(
    db: Executor,
    items: Sequence[NewMemory],
    *,
    commit: str | None = None,
    branch: str | None = None,
    embedder: Embedder | None = None,
    batch_size: int | None = None,
    progress: Callable[[int, int], Awaitable[None] | None] | None = None,
    rebuild: bool | None = None,
) -> RememberManyResult:
    """Store many memories in batches of at most ``batch_size`` (≤ 1,000) rows per statement.

    ``batch_size`` defaults to 1,000, or 100 on the in-memory engine, whose indexing slows with
    the size of a transaction.

    Every item is checked (and embedded, when ``embedder`` is given and an item has no
    embedding) before the first batch is written, so bad input writes nothing. ``commit`` /
    ``branch`` apply to items that name no commit. ``progress(done, total)`` is called after
    each batch.

    Afterwards the vector index is rebuilt (:func:`rebuild_index`) when ``rebuild`` is true,
    or, by default, when the vectors written since its last build outnumber a quarter of those
    in it (and at least 1,000): the cost of a rebuild is then amortised over the growth. Past
    50,000 vectors the default does not rebuild (see :func:`rebuild_index`).
    """
    if batch_size is None:
        in_memory = isinstance(db, Store) and db.settings.is_in_memory
        batch_size = _MEM_BATCH if in_memory else _MAX_BATCH
    _positive(batch_size, "batch_size", limit=_MAX_BATCH)
    if commit is not None and branch is not None:
        raise ValidationError("give commit= or branch=, not both")
    rows: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if not isinstance(item, NewMemory):
            raise ValidationError(f"item {i} is not a NewMemory")
        try:
            # The fields as they are: model_dump would copy every vector, element by element.
            row = _row(**dict(item))
        except ValidationError as exc:
            raise ValidationError(f"item {i}: {exc}") from None
        row["content_hash"] = row.pop("hash")
        rows.append(row)
    ids = [str(r["id"].key) for r in rows]
    space: EmbeddingSpace | None = None
    if any(r["embedding"] is not None for r in rows) or embedder is not None:
        space = await _required_space(db)
        for i, r in enumerate(rows):
            if r["embedding"] is not None and len(r["embedding"]) != space.index_dimension:
                raise DimensionError(
                    f"item {i}: the embedding has {len(r['embedding'])} dimensions; the store's "
                    f"space {space.writing_model} has {space.index_dimension}"
                )
    # Repeats within the call are one memory: the first occurrence is stored.
    rows = list({r["id"]: r for r in reversed(rows)}.values())[::-1]
    if embedder is not None and space is not None:
        _check_embedder(embedder, space)
        todo = [r for r in rows if r["embedding"] is None]
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            vectors = await _embed(embedder, [r["content"] for r in chunk], space.index_dimension)
            for r, v in zip(chunk, vectors, strict=True):
                r["embedding"] = v
    model = space.writing_model if space is not None else None
    default_commit = None
    if branch is not None:
        head = await _branches.head(db, name=branch)
        if head is None:
            raise NotFoundError(f"no branch {branch}")
        default_commit = RecordId("commit", head)
    elif commit is not None:
        default_commit = RecordId("commit", commit_key(commit))
    for r in rows:
        if r["commit"] is None:
            r["commit"] = default_commit
        if r["embedding"] is not None:
            r["embedding_model"] = model
        for name in ("agent", "commit", "embedding", "valid_from", "valid_until", "key"):
            if r[name] is None:
                del r[name]  # absent, so the schema's defaults apply
    inserted = 0
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        batch_ids = [r["id"] for r in batch]
        vector_ids = [r["id"] for r in batch if "embedding" in r]
        # Another writer may store some of the same content between the existence check and
        # the insert (servers only; embedded writes are serialised): the second try skips it.
        had = await _retry.again(
            functools.partial(
                db.query_required_single,
                _REMEMBER_MANY,
                int,
                idempotent=True,
                rows=batch,
                ids=batch_ids,
                vector_ids=vector_ids,
            ),
            on=(AlreadyExistsError,),
            attempts=2,
        )
        inserted += len(batch) - had
        if progress is not None:
            maybe = progress(start + len(batch), len(rows))
            if maybe is not None:
                await maybe
    if rebuild or (rebuild is None and inserted and await needs_rebuild(db)):
        await rebuild_index(db)
    return RememberManyResult(ids=ids, inserted=inserted)


# -- the vector index ------------------------------------------------------------------------

_REBUILD_MIN: Final = 1000

_REBUILD = """
REBUILD INDEX IF EXISTS {index} ON memory;
UPDATE ONLY $space SET indexed = count(SELECT id FROM memory WHERE embedding != NONE),
    unindexed = 0, built_at = time::now() RETURN NONE;
"""


# The engine (3.2.4 on surrealkv) was seen to stop answering during a rebuild over 100,000
# 384-d vectors (twice; at 40,000 it takes 36 s and completes), so automatic rebuilds stay
# below that; past it, rebuild_index is the caller's explicit choice.
_AUTO_REBUILD_MAX: Final = 50_000


async def needs_rebuild(db: Executor) -> bool:
    """Whether the vectors written since the index's last build outnumber a quarter of those
    in it (a bulk load or an import then rebuilds it)."""
    space = await get_space(db)
    if space is None or space.indexed + space.unindexed > _AUTO_REBUILD_MAX:
        return False
    return space.unindexed >= max(_REBUILD_MIN, space.indexed // 4)


@public
async def rebuild_index(db: Executor, *, timeout_s: float | None = None) -> EmbeddingSpace:
    """Rebuild the vector index's graph over every stored vector and return the space.

    Vectors written after the graph was built are found by comparing the query with each of
    them (exact, but the cost grows with their number), so after a bulk load the graph should
    be rebuilt; :func:`remember_many` does this itself. Takes about as long as indexing every
    vector once (superlinear in their number: 36 s for 40,000 384-d vectors here); embedded
    writes wait for it. ``timeout_s``: ``None`` waits as long as it takes. On SurrealDB 3.2.4
    a rebuild over 100,000 vectors was seen to hang the engine; set a timeout there.
    """
    await db.execute(_REBUILD.replace("{index}", INDEX_NAME), space=SPACE_ID, timeout_s=timeout_s)
    space = await get_space(db)
    if space is None:
        raise EmbeddingSpaceError("no embedding space is declared")
    return space


# -- read ------------------------------------------------------------------------------------

_GET = f"SELECT {FIELDS} FROM ONLY $id;"
_GET_WITH_EMBEDDING = f"SELECT {FIELDS}, embedding FROM ONLY $id;"


@public
async def get(db: Executor, *, memory: str, with_embedding: bool = False) -> Memory:
    """The memory with id ``memory``; :class:`NotFoundError` if there is none."""
    key = memory_key(memory)
    found = await db.query_single(
        _GET_WITH_EMBEDDING if with_embedding else _GET, Memory, id=RecordId("memory", key)
    )
    if found is None:
        raise NotFoundError(f"no memory {key}")
    return found


async def _visible_commits(
    db: Executor, *, commit: str | None, branch: str | None
) -> list[RecordId] | None:
    if commit is None and branch is None:
        return None
    history = await _commits.log(db, commit=commit, branch=branch)
    return [RecordId("commit", c.id) for c in history]


_BY_KEY = f"""
SELECT {FIELDS} FROM memory
WHERE scope = $scope AND key = $key {{visible}} {{live}}
ORDER BY valid_from DESC, created_at DESC;
"""
_LATEST_BY_KEY = f"""
SELECT {FIELDS} FROM memory
WHERE scope = $scope AND key != NONE {{visible}} {{live}}
ORDER BY valid_from DESC, created_at DESC;
"""


def _by_key_text(template: str, *, visible: bool, include_invalidated: bool) -> str:
    return template.replace("{visible}", "AND commit IN $commits" if visible else "").replace(
        "{live}", "" if include_invalidated else "AND invalidated_at = NONE"
    )


@public
async def by_key(
    db: Executor,
    *,
    key: str,
    scope: str = DEFAULT_SCOPE,
    commit: str | None = None,
    branch: str | None = None,
    include_invalidated: bool = False,
) -> list[Memory]:
    """Every memory under ``key`` (visible at ``commit`` / ``branch`` when given), newest
    first."""
    visible = await _visible_commits(db, commit=commit, branch=branch)
    text = _by_key_text(
        _BY_KEY, visible=visible is not None, include_invalidated=include_invalidated
    )
    return await db.query(
        text, Memory, scope=_text(scope, "scope"), key=_text(key, "key"), commits=visible
    )


@public
async def latest_by_key(
    db: Executor,
    *,
    scope: str = DEFAULT_SCOPE,
    commit: str | None = None,
    branch: str | None = None,
    include_invalidated: bool = False,
) -> dict[str, Memory]:
    """The newest memory of every key in ``scope`` (within a branch's history when given)."""
    visible = await _visible_commits(db, commit=commit, branch=branch)
    text = _by_key_text(
        _LATEST_BY_KEY, visible=visible is not None, include_invalidated=include_invalidated
    )
    out: dict[str, Memory] = {}
    for m in await db.query(text, Memory, scope=_text(scope, "scope"), commits=visible):
        if m.key is not None:
            out.setdefault(m.key, m)
    return out


# -- invalidate, restore, forget -------------------------------------------------------------


@public
async def invalidate(db: Executor, *, memory: str, reason: str, by: str | None = None) -> Memory:
    """Hide one memory (recall then skips it by default), unlike
    :func:`provenance.invalidate <surreal_store.provenance.invalidate>`, which also hides
    what was derived from it. Invalidating it again keeps the first record of it; a memory
    hidden for other causes gains this one. Undone by :func:`restore`."""
    key = memory_key(memory)
    rid = RecordId("memory", key)
    await _invalidation.add_cause(
        db,
        memory=rid,
        cascade=False,
        reason=_text(reason, "reason"),
        by=_text(by, "by") if by is not None else None,
    )
    return await get(db, memory=key)


@public
async def restore(db: Executor, *, memory: str) -> Memory:
    """Undo :func:`invalidate` (or a provenance invalidation of this memory): the memory stops
    being a cause anywhere. It becomes visible unless another standing cause (a distrusted
    source or memory upstream of it) still hides it; the memory is returned either way."""
    key = memory_key(memory)
    await _invalidation.remove_cause(db, memory=RecordId("memory", key), must_exist=True)
    return await get(db, memory=key)


# Purging deletes the memories, every edge touching them and their own distrust; what was
# derived from them ($recompute) no longer is, so its causes are recomputed from the graph.
# Soft forgetting hides each memory by its own distrust.
_HIDDEN = """
LET $ids = $ids ?? (SELECT VALUE id FROM memory WHERE scope = $scope AND key = $key);
SELECT VALUE id FROM $ids WHERE invalidated_at != NONE;
"""
_FORGET = (
    """
BEGIN;
LET $ids = IF $ids != NONE { $ids.filter(|$i| record::exists($i)) }
    ELSE { (SELECT VALUE id FROM memory WHERE scope = $scope AND key = $key) };
LET $edges = array::distinct(array::flatten(
    (SELECT VALUE array::union(->?.id, <-?.id) FROM $ids)
));
IF $purge {
    DELETE $edges;
    DELETE $ids;
    DELETE $ids.map(|$i| type::record('source_invalidation', [$i]));
} ELSE {
    FOR $i IN $ids {
        IF !record::exists(type::record('source_invalidation', [$i])) {
            CREATE type::record('source_invalidation', [$i]) SET source = $i, cascade = false,
                reason = $reason, by = $by, at = time::now(), memories = 1 RETURN NONE;
        };
    };
    UPDATE $ids SET invalidated_causes = array::union(invalidated_causes ?? [], [id])
        WHERE invalidated_at != NONE RETURN NONE;
    UPDATE $ids SET invalidated_at = time::now(), invalidated_reason = $reason,
        invalidated_by = $by, invalidated_causes = [id],
        embedding_stash = embedding, embedding = NONE
        WHERE invalidated_at = NONE RETURN NONE;
};
LET $recompute = IF $purge { array::complement($derived, $ids) } ELSE { [] };
"""
    + _invalidation.recompute_causes_block()
    + """
{ memories: $ids.map(|$i| record::id($i)), edges: $edges.map(|$e| <string>$e) };
COMMIT;
"""
)


@public
async def forget(
    db: Executor,
    *,
    memory: str | None = None,
    key: str | None = None,
    scope: str = DEFAULT_SCOPE,
    purge: bool = True,
    reason: str = "forgotten",
    by: str | None = None,
) -> ForgetReceipt:
    """Remove one memory (``memory=``) or every memory about a subject (``key=`` in
    ``scope``, across all commits), with every graph edge touching them, in one transaction.

    ``purge=False`` invalidates instead of deleting (edges stay). The receipt lists what was
    affected; forgetting what is not there returns an empty receipt.
    """
    if (memory is None) == (key is None):
        raise ValidationError("give exactly one of memory= or key=")
    ids = [RecordId("memory", memory_key(memory))] if memory is not None else None
    if key is not None:
        _text(key, "key")
    _text(scope, "scope")
    if by is not None:
        _text(by, "by")
    derived: list[RecordId] = []
    if purge:
        # What derives from a hidden memory holds its causes through it, and loses them with
        # it; a visible memory passes no cause down, so only hidden ones need the walk.
        hidden = await db.query(_HIDDEN, RecordId, ids=ids, scope=scope, key=key, idempotent=True)
        if hidden:
            derived = await _invalidation.derived(db, memories=hidden)
    receipt = await db.query_required_single(
        _FORGET,
        dict,
        ids=ids,
        derived=derived,
        key=key,
        scope=scope,
        purge=purge,
        reason=_text(reason, "reason"),
        by=by,
    )
    return ForgetReceipt(memories=receipt["memories"], edges=receipt["edges"], purged=purge)


# -- recall ----------------------------------------------------------------------------------

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

# Vector search during a re-embed would silently miss the memories not yet moved.
_REEMBEDDING_THROW = (
    "THROW 'reembedding: the store is being re-embedded; vector recall is available again "
    "when memory.reembed finishes'"
)
# The status is read by a sub-SELECT: a record's field read inside an IF fails on 3.2.4.
_IS_REEMBEDDING = "(SELECT VALUE status FROM ONLY embedding_space:active) = 'reembedding'"
_NOT_REEMBEDDING = "IF " + _IS_REEMBEDDING + " { " + _REEMBEDDING_THROW + " };\n"

# Only live memories have a vector in the index: no per-candidate check is needed for them.
_LIVE_KNN = (
    "SELECT {cols}, vector::distance::knn() AS distance FROM memory "
    "WHERE embedding <|{n},{ef}|> $vector{where} ORDER BY distance LIMIT {n}"
)
# The plain vector recall (no filter, no invalidated memories) as one statement: each costs.
_PLAIN_VECTOR = (
    "IF " + _IS_REEMBEDDING + " { " + _REEMBEDDING_THROW + " } ELSE { (" + _LIVE_KNN + ") };"
)
# Invalidated memories, when asked for: an exact scan of the (few) stashed vectors.
_STASHED_SCAN = (
    "SELECT {cols}, 1 - vector::similarity::cosine(embedding_stash, $vector) AS distance "
    "FROM memory WHERE {stashed}{where} ORDER BY distance LIMIT {n}"
)
# A SELECT over a computed array answers one row as that row and none as NONE (3.2.4).
_AS_ARRAY: Final = "IF type::is_array($x) { $x } ELSE IF $x = NONE { [] } ELSE { [$x] }"

# All the query's terms first; any of them when that finds fewer than {enough}: k in full-text
# mode, one in hybrid mode (where the vector signal brings breadth, and matching any term of a
# query over a large store costs far more than the vector search).
_TEXT = (
    "LET $terms = search::analyze('memory_text', $text);\n"
    # Without a term left (only function words), a match would select every memory.
    "LET $t = IF $terms = [] { [] } ELSE { (SELECT {cols}, search::score(1) AS bm25 FROM memory "
    "WHERE content @1@ $text{where} ORDER BY bm25 DESC LIMIT {n}) };\n"
    + "LET $t = "
    + _AS_ARRAY.replace("$x", "$t")
    + ";\n"
    "LET $t = IF $terms = [] OR array::len($t) >= {enough} { $t } ELSE { (SELECT {cols}, "
    "search::score(2) AS bm25 FROM memory WHERE content @2,OR@ $text{where} "
    "ORDER BY bm25 DESC LIMIT {n}) };\n" + "LET $t = " + _AS_ARRAY.replace("$x", "$t") + ";\n"
)


# With filters, the DiskANN index filters the candidates it found (HNSW filters during the
# search): a selective filter can leave fewer than asked for. The search is then repeated with
# 8 and 64 times the effort, and as a last resort the filtered memories are compared exactly,
# so a filter never loses a memory that it admits.
_WIDER_KNN = (
    "LET $v = IF array::len($v) >= {n} { $v } ELSE { (SELECT {cols}, "
    "vector::distance::knn() AS distance FROM memory "
    "WHERE embedding <|{n},{wider}|> $vector{where} ORDER BY distance LIMIT {n}) };\n"
)
_EXACT_FILTERED = (
    "LET $v = IF array::len($v) >= {n} { $v } ELSE { (SELECT {cols}, "
    "1 - vector::similarity::cosine(embedding, $vector) AS distance FROM memory "
    "WHERE embedding != NONE{where} ORDER BY distance LIMIT {n}) };\n"
)
_MAX_EF: Final = 10_000


def _vector_statements(*, stashed: str | None, cols: str, filtered: bool, ef: int) -> str:
    live = f"LET $v = {_LIVE_KNN.replace('{cols}', cols)};\n"
    if filtered:
        # A filtered SELECT can answer one row as that row, not as an array (3.2.4).
        as_array = "LET $v = " + _AS_ARRAY.replace("$x", "$v") + ";\n"
        live += as_array
        for factor in (8, 64):
            wider = min(ef * factor, _MAX_EF)
            live += _WIDER_KNN.replace("{wider}", str(wider)).replace("{cols}", cols) + as_array
            if wider == _MAX_EF:
                break
        live += _EXACT_FILTERED.replace("{cols}", cols) + as_array
    if stashed is None:
        return live
    scan = _STASHED_SCAN.replace("{cols}", cols).replace("{stashed}", stashed)
    return (
        live
        + f"LET $s = {scan};\n"
        + "LET $v = (SELECT * FROM array::concat($v, $s) ORDER BY distance LIMIT {n});\n"
        + "LET $v = "
        + _AS_ARRAY.replace("$x", "$v")
        + ";\n"
    )


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
    valid and not yet invalidated at that time). Invalidated memories are left out unless
    ``include_invalidated``. ``ef`` is the index's search effort (default :data:`DEFAULT_EF`):
    the candidates it weighs per query. With filters, a search that finds fewer than ``k``
    admissible memories is repeated with more effort and, failing that, the memories the
    filters admit are compared exactly.
    """
    _positive(k, "k", limit=_MAX_K)
    if text is not None:
        _text(text, "text")
    if vector is not None:
        if embedder is not None:
            raise ValidationError("give vector= or embedder=, not both")
        vector = _vector(vector, "vector")
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
    ef = _positive(ef if ef is not None else max(DEFAULT_EF, k), "ef", limit=10_000)
    n = _positive(
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

    add("scope", _text(scope, "scope") if scope is not None else None)
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        add("kinds", [_text(x, "kind") for x in kinds])
    add("tags", _tags(tags) if tags is not None else None)
    add("key", _text(key, "key") if key is not None else None)
    add("agent", RecordId("agent", _text(agent, "agent")) if agent is not None else None)
    add("created_after", _utc(created_after, "created_after"))
    add("created_before", _utc(created_before, "created_before"))
    add("valid_at", _utc(valid_at, "valid_at"))
    add("as_of", _utc(as_of, "as_of"))
    if mode != "fulltext" and vector is None:
        if embedder is None:
            raise ValidationError(f"{mode} recall needs vector= or embedder=")
        space = await _required_space(db)
        _check_embedder(embedder, space)
        assert text is not None
        (vector,) = await _embed(embedder, [text], space.index_dimension)
    add("commits", await _visible_commits(db, commit=commit, branch=branch))
    where = "".join(f" AND {c}" for c in conditions)
    live = _LIVE_AS_OF if as_of is not None else _LIVE
    text_where = where if include_invalidated else f"{where} AND {live}"
    stashed = None
    if include_invalidated or as_of is not None:
        stashed = _STASHED_AS_OF if as_of is not None and not include_invalidated else _STASHED
    parts = {"ef": ef, "k": k, "where": where}
    if mode == "vector":
        if not where and stashed is None:
            query = _PLAIN_VECTOR.replace("{cols}", FIELDS)
        else:
            query = (
                _NOT_REEMBEDDING
                + _vector_statements(stashed=stashed, cols=FIELDS, filtered=bool(where), ef=ef)
                + "$v;"
            )
        rows = await db.query(_fill(query, n=k, **parts), _Scored, vector=vector, **params)
        return [
            RecallHit(memory=r.memory, score=1 - r.score, vector_score=1 - r.score, vector_rank=i)
            for i, r in enumerate(rows, 1)
        ]
    if mode == "fulltext":
        query = _fill(_TEXT + "$t;", n=k, enough=k, cols=FIELDS, **{**parts, "where": text_where})
        trows = await db.query(query, _Scored, text=text, **params)
        return [
            RecallHit(memory=r.memory, score=r.score, text_score=r.score, text_rank=i)
            for i, r in enumerate(trows, 1)
        ]
    query = (
        _NOT_REEMBEDDING
        + _vector_statements(stashed=stashed, cols="id", filtered=bool(where), ef=ef)
        + _fill(_TEXT, cols="id", where=text_where, enough=1)
        + "LET $fused = search::rrf([$v, $t], {k}, "
        + str(_RRF_K)
        + ");\n"
        + "{ v: $v.id, t: $t.id, fused: $fused, "
        + f"rows: (SELECT {FIELDS} FROM $fused.id) }};"
    )
    query = _fill(query, n=n, **parts)
    result = (await db.query(query, _HybridResult, vector=vector, text=text, **params))[-1]
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


def _fill(template: str, **parts: object) -> str:
    # Only validated ints (k, ef, candidates: the KNN operator takes no parameters) and the
    # fixed filter texts are put into the query; every value is a parameter.
    for name, value in parts.items():
        template = template.replace("{" + name + "}", str(value))
    return template


# -- re-embed --------------------------------------------------------------------------------

# Starting a re-embed: the old vectors cannot live in an index of another dimension, so the
# index goes and the vectors are cleared in one transaction; the target's index is defined
# after it commits (a build inside the same transaction still sees the old vectors).
_BEGIN_REEMBED = """
BEGIN;
UPDATE ONLY $space SET status = 'reembedding', target_model = $model,
    target_dimension = $dimension RETURN NONE;
{remove}
UPDATE memory SET embedding = NONE, embedding_stash = NONE, embedding_model = NONE
    WHERE embedding_model != NONE RETURN NONE;
COMMIT;
"""

_PENDING = """
SELECT VALUE { id: id, content: content } FROM memory
WHERE embedding_model = NONE OR embedding_model != $model LIMIT $limit;
"""

# Replayed after a lost answer, it writes the same vectors again and counts only the memories
# that did not have them yet (none, then), so the unindexed count stays true.
_SET_EMBEDDINGS = """
BEGIN;
LET $fresh = array::len((SELECT VALUE id FROM $rows.map(|$r| $r.id)
    WHERE embedding_model = NONE OR embedding_model != $model));
FOR $r IN $rows {
    UPDATE ONLY $r.id SET embedding = $r.embedding, embedding_model = $model
        WHERE invalidated_at = NONE RETURN NONE;
    UPDATE ONLY $r.id SET embedding_stash = $r.embedding, embedding_model = $model
        WHERE invalidated_at != NONE RETURN NONE;
};
IF $fresh > 0 { UPDATE embedding_space:active SET unindexed += $fresh RETURN NONE };
COMMIT;
"""

# Only while re-embedding: a replay after it finished would copy the (cleared) target.
_FINISH_REEMBED = """
UPDATE ONLY $space SET model = target_model, dimension = target_dimension, status = 'ready',
    target_model = NONE, target_dimension = NONE WHERE status = 'reembedding' RETURN NONE;
"""


class _Pending(BaseModel):
    id: RecordId
    content: str


@public
async def reembed(
    db: Executor,
    *,
    embedder: Embedder,
    batch_size: int = 256,
    progress: Callable[[int], Awaitable[None] | None] | None = None,
) -> ReembedReport:
    """Move every memory to ``embedder``'s space: embed the memories that have no vector from
    its model, in batches, and make its space the store's.

    Changing model clears the old vectors and rebuilds the index for the new dimension (vector
    recall raises :class:`StoreStateError` until the re-embed finishes; full-text recall keeps
    working). The work is resumable: run ``reembed`` again with the same embedder after an
    interruption and it continues where it stopped. With the store's own model it embeds the
    memories stored without a vector. ``progress(done)`` is called after each batch.
    """
    if not isinstance(embedder, Embedder):
        raise ValidationError("embedder must have model, dimension and an async embed()")
    _positive(batch_size, "batch_size", limit=_MAX_BATCH)
    model, dimension = _text(embedder.model, "model", limit=256), embedder.dimension
    _positive(dimension, "dimension", limit=16384)
    space = await get_space(db)
    resumed = False
    if space is None:
        space = await declare_space(db, model=model, dimension=dimension)
    elif space.status == "reembedding":
        check_same(space, model=model, dimension=dimension)
        resumed = True
    elif (space.model, space.dimension) != (model, dimension):
        target = space.model_copy(
            update={"status": "reembedding", "target_model": model, "target_dimension": dimension}
        )
        text = _BEGIN_REEMBED.replace("{remove}", remove_index_ddl())
        await db.execute(text, space=SPACE_ID, model=model, dimension=dimension)
        space = target
    if space.status == "reembedding":
        # Defined empty, before the new vectors arrive: built as they are written. Kept if a
        # resumed run finds it there already.
        await db.execute(index_ddl(space, if_not_exists=True), idempotent=True)
    done = 0
    while True:
        batch = await db.query(_PENDING, _Pending, model=model, limit=batch_size)
        if not batch:
            break
        vectors = await _embed(embedder, [p.content for p in batch], dimension)
        rows = [{"id": p.id, "embedding": v} for p, v in zip(batch, vectors, strict=True)]
        await db.execute(_SET_EMBEDDINGS, rows=rows, model=model, idempotent=True)
        done += len(batch)
        if progress is not None:
            maybe = progress(done)
            if maybe is not None:
                await maybe
    current = await get_space(db)
    assert current is not None
    if current.status == "reembedding":
        await db.execute(_FINISH_REEMBED, space=SPACE_ID, idempotent=True)
    if done and await needs_rebuild(db):
        await rebuild_index(db)
    current = await get_space(db)
    assert current is not None
    return ReembedReport(space=current, embedded=done, resumed=resumed)
