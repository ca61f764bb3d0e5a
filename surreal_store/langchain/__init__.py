"""LangChain on surreal-store (``pip install 'surreal-store[langchain]'``).

- :class:`SurrealVectorStore`: a LangChain ``VectorStore`` (and, through ``as_retriever()``,
  a retriever) whose documents are memories: vector, hybrid or full-text search with the
  memory layer's recall and filters, and every document's provenance one call away.
- :class:`EmbedderEmbeddings`: a memory-layer embedder as LangChain ``Embeddings``.
- :class:`SurrealGraphStore`: a LangChain ``GraphStore`` on the knowledge graph
  (:mod:`surreal_store.graph`): ``LLMGraphTransformer``'s ``GraphDocument``s in, SurrealQL
  queries and the schema LangChain's graph chains read out.
- :class:`GraphTransformerExtractor`: ``LLMGraphTransformer`` as a graph ``Extractor``.

Built on an open :class:`~surreal_store.Store`; it closes nothing it did not open.
"""

try:
    import langchain_core.vectorstores  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "surreal_store.langchain needs LangChain: pip install 'surreal-store[langchain]'"
    ) from exc

from ._graphstore import (
    GraphTransformerExtractor,
    SurrealGraphStore,
    WriteQueryError,
    graph_document_extraction,
)
from ._vectorstore import (
    DOCUMENT_KIND,
    FILTER_KEYS,
    EmbedderEmbeddings,
    SurrealVectorStore,
    document_record,
)

__all__ = [
    "DOCUMENT_KIND",
    "FILTER_KEYS",
    "EmbedderEmbeddings",
    "GraphTransformerExtractor",
    "SurrealGraphStore",
    "SurrealVectorStore",
    "WriteQueryError",
    "document_record",
    "graph_document_extraction",
]
