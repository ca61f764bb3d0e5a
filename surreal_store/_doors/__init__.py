"""The doors' shared kit: what the LangGraph checkpointer and store, the LangChain vector store,
the MCP server and the CLI do alike, done once.

- ``_loop``: :class:`Home`, the one way a door's calls reach the store's event loop (the async
  methods from any loop, the sync methods from another thread), and a store owned on a loop of
  its own in a background thread.
- ``_owned``: the write transaction of the doors' owner records (LangGraph's items,
  LangChain's documents) and the memories that hold their searchable texts.
- ``_search``: recall narrowed to a collection's tag, and the limits on ``k``.
- ``_embedder``: a store's own embedder (the MCP server's ``auto`` and the CLI's recall ask the
  same function), and declaring the store's embedding space from a door's model.
"""

from ._embedder import DoorSpace, fits, own_embedder
from ._loop import (
    Home,
    current_loop,
    entered_in_background,
    run_detached,
    sync_opener,
)
from ._owned import (
    IndexUpkeep,
    WriteOutcome,
    model_of,
    new_scope,
    owned_row,
    owned_write_query,
    write_owned,
)
from ._search import AGENT_MAX_K, MAX_K, Found, check_k, tagged_recall

__all__ = [
    "AGENT_MAX_K",
    "MAX_K",
    "DoorSpace",
    "Found",
    "Home",
    "IndexUpkeep",
    "WriteOutcome",
    "check_k",
    "current_loop",
    "entered_in_background",
    "fits",
    "model_of",
    "new_scope",
    "own_embedder",
    "owned_row",
    "owned_write_query",
    "run_detached",
    "sync_opener",
    "tagged_recall",
    "write_owned",
]
