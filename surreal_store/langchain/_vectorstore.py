"""A LangChain ``VectorStore`` on the store: documents in ``lc_document`` (schema
``016_langchain``), each one memory, searched with the memory layer's recall."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Literal, Self, TypeVar, cast

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from .. import memory
from .._api import public
from .._client import Store
from .._doors import (
    DoorSpace,
    Found,
    Home,
    IndexUpkeep,
    check_k,
    model_of,
    new_scope,
    owned_row,
    owned_write_query,
    run_detached,
    sync_opener,
    tagged_recall,
    write_owned,
)
from .._errors import DimensionError, ValidationError
from .._types import RecordId, check_text, json_value
from ..memory._checks import MAX_BATCH, check_tags, check_vector
from ..memory._write import write_batch_size

__all__ = [
    "DOCUMENT_KIND",
    "FILTER_KEYS",
    "EmbedderEmbeddings",
    "SurrealVectorStore",
    "document_record",
]

T = TypeVar("T")

SearchMode = Literal["vector", "hybrid", "fulltext"]

DOCUMENT_KIND: Final = "document"
"""The kind of a document's memory unless the store is given another."""
FILTER_KEYS: Final = frozenset(
    {
        "kind",
        "tags",
        "agent",
        "commit",
        "branch",
        "created_after",
        "created_before",
        "valid_at",
        "as_of",
        "metadata",
        "include_invalidated",
    }
)
"""The keys a search's ``filter=`` takes: :func:`surreal_store.memory.recall`'s filters."""
_COLLECTION_TAG: Final = "langchain.collection:"
_TIMES: Final = ("created_after", "created_before", "valid_at", "as_of")

# A document is written from its memory's row: its id is the memory's key.
_UPSERT: Final = """
INSERT INTO lc_document $rows.map(|$r| {
    id: type::record('lc_document', [$collection, $r.key]), collection: $collection,
    doc_id: $r.key, memories: [$r.id], created_at: $now, updated_at: $now,
}) ON DUPLICATE KEY UPDATE memories = $input.memories, updated_at = $input.updated_at
    RETURN NONE;
"""
_WRITE: Final = owned_write_query(
    upsert=_UPSERT,
    written="$rows.map(|$r| type::record('lc_document', [$collection, $r.key]))",
    all_targets="SELECT VALUE id FROM lc_document WHERE collection = $collection",
    by="langchain",
)
# A document's id, text and metadata are its memory's key, content and metadata.
_GET: Final = (
    "SELECT VALUE memories[0].{ key, content, metadata } FROM $ids "
    "WHERE memories[0].content != NONE;"
)
_MEMORY_OF: Final = "SELECT VALUE record::id(memories[0]) FROM $ids;"
_VECTORS: Final = (
    "SELECT VALUE [record::id(id), encoding::cbor::decode(embedding)] FROM $ids "
    "WHERE embedding != NONE;"
)


class EmbedderEmbeddings(Embeddings):
    """A memory-layer :class:`~surreal_store.memory.Embedder` (the built-in hashing one, a
    sentence-transformers model) as LangChain ``Embeddings``: natively async; the sync methods
    run it to completion, outside an event loop."""

    def __init__(self, embedder: memory.Embedder) -> None:
        if not isinstance(embedder, memory.Embedder):
            raise ValidationError("EmbedderEmbeddings wraps a surreal_store.memory.Embedder")
        self.embedder = embedder
        self.model = embedder.model

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in await self.embedder.embed(texts)]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return run_detached(self.aembed_documents(texts), "aembed_documents")

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def document_record(collection: str, doc_id: str) -> RecordId:
    """The record of a document: ``lc_document:[collection, doc_id]``."""
    return RecordId("lc_document", [collection, doc_id])


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_extra(kwargs: Mapping[str, Any], where: str) -> None:
    if kwargs:
        raise ValidationError(f"{where} got unexpected arguments: {', '.join(sorted(kwargs))}")


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _mmr(
    relevance: Sequence[float], vectors: Sequence[Sequence[float]], k: int, lam: float
) -> list[int]:
    """Maximal marginal relevance: each pick maximises ``lam`` times its similarity to the
    query minus ``1 - lam`` times its greatest similarity to the ones picked before."""
    picked: list[int] = []
    closest = [-math.inf] * len(vectors)  # each candidate's greatest similarity to a pick
    while len(picked) < min(k, len(vectors)):
        best, best_score = -1, -math.inf
        for i in range(len(vectors)):
            if i in picked:
                continue
            redundancy = closest[i] if picked else 0.0
            score = lam * relevance[i] - (1 - lam) * redundancy
            if score > best_score:
                best, best_score = i, score
        picked.append(best)
        for i in range(len(vectors)):
            if i not in picked:
                closest[i] = max(closest[i], _cosine(vectors[i], vectors[best]))
    return picked


class SurrealVectorStore(VectorStore):
    """LangChain's ``VectorStore`` on an open :class:`~surreal_store.Store`.

    ::

        async with Store() as store:
            vs = SurrealVectorStore(store, embedding=embeddings, collection="docs")
            await vs.aadd_documents(documents)
            hits = await vs.asimilarity_search("what does the user drink?", k=4)

    ``embedding`` is LangChain ``Embeddings`` or a memory-layer
    :class:`~surreal_store.memory.Embedder` (wrapped in :class:`EmbedderEmbeddings`).

    Each document is one memory: its ``page_content`` the memory's content, its ``metadata``
    the memory's metadata (exactly: nothing is added to it), its ``id`` the memory's key, the
    collection a tag. Adding a document with an existing id replaces it; :meth:`amemory_id`
    gives the memory, for :mod:`surreal_store.provenance`.

    Search is the memory layer's recall. ``mode`` (on the store, or per search) is ``"vector"``
    (scores are cosine similarities), ``"hybrid"`` (the query's words and its vector fused by
    reciprocal rank) or ``"fulltext"`` (BM25; no embedding needed). ``filter=`` takes recall's
    filters as a dict (:data:`FILTER_KEYS`: ``kind``, ``tags``, ``agent``, ``commit``,
    ``branch``, ``created_after``, ``created_before``, ``valid_at``, ``as_of``, ``metadata``,
    ``include_invalidated``); an unknown key is an error. ``{"metadata": {"source": "a"}}``
    filters on the documents' metadata, with ``$eq $ne $gt $gte $lt $lte``.

    The async methods are the real ones; the sync ones run them on the store's event loop from
    another thread (:meth:`from_url_sync` makes such a store).
    """

    def __init__(
        self,
        store: Store,
        embedding: Embeddings | memory.Embedder | None = None,
        *,
        collection: str = "default",
        kind: str = DOCUMENT_KIND,
        tags: Iterable[str] = (),
        mode: SearchMode = "vector",
        model: str | None = None,
    ) -> None:
        if not isinstance(store, Store):
            raise ValidationError("SurrealVectorStore needs an open surreal_store.Store")
        if isinstance(embedding, memory.Embedder) and not isinstance(embedding, Embeddings):
            embedding = EmbedderEmbeddings(embedding)
        if embedding is not None and not isinstance(embedding, Embeddings):
            raise ValidationError(
                "embedding must be LangChain Embeddings or a surreal_store.memory.Embedder"
            )
        self.store = store
        self.embedding = embedding
        self.collection = check_text(collection, "collection", limit=256)
        self.kind = check_text(kind, "kind", limit=128)
        self._tag = _COLLECTION_TAG + self.collection
        self.tags = [self._tag, *(t for t in check_tags(tags) if t != self._tag)]
        self.mode: SearchMode = self._check_mode(mode)
        self._space = DoorSpace(
            model
            if model is not None
            else (model_of(embedding, "langchain") if embedding is not None else None)
        )
        self._home = Home(store, "store", closed_to_agents="the LangChain vector store")
        self._upkeep = IndexUpkeep(MAX_BATCH)

    def _check_mode(self, mode: Any) -> SearchMode:
        if mode not in ("vector", "hybrid", "fulltext"):
            raise ValidationError(f"mode must be vector, hybrid or fulltext, not {mode!r}")
        if mode != "fulltext" and self.embedding is None:
            raise ValidationError(f"{mode} search needs an embedding (or mode='fulltext')")
        return cast(SearchMode, mode)

    @property
    def embeddings(self) -> Embeddings | None:
        """The embeddings the documents and queries are embedded with."""
        return self.embedding

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    @asynccontextmanager
    async def from_url(
        cls,
        /,
        url: str | None = None,
        *,
        embedding: Embeddings | memory.Embedder | None = None,
        collection: str = "default",
        kind: str = DOCUMENT_KIND,
        tags: Iterable[str] = (),
        mode: SearchMode = "vector",
        model: str | None = None,
        **settings: Any,
    ) -> AsyncIterator[SurrealVectorStore]:
        """Open a store at ``url`` (the settings' default when ``None``), migrated, and yield a
        vector store on it; the store is closed on exit."""
        async with Store(url, migrate=True, **settings) as store:
            yield cls(
                store, embedding, collection=collection, kind=kind, tags=tags, mode=mode,
                model=model,
            )  # fmt: skip

    from_url_sync = sync_opener(
        from_url,
        """For synchronous code: open a store at ``url`` on an event loop of its own in a
        background thread and yield a vector store whose sync methods run there (its async
        ones are served there too, from any loop). The store closes on exit.""",
    )

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        store: Store | None = None,
        **kwargs: Any,
    ) -> Self:
        """A vector store on ``store`` (an open :class:`~surreal_store.Store`; keyword
        arguments as the constructor's) with ``texts`` added."""
        if store is None:
            raise ValidationError("afrom_texts needs store= (an open surreal_store.Store)")
        vs = cls(store, embedding, **kwargs)
        await vs.aadd_texts(texts, metadatas, ids=ids)
        return vs

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        store: Store | None = None,
        **kwargs: Any,
    ) -> Self:
        """Sync :meth:`afrom_texts` (``store`` open on an event loop in another thread)."""
        if store is None:
            raise ValidationError("from_texts needs store= (an open surreal_store.Store)")
        vs = cls(store, embedding, **kwargs)
        vs.add_texts(texts, metadatas, ids=ids)
        return vs

    def _sync(self, coro: Any) -> Any:
        return self._home.wait(coro)

    # -- writes ------------------------------------------------------------------------------

    @public
    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add documents (``texts`` with their ``metadatas`` and ``ids``; an id is generated
        where none is given) and return their ids. A document with an existing id replaces
        it; given one id twice, the last one wins. Every input is checked before anything is
        written; each batch (as the memory layer writes them: 1,000 documents, 100 on
        ``mem://``, where smaller transactions write faster) is one transaction."""
        _no_extra(kwargs, "add_texts")
        if isinstance(texts, str):
            raise ValidationError("texts must be a list of strings, not one string")
        texts = [check_text(t, "a text", empty=True) for t in texts]
        if metadatas is not None and len(metadatas) != len(texts):
            raise ValidationError(f"{len(metadatas)} metadatas for {len(texts)} texts")
        if ids is not None and len(ids) != len(texts):
            raise ValidationError(f"{len(ids)} ids for {len(texts)} texts")
        out: list[str] = []
        docs: dict[str, tuple[str, dict[str, Any]]] = {}
        for i, text in enumerate(texts):
            # LangChain's add_documents passes None for a document without an id.
            given: str | None = ids[i] if ids is not None else None
            doc_id = (
                str(uuid.uuid4())
                if given is None
                else check_text(given, "a document id", limit=512)
            )
            meta = metadatas[i] if metadatas is not None else None
            if meta is None:
                meta = {}
            if not isinstance(meta, Mapping):
                raise ValidationError(f"the metadata of {doc_id!r} must be a dict, not {meta!r}")
            docs.pop(doc_id, None)  # the last one wins, in its own place
            docs[doc_id] = (text, json_value(dict(meta), what=f"the metadata of {doc_id!r}"))
            out.append(doc_id)
        if docs:
            await self._home.run(self._add(docs))
        return out

    async def _add(self, docs: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        entries = list(docs.items())
        vectors: list[list[float] | None] = [None] * len(entries)
        if self.embedding is not None:
            texts = [text for _, (text, _) in entries]
            embedded = await self.embedding.aembed_documents(texts)
            if len(embedded) != len(texts):
                raise ValidationError(
                    f"the embedding returned {len(embedded)} vectors for {len(texts)} texts"
                )
            embedded = [check_vector(v, "a vector from the embedding") for v in embedded]
            vectors = list(embedded)
            if embedded:
                dims = {len(v) for v in embedded}
                if len(dims) > 1:
                    raise DimensionError(
                        f"the embedding returned vectors of {sorted(dims)} dimensions"
                    )
                await self._space.declare(self.store, dims.pop())
                self._check_dims(len(embedded[0]))
        size = write_batch_size(self.store)
        for start in range(0, len(entries), size):
            await self._write(
                entries[start : start + size], vectors[start : start + size], deletes=[]
            )
        # Checked once a call, as remember_many does: a rebuild's cost is spread over it.
        await self._upkeep.wrote(self.store, sum(v is not None for v in vectors))

    def _check_dims(self, dims: int) -> None:
        if dims != self._space.dimension:
            raise DimensionError(
                f"the embedding returned {dims} dimensions; the store's space has "
                f"{self._space.dimension}"
            )

    async def _write(
        self,
        entries: Sequence[tuple[str, tuple[str, dict[str, Any]]]],
        vectors: Sequence[list[float] | None],
        *,
        deletes: Sequence[RecordId] | None,
    ) -> int:
        now = _now()
        rows: list[dict[str, Any]] = []
        for (doc_id, (text, meta)), vector in zip(entries, vectors, strict=True):
            row = owned_row(
                scope=new_scope("langchain"),
                content=text,
                key=doc_id,
                kind=self.kind,
                tags=self.tags,
                metadata=meta,
                embedding=vector,
                embedding_model=self._space.writing_model if vector is not None else None,
                now=now,
            )
            rows.append(row)
        return await write_owned(
            self.store,
            _WRITE,
            rows=rows,
            deletes=deletes,
            now=now,
            collection=self.collection,
        )

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Sync :meth:`aadd_texts`."""
        added: list[str] = self._sync(self.aadd_texts(list(texts), metadatas, ids=ids, **kwargs))
        return added

    @public
    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete the documents ``ids`` (ids not stored are no error); ``None`` deletes every
        document of the collection. Their memories are forgotten, or hidden as superseded
        where something cites them. One transaction."""
        _no_extra(kwargs, "delete")
        if isinstance(ids, str):
            raise ValidationError("ids must be a list of strings, not one string")
        targets = (
            None
            if ids is None
            else [
                document_record(self.collection, check_text(i, "a document id", limit=512))
                for i in ids
            ]
        )
        if targets == []:
            return True
        await self._home.run(self._write([], [], deletes=targets))
        return True

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Sync :meth:`adelete`."""
        done: bool = self._sync(self.adelete(ids, **kwargs))
        return done

    # -- reads -------------------------------------------------------------------------------

    @public
    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents ``ids``, in that order; ids not stored are left out."""
        if isinstance(ids, str):
            raise ValidationError("ids must be a list of strings, not one string")
        records = [
            document_record(self.collection, check_text(i, "a document id", limit=512)) for i in ids
        ]
        if not records:
            return []
        rows = await self._home.run(self.store.query(_GET, dict, ids=records))
        return [self._document(r["key"], r["content"], r["metadata"]) for r in rows]

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Sync :meth:`aget_by_ids`."""
        found: list[Document] = self._sync(self.aget_by_ids(ids))
        return found

    @staticmethod
    def _document(doc_id: str | None, content: str, metadata: dict[str, Any]) -> Document:
        return Document(id=doc_id, page_content=content, metadata=metadata)

    @public
    async def amemory_id(self, doc_id: str) -> str | None:
        """The id of the memory holding document ``doc_id`` (for
        :func:`surreal_store.provenance.lineage`, ``why``, ``impact``...), or ``None``."""
        rows = await self._home.run(
            self.store.query(
                _MEMORY_OF,
                str,
                ids=[document_record(self.collection, check_text(doc_id, "a document id"))],
            ),
        )
        return rows[0] if rows else None

    def memory_id(self, doc_id: str) -> str | None:
        """Sync :meth:`amemory_id`."""
        found: str | None = self._sync(self.amemory_id(doc_id))
        return found

    # -- search ------------------------------------------------------------------------------

    def _filters(self, filter: Any) -> dict[str, Any]:
        """``filter`` as :func:`memory.recall` keywords (the collection's tag is added by the
        search)."""
        if filter is None:
            return {}
        if not isinstance(filter, Mapping):
            raise ValidationError(f"filter must be a dict of recall filters, not {filter!r}")
        unknown = sorted(set(filter) - FILTER_KEYS)
        if "scope" in unknown:
            raise ValidationError(
                "filter: 'scope' is not a document's: each document's memory has a scope of "
                "its own; documents are grouped by collection (SurrealVectorStore(collection=))"
            )
        if unknown:
            raise ValidationError(
                f"filter: unknown keys {unknown}; it takes {sorted(FILTER_KEYS)} (filters on "
                "the documents' metadata go under 'metadata')"
            )
        out = dict(filter)
        tags = out.pop("tags", None) or []
        out["tags"] = check_tags(tags)
        for name in _TIMES:
            value = out.get(name)
            if isinstance(value, str):
                try:
                    out[name] = dt.datetime.fromisoformat(value)
                except ValueError:
                    raise ValidationError(f"filter: {name} is not an ISO time: {value!r}") from None
        if not isinstance(out.get("include_invalidated", False), bool):
            raise ValidationError("filter: include_invalidated must be True or False")
        return out

    async def _embed_query(self, query: str) -> list[float]:
        assert self.embedding is not None
        return check_vector(await self.embedding.aembed_query(query), "a vector from the embedding")

    async def _hits(
        self,
        *,
        query: str | None,
        vector: list[float] | None,
        k: int,
        filter: Any,
        mode: SearchMode,
    ) -> list[Found]:
        """The recall hits of the ``k`` best documents."""
        k = check_k(k)
        filters = self._filters(filter)
        if mode != "fulltext":
            dims = await self._space.known_dimension(self.store)
            if not dims:
                return []  # nothing was ever embedded: no document to find
            if vector is None:
                assert query is not None
                vector = await self._embed_query(query)
            if len(vector) != dims:
                raise DimensionError(
                    f"a query vector of {len(vector)} dimensions; the store's space has {dims}"
                )
            self._space.check_query(dims)
        return await tagged_recall(
            self.store,
            tag=self._tag,
            text=query if mode != "vector" else None,
            vector=vector if mode != "fulltext" else None,
            k=k,
            mode=mode,
            **filters,
        )

    def _scored(self, hit: Found) -> tuple[Document, float]:
        doc_id = hit.key if hit.key is not None else hit.id
        return self._document(doc_id, hit.content, hit.metadata), hit.score

    def _mode(self, mode: Any) -> SearchMode:
        return self.mode if mode is None else self._check_mode(mode)

    @public
    async def asimilarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: Mapping[str, Any] | None = None,
        mode: SearchMode | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents most relevant to ``query``, best first, with their scores
        (cosine similarity in vector mode, reciprocal-rank fusion in hybrid, BM25 in full
        text)."""
        _no_extra(kwargs, "similarity_search")
        check_text(query, "query", empty=True)
        hits = await self._home.run(
            self._hits(query=query, vector=None, k=k, filter=filter, mode=self._mode(mode)),
        )
        return [self._scored(h) for h in hits]

    def similarity_search_with_score(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Sync :meth:`asimilarity_search_with_score`."""
        found: list[tuple[Document, float]] = self._sync(
            self.asimilarity_search_with_score(query, k, **kwargs)
        )
        return found

    @public
    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """The ``k`` documents most relevant to ``query``, best first (``filter=``, ``mode=``
        as :meth:`asimilarity_search_with_score`)."""
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, **kwargs)]

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        """Sync :meth:`asimilarity_search`."""
        return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

    @public
    async def asimilarity_search_with_score_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        *,
        filter: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The ``k`` documents nearest to ``embedding``, with their cosine similarities."""
        _no_extra(kwargs, "similarity_search_by_vector")
        if self.embedding is None:
            raise ValidationError("vector search needs an embedding")
        vector = check_vector(embedding, "embedding")
        hits = await self._home.run(
            self._hits(query=None, vector=vector, k=k, filter=filter, mode="vector")
        )
        return [self._scored(h) for h in hits]

    @public
    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """The ``k`` documents nearest to ``embedding``."""
        found = await self.asimilarity_search_with_score_by_vector(embedding, k, **kwargs)
        return [d for d, _ in found]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, **kwargs: Any
    ) -> list[Document]:
        """Sync :meth:`asimilarity_search_by_vector`."""
        found: list[Document] = self._sync(
            self.asimilarity_search_by_vector(embedding, k, **kwargs)
        )
        return found

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # A vector score is a cosine similarity; relevance is it, floored at 0 (LangChain wants
        # [0, 1]): a score_threshold of 0.8 means a cosine similarity of at least 0.8.
        return lambda score: max(0.0, min(1.0, score))

    def _relevance_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        mode = kwargs.pop("mode", None)
        if mode not in (None, "vector"):
            raise ValidationError(
                "relevance scores are vector similarities: hybrid and full-text scores are "
                "ranks and BM25, not relevance (use similarity_search_with_score)"
            )
        if self.embedding is None:
            raise ValidationError("relevance scores need an embedding")
        return {**kwargs, "mode": "vector"}

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return super()._similarity_search_with_relevance_scores(
            query, k, **self._relevance_kwargs(kwargs)
        )

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return await super()._asimilarity_search_with_relevance_scores(
            query, k, **self._relevance_kwargs(kwargs)
        )

    @public
    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """``k`` documents among the ``fetch_k`` nearest to ``embedding``, picked by maximal
        marginal relevance: similar to the query (weight ``lambda_mult``) and unlike the ones
        picked before (weight ``1 - lambda_mult``)."""
        _no_extra(kwargs, "max_marginal_relevance_search")
        k, fetch_k = check_k(k), check_k(fetch_k, "fetch_k")
        if (
            isinstance(lambda_mult, bool)
            or not isinstance(lambda_mult, int | float)
            or not (0 <= lambda_mult <= 1)
        ):
            raise ValidationError(f"lambda_mult must be in [0, 1], not {lambda_mult!r}")
        if self.embedding is None:
            raise ValidationError("max marginal relevance search needs an embedding")
        vector = check_vector(embedding, "embedding")
        return await self._home.run(
            self._mmr(vector, k=k, fetch_k=max(k, fetch_k), lam=lambda_mult, filter=filter),
        )

    async def _mmr(
        self, vector: list[float], *, k: int, fetch_k: int, lam: float, filter: Any
    ) -> list[Document]:
        hits = await self._hits(query=None, vector=vector, k=fetch_k, filter=filter, mode="vector")
        if not hits:
            return []
        ids = [RecordId("memory", h.id) for h in hits]
        by_id = dict(await self.store.query(_VECTORS, tuple[str, list[float]], ids=ids))
        keep = [h for h in hits if h.id in by_id]
        vectors = [by_id[h.id] for h in keep]
        picked = _mmr([h.score for h in keep], vectors, k, float(lam))
        return [self._scored(keep[i])[0] for i in picked]

    @public
    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """:meth:`amax_marginal_relevance_search_by_vector` for ``query``'s vector."""
        if self.embedding is None:
            raise ValidationError("max marginal relevance search needs an embedding")
        vector = await self._embed_query(check_text(query, "query", empty=True))
        return await self.amax_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, **kwargs
        )

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Sync :meth:`amax_marginal_relevance_search`."""
        found: list[Document] = self._sync(
            self.amax_marginal_relevance_search(query, k, fetch_k, lambda_mult, **kwargs)
        )
        return found

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        **kwargs: Any,
    ) -> list[Document]:
        """Sync :meth:`amax_marginal_relevance_search_by_vector`."""
        found: list[Document] = self._sync(
            self.amax_marginal_relevance_search_by_vector(
                embedding, k, fetch_k, lambda_mult, **kwargs
            )
        )
        return found
