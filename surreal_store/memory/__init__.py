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

The package holds one idea a module: ``_models`` (what is read and written), ``_checks``,
``_embedders``, ``_space`` (declaring and requiring a space, re-embedding), ``_recall_index``
(the recall index beside the store, a package of its own: text analysis, the index and its
search, its saved files, following the change feed), ``_write`` (remember, invalidate,
restore, forget), ``_reads`` and ``_recall``.
"""

from ._embedders import Embedder, HashingEmbedder, SentenceTransformerEmbedder
from ._models import (
    DEFAULT_SCOPE,
    EmbeddingSpace,
    ForgetReceipt,
    IndexStatus,
    Memory,
    NewMemory,
    RecallHit,
    ReembedReport,
    RememberManyResult,
    memory_id,
)
from ._models import FIELDS as FIELDS
from ._reads import by_key, get, latest_by_key
from ._recall import DEFAULT_CANDIDATES, DEFAULT_EF, RecallMode, recall
from ._recall_index import index_status, rebuild_index
from ._space import declare_space, get_space, reembed
from ._write import forget, invalidate, remember, remember_many, restore

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_EF",
    "DEFAULT_SCOPE",
    "Embedder",
    "EmbeddingSpace",
    "ForgetReceipt",
    "HashingEmbedder",
    "IndexStatus",
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
    "index_status",
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
