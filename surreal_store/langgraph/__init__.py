"""LangGraph on surreal-store (``pip install 'surreal-store[langgraph]'``).

- :class:`SurrealCheckpointSaver`: a checkpointer (``builder.compile(checkpointer=...)``):
  threads, checkpoints, pending writes and forks persisted in the store.
- :class:`SurrealStore`: a long-term memory store (``builder.compile(store=...)``): namespaced
  items, searched with the memory layer's recall, with filters and time to live.

Both are built on an open :class:`~surreal_store.Store` and close nothing they did not open.
"""

try:
    import langgraph.checkpoint.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "surreal_store.langgraph needs LangGraph: pip install 'surreal-store[langgraph]'"
    ) from exc

from ._checkpoint import SurrealCheckpointSaver, checkpoint_record
from ._store import ITEM_KIND, NamespaceError, SurrealStore, item_record

__all__ = [
    "ITEM_KIND",
    "NamespaceError",
    "SurrealCheckpointSaver",
    "SurrealStore",
    "checkpoint_record",
    "item_record",
]
